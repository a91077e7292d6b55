//! The HTTP surface: the only module that knows status codes, headers and OData envelopes.
//!
//! `router()` serves the Graph surface under `/v1.0/` and `/beta/` (dispatched by our own OData path parser,
//! because Graph addresses keys both as segments and in parentheses, matches names
//! case-insensitively and answers 400 for unknown segments), and the non-Graph endpoints
//! (`/healthz`, `/ingest/...`). Every response passes `odata_envelope`, which stamps the
//! request-id headers and writes Graph's error body for every error, whoever produced it.

mod analytics;
mod auth;
mod buildings;
mod call_records;
mod context;
mod dashboard;
pub(crate) mod error;
mod export;
pub(crate) mod health;
mod ingest;
mod landing;
mod odata;
mod paging;
pub(crate) mod path;
mod raw;
mod subscriptions;
pub mod throttle;
mod usage_logs;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::notify::Notifier;
use crate::store::Store;
pub(crate) use context::RequestIds;
use error::{payload_for_status, ErrorPayload};

/// What every handler can reach. Nothing here is durable: all state lives in the store.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Arc<ApiSettings>,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) authenticator: Arc<crate::auth::Authenticator>,
    pub(crate) throttle: Arc<throttle::Throttle>,
    /// Bounds the ingest requests parsing and committing at once
    /// (`ApiSettings::max_concurrent_ingests`).
    pub(crate) ingest_slots: Arc<tokio::sync::Semaphore>,
    /// The bytes ingest requests may hold read but not yet committed, one permit a byte
    /// (`ApiSettings::ingest_memory_bytes`).
    pub(crate) ingest_memory: Arc<tokio::sync::Semaphore>,
    /// Whether writes are failing for lack of space, for `/healthz`.
    pub(crate) write_health: Arc<health::WriteHealth>,
    /// What `/metrics` exposes.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// What visibility and the time of storage are decided by.
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
}

/// The parts of the configuration the HTTP layer reads.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Records that started more than this many days ago are invisible; 0 shows everything.
    pub retention_days: u32,
    /// Scheme and host for `@odata.context` and next links, e.g. `https://graph.example.com`;
    /// when absent, the scheme and Host of each request are used.
    pub public_base_url: Option<String>,
    /// The largest ingest body accepted, in bytes.
    pub max_ingest_bytes: usize,
    /// Ingest requests parsing and committing at once; others read their next batch meanwhile,
    /// holding no slot, and wait for one only once it is in hand. One store writer cannot use
    /// more than two.
    pub max_concurrent_ingests: usize,
    /// The bytes all ingest requests together may hold read but not committed; past it, bodies
    /// wait in their sockets.
    pub ingest_memory_bytes: usize,
    /// The slowest an ingest body may arrive, in bytes a second, judged over each 10 seconds
    /// spent waiting for it; a slower one is cut off with 408.
    pub ingest_min_rate: u64,
    pub auth: AuthMode,
    pub throttle: throttle::ThrottleSettings,
    /// Whether the listener speaks TLS (set by `App` from its `tls`): the scheme of the links we
    /// write when there is no `public_base_url`.
    pub https: bool,
    /// The origins of browser apps allowed to call (CORS), e.g. `http://localhost:5173`, or `*`
    /// for any; none by default, so browsers keep other sites' pages out.
    pub cors_origins: Vec<HeaderValue>,
    /// Serve the retired `organizer`, `participants` and `participantEndpoint.identity` with
    /// values derived from their successors, as Graph did before it stopped filling them; by
    /// default they are null or empty, as Graph serves them now.
    pub derive_retired_properties: bool,
}

/// How `serve` authenticates callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// No token needed; every request acts for the default tenant with every role.
    None,
    /// Tokens of our own issuer (keys in the store), with this audience.
    Local { audience: String },
    /// Tokens of an external OpenID Connect issuer (`iss` = `issuer` with the token's tenant in
    /// its placeholder, if it has one), keys from its discovery document's JWKS.
    Oidc {
        issuer: String,
        audience: String,
        /// Where the discovery document is; by default under the issuer.
        discovery_url: Option<String>,
    },
}

impl ApiSettings {
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

/// Eight batches: the two being parsed and committed, the two waiting to commit behind them,
/// and room for others to read theirs.
pub(crate) const DEFAULT_INGEST_MEMORY_BYTES: usize = 8 * crate::ingest::BATCH_BYTES;

/// Slower than any real link that uploads records, fast enough that a sender who trickles
/// bytes to hold a request open is cut off within ten seconds.
pub(crate) const DEFAULT_INGEST_MIN_RATE: u64 = 1024;

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            retention_days: 30,
            public_base_url: None,
            max_ingest_bytes: 1 << 30,
            max_concurrent_ingests: 2,
            ingest_memory_bytes: DEFAULT_INGEST_MEMORY_BYTES,
            ingest_min_rate: DEFAULT_INGEST_MIN_RATE,
            auth: AuthMode::None,
            // Off for embedding and tests; `serve` turns Graph's limits on.
            throttle: throttle::ThrottleSettings::disabled(),
            https: false,
            cors_origins: Vec::new(),
            derive_retired_properties: false,
        }
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let max_ingest_bytes = state.settings.max_ingest_bytes;
    let cors = cors_layer(&state.settings.cors_origins);
    let state_metrics = state.metrics.clone();
    let router = Router::new()
        .route("/", get(landing::page))
        .route("/v1.0", any(call_records::dispatch))
        .route("/v1.0/", any(call_records::dispatch))
        .route("/v1.0/{*path}", any(call_records::dispatch))
        .route("/beta", any(call_records::dispatch_beta))
        .route("/beta/", any(call_records::dispatch_beta))
        .route("/beta/{*path}", any(call_records::dispatch_beta))
        .route("/v1.0/subscriptions", any(subscriptions::collection))
        .route("/v1.0/subscriptions/{id}", any(subscriptions::item))
        .route("/v1.0/subscriptions/{id}/reauthorize", any(subscriptions::reauthorize))
        .route("/beta/subscriptions", any(subscriptions::collection))
        .route("/beta/subscriptions/{id}", any(subscriptions::item))
        .route("/beta/subscriptions/{id}/reauthorize", any(subscriptions::reauthorize))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/", get(dashboard::page))
        .route("/dashboard/{*path}", get(dashboard::asset))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/ingest/callRecords", post(ingest::ingest_call_records))
        .route(
            "/ingest/buildings",
            put(buildings::upload).layer(DefaultBodyLimit::max(buildings::MAX_FILE_BYTES)),
        )
        .route("/analytics/buildings", get(buildings::active))
        .route("/analytics/quality", get(analytics::quality))
        .route("/analytics/reliability", get(analytics::reliability))
        .route("/analytics/rateMyCall", get(analytics::rate_my_call))
        .route("/analytics/worst", get(analytics::worst))
        .route("/analytics/calls", get(analytics::calls))
        .route("/analytics/calls/{id}/streams", get(analytics::call_streams))
        .route("/ingest/{kind}", post(ingest::ingest_log_rows))
        .route("/export/{what}", get(export::export))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(auth::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(auth::jwks))
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .layer(DefaultBodyLimit::max(max_ingest_bytes))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state)
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(300),
        ))
        .layer(middleware::from_fn(odata_envelope))
        // Outside the envelope, so error bodies are compressed too; only when the client asks
        // (`Accept-Encoding: gzip`), as Graph does.
        .layer(CompressionLayer::new());
    // Outside authentication: a browser's preflight carries no token and is answered here.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(middleware::from_fn_with_state(state_metrics, count_request))
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &Request| tracing::info_span!("request", method = %req.method(), path = %req.uri().path()),
        ))
}

/// Counts every request in `/metrics` under its route template, with its status and the time
/// to its response's head. As the outermost layer it is also where the path is parsed, once:
/// the `Target` goes into the request's extensions for `auth::authenticate` and the handlers.
async fn count_request(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let target = path::Target::of(req.uri().path());
    let route = route_template(req.uri().path(), &target);
    req.extensions_mut().insert(target);
    let method = req.method().clone();
    let response = next.run(req).await;
    metrics.observe_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The route a path is counted under: what it addresses with its ids replaced by placeholders,
/// so the labels stay few whatever clients send.
fn route_template(path: &str, target: &path::Target) -> String {
    let version = if path.get(..5).is_some_and(|head| head.eq_ignore_ascii_case("/beta")) {
        "/beta"
    } else {
        "/v1.0"
    };
    match target {
        path::Target::Graph(Ok(resource)) => format!("{version}{}", resource.template()),
        path::Target::Graph(Err(_)) => {
            let rest = &path[version.len()..];
            let subscription = rest.trim_start_matches('/').splitn(3, '/').collect::<Vec<_>>();
            match subscription.as_slice() {
                ["subscriptions"] => format!("{version}/subscriptions"),
                ["subscriptions", _] => format!("{version}/subscriptions/{{id}}"),
                ["subscriptions", _, "reauthorize"] => format!("{version}/subscriptions/{{id}}/reauthorize"),
                _ => format!("{version}/(no resource)"),
            }
        }
        path::Target::Ingest => match path.strip_prefix("/ingest/") {
            Some("buildings") => "/ingest/buildings".to_owned(),
            rest => match rest.and_then(crate::ingest::IngestKind::parse) {
                Some(kind) => format!("/ingest/{}", kind.name()),
                None => "/ingest/(unknown)".to_owned(),
            },
        },
        path::Target::Analytics => match path {
            "/analytics/buildings"
            | "/analytics/quality"
            | "/analytics/reliability"
            | "/analytics/rateMyCall"
            | "/analytics/worst"
            | "/analytics/calls" => path.to_owned(),
            _ if path.starts_with("/analytics/calls/") && path.ends_with("/streams") => {
                "/analytics/calls/{id}/streams".to_owned()
            }
            _ => "/analytics/(unknown)".to_owned(),
        },
        path::Target::Export { .. } => match path.strip_prefix("/export/").and_then(crate::export::What::parse) {
            Some(what) => format!("/export/{}", what.as_str()),
            None => "/export/(unknown)".to_owned(),
        },
        path::Target::Other => match path {
            "/" | "/healthz" | "/metrics" | "/dashboard" => path.to_owned(),
            _ if path.starts_with("/dashboard/") => "/dashboard/{asset}".to_owned(),
            _ if path.ends_with("/oauth2/v2.0/token") => "/{tenant}/oauth2/v2.0/token".to_owned(),
            _ if path.ends_with("/discovery/v2.0/keys") => "/{tenant}/discovery/v2.0/keys".to_owned(),
            _ if path.ends_with("/v2.0/.well-known/openid-configuration") => {
                "/{tenant}/v2.0/.well-known/openid-configuration".to_owned()
            }
            _ => "(unmatched)".to_owned(),
        },
    }
}

/// CORS for the configured origins: preflights answered for any method and header a Graph
/// client sends, and the headers an SDK reads exposed to the page. `None` without origins.
fn cors_layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().cloned())
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                HeaderName::from_static("request-id"),
                HeaderName::from_static("client-request-id"),
                HeaderName::from_static("preference-applied"),
                HeaderName::from_static("odata-version"),
                header::RETRY_AFTER,
                header::LOCATION,
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

async fn not_found() -> Response {
    error::ApiError::new(StatusCode::NOT_FOUND, "NotFound", "Resource not found.").into_response()
}

/// The OData content type of every JSON body, success or error, as Graph writes it.
pub(crate) const ODATA_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Stamps `request-id`, `client-request-id` and `OData-Version` on every response, and writes
/// Graph's error body (with `innerError`) for every error response.
async fn odata_envelope(mut req: Request, next: Next) -> Response {
    let ids = RequestIds::from_headers(req.headers());
    req.extensions_mut().insert(ids.clone());
    let mut response = next.run(req).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<auth::OwnErrorBody>().is_none()
    {
        let payload = response
            .extensions_mut()
            .remove::<ErrorPayload>()
            .unwrap_or_else(|| payload_for_status(status));
        if status.is_server_error() {
            tracing::error!(request_id = %ids.request_id, code = payload.code, cause = payload.cause.as_deref().unwrap_or("(none)"), "request failed");
        }
        let body = error_body(&payload, &ids);
        let headers = std::mem::take(response.headers_mut());
        response = (status, body).into_response();
        for (name, value) in headers.iter() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", value.clone());
        let echo = ids
            .client_request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
            .unwrap_or(value);
        headers.insert("client-request-id", echo);
    }
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    response
}

/// The extra headers and the Graph error body of an answer that no handler wrote (hyper's own
/// refusals of requests it cannot parse), with a fresh request-id.
pub(crate) fn protocol_error(status: StatusCode) -> (Vec<(&'static str, String)>, String) {
    let ids = RequestIds::from_headers(&axum::http::HeaderMap::new());
    let body = error_json(&payload_for_status(status), &ids).to_string();
    let headers = vec![
        ("request-id", ids.request_id.clone()),
        ("client-request-id", ids.request_id),
        ("OData-Version", "4.0".to_owned()),
    ];
    (headers, body)
}

fn error_body(payload: &ErrorPayload, ids: &RequestIds) -> Body {
    Body::from(error_json(payload, ids).to_string())
}

fn error_json(payload: &ErrorPayload, ids: &RequestIds) -> serde_json::Value {
    let mut inner = serde_json::Map::new();
    for (name, value) in &payload.inner {
        inner.insert((*name).into(), value.clone().into());
    }
    inner.insert("date".into(), ids.date.clone().into());
    inner.insert("request-id".into(), ids.request_id.clone().into());
    if let Some(client) = &ids.client_request_id {
        inner.insert("client-request-id".into(), client.clone().into());
    }
    let mut error = serde_json::Map::new();
    error.insert("code".into(), payload.code.into());
    error.insert("message".into(), payload.message.clone().into());
    if let Some(target) = &payload.target {
        error.insert("target".into(), target.clone().into());
    }
    if !payload.details.is_empty() {
        error.insert(
            "details".into(),
            serde_json::to_value(&payload.details).unwrap_or_default(),
        );
    }
    error.insert("innerError".into(), inner.into());
    serde_json::json!({ "error": error })
}
