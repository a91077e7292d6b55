//! The Graph resource paths we serve, parsed from the raw URL path after `/v1.0/`.
//!
//! Keys arrive as segments (`/callRecords/{id}`, what the SDKs send) or in OData parentheses
//! (`/callRecords('{id}')`, what Graph's own links use); both resolve the same. Fixed segments
//! match case-insensitively, ids exactly; each segment is percent-decoded once (spec §1).

use percent_encoding::percent_decode_str;

use super::error::ApiError;

/// A resource of the call records surface (spec §1, rows 1–7 and 10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Metadata,
    CallRecords,
    CallRecordsCount,
    CallRecord(String),
    Sessions(String),
    SessionsCount(String),
    Session(String, String),
    Segments(String, String),
    SegmentsCount(String, String),
    Segment(String, String, String),
    Participants(String),
    ParticipantsCount(String),
    Participant(String, String),
    Organizer(String),
}

/// One decoded path segment: a name with an optional key in parentheses.
struct Segment {
    raw: String,
    name: String,
    key: Option<String>,
}

fn decode(raw: &str) -> Result<String, ApiError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "The path segment '{raw}' is not valid UTF-8 after percent-decoding."
            ))
        })
}

fn parse_segment(raw: &str) -> Result<Segment, ApiError> {
    let text = decode(raw)?;
    if let Some(open) = text.find('(') {
        let Some(inner) = text[open + 1..].strip_suffix(')') else {
            return Err(ApiError::unknown_segment(&text));
        };
        let key = match inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
            Some(quoted) => quoted.replace("''", "'"),
            None => inner.to_owned(),
        };
        if key.is_empty() {
            return Err(ApiError::unknown_segment(&text));
        }
        return Ok(Segment {
            name: text[..open].to_owned(),
            key: Some(key),
            raw: text,
        });
    }
    Ok(Segment {
        name: text.clone(),
        key: None,
        raw: text,
    })
}

/// Reads `name` or `name(key)` then, when there was no parenthesised key, an optional key
/// segment; returns the key if any.
fn take_keyed<'a>(
    segments: &mut std::iter::Peekable<impl Iterator<Item = &'a Segment>>,
    keyed: &Segment,
) -> Option<String> {
    if let Some(key) = &keyed.key {
        return Some(key.clone());
    }
    match segments.peek() {
        Some(next)
            if !next.name.starts_with('$') && next.key.is_none() && !is_navigation(&next.name) =>
        {
            segments.next().map(|segment| segment.raw.clone())
        }
        _ => None,
    }
}

fn is_navigation(name: &str) -> bool {
    ["sessions", "segments", "participants_v2", "organizer_v2"]
        .iter()
        .any(|nav| nav.eq_ignore_ascii_case(name))
}

fn is(segment: &Segment, name: &str) -> bool {
    segment.name.eq_ignore_ascii_case(name)
}

/// Parses the part of the path after `/v1.0/`.
pub fn parse(path: &str) -> Result<Resource, ApiError> {
    let raw_segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let segments = raw_segments
        .iter()
        .map(|raw| parse_segment(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut iter = segments.iter().peekable();
    let unknown = |segment: &Segment| ApiError::unknown_segment(&segment.raw);

    let first = iter.next().ok_or_else(|| ApiError::unknown_segment(""))?;
    if is(first, "$metadata") && first.key.is_none() && iter.peek().is_none() {
        return Ok(Resource::Metadata);
    }
    if !is(first, "communications") || first.key.is_some() {
        return Err(unknown(first));
    }
    let Some(collection) = iter.next() else {
        return Err(ApiError::unknown_segment("communications"));
    };
    if !is(collection, "callRecords") {
        return Err(unknown(collection));
    }
    let Some(record_id) = take_keyed(&mut iter, collection) else {
        return match iter.next() {
            None => Ok(Resource::CallRecords),
            Some(next) if is(next, "$count") => match iter.next() {
                None => Ok(Resource::CallRecordsCount),
                Some(extra) => Err(unknown(extra)),
            },
            Some(next) => Err(unknown(next)),
        };
    };
    let Some(navigation) = iter.next() else {
        return Ok(Resource::CallRecord(record_id));
    };
    let resource = if is(navigation, "sessions") {
        match take_keyed(&mut iter, navigation) {
            None => match iter.next() {
                None => Resource::Sessions(record_id),
                Some(next) if is(next, "$count") => Resource::SessionsCount(record_id),
                Some(next) => return Err(unknown(next)),
            },
            Some(session_id) => match iter.next() {
                None => Resource::Session(record_id, session_id),
                Some(segments) if is(segments, "segments") => match take_keyed(&mut iter, segments)
                {
                    Some(segment_id) => Resource::Segment(record_id, session_id, segment_id),
                    None => match iter.next() {
                        None => Resource::Segments(record_id, session_id),
                        Some(next) if is(next, "$count") => {
                            Resource::SegmentsCount(record_id, session_id)
                        }
                        Some(next) => return Err(unknown(next)),
                    },
                },
                Some(next) => return Err(unknown(next)),
            },
        }
    } else if is(navigation, "participants_v2") {
        match take_keyed(&mut iter, navigation) {
            Some(participant_id) => Resource::Participant(record_id, participant_id),
            None => match iter.next() {
                None => Resource::Participants(record_id),
                Some(next) if is(next, "$count") => Resource::ParticipantsCount(record_id),
                Some(next) => return Err(unknown(next)),
            },
        }
    } else if is(navigation, "organizer_v2") && navigation.key.is_none() {
        Resource::Organizer(record_id)
    } else {
        return Err(unknown(navigation));
    };
    match iter.next() {
        None => Ok(resource),
        Some(extra) => Err(unknown(extra)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> Resource {
        parse(path).unwrap_or_else(|e| panic!("{path}: {}", e.message))
    }

    #[test]
    fn keys_as_segments_and_in_parentheses_resolve_the_same() {
        let id = "e523d2ed-2966-4b6b-925b-754a88034cc5";
        assert_eq!(
            ok(&format!("communications/callRecords/{id}")),
            Resource::CallRecord(id.into())
        );
        assert_eq!(
            ok(&format!("communications/callRecords('{id}')")),
            Resource::CallRecord(id.into())
        );
        assert_eq!(
            ok(&format!("communications/callRecords%28%27{id}%27%29")),
            Resource::CallRecord(id.into())
        );
        assert_eq!(
            ok(&format!("Communications/CALLRECORDS/{id}/Sessions")),
            Resource::Sessions(id.into())
        );
        assert_eq!(
            ok(&format!(
                "communications/callRecords('{id}')/sessions('s1')/segments/g1"
            )),
            Resource::Segment(id.into(), "s1".into(), "g1".into())
        );
        assert_eq!(
            ok("communications/callRecords/r/participants_v2/%2B5564981205182"),
            Resource::Participant("r".into(), "+5564981205182".into())
        );
        assert_eq!(
            ok("communications/callRecords/r/participants_v2/+1"),
            Resource::Participant("r".into(), "+1".into())
        );
        assert_eq!(
            ok("communications/callRecords('it''s')"),
            Resource::CallRecord("it's".into())
        );
    }

    #[test]
    fn counts_metadata_and_collections() {
        assert_eq!(ok("communications/callRecords"), Resource::CallRecords);
        assert_eq!(ok("communications/callRecords/"), Resource::CallRecords);
        assert_eq!(
            ok("communications/callRecords/$count"),
            Resource::CallRecordsCount
        );
        assert_eq!(
            ok("communications/callRecords/r/sessions/$count"),
            Resource::SessionsCount("r".into())
        );
        assert_eq!(
            ok("communications/callRecords/r/sessions/s/segments/$count"),
            Resource::SegmentsCount("r".into(), "s".into())
        );
        assert_eq!(
            ok("communications/callRecords/r/participants_v2/$count"),
            Resource::ParticipantsCount("r".into())
        );
        assert_eq!(
            ok("communications/callRecords/r/organizer_v2"),
            Resource::Organizer("r".into())
        );
        assert_eq!(ok("$metadata"), Resource::Metadata);
    }

    #[test]
    fn unknown_segments_are_named() {
        for (path, segment) in [
            ("communications/calls", "calls"),
            ("users", "users"),
            ("communications/callRecords/r/foo", "foo"),
            ("communications/callRecords/r/sessions/s/bar", "bar"),
            ("communications/callRecords/r/organizer_v2/x", "x"),
            ("communications/callRecords/$count/x", "x"),
        ] {
            let error = parse(path).unwrap_err();
            assert_eq!(
                error.message,
                format!("Resource not found for the segment '{segment}'."),
                "{path}"
            );
        }
        assert!(parse("communications/callRecords/%FF").is_err());
    }
}
