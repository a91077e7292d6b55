//! The Graph resource model of `microsoft.graph.callRecords`: Rust types whose serde form is the
//! exact JSON the Graph SDKs read, plus the ingest-side parsing and checks of one record.
//!
//! Never: IO, HTTP, SQL. This module needs only serde and time. Its serialized form *is* our
//! contract with the SDKs, so a change here is an API change. Next: `crate::ingest` feeds records
//! in, `crate::store` keeps their serialized documents.

mod enums;
mod logs;
mod objects_only;
mod primitives;
pub(crate) mod retired;
mod subscription;
mod types;
mod wire;

use std::collections::HashSet;

use objects_only::ObjectsOnly;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub(crate) use enums::*;
pub(crate) use logs::*;
pub use primitives::{DateTimeOffset, Duration, Single};
pub use subscription::*;
pub(crate) use types::*;

/// The CSDL extract of the namespace, served at `/v1.0/$metadata`.
pub(crate) const CSDL: &str = include_str!("callRecords.csdl.xml");
/// Graph beta's `microsoft.graph.callRecords` schema, served as `/beta/$metadata`.
pub(crate) const CSDL_BETA: &str = include_str!("callRecords.beta.csdl.xml");

/// Why one ingested record was refused: where in the document, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct RecordError {
    /// A JSON path such as `sessions[0].segments[2].media[0].streams[1].averageJitter`; `.` for
    /// the whole document.
    pub(crate) path: String,
    pub(crate) reason: String,
    /// The document is not JSON at all (a syntax error or a cut-off text), rather than JSON the
    /// model refuses; `reason` then says what the JSON parser expected, and where.
    pub(crate) not_json: bool,
}

impl RecordError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
            not_json: false,
        }
    }

    fn not_json(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            not_json: true,
            ..Self::at(path, reason)
        }
    }
}

/// Parses one call record in its full-details shape, refusing what the model does not declare.
///
/// Closed types may carry OData annotations (keys containing `@`, such as `@odata.type` or
/// `sessions@odata.context`), which are dropped; any other undeclared property is an error, so a
/// misspelt property is reported rather than silently lost. Open types keep everything.
pub fn parse_call_record(json: &[u8]) -> Result<CallRecord, RecordError> {
    parse_document(json)
}

/// Parses one document of a model type with the rules of `parse_call_record`.
///
/// Tracking the path of every value (serde_path_to_error) costs a third of the parse, and only
/// a refused document needs it, so documents are parsed without it first and a failure is
/// parsed again with it to say where.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, RecordError> {
    // One UTF-8 check of the whole document is cheaper than serde_json's check of each string.
    let Ok(text) = std::str::from_utf8(json) else {
        return Err(locate_parse_error::<T>(json));
    };
    let mut undeclared = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut remember = |path: serde_ignored::Path<'_>| undeclared.push(json_path(&path));
    let parsed: Result<T, _> = serde_ignored::deserialize(ObjectsOnly(&mut deserializer), &mut remember);
    let record = match parsed {
        Ok(record) => record,
        Err(_) => return Err(locate_parse_error::<T>(json)),
    };
    deserializer
        .end()
        .map_err(|error| RecordError::at(".", format!("trailing characters after the record: {error}")))?;
    if let Some(path) = undeclared.into_iter().find(|path| !is_annotation(path)) {
        let (parent, name) = path.rsplit_once('.').unwrap_or((".", path.as_str()));
        return Err(RecordError::at(
            path.clone(),
            format!("'{name}' is not a property of the type at '{parent}'"),
        ));
    }
    Ok(record)
}

/// The error of a document that failed to parse, with the path of the value at fault.
#[cold]
fn locate_parse_error<T: serde::de::DeserializeOwned>(json: &[u8]) -> RecordError {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let mut ignore = |_: serde_ignored::Path<'_>| {};
    let ignoring = serde_ignored::Deserializer::new(ObjectsOnly(&mut deserializer), &mut ignore);
    match serde_path_to_error::deserialize::<_, T>(ignoring) {
        Err(error) => {
            let path = known_path(&error.path().to_string());
            let inner = error.into_inner();
            let message = strip_serde_position(&inner.to_string());
            if inner.is_syntax() || inner.is_eof() {
                RecordError::not_json(path, format!("{message} at column {}", inner.column()))
            } else {
                RecordError::at(path, message)
            }
        }
        // Parsing is deterministic; this arm only keeps the function total.
        Ok(_) => RecordError::at(".", "the document could not be parsed"),
    }
}

/// `sessions[0].segments[2].medias`, in the notation serde_path_to_error uses for other errors.
fn json_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", json_path(parent)),
        Path::Map { parent, key } => {
            let parent = json_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => json_path(parent),
    }
}

fn is_annotation(path: &str) -> bool {
    path.rsplit('.').next().is_some_and(|name| name.contains('@')) || path.contains("@odata")
}

/// serde_json appends " at line 1 column 123" to messages; the path already says where.
/// serde_path_to_error writes `?` for a step it could not name (inside a key that did not parse);
/// the path up to the last named step is the place to look.
fn known_path(path: &str) -> String {
    let named = path.split('?').next().unwrap_or_default().trim_end_matches(['.', '[']);
    if named.is_empty() {
        ".".to_owned()
    } else {
        named.to_owned()
    }
}

fn strip_serde_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message.to_owned(),
    }
}

/// `modality` has no `unknown` member in the v1.0 CSDL, though the docs list it, and
/// the SDK would read it as `None`. We drop it at ingest rather than refuse the whole record: the
/// other modalities are still true, and a record from real Graph data should not be lost over it.
pub(crate) fn deserialize_modalities<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Modality>, D::Error> {
    let names = Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default();
    let mut modalities = Vec::with_capacity(names.len());
    for name in names {
        if name == "unknown" {
            continue;
        }
        let modality = Modality::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{name}' is not a member of {}; expected one of: {}",
                Modality::CSDL_NAME,
                Modality::MEMBERS.join(", ")
            ))
        })?;
        if !modalities.contains(&modality) {
            modalities.push(modality);
        }
    }
    Ok(modalities)
}

/// Serialization of our own model types cannot fail: they hold no maps with non-string keys
/// and no values whose `Serialize` can error.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("model types always serialize")
}

/// The longest id we accept: ids travel in URL paths and keys, and Graph's are GUIDs or E.164.
pub(crate) const MAX_ID_LEN: usize = 256;

pub(crate) fn check_id(path: &str, id: &str) -> Result<(), RecordError> {
    if id.is_empty() {
        return Err(RecordError::at(path, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(RecordError::at(path, format!("is longer than {MAX_ID_LEN} characters")));
    }
    if id.chars().any(|c| c.is_control() || c == '/') {
        return Err(RecordError::at(path, "must not contain '/' or control characters"));
    }
    Ok(())
}

/// The navigation segments of a call record's paths. A key segment cannot be one of them (nor
/// start with `$`, as `$count` and `$metadata` do): `api::path` reads it as the word, not a key.
pub(crate) const NAVIGATION_SEGMENTS: &[&str] = &["sessions", "segments", "participants_v2", "organizer_v2"];

/// Checks an id that a resource path addresses (a record, session, segment or participant):
/// beyond `check_id`, it must read back as itself both as a key segment (`/callRecords/{id}`)
/// and as a quoted key (`/callRecords('{id}')`), so nothing is stored that no URL can reach.
fn check_key(path: &str, id: &str) -> Result<(), RecordError> {
    check_id(path, id)?;
    if id.starts_with('$') {
        return Err(RecordError::at(
            path,
            "must not start with '$', which marks path words such as $count and $metadata",
        ));
    }
    if let Some(word) = NAVIGATION_SEGMENTS.iter().find(|word| word.eq_ignore_ascii_case(id)) {
        return Err(RecordError::at(
            path,
            format!("must not be '{id}': resource paths use {word} as a navigation segment"),
        ));
    }
    if id == "." || id == ".." {
        return Err(RecordError::at(
            path,
            "must not be '.' or '..', which clients remove from URL paths",
        ));
    }
    if id.contains(['(', ')', '\'', '"']) {
        return Err(RecordError::at(
            path,
            "must not contain parentheses or quotes, which delimit keys and function parameters in resource paths",
        ));
    }
    Ok(())
}

fn check_span(path: &str, start: &DateTimeOffset, end: &DateTimeOffset) -> Result<(), RecordError> {
    if end < start {
        return Err(RecordError::at(
            format!("{path}endDateTime"),
            format!("{end} is before startDateTime {start}"),
        ));
    }
    Ok(())
}

impl CallRecord {
    /// Checks the rules the type system cannot: ids usable as keys, spans that end after they
    /// start, and ids unique where they address a sub-resource (a participant id within its record).
    pub(crate) fn validate(&self) -> Result<(), RecordError> {
        check_key("id", &self.id)?;
        if self.version < 0 {
            return Err(RecordError::at("version", "must not be negative"));
        }
        check_span("", &self.start_date_time, &self.end_date_time)?;
        let mut session_ids = HashSet::new();
        for (i, session) in self.sessions.iter().flatten().enumerate() {
            let path = format!("sessions[{i}].");
            check_key(&format!("{path}id"), &session.id)?;
            if !session_ids.insert(session.id.as_str()) {
                return Err(RecordError::at(
                    format!("{path}id"),
                    format!("session id '{}' appears twice", session.id),
                ));
            }
            check_span(&path, &session.start_date_time, &session.end_date_time)?;
            let mut segment_ids = HashSet::new();
            for (j, segment) in session.segments.iter().flatten().enumerate() {
                let path = format!("{path}segments[{j}].");
                check_key(&format!("{path}id"), &segment.id)?;
                if !segment_ids.insert(segment.id.as_str()) {
                    return Err(RecordError::at(
                        format!("{path}id"),
                        format!("segment id '{}' appears twice in its session", segment.id),
                    ));
                }
                check_span(&path, &segment.start_date_time, &segment.end_date_time)?;
            }
        }
        let mut participant_ids = HashSet::new();
        for (i, participant) in self.participants_v2.iter().flatten().enumerate() {
            let path = format!("participants_v2[{i}].id");
            check_key(&path, &participant.id)?;
            if !participant_ids.insert(participant.id.as_str()) {
                return Err(RecordError::at(
                    path,
                    format!("participant id '{}' appears twice", participant.id),
                ));
            }
        }
        if let Some(organizer) = &self.organizer_v2 {
            check_id("organizer_v2.id", &organizer.id)?;
        }
        Ok(())
    }

    /// Fills what Graph always has but a sender may leave out: `lastModifiedDateTime` (only when
    /// absent: values are kept as sent) and the `_v2` navigations from their retired forms, which
    /// are then emptied as Graph serves them now (see `retired`).
    pub(crate) fn fill_derived(&mut self, now: DateTimeOffset) {
        self.last_modified_date_time.get_or_insert(now);
        if self.participants_v2.is_none() {
            if let Some(participants) = &self.participants {
                let derived = participants
                    .iter()
                    .filter_map(participant_from_identity_set)
                    .collect::<Vec<_>>();
                let mut seen = HashSet::new();
                self.participants_v2 = Some(derived.into_iter().filter(|p| seen.insert(p.id.clone())).collect());
            }
        }
        if self.organizer_v2.is_none() {
            self.organizer_v2 = self.organizer.as_ref().and_then(participant_from_identity_set);
        }
        retired::retire(self);
    }
}

fn participant_from_identity_set(identity_set: &IdentitySet) -> Option<Participant> {
    let primary = [&identity_set.user, &identity_set.application, &identity_set.device]
        .into_iter()
        .flatten()
        .next()?;
    Some(Participant {
        id: primary.id.clone()?,
        identity: Some(CommunicationsIdentitySet {
            application: identity_set.application.clone(),
            device: identity_set.device.clone(),
            user: identity_set.user.clone(),
            ..CommunicationsIdentitySet::default()
        }),
        administrative_unit_infos: Vec::new(),
    })
}

/// Applies the response-shaping `Prefer` preferences to a body about to be written:
/// evolvable enum members become `unknownFutureValue` unless the client opted in, and nulls are
/// removed (empty collections kept: the CSDL makes some not-null) when it asked for
/// `omit-values=nulls`.
/// Returns whether the body held an evolvable member: only then is the preference echoed in
/// `Preference-Applied`.
pub(crate) fn shape_for_client(value: &mut Value, include_unknown_enum_members: bool, omit_nulls: bool) -> bool {
    let mut saw_evolvable = false;
    shape_value(value, include_unknown_enum_members, omit_nulls, &mut saw_evolvable);
    saw_evolvable
}

/// `shape_for_client` without omitting nulls, on compact JSON text our serializer wrote. In such
/// text an evolvable member can only appear as the exact characters `"property":"member"`: inside
/// a string every quote is escaped, so the pattern cannot match there. Returns whether one was seen.
pub(crate) fn shape_text_for_client(text: &mut String, include_unknown_enum_members: bool) -> bool {
    let mut saw_evolvable = false;
    for (property, member) in EVOLVABLE_MEMBERS {
        let pattern = format!("\"{property}\":\"{member}\"");
        // memchr's SIMD search: with `str::contains` this scan was 4 % of a read's CPU.
        if memchr::memmem::find(text.as_bytes(), pattern.as_bytes()).is_some() {
            saw_evolvable = true;
            if !include_unknown_enum_members {
                *text = text.replace(&pattern, &format!("\"{property}\":\"unknownFutureValue\""));
            }
        }
    }
    saw_evolvable
}

fn shape_value(value: &mut Value, include_evolvable: bool, omit_nulls: bool, saw_evolvable: &mut bool) {
    match value {
        Value::Object(map) => {
            if omit_nulls {
                map.retain(|_, v| !v.is_null());
            }
            for (key, child) in map.iter_mut() {
                if let Value::String(text) = child {
                    if EVOLVABLE_MEMBERS
                        .iter()
                        .any(|(property, member)| property == key && member == text)
                    {
                        *saw_evolvable = true;
                        if !include_evolvable {
                            *text = "unknownFutureValue".to_owned();
                        }
                    }
                } else {
                    shape_value(child, include_evolvable, omit_nulls, saw_evolvable);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                shape_value(item, include_evolvable, omit_nulls, saw_evolvable);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
