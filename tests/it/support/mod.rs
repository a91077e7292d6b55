//! `TestApp`: the real app on `127.0.0.1:0` over a fresh store, and a client for our API, so a
//! test for a new endpoint is about ten lines.

#[macro_use]
pub mod database;
pub mod dns;
pub mod process;
pub mod receiver;
pub mod records;

use std::net::SocketAddr;

use callrecords::api::ApiSettings;
use callrecords::app::{App, ServeConfig};
use callrecords::notify::NotifySettings;
use callrecords::retention::RetentionPolicy;
use callrecords::store::Store;
use callrecords::tls::TlsSource;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::Arc;

pub use database::{Backend, TestDatabase};

/// A client that trusts `ca_pem` (a self-signed server's CA) besides the usual roots.
pub fn client_builder(ca_pem: Option<&[u8]>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match ca_pem {
        Some(pem) => builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("a PEM certificate")),
        None => builder,
    }
}
pub use dns::ScriptedDns;
pub use process::{record_count, spawn_server, spawn_server_with, spawn_server_with_file_limit, BIN};
pub use receiver::{Mode, Receiver};
pub use records::*;

pub struct TestApp {
    pub addr: SocketAddr,
    /// `http`, or `https` for a server with TLS.
    pub scheme: &'static str,
    /// The self-signed CA a TLS server's clients trust (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// The app's own store, for tests that drive background work one step at a time.
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    /// Kept alive (and so not dropped) as long as any node uses it.
    _database: Option<Arc<TestDatabase>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// One HTTP answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OData error: status, code, and the envelope every error must have.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "error content type: {:?}",
            self.header("content-type")
        );
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        let request_id = self.header("request-id").expect("request-id header");
        assert_eq!(error["innerError"]["request-id"], request_id);
        let date = error["innerError"]["date"].as_str().expect("innerError.date");
        assert_eq!(date.len(), 19, "date is to the second with no zone: {date}");
        body
    }
}

/// Webhook settings for tests: fast retries, short timeouts, loopback receivers allowed.
pub fn notify_settings() -> NotifySettings {
    NotifySettings {
        allow_private_targets: true,
        resolver: callrecords::notify::Resolver::system(),
        validation_timeout: std::time::Duration::from_secs(2),
        // Generous: a delivery that times out on a loaded machine after the receiver took it
        // would be sent again, and the exactly-once assertions would see it twice.
        delivery_timeout: std::time::Duration::from_secs(10),
        lease: std::time::Duration::from_secs(60),
        backoff_base: std::time::Duration::from_millis(50),
        retry_window: std::time::Duration::from_secs(60),
        poll_interval: std::time::Duration::from_millis(50),
        max_concurrent_deliveries: 4,
        maintenance_interval: std::time::Duration::from_millis(100),
    }
}

/// The purge for a test server: call records by the settings' window, and usage-log rows kept
/// (fixtures use any date, and a purge racing a test's ingest would drop its rows).
fn test_retention(api: &ApiSettings) -> RetentionPolicy {
    RetentionPolicy {
        call_record_days: api.retention_days,
        log_row_days: 0,
        ..RetentionPolicy::default()
    }
}

pub fn settings_with_retention(retention_days: u32) -> ApiSettings {
    ApiSettings {
        retention_days,
        ..ApiSettings::default()
    }
}

/// Retention off, callers authenticated as `auth` says.
pub fn settings_with_auth(auth: callrecords::api::AuthMode) -> ApiSettings {
    ApiSettings {
        auth,
        ..settings_with_retention(0)
    }
}

impl TestApp {
    /// A server with retention off, so fixtures may use any date.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, settings_with_retention(0)).await
    }

    /// A server that is its own token issuer (`--auth local`) for `audience`, retention off.
    pub async fn spawn_local_issuer(backend: Backend, audience: &str) -> Self {
        Self::spawn_local_issuer_with_clock(backend, audience, callrecords::clock::system()).await
    }

    pub async fn spawn_local_issuer_with_clock(
        backend: Backend,
        audience: &str,
        clock: Arc<dyn callrecords::clock::Clock>,
    ) -> Self {
        let auth = callrecords::api::AuthMode::Local {
            audience: audience.to_owned(),
        };
        let database = Arc::new(TestDatabase::new(backend).await);
        Self::spawn_configured(database, settings_with_auth(auth), notify_settings(), None, clock).await
    }

    pub async fn spawn_with(backend: Backend, api: ApiSettings) -> Self {
        Self::spawn_with_notify(backend, api, notify_settings()).await
    }

    pub async fn spawn_with_notify(backend: Backend, api: ApiSettings, notify: NotifySettings) -> Self {
        let database = Arc::new(TestDatabase::new(backend).await);
        Self::spawn_on_with_notify(database, api, notify).await
    }

    /// A server on an existing database: several of them make several nodes of one deployment.
    pub async fn spawn_on(database: Arc<TestDatabase>, api: ApiSettings) -> Self {
        Self::spawn_on_with_notify(database, api, notify_settings()).await
    }

    pub async fn spawn_on_with_notify(database: Arc<TestDatabase>, api: ApiSettings, notify: NotifySettings) -> Self {
        Self::spawn_on_with_tls(database, api, notify, None).await
    }

    /// A server whose time is `clock`: a test moves it instead of sleeping.
    pub async fn spawn_with_clock(backend: Backend, clock: Arc<dyn callrecords::clock::Clock>) -> Self {
        Self::spawn_with_settings_and_clock(backend, settings_with_retention(0), clock).await
    }

    pub async fn spawn_with_settings_and_clock(
        backend: Backend,
        api: ApiSettings,
        clock: Arc<dyn callrecords::clock::Clock>,
    ) -> Self {
        let database = Arc::new(TestDatabase::new(backend).await);
        Self::spawn_configured(database, api, notify_settings(), None, clock).await
    }

    /// A server with TLS; its client trusts the self-signed CA when there is one.
    pub async fn spawn_on_with_tls(
        database: Arc<TestDatabase>,
        api: ApiSettings,
        notify: NotifySettings,
        tls: Option<TlsSource>,
    ) -> Self {
        Self::spawn_configured(database, api, notify, tls, callrecords::clock::system()).await
    }

    async fn spawn_configured(
        database: Arc<TestDatabase>,
        api: ApiSettings,
        notify: NotifySettings,
        tls: Option<TlsSource>,
        clock: Arc<dyn callrecords::clock::Clock>,
    ) -> Self {
        let config = ServeConfig {
            sync: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            clock,
            db_url: database.url.clone(),
            store: Default::default(),
            connections: Default::default(),
            retention: test_retention(&api),
            notify,
            api,
            tls,
        };
        let app = App::build(config).await.expect("app builds");
        Self::start(app, Some(database))
    }

    /// A server over a store the test opened itself (to reach what only that backend has).
    pub async fn spawn_with_store(store: Arc<dyn Store>, api: ApiSettings) -> Self {
        let config = ServeConfig {
            sync: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: callrecords::clock::system(),
            db_url: String::new(),
            store: Default::default(),
            connections: Default::default(),
            retention: test_retention(&api),
            notify: notify_settings(),
            api,
            tls: None,
        };
        let app = App::with_store(config, store).await.expect("app builds");
        Self::start(app, None)
    }

    fn start(app: App, database: Option<Arc<TestDatabase>>) -> Self {
        let addr = app.local_addr();
        let scheme = app.scheme();
        let ca_pem = app
            .ca_certificate()
            .map(|path| std::fs::read(path).expect("the CA certificate is readable"));
        let store = app.store();
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = receiver.await;
        }));
        let client = client_builder(ca_pem.as_deref()).build().unwrap();
        Self {
            addr,
            scheme,
            ca_pem,
            store,
            client,
            _database: database,
            shutdown: Some(sender),
        }
    }

    /// Sends `Authorization: Bearer {token}` on every later request (or nothing, with `None`).
    pub fn use_token(&mut self, token: Option<&str>) {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        self.client = client_builder(self.ca_pem.as_deref())
            .default_headers(headers)
            .build()
            .unwrap();
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{path_and_query}", self.scheme, self.addr)
    }

    /// `GET /v1.0{path}`.
    pub async fn graph(&self, path_and_query: &str) -> Answer {
        self.get_with(&format!("/v1.0{path_and_query}"), &[]).await
    }

    pub async fn graph_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Answer {
        self.get_with(&format!("/v1.0{path_and_query}"), headers).await
    }

    /// Follows an absolute link verbatim, as the SDKs' page iterators do.
    pub async fn follow(&self, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("request sent")).await
    }

    pub async fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Answer {
        self.follow(&self.url(path_and_query), headers).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let request = self
            .client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        read(request.send().await.expect("request sent")).await
    }

    pub async fn ingest_json(&self, record: &Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/ingest/callRecords",
            "application/json",
            record.to_string(),
        )
        .await
    }

    pub async fn ingest_ndjson(&self, records: &[Value]) -> Answer {
        let body: String = records.iter().map(|r| format!("{r}\n")).collect();
        self.send(
            reqwest::Method::POST,
            "/ingest/callRecords",
            "application/x-ndjson",
            body,
        )
        .await
    }

    /// Ingests NDJSON to `/ingest/{kind}` and asserts that nothing was rejected.
    pub async fn ingest_kind_ok(&self, kind: &str, records: &[Value]) -> Value {
        let body: String = records.iter().map(|r| format!("{r}\n")).collect();
        let answer = self
            .send(
                reqwest::Method::POST,
                &format!("/ingest/{kind}"),
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let report = answer.json();
        assert_eq!(report["rejected"], 0, "{report}");
        report
    }

    /// Sends a JSON body with `method` to a `/v1.0` path.
    pub async fn graph_send(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        self.send(method, &format!("/v1.0{path}"), "application/json", body.to_string())
            .await
    }

    /// Creates a subscription to every call record for `url`, asserting 201.
    pub async fn subscribe(&self, url: &str, change_type: &str) -> Value {
        let expiration = callrecords::model::DateTimeOffset::from_offset_date_time(
            time::OffsetDateTime::now_utc() + time::Duration::hours(24),
        );
        let body = serde_json::json!({
            "changeType": change_type, "notificationUrl": url, "resource": "/communications/callRecords",
            "expirationDateTime": expiration.to_string(), "clientState": "secret-state"
        });
        let answer = self.graph_send(reqwest::Method::POST, "/subscriptions", &body).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.json()
    }

    /// Waits until the outbox is empty: every notification planned so far has been delivered
    /// (a row is deleted only after its receiver acknowledged it), so none is still to come.
    pub async fn outbox_drained(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.store.outbox_depth().await.unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "the outbox never drained");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Ingests and asserts that nothing was rejected.
    pub async fn ingest_ok(&self, records: &[Value]) -> Value {
        let answer = self.ingest_ndjson(records).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let report = answer.json();
        assert_eq!(report["rejected"], 0, "{report}");
        report
    }

    /// Every item of a collection, following next links; asserts that pages are not empty.
    pub async fn collect_pages(&self, first: &str, headers: &[(&str, &str)]) -> (Vec<Value>, usize) {
        let mut answer = self.graph_with(first, headers).await;
        let mut items = Vec::new();
        let mut pages = 0;
        loop {
            assert_eq!(answer.status, 200, "{}", answer.text);
            let body = answer.json();
            let value = body["value"].as_array().expect("value array").clone();
            pages += 1;
            let next = body["@odata.nextLink"].as_str().map(str::to_owned);
            if next.is_some() {
                assert!(!value.is_empty(), "a page with a next link must not be empty");
            }
            items.extend(value);
            match next {
                Some(url) => answer = self.follow(&url, headers).await,
                None => break,
            }
        }
        (items, pages)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }
}

async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body read"),
    }
}

/// A token of the store's local issuer for `tenant` with `roles`, valid for an hour.
pub async fn local_token(store: &dyn Store, tenant: &str, roles: &[&str]) -> String {
    use callrecords::auth::local::{issue_token, TokenRequest, DEFAULT_AUDIENCE};
    let request = TokenRequest {
        tenant: callrecords::store::TenantId::parse(tenant).expect("a tenant id"),
        app_id: "test-app".to_owned(),
        roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        audience: DEFAULT_AUDIENCE.to_owned(),
        lifetime_secs: 3600,
    };
    issue_token(store, &request).await.expect("a token")
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}
