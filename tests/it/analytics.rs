//! Call-quality analytics against CQD's rules: streams at, below and above every threshold
//! stored and classified on both stores; poor ratios the test computes itself from the raw
//! records, compared with the API's for several groupings and filters; a new version replacing
//! its rows; places from the building file applied to old data; clear 400s; one tenant's data
//! invisible to another; a store upgraded from the previous release analysed like a new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use callrecords::auth::local::DEFAULT_AUDIENCE;
use callrecords::auth::{INGEST, READ_ALL};
use callrecords::generate::{generate, GenerateOptions, Generated};
use serde_json::{json, Value};

use crate::support::*;

const FROM: &str = "2024-02-01T00:00:00Z";
const TO: &str = "2024-04-01T00:00:00Z";

fn stream(direction: &str, metrics: Value) -> Value {
    let mut stream = json!({ "streamDirection": direction });
    stream
        .as_object_mut()
        .unwrap()
        .extend(metrics.as_object().unwrap().clone());
    stream
}

fn client(id: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "associatedIdentity": { "id": id, "displayName": format!("User {id}") },
        "userAgent": { "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
            "platform": "windows", "productFamily": "teams", "applicationVersion": "1.0" } })
}

/// A peer-to-peer record of one segment whose media are `media` (label, streams).
fn record_with(id: &str, version: i64, start: &str, media: &[(&str, Vec<Value>)]) -> Value {
    let media: Vec<Value> = media
        .iter()
        .map(|(label, streams)| {
            json!({ "label": label,
                "callerNetwork": { "connectionType": "wifi", "subnet": "10.1.0.0", "ipAddress": "10.1.0.5" },
                "calleeNetwork": { "connectionType": "wired", "subnet": "10.2.0.0", "ipAddress": "10.2.0.9" },
                "streams": streams })
        })
        .collect();
    json!({
        "id": id, "version": version, "type": "peerToPeer", "modalities": ["audio"],
        "startDateTime": start, "endDateTime": start.replace("T10:00", "T10:30"),
        "sessions": [{ "id": format!("{id}-s"), "modalities": ["audio"], "startDateTime": start,
            "endDateTime": start.replace("T10:00", "T10:30"), "caller": client("alice"), "callee": client("bob"),
            "segments": [{ "id": format!("{id}-g"), "startDateTime": start,
                "endDateTime": start.replace("T10:00", "T10:30"),
                "caller": client("alice"), "callee": client("bob"), "media": media }] }]
    })
}

/// Every threshold of CQD's rules with a stream at it, just below and just above it, in the
/// direction of the comparison; each with the classification and conditions it must get.
fn threshold_cases() -> Vec<(&'static str, Value, &'static str, Vec<&'static str>)> {
    let mut cases = Vec::new();
    // Durations cannot be "NaN": not reporting one is leaving it out (null).
    let audio = [
        (
            "averageAudioDegradation",
            json!(1.0),
            json!(1.01),
            json!(0.99),
            json!("NaN"),
            "degradation",
        ),
        (
            "averageRoundTripTime",
            json!("PT0.5S"),
            json!("PT0.5001S"),
            json!("PT0.4999S"),
            Value::Null,
            "roundTrip",
        ),
        (
            "averagePacketLossRate",
            json!(0.1),
            json!(0.1001),
            json!(0.0999),
            json!("NaN"),
            "packetLoss",
        ),
        (
            "averageJitter",
            json!("PT0.03S"),
            json!("PT0.0301S"),
            json!("PT0.0299S"),
            Value::Null,
            "jitter",
        ),
        (
            "averageRatioOfConcealedSamples",
            json!(0.07),
            json!(0.0701),
            json!(0.0699),
            json!("INF"),
            "concealedRatio",
        ),
    ];
    for (metric, at, above, below, unreported, condition) in audio {
        cases.push(("main-audio", json!({ metric: at }), "good", vec![]));
        cases.push(("main-audio", json!({ metric: below }), "good", vec![]));
        cases.push(("main-audio", json!({ metric: above }), "poor", vec![condition]));
        cases.push(("main-audio", json!({ metric: unreported }), "unclassified", vec![]));
    }
    for (label, frame_rate_limit) in [("main-video", 7.0), ("applicationsharing-video", 2.0)] {
        let video = [
            (
                "averageVideoFrameLossPercentage",
                json!(50.0),
                json!(50.1),
                json!(49.9),
                "frameLoss",
            ),
            (
                "averageVideoFrameRate",
                json!(frame_rate_limit),
                json!(frame_rate_limit - 0.1),
                json!(frame_rate_limit + 0.1),
                "frameRate",
            ),
            (
                "postForwardErrorCorrectionPacketLossRate",
                json!(0.15),
                json!(0.1501),
                json!(0.1499),
                "postFecPacketLoss",
            ),
        ];
        for (metric, at, poor_side, good_side, condition) in video {
            cases.push((label, json!({ metric: at }), "good", vec![]));
            cases.push((label, json!({ metric: good_side }), "good", vec![]));
            cases.push((label, json!({ metric: poor_side }), "poor", vec![condition]));
            cases.push((label, json!({ metric: "INF" }), "unclassified", vec![]));
        }
        // The first metric reported decides: a good frame loss hides a poor frame rate.
        cases.push((
            label,
            json!({ "averageVideoFrameLossPercentage": 10.0, "averageVideoFrameRate": 0.5 }),
            "good",
            vec![],
        ));
        cases.push((
            label,
            json!({ "averageVideoFrameLossPercentage": "NaN", "averageVideoFrameRate": 0.5 }),
            "poor",
            vec!["frameRate"],
        ));
    }
    cases.push(("main-audio", json!({}), "unclassified", vec![]));
    cases.push((
        "main-audio",
        json!({ "averageJitter": "PT0.05S", "averagePacketLossRate": 0.2, "averageAudioDegradation": "NaN" }),
        "poor",
        vec!["jitter", "packetLoss"],
    ));
    cases
}

async fn get(app: &TestApp, path_and_query: &str) -> Answer {
    app.get_with(path_and_query, &[]).await
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

both!(every_threshold_of_every_rule_is_classified_as_cqd_publishes_it);
async fn every_threshold_of_every_rule_is_classified_as_cqd_publishes_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = threshold_cases();
    // One media line per case, so every stream's classification can be read back by position.
    let media: Vec<(&str, Vec<Value>)> = cases
        .iter()
        .map(|(label, metrics, _, _)| (*label, vec![stream("callerToCallee", metrics.clone())]))
        .collect();
    app.ingest_ok(&[record_with("thresholds", 1, "2024-03-05T10:00:00Z", &media)])
        .await;

    let answer = get(&app, "/analytics/calls/thresholds/streams").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let streams = answer.json()["value"].as_array().unwrap().clone();
    assert_eq!(streams.len(), cases.len());
    for ((label, metrics, classification, due), stream) in cases.iter().zip(&streams) {
        assert_eq!(stream["classification"], *classification, "{label} {metrics}: {stream}");
        assert_eq!(stream["poorDueTo"], json!(due), "{label} {metrics}");
        // The caller is First between two clients, and this stream flows from the caller.
        assert_eq!(stream["direction"], "firstToSecond");
        assert_eq!(stream["first"]["connectionType"], "wifi");
    }

    // The same counts through the grouped measure, without the default filters (a stream that
    // reported nothing has no QoE record, which they leave out).
    let all = get(
        &app,
        &format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}&defaultFilters=false"),
    )
    .await;
    assert_eq!(all.status, 200, "{}", all.text);
    let rows = all.json()["value"].as_array().unwrap().clone();
    for media in ["audio", "video", "vbss"] {
        let label = match media {
            "audio" => "main-audio",
            "video" => "main-video",
            _ => "applicationsharing-video",
        };
        let of = |class: &str| cases.iter().filter(|c| c.0 == label && c.2 == class).count() as i64;
        let row = rows.iter().find(|row| row["mediaType"] == media).expect(media);
        assert_eq!(row["poorStreams"], of("poor"), "{media}");
        assert_eq!(row["goodStreams"], of("good"), "{media}");
        assert_eq!(row["unclassifiedStreams"], of("unclassified"), "{media}");
        let ratio = of("poor") as f64 / (of("poor") + of("good")) as f64;
        assert!((row["poorRatio"].as_f64().unwrap() - ratio).abs() < 1e-12, "{media}");
    }
    let audio = rows.iter().find(|row| row["mediaType"] == "audio").unwrap();
    assert_eq!(audio["poorDueTo"]["jitter"], 2);
    assert_eq!(audio["poorDueTo"]["packetLoss"], 2);
    let with_defaults = get(&app, &format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}")).await;
    let audio = with_defaults.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["mediaType"] == "audio")
        .cloned()
        .unwrap();
    assert_eq!(
        audio["unclassifiedStreams"], 0,
        "streams that reported nothing have no QoE record"
    );
}

both!(a_new_version_replaces_its_streams_and_a_building_file_applies_to_old_data);
async fn a_new_version_replaces_its_streams_and_a_building_file_applies_to_old_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let poor = || {
        vec![
            stream("callerToCallee", json!({ "averageJitter": "PT0.2S" })),
            stream("calleeToCaller", json!({ "averageJitter": "PT0.2S" })),
        ]
    };
    let good = || vec![stream("callerToCallee", json!({ "averageJitter": "PT0.01S" }))];
    app.ingest_ok(&[record_with("r", 1, "2024-03-05T10:00:00Z", &[("main-audio", poor())])])
        .await;
    let quality = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            let answer = get(
                app,
                &format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}{query}"),
            )
            .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            answer.json()["value"].as_array().unwrap().clone()
        }
    };
    assert_eq!(quality("").await[0]["poorStreams"], 2);
    app.ingest_ok(&[record_with("r", 2, "2024-03-05T10:00:00Z", &[("main-audio", good())])])
        .await;
    let rows = quality("").await;
    assert_eq!(
        (rows.len(), &rows[0]["streams"], &rows[0]["poorStreams"]),
        (1, &json!(1), &json!(0))
    );

    // No building file yet: places are unknown.
    let rows = quality("&groupBy=secondBuilding,insideOutside").await;
    assert_eq!(rows[0]["secondBuilding"], Value::Null);
    assert_eq!(rows[0]["insideOutside"], "unknown:unknown");
    let file = "10.2.0.0,Wired HQ,16,HQ,Contoso,Office,Main,Redmond,98052,US,WA,NOAM,1,0,0\n";
    let taken = reqwest::Client::new()
        .put(app.url("/ingest/buildings"))
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    let rows = quality("&groupBy=secondBuilding,insideOutside").await;
    assert_eq!(rows[0]["secondBuilding"], "HQ");
    assert_eq!(rows[0]["insideOutside"], "unknown:inside");
    // A filter on a place reaches the stored subnets it maps from.
    assert_eq!(
        quality(&format!("&filter={}", enc("secondBuilding eq 'HQ'"))).await[0]["streams"],
        1
    );
    assert!(quality(&format!("&filter={}", enc("secondBuilding ne 'HQ'")))
        .await
        .is_empty());
    assert_eq!(
        quality(&format!("&filter={}", enc("insideOutside eq 'unknown:inside'"))).await[0]["streams"],
        1
    );
    assert!(quality(&format!("&filter={}", enc("firstInside eq true")))
        .await
        .is_empty());
    assert_eq!(
        quality(&format!("&filter={}", enc("firstInside eq null"))).await[0]["streams"],
        1
    );
    let worst = get(
        &app,
        &format!("/analytics/worst?by=building&fromDateTime={FROM}&toDateTime={TO}&minStreams=1"),
    )
    .await;
    assert_eq!(worst.json()["value"][0]["building"], "HQ", "{}", worst.text);
}

/// A stream as the test classifies it, from the raw record, by CQD's published rules.
#[derive(Debug)]
struct Expected {
    day: String,
    media: &'static str,
    conference: bool,
    pair: String,
    /// The first endpoint's subnet, `null` when it has none.
    first_subnet: String,
    client_server: String,
    class: &'static str,
    qoe: bool,
    /// A bot, auto attendant, call queue or announcement service on either side.
    excluded: bool,
}

fn seconds(value: &Value) -> Option<f64> {
    let text = value.as_str()?;
    let text = text.strip_prefix("PT")?.strip_suffix('S')?;
    text.parse().ok()
}

fn single(value: &Value) -> Option<f32> {
    value.as_f64().map(|v| v as f32).filter(|v| v.is_finite())
}

fn classify(media: &str, stream: &Value) -> &'static str {
    if media == "audio" {
        let checks = [
            single(&stream["averageAudioDegradation"]).map(|v| v > 1.0),
            seconds(&stream["averageRoundTripTime"]).map(|s| s > 0.5),
            single(&stream["averagePacketLossRate"]).map(|v| v > 0.1),
            seconds(&stream["averageJitter"]).map(|s| s > 0.03),
            single(&stream["averageRatioOfConcealedSamples"]).map(|v| v > 0.07),
        ];
        if checks.iter().all(Option::is_none) {
            "unclassified"
        } else if checks.contains(&Some(true)) {
            "poor"
        } else {
            "good"
        }
    } else {
        let rate_below = if media == "vbss" { 2.0 } else { 7.0 };
        let steps = [
            single(&stream["averageVideoFrameLossPercentage"]).map(|v| v > 50.0),
            single(&stream["averageVideoFrameRate"]).map(|v| v < rate_below),
            single(&stream["postForwardErrorCorrectionPacketLossRate"]).map(|v| v > 0.15),
        ];
        match steps.iter().flatten().next() {
            None => "unclassified",
            Some(true) => "poor",
            Some(false) => "good",
        }
    }
}

fn is_server(endpoint: &Value) -> bool {
    endpoint["@odata.type"] == "#microsoft.graph.callRecords.serviceEndpoint"
        || endpoint["userAgent"]["@odata.type"] == "#microsoft.graph.callRecords.serviceUserAgent"
}

const METRICS: [&str; 11] = [
    "averageJitter",
    "maxJitter",
    "averagePacketLossRate",
    "maxPacketLossRate",
    "averageRoundTripTime",
    "maxRoundTripTime",
    "averageAudioDegradation",
    "averageRatioOfConcealedSamples",
    "averageVideoFrameLossPercentage",
    "averageVideoFrameRate",
    "postForwardErrorCorrectionPacketLossRate",
];

fn expected_streams(records: &[Value]) -> Vec<Expected> {
    // The newest version of each record is the one that counts.
    let mut newest: BTreeMap<String, &Value> = BTreeMap::new();
    for record in records {
        let id = record["id"].as_str().unwrap().to_owned();
        if newest
            .get(&id)
            .is_none_or(|kept| kept["version"].as_i64() < record["version"].as_i64())
        {
            newest.insert(id, record);
        }
    }
    let mut streams = Vec::new();
    for record in newest.values() {
        let day = record["startDateTime"].as_str().unwrap()[..10].to_owned();
        let conference = record["type"] == "groupCall";
        for segment in record["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|session| session["segments"].as_array().into_iter().flatten())
        {
            let (caller_server, callee_server) = (is_server(&segment["caller"]), is_server(&segment["callee"]));
            let excluded = [&segment["caller"], &segment["callee"]].iter().any(|endpoint| {
                [
                    "customBot",
                    "skypeForBusinessAutoAttendant",
                    "skypeForBusinessCallQueues",
                    "conferencingAnnouncementService",
                    "responseGroupServiceAnnouncementService",
                ]
                .contains(&endpoint["userAgent"]["role"].as_str().unwrap_or_default())
            });
            let first_is_caller = caller_server || !callee_server;
            for media in segment["media"].as_array().into_iter().flatten() {
                let label = media["label"].as_str().unwrap_or_default();
                let kind = match label {
                    "main-audio" => "audio",
                    "main-video" | "panoramic-video" => "video",
                    "applicationsharing-video" => "vbss",
                    _ => continue,
                };
                let connection = |network: &Value| network["connectionType"].as_str().unwrap_or("unknown").to_owned();
                let (caller, callee) = (connection(&media["callerNetwork"]), connection(&media["calleeNetwork"]));
                let (first, second) = if first_is_caller {
                    (caller, callee)
                } else {
                    (callee, caller)
                };
                let subnet = |network: &Value| network["subnet"].as_str().unwrap_or("null").to_owned();
                let first_subnet = if first_is_caller {
                    subnet(&media["callerNetwork"])
                } else {
                    subnet(&media["calleeNetwork"])
                };
                let role = |server: bool| if server { "server" } else { "client" };
                let client_server = if first_is_caller {
                    format!("{}:{}", role(caller_server), role(callee_server))
                } else {
                    format!("{}:{}", role(callee_server), role(caller_server))
                };
                for stream in media["streams"].as_array().into_iter().flatten() {
                    let qoe = METRICS.iter().any(|metric| {
                        let value = &stream[*metric];
                        single(value).is_some() || seconds(value).is_some()
                    });
                    streams.push(Expected {
                        day: day.clone(),
                        media: kind,
                        conference,
                        pair: format!("{first}:{second}"),
                        first_subnet: first_subnet.clone(),
                        client_server: client_server.clone(),
                        class: classify(kind, stream),
                        qoe,
                        excluded,
                    });
                }
            }
        }
    }
    streams
}

/// (poor, good, unclassified) by group, as the test computes them.
fn tally(streams: &[Expected], key: impl Fn(&Expected) -> Option<String>) -> BTreeMap<String, [i64; 3]> {
    let mut groups: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    // CQD's default filters: a QoE record, and no bots, attendants, queues or announcements.
    for stream in streams.iter().filter(|stream| stream.qoe && !stream.excluded) {
        let Some(key) = key(stream) else { continue };
        let counts = groups.entry(key).or_default();
        match stream.class {
            "poor" => counts[0] += 1,
            "good" => counts[1] += 1,
            _ => counts[2] += 1,
        }
    }
    groups
}

async fn assert_api_agrees(
    app: &TestApp,
    query: &str,
    key_of: impl Fn(&Value) -> String,
    expected: BTreeMap<String, [i64; 3]>,
) {
    assert_api_agrees_over(
        app,
        &format!("fromDateTime={FROM}&toDateTime={TO}{query}"),
        key_of,
        expected,
    )
    .await;
}

async fn assert_api_agrees_over(
    app: &TestApp,
    query: &str,
    key_of: impl Fn(&Value) -> String,
    expected: BTreeMap<String, [i64; 3]>,
) {
    let answer = get(app, &format!("/analytics/quality?{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    let mut answered: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for row in answer.json()["value"].as_array().unwrap() {
        let counts = [
            row["poorStreams"].as_i64().unwrap(),
            row["goodStreams"].as_i64().unwrap(),
            row["unclassifiedStreams"].as_i64().unwrap(),
        ];
        assert_eq!(row["streams"].as_i64().unwrap(), counts.iter().sum::<i64>());
        let (poor, good) = (counts[0] as f64, counts[1] as f64);
        match row["poorRatio"].as_f64() {
            Some(ratio) => assert!((ratio - poor / (poor + good)).abs() < 1e-12),
            None => assert_eq!(poor + good, 0.0),
        }
        assert!(answered.insert(key_of(row), counts).is_none(), "one row per group");
    }
    assert!(!expected.is_empty(), "{query}: the test data has streams");
    assert_eq!(answered, expected, "{query}");
}

/// The call records the generator makes for `options`.
fn generated_records(options: &GenerateOptions) -> Vec<Value> {
    let mut records = Vec::new();
    generate(options, |item| {
        if let Generated::CallRecord(record) = item {
            records.push(record);
        }
    });
    records
}

both!(poor_ratios_from_the_raw_records_match_the_api_for_several_groupings);
async fn poor_ratios_from_the_raw_records_match_the_api_for_several_groupings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let options = GenerateOptions {
        calls: 120,
        seed: 20,
        days: 20,
        until: time::macros::datetime!(2024-03-15 00:00 UTC),
    };
    let records = generated_records(&options);
    for chunk in records.chunks(40) {
        app.ingest_ok(chunk).await;
    }
    let streams = expected_streams(&records);
    let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);

    assert_api_agrees(
        &app,
        "&groupBy=day",
        |row| format!("{} {}", text(&row["day"]), text(&row["mediaType"])),
        tally(&streams, |s| Some(format!("{} {}", s.day, s.media))),
    )
    .await;
    // The same from the rows themselves: a range that is not whole days cannot be answered from
    // the daily totals, and this one holds the same records.
    let from_rows = get(
        &app,
        &format!("/analytics/quality?fromDateTime=2024-02-01T00:00:01Z&toDateTime={TO}&groupBy=day,wiredWifi"),
    )
    .await;
    let from_days = get(
        &app,
        &format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}&groupBy=day,wiredWifi"),
    )
    .await;
    assert_eq!(from_rows.json()["value"], from_days.json()["value"]);
    assert!(!from_days.json()["value"].as_array().unwrap().is_empty());
    assert_api_agrees(
        &app,
        "&groupBy=firstSubnet",
        |row| {
            format!(
                "{} {}",
                row["firstSubnet"].as_str().unwrap_or("null"),
                text(&row["mediaType"])
            )
        },
        tally(&streams, |s| Some(format!("{} {}", s.first_subnet, s.media))),
    )
    .await;
    assert_api_agrees(
        &app,
        "&groupBy=callType",
        |row| format!("{} {}", text(&row["callType"]), text(&row["mediaType"])),
        tally(&streams, |s| {
            Some(format!(
                "{} {}",
                if s.conference { "conference" } else { "peerToPeer" },
                s.media
            ))
        }),
    )
    .await;
    assert_api_agrees(
        &app,
        "&groupBy=wiredWifi,clientServer",
        |row| {
            format!(
                "{} {} {}",
                text(&row["wiredWifi"]),
                text(&row["clientServer"]),
                text(&row["mediaType"])
            )
        },
        tally(&streams, |s| {
            Some(format!("{} {} {}", s.pair, s.client_server, s.media))
        }),
    )
    .await;
    assert_api_agrees(
        &app,
        &format!(
            "&groupBy=month&filter={}",
            enc("mediaType eq 'audio' and callType eq 'conference'")
        ),
        |row| format!("{} {}", text(&row["month"]), text(&row["mediaType"])),
        tally(&streams, |s| {
            (s.media == "audio" && s.conference).then(|| format!("{} {}", &s.day[..7], s.media))
        }),
    )
    .await;
    let some_day = streams[0].day.clone();
    assert_api_agrees(
        &app,
        &format!(
            "&filter={}",
            enc(&format!("day ne '{some_day}' and mediaType in ('video','vbss')"))
        ),
        |row| text(&row["mediaType"]),
        tally(&streams, |s| {
            (s.day != some_day && s.media != "audio").then(|| s.media.to_owned())
        }),
    )
    .await;

    // The calls behind a bar are those with streams in it, most poor streams first.
    let filter = enc(&format!("day eq '{some_day}' and mediaType eq 'audio'"));
    let calls = get(
        &app,
        &format!("/analytics/calls?fromDateTime={FROM}&toDateTime={TO}&filter={filter}&classification=poor&top=1000"),
    )
    .await;
    assert_eq!(calls.status, 200, "{}", calls.text);
    let calls = calls.json()["value"].as_array().unwrap().clone();
    let poor_streams: i64 = calls.iter().map(|call| call["poorStreams"].as_i64().unwrap()).sum();
    let expected_poor = streams
        .iter()
        .filter(|s| s.qoe && !s.excluded && s.day == some_day && s.media == "audio" && s.class == "poor")
        .count() as i64;
    assert_eq!(poor_streams, expected_poor);
    assert!(calls
        .windows(2)
        .all(|pair| pair[0]["poorStreams"].as_i64() >= pair[1]["poorStreams"].as_i64()));

    // Reliability and Rate My Call count sessions and ratings.
    let expected_sessions: usize = {
        let mut newest: BTreeMap<&str, &Value> = BTreeMap::new();
        for record in &records {
            let id = record["id"].as_str().unwrap();
            if newest
                .get(id)
                .is_none_or(|kept| kept["version"].as_i64() < record["version"].as_i64())
            {
                newest.insert(id, record);
            }
        }
        newest
            .values()
            .map(|r| r["sessions"].as_array().map_or(0, Vec::len))
            .sum()
    };
    let reliability = get(
        &app,
        &format!("/analytics/reliability?fromDateTime={FROM}&toDateTime={TO}&defaultFilters=false"),
    )
    .await;
    assert_eq!(reliability.status, 200, "{}", reliability.text);
    assert_eq!(reliability.json()["value"][0]["sessions"], expected_sessions as i64);
    let ratings = get(
        &app,
        &format!("/analytics/rateMyCall?fromDateTime={FROM}&toDateTime={TO}&groupBy=callType"),
    )
    .await;
    assert_eq!(ratings.status, 200, "{}", ratings.text);
    for row in ratings.json()["value"].as_array().unwrap() {
        let average = row["averageRating"].as_f64().unwrap();
        assert!((1.0..=5.0).contains(&average), "{row}");
        assert!(row["poorRatings"].as_i64() <= row["ratings"].as_i64());
    }
}

/// Asks each query over a range that is not whole days (answered from the rows) and over the
/// same records in whole days (from the rollups), and checks the answers are the same and not
/// empty; answers how many groups they had.
async fn rows_and_rollups_agree(app: &TestApp, queries: &[&str]) -> usize {
    let mut groups = 0;
    // The whole window is whole weeks; the other has days around its weeks, one of them a week
    // cut at the month (2024-02-29).
    let windows = [(FROM, TO), ("2024-02-27T00:00:00Z", "2024-03-13T00:00:00Z")];
    for query in queries {
        let (path, parameters) = query.split_once('?').unwrap();
        let parameters: String = parameters
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap();
                format!("&{name}={}", enc(value))
            })
            .collect();
        for (from, to) in windows {
            // A second into the first day: not whole days, so the rows answer.
            let part_of_a_day = from.replace("T00:00:00Z", "T00:00:01Z");
            let from_rows = get(
                app,
                &format!("/analytics/{path}?fromDateTime={part_of_a_day}&toDateTime={to}{parameters}"),
            )
            .await;
            let from_rollups = get(
                app,
                &format!("/analytics/{path}?fromDateTime={from}&toDateTime={to}{parameters}"),
            )
            .await;
            assert_eq!(from_rows.status, 200, "{query}: {}", from_rows.text);
            assert_eq!(from_rollups.status, 200, "{query}: {}", from_rollups.text);
            assert_eq!(
                from_rows.json()["value"],
                from_rollups.json()["value"],
                "{query} from {from}"
            );
            let answered = from_rollups.json()["value"].as_array().unwrap().len();
            assert!(answered > 0, "{query} from {from}: the test data has streams");
            groups += answered;
        }
    }
    groups
}

both!(the_rollups_answer_as_the_rows_do);
async fn the_rollups_answer_as_the_rows_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let options = GenerateOptions {
        calls: 150,
        seed: 21,
        days: 20,
        until: time::macros::datetime!(2024-03-15 00:00 UTC),
    };
    let records = generated_records(&options);
    for chunk in records.chunks(50) {
        app.ingest_ok(chunk).await;
    }
    // Newer versions move a third of the records' first media to another subnet and client
    // version: their old totals must leave every rollup.
    let mut newer = Vec::new();
    for record in records.iter().step_by(3) {
        let mut record = record.clone();
        record["version"] = json!(record["version"].as_i64().unwrap() + 1);
        let Some(segment) = record
            .pointer_mut("/sessions/0/segments/0")
            .filter(|segment| segment["media"].as_array().is_some_and(|media| !media.is_empty()))
        else {
            continue;
        };
        segment["media"][0]["callerNetwork"]["subnet"] = json!("10.99.1.0");
        segment["caller"]["userAgent"]["applicationVersion"] = json!("9.9.9");
        newer.push(record);
    }
    assert!(newer.len() > 10);
    app.ingest_ok(&newer).await;
    let taken = reqwest::Client::new()
        .put(app.url("/ingest/buildings"))
        .body(callrecords::generate::building_file())
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);

    let queries = [
        "quality?groupBy=firstSubnet",
        "quality?groupBy=secondSubnet,secondConnectionType",
        "quality?groupBy=secondProductFamily,secondVersion",
        "quality?groupBy=firstPlatform,firstWifiBand&filter=mediaType eq 'audio' and callType eq 'conference'",
        "quality?groupBy=firstServiceRole&defaultFilters=false",
        "quality?groupBy=secondBuilding,secondInside",
        "quality?groupBy=day&filter=firstSubnet ne null and firstVersion ne '9.9.9'",
        "quality?groupBy=secondWifiBand&filter=secondSubnet eq null",
        "quality?groupBy=firstVersion&filter=firstIsServer eq false and firstConnectionType in ('wired','wifi')",
        "quality?groupBy=firstSubnet,secondSubnet",
        "worst?by=subnet&minStreams=1",
        "worst?by=building&minStreams=1&mediaType=audio",
        "worst?by=user&minStreams=1",
        "quality?groupBy=insideOutside,wiredWifi",
        "quality?groupBy=firstInside,callType&filter=mediaType eq 'audio'",
        "quality?groupBy=day,insideOutside&filter=secondIsServer eq false",
    ];
    let answered_groups = rows_and_rollups_agree(&app, &queries).await;
    assert!(answered_groups > 100, "{answered_groups}");

    // The moved subnet holds streams of the newer versions only, and fewer than all.
    let mut streams_there = 0;
    for side in ["first", "second"] {
        let moved = get(
            &app,
            &format!(
                "/analytics/quality?fromDateTime={FROM}&toDateTime={TO}&defaultFilters=false&filter={}",
                enc(&format!("{side}Subnet eq '10.99.1.0'"))
            ),
        )
        .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
        streams_there += moved.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["streams"].as_i64().unwrap())
            .sum::<i64>();
    }
    let all = expected_streams(&records.iter().chain(&newer).cloned().collect::<Vec<_>>());
    assert!(
        streams_there > 0 && (streams_there as usize) < all.len(),
        "{streams_there}"
    );

    // The place rollup follows a new building file, and writes after it was classified.
    let inside_is_outside = callrecords::generate::building_file()
        .replace(",1,0,0\n", ",0,0,0\n")
        .replace(",1,0,1\n", ",0,0,1\n");
    let taken = reqwest::Client::new()
        .put(app.url("/ingest/buildings"))
        .body(inside_is_outside)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    let by_place = [
        "quality?groupBy=insideOutside,wiredWifi",
        "quality?groupBy=firstInside,callType&filter=mediaType eq 'audio'",
    ];
    rows_and_rollups_agree(&app, &by_place).await;
    let pairs = get(
        &app,
        &format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}&groupBy=insideOutside"),
    )
    .await;
    assert!(pairs.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| !row["insideOutside"].as_str().unwrap().contains("inside")));
    let newest: Vec<Value> = newer
        .iter()
        .map(|record| {
            let mut record = record.clone();
            record["version"] = json!(record["version"].as_i64().unwrap() + 1);
            record["sessions"][0]["segments"][0]["media"][0]["callerNetwork"]["subnet"] = json!("10.20.0.0");
            record
        })
        .collect();
    app.ingest_ok(&newest).await;
    rows_and_rollups_agree(&app, &by_place).await;
}

both!(bad_parameters_are_400s_that_name_them);
async fn bad_parameters_are_400s_that_name_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let range = format!("fromDateTime={FROM}&toDateTime={TO}");
    for (query, target) in [
        (format!("{range}&groupBy=colour"), "groupBy"),
        (format!("{range}&groupBy=day,day"), "groupBy"),
        (format!("fromDateTime=yesterday&toDateTime={TO}"), "fromDateTime"),
        (format!("fromDateTime={FROM}"), "toDateTime"),
        (format!("fromDateTime={TO}&toDateTime={FROM}"), "toDateTime"),
        (format!("{range}&filter={}", enc("mediaType eq")), "filter"),
        (format!("{range}&filter={}", enc("mediaType eq 'sound'")), "filter"),
        (format!("{range}&filter={}", enc("day eq 'monday'")), "filter"),
        (format!("{range}&filter={}", enc("wiredWifi ne 'wired:wifi'")), "filter"),
        (format!("{range}&defaultFilters=maybe"), "defaultFilters"),
        (format!("{range}&colour=red"), "colour"),
    ] {
        let answer = get(&app, &format!("/analytics/quality?{query}")).await;
        let error = answer.assert_error(400, "BadRequest");
        assert_eq!(
            error["error"]["innerError"]["target"]
                .as_str()
                .or(error["error"]["target"].as_str()),
            Some(target),
            "{query}: {error}"
        );
        assert!(
            error["error"]["message"].as_str().unwrap().starts_with(target),
            "{query}: {error}"
        );
    }
    let answer = get(&app, &format!("/analytics/reliability?{range}&groupBy=firstSubnet")).await;
    answer.assert_error(400, "BadRequest");
    let answer = get(&app, &format!("/analytics/worst?{range}&by=planet")).await;
    answer.assert_error(400, "BadRequest");
    let answer = get(&app, "/analytics/calls/nothing-here/streams").await;
    assert_eq!(answer.status, 404);
}

both!(one_tenant_sees_none_of_another_s_streams);
async fn one_tenant_sees_none_of_another_s_streams(backend: Backend) {
    const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";
    const TENANT_B: &str = "22222222-2222-2222-2222-222222222222";
    let mut app = TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await;
    let store = app.store.clone();
    let token = |tenant, roles| local_token(store.as_ref(), tenant, roles);
    let (writer, reader_a, reader_b) = (
        token(TENANT_A, &[INGEST]).await,
        token(TENANT_A, &[READ_ALL]).await,
        token(TENANT_B, &[READ_ALL]).await,
    );
    app.use_token(Some(&writer));
    let media = [(
        "main-audio",
        vec![stream("callerToCallee", json!({ "averageJitter": "PT0.01S" }))],
    )];
    app.ingest_ok(&[record_with("mine", 1, "2024-03-05T10:00:00Z", &media)])
        .await;
    let query = format!("/analytics/quality?fromDateTime={FROM}&toDateTime={TO}");
    app.use_token(None);
    assert_eq!(get(&app, &query).await.status, 401);
    app.use_token(Some(&reader_a));
    assert_eq!(get(&app, &query).await.json()["value"][0]["streams"], 1);
    app.use_token(Some(&reader_b));
    assert_eq!(get(&app, &query).await.json()["value"], json!([]));
    assert_eq!(get(&app, "/analytics/calls/mine/streams").await.status, 404);
}

both!(a_store_from_the_previous_release_is_analysed_like_a_new_one);
async fn a_store_from_the_previous_release_is_analysed_like_a_new_one(backend: Backend) {
    analysed_like_a_new_one(backend, "v0").await;
}

// The release whose analytics rows kept every endpoint value as text: its rows are rebuilt.
both!(a_store_with_wide_analytics_rows_is_analysed_like_a_new_one);
async fn a_store_with_wide_analytics_rows_is_analysed_like_a_new_one(backend: Backend) {
    analysed_like_a_new_one(backend, "v1").await;
}

/// An upgraded store of `release` (`tests/fixtures`) answers quality by day as the test works it
/// out from the records the store serves.
async fn analysed_like_a_new_one(backend: Backend, release: &str) {
    let database = Arc::new(TestDatabase::release_fixture(backend, release).await);
    let app = TestApp::spawn_on(database, settings_with_retention(0)).await;
    // Every record, whole, as the upgraded store serves it.
    let (list, _) = app.collect_pages("/communications/callRecords", &[]).await;
    assert!(!list.is_empty());
    let mut records = Vec::new();
    for record in list {
        let id = record["id"].as_str().unwrap().to_owned();
        let (sessions, _) = app
            .collect_pages(
                &format!("/communications/callRecords/{id}/sessions?$expand=segments"),
                &[],
            )
            .await;
        let mut record = record;
        record["sessions"] = Value::Array(sessions);
        records.push(record);
    }
    let streams = expected_streams(&records);
    assert!(
        streams.len() > 100,
        "the fixture's records have streams: {}",
        streams.len()
    );
    let first = records
        .iter()
        .filter_map(|r| r["startDateTime"].as_str())
        .min()
        .unwrap()[..10]
        .to_owned();
    let last = records
        .iter()
        .filter_map(|r| r["startDateTime"].as_str())
        .max()
        .unwrap()[..10]
        .to_owned();
    let after_last = time::Date::parse(&last, &time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap()
        .next_day()
        .unwrap();
    let answer = get(
        &app,
        &format!("/analytics/quality?fromDateTime={first}&toDateTime={after_last}&groupBy=day"),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let mut answered: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for row in answer.json()["value"].as_array().unwrap() {
        answered.insert(
            format!(
                "{} {}",
                row["day"].as_str().unwrap(),
                row["mediaType"].as_str().unwrap()
            ),
            [
                row["poorStreams"].as_i64().unwrap(),
                row["goodStreams"].as_i64().unwrap(),
                row["unclassifiedStreams"].as_i64().unwrap(),
            ],
        );
    }
    assert_eq!(answered, tally(&streams, |s| Some(format!("{} {}", s.day, s.media))));
    // A side's subnets come from the rollups summed again when the store was opened.
    assert_api_agrees_over(
        &app,
        &format!("fromDateTime={first}&toDateTime={after_last}&groupBy=firstSubnet"),
        |row| {
            format!(
                "{} {}",
                row["firstSubnet"].as_str().unwrap_or("null"),
                row["mediaType"].as_str().unwrap()
            )
        },
        tally(&streams, |s| Some(format!("{} {}", s.first_subnet, s.media))),
    )
    .await;
}

both!(the_scrub_clears_personal_data_of_old_records_and_keeps_their_quality);
async fn the_scrub_clears_personal_data_of_old_records_and_keeps_their_quality(backend: Backend) {
    use callrecords::privacy::{scrub_pass, ScrubPolicy};
    let app = TestApp::spawn_with(backend, settings_with_retention(0)).await;
    let day = |days_ago: i64| {
        let date = (time::OffsetDateTime::now_utc() - time::Duration::days(days_ago)).date();
        format!("{date}T10:00:00Z")
    };
    let media = || {
        [(
            "main-audio",
            vec![stream("callerToCallee", json!({ "averageJitter": "PT0.2S" }))],
        )]
    };
    app.ingest_ok(&[
        record_with("old", 3, &day(40), &media()),
        record_with("recent", 1, &day(10), &media()),
    ])
    .await;
    let policy = ScrubPolicy::after_days(30);
    let now = callrecords::clock::Timestamp::from(callrecords::model::DateTimeOffset::now());
    assert_eq!(scrub_pass(app.store.as_ref(), &policy, now).await.unwrap(), 1);
    assert_eq!(
        scrub_pass(app.store.as_ref(), &policy, now).await.unwrap(),
        0,
        "nothing is left to scrub"
    );

    let whole = |id: &'static str| {
        let app = &app;
        async move {
            let answer = app
                .graph(&format!(
                    "/communications/callRecords/{id}?$expand=sessions($expand=segments)"
                ))
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            answer.json()
        }
    };
    let old = whole("old").await;
    assert_eq!(old["version"], 3, "the same version, rewritten");
    let segment = &old["sessions"][0]["segments"][0];
    assert_eq!(segment["media"][0]["callerNetwork"]["ipAddress"], Value::Null);
    assert_eq!(segment["media"][0]["callerNetwork"]["subnet"], "10.1.0.0");
    assert_eq!(segment["caller"]["associatedIdentity"]["displayName"], Value::Null);
    assert_eq!(segment["caller"]["associatedIdentity"]["id"], "alice");
    assert_eq!(segment["media"][0]["streams"][0]["averageJitter"], "PT0.2S");
    let recent = whole("recent").await;
    assert_eq!(
        recent["sessions"][0]["segments"][0]["media"][0]["callerNetwork"]["ipAddress"],
        "10.1.0.5"
    );

    let streams = get(&app, "/analytics/calls/old/streams").await.json();
    assert_eq!(streams["value"][0]["classification"], "poor");
    assert_eq!(streams["value"][0]["first"]["ipAddress"], Value::Null);
    assert_eq!(streams["value"][0]["first"]["userDisplayName"], Value::Null);
    assert_eq!(streams["value"][0]["first"]["subnet"], "10.1.0.0");
    let streams = get(&app, "/analytics/calls/recent/streams").await.json();
    assert_eq!(streams["value"][0]["first"]["ipAddress"], "10.1.0.5");
}
