//! Stored documents served as the text they were stored as.
//!
//! The stores keep every entity as compact JSON written by our own serializer. Parsing that text
//! into `serde_json::Value` trees and printing them again cost most of a read's CPU (in a profile:
//! allocation, map hashing and number parsing of documents averaging 33 KB). A read only
//! needs to drop, reorder or annotate an entity's top-level members, so this module splits an
//! entity into its members as slices of the stored text and writes answers around them. Nested
//! values are validated by the parse but never rebuilt.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A JSON object's members in document order, each value a slice of the original text.
pub(crate) struct RawEntity<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> RawEntity<'a> {
    /// Splits a stored document into its members. A failure means the store holds text we did
    /// not write: a bug, not a client error.
    pub fn parse(document: &'a str) -> anyhow::Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(document);
        let entity = deserializer.deserialize_map(MembersVisitor)?;
        deserializer.end()?;
        Ok(entity)
    }

    /// Keeps the selected members (and always `id` and annotations); an empty
    /// selection keeps everything.
    pub(crate) fn project(&mut self, select: &[String]) {
        if select.is_empty() {
            return;
        }
        self.members
            .retain(|(key, _)| key == "id" || key.starts_with('@') || select.iter().any(|s| s == key));
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.members.iter().any(|(name, _)| name == key)
    }

    /// A member's value, as JSON text.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_ref())
    }

    /// Removes a member and returns its value's JSON text.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let position = self.members.iter().position(|(name, _)| name == key)?;
        Some(self.members.remove(position).1)
    }

    /// Gives a member a new value (JSON text) where it stands; false if there is no such member.
    pub(crate) fn replace(&mut self, key: &str, json: impl Into<Cow<'a, str>>) -> bool {
        match self.members.iter_mut().find(|(name, _)| name == key) {
            Some((_, value)) => {
                *value = json.into();
                true
            }
            None => false,
        }
    }

    /// Appends a member whose value is JSON text.
    pub(crate) fn push(&mut self, key: &'a str, json: impl Into<Cow<'a, str>>) {
        self.members.push((Cow::Borrowed(key), json.into()));
    }

    /// Writes the members into `object`, with `annotation` just before the member it annotates.
    pub(crate) fn write_members(&self, object: &mut JsonObject, annotation: Option<(&str, &str, &str)>) {
        for (key, value) in &self.members {
            if let Some((annotated, name, text)) = annotation {
                if key == annotated {
                    object.string(name, text);
                }
            }
            object.raw(key, value);
        }
    }

    pub(crate) fn to_json(&self) -> String {
        let mut object = JsonObject::with_capacity(self.members.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
        self.write_members(&mut object, None);
        object.finish()
    }
}

/// The items of a JSON array, each a slice of the text.
pub(crate) fn array_items(json: &str) -> anyhow::Result<Vec<&str>> {
    let items: Vec<&RawValue> = serde_json::from_str(json)?;
    Ok(items.into_iter().map(RawValue::get).collect())
}

/// Writes a JSON array of items that are already JSON text.
pub(crate) fn array_json<S: AsRef<str>>(items: &[S]) -> String {
    let mut text = String::with_capacity(items.iter().map(|item| item.as_ref().len() + 1).sum::<usize>() + 2);
    text.push('[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(item.as_ref());
    }
    text.push(']');
    text
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = RawEntity<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(MemberName(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, Cow::Borrowed(value.get())));
        }
        Ok(RawEntity { members })
    }
}

/// A member name, borrowed from the text unless it held escapes.
struct MemberName<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A JSON object written member by member into one buffer, compact as our serializer writes.
pub(crate) struct JsonObject {
    text: String,
    empty: bool,
}

impl JsonObject {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity + 2);
        text.push('{');
        JsonObject { text, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        push_json_string(&mut self.text, key);
        self.text.push(':');
    }

    /// Members already written as JSON text (`"a":1,"b":2`, no braces); nothing when empty.
    pub(crate) fn members(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        self.text.push_str(text);
    }

    /// A member whose value is already JSON text.
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.text.push_str(json);
    }

    pub(crate) fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(&mut self.text, value);
    }

    pub(crate) fn integer(&mut self, key: &str, value: i64) {
        self.key(key);
        self.text.push_str(&value.to_string());
    }

    /// An array member whose items are already JSON text.
    pub(crate) fn raw_array<S: AsRef<str>>(&mut self, key: &str, items: &[S]) {
        self.key(key);
        self.text.push('[');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            self.text.push_str(item.as_ref());
        }
        self.text.push(']');
    }

    /// An array member of objects, each written by `write` straight into this buffer.
    pub(crate) fn object_array<T, E>(
        &mut self,
        key: &str,
        items: &[T],
        mut write: impl FnMut(&mut JsonObject, &T) -> Result<(), E>,
    ) -> Result<(), E> {
        self.key(key);
        self.text.push('[');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let mut nested = JsonObject {
                text: std::mem::take(&mut self.text),
                empty: true,
            };
            nested.text.push('{');
            let written = write(&mut nested, item);
            self.text = nested.finish();
            written?;
        }
        self.text.push(']');
        Ok(())
    }

    pub(crate) fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

fn push_json_string(text: &mut String, value: &str) {
    let plain = value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        text.push('"');
        text.push_str(value);
        text.push('"');
    } else {
        text.push_str(&serde_json::to_string(value).expect("strings always serialize"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn members_keep_their_order_and_text() {
        let document = r##"{"id":"a","n":1.50,"nested":{"x":[1,2]},"organizer_v2":null}"##;
        let entity = RawEntity::parse(document).unwrap();
        assert_eq!(entity.to_json(), document);
    }

    #[test]
    fn escaped_names_and_values_survive() {
        let document = r##"{"id":"a\"b","we\"ird":"line\nbreak","@odata.type":"#x"}"##;
        let entity = RawEntity::parse(document).unwrap();
        let round: Value = serde_json::from_str(&entity.to_json()).unwrap();
        assert_eq!(round, serde_json::from_str::<Value>(document).unwrap());
    }

    #[test]
    fn projection_keeps_id_and_annotations() {
        let document = r##"{"@odata.type":"#t","id":"a","type":"groupCall","version":2}"##;
        let mut entity = RawEntity::parse(document).unwrap();
        entity.project(&["version".to_owned()]);
        assert_eq!(entity.to_json(), r##"{"@odata.type":"#t","id":"a","version":2}"##);
    }

    #[test]
    fn annotations_go_before_their_member() {
        let entity = RawEntity::parse(r#"{"id":"a","organizer_v2":{"id":"o"},"version":1}"#).unwrap();
        let mut object = JsonObject::with_capacity(64);
        object.string("@odata.context", "http://h/$metadata#x");
        entity.write_members(
            &mut object,
            Some(("organizer_v2", "organizer_v2@odata.context", "ctx\"q")),
        );
        object.integer("@odata.count", 3);
        object.raw_array("value", &["{}", "[1]"]);
        object
            .object_array("items", &[1, 2], |item, n| {
                item.integer("n", *n);
                item.members(r#""a":true,"b":null"#);
                item.members("");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            object.finish(),
            r#"{"@odata.context":"http://h/$metadata#x","id":"a","organizer_v2@odata.context":"ctx\"q","organizer_v2":{"id":"o"},"version":1,"@odata.count":3,"value":[{},[1]],"items":[{"n":1,"a":true,"b":null},{"n":2,"a":true,"b":null}]}"#
        );
    }

    #[test]
    fn text_that_is_not_one_object_is_refused() {
        assert!(RawEntity::parse("[1]").is_err());
        assert!(RawEntity::parse(r#"{"a":1} {"b":2}"#).is_err());
        assert!(RawEntity::parse(r#"{"a":}"#).is_err());
    }
}
