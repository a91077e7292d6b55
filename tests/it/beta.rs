//! Graph beta under `/beta/`: the whole call records surface with beta's schema, the beta-only
//! functions and row properties, and v1.0 answers unchanged by them.

use serde_json::{json, Value};

use crate::support::*;

const RANGE: &str = "(fromDateTime=2024-03-01,toDateTime=2024-03-03)";

fn beta_pstn_row(id: &str, start: &str) -> Value {
    let mut row = pstn_row(id, start);
    let object = row.as_object_mut().unwrap();
    object.insert("administrativeUnitInfos".into(), json!([{ "id": "au-1" }]));
    object.insert("otherPartyCountryCode".into(), json!("DE"));
    object.insert("clientLocalIpV4Address".into(), json!("10.0.0.7"));
    object.insert("clientLocalIpV6Address".into(), json!("fd00::7"));
    object.insert("clientPublicIpV4Address".into(), json!("203.0.113.7"));
    object.insert("clientPublicIpV6Address".into(), Value::Null);
    row
}

fn blocked(user: &str, at: &str, mode: &str) -> Value {
    json!({
        "blockDateTime": at, "blockReason": "Suspected toll fraud", "remediationId": "r-1",
        "userBlockMode": mode, "userDisplayName": "U One", "userId": user,
        "userPrincipalName": format!("{user}@contoso.com"), "userTelephoneNumber": "+14255550100"
    })
}

fn dialout_day(user: &str, day: &str, context: &str, calls: i32, seconds: i32, charge: &str) -> String {
    format!(
        r#"{{"usageDate":"{day}","userId":"{user}","userPrincipalName":"{user}@contoso.com","userDisplayName":"User {user}","usageLocation":"US","destinationContext":"{context}","currency":"USD","totalCalls":{calls},"totalCallSeconds":{seconds},"totalCallCharge":{charge}}}"#
    )
}

both!(the_whole_surface_is_served_under_beta_with_optional_dollars);
async fn the_whole_surface_is_served_under_beta_with_optional_dollars(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r", "2024-03-01T10:00:00Z", 3, &["alice", "bob"])])
        .await;
    for path in [
        "/communications/callRecords?$select=id,type",
        "/communications/callRecords/r?$expand=sessions($expand=segments)",
        "/communications/callRecords/r/sessions?$top=2",
        "/communications/callRecords/r/sessions/r-s0/segments",
        "/communications/callRecords/r/participants_v2",
        "/communications/callRecords/r/organizer_v2",
    ] {
        let v1 = app.graph(path).await;
        let beta = app.get_with(&format!("/beta{path}"), &[]).await;
        assert_eq!((v1.status, beta.status), (200, 200), "{path}: {}", beta.text);
        // The same answer but for the version in its links.
        assert_eq!(beta.text, v1.text.replace("/v1.0/", "/beta/"), "{path}");
        // Without the `$` of the query options, beta reads the same options.
        let bare = app
            .get_with(&format!("/beta{}", path.replace("?$", "?").replace("&$", "&")), &[])
            .await;
        assert_eq!(bare.status, 200, "{path}: {}", bare.text);
        if path.contains('?') {
            let bare_json = bare.json();
            assert_eq!(
                bare_json.get("value").map(|v| v.as_array().map(Vec::len)),
                beta.json().get("value").map(|v| v.as_array().map(Vec::len)),
                "{path}"
            );
        }
    }
    let count = app
        .get_with("/beta/communications/callRecords/r/sessions/$count", &[])
        .await;
    assert_eq!((count.status, count.text.as_str()), (200, "3"));
    let next = app
        .get_with(
            "/beta/communications/callRecords/r/sessions?top=3",
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await
        .json();
    let link = next["@odata.nextLink"].as_str().unwrap();
    assert!(link.contains("/beta/communications/"), "{link}");
    assert_eq!(app.follow(link, &[]).await.json()["value"].as_array().unwrap().len(), 1);

    let beta_metadata = app.get_with("/beta/$metadata", &[]).await;
    assert_eq!(beta_metadata.status, 200);
    for beta_only in [
        "getPstnBlockedUsersLog",
        "getPstnOnlineMeetingDialoutReport",
        "pstnUserBlockMode",
        "callLogRow",
    ] {
        assert!(beta_metadata.text.contains(beta_only), "{beta_only}");
    }
    let v1_metadata = app.graph("/$metadata").await;
    assert!(!v1_metadata.text.contains("getPstnBlockedUsersLog"));
    app.get_with("/beta/communications/callRecords/r/nothing", &[])
        .await
        .assert_error(400, "BadRequest");
}

both!(beta_only_functions_are_unknown_segments_on_v1);
async fn beta_only_functions_are_unknown_segments_on_v1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for function in [
        "getSmsLog",
        "getPstnBlockedUsersLog",
        "getPstnOnlineMeetingDialoutReport",
    ] {
        let body = app
            .graph(&format!("/communications/callRecords/{function}{RANGE}"))
            .await
            .assert_error(400, "BadRequest");
        assert!(body["error"]["message"].as_str().unwrap().contains(function), "{body}");
        let beta = app
            .get_with(
                &format!("/beta/communications/callRecords/microsoft.graph.callRecords.{function}{RANGE}"),
                &[],
            )
            .await;
        assert_eq!(beta.status, 200, "{function}: {}", beta.text);
    }
}

both!(beta_row_properties_are_kept_for_beta_and_left_out_of_v1);
async fn beta_row_properties_are_kept_for_beta_and_left_out_of_v1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_kind_ok("pstnCalls", &[pstn_row("plain", "2024-03-01T10:00:00Z")])
        .await;
    let v1_before = app
        .graph(&format!("/communications/callRecords/getPstnCalls{RANGE}"))
        .await
        .text;
    app.ingest_kind_ok("pstnCalls", &[beta_pstn_row("rich", "2024-03-01T11:00:00Z")])
        .await;
    let mut direct = direct_routing_row("dr", "2024-03-01T12:00:00Z");
    direct["transferorCorrelationId"] = json!("t-1");
    direct["userCountryCode"] = json!("US");
    app.ingest_kind_ok("directRoutingCalls", &[direct.clone()]).await;

    let v1 = app
        .graph(&format!("/communications/callRecords/getPstnCalls{RANGE}"))
        .await
        .json();
    assert_eq!(v1["value"][0], pstn_row("plain", "2024-03-01T10:00:00Z"));
    // Byte for byte what v1.0 served before beta properties existed.
    let mut expected_rich = pstn_row("rich", "2024-03-01T11:00:00Z");
    assert_eq!(v1["value"][1], expected_rich);
    assert!(v1_before.contains(&serde_json::to_string(&v1["value"][0]).unwrap()));
    let v1_direct = app
        .graph(&format!("/communications/callRecords/getDirectRoutingCalls{RANGE}"))
        .await
        .json();
    assert_eq!(v1_direct["value"][0], direct_routing_row("dr", "2024-03-01T12:00:00Z"));

    let beta = app
        .get_with(&format!("/beta/communications/callRecords/getPstnCalls{RANGE}"), &[])
        .await
        .json();
    assert_eq!(beta["value"][1], beta_pstn_row("rich", "2024-03-01T11:00:00Z"));
    // A row sent without them has them all on beta, empty.
    for (name, empty) in [
        ("administrativeUnitInfos", json!([])),
        ("otherPartyCountryCode", Value::Null),
        ("clientLocalIpV4Address", Value::Null),
        ("clientPublicIpV6Address", Value::Null),
    ] {
        assert_eq!(beta["value"][0][name], empty, "{name}");
    }
    expected_rich = beta_pstn_row("plain", "2024-03-01T10:00:00Z");
    assert_eq!(
        beta["value"][0].as_object().unwrap().len(),
        expected_rich.as_object().unwrap().len()
    );
    let beta_direct = app
        .get_with(
            &format!("/beta/communications/callRecords/getDirectRoutingCalls{RANGE}"),
            &[],
        )
        .await
        .json();
    assert_eq!(beta_direct["value"][0]["transferorCorrelationId"], "t-1");
    assert_eq!(beta_direct["value"][0]["otherPartyCountryCode"], Value::Null);
    assert_eq!(beta_direct["value"][0]["administrativeUnitInfos"], json!([]));
}

both!(blocked_users_log_serves_block_events_of_the_range);
async fn blocked_users_log_serves_block_events_of_the_range(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rows = [
        blocked("u1", "2024-03-01T09:00:00Z", "blocked"),
        blocked("u1", "2024-03-02T09:00:00Z", "unblocked"),
        blocked("u2", "2024-03-05T09:00:00Z", "blocked"),
    ];
    app.ingest_kind_ok("pstnBlockedUsers", &rows).await;
    // The same events again are stored once: the type has no id, the store keys them itself.
    let again = app.ingest_kind_ok("pstnBlockedUsers", &rows[..1]).await;
    assert_eq!(again["stored"], 0, "{again}");
    let got = app
        .get_with(
            &format!("/beta/communications/callRecords/getPstnBlockedUsersLog{RANGE}"),
            &[],
        )
        .await
        .json();
    assert_eq!(
        got["@odata.context"],
        format!(
            "http://{}/beta/$metadata#Collection(microsoft.graph.callRecords.pstnBlockedUsersLogRow)",
            app.addr
        )
    );
    assert_eq!(got["@odata.count"], 2);
    assert_eq!(got["value"][0], rows[0]);
    assert_eq!(got["value"][1], rows[1]);

    let bad = app
        .send(
            reqwest::Method::POST,
            "/ingest/pstnBlockedUsers",
            "application/x-ndjson",
            format!(
                "{}\n{}\n",
                blocked("u3", "2024-03-01T09:00:00Z", "suspended"),
                json!({ "userId": "u4" })
            ),
        )
        .await
        .json();
    assert_eq!(bad["rejected"], 2, "{bad}");
    let errors = bad["errors"].to_string();
    assert!(
        errors.contains("pstnUserBlockMode") && errors.contains("blockDateTime"),
        "{errors}"
    );
}

both!(the_dialout_report_sums_the_days_of_the_range_by_user_location_context_and_currency);
async fn the_dialout_report_sums_the_days_of_the_range_by_user_location_context_and_currency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let days = [
        dialout_day("u1", "2024-03-01", "Domestic", 2, 120, "0.50"),
        dialout_day("u1", "2024-03-02", "Domestic", 1, 30, "0.125"),
        dialout_day("u1", "2024-03-02", "International", 1, 60, "1.00"),
        dialout_day("u2", "2024-03-01", "Domestic", 4, 400, "2.00"),
        // Outside the range.
        dialout_day("u1", "2024-03-03", "Domestic", 9, 900, "9.00"),
    ];
    let body: String = days.iter().map(|day| format!("{day}\n")).collect();
    let report = app
        .send(
            reqwest::Method::POST,
            "/ingest/pstnOnlineMeetingDialoutReport",
            "application/x-ndjson",
            body,
        )
        .await
        .json();
    assert_eq!(
        (report["stored"].as_u64(), report["rejected"].as_u64()),
        (Some(5), Some(0)),
        "{report}"
    );
    let path = format!("/beta/communications/callRecords/getPstnOnlineMeetingDialoutReport{RANGE}");
    let got = app.get_with(&path, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text);
    // The charge keeps its scale through the sum: 0.50 + 0.125 is 0.625.
    assert!(got.text.contains(r#""totalCallCharge":0.625"#), "{}", got.text);
    let got = got.json();
    let entries = got["value"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{got}");
    assert_eq!(
        entries[0],
        json!({ "currency": "USD", "destinationContext": "Domestic", "totalCallCharge": 0.625, "totalCalls": 3,
            "totalCallSeconds": 150, "usageLocation": "US", "userDisplayName": "User u1", "userId": "u1",
            "userPrincipalName": "u1@contoso.com" })
    );
    assert_eq!(entries[1]["destinationContext"], "International");
    assert_eq!(entries[2]["userId"], "u2");
    assert_eq!(entries[2]["totalCalls"], 4);

    // Past a page of 1,000 entries, the next link continues after the last entry's key.
    let many: String = (1000..2005)
        .map(|n| {
            format!(
                "{}\n",
                dialout_day(&format!("u{n}"), "2024-03-01", "Domestic", 1, 60, "0.10")
            )
        })
        .collect();
    app.send(
        reqwest::Method::POST,
        "/ingest/pstnOnlineMeetingDialoutReport",
        "application/x-ndjson",
        many,
    )
    .await;
    let mut link = Some(app.url(&path));
    let mut seen: Vec<Value> = Vec::new();
    let mut pages = 0;
    while let Some(url) = link {
        let page = app.follow(&url, &[]).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        pages += 1;
        seen.extend(page["value"].as_array().unwrap().iter().cloned());
        link = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!((pages, seen.len()), (2, 1008));
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|e| {
            (
                e["userId"].as_str().unwrap().to_owned(),
                e["destinationContext"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "in key order, none repeated");

    let bad = app
        .send(
            reqwest::Method::POST,
            "/ingest/pstnOnlineMeetingDialoutReport",
            "application/json",
            r#"{"userId":"u1","totalCalls":1}"#,
        )
        .await;
    assert!(bad.text.contains("usageDate"), "{}", bad.text);
}
