//! What a newcomer and an operator meet first: the start page at `/`, the service document at
//! each version's root, and `/metrics`.

use callrecords::auth::local::{self, TokenRequest, DEFAULT_AUDIENCE};
use callrecords::store::TenantId;
use serde_json::json;

use crate::support::*;

/// The `href`s of a page, with the entities HTML escaping writes turned back into characters.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| {
            rest[..rest.find('"').expect("a closing quote")]
                .replace("&#38;", "&")
                .replace("&amp;", "&")
                .replace("&#39;", "'")
        })
        .collect()
}

both!(each_version_root_is_an_odata_service_document);
async fn each_version_root_is_an_odata_service_document(backend: Backend) {
    // Like $metadata, it needs no token.
    let app = TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await;
    for (path, version) in [
        ("/v1.0", "v1.0"),
        ("/v1.0/", "v1.0"),
        ("/beta", "beta"),
        ("/beta/", "beta"),
    ] {
        let answer = app.get_with(path, &[]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert!(
            answer.header("content-type").unwrap().starts_with("application/json"),
            "{path}"
        );
        assert_eq!(
            answer.json(),
            json!({
                "@odata.context": app.url(&format!("/{version}/$metadata")),
                "value": [
                    { "name": "communications", "kind": "Singleton", "url": "communications" },
                    { "name": "subscriptions", "kind": "EntitySet", "url": "subscriptions" },
                ]
            }),
            "{path}"
        );
    }
    let refused = app
        .send(reqwest::Method::POST, "/v1.0", "application/json", Vec::<u8>::new())
        .await;
    assert_eq!(refused.status, 405, "{}", refused.text);
}

both!(the_start_page_tells_the_base_urls_the_tenants_and_links_that_answer);
async fn the_start_page_tells_the_base_urls_the_tenants_and_links_that_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let today = time::OffsetDateTime::now_utc().date();
    let start = format!("{today}T00:00:01Z");
    app.ingest_ok(&[
        record("first", &start, 2, &["a", "b"]),
        record("second", &start, 1, &["a"]),
    ])
    .await;
    let page = app.get_with("/", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = &page.text;
    assert!(
        html.contains(&format!("<code id=\"base-v1\">{}</code>", app.url("/v1.0"))),
        "{html}"
    );
    assert!(
        html.contains(&format!("<code id=\"base-beta\">{}</code>", app.url("/beta"))),
        "{html}"
    );
    assert!(html.contains("Mode <code>none</code>"), "{html}");
    assert!(html.contains("2 call records in 1 tenant(s)"), "{html}");
    assert!(
        html.contains(&format!(
            "<td><code>{}</code></td><td class=\"count\">2</td>",
            TenantId::DEFAULT
        )),
        "{html}"
    );
    let links = hrefs(html);
    assert!(
        links
            .iter()
            .any(|link| link.contains("/callRecords/first?$expand=sessions")
                || link.contains("/callRecords/second?$expand=sessions")),
        "a link to one of the records: {links:?}"
    );
    assert!(links.len() >= 10, "{links:?}");
    for link in links {
        let answer = app.get_with(&link, &[]).await;
        assert_eq!(answer.status, 200, "{link}: {}", answer.text);
    }
}

both!(with_authentication_the_start_page_names_no_tenant);
async fn with_authentication_the_start_page_names_no_tenant(backend: Backend) {
    let mut app = TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await;
    let tenant = "22222222-2222-2222-2222-222222222222";
    let token = local::issue_token(
        app.store.as_ref(),
        &TokenRequest {
            tenant: TenantId::parse(tenant).unwrap(),
            app_id: "front-door".to_owned(),
            roles: vec!["CallRecords.Ingest".to_owned()],
            audience: DEFAULT_AUDIENCE.to_owned(),
            lifetime_secs: 600,
        },
    )
    .await
    .unwrap();
    app.use_token(Some(&token));
    app.ingest_ok(&[record("hidden-record-7", "2024-01-01T00:00:00Z", 1, &["a"])])
        .await;
    app.use_token(None);
    let page = app.get_with("/", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("1 call records in 1 tenant(s)"), "{}", page.text);
    assert!(!page.text.contains(tenant), "{}", page.text);
    assert!(!page.text.contains("hidden-record-7"), "{}", page.text);
    assert!(page.text.contains("Mode <code>local</code>"), "{}", page.text);
    assert!(page.text.contains("callrecords apps add --tenant"), "{}", page.text);
    assert!(
        page.text.contains(&format!(
            "{}/11111111-1111-1111-1111-111111111111/oauth2/v2.0/token",
            app.url("")
        )),
        "{}",
        page.text
    );
}

both!(metrics_count_requests_by_route_ingest_and_the_store);
async fn metrics_count_requests_by_route_ingest_and_the_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let report = app
        .ingest_ndjson(&[
            record("m1", "2024-01-01T00:00:00Z", 2, &["a"]),
            json!({ "id": "broken" }),
        ])
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    app.ingest_kind_ok("pstnCalls", &[pstn_row("p1", "2024-01-01T00:00:00Z")])
        .await;
    for _ in 0..3 {
        assert_eq!(app.graph("/communications/callRecords/m1").await.status, 200);
    }
    assert_eq!(app.graph("/communications/callRecords/nobody").await.status, 404);
    assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    let metrics = app.get_with("/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    let text = &metrics.text;
    let value = |line_start: &str| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with(line_start))
            .unwrap_or_else(|| panic!("no line {line_start}:\n{text}"));
        line[line_start.len()..].trim().parse().unwrap()
    };
    let record_route = r#"callrecords_http_requests_total{route="/v1.0/communications/callRecords/{id}",method="GET""#;
    assert_eq!(value(&format!(r#"{record_route},status="200"}}"#)), 3.0);
    assert_eq!(value(&format!(r#"{record_route},status="404"}}"#)), 1.0);
    assert_eq!(
        value(r#"callrecords_http_requests_total{route="/v1.0/communications/callRecords",method="GET",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"callrecords_http_requests_total{route="/ingest/callRecords",method="POST",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"callrecords_http_request_duration_seconds_count{route="/v1.0/communications/callRecords/{id}"}"#),
        4.0
    );
    assert_eq!(
        value(r#"callrecords_ingest_records_total{kind="callRecords",outcome="stored"}"#),
        1.0
    );
    assert_eq!(
        value(r#"callrecords_ingest_records_total{kind="callRecords",outcome="rejected"}"#),
        1.0
    );
    assert_eq!(
        value(r#"callrecords_ingest_records_total{kind="pstnCalls",outcome="stored"}"#),
        1.0
    );
    assert!(value(r#"callrecords_ingest_bytes_total{kind="callRecords"}"#) > 100.0);
    assert_eq!(
        value(r#"callrecords_ingest_streams_total{media_type="audio",classification="good"}"#),
        2.0,
        "m1's two audio streams (jitter 16 ms, loss 1.4 %)"
    );
    assert_eq!(value("callrecords_store_call_records "), 1.0);
    assert_eq!(value("callrecords_store_tenants "), 1.0);
    assert!(value("callrecords_store_bytes ") > 0.0);
    assert_eq!(value(r#"callrecords_store_log_rows{kind="pstnCalls"}"#), 1.0);
    assert_eq!(value(r#"callrecords_store_log_rows{kind="smsLogs"}"#), 0.0);
    // Labels hold templates, never ids.
    assert!(!text.contains("m1") && !text.contains("nobody"), "{text}");
    assert!(text.contains("callrecords_deliveries_sent_total"), "{text}");
}

#[tokio::test]
async fn ingest_counts_the_streams_it_stores_by_cqd_classification() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut poor = record("q1", "2024-01-01T00:00:00Z", 3, &["a"]);
    poor["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!("PT0.045S");
    poor["sessions"][1]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!("PT0.05S");
    poor["sessions"][1]["segments"][0]["media"][0]["streams"][0]["averageRoundTripTime"] = json!("PT0.6S");
    poor["sessions"][2]["segments"][0]["media"][0]["streams"][0]["averagePacketLossRate"] = json!("NaN");
    poor["sessions"][2]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!(null);
    app.ingest_ok(&[poor.clone()]).await;
    // A replay is ignored by the version rule, and its streams are not counted again.
    app.ingest_ok(&[poor]).await;
    let text = app.get_with("/metrics", &[]).await.text;
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(line_start))
            .unwrap_or_else(|| panic!("no line {line_start}:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    let streams = |class: &str| {
        value(&format!(
            r#"callrecords_ingest_streams_total{{media_type="audio",classification="{class}"}}"#
        ))
    };
    assert_eq!((streams("poor"), streams("unclassified")), (2.0, 1.0));
    let poor_due_to = |condition: &str| {
        value(&format!(
            r#"callrecords_ingest_poor_streams_total{{media_type="audio",condition="{condition}"}}"#
        ))
    };
    assert_eq!((poor_due_to("jitter"), poor_due_to("roundTrip")), (2.0, 1.0));
    assert!(!text.contains(r#"classification="good""#), "{text}");
}
