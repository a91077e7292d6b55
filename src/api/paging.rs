//! Keyset paging, written once for every collection: what a skip token is bound to, how a
//! request resumes from one, and how the next link is built. A token is bound to the collection
//! (and, for a record's children, the record), to the parts of the path that choose the rows
//! (a function's range) and to the options the next link repeats, so a token replayed with other
//! options is refused instead of silently paging something else.

use super::call_records::invalid_skiptoken;
use super::context::RequestContext;
use super::error::Result;
use super::odata::link;
use crate::query::{self, SkipToken};
use crate::store::{RecordCursor, Timestamp};

/// The position a page key records, as a skip token holds it.
pub(super) trait PageKey: Sized {
    fn to_key(&self) -> Vec<String>;
    fn from_key(key: &[String]) -> Option<Self>;
}

/// Records and log rows: after (start, id).
impl PageKey for RecordCursor {
    fn to_key(&self) -> Vec<String> {
        vec![self.start.ticks().to_string(), self.id.clone()]
    }

    fn from_key(key: &[String]) -> Option<Self> {
        match key {
            [start, id] => Some(RecordCursor {
                start: Timestamp::from_ticks(start.parse().ok()?),
                id: id.clone(),
            }),
            _ => None,
        }
    }
}

/// A record's sessions and participants: after an ordinal.
impl PageKey for i64 {
    fn to_key(&self) -> Vec<String> {
        vec![self.to_string()]
    }

    fn from_key(key: &[String]) -> Option<Self> {
        match key {
            [ordinal] => ordinal.parse().ok(),
            _ => None,
        }
    }
}

/// Grouped entries (the dial-out report): after a group's key.
impl PageKey for Vec<Option<String>> {
    fn to_key(&self) -> Vec<String> {
        vec![serde_json::to_string(self).expect("strings serialize")]
    }

    fn from_key(key: &[String]) -> Option<Self> {
        match key {
            [group] => serde_json::from_str(group).ok(),
            _ => None,
        }
    }
}

/// Where a page starts: after `after` (none on a first page), with `remaining` of the client's
/// `$top` still to return (none without one).
pub(super) struct Position<K> {
    pub(crate) after: Option<K>,
    pub(crate) remaining: Option<u64>,
}

impl<K> Position<K> {
    /// Whether this page continues from a skip token.
    pub(crate) fn resumed(&self) -> bool {
        self.after.is_some()
    }
}

/// One collection's paging.
pub(super) struct Paging {
    scope: String,
    path: String,
    path_parts: Vec<String>,
    options: Vec<(&'static str, Option<String>)>,
}

impl Paging {
    /// `scope` names the collection (with its record for children), `path` is where next links
    /// point, `options` the query options a next link repeats, in order.
    pub fn new(scope: impl Into<String>, path: impl Into<String>, options: &[(&'static str, Option<&str>)]) -> Self {
        Self {
            scope: scope.into(),
            path: path.into(),
            path_parts: Vec::new(),
            options: options
                .iter()
                .map(|(name, value)| (*name, value.map(str::to_owned)))
                .collect(),
        }
    }

    /// Binds tokens also to a part of the path that chooses the rows.
    pub(crate) fn bound_to_path(mut self, part: impl Into<String>) -> Self {
        self.path_parts.push(part.into());
        self
    }

    fn fingerprint(&self) -> String {
        let mut fingerprint = self.scope.clone();
        for part in &self.path_parts {
            fingerprint.push('|');
            fingerprint.push_str(part);
        }
        for (_, value) in &self.options {
            fingerprint.push('|');
            fingerprint.push_str(value.as_deref().unwrap_or("\u{0}"));
        }
        fingerprint
    }

    /// Where the requested page starts: from the request's `$skiptoken` if it has one (which must
    /// have been issued for this collection and these options), else the first page under `top`.
    pub(crate) fn position<K: PageKey>(&self, skiptoken: Option<&str>, top: Option<u64>) -> Result<Position<K>> {
        let Some(text) = skiptoken else {
            return Ok(Position {
                after: None,
                remaining: top,
            });
        };
        let token = query::decode_skiptoken(text, &self.fingerprint())?;
        let after = K::from_key(&token.key).ok_or_else(invalid_skiptoken)?;
        Ok(Position {
            after: Some(after),
            remaining: token.remaining,
        })
    }

    /// The link to the page after `last`, with `remaining` of the client's `$top` left.
    pub(crate) fn next_link<K: PageKey>(&self, ctx: &RequestContext, last: &K, remaining: Option<u64>) -> String {
        let token = SkipToken {
            key: last.to_key(),
            remaining,
        };
        let mut options: Vec<(&str, String)> = self
            .options
            .iter()
            .filter_map(|(name, value)| value.clone().map(|value| (*name, value)))
            .collect();
        options.push(("$skiptoken", query::encode_skiptoken(&token, &self.fingerprint())));
        link(ctx, &self.path, &options)
    }
}

/// What is left of `$top` after a page of `size`, and whether a next link is due: only when the
/// store had more and the client wants more.
pub(super) fn after_page(more: bool, remaining: Option<u64>, size: u64) -> Option<Option<u64>> {
    let left = remaining.map(|r| r.saturating_sub(size));
    (more && left != Some(0)).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_malformed_keys_are_refused() {
        let cursor = RecordCursor {
            start: Timestamp::from_ticks(42),
            id: "r|1".to_owned(),
        };
        let key = cursor.to_key();
        assert_eq!(RecordCursor::from_key(&key), Some(cursor));
        assert_eq!(i64::from_key(&7_i64.to_key()), Some(7));
        let group = vec![Some("u".to_owned()), None];
        assert_eq!(Vec::<Option<String>>::from_key(&group.to_key()), Some(group));
        assert_eq!(i64::from_key(&["x".to_owned()]), None);
        assert_eq!(RecordCursor::from_key(&["1".to_owned()]), None);
    }

    #[test]
    fn a_token_is_bound_to_the_scope_the_path_and_the_options() {
        let paging = Paging::new("sessions|r1", "p", &[("$select", Some("id")), ("$count", None)]);
        assert_eq!(paging.fingerprint(), "sessions|r1|id|\u{0}");
        let logs = Paging::new("pstnCall", "p", &[("$count", None)]).bound_to_path("from,to");
        assert_eq!(logs.fingerprint(), "pstnCall|from,to|\u{0}");
        let token = query::encode_skiptoken(
            &SkipToken {
                key: vec!["3".to_owned()],
                remaining: Some(5),
            },
            &paging.fingerprint(),
        );
        let resumed: Position<i64> = paging.position(Some(&token), None).unwrap();
        assert_eq!((resumed.after, resumed.remaining), (Some(3), Some(5)));
        let other = Paging::new("sessions|r2", "p", &[("$select", Some("id")), ("$count", None)]);
        assert!(other.position::<i64>(Some(&token), None).is_err());
        let first: Position<i64> = paging.position(None, Some(9)).unwrap();
        assert!(!first.resumed() && first.remaining == Some(9));
    }

    #[test]
    fn a_next_link_is_due_only_when_more_is_stored_and_wanted() {
        assert_eq!(after_page(true, None, 10), Some(None));
        assert_eq!(after_page(true, Some(25), 10), Some(Some(15)));
        assert_eq!(after_page(true, Some(10), 10), None);
        assert_eq!(after_page(false, Some(25), 10), None);
    }
}
