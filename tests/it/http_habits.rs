//! What Graph clients expect of HTTP itself: gzip when they ask for it, and CORS for the
//! origins an operator configured (none by default).

use std::io::Read;

use axum::http::HeaderValue;
use callrecords::api::ApiSettings;

use crate::support::*;

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip stream");
    text
}

async fn raw_get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

both!(answers_are_gzipped_when_the_client_asks_and_only_then);
async fn answers_are_gzipped_when_the_client_asks_and_only_then(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r", "2024-01-01T00:00:00Z", 3, &["a", "b"])])
        .await;
    for path in [
        "/v1.0/communications/callRecords/r?$expand=sessions",
        "/v1.0/communications/callRecords",
        "/v1.0/communications/callRecords/nobody",
    ] {
        let plain = raw_get(&app, path, &[]).await;
        let status = plain.status();
        assert_eq!(plain.headers().get("content-encoding"), None, "{path}");
        let plain: serde_json::Value = serde_json::from_str(&plain.text().await.unwrap()).unwrap();

        let zipped = raw_get(&app, path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(zipped.status(), status, "{path}");
        assert_eq!(
            zipped.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
            Some("gzip"),
            "{path}"
        );
        assert!(zipped.headers().get("request-id").is_some());
        let text = gunzip(&zipped.bytes().await.unwrap());
        let unzipped: serde_json::Value = serde_json::from_str(&text).unwrap();
        if status.is_success() {
            assert_eq!(unzipped, plain, "{path}");
        } else {
            assert_eq!(unzipped["error"]["code"], plain["error"]["code"], "{path}");
        }
    }
    // An encoding we do not speak is not used.
    let other = raw_get(&app, "/v1.0/communications/callRecords", &[("accept-encoding", "br")]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.headers().get("content-encoding"), None);
}

fn with_origins(origins: &[&str]) -> ApiSettings {
    ApiSettings {
        cors_origins: origins.iter().map(|o| HeaderValue::from_str(o).unwrap()).collect(),
        ..settings_with_retention(0)
    }
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,client-request-id,prefer,sdkversion",
        )
        .send()
        .await
        .expect("request sent")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn configured_origins_get_preflights_and_cors_headers_others_do_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_origins(&["http://localhost:5173"])).await;
    let path = "/v1.0/communications/callRecords";
    let allowed = preflight(&app, path, "http://localhost:5173").await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let methods = header(&allowed, "access-control-allow-methods").unwrap().to_owned();
    assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
    let headers = header(&allowed, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for needed in ["authorization", "client-request-id", "prefer", "sdkversion"] {
        assert!(headers.contains(needed), "{headers}");
    }

    let elsewhere = preflight(&app, path, "https://evil.example").await;
    assert_eq!(header(&elsewhere, "access-control-allow-origin"), None);

    let answer = raw_get(&app, path, &[("origin", "http://localhost:5173")]).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let exposed = header(&answer, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for readable in ["request-id", "client-request-id", "preference-applied", "retry-after"] {
        assert!(exposed.contains(readable), "{exposed}");
    }
    // Errors carry the headers too, or the page could not read why it failed.
    let missing = raw_get(
        &app,
        "/v1.0/communications/callRecords/none",
        &[("origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(&missing, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_origins(&[])).await;
    let path = "/v1.0/communications/callRecords";
    let refused = preflight(&app, path, "http://localhost:5173").await;
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let answer = raw_get(&app, path, &[("origin", "http://localhost:5173")]).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);

    let any = TestApp::spawn_with(Backend::Sqlite, with_origins(&["*"])).await;
    let answer = raw_get(&any, path, &[("origin", "https://app.example")]).await;
    assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
}
