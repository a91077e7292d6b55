//! `POST /ingest/callRecords`: validation, per-line errors, the version rule, durability.

use serde_json::{json, Value};

use crate::support::*;

both!(single_json_record_is_stored_and_read_back_as_sent);
async fn single_json_record_is_stored_and_read_back_as_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut sent = record("r1", "2020-02-25T18:52:21.2169889Z", 1, &["alice", "bob"]);
    sent["lastModifiedDateTime"] = json!("2020-02-25T19:00:24.582757Z");

    let answer = app.ingest_json(&sent).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({ "stored": 1, "replaced": 0, "ignored": 0, "rejected": 0, "errors": [] })
    );

    let got = app
        .graph("/communications/callRecords/r1?$expand=sessions($expand=segments)")
        .await
        .json();
    assert_eq!(got["startDateTime"], "2020-02-25T18:52:21.2169889Z");
    assert_eq!(got["lastModifiedDateTime"], "2020-02-25T19:00:24.582757Z");
    let stream = &got["sessions"][0]["segments"][0]["media"][0]["streams"][0];
    assert_eq!(stream["averageJitter"], "PT0.016S");
    assert_eq!(stream["averagePacketLossRate"].to_string(), "0.01381693");
    assert_eq!(stream["averageBandwidthEstimate"], 9965083);
}

both!(last_modified_is_filled_only_when_absent);
async fn last_modified_is_filled_only_when_absent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    let got = app.graph("/communications/callRecords/r1").await.json();
    let filled = got["lastModifiedDateTime"].as_str().expect("filled");
    assert!(filled > "2025-01-01T00:00:00Z", "{filled} is the ingest time");
}

both!(ndjson_bad_lines_are_reported_and_good_lines_stored);
async fn ndjson_bad_lines_are_reported_and_good_lines_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut bad_date = record("bad-date", "2024-01-01T00:00:00Z", 1, &["a"]);
    bad_date["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!("16ms");
    let body = format!(
        "{}\n{}\nnot json at all\n\n{}\n{}\n{{\"id\":\"cut\",\"sessions\":[{{\"id\n",
        record("good-1", "2024-01-01T00:00:00Z", 1, &["a"]),
        bad_date,
        json!({ "id": "no-dates", "version": 1 }),
        record("good-2", "2024-01-01T00:01:00Z", 1, &["a"]),
    );

    let answer = app
        .send(
            reqwest::Method::POST,
            "/ingest/callRecords",
            "application/x-ndjson",
            body,
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({
            "stored": 2, "replaced": 0, "ignored": 0, "rejected": 4,
            "errors": [
                { "line": 2, "id": "bad-date", "path": "sessions[0].segments[0].media[0].streams[0].averageJitter",
                  "reason": "'16ms' is not an ISO 8601 duration such as PT0.016S or PT1M30S" },
                { "line": 3, "path": ".", "reason": "line 3 is not JSON: expected ident at column 2" },
                { "line": 5, "id": "no-dates", "path": ".", "reason": "missing field `startDateTime`" },
                { "line": 7, "path": "sessions[0]", "reason": "line 7 is not JSON: EOF while parsing a string at column 28" }
            ]
        })
    );
    let (items, _) = app.collect_pages("/communications/callRecords", &[]).await;
    assert_eq!(ids(&items), ["good-1", "good-2"]);
}

both!(version_rule_replaces_higher_and_ignores_equal_or_lower);
async fn version_rule_replaces_higher_and_ignores_equal_or_lower(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let v1 = record("r1", "2024-01-01T00:00:00Z", 1, &["a"]);
    let mut v2 = record("r1", "2024-01-01T00:00:00Z", 3, &["a", "b"]);
    v2["version"] = json!(2);
    let mut stale = record("r1", "2024-01-01T00:00:00Z", 5, &["z"]);
    stale["version"] = json!(1);

    assert_eq!(app.ingest_ok(std::slice::from_ref(&v1)).await["stored"], 1);
    assert_eq!(app.ingest_ok(&[v2.clone()]).await["replaced"], 1);
    let replay = app.ingest_ok(&[v2, stale, v1]).await;
    assert_eq!(
        (replay["stored"].clone(), replay["ignored"].clone()),
        (json!(0), json!(3))
    );

    let got = app
        .graph("/communications/callRecords/r1?$expand=sessions,participants_v2")
        .await
        .json();
    assert_eq!(got["version"], 2);
    assert_eq!(got["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(ids(got["participants_v2"].as_array().unwrap()), ["a", "b"]);
}

both!(invalid_single_record_is_a_400_naming_path_and_reason);
async fn invalid_single_record_is_a_400_naming_path_and_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut sent = record("r1", "2024-01-01T00:00:00Z", 1, &["a"]);
    sent["type"] = json!("conference");
    let answer = app.ingest_json(&sent).await;
    let body = answer.assert_error(400, "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "The record is not valid: type: 'conference' is not a member of microsoft.graph.callRecords.callType; expected one of: unknown, groupCall, peerToPeer, unknownFutureValue"
    );
    assert_eq!(body["error"]["details"][0]["target"], "type");
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "0");
}

both!(unsupported_content_type_and_empty_body_are_refused);
async fn unsupported_content_type_and_empty_body_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.send(reqwest::Method::POST, "/ingest/callRecords", "text/csv", "a,b")
        .await
        .assert_error(415, "UnsupportedMediaType");
    app.send(reqwest::Method::POST, "/ingest/callRecords", "application/json", "")
        .await
        .assert_error(400, "BadRequest");
    for body in ["", "\n\n  \n"] {
        for path in ["/ingest/callRecords", "/ingest/pstnCalls"] {
            let answer = app
                .send(reqwest::Method::POST, path, "application/x-ndjson", body)
                .await;
            answer.assert_error(400, "BadRequest");
            assert!(answer.text.contains("holds no records"), "{}", answer.text);
        }
    }
    app.send(reqwest::Method::GET, "/ingest/callRecords", "application/json", "")
        .await
        .assert_error(405, "MethodNotAllowed");
}

both!(large_ndjson_batch_spans_several_transactions);
async fn large_ndjson_batch_spans_several_transactions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = minute_records("bulk", 1234);
    let report = app.ingest_ok(&records).await;
    assert_eq!(report["stored"], 1234);
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "1234");
}

both!(open_types_keep_undeclared_properties);
async fn open_types_keep_undeclared_properties(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut sent = record("r1", "2024-01-01T00:00:00Z", 1, &["a"]);
    sent["participants_v2"][0]["identity"]["acsUser"] = Value::Null;
    sent["participants_v2"][0]["identity"]["user"]["tenantId"] = json!("dc368399-474c-4d40-900c-6265431fd81f");
    sent["sessions"][0]["caller"]["feedback"] =
        json!({ "rating": "poor", "tokens": { "NoSound": false, "Noisy": true } });
    app.ingest_ok(&[sent]).await;

    let participant = app
        .graph("/communications/callRecords/r1/participants_v2/a")
        .await
        .json();
    assert_eq!(
        participant["identity"]["user"]["tenantId"],
        "dc368399-474c-4d40-900c-6265431fd81f"
    );
    assert!(participant["identity"].as_object().unwrap().contains_key("acsUser"));
    let session = app.graph("/communications/callRecords/r1/sessions/r1-s0").await.json();
    assert_eq!(
        session["caller"]["feedback"]["tokens"],
        json!({ "NoSound": false, "Noisy": true })
    );
}

both!(concurrent_ingests_beyond_the_limit_wait_their_turn);
async fn concurrent_ingests_beyond_the_limit_wait_their_turn(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        callrecords::api::ApiSettings {
            max_concurrent_ingests: 1,
            ..settings_with_retention(0)
        },
    )
    .await;
    let requests: Vec<Vec<Value>> = (0..4).map(|n| minute_records(&format!("queue{n}-"), 300)).collect();
    let answers = futures::future::join_all(requests.iter().map(|records| app.ingest_ndjson(records))).await;
    for answer in answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json()["stored"], 300);
    }
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "1200");
}

both!(ids_that_a_resource_path_cannot_address_are_refused_with_their_path);
async fn ids_that_a_resource_path_cannot_address_are_refused_with_their_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = "2024-01-01T00:00:00Z";
    let with_record_id = |id: &str| record(id, start, 1, &["a"]);
    let mut cases: Vec<(Value, &str)> = [
        "$count",
        "$metadata",
        "Sessions",
        "participants_v2",
        "organizer_v2",
        "getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)",
        "x(1)",
        "x)",
        "it's",
        "say \"hi\"",
        "..",
    ]
    .into_iter()
    .map(|id| (with_record_id(id), "id"))
    .collect();
    let mut session = record("bad-session", start, 1, &["a"]);
    session["sessions"][0]["id"] = json!("segments");
    cases.push((session, "sessions[0].id"));
    let mut segment = record("bad-segment", start, 1, &["a"]);
    segment["sessions"][0]["segments"][0]["id"] = json!("$count");
    cases.push((segment, "sessions[0].segments[0].id"));
    let mut participant = record("bad-participant", start, 1, &["a", "b"]);
    participant["participants_v2"][1]["id"] = json!("x('y')");
    cases.push((participant, "participants_v2[1].id"));
    let lookalikes = ["getPstnCalls", "getPstnCalls-1", "+15551234567", "50%", "a.b"];
    let mut lines: Vec<Value> = cases.iter().map(|(record, _)| record.clone()).collect();
    lines.extend(lookalikes.iter().map(|id| with_record_id(id)));

    let report = app.ingest_ndjson(&lines).await.json();
    assert_eq!(report["stored"], lookalikes.len(), "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), cases.len(), "{report}");
    for (error, (sent, path)) in errors.iter().zip(&cases) {
        assert_eq!(error["id"], sent["id"], "{error}");
        assert_eq!(error["path"], *path, "{error}");
        let reason = error["reason"].as_str().unwrap();
        assert!(reason.starts_with("must not"), "{error}");
    }

    // Every id accepted is addressable in both key forms.
    for id in lookalikes {
        let encoded = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string();
        for path in [
            format!("/communications/callRecords/{encoded}"),
            format!("/communications/callRecords('{encoded}')"),
            format!("/communications/callRecords/{encoded}/sessions/{encoded}-s0"),
            format!("/communications/callRecords('{encoded}')/sessions('{encoded}-s0')"),
        ] {
            let answer = app.graph(&path).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        }
    }
}
