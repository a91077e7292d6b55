//! `callrecords sync`: copies Graph tenants' call records, PSTN and Direct Routing logs into the
//! store, and keeps them past Graph's 30 days.
//!
//! Listing is the source of truth; notifications only hurry it. A pass lists a window of
//! `startDateTime` with each record's `version`, fetches the records that are new or whose
//! version rose (every page of their sessions and participants), and stores them through the same
//! ingest path as `POST /ingest/callRecords`, whose version rule makes a replay harmless. A full
//! sweep of Graph's 30 days runs daily, because later versions arrive hours after a call and
//! notifications can be missed; trailing passes in between cover the last day. Progress (a
//! sweep's resume point, the log watermarks, records a notification named, the subscription) is
//! in the store, so a collector killed at any point resumes where it was.

pub(crate) mod credentials;
pub(crate) mod graph;
pub(crate) mod metrics;
pub(crate) mod webhook;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use credentials::{Certificate, ClientCredentials, Credential, Secret};
pub use graph::{Budgets, RetryPolicy};

use crate::clock::{Clock, Timestamp};
use crate::ingest::{BatchIngest, IngestKind, IngestReport};
use crate::model::LogKind;
use crate::store::{Store, StoreError, TenantId};
use graph::{Answer, Graph};
pub(crate) use metrics::Metrics;

/// Graph's default scope for the client-credentials grant.
pub const DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Records fetched at once per tenant: enough to hide each request's latency, few enough to stay
/// far inside Graph's per-app budget.
const FETCH_CONCURRENCY: usize = 4;
/// Fetched records are committed this many at a time.
const COMMIT_EVERY: usize = 4 * FETCH_CONCURRENCY;
/// Graph's longest window for the log functions.
const LOG_WINDOW: Duration = Duration::from_secs(90 * 86_400);
/// Log rows can be written late; each pass reads again this far behind its watermark.
const LOG_OVERLAP: Duration = Duration::from_secs(2 * 86_400);
/// How long a lease on a tenant lasts without renewal; a pass renews it at every page.
const LEASE: Duration = Duration::from_secs(120);
/// Notes of notified records taken per round.
const PENDING_BATCH: u32 = 200;

/// Names of the values kept per tenant in the store (`SyncStore::sync_value`).
mod state {
    /// When the last full sweep completed (ticks).
    pub(super) const SWEEP_COMPLETED: &str = "sweep.completed";
    /// Where an interrupted sweep resumes (ticks of `startDateTime`), present while one runs.
    pub(super) const SWEEP_RESUME_FROM: &str = "sweep.resume_from";
    /// When the last pass of any kind completed (ticks).
    pub(super) const PASS_COMPLETED: &str = "pass.completed";
    /// The subscription held upstream (JSON).
    pub(super) const SUBSCRIPTION: &str = "subscription";

    /// Up to where a log kind has been read completely (ticks).
    pub(super) fn log_watermark(kind: super::LogKind) -> String {
        format!("logs.{}.until", kind.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("missing permission: {0}")]
    Permission(String),
    #[error("cannot reach {what}: {cause}")]
    Unreachable { what: String, cause: String },
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("the upstream's answer is not understood: {0}")]
    Invalid(String),
    #[error("another collector holds tenant {0}; it is collected there")]
    Leased(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One tenant to collect, and how to reach it.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub tenant: TenantId,
    pub credentials: ClientCredentials,
    /// Graph's base URL, with its version (`https://graph.microsoft.com/v1.0`).
    pub graph_url: String,
}

/// How often and how far back the collector looks.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Time between passes.
    pub interval: Duration,
    /// How far back a trailing pass lists.
    pub trailing: Duration,
    /// How far back a full sweep lists (Graph keeps 30 days).
    pub sweep: Duration,
    /// Time between full sweeps.
    pub sweep_every: Duration,
    /// How far back the logs are read the first time.
    pub log_backfill: Duration,
    /// Which log kinds are read.
    pub log_kinds: Vec<LogKind>,
    /// The public URL the upstream posts change notifications to, if any.
    pub notification_url: Option<String>,
    /// Who holds the leases this collector takes.
    pub holder: String,
    pub budgets: Budgets,
    pub retry: RetryPolicy,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(600),
            trailing: Duration::from_secs(86_400),
            sweep: Duration::from_secs(30 * 86_400),
            sweep_every: Duration::from_secs(86_400),
            log_backfill: Duration::from_secs(90 * 86_400),
            log_kinds: vec![LogKind::PstnCall, LogKind::DirectRoutingCall],
            notification_url: None,
            holder: "callrecords".to_owned(),
            budgets: Budgets::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// What one pass did, for its summary line and `--once`'s verdict.
#[derive(Debug, Default, Clone)]
pub struct PassSummary {
    pub listed: u64,
    pub fetched: u64,
    pub unchanged: u64,
    /// Listed, then gone upstream before it could be fetched.
    pub gone: u64,
    pub log_rows: u64,
    /// Records or rows the store refused, with why: the pass is not complete while any are.
    pub rejected: Vec<String>,
}

impl PassSummary {
    fn absorb(&mut self, report: &IngestReport) {
        self.rejected.extend(report.errors.iter().map(|error| {
            format!(
                "{} at {}: {}",
                error.id.as_deref().unwrap_or("?"),
                error.path,
                error.reason
            )
        }));
    }
}

/// Whether `wake` is notified before `deadline`.
async fn woken_before(wake: Arc<tokio::sync::Notify>, deadline: tokio::time::Instant) -> bool {
    tokio::time::timeout_at(deadline, wake.notified()).await.is_ok()
}

/// Which kind of pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// The last `SyncSettings::trailing` of records, notified records, new log rows.
    Trailing,
    /// All of `SyncSettings::sweep`, resuming an interrupted sweep where it was.
    Sweep,
}

/// The collector of one tenant.
pub struct Collector {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    upstream: Upstream,
    settings: SyncSettings,
    graph: Graph,
    metrics: Arc<Metrics>,
}

fn iso(instant: Timestamp) -> String {
    let seconds = instant.unix_seconds();
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// `text` for a URL's query, with OData's own characters left as they are.
fn encode_query(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b':')
        .remove(b',')
        .remove(b'(')
        .remove(b')')
        .remove(b'$')
        .remove(b'=');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// A document as served, without the OData control information (`@odata.context`,
/// `…@odata.nextLink`, `…@odata.count`) that belongs to the answer rather than to the resource;
/// `@odata.type` stays, since it says what the value is.
fn strip_control_information(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|name, _| !name.contains("@odata.") || name == "@odata.type");
            map.values_mut().for_each(strip_control_information);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_control_information),
        _ => {}
    }
}

fn version_of(item: &Value) -> Option<i64> {
    match item.get("version")? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn start_of(item: &Value) -> Option<Timestamp> {
    let text = item.get("startDateTime")?.as_str()?;
    crate::model::DateTimeOffset::parse(text).ok().map(Timestamp::from)
}

/// A page: its items and the link to the next.
fn page_of(answer: Value, url: &str) -> Result<(Vec<Value>, Option<String>), SyncError> {
    let Value::Object(mut page) = answer else {
        return Err(SyncError::Invalid(format!("{url} answered no collection")));
    };
    let next = page
        .remove("@odata.nextLink")
        .and_then(|link| link.as_str().map(str::to_owned));
    match page.remove("value") {
        Some(Value::Array(items)) => Ok((items, next)),
        _ => Err(SyncError::Invalid(format!("{url} answered no `value` array"))),
    }
}

impl Collector {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        upstream: Upstream,
        settings: SyncSettings,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Self {
        let tokens = credentials::TokenSource::new(http.clone(), upstream.credentials.clone());
        let graph = Graph::new(
            http,
            &upstream.graph_url,
            tokens,
            settings.budgets,
            settings.retry,
            metrics.clone(),
        );
        Self {
            store,
            clock,
            upstream,
            settings,
            graph,
            metrics,
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.upstream.tenant
    }

    /// Gets a token and checks that it carries what collecting needs, so that a wrong secret or
    /// a missing permission is said at once, in words an operator can act on.
    pub async fn check_access(&self) -> Result<(), SyncError> {
        let token = self.graph.token().await?;
        if let Some(roles) = credentials::roles_of(&token) {
            if !roles.iter().any(|role| role == crate::auth::READ_ALL) {
                return Err(SyncError::Permission(format!(
                    "app {} has no application permission {} in tenant {} (its token carries: {}); \
                     add it under API permissions (Microsoft Graph, application) and grant admin consent",
                    self.upstream.credentials.client_id,
                    crate::auth::READ_ALL,
                    self.tenant().as_str(),
                    if roles.is_empty() {
                        "no roles".to_owned()
                    } else {
                        roles.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    /// Takes (or renews) the tenant's lease.
    async fn lease(&self) -> Result<(), SyncError> {
        let now = self.clock.timestamp();
        if self
            .store
            .take_sync_lease(self.tenant(), &self.settings.holder, now, now + LEASE)
            .await?
        {
            Ok(())
        } else {
            Err(SyncError::Leased(self.tenant().as_str().to_owned()))
        }
    }

    /// Gives the lease back, so that another node may collect at once.
    pub async fn release(&self) {
        if let Err(error) = self
            .store
            .release_sync_lease(self.tenant(), &self.settings.holder)
            .await
        {
            tracing::warn!(tenant = %self.tenant().as_str(), %error, "could not give the lease back; it runs out by itself");
        }
    }

    /// Which pass is due now: a sweep when none has completed within `sweep_every` or one was
    /// interrupted, a trailing pass otherwise.
    pub async fn due(&self) -> Result<PassKind, SyncError> {
        if self.instant_value(state::SWEEP_RESUME_FROM).await?.is_some() {
            return Ok(PassKind::Sweep);
        }
        let completed = self.instant_value(state::SWEEP_COMPLETED).await?;
        let now = self.clock.timestamp();
        Ok(match completed {
            Some(at) if now.duration_since(at) < self.settings.sweep_every => PassKind::Trailing,
            _ => PassKind::Sweep,
        })
    }

    /// One pass: the records notifications named, a window of listed records, new log rows.
    pub async fn pass(&self, kind: PassKind) -> Result<PassSummary, SyncError> {
        let began = std::time::Instant::now();
        let result = self.pass_inner(kind).await;
        let tenant = self.tenant().as_str();
        match &result {
            Ok(summary) => {
                self.metrics.passes.inc();
                tracing::info!(
                    tenant,
                    pass = ?kind,
                    listed = summary.listed,
                    fetched = summary.fetched,
                    unchanged = summary.unchanged,
                    gone = summary.gone,
                    log_rows = summary.log_rows,
                    rejected = summary.rejected.len(),
                    seconds = began.elapsed().as_secs_f64(),
                    "sync pass complete"
                );
            }
            Err(error) => {
                self.metrics.passes_failed.inc();
                tracing::warn!(tenant, pass = ?kind, %error, seconds = began.elapsed().as_secs_f64(), "sync pass failed");
            }
        }
        result
    }

    async fn pass_inner(&self, kind: PassKind) -> Result<PassSummary, SyncError> {
        self.lease().await?;
        let mut summary = PassSummary::default();
        self.pull_pending(&mut summary).await?;
        let tenant = self.tenant();
        let now = self.clock.timestamp();
        match kind {
            PassKind::Trailing => {
                self.list_window(now - self.settings.trailing, false, &mut summary)
                    .await?
            }
            PassKind::Sweep => {
                let resume = self.instant_value(state::SWEEP_RESUME_FROM).await?;
                let from = resume.unwrap_or(now - self.settings.sweep);
                self.store
                    .set_sync_value(tenant, state::SWEEP_RESUME_FROM, &from.ticks().to_string())
                    .await?;
                self.list_window(from, true, &mut summary).await?;
            }
        }
        for log_kind in self.settings.log_kinds.clone() {
            self.pull_logs(log_kind, &mut summary).await?;
        }
        let completed = self.clock.timestamp().ticks().to_string();
        if kind == PassKind::Sweep && summary.rejected.is_empty() {
            self.store
                .set_sync_value(tenant, state::SWEEP_COMPLETED, &completed)
                .await?;
            // An empty resume point is none: the sweep is complete.
            self.store.set_sync_value(tenant, state::SWEEP_RESUME_FROM, "").await?;
        }
        self.store
            .set_sync_value(tenant, state::PASS_COMPLETED, &completed)
            .await?;
        self.metrics.completed(tenant, std::time::Instant::now());
        Ok(summary)
    }

    /// An instant kept as ticks under `name`; absent, empty or unreadable is none.
    async fn instant_value(&self, name: &str) -> Result<Option<Timestamp>, SyncError> {
        let text = self.store.sync_value(self.tenant(), name).await?;
        Ok(text.and_then(|ticks| ticks.parse().ok()).map(Timestamp::from_ticks))
    }

    /// Lists records that started at or after `from`, and fetches those that are new or whose
    /// version rose. A sweep keeps its resume point in the store after every page, as long as
    /// the upstream lists in start order.
    async fn list_window(&self, from: Timestamp, resumable: bool, summary: &mut PassSummary) -> Result<(), SyncError> {
        let filter = format!("startDateTime ge {}", iso(from));
        let mut url = self.graph.url(&format!(
            "/communications/callRecords?$filter={}&$select=id,version,startDateTime",
            encode_query(&filter)
        ));
        let mut in_order = true;
        let mut latest_start: Option<Timestamp> = None;
        loop {
            self.lease().await?;
            let answer = match self.graph.get(&url, None).await? {
                Answer::Json(answer) => answer,
                Answer::NotFound => return Err(SyncError::Upstream(format!("{url} answered 404"))),
            };
            self.metrics.pages.inc();
            let (items, next) = page_of(answer, &url)?;
            let mut listed = Vec::with_capacity(items.len());
            for item in &items {
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| SyncError::Invalid(format!("a record listed by {url} has no id")))?;
                let version = version_of(item).unwrap_or(i64::MAX);
                if let Some(start) = start_of(item) {
                    if latest_start.is_some_and(|latest| start < latest) {
                        in_order = false;
                    }
                    latest_start = latest_start.max(Some(start));
                }
                listed.push((id.to_owned(), version));
            }
            summary.listed += listed.len() as u64;
            let ids: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
            let stored = self.store.stored_versions(self.tenant(), &ids).await?;
            let wanted: Vec<String> = listed
                .into_iter()
                .filter(|(id, version)| stored.get(id).is_none_or(|stored| stored < version))
                .map(|(id, _)| id)
                .collect();
            let unchanged = ids.len() - wanted.len();
            summary.unchanged += unchanged as u64;
            self.metrics.records_unchanged.inc_by(unchanged as u64);
            self.fetch_and_store(&wanted, summary).await?;
            if resumable && in_order {
                if let Some(latest) = latest_start {
                    self.store
                        .set_sync_value(self.tenant(), state::SWEEP_RESUME_FROM, &latest.ticks().to_string())
                        .await?;
                }
            }
            match next {
                Some(link) => {
                    self.graph.check_link(&link)?;
                    url = link;
                }
                None => return Ok(()),
            }
        }
    }

    /// Fetches the records a notification named, then forgets the notes taken before the fetch.
    async fn pull_pending(&self, summary: &mut PassSummary) -> Result<(), SyncError> {
        loop {
            let pending = self.store.pending_records(self.tenant(), PENDING_BATCH).await?;
            if pending.is_empty() {
                return Ok(());
            }
            let noted_by = pending
                .iter()
                .map(|(_, at)| *at)
                .max()
                .unwrap_or(Timestamp::from_ticks(0));
            let ids: Vec<String> = pending.into_iter().map(|(id, _)| id).collect();
            self.fetch_and_store(&ids, summary).await?;
            self.store.clear_pending_records(self.tenant(), &ids, noted_by).await?;
        }
    }

    /// Fetches `ids` (a few at a time, each waiting out its own throttling) and stores them,
    /// committing every `COMMIT_EVERY` records, so that a slow upstream's progress is kept as it
    /// comes; everything is committed before this returns.
    async fn fetch_and_store(&self, ids: &[String], summary: &mut PassSummary) -> Result<(), SyncError> {
        for chunk in ids.chunks(COMMIT_EVERY) {
            self.lease().await?;
            // FETCH_CONCURRENCY at once, in order. A loop rather than a stream adapter: the
            // compiler cannot prove a closure's borrowed futures `Send` for any lifetime.
            let mut fetching = futures::stream::FuturesOrdered::new();
            let mut documents = Vec::with_capacity(chunk.len());
            for id in chunk {
                if fetching.len() >= FETCH_CONCURRENCY {
                    if let Some(document) = fetching.next().await {
                        documents.push(document?);
                    }
                }
                fetching.push_back(self.fetch_record(id));
            }
            while let Some(document) = fetching.next().await {
                documents.push(document?);
            }
            let mut ingest = BatchIngest::of_kind(
                self.store.as_ref(),
                self.tenant(),
                IngestKind::CallRecords,
                self.clock.as_ref(),
            );
            let mut line = 0;
            for document in documents {
                match document {
                    Some(document) => {
                        line += 1;
                        ingest.push_owned_line(line, document).await?;
                    }
                    None => summary.gone += 1,
                }
            }
            let report = ingest.finish().await?;
            summary.fetched += line;
            self.metrics.records_fetched.inc_by(line);
            summary.absorb(&report);
        }
        Ok(())
    }

    /// One record with every page of its sessions (with their segments) and participants, as one
    /// ingest line; `None` when the upstream no longer has it.
    async fn fetch_record(&self, id: &str) -> Result<Option<Vec<u8>>, SyncError> {
        let key = encode_query(id);
        let url = self.graph.url(&format!(
            "/communications/callRecords/{key}?$expand=sessions($expand=segments)"
        ));
        let Answer::Json(Value::Object(mut record)) = self.graph.get(&url, Some(id)).await? else {
            return Ok(None);
        };
        self.metrics.pages.inc();
        let mut sessions = match record.remove("sessions") {
            Some(Value::Array(sessions)) => sessions,
            _ => Vec::new(),
        };
        let mut next = record
            .remove("sessions@odata.nextLink")
            .and_then(|link| link.as_str().map(str::to_owned));
        while let Some(link) = next.take() {
            self.graph.check_link(&link)?;
            let Answer::Json(answer) = self.graph.get(&link, Some(id)).await? else {
                return Ok(None);
            };
            self.metrics.pages.inc();
            let (items, following) = page_of(answer, &link)?;
            sessions.extend(items);
            next = following;
        }
        let mut participants = Vec::new();
        let mut next = Some(
            self.graph
                .url(&format!("/communications/callRecords/{key}/participants_v2")),
        );
        while let Some(link) = next.take() {
            let Answer::Json(answer) = self.graph.get(&link, Some(id)).await? else {
                return Ok(None);
            };
            self.metrics.pages.inc();
            let (items, following) = page_of(answer, &link)?;
            participants.extend(items);
            if let Some(following) = &following {
                self.graph.check_link(following)?;
            }
            next = following;
        }
        record.insert("sessions".to_owned(), Value::Array(sessions));
        record.insert("participants_v2".to_owned(), Value::Array(participants));
        let mut record = Value::Object(record);
        strip_control_information(&mut record);
        serde_json::to_vec(&record)
            .map(Some)
            .map_err(|error| SyncError::Invalid(format!("record {id}: {error}")))
    }

    /// Reads a log kind from its watermark (less an overlap, for rows written late) to now, in
    /// windows Graph accepts, moving the watermark after each.
    async fn pull_logs(&self, kind: LogKind, summary: &mut PassSummary) -> Result<(), SyncError> {
        let tenant = self.tenant();
        let name = state::log_watermark(kind);
        let now = self.clock.timestamp();
        let mut from = match self.instant_value(&name).await? {
            Some(until) => until - LOG_OVERLAP,
            None => now - self.settings.log_backfill,
        };
        while from < now {
            let to = (from + LOG_WINDOW).min(now);
            self.lease().await?;
            let function = crate::api::path::function_name(kind);
            let mut url = Some(self.graph.url(&format!(
                "/communications/callRecords/{function}(fromDateTime={},toDateTime={})",
                iso(from),
                iso(to)
            )));
            let mut ingest =
                BatchIngest::of_kind(self.store.as_ref(), tenant, IngestKind::Log(kind), self.clock.as_ref());
            let mut line = 0;
            while let Some(link) = url.take() {
                let answer = match self.graph.get(&link, None).await? {
                    Answer::Json(answer) => answer,
                    Answer::NotFound => return Err(SyncError::Upstream(format!("{link} answered 404"))),
                };
                self.metrics.pages.inc();
                let (items, next) = page_of(answer, &link)?;
                for mut item in items {
                    strip_control_information(&mut item);
                    line += 1;
                    let json = serde_json::to_vec(&item)
                        .map_err(|error| SyncError::Invalid(format!("a {} row: {error}", kind.as_str())))?;
                    ingest.push_owned_line(line, json).await?;
                }
                if let Some(next) = &next {
                    self.graph.check_link(next)?;
                }
                url = next;
            }
            let report = ingest.finish().await?;
            summary.log_rows += line;
            self.metrics.log_rows_fetched.inc_by(line);
            summary.absorb(&report);
            self.store
                .set_sync_value(tenant, &name, &to.ticks().to_string())
                .await?;
            from = to;
        }
        Ok(())
    }
}

/// The tenants to collect and how: what `callrecords sync` and `serve --sync-config` run.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub upstreams: Vec<Upstream>,
    pub settings: SyncSettings,
}

/// Collectors ready to run, with the receiver of their notifications.
pub(crate) struct Prepared {
    collectors: Vec<Arc<Collector>>,
    inbox: Arc<webhook::Inbox>,
    notifications: bool,
}

/// The HTTP client every collector of a process shares.
pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    use anyhow::Context as _;
    reqwest::Client::builder()
        .user_agent(concat!("callrecords-sync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")
}

impl SyncConfig {
    pub(crate) fn prepare(
        self,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Prepared> {
        let http = http_client()?;
        let notifications = self.settings.notification_url.is_some();
        let collectors: Vec<Arc<Collector>> = self
            .upstreams
            .into_iter()
            .map(|upstream| {
                metrics.collecting(&upstream.tenant);
                Arc::new(Collector::new(
                    store.clone(),
                    clock.clone(),
                    upstream,
                    self.settings.clone(),
                    http.clone(),
                    metrics.clone(),
                ))
            })
            .collect();
        let inbox = Arc::new(webhook::Inbox::new(
            store,
            clock,
            metrics,
            collectors.iter().map(|collector| collector.tenant().clone()),
        ));
        Ok(Prepared {
            collectors,
            inbox,
            notifications,
        })
    }
}

impl Prepared {
    pub(crate) fn collectors(&self) -> &[Arc<Collector>] {
        &self.collectors
    }

    /// The collector's own listener: notifications, `/sync/status`, `/metrics`, `/healthz`.
    pub(crate) fn listener_routes(&self) -> axum::Router {
        webhook::router(self.inbox.clone())
    }

    /// The notification receiver, to serve beside the API.
    pub(crate) fn routes(&self) -> axum::Router {
        webhook::notification_routes(self.inbox.clone())
    }

    pub(crate) async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let inbox = self.notifications.then_some(self.inbox);
        run(self.collectors, inbox, shutdown).await
    }
}

/// Runs collectors until `shutdown` resolves: a pass per tenant every `interval` (a sweep when
/// due), the notified records as soon as a notification wakes their tenant, the subscription
/// kept alive when there is a notification URL. A failed pass is logged and tried again at the
/// next interval; nothing is given up.
pub(crate) async fn run(
    collectors: Vec<Arc<Collector>>,
    inbox: Option<Arc<webhook::Inbox>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for collector in &collectors {
        tasks.spawn(collector.clone().run_forever(inbox.clone()));
    }
    tokio::select! {
        () = async { while tasks.join_next().await.is_some() {} } => {}
        () = shutdown => tasks.abort_all(),
    }
    // Another node may take the tenants over at once rather than when the leases run out.
    for collector in &collectors {
        collector.release().await;
    }
}

impl Collector {
    async fn run_forever(self: Arc<Self>, inbox: Option<Arc<webhook::Inbox>>) {
        if let Err(error) = self.check_access().await {
            tracing::error!(tenant = %self.tenant().as_str(), %error, "cannot collect the tenant; trying again at each pass");
        }
        let wake = inbox.as_ref().map(|inbox| inbox.waker(self.tenant()));
        loop {
            let kind = match self.due().await {
                Ok(kind) => kind,
                Err(error) => {
                    tracing::warn!(tenant = %self.tenant().as_str(), %error, "cannot read the collector's progress");
                    PassKind::Trailing
                }
            };
            let _ = self.pass(kind).await;
            if inbox.is_some() {
                if let Err(error) = self.keep_subscription().await {
                    tracing::warn!(tenant = %self.tenant().as_str(), %error, "cannot keep the subscription");
                }
            }
            let deadline = tokio::time::Instant::now() + self.settings.interval;
            // Notifications wake the tenant for its notified records until the next pass is due.
            loop {
                let woken = match &wake {
                    Some(wake) => woken_before(wake.clone(), deadline).await,
                    None => {
                        tokio::time::sleep_until(deadline).await;
                        false
                    }
                };
                if !woken {
                    break;
                }
                let lifecycle = inbox.as_ref().map(|inbox| inbox.take_lifecycle(self.tenant()));
                if lifecycle.as_ref().is_some_and(|events| events.missed) {
                    // Notifications were lost: list again now rather than at the next interval.
                    break;
                }
                if let Some(events) = lifecycle {
                    if events.reauthorize || events.removed {
                        if let Err(error) = self.keep_subscription_after(events).await {
                            tracing::warn!(tenant = %self.tenant().as_str(), %error, "cannot renew the subscription");
                        }
                    }
                }
                let mut summary = PassSummary::default();
                let notified = async {
                    self.lease().await?;
                    self.pull_pending(&mut summary).await
                };
                if let Err(error) = notified.await {
                    tracing::warn!(tenant = %self.tenant().as_str(), %error, "cannot fetch notified records");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_information_goes_and_types_stay() {
        let mut record = json!({
            "@odata.context": "https://graph/$metadata#x",
            "id": "r",
            "sessions@odata.context": "c",
            "sessions@odata.nextLink": "n",
            "sessions": [{"id": "s", "segments@odata.context": "c", "caller": {"@odata.type": "#t"}}],
        });
        strip_control_information(&mut record);
        assert_eq!(
            record,
            json!({"id": "r", "sessions": [{"id": "s", "caller": {"@odata.type": "#t"}}]})
        );
    }

    #[test]
    fn filters_are_encoded_for_a_query_string() {
        assert_eq!(
            encode_query("startDateTime ge 2024-01-01T00:00:00Z"),
            "startDateTime%20ge%202024-01-01T00:00:00Z"
        );
        assert_eq!(iso(Timestamp::from_ticks(0)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn versions_are_read_as_numbers_or_text() {
        assert_eq!(version_of(&json!({"version": 7})), Some(7));
        assert_eq!(version_of(&json!({"version": "8"})), Some(8));
        assert_eq!(version_of(&json!({})), None);
    }

    #[test]
    fn a_page_without_a_value_array_is_an_error() {
        let (items, next) = page_of(json!({"value": [1], "@odata.nextLink": "n"}), "u").unwrap();
        assert_eq!((items.len(), next.as_deref()), (1, Some("n")));
        assert!(page_of(json!({"error": {}}), "u").is_err());
    }
}
