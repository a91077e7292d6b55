//! Change notifications as an accelerator: the receiver the upstream posts to (the validation
//! handshake, change and lifecycle notifications), and the subscription each collector keeps
//! upstream. A notified record is noted in the store before the notification is acknowledged, so
//! a collector that restarts still fetches it; the listing passes would find it anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::graph::Answer;
use super::{iso, state, Collector, Metrics, SyncError};
use crate::clock::{Clock, Timestamp};
use crate::store::{Store, TenantId};

/// Graph's longest lifetime for a call records subscription.
const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(4_230 * 60);
/// A subscription is renewed when less than this is left of it, well before Graph drops it.
const RENEW_WITHIN: Duration = Duration::from_secs(24 * 3_600);
/// The path the receiver answers on.
pub const NOTIFICATION_PATH: &str = "/sync/notifications";

/// Lifecycle events received for a tenant and not yet acted on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lifecycle {
    pub(crate) reauthorize: bool,
    pub(crate) removed: bool,
    pub(crate) missed: bool,
}

#[derive(Default)]
struct Slot {
    wake: Arc<Notify>,
    lifecycle: Mutex<Lifecycle>,
}

/// Where notifications arrive, for the tenants this process collects.
pub struct Inbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    slots: HashMap<TenantId, Slot>,
}

/// The subscription a tenant holds upstream, as kept in the store.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    id: String,
    expires_ticks: i64,
    client_state: String,
}

impl Inbox {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        tenants: impl IntoIterator<Item = TenantId>,
    ) -> Self {
        Self {
            store,
            clock,
            metrics,
            slots: tenants.into_iter().map(|tenant| (tenant, Slot::default())).collect(),
        }
    }

    pub(crate) fn waker(&self, tenant: &TenantId) -> Arc<Notify> {
        self.slots.get(tenant).map(|slot| slot.wake.clone()).unwrap_or_default()
    }

    pub(crate) fn take_lifecycle(&self, tenant: &TenantId) -> Lifecycle {
        self.slots
            .get(tenant)
            .map(|slot| std::mem::take(&mut *slot.lifecycle.lock().expect("not poisoned")))
            .unwrap_or_default()
    }

    /// The notification's tenant, if it is one of ours and the client state is the one its
    /// subscription was made with (anything else is not from our subscription, and is ignored).
    async fn verified_tenant(&self, item: &Value) -> Result<Option<TenantId>, SyncError> {
        let Some(tenant) = item.get("tenantId").and_then(Value::as_str).and_then(TenantId::parse) else {
            return Ok(None);
        };
        if !self.slots.contains_key(&tenant) {
            return Ok(None);
        }
        let held = self.store.sync_value(&tenant, state::SUBSCRIPTION).await?;
        let held: Option<Held> = held.and_then(|text| serde_json::from_str(&text).ok());
        let client_state = item.get("clientState").and_then(Value::as_str);
        Ok(held
            .filter(|held| Some(held.client_state.as_str()) == client_state)
            .map(|_| tenant))
    }

    async fn receive(&self, body: &Value) -> Result<(), SyncError> {
        let items = body.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut notified: HashMap<TenantId, Vec<String>> = HashMap::new();
        for item in &items {
            let Some(tenant) = self.verified_tenant(item).await? else {
                tracing::info!("ignored a notification that no subscription of ours made");
                continue;
            };
            self.metrics.notifications.inc();
            if let Some(event) = item.get("lifecycleEvent").and_then(Value::as_str) {
                let slot = &self.slots[&tenant];
                let mut lifecycle = slot.lifecycle.lock().expect("not poisoned");
                match event {
                    "reauthorizationRequired" => lifecycle.reauthorize = true,
                    "subscriptionRemoved" => lifecycle.removed = true,
                    "missed" => lifecycle.missed = true,
                    other => tracing::info!(event = other, "ignored an unknown lifecycle event"),
                }
                continue;
            }
            let id = item.pointer("/resourceData/id").and_then(Value::as_str).or_else(|| {
                item.get("resource")
                    .and_then(Value::as_str)
                    .and_then(|resource| resource.rsplit('/').next())
            });
            if let Some(id) = id {
                notified.entry(tenant).or_default().push(id.to_owned());
            }
        }
        let now = self.clock.timestamp();
        for (tenant, ids) in &notified {
            self.store.note_pending_records(tenant, ids, now).await?;
        }
        for tenant in items
            .iter()
            .filter_map(|item| item.get("tenantId").and_then(Value::as_str))
        {
            if let Some(slot) = TenantId::parse(tenant).and_then(|tenant| self.slots.get(&tenant)) {
                slot.wake.notify_one();
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

fn validation_answer(token: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
}

async fn notifications(
    State(inbox): State<Arc<Inbox>>,
    Query(handshake): Query<Handshake>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(token) = handshake.validation_token {
        return validation_answer(token);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON notification collection").into_response();
    };
    match inbox.receive(&body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => {
            // Not acknowledged: the upstream sends it again, as it does for any failed delivery.
            tracing::warn!(%error, "could not note notified records");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn handshake_only(Query(handshake): Query<Handshake>) -> Response {
    match handshake.validation_token {
        Some(token) => validation_answer(token),
        None => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// What the store says of each collected tenant's progress: `GET /sync/status`.
async fn status(State(inbox): State<Arc<Inbox>>) -> Response {
    let mut tenants: Vec<&TenantId> = inbox.slots.keys().collect();
    tenants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut answer = Vec::new();
    for tenant in tenants {
        match tenant_status(&inbox, tenant).await {
            Ok(status) => answer.push(status),
            Err(error) => {
                tracing::warn!(%error, "cannot read the collector's progress");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    axum::Json(json!({ "tenants": answer })).into_response()
}

async fn tenant_status(inbox: &Inbox, tenant: &TenantId) -> Result<Value, SyncError> {
    let store = inbox.store.as_ref();
    let instant = |text: Option<String>| {
        text.and_then(|ticks| ticks.parse().ok())
            .map(Timestamp::from_ticks)
            .map(iso)
    };
    let mut logs = serde_json::Map::new();
    for kind in [
        crate::model::LogKind::PstnCall,
        crate::model::LogKind::DirectRoutingCall,
    ] {
        let until = instant(store.sync_value(tenant, &state::log_watermark(kind)).await?);
        logs.insert(kind.as_str().to_owned(), json!(until));
    }
    let held: Option<Held> = store
        .sync_value(tenant, state::SUBSCRIPTION)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok());
    let pending = store.pending_records(tenant, 10_000).await?.len();
    Ok(json!({
        "tenantId": tenant.as_str(),
        "lastPassCompleted": instant(store.sync_value(tenant, state::PASS_COMPLETED).await?),
        "lastSweepCompleted": instant(store.sync_value(tenant, state::SWEEP_COMPLETED).await?),
        "sweepResumesFrom": instant(store.sync_value(tenant, state::SWEEP_RESUME_FROM).await?),
        "logsCompleteUntil": logs,
        "subscription": held.map(|held| json!({
            "id": held.id,
            "expirationDateTime": iso(Timestamp::from_ticks(held.expires_ticks)),
        })),
        "notifiedRecordsToFetch": pending,
    }))
}

/// The notification receiver alone, as `serve` mounts it when it runs the collector.
pub(crate) fn notification_routes(inbox: Arc<Inbox>) -> Router {
    Router::new()
        .route(NOTIFICATION_PATH, post(notifications).get(handshake_only))
        .with_state(inbox)
}

/// The collector's own listener: the notification receiver, `/sync/status`, `/metrics` and
/// `/healthz`.
pub fn router(inbox: Arc<Inbox>) -> Router {
    let metrics = inbox.metrics.clone();
    notification_routes(inbox.clone())
        .merge(Router::new().route("/sync/status", get(status)).with_state(inbox))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}

impl Collector {
    async fn held(&self) -> Result<Option<Held>, SyncError> {
        let text = self.store.sync_value(self.tenant(), state::SUBSCRIPTION).await?;
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    async fn hold(&self, held: &Held) -> Result<(), SyncError> {
        let text = serde_json::to_string(held).expect("plain data");
        self.store
            .set_sync_value(self.tenant(), state::SUBSCRIPTION, &text)
            .await?;
        Ok(())
    }

    /// Makes sure the tenant has a subscription upstream that lasts a day more at least.
    pub(crate) async fn keep_subscription(&self) -> Result<(), SyncError> {
        if self.settings.notification_url.is_none() {
            return Ok(());
        }
        let now = self.clock.timestamp();
        match self.held().await? {
            Some(held) if Timestamp::from_ticks(held.expires_ticks) > now + RENEW_WITHIN => Ok(()),
            Some(held) => self.renew(held).await,
            None => self.subscribe().await,
        }
    }

    /// Acts on lifecycle events: a removed subscription is made again, one that needs
    /// reauthorizing is renewed.
    pub(crate) async fn keep_subscription_after(&self, events: Lifecycle) -> Result<(), SyncError> {
        match (events.removed, self.held().await?) {
            (true, _) | (false, None) => self.subscribe().await,
            (false, Some(held)) => self.renew(held).await,
        }
    }

    async fn subscribe(&self) -> Result<(), SyncError> {
        let Some(url) = self.settings.notification_url.clone() else {
            return Ok(());
        };
        let client_state = uuid::Uuid::new_v4().simple().to_string();
        let expires = self.clock.timestamp() + SUBSCRIPTION_LIFETIME - Duration::from_secs(300);
        let body = json!({
            "changeType": "created,updated",
            "notificationUrl": url,
            "lifecycleNotificationUrl": url,
            "resource": "/communications/callRecords",
            "expirationDateTime": iso(expires),
            "clientState": client_state,
        });
        // Kept before the request, so notifications that arrive before the answer are accepted.
        let pending = Held {
            id: String::new(),
            expires_ticks: expires.ticks(),
            client_state: client_state.clone(),
        };
        self.hold(&pending).await?;
        let answer = self
            .graph
            .send_json(reqwest::Method::POST, &self.graph.url("/subscriptions"), &body)
            .await?;
        let Answer::Json(created) = answer else {
            return Err(SyncError::Upstream("POST /subscriptions answered 404".to_owned()));
        };
        let id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| SyncError::Invalid("the created subscription has no id".to_owned()))?;
        self.hold(&Held {
            id: id.to_owned(),
            ..pending
        })
        .await?;
        tracing::info!(tenant = %self.tenant().as_str(), subscription = id, "subscribed to call records");
        Ok(())
    }

    async fn renew(&self, held: Held) -> Result<(), SyncError> {
        if held.id.is_empty() {
            return self.subscribe().await;
        }
        let expires = self.clock.timestamp() + SUBSCRIPTION_LIFETIME - Duration::from_secs(300);
        let url = self.graph.url(&format!("/subscriptions/{}", held.id));
        let body = json!({ "expirationDateTime": iso(expires) });
        match self.graph.send_json(reqwest::Method::PATCH, &url, &body).await? {
            Answer::NotFound => self.subscribe().await,
            Answer::Json(_) => {
                self.hold(&Held {
                    expires_ticks: expires.ticks(),
                    ..held
                })
                .await
            }
        }
    }
}
