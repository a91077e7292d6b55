//! getPstnCalls, getDirectRoutingCalls (v1.0) and getSmsLog (beta; the other beta kinds are in beta.rs): ranges, paging, errors,
//! and their ingest endpoints.

use serde_json::json;

use crate::support::*;

/// `count` rows one second apart from 2024-03-01T00:00:00Z, ids `{prefix}-{n:05}`.
fn rows_per_second(prefix: &str, count: usize, make: fn(&str, &str) -> serde_json::Value) -> Vec<serde_json::Value> {
    (0..count)
        .map(|n| {
            let start = format!("2024-03-01T{:02}:{:02}:{:02}Z", n / 3600, n / 60 % 60, n % 60);
            make(&format!("{prefix}-{n:05}"), &start)
        })
        .collect()
}

both!(pstn_rows_page_by_a_thousand_without_skips_or_repeats);
async fn pstn_rows_page_by_a_thousand_without_skips_or_repeats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok("pstnCalls", &rows_per_second("p", 2500, pstn_row))
        .await;

    let path = "/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)";
    let first = app.graph(path).await.json();
    assert_eq!(
        first["@odata.context"],
        format!(
            "http://{}/v1.0/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)",
            app.addr
        )
    );
    assert_eq!(first["@odata.count"], 1000);
    assert_eq!(first["value"][0], pstn_row("p-00000", "2024-03-01T00:00:00Z"));
    let (rows, pages) = app.collect_pages(path, &[]).await;
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..2500).map(|n| format!("p-{n:05}")).collect();
    assert_eq!(ids(&rows), expected);
}

both!(money_keeps_the_scale_it_was_sent_with);
async fn money_keeps_the_scale_it_was_sent_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let line =
        r#"{"id":"m1","startDateTime":"2024-03-01T10:00:00Z","charge":0.00,"connectionCharge":1.50,"currency":"USD"}"#;
    let answer = app
        .send(reqwest::Method::POST, "/ingest/pstnCalls", "application/json", line)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let text = app
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)")
        .await
        .text;
    assert!(
        text.contains(r#""charge":0.00,"#) && text.contains(r#""connectionCharge":1.50,"#),
        "{text}"
    );
}

both!(range_is_from_inclusive_to_exclusive);
async fn range_is_from_inclusive_to_exclusive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok(
        "directRoutingCalls",
        &[
            direct_routing_row("before", "2024-02-29T23:59:59.9999999Z"),
            direct_routing_row("at-from", "2024-03-01T00:00:00Z"),
            direct_routing_row("inside", "2024-03-01T12:00:00Z"),
            direct_routing_row("at-to", "2024-03-02T00:00:00Z"),
        ],
    )
    .await;
    for path in [
        "/communications/callRecords/getDirectRoutingCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)",
        "/communications/callRecords/microsoft.graph.callRecords.getDirectRoutingCalls(fromDateTime=2024-03-01T00%3A00%3A00%2B00%3A00toDateTime=2024-03-02T00%3A00%3A00%2B00%3A00)",
        "/communications/callRecords/getDirectRoutingCalls(toDateTime=2024-03-02T01:00:00%2B01:00,fromDateTime=2024-03-01T00:00:00Z)",
    ] {
        let body = app.graph(path).await.json();
        assert_eq!(ids(body["value"].as_array().unwrap()), ["at-from", "inside"], "{path}");
        assert_eq!(body["@odata.count"], 2);
    }
}

both!(top_and_skip_are_honoured);
async fn top_and_skip_are_honoured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok("pstnCalls", &rows_per_second("p", 1200, pstn_row))
        .await;
    let base = "/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)";
    let (rows, pages) = app.collect_pages(&format!("{base}?$top=1100"), &[]).await;
    assert_eq!((rows.len(), pages), (1100, 2));
    let skipped = app.graph(&format!("{base}?$skip=1190&$count=true")).await.json();
    assert_eq!(
        ids(skipped["value"].as_array().unwrap()).first().map(String::as_str),
        Some("p-01190")
    );
    assert_eq!(skipped["@odata.count"], 10);
}

both!(rows_arriving_between_pages_neither_skip_nor_repeat);
async fn rows_arriving_between_pages_neither_skip_nor_repeat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok("pstnCalls", &rows_per_second("old", 2100, pstn_row))
        .await;
    let path = "/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)";
    let mut answer = app.graph(path).await;
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let body = answer.json();
        seen.extend(ids(body["value"].as_array().unwrap()));
        app.ingest_kind_ok(
            "pstnCalls",
            &[pstn_row(&format!("early-{round}"), "2024-03-01T00:00:00.5Z")],
        )
        .await;
        round += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => answer = app.follow(next, &[]).await,
            None => break,
        }
    }
    let old: Vec<String> = seen.iter().filter(|id| id.starts_with("old-")).cloned().collect();
    assert_eq!(old, (0..2100).map(|n| format!("old-{n:05}")).collect::<Vec<_>>());
}

both!(sms_log_is_served_under_beta_only);
async fn sms_log_is_served_under_beta_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok("smsLogs", &[sms_row("s1", "2024-03-01T10:00:00Z")])
        .await;
    let beta = app
        .get_with(
            "/beta/communications/callRecords/getSmsLog(fromDateTime=2024-03-01,toDateTime=2024-03-02)",
            &[],
        )
        .await
        .json();
    assert_eq!(
        beta["@odata.context"],
        format!(
            "http://{}/beta/$metadata#Collection(microsoft.graph.callRecords.smsLogRow)",
            app.addr
        )
    );
    assert_eq!(beta["value"][0], sms_row("s1", "2024-03-01T10:00:00Z"));
    assert!(beta["value"][0].to_string().contains("\"callCharge\":0.0075"));

    let without_dollar = app
        .get_with(
            "/beta/communications/callRecords/getSmsLog(fromDateTime=2024-03-01,toDateTime=2024-03-02)?top=0",
            &[],
        )
        .await;
    without_dollar.assert_error(400, "BadRequest");
    app.graph("/communications/callRecords/getSmsLog(fromDateTime=2024-03-01,toDateTime=2024-03-02)")
        .await
        .assert_error(400, "BadRequest");
}

both!(function_errors_say_which_parameter_and_why);
async fn function_errors_say_which_parameter_and_why(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("getPstnCalls(toDateTime=2024-03-02)", "fromDateTime", "The parameter 'fromDateTime' is required."),
        ("getPstnCalls(fromDateTime=2024-03-01)", "toDateTime", "The parameter 'toDateTime' is required."),
        ("getDirectRoutingCalls(fromDateTime=March,toDateTime=2024-03-02)", "fromDateTime", "The parameter 'fromDateTime' has the value 'March', which is not a date such as 2019-11-01 or a time such as 2019-11-01T00:00:00Z."),
        ("getPstnCalls(fromDateTime=2024-03-02,toDateTime=2024-03-01)", "toDateTime", "The parameter 'toDateTime' (2024-03-01T00:00:00Z) must not be before fromDateTime (2024-03-02T00:00:00Z)."),
        ("getDirectRoutingCalls(fromDateTime=2024-01-01,toDateTime=2024-06-01)", "toDateTime", "The date range cannot exceed 90 days: fromDateTime is 2024-01-01T00:00:00Z and toDateTime is 2024-06-01T00:00:00Z."),
        ("getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)?$filter=duration%20gt%201", "$filter", "Query option '$filter' is not supported on this resource."),
        ("getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)?$skip=-1", "$skip", "$skip must be a non-negative integer, not '-1'."),
        ("getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)?$skiptoken=abc", "$skiptoken", "Invalid skip token."),
    ];
    for (call, target, message) in cases {
        let body = app
            .graph(&format!("/communications/callRecords/{call}"))
            .await
            .assert_error(400, "BadRequest");
        assert_eq!(
            (body["error"]["target"].as_str(), body["error"]["message"].as_str()),
            (Some(target), Some(message)),
            "{call}"
        );
    }
    app.graph("/communications/callRecords/getCallCounts(fromDateTime=2024-03-01,toDateTime=2024-03-02)")
        .await
        .assert_error(400, "BadRequest");
}

both!(log_ingest_is_idempotent_by_id_and_reports_bad_lines);
async fn log_ingest_is_idempotent_by_id_and_reports_bad_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let row = pstn_row("p1", "2024-03-01T10:00:00Z");
    assert_eq!(
        app.ingest_kind_ok("pstnCalls", std::slice::from_ref(&row)).await["stored"],
        1
    );
    let mut changed = row.clone();
    changed["duration"] = json!(999);
    let replay = app.ingest_kind_ok("pstnCalls", &[row.clone(), changed]).await;
    assert_eq!(
        (replay["stored"].clone(), replay["ignored"].clone()),
        (json!(0), json!(2))
    );

    let body = format!(
        "{}\n{}\n",
        json!({ "id": "no-start" }),
        pstn_row("p2", "2024-03-01T11:00:00Z")
    );
    let answer = app
        .send(reqwest::Method::POST, "/ingest/pstnCalls", "application/x-ndjson", body)
        .await
        .json();
    assert_eq!(answer["stored"], 1);
    assert_eq!(
        answer["errors"],
        json!([{ "line": 1, "id": "no-start", "path": "startDateTime", "reason": "is required to store a row: it keys and orders the log" }])
    );

    let served = app
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)")
        .await
        .json();
    assert_eq!(served["value"][0]["duration"], 219, "the first stored row is kept");
    assert_eq!(served["@odata.count"], 2);
}
