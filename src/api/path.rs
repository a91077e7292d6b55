//! The Graph resource paths we serve, parsed from the raw URL path after `/v1.0/`, and
//! `Target`, what a request's whole path addresses.
//!
//! Keys arrive as segments (`/callRecords/{id}`, what the SDKs send) or in OData parentheses
//! (`/callRecords('{id}')`, what Graph's own links use); both resolve the same. Fixed segments
//! match case-insensitively, ids exactly; each segment is percent-decoded once.
//! Ingest refuses ids that either form would misread (`model::NAVIGATION_SEGMENTS`).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::clock::Timestamp;
use crate::model::{DateTimeOffset, LogKind, NAVIGATION_SEGMENTS};

/// Why a path names no resource: a 400 as in OData, with the parameter at fault if there is one.
/// Unlike `ApiError` it can be cloned, so a parsed `Target` can live in a request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathError {
    pub(crate) message: String,
    pub(crate) target: Option<String>,
}

impl PathError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            target: None,
        }
    }

    fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub(crate) fn unknown_segment(segment: &str) -> Self {
        Self::new(format!("Resource not found for the segment '{segment}'."))
    }
}

/// What a request's path addresses. The authenticate middleware parses it once and puts it in
/// the request's extensions, so the roles a request needs, the throttle buckets it takes from and
/// the handler that serves it all follow the same reading of the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `/ingest/…`.
    Ingest,
    /// `/analytics/…`: what the store computes from the records, read with the records' role.
    Analytics,
    /// `/export/…`: the records (or, with `logs`, the usage-log rows) as files.
    Export { logs: bool },
    /// Under `/v1.0/` or `/beta/`: the resource, or why the rest of the path names none.
    Graph(Result<Resource, PathError>),
    /// Anything else: `/healthz`, `/metrics`, the issuer's endpoints, paths nothing serves.
    Other,
}

impl Target {
    /// Reads a request's URL path (without the query). The prefixes match case-insensitively,
    /// as they always have for roles: a differently cased one reaches no handler, but it is
    /// still never a way around a role.
    pub(crate) fn of(path: &str) -> Self {
        let prefix = |name: &str| {
            path.get(..name.len())
                .filter(|head| head.eq_ignore_ascii_case(name))
                .map(|_| &path[name.len()..])
        };
        if prefix("/ingest/").is_some() {
            Target::Ingest
        } else if prefix("/analytics/").is_some() {
            Target::Analytics
        } else if let Some(what) = prefix("/export/") {
            Target::Export {
                logs: crate::export::What::parse(what).is_some_and(|what| what.log_kind().is_some()),
            }
        } else if let Some(rest) = prefix("/v1.0/").or_else(|| prefix("/beta/")) {
            Target::Graph(parse(rest))
        } else if path.eq_ignore_ascii_case("/v1.0") || path.eq_ignore_ascii_case("/beta") {
            Target::Graph(Ok(Resource::ServiceDocument))
        } else {
            Target::Other
        }
    }

    /// The resource a Graph handler serves, or the 400 for a path that names none.
    pub(crate) fn into_resource(self) -> Result<Resource, PathError> {
        match self {
            Target::Graph(parsed) => parsed,
            Target::Ingest | Target::Analytics | Target::Export { .. } | Target::Other => {
                Err(PathError::unknown_segment(""))
            }
        }
    }
}

/// A resource of the call records surface (the paths the CSDL and the SDK builders define).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    /// The version's root (`/v1.0`): the OData service document.
    ServiceDocument,
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
    /// A usage-log function (`getPstnCalls`, `getDirectRoutingCalls`; in beta also `getSmsLog`,
    /// `getPstnBlockedUsersLog`, `getPstnOnlineMeetingDialoutReport`), with its parameters.
    Function(LogKind, FunctionRange),
}

impl Resource {
    /// The path after the version with every id replaced by a placeholder: what `/metrics`
    /// labels a request with, so the labels stay few however many records there are.
    pub(crate) fn template(&self) -> Cow<'static, str> {
        let fixed = match self {
            Resource::ServiceDocument => "",
            Resource::Metadata => "/$metadata",
            Resource::CallRecords => "/communications/callRecords",
            Resource::CallRecordsCount => "/communications/callRecords/$count",
            Resource::CallRecord(_) => "/communications/callRecords/{id}",
            Resource::Sessions(_) => "/communications/callRecords/{id}/sessions",
            Resource::SessionsCount(_) => "/communications/callRecords/{id}/sessions/$count",
            Resource::Session(..) => "/communications/callRecords/{id}/sessions/{id}",
            Resource::Segments(..) => "/communications/callRecords/{id}/sessions/{id}/segments",
            Resource::SegmentsCount(..) => "/communications/callRecords/{id}/sessions/{id}/segments/$count",
            Resource::Segment(..) => "/communications/callRecords/{id}/sessions/{id}/segments/{id}",
            Resource::Participants(_) => "/communications/callRecords/{id}/participants_v2",
            Resource::ParticipantsCount(_) => "/communications/callRecords/{id}/participants_v2/$count",
            Resource::Participant(..) => "/communications/callRecords/{id}/participants_v2/{id}",
            Resource::Organizer(_) => "/communications/callRecords/{id}/organizer_v2",
            Resource::Function(kind, _) => {
                return format!("/communications/callRecords/{}(…)", function_name(*kind)).into();
            }
        };
        fixed.into()
    }
}

/// The parameters of a usage-log function: the half-open range `[from, to)` for every function, and
/// the spelling the links we write repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FunctionRange {
    pub(crate) from: DateTimeOffset,
    pub(crate) to: DateTimeOffset,
}

/// Graph's documented limit on a function's range.
pub(crate) const MAX_FUNCTION_RANGE_DAYS: i64 = 90;

const FUNCTION_NAMESPACE: &str = "microsoft.graph.callrecords.";

fn function_kind(name: &str) -> Option<LogKind> {
    let lowered = name.to_ascii_lowercase();
    match lowered.strip_prefix(FUNCTION_NAMESPACE).unwrap_or(&lowered) {
        "getpstncalls" => Some(LogKind::PstnCall),
        "getdirectroutingcalls" => Some(LogKind::DirectRoutingCall),
        "getsmslog" => Some(LogKind::SmsLog),
        "getpstnblockeduserslog" => Some(LogKind::PstnBlockedUser),
        "getpstnonlinemeetingdialoutreport" => Some(LogKind::PstnOnlineMeetingDialout),
        _ => None,
    }
}

/// The canonical name of a function, as our links write it.
pub(crate) fn function_name(kind: LogKind) -> &'static str {
    match kind {
        LogKind::PstnCall => "getPstnCalls",
        LogKind::DirectRoutingCall => "getDirectRoutingCalls",
        LogKind::SmsLog => "getSmsLog",
        LogKind::PstnBlockedUser => "getPstnBlockedUsersLog",
        LogKind::PstnOnlineMeetingDialout => "getPstnOnlineMeetingDialoutReport",
    }
}

fn parameter_error(name: &str, reason: impl std::fmt::Display) -> PathError {
    PathError::new(format!("The parameter '{name}' {reason}")).with_target(name)
}

/// One parameter value: an unquoted (or quoted) DateTimeOffset, or a date meaning its midnight
/// in UTC, as the docs write it (`2019-11-01`).
fn parse_parameter(name: &str, raw: &str) -> Result<DateTimeOffset, PathError> {
    let text = raw.trim();
    let text = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(parameter_error(
            name,
            "has no value; give a date such as 2019-11-01 or a time such as 2019-11-01T00:00:00Z.",
        ));
    }
    if text.len() == 10 {
        if let Ok(value) = DateTimeOffset::parse(&format!("{text}T00:00:00Z")) {
            return Ok(value);
        }
    }
    // A `+` offset that went through form decoding arrives as a space.
    let repaired = text.replace(' ', "+");
    DateTimeOffset::parse(&repaired).map_err(|_| {
        parameter_error(name, format!("has the value '{text}', which is not a date such as 2019-11-01 or a time such as 2019-11-01T00:00:00Z."))
    })
}

/// Parses `fromDateTime=…,toDateTime=…` in either order. msgraph-sdk 1.65.0 sends the two with
/// no comma between them (a bug in std-uritemplate 2.0.12, its URI-template library), so each
/// value runs to the start of the other parameter's name rather than to a comma.
pub(crate) fn parse_function_range(text: &str) -> Result<FunctionRange, PathError> {
    let lowered = text.to_ascii_lowercase();
    let position = |name: &str| lowered.find(&format!("{}=", name.to_ascii_lowercase()));
    let from_at = position("fromDateTime").ok_or_else(|| parameter_error("fromDateTime", "is required."))?;
    let to_at = position("toDateTime").ok_or_else(|| parameter_error("toDateTime", "is required."))?;
    let value = |start: usize, name_len: usize, other: usize| {
        let begin = start + name_len + 1;
        let end = if other > start { other } else { text.len() };
        text[begin..end].trim_end_matches([',', ' '])
    };
    let from_text = value(from_at, "fromDateTime".len(), to_at);
    let to_text = value(to_at, "toDateTime".len(), from_at);
    let from = parse_parameter("fromDateTime", from_text)?;
    let to = parse_parameter("toDateTime", to_text)?;
    if to < from {
        return Err(parameter_error(
            "toDateTime",
            format!("({to}) must not be before fromDateTime ({from})."),
        ));
    }
    let longest = std::time::Duration::from_secs(MAX_FUNCTION_RANGE_DAYS.unsigned_abs() * 86_400);
    if Timestamp::from(to).duration_since(Timestamp::from(from)) > longest {
        return Err(PathError::new(format!(
            "The date range cannot exceed {MAX_FUNCTION_RANGE_DAYS} days: fromDateTime is {from} and toDateTime is {to}."
        ))
        .with_target("toDateTime"));
    }
    Ok(FunctionRange { from, to })
}

/// One decoded path segment: a name with an optional key in parentheses.
struct Segment {
    raw: String,
    name: String,
    key: Option<String>,
}

fn decode(raw: &str) -> Result<String, PathError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| {
            PathError::new(format!(
                "The path segment '{raw}' is not valid UTF-8 after percent-decoding."
            ))
        })
}

fn parse_segment(raw: &str) -> Result<Segment, PathError> {
    let text = decode(raw)?;
    if let Some(open) = text.find('(') {
        let Some(inner) = text[open + 1..].strip_suffix(')') else {
            return Err(PathError::unknown_segment(&text));
        };
        let key = match inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
            Some(quoted) => quoted.replace("''", "'"),
            None => inner.to_owned(),
        };
        if key.is_empty() {
            return Err(PathError::unknown_segment(&text));
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
        Some(next) if !next.name.starts_with('$') && next.key.is_none() && !is_navigation(&next.name) => {
            segments.next().map(|segment| segment.raw.clone())
        }
        _ => None,
    }
}

fn is_navigation(name: &str) -> bool {
    NAVIGATION_SEGMENTS.iter().any(|nav| nav.eq_ignore_ascii_case(name))
}

fn is(segment: &Segment, name: &str) -> bool {
    segment.name.eq_ignore_ascii_case(name)
}

/// Parses the part of the path after `/v1.0/`.
pub fn parse(path: &str) -> Result<Resource, PathError> {
    if path.trim_end_matches('/').is_empty() {
        return Ok(Resource::ServiceDocument);
    }
    let raw_segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let segments = raw_segments
        .iter()
        .map(|raw| parse_segment(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut iter = segments.iter().peekable();
    let unknown = |segment: &Segment| PathError::unknown_segment(&segment.raw);

    let first = iter.next().ok_or_else(|| PathError::unknown_segment(""))?;
    if is(first, "$metadata") && first.key.is_none() && iter.peek().is_none() {
        return Ok(Resource::Metadata);
    }
    if !is(first, "communications") || first.key.is_some() {
        return Err(unknown(first));
    }
    let Some(collection) = iter.next() else {
        return Err(PathError::unknown_segment("communications"));
    };
    if !is(collection, "callRecords") {
        return Err(unknown(collection));
    }
    let Some(record_id) = take_keyed(&mut iter, collection) else {
        return match iter.next() {
            None => Ok(Resource::CallRecords),
            Some(next) if next.key.is_some() && function_kind(&next.name).is_some() => {
                let kind = function_kind(&next.name).expect("checked by the guard");
                let range = parse_function_range(next.key.as_deref().unwrap_or_default())?;
                match iter.next() {
                    None => Ok(Resource::Function(kind, range)),
                    Some(extra) => Err(unknown(extra)),
                }
            }
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
                Some(segments) if is(segments, "segments") => match take_keyed(&mut iter, segments) {
                    Some(segment_id) => Resource::Segment(record_id, session_id, segment_id),
                    None => match iter.next() {
                        None => Resource::Segments(record_id, session_id),
                        Some(next) if is(next, "$count") => Resource::SegmentsCount(record_id, session_id),
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
        assert_eq!(ok("communications/callRecords/$count"), Resource::CallRecordsCount);
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
        assert_eq!(ok(""), Resource::ServiceDocument);
        assert_eq!(Target::of("/v1.0"), Target::Graph(Ok(Resource::ServiceDocument)));
        assert_eq!(Target::of("/beta/"), Target::Graph(Ok(Resource::ServiceDocument)));
    }

    #[test]
    fn function_parameters_in_every_form_clients_send() {
        let expect = |path: &str, kind: LogKind, from: &str, to: &str| {
            let Resource::Function(got_kind, range) = ok(path) else {
                panic!("{path} is not a function")
            };
            assert_eq!(
                (got_kind, range.from.to_string(), range.to.to_string()),
                (kind, from.to_owned(), to.to_owned()),
                "{path}"
            );
        };
        let pstn = LogKind::PstnCall;
        expect(
            "communications/callRecords/getPstnCalls(fromDateTime=2019-11-01,toDateTime=2019-12-01)",
            pstn,
            "2019-11-01T00:00:00Z",
            "2019-12-01T00:00:00Z",
        );
        expect("communications/callRecords/microsoft.graph.callRecords.getPstnCalls(fromDateTime=2019-11-01T00:00:00Z,toDateTime=2019-11-02T00:00:00Z)", pstn, "2019-11-01T00:00:00Z", "2019-11-02T00:00:00Z");
        expect("communications/callRecords/microsoft.graph.callRecords.getDirectRoutingCalls(fromDateTime=2026-10-09T12%3A00%3A00%2B00%3A00toDateTime=2026-10-10T12%3A00%3A00.123456%2B00%3A00)", LogKind::DirectRoutingCall, "2026-10-09T12:00:00Z", "2026-10-10T12:00:00.123456Z");
        expect(
            "communications/callRecords/getPstnCalls(toDateTime=2019-11-02T00:00:00-05:30,fromDateTime=2019-11-01)",
            pstn,
            "2019-11-01T00:00:00Z",
            "2019-11-02T05:30:00Z",
        );
        expect(
            "communications/callRecords/GETPSTNCALLS(fromDateTime='2019-11-01',toDateTime='2019-11-01')",
            pstn,
            "2019-11-01T00:00:00Z",
            "2019-11-01T00:00:00Z",
        );
        expect(
            "communications/callRecords/getSmsLog(fromDateTime=2019-11-01,toDateTime=2019-11-03)",
            LogKind::SmsLog,
            "2019-11-01T00:00:00Z",
            "2019-11-03T00:00:00Z",
        );
    }

    #[test]
    fn function_parameter_errors_name_the_parameter() {
        for (params, message) in [
            ("toDateTime=2019-11-01", "The parameter 'fromDateTime' is required."),
            ("fromDateTime=2019-11-01", "The parameter 'toDateTime' is required."),
            ("fromDateTime=yesterday,toDateTime=2019-11-01", "The parameter 'fromDateTime' has the value 'yesterday', which is not a date such as 2019-11-01 or a time such as 2019-11-01T00:00:00Z."),
            ("fromDateTime=,toDateTime=2019-11-01", "The parameter 'fromDateTime' has no value; give a date such as 2019-11-01 or a time such as 2019-11-01T00:00:00Z."),
            ("fromDateTime=2019-11-02,toDateTime=2019-11-01", "The parameter 'toDateTime' (2019-11-01T00:00:00Z) must not be before fromDateTime (2019-11-02T00:00:00Z)."),
            ("fromDateTime=2019-01-01,toDateTime=2019-04-02", "The date range cannot exceed 90 days: fromDateTime is 2019-01-01T00:00:00Z and toDateTime is 2019-04-02T00:00:00Z."),
        ] {
            let error = parse(&format!("communications/callRecords/getPstnCalls({params})")).unwrap_err();
            assert_eq!(error.message, message, "{params}");
        }
        assert!(
            parse_function_range("fromDateTime=2019-01-01,toDateTime=2019-04-01").is_ok(),
            "exactly 90 days is allowed"
        );
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
