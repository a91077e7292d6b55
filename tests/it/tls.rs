//! HTTPS: `--tls self-signed` (a local CA kept across restarts) and an operator's PEM files;
//! links are written with the scheme the client used, so a client that follows only `https://`
//! next links (the JavaScript Graph client) walks every page.

use std::sync::Arc;

use crate::support::*;
use callrecords::tls::{self, TlsSource};

fn self_signed(dir: &std::path::Path) -> Option<TlsSource> {
    Some(TlsSource::SelfSigned {
        dir: dir.to_owned(),
        hosts: tls::self_signed_hosts("127.0.0.1:0".parse().unwrap(), None),
    })
}

async fn spawn_tls(backend: Backend, source: Option<TlsSource>) -> TestApp {
    let database = Arc::new(TestDatabase::new(backend).await);
    TestApp::spawn_on_with_tls(database, settings_with_retention(0), notify_settings(), source).await
}

both!(a_self_signed_server_pages_over_https_with_https_links);
async fn a_self_signed_server_pages_over_https_with_https_links(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_tls(backend, self_signed(dir.path())).await;
    assert_eq!(app.scheme, "https");
    let ndjson: String = minute_records("a", 5)
        .iter()
        .map(|record| format!("{record}\n"))
        .collect();
    let stored = app
        .send(
            reqwest::Method::POST,
            "/ingest/callRecords",
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(stored.status, 200, "{}", stored.text);

    let mut next = Some(app.url("/v1.0/communications/callRecords"));
    let mut seen = 0;
    let mut pages = 0;
    while let Some(url) = next {
        let page = app.follow(&url, &[("prefer", "odata.maxpagesize=2")]).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let body = page.json();
        pages += 1;
        seen += body["value"].as_array().unwrap().len();
        let context = body["@odata.context"].as_str().unwrap();
        assert!(context.starts_with(&format!("https://{}/v1.0/", app.addr)), "{context}");
        next = body["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.starts_with(&format!("https://{}/v1.0/", app.addr)), "{link}");
        }
    }
    assert_eq!((seen, pages), (5, 3));

    // A client that does not trust the local CA is refused at the handshake.
    let stranger = reqwest::Client::new();
    let refused = stranger.get(app.url("/healthz")).send().await;
    assert!(refused.is_err(), "an untrusted certificate must fail the handshake");
    // And plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(plain.map(|answer| !answer.status().is_success()).unwrap_or(true));
}

both!(the_self_signed_ca_is_kept_across_restarts);
async fn the_self_signed_ca_is_kept_across_restarts(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_tls(backend, self_signed(dir.path())).await;
    let ca = first.ca_pem.clone().unwrap();
    drop(first);
    let second = spawn_tls(backend, self_signed(dir.path())).await;
    assert_eq!(
        second.ca_pem.as_deref(),
        Some(&ca[..]),
        "clients that trusted the CA keep trusting it"
    );
    // A client holding only the first start's CA reaches the second server.
    let client = client_builder(Some(&ca)).build().unwrap();
    let answer = client.get(second.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
}

both!(an_operators_certificate_files_are_served);
async fn an_operators_certificate_files_are_served(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let files = tls::ensure_self_signed(
        dir.path(),
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let mut app = spawn_tls(
        backend,
        Some(TlsSource::Files {
            cert: files.certificate.clone(),
            key: files.key.clone(),
        }),
    )
    .await;
    assert_eq!(app.scheme, "https");
    assert!(app.ca_pem.is_none(), "an operator's certificate has no CA of ours");
    app.ca_pem = Some(std::fs::read(&files.ca_certificate).unwrap());
    app.use_token(None);
    let answer = app.graph("/communications/callRecords").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.json()["@odata.context"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
}

#[tokio::test]
async fn a_missing_certificate_file_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let config = callrecords::app::ServeConfig {
        sync: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: callrecords::clock::system(),
        db_url: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        store: Default::default(),
        connections: Default::default(),
        api: settings_with_retention(0),
        retention: Default::default(),
        notify: notify_settings(),
        tls: Some(TlsSource::Files {
            cert: missing.clone(),
            key: missing.clone(),
        }),
    };
    let error = match callrecords::app::App::build(config).await {
        Ok(_) => panic!("a missing certificate must stop the start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("missing.pem"), "{error}");
}
