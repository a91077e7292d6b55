//! The three properties Graph retired: `callRecord.organizer`, `callRecord.participants` and
//! `participantEndpoint.identity`. The CSDL marks them deprecated in favour of `organizer_v2`,
//! `participants_v2` and `associatedIdentity`, and Graph stopped filling them on 2026-06-30: it
//! serves `organizer` and `identity` as null and `participants` as `[]`.
//!
//! Ingest still takes them. What a sender puts in them fills their successors when those are
//! absent ([`retire`]); then they are stored as Graph serves them now, so the common read copies
//! stored text. `serve --derive-retired-properties` fills them again at read, from their
//! successors, for apps still moving off them ([`organizer_from`], [`participants_from`],
//! [`endpoints`]). Records stored before this rule may still hold derived values; reads recognise
//! them ([`record_is_current`], [`session_is_current`]) and serve them by the same rule.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::types::{CallRecord, CommunicationsIdentitySet, Endpoint, Identity, IdentitySet, Participant};

/// At most this many identities were ever derived into `participants`: Graph's cap on it.
pub(crate) const MAX_DERIVED_PARTICIPANTS: usize = 130;

/// The tail of a stored record document's members before `organizer_v2` (or before its end)
/// when it holds the retired properties as Graph serves them now. `model::CallRecord` writes
/// `participants` last before `organizer_v2`, so this text can only be those two members.
const RETIRED_AS_SERVED: &str = r#""organizer":null,"participants":[]"#;

/// Moves what a sender gave in the retired properties to their successors (where those are
/// absent) and empties them.
pub(crate) fn retire(record: &mut CallRecord) {
    record.organizer = None;
    record.participants = Some(Vec::new());
    for session in record.sessions.iter_mut().flatten() {
        retire_endpoint(&mut session.caller);
        retire_endpoint(&mut session.callee);
        for segment in session.segments.iter_mut().flatten() {
            retire_endpoint(&mut segment.caller);
            retire_endpoint(&mut segment.callee);
        }
    }
}

fn retire_endpoint(endpoint: &mut Option<Endpoint>) {
    if let Some(Endpoint::Participant(participant)) = endpoint {
        if let Some(identity_set) = participant.identity.take() {
            if participant.associated_identity.is_none() {
                participant.associated_identity = [identity_set.user, identity_set.application, identity_set.device]
                    .into_iter()
                    .flatten()
                    .next();
            }
        }
    }
}

/// Whether a stored record's members before `organizer_v2` (all of them when it has none) hold
/// the retired properties as served; false for documents stored with derived values.
pub(crate) fn record_is_current(members_before_organizer: &str) -> bool {
    members_before_organizer.ends_with(RETIRED_AS_SERVED)
}

/// Whether a stored session document may be served as it is: no endpoint in it has an
/// `identity`. In our compact text an object value of a member named `identity` can only appear
/// as these characters (quotes inside strings are escaped); only participant endpoints have such
/// a member in a session, so a match at worst sends a current document the slower way.
pub(crate) fn session_is_current(document: &str) -> bool {
    memchr::memmem::find(document.as_bytes(), br#""identity":{"#).is_none()
}

/// `organizer` as served with derivation on: the identity set of `organizer_v2`, from its JSON.
pub(crate) fn organizer_from(organizer_v2: &str) -> serde_json::Result<String> {
    let organizer: Option<Participant> = serde_json::from_str(organizer_v2)?;
    let identity_set = organizer
        .as_ref()
        .and_then(|organizer| organizer.identity.as_ref())
        .map(CommunicationsIdentitySet::to_identity_set);
    serde_json::to_string(&identity_set)
}

/// `participants` as served with derivation on: the identity sets of the first
/// participants_v2, from their stored documents.
pub(crate) fn participants_from<S: AsRef<str>>(participants_v2: &[S]) -> serde_json::Result<String> {
    let mut identity_sets = Vec::new();
    for document in participants_v2 {
        let participant: Participant = serde_json::from_str(document.as_ref())?;
        if let Some(identity) = &participant.identity {
            identity_sets.push(identity.to_identity_set());
        }
        if identity_sets.len() == MAX_DERIVED_PARTICIPANTS {
            break;
        }
    }
    serde_json::to_string(&identity_sets)
}

/// A stored session document as served: every participant endpoint's `identity` null, or
/// derived from its `associatedIdentity` when `derive` is on.
pub(crate) fn session_text(document: &str, derive: bool) -> serde_json::Result<Cow<'_, str>> {
    if !derive && session_is_current(document) {
        return Ok(Cow::Borrowed(document));
    }
    let mut session: Map<String, Value> = serde_json::from_str(document)?;
    endpoints(&mut session, derive);
    Ok(Cow::Owned(serde_json::to_string(&session)?))
}

/// Applies the rule to the endpoints of a session or segment object and, for a session, of its
/// segments.
pub(crate) fn endpoints(entity: &mut Map<String, Value>, derive: bool) {
    for key in ["caller", "callee"] {
        if let Some(Value::Object(endpoint)) = entity.get_mut(key) {
            endpoint_identity(endpoint, derive);
        }
    }
    if let Some(Value::Array(segments)) = entity.get_mut("segments") {
        for segment in segments {
            if let Value::Object(segment) = segment {
                endpoints(segment, derive);
            }
        }
    }
}

fn endpoint_identity(endpoint: &mut Map<String, Value>, derive: bool) {
    let Some(slot) = endpoint.get("identity") else {
        return;
    };
    if slot.is_null() && !derive {
        return;
    }
    let derived = if derive {
        endpoint
            .get("associatedIdentity")
            .cloned()
            .and_then(|value| serde_json::from_value::<Option<Identity>>(value).ok().flatten())
            .map(|user| IdentitySet {
                user: Some(user),
                ..IdentitySet::default()
            })
            .and_then(|set| serde_json::to_value(set).ok())
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    endpoint.insert("identity".to_owned(), derived);
}
