//! Properties of the generator's output, checked against spec §2 rather than against the
//! generator's own constants: the enum lists below are copied from spec §2.6.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::OffsetDateTime;

use super::{generate, ndjson_line, wire, GenerateOptions};

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

fn collect(options: &GenerateOptions) -> Vec<Value> {
    let mut records = Vec::new();
    generate(options, |record| records.push(record));
    records
}

/// One 2,000-call run shared by the tests that only read it.
fn sample_run() -> &'static [Value] {
    static RUN: OnceLock<Vec<Value>> = OnceLock::new();
    RUN.get_or_init(|| collect(&options(2000, 7)))
}

fn ndjson(options: &GenerateOptions) -> String {
    let mut text = String::new();
    generate(options, |record| text.push_str(&ndjson_line(&record)));
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
        assert!(
            positions[1] - positions[0] >= 2,
            "the later version comes a few records later"
        );
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
                    assert!(media["callerNetwork"]["traceRouteHops"].is_array());
                }
                assert_eq!(labels, session_modalities);
            }
        }
    }
}

#[test]
fn enum_values_come_from_the_spec_lists() {
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
                assert!(members.contains(&text), "{key}: {text} is not in spec §2.6");
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
