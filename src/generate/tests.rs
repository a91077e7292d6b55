//! Properties of the generator's output, checked against Graph's v1.0 schema rather than against
//! the generator's own constants: the enum lists and the usage-log property lists below are
//! copied from the CSDL (src/model/callRecords.csdl.xml).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::OffsetDateTime;

use super::{generate, ndjson_line, usage, wire, GenerateOptions, Generated};

const ENUMS: &[(&str, &[&str])] = &[
    ("type", &["unknown", "groupCall", "peerToPeer", "unknownFutureValue"]),
    (
        "modalities",
        &[
            "audio",
            "video",
            "videoBasedScreenSharing",
            "data",
            "screenSharing",
            "unknownFutureValue",
        ],
    ),
    (
        "platform",
        &[
            "unknown",
            "windows",
            "macOS",
            "iOS",
            "android",
            "web",
            "ipPhone",
            "roomSystem",
            "surfaceHub",
            "holoLens",
            "unknownFutureValue",
        ],
    ),
    (
        "productFamily",
        &[
            "unknown",
            "teams",
            "skypeForBusiness",
            "lync",
            "unknownFutureValue",
            "azureCommunicationServices",
        ],
    ),
    (
        "role",
        &[
            "unknown",
            "customBot",
            "skypeForBusinessMicrosoftTeamsGateway",
            "skypeForBusinessAudioVideoMcu",
            "skypeForBusinessApplicationSharingMcu",
            "skypeForBusinessCallQueues",
            "skypeForBusinessAutoAttendant",
            "mediationServer",
            "mediationServerCloudConnectorEdition",
            "exchangeUnifiedMessagingService",
            "mediaController",
            "conferencingAnnouncementService",
            "conferencingAttendant",
            "audioTeleconferencerController",
            "skypeForBusinessUnifiedCommunicationApplicationPlatform",
            "responseGroupServiceAnnouncementService",
            "gateway",
            "skypeTranslator",
            "skypeForBusinessAttendant",
            "responseGroupService",
            "voicemail",
            "unknownFutureValue",
        ],
    ),
    (
        "rating",
        &[
            "notRated",
            "bad",
            "poor",
            "fair",
            "good",
            "excellent",
            "unknownFutureValue",
        ],
    ),
    ("stage", &["unknown", "callSetup", "midcall", "unknownFutureValue"]),
    ("streamDirection", &["callerToCallee", "calleeToCaller"]),
    (
        "audioCodec",
        &[
            "unknown",
            "invalid",
            "cn",
            "pcma",
            "pcmu",
            "amrWide",
            "g722",
            "g7221",
            "g7221c",
            "g729",
            "multiChannelAudio",
            "muchv2",
            "opus",
            "satin",
            "satinFullband",
            "rtAudio8",
            "rtAudio16",
            "silk",
            "silkNarrow",
            "silkWide",
            "siren",
            "xmsRta",
            "unknownFutureValue",
        ],
    ),
    (
        "videoCodec",
        &[
            "unknown",
            "invalid",
            "av1",
            "h263",
            "h264",
            "h264s",
            "h264uc",
            "h265",
            "rtvc1",
            "rtVideo",
            "xrtvc1",
            "unknownFutureValue",
        ],
    ),
    (
        "connectionType",
        &["unknown", "wired", "wifi", "mobile", "tunnel", "unknownFutureValue"],
    ),
    (
        "networkTransportProtocol",
        &["unknown", "udp", "tcp", "unknownFutureValue"],
    ),
    (
        "wifiBand",
        &[
            "unknown",
            "frequency24GHz",
            "frequency50GHz",
            "frequency60GHz",
            "unknownFutureValue",
        ],
    ),
    (
        "wifiRadioType",
        &[
            "unknown",
            "wifi80211a",
            "wifi80211b",
            "wifi80211g",
            "wifi80211n",
            "wifi80211ac",
            "wifi80211ax",
            "unknownFutureValue",
        ],
    ),
    (
        "endpointType",
        &[
            "default",
            "voicemail",
            "skypeForBusiness",
            "skypeForBusinessVoipPhone",
            "unknownFutureValue",
        ],
    ),
    (
        "@odata.type",
        &[
            "#microsoft.graph.callRecords.participantEndpoint",
            "#microsoft.graph.callRecords.serviceEndpoint",
            "#microsoft.graph.callRecords.clientUserAgent",
            "#microsoft.graph.callRecords.serviceUserAgent",
            "#microsoft.graph.callRecords.userIdentity",
            "#microsoft.graph.userIdentity",
        ],
    ),
];

const DURATION_KEYS: &[&str] = &[
    "averageAudioNetworkJitter",
    "maxAudioNetworkJitter",
    "averageJitter",
    "maxJitter",
    "averageRoundTripTime",
    "maxRoundTripTime",
    "averageFreezeDuration",
    "rmsFreezeDuration",
    "roundTripTime",
];

const UNTIL: OffsetDateTime = datetime!(2024-05-01 00:00:00 UTC);

fn options(calls: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        calls,
        seed,
        days: 30,
        until: UNTIL,
    }
}

fn collect(options: &GenerateOptions) -> Vec<Generated> {
    let mut items = Vec::new();
    generate(options, |item| items.push(item));
    items
}

/// One 2,000-call run shared by the tests that only read it: every item, in emission order.
fn sample_items() -> &'static [Generated] {
    static RUN: OnceLock<Vec<Generated>> = OnceLock::new();
    RUN.get_or_init(|| collect(&options(2000, 7)))
}

/// The call records of the shared run, in emission order.
fn sample_run() -> &'static [Value] {
    static RECORDS: OnceLock<Vec<Value>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        sample_items()
            .iter()
            .filter_map(|item| match item {
                Generated::CallRecord(record) => Some(record.clone()),
                _ => None,
            })
            .collect()
    })
}

fn ndjson(options: &GenerateOptions) -> String {
    let mut text = String::new();
    generate(options, |item| text.push_str(&ndjson_line(item.value())));
    text
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {value}"))
}

fn parse_datetime(text: &str) -> OffsetDateTime {
    assert!(text.ends_with('Z'), "{text} is UTC with Z");
    if let Some((_, fraction)) = text.trim_end_matches('Z').split_once('.') {
        assert!((1..=7).contains(&fraction.len()), "{text} has 1 to 7 fraction digits");
        assert!(!fraction.ends_with('0'), "{text} trims trailing zeros");
    }
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn is_iso_duration(text: &str) -> bool {
    let Some(mut rest) = text.strip_prefix("PT") else {
        return false;
    };
    let mut parts = 0;
    for unit in ['H', 'M'] {
        if let Some((number, tail)) = rest.split_once(unit) {
            if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
                return false;
            }
            rest = tail;
            parts += 1;
        }
    }
    if let Some(seconds) = rest.strip_suffix('S') {
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
        let digits_ok = |digits: &str| digits.bytes().all(|byte| byte.is_ascii_digit());
        return !whole.is_empty() && digits_ok(whole) && digits_ok(fraction) && fraction.len() <= 7;
    }
    rest.is_empty() && parts > 0
}

/// Calls `visit(key, value)` for every property of every object inside `value`.
fn walk<'a>(value: &'a Value, visit: &mut impl FnMut(&'a str, &'a Value)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                visit(key, child);
                walk(child, visit);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, visit)),
        _ => {}
    }
}

fn sessions(record: &Value) -> &Vec<Value> {
    record["sessions"].as_array().expect("sessions is an array")
}

#[test]
fn same_options_give_identical_bytes_and_seeds_differ() {
    let first = ndjson(&options(300, 42));
    let second = ndjson(&options(300, 42));
    assert!(first == second, "two runs with the same options differ");
    assert_ne!(first, ndjson(&options(300, 43)));
    assert_eq!(first.lines().count(), collect(&options(300, 42)).len());
    assert!(first.contains(r#""callId":"#) && first.contains(r#""smsId":"#));
}

#[test]
fn each_call_appears_once_and_some_again_at_a_higher_version() {
    let records = sample_run();
    let mut seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (position, record) in records.iter().enumerate() {
        seen.entry(str_of(record, "id")).or_default().push(position);
    }
    assert_eq!(seen.len(), 2000);
    let republished: Vec<&Vec<usize>> = seen.values().filter(|positions| positions.len() > 1).collect();
    assert_eq!(records.len(), 2000 + republished.len());
    assert!(
        (20..=120).contains(&republished.len()),
        "{} re-published",
        republished.len()
    );
    for positions in republished {
        assert_eq!(positions.len(), 2);
        let (early, late) = (&records[positions[0]], &records[positions[1]]);
        assert!(late["version"].as_i64() > early["version"].as_i64());
        let modified = |record: &Value| parse_datetime(str_of(record, "lastModifiedDateTime"));
        assert!(modified(late) > modified(early));
        assert!(sessions(late).len() >= sessions(early).len());
        // Versions still pending when the calls run out are flushed at the end.
        let flushed = positions[1] + 12 >= records.len();
        assert!(
            positions[1] - positions[0] >= 2 || flushed,
            "the later version comes a few records later"
        );
    }
}

#[test]
fn ingest_accepts_every_record_and_its_ids() {
    let now = crate::model::DateTimeOffset::parse("2024-05-01T00:00:00Z").unwrap();
    for record in sample_run() {
        crate::ingest::prepare_record(record.to_string().as_bytes(), now)
            .unwrap_or_else(|error| panic!("{}: {error}", record["id"]));
    }
}

#[test]
fn every_record_has_the_required_properties() {
    let endpoint_types = [
        "#microsoft.graph.callRecords.participantEndpoint",
        "#microsoft.graph.callRecords.serviceEndpoint",
    ];
    for record in sample_run() {
        for key in ["id", "type", "lastModifiedDateTime", "startDateTime", "endDateTime"] {
            str_of(record, key);
        }
        assert!(record["version"].as_i64().is_some_and(|version| version >= 1));
        assert!(uuid::Uuid::parse_str(str_of(record, "id")).is_ok());
        assert!(!record["modalities"].as_array().expect("modalities").is_empty());
        let organizer = &record["organizer_v2"];
        str_of(organizer, "id");
        assert!(organizer["identity"].is_object() && organizer["administrativeUnitInfos"].is_array());
        let participants = record["participants_v2"].as_array().expect("participants_v2");
        assert!(!participants.is_empty());
        let ids: BTreeSet<&str> = participants
            .iter()
            .map(|participant| str_of(participant, "id"))
            .collect();
        assert_eq!(ids.len(), participants.len(), "participant ids are unique in a record");
        if record.get("participants").is_some() {
            assert!(record["organizer"].is_object());
            assert_eq!(
                record["participants"].as_array().map(Vec::len),
                Some(participants.len())
            );
        }
        match str_of(record, "type") {
            "peerToPeer" => {
                assert_eq!(participants.len(), 2);
                assert_eq!(sessions(record).len(), 1);
                assert!(record.get("joinWebUrl").is_none());
            }
            _ => {
                assert!(participants.len() >= 3 || record["version"] == 1, "{}", record["id"]);
                assert!(str_of(record, "joinWebUrl").starts_with("https://teams.microsoft.com/l/meetup-join/"));
            }
        }
        let session_ids: BTreeSet<&str> = sessions(record).iter().map(|session| str_of(session, "id")).collect();
        assert_eq!(session_ids.len(), sessions(record).len());
        for session in sessions(record) {
            assert!(!session["modalities"].as_array().expect("modalities").is_empty());
            let segments = session["segments"].as_array().expect("segments");
            assert!((1..=3).contains(&segments.len()));
            for endpoint in [&session["caller"], &session["callee"]].into_iter().chain(
                segments
                    .iter()
                    .flat_map(|segment| [&segment["caller"], &segment["callee"]]),
            ) {
                assert!(endpoint_types.contains(&str_of(endpoint, "@odata.type")));
                let user_agent = &endpoint["userAgent"];
                match str_of(user_agent, "@odata.type") {
                    "#microsoft.graph.callRecords.clientUserAgent" => {
                        str_of(user_agent, "platform");
                        str_of(user_agent, "productFamily");
                    }
                    "#microsoft.graph.callRecords.serviceUserAgent" => {
                        str_of(user_agent, "role");
                    }
                    other => panic!("unexpected userAgent type {other}"),
                }
            }
            let session_modalities: BTreeSet<&str> = session["modalities"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for segment in segments {
                str_of(segment, "id");
                // Early versions leave media out; when it is there it must match the modalities.
                let Some(media_lines) = segment.get("media").and_then(Value::as_array) else {
                    continue;
                };
                let mut labels = BTreeSet::new();
                for media in media_lines {
                    labels.insert(match str_of(media, "label") {
                        "main-audio" => "audio",
                        "main-video" => "video",
                        "applicationsharing-video" => "screenSharing",
                        other => panic!("unexpected media label {other}"),
                    });
                    let streams = media["streams"].as_array().expect("streams");
                    assert_eq!(streams.len(), 2);
                    for network in [&media["callerNetwork"], &media["calleeNetwork"]] {
                        assert!(network.is_object());
                        assert!(network
                            .get("traceRouteHops")
                            .is_none_or(|hops| hops.as_array().is_some_and(|h| !h.is_empty())));
                    }
                }
                assert_eq!(labels, session_modalities);
            }
        }
    }
}

#[test]
fn enum_values_come_from_the_schema_lists() {
    let allowed: BTreeMap<&str, &[&str]> = ENUMS.iter().copied().collect();
    let mut checked = 0;
    for record in sample_run() {
        walk(record, &mut |key, value| {
            let Some(members) = allowed.get(key) else {
                return;
            };
            let values: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for value in values {
                let text = value
                    .as_str()
                    .unwrap_or_else(|| panic!("{key} is a string, got {value}"));
                assert!(
                    members.contains(&text),
                    "{key}: {text} is not a member of the schema's enum"
                );
                checked += 1;
            }
        });
        for modality in record["modalities"].as_array().into_iter().flatten() {
            assert_ne!(modality, "unknown");
        }
    }
    assert!(checked > 100_000, "only {checked} enum values checked");
}

#[test]
fn times_are_well_formed_and_nested() {
    let window_start = UNTIL - time::Duration::days(30);
    for record in sample_run() {
        let start = parse_datetime(str_of(record, "startDateTime"));
        let end = parse_datetime(str_of(record, "endDateTime"));
        assert!(start <= end);
        assert!(
            window_start <= start && start < UNTIL,
            "start {start} outside the window"
        );
        assert!(parse_datetime(str_of(record, "lastModifiedDateTime")) >= end);
        let mut session_modalities = BTreeSet::new();
        for session in sessions(record) {
            let session_start = parse_datetime(str_of(session, "startDateTime"));
            let session_end = parse_datetime(str_of(session, "endDateTime"));
            assert!(start <= session_start && session_start <= session_end && session_end <= end);
            for modality in session["modalities"].as_array().into_iter().flatten() {
                session_modalities.insert(modality.as_str().expect("modality"));
            }
            for segment in session["segments"].as_array().into_iter().flatten() {
                let segment_start = parse_datetime(str_of(segment, "startDateTime"));
                let segment_end = parse_datetime(str_of(segment, "endDateTime"));
                assert!(session_start <= segment_start && segment_start <= segment_end && segment_end <= session_end);
            }
        }
        let record_modalities: BTreeSet<&str> = record["modalities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(record_modalities, session_modalities);
        walk(record, &mut |key, value| {
            if DURATION_KEYS.contains(&key) {
                let text = value.as_str().unwrap_or_else(|| panic!("{key} is a string"));
                assert!(is_iso_duration(text), "{key}: {text}");
            }
        });
    }
}

#[test]
fn long_meetings_and_unusual_identities_exist() {
    let records = sample_run();
    assert!(
        records.iter().any(|record| sessions(record).len() > 60),
        "no meeting with more than 60 sessions"
    );
    let participants = || {
        records
            .iter()
            .flat_map(|record| record["participants_v2"].as_array().into_iter().flatten())
    };
    let phone = participants()
        .find(|participant| participant["identity"]["phone"].is_object())
        .expect("a PSTN participant");
    let phone_id = str_of(phone, "id");
    assert!(
        phone_id.starts_with('+') && phone_id[1..].bytes().all(|byte| byte.is_ascii_digit()),
        "{phone_id}"
    );
    assert_eq!(phone["identity"]["phone"]["id"], phone_id);
    assert!(participants().any(|participant| participant["identity"]["guest"].is_object()));
    assert!(participants().any(|participant| participant["identity"]["azureCommunicationServicesUser"].is_object()));
    let mut acs_client = false;
    for record in records {
        walk(record, &mut |key, value| {
            acs_client |= key == "productFamily" && value == "azureCommunicationServices"
        });
    }
    assert!(acs_client);
}

#[test]
fn users_come_from_one_stable_directory() {
    let mut tenants = BTreeSet::new();
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for record in sample_run() {
        for participant in record["participants_v2"].as_array().into_iter().flatten() {
            let user = &participant["identity"]["user"];
            if user.is_object() {
                assert_eq!(str_of(user, "@odata.type"), "#microsoft.graph.userIdentity");
                tenants.insert(str_of(user, "tenantId"));
                users
                    .entry(str_of(user, "id"))
                    .or_default()
                    .insert(str_of(user, "userPrincipalName"));
            }
        }
    }
    assert_eq!(tenants.len(), 1);
    // max(20, 2000 / 20) accounts, including rooms.
    assert!(users.len() <= 100 && users.len() > 80, "{} users", users.len());
    assert!(users
        .values()
        .all(|upns| upns.len() == 1 && upns.iter().all(|upn| upn.ends_with("@contoso.com"))));
}

#[test]
fn distributions_are_roughly_as_designed() {
    // The last version of each call, so early versions without media don't skew the shares.
    let mut latest: BTreeMap<&str, &Value> = BTreeMap::new();
    for record in sample_run() {
        latest.insert(str_of(record, "id"), record);
    }
    let records: Vec<&Value> = latest.into_values().collect();
    let share = |count: usize, total: usize| count as f64 / total as f64;
    let peer_to_peer = records.iter().filter(|record| record["type"] == "peerToPeer").count();
    assert!((0.40..0.50).contains(&share(peer_to_peer, records.len())));

    let group_calls: Vec<&&Value> = records.iter().filter(|record| record["type"] == "groupCall").collect();
    let with_video = group_calls
        .iter()
        .filter(|record| {
            record["modalities"]
                .as_array()
                .is_some_and(|modalities| modalities.contains(&"video".into()))
        })
        .count();
    assert!(
        (0.30..0.50).contains(&share(with_video, group_calls.len())),
        "{with_video} of {}",
        group_calls.len()
    );

    let (mut n_sessions, mut failed, mut poor, mut streams, mut rated, mut participant_endpoints) = (0, 0, 0, 0, 0, 0);
    for record in &records {
        for session in sessions(record) {
            n_sessions += 1;
            failed += usize::from(session.get("failureInfo").is_some());
            for endpoint in [&session["caller"], &session["callee"]] {
                if endpoint["@odata.type"] == "#microsoft.graph.callRecords.participantEndpoint" {
                    participant_endpoints += 1;
                    rated += usize::from(endpoint.get("feedback").is_some());
                }
            }
        }
        walk(record, &mut |key, value| {
            if key == "averagePacketLossRate" {
                streams += 1;
                poor += usize::from(value.as_f64().is_some_and(|loss| loss >= 0.03));
            }
        });
    }
    assert!(
        (0.01..0.06).contains(&share(failed, n_sessions)),
        "{failed} of {n_sessions} sessions failed"
    );
    assert!(
        (0.10..0.25).contains(&share(poor, streams)),
        "{poor} of {streams} streams poor"
    );
    assert!(
        (0.03..0.12).contains(&share(rated, participant_endpoints)),
        "{rated} of {participant_endpoints} rated"
    );
}

#[test]
fn wire_formats_match_graph() {
    assert_eq!(wire::duration(160_000), "PT0.016S");
    assert_eq!(wire::duration(0), "PT0S");
    assert_eq!(wire::duration(905 * wire::SECOND / 10), "PT1M30.5S");
    assert_eq!(wire::duration(wire::HOUR), "PT1H");
    assert_eq!(wire::duration(wire::HOUR + 2 * wire::SECOND + 1), "PT1H2.0000001S");
    assert_eq!(wire::single(0.0), serde_json::json!(0));
    assert_eq!(wire::single(0.27).to_string(), "0.27");
    let graph_example = datetime!(2020-02-25 18:52:21.2169889 UTC);
    assert_eq!(
        wire::datetime(wire::ticks_of(graph_example), wire::Precision::Ticks),
        "2020-02-25T18:52:21.2169889Z"
    );
    assert_eq!(
        wire::datetime(wire::ticks_of(graph_example), wire::Precision::Seconds),
        "2020-02-25T18:52:21Z"
    );
    // Cross-check the hand-written calendar against the time crate over a spread of instants.
    let mut ticks = wire::ticks_of(datetime!(1999-12-31 23:59:59.9 UTC));
    for _ in 0..2000 {
        let text = wire::datetime(ticks, wire::Precision::Ticks);
        let parsed = parse_datetime(text.as_str().expect("string"));
        assert_eq!(wire::ticks_of(parsed), ticks, "{text}");
        ticks += 3 * wire::DAY + 7 * wire::HOUR + 1_234_567;
    }
}

/// Properties of `pstnCallLogRow`, from the beta CSDL (v1.0's and those of beta's `callLogRow`
/// base and its own).
const PSTN_KEYS: &[&str] = &[
    "administrativeUnitInfos",
    "clientLocalIpV4Address",
    "clientLocalIpV6Address",
    "clientPublicIpV4Address",
    "clientPublicIpV6Address",
    "otherPartyCountryCode",
    "callDurationSource",
    "calleeNumber",
    "callerNumber",
    "callId",
    "callType",
    "charge",
    "conferenceId",
    "connectionCharge",
    "currency",
    "destinationContext",
    "destinationName",
    "duration",
    "endDateTime",
    "id",
    "inventoryType",
    "licenseCapability",
    "operator",
    "startDateTime",
    "tenantCountryCode",
    "usageCountryCode",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

/// Properties of `directRoutingLogRow`, from the beta CSDL.
const DIRECT_ROUTING_KEYS: &[&str] = &[
    "administrativeUnitInfos",
    "otherPartyCountryCode",
    "transferorCorrelationId",
    "userCountryCode",
    "calleeNumber",
    "callEndSubReason",
    "callerNumber",
    "callType",
    "correlationId",
    "duration",
    "endDateTime",
    "failureDateTime",
    "finalSipCode",
    "finalSipCodePhrase",
    "id",
    "inviteDateTime",
    "mediaBypassEnabled",
    "mediaPathLocation",
    "signalingLocation",
    "startDateTime",
    "successfulCall",
    "trunkFullyQualifiedDomainName",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

/// Properties of the beta `smsLogRow` (with `administrativeUnitInfos` from its `callLogRow` base).
const SMS_KEYS: &[&str] = &[
    "administrativeUnitInfos",
    "callCharge",
    "currency",
    "destinationContext",
    "destinationName",
    "destinationNumber",
    "id",
    "licenseCapability",
    "otherPartyCountryCode",
    "sentDateTime",
    "smsId",
    "smsType",
    "smsUnits",
    "sourceNumber",
    "tenantCountryCode",
    "userCountryCode",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

/// Properties of the beta `pstnBlockedUsersLogRow`.
const BLOCKED_USER_KEYS: &[&str] = &[
    "blockDateTime",
    "blockReason",
    "remediationId",
    "userBlockMode",
    "userDisplayName",
    "userId",
    "userPrincipalName",
    "userTelephoneNumber",
];

/// Properties of the beta `pstnOnlineMeetingDialoutReport`, and the day ingest keys it by.
const DIALOUT_KEYS: &[&str] = &[
    "currency",
    "destinationContext",
    "totalCallCharge",
    "totalCalls",
    "totalCallSeconds",
    "usageDate",
    "usageLocation",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

fn blocked_user(item: &Generated) -> Option<&Value> {
    match item {
        Generated::PstnBlockedUser(row) => Some(row),
        _ => None,
    }
}

fn dialout(item: &Generated) -> Option<&Value> {
    match item {
        Generated::PstnOnlineMeetingDialout(row) => Some(row),
        _ => None,
    }
}

#[test]
fn the_dialout_report_sums_the_conference_dial_outs_of_each_day() {
    let entries = rows(dialout);
    assert!(!entries.is_empty());
    let cents = |value: &Value| value.to_string().replace('.', "").parse::<i64>().unwrap();
    let dial_outs: Vec<&Value> = rows(pstn)
        .into_iter()
        .filter(|row| row["callType"] == "conf_out")
        .collect();
    assert_eq!(
        entries.iter().map(|e| e["totalCalls"].as_i64().unwrap()).sum::<i64>(),
        dial_outs.len() as i64
    );
    assert_eq!(
        entries
            .iter()
            .map(|e| e["totalCallSeconds"].as_i64().unwrap())
            .sum::<i64>(),
        dial_outs
            .iter()
            .map(|row| row["duration"].as_i64().unwrap())
            .sum::<i64>()
    );
    assert_eq!(
        entries.iter().map(|e| cents(&e["totalCallCharge"])).sum::<i64>(),
        dial_outs
            .iter()
            .map(|row| cents(&row["charge"]) + cents(&row["connectionCharge"]))
            .sum::<i64>()
    );
    for entry in entries {
        assert!(
            entry["destinationContext"] == "Domestic" || entry["destinationContext"] == "International",
            "{entry}"
        );
        let day = time::Date::parse(
            str_of(entry, "usageDate"),
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        assert!(
            day >= (UNTIL - time::Duration::days(31)).date() && day <= UNTIL.date(),
            "{entry}"
        );
    }
}

#[test]
fn blocked_users_are_blocked_before_they_are_let_back() {
    let rows = rows(blocked_user);
    assert!(rows.iter().any(|row| row["userBlockMode"] == "blocked"));
    assert!(rows.iter().any(|row| row["userBlockMode"] == "unblocked"));
    let window_start = UNTIL - time::Duration::days(30);
    let mut last_mode: BTreeMap<&str, &Value> = BTreeMap::new();
    for row in rows {
        let at = parse_datetime(str_of(row, "blockDateTime"));
        assert!(window_start <= at && at < UNTIL, "{row}");
        if row["userBlockMode"] == "unblocked" {
            assert_eq!(
                last_mode.get(str_of(row, "userId")).copied(),
                Some(&Value::from("blocked")),
                "{row}"
            );
        }
        last_mode.insert(str_of(row, "userId"), &row["userBlockMode"]);
    }
}

/// RFC 3261 reason phrases for the final SIP codes Direct Routing rows may carry.
const SIP_PHRASES: &[(i64, &str)] = &[
    (403, "Forbidden"),
    (404, "Not Found"),
    (408, "Request Timeout"),
    (480, "Temporarily Unavailable"),
    (486, "Busy Here"),
    (487, "Request Terminated"),
    (488, "Not Acceptable Here"),
    (500, "Server Internal Error"),
    (503, "Service Unavailable"),
];

const NO_FAILURE: &str = "0001-01-01T00:00:00Z";

fn rows<'a>(kind: fn(&'a Generated) -> Option<&'a Value>) -> Vec<&'a Value> {
    sample_items().iter().filter_map(kind).collect()
}

fn pstn(item: &Generated) -> Option<&Value> {
    match item {
        Generated::PstnCall(row) => Some(row),
        _ => None,
    }
}

fn direct_routing(item: &Generated) -> Option<&Value> {
    match item {
        Generated::DirectRoutingCall(row) => Some(row),
        _ => None,
    }
}

fn sms(item: &Generated) -> Option<&Value> {
    match item {
        Generated::SmsLog(row) => Some(row),
        _ => None,
    }
}

/// Whether a number in a log matches a participant's E.164 id; `*` hides a digit.
fn same_number(logged: &str, number: &str) -> bool {
    logged.len() == number.len()
        && logged
            .bytes()
            .zip(number.bytes())
            .all(|(logged, digit)| logged == digit || logged == b'*' && digit.is_ascii_digit())
}

fn is_e164(number: &str, allow_mask: bool) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    let masked = digits.bytes().skip_while(u8::is_ascii_digit).count();
    (8..=15).contains(&digits.len())
        && digits.bytes().take_while(u8::is_ascii_digit).count() + masked == digits.len()
        && (masked == 0 || allow_mask && (3..=4).contains(&masked))
        && digits.bytes().skip_while(u8::is_ascii_digit).all(|byte| byte == b'*')
}

/// The latest version of every call, by id.
fn latest_records() -> BTreeMap<&'static str, &'static Value> {
    let mut latest = BTreeMap::new();
    for record in sample_run() {
        latest.insert(str_of(record, "id"), record);
    }
    latest
}

/// Log rows attributed to the call whose first version they follow, checking the emission
/// order on the way: a call's rows come right after its first version, never after a
/// re-published one or after a background row (SMS, failed Direct Routing call).
fn rows_by_call() -> (BTreeMap<&'static str, Vec<&'static Value>>, Vec<&'static Value>) {
    let latest = latest_records();
    let mut by_call: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    let mut standalone = Vec::new();
    let mut seen = BTreeSet::new();
    let mut current: Option<&str> = None;
    for item in sample_items() {
        match item {
            Generated::CallRecord(record) => {
                let id = str_of(record, "id");
                current = seen.insert(id).then_some(id);
            }
            Generated::PstnCall(row) => {
                let call = current.unwrap_or_else(|| panic!("{row} does not follow its call"));
                by_call.entry(call).or_default().push(row);
            }
            Generated::DirectRoutingCall(row) => {
                let correlation = str_of(row, "correlationId");
                let linked = current.filter(|call| {
                    sessions(latest[call])
                        .iter()
                        .any(|session| session["id"] == correlation)
                });
                match linked {
                    Some(call) => by_call.entry(call).or_default().push(row),
                    None => {
                        standalone.push(row);
                        current = None;
                    }
                }
            }
            Generated::SmsLog(_) | Generated::PstnBlockedUser(_) | Generated::PstnOnlineMeetingDialout(_) => {
                current = None
            }
        }
    }
    (by_call, standalone)
}

#[test]
fn every_pstn_participant_has_exactly_one_log_row_within_its_call() {
    let latest = latest_records();
    let (by_call, _) = rows_by_call();
    let (mut participants, mut direct) = (0, 0);
    for (id, record) in &latest {
        let phones: Vec<&str> = record["participants_v2"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|participant| participant["identity"]["phone"].is_object())
            .map(|participant| str_of(participant, "id"))
            .collect();
        let rows = by_call.get(id).cloned().unwrap_or_default();
        assert_eq!(rows.len(), phones.len(), "rows of {id}");
        let record_start = parse_datetime(str_of(record, "startDateTime"));
        let record_end = parse_datetime(str_of(record, "endDateTime"));
        let group = record["type"] == "groupCall";
        for phone in &phones {
            let matching: Vec<&&Value> = rows
                .iter()
                .filter(|row| {
                    same_number(str_of(row, "callerNumber"), phone) || same_number(str_of(row, "calleeNumber"), phone)
                })
                .collect();
            assert_eq!(matching.len(), 1, "{phone} in {id}: {matching:?}");
            let row = matching[0];
            participants += 1;
            direct += usize::from(row.get("finalSipCode").is_some());
            let start = parse_datetime(str_of(row, "startDateTime"));
            assert!(record_start <= start && start <= record_end, "{row}");
            if let Some(end) = row["endDateTime"].as_str() {
                let end = parse_datetime(end);
                assert!(start <= end && end <= record_end, "{row}");
            }
            // The Teams user on the other end: the organizer of a meeting, the peer otherwise.
            let user = str_of(row, "userId");
            if group {
                assert_eq!(user, str_of(&record["organizer_v2"], "id"), "{row}");
            } else {
                let peer = record["participants_v2"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|participant| participant["id"] != *phone)
                    .expect("a peer");
                assert_eq!(user, str_of(peer, "id"));
                assert!(str_of(row, "userPrincipalName").ends_with("@contoso.com"));
            }
            if let Some(call_type) = row["callType"].as_str().filter(|_| row.get("callId").is_some()) {
                assert_eq!(call_type.starts_with("conf"), group, "{row}");
                assert_eq!(row["conferenceId"].is_string(), group, "{row}");
            }
        }
    }
    assert!(participants > 200, "{participants} PSTN participants");
    let share = direct as f64 / participants as f64;
    assert!(
        (0.25..0.55).contains(&share),
        "{direct} of {participants} over Direct Routing"
    );
}

#[test]
fn republished_calls_bring_no_second_set_of_rows() {
    let (by_call, standalone) = rows_by_call();
    let attributed: usize = by_call.values().map(Vec::len).sum();
    let all = rows(pstn).len() + rows(direct_routing).len();
    assert_eq!(attributed + standalone.len(), all);
    let mut ids = BTreeSet::new();
    for row in rows(pstn).into_iter().chain(rows(direct_routing)).chain(rows(sms)) {
        assert!(ids.insert(str_of(row, "id")), "row id repeats: {row}");
        assert!(uuid::Uuid::parse_str(str_of(row, "id")).is_ok());
    }
}

#[test]
fn log_rows_write_every_declared_property_and_nothing_else() {
    for (rows, keys) in [
        (rows(pstn), PSTN_KEYS),
        (rows(direct_routing), DIRECT_ROUTING_KEYS),
        (rows(sms), SMS_KEYS),
        (rows(blocked_user), BLOCKED_USER_KEYS),
        (rows(dialout), DIALOUT_KEYS),
    ] {
        assert!(rows.len() > 3, "only {} rows", rows.len());
        let expected: BTreeSet<&str> = keys.iter().copied().collect();
        for row in rows {
            let actual: BTreeSet<&str> = row
                .as_object()
                .expect("rows are objects")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(actual, expected, "{row}");
        }
    }
}

#[test]
fn pstn_rows_are_consistent() {
    let currencies = ["USD", "EUR", "GBP"];
    for row in rows(pstn) {
        let start = parse_datetime(str_of(row, "startDateTime"));
        let end = parse_datetime(str_of(row, "endDateTime"));
        let duration = row["duration"].as_i64().expect("duration");
        assert_eq!((end - start).whole_seconds(), duration, "{row}");
        assert!((0..=i64::from(i32::MAX)).contains(&duration));
        assert!(is_e164(str_of(row, "callerNumber"), true), "{row}");
        assert!(is_e164(str_of(row, "calleeNumber"), true), "{row}");
        assert!(!str_of(row, "callerNumber").contains('*') || !str_of(row, "calleeNumber").contains('*'));
        let call_id = str_of(row, "callId");
        let (numbers, host) = call_id.split_once('@').expect("callId has a host");
        assert!(
            numbers.split('_').count() == 2 && host.split('.').count() == 4,
            "{call_id}"
        );
        assert!(currencies.contains(&str_of(row, "currency")));
        for key in ["tenantCountryCode", "usageCountryCode"] {
            let code = str_of(row, key);
            assert!(code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()));
        }
        let call_type = str_of(row, "callType");
        let inbound = call_type.ends_with("_in");
        assert!(["user_in", "user_out", "conf_in", "conf_out"].contains(&call_type));
        match row["destinationContext"].as_str() {
            None => assert!(inbound, "{row}"),
            Some(context) => assert!(!inbound && ["Domestic", "International"].contains(&context)),
        }
        str_of(row, "destinationName");
        let license = str_of(row, "licenseCapability");
        if call_type.starts_with("conf") {
            assert_eq!(license, "MCOPSTNC");
            assert!(["Service", "Toll free"].contains(&str_of(row, "inventoryType")));
        } else {
            assert!(["MCOPSTNU", "MCOPSTN1", "MCOPSTNEAU2"].contains(&license));
            assert_eq!(str_of(row, "inventoryType"), "Subscriber");
            if license == "MCOPSTN1" && !inbound {
                assert_eq!(row["destinationContext"], "Domestic", "domestic plans stay home");
            }
        }
        let operator_supplied = str_of(row, "operator") != "Microsoft";
        let source = str_of(row, "callDurationSource");
        assert_eq!(source, if operator_supplied { "operator" } else { "microsoft" });
        if call_type == "user_in" {
            assert_eq!(row["charge"].to_string(), "0.00");
        }
    }
}

#[test]
fn charges_keep_their_decimal_scale() {
    assert_eq!(usage::decimal(0, 2).to_string(), "0.00");
    assert_eq!(usage::decimal(137, 2).to_string(), "1.37");
    assert_eq!(usage::decimal(150, 4).to_string(), "0.0150");
    assert_eq!(ndjson_line(&usage::decimal(0, 2)), "0.00\n");
    let two_decimals = |text: &str| {
        text.split_once('.').is_some_and(|(whole, fraction)| {
            !whole.is_empty()
                && whole.bytes().all(|byte| byte.is_ascii_digit())
                && fraction.len() == 2
                && fraction.bytes().all(|byte| byte.is_ascii_digit())
        })
    };
    let (mut zero, mut charged) = (0, 0);
    for item in sample_items() {
        let Generated::PstnCall(row) = item else {
            continue;
        };
        let line = ndjson_line(row);
        for key in ["charge", "connectionCharge"] {
            let text = row[key].to_string();
            assert!(two_decimals(&text), "{key}: {text}");
            assert!(line.contains(&format!(r#""{key}":{text}"#)), "{line}");
        }
        let charge = row["charge"].to_string();
        if charge.as_str() == "0.00" {
            zero += 1;
        } else {
            charged += 1;
        }
    }
    assert!(zero > 0 && charged > 0, "{zero} free, {charged} charged");
    for row in rows(sms) {
        let text = row["callCharge"].to_string();
        let fraction = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
        assert!(fraction == 2 || fraction == 4, "{text}");
    }
}

#[test]
fn direct_routing_rows_are_consistent() {
    let mut bypass: BTreeMap<&str, bool> = BTreeMap::new();
    let (mut successes, mut twos) = (0, 0);
    let all = rows(direct_routing);
    for row in &all {
        let code = row["finalSipCode"].as_i64().expect("finalSipCode");
        let sub_reason = row["callEndSubReason"].as_i64().expect("callEndSubReason");
        let phrase = str_of(row, "finalSipCodePhrase");
        let success = row["successfulCall"].as_bool().expect("successfulCall");
        let start = parse_datetime(str_of(row, "startDateTime"));
        let invite = parse_datetime(str_of(row, "inviteDateTime"));
        let failure = str_of(row, "failureDateTime");
        let duration = row["duration"].as_i64().expect("duration");
        assert!(invite <= start, "{row}");
        assert_eq!(sub_reason % 1000, code % 1000, "{row}");
        assert!([510, 540, 560].contains(&(sub_reason / 1000)), "{row}");
        assert_eq!(success, code == 0 || code == 200, "{row}");
        if success {
            successes += 1;
            twos += usize::from(code == 200);
            assert_eq!(phrase, "BYE");
            assert_eq!(failure, NO_FAILURE);
            let end = parse_datetime(str_of(row, "endDateTime"));
            assert_eq!((end - start).whole_seconds(), duration, "{row}");
        } else {
            let expected = SIP_PHRASES.iter().find(|(known, _)| *known == code);
            assert_eq!(expected.map(|(_, phrase)| *phrase), Some(phrase), "{row}");
            assert!(row["endDateTime"].is_null());
            assert_eq!(duration, 0);
            let failure = parse_datetime(failure);
            assert!(invite <= failure && (start == invite || start == failure), "{row}");
        }
        assert!(
            ["ByotIn", "ByotOut", "ByotOutUserForwarding", "ByotInUserForwarding"].contains(&str_of(row, "callType"))
        );
        assert!(is_e164(str_of(row, "callerNumber"), true), "{row}");
        assert!(is_e164(str_of(row, "calleeNumber"), true), "{row}");
        for key in ["mediaPathLocation", "signalingLocation"] {
            let location = str_of(row, key);
            assert!(location.len() == 4 && location.bytes().all(|byte| byte.is_ascii_uppercase()));
        }
        let fqdn = str_of(row, "trunkFullyQualifiedDomainName");
        assert!(fqdn.starts_with("sbc") && fqdn.ends_with(".contoso.com"), "{fqdn}");
        let enabled = row["mediaBypassEnabled"].as_bool().expect("mediaBypassEnabled");
        assert_eq!(*bypass.entry(fqdn).or_insert(enabled), enabled, "bypass is per trunk");
        assert!(uuid::Uuid::parse_str(str_of(row, "correlationId")).is_ok());
    }
    assert!((2..=3).contains(&bypass.len()), "{} trunks", bypass.len());
    let share = |count: usize, total: usize| count as f64 / total as f64;
    assert!(
        (0.7..0.9).contains(&share(successes, all.len())),
        "{successes} of {}",
        all.len()
    );
    assert!(share(twos, successes) > 0.7);
    let (_, standalone) = rows_by_call();
    assert!(
        (0.1..0.3).contains(&share(standalone.len(), all.len())),
        "{} of {} standalone",
        standalone.len(),
        all.len()
    );
    assert!(standalone.iter().all(|row| row["successfulCall"] == false));
}

#[test]
fn rows_start_inside_the_window_and_background_rows_come_in_time_order() {
    let window_start = UNTIL - time::Duration::days(30);
    let mut last_background: Option<OffsetDateTime> = None;
    let mut calls_seen = 0;
    let (mut first_background, mut last_position) = (None, 0);
    let (_, standalone) = rows_by_call();
    for (position, item) in sample_items().iter().enumerate() {
        let (row, time_key) = match item {
            Generated::CallRecord(_) => {
                calls_seen += 1;
                continue;
            }
            Generated::SmsLog(row) => (row, "sentDateTime"),
            Generated::PstnCall(row) | Generated::DirectRoutingCall(row) => (row, "startDateTime"),
            // Planned after the calls, with tests of their own.
            Generated::PstnBlockedUser(_) | Generated::PstnOnlineMeetingDialout(_) => continue,
        };
        let start = parse_datetime(str_of(row, time_key));
        assert!(window_start <= start && start < UNTIL, "{row}");
        let background =
            matches!(item, Generated::SmsLog(_)) || standalone.iter().any(|standalone| std::ptr::eq(*standalone, row));
        if background {
            assert!(last_background.is_none_or(|last| last <= start), "{row}");
            last_background = Some(start);
            first_background.get_or_insert(calls_seen);
            last_position = position;
        }
    }
    // Spread through the run rather than bunched at either end.
    assert!(first_background.is_some_and(|calls| calls < 200));
    assert!(last_position > sample_items().len() / 2);
}

#[test]
fn sms_rows_are_consistent() {
    let all = rows(sms);
    let outbound = all.iter().filter(|row| row["smsType"] == "outbound").count();
    assert!((0.35..0.75).contains(&(outbound as f64 / all.len() as f64)));
    for row in all {
        let outbound = match str_of(row, "smsType") {
            "outbound" => true,
            "inbound" => false,
            other => panic!("smsType {other}"),
        };
        assert!((1..=3).contains(&row["smsUnits"].as_i64().expect("smsUnits")));
        let (own, other) = if outbound {
            ("sourceNumber", "destinationNumber")
        } else {
            ("destinationNumber", "sourceNumber")
        };
        assert!(is_e164(str_of(row, own), false), "{row}");
        assert!(is_e164(str_of(row, other), true), "{row}");
        let domestic = row["userCountryCode"] == row["otherPartyCountryCode"];
        assert_eq!(
            str_of(row, "destinationContext"),
            if domestic { "Domestic" } else { "International" }
        );
        assert!(row["administrativeUnitInfos"].is_array());
        assert!(uuid::Uuid::parse_str(str_of(row, "smsId")).is_ok());
    }
}

#[test]
fn operator_connect_rows_name_the_carrier() {
    // Seed 5's tenant buys numbers from an Operator Connect carrier.
    let mut carriers = 0;
    generate(&options(2000, 5), |item| {
        if let Generated::PstnCall(row) = item {
            let carrier = row["operator"] != "Microsoft";
            assert_eq!(row["callDurationSource"] == "operator", carrier, "{row}");
            if carrier {
                carriers += 1;
                assert_eq!(row["charge"].to_string(), "0.00");
                assert!(row["callType"].as_str().is_some_and(|kind| kind.starts_with("user")));
            }
        }
    });
    assert!(carriers > 0);
}

#[test]
fn only_first_segments_carry_full_media_detail() {
    let lean_network: BTreeSet<&str> = ["ipAddress", "subnet", "linkSpeed", "connectionType", "port"].into();
    let (mut media_lines, mut traced, mut devices) = (0, 0, 0);
    for record in sample_run() {
        for session in sessions(record) {
            let segments = session["segments"].as_array().expect("segments");
            for (position, segment) in segments.iter().enumerate() {
                for media in segment.get("media").and_then(Value::as_array).into_iter().flatten() {
                    media_lines += 1;
                    let detailed = position == 0 && media["label"] == "main-audio";
                    for side in ["callerNetwork", "calleeNetwork"] {
                        let network = media[side].as_object().expect("network");
                        traced += usize::from(network.contains_key("traceRouteHops"));
                        if !detailed {
                            assert!(network.keys().all(|key| lean_network.contains(key.as_str())));
                        }
                        if network.get("connectionType").is_some_and(|kind| kind != "wifi") {
                            assert!(network
                                .keys()
                                .all(|key| !key.starts_with("wifi") || key == "wifiBand" || key == "wifiRadioType"));
                        }
                    }
                    for side in ["callerDevice", "calleeDevice"] {
                        if media.get(side).is_some() {
                            assert!(detailed, "{side} outside the first segment's audio");
                            devices += 1;
                        }
                    }
                    for stream in media["streams"].as_array().into_iter().flatten() {
                        for key in [
                            "averageJitter",
                            "averagePacketLossRate",
                            "averageRoundTripTime",
                            "averageBandwidthEstimate",
                            "packetUtilization",
                        ] {
                            assert!(stream.get(key).is_some(), "{key} missing from {stream}");
                        }
                        if position > 0 {
                            assert!(stream.get("averageRatioOfConcealedSamples").is_none());
                        }
                    }
                }
            }
        }
    }
    let traced_share = traced as f64 / media_lines as f64;
    assert!((0.02..0.08).contains(&traced_share), "{traced} of {media_lines} traced");
    assert!(devices > 1000);
}

#[test]
fn a_few_streams_carry_nan_for_a_degradation_that_could_not_be_computed() {
    let lines: Vec<String> = sample_items()
        .iter()
        .filter(|item| matches!(item, Generated::CallRecord(_)))
        .map(|item| item.value().to_string())
        .collect();
    let nan = lines
        .iter()
        .filter(|line| line.contains(r#""averageAudioDegradation":"NaN""#))
        .count();
    assert!(nan > 0 && nan < lines.len() / 4, "{nan} of {} records", lines.len());
    for line in &lines {
        crate::model::parse_call_record(line.as_bytes()).expect("ingest takes every generated record");
    }
}
