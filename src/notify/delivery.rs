//! Delivery: leases due outbox rows, POSTs them to their receivers in batches per URL, and
//! completes, retries (exponential backoff with jitter) or abandons them. A receiver that stays
//! down past the retry window gets `missed` and `subscriptionRemoved` at its lifecycle URL, and
//! its subscription is removed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use super::resolve::NonPublicAddress;
use super::Notifier;
use crate::store::{ClaimedNotification, LifecycleEvent, StoreResult, TenantId, Timestamp};

/// Rows claimed per step.
const CLAIM_LIMIT: u32 = 500;
/// `reauthorizationRequired` goes out when less than this remains, and again every `REMINDER`.
const REAUTHORIZATION_WINDOW: Duration = Duration::from_secs(3600);
const REMINDER: Duration = Duration::from_secs(15 * 60);
/// The retry schedule as multiples of the base delay: 10 s, 30 s, 1 min, 2 min, 5 min, 10 min.
const BACKOFF_FACTORS: [u32; 6] = [1, 3, 6, 12, 30, 60];

/// The delay before attempt `attempts + 1`, with ±10 % jitter so that retries of many rows do
/// not arrive in lockstep.
pub(crate) fn backoff(base: Duration, attempts: i64) -> Duration {
    let index = usize::try_from(attempts).unwrap_or(0).min(BACKOFF_FACTORS.len() - 1);
    let delay = base * BACKOFF_FACTORS[index];
    let jitter = rand::thread_rng().gen_range(0.9..=1.1);
    delay.mul_f64(jitter)
}

/// One item of a changeNotificationCollection: a change or a lifecycle notification.
fn notification_item(notification: &ClaimedNotification) -> Value {
    let expiration = notification
        .subscription_expiration
        .to_date_time()
        .map(|value| value.to_string())
        .unwrap_or_default();
    match &notification.call_record_id {
        Some(record_id) => json!({
            "subscriptionId": notification.subscription_id,
            "subscriptionExpirationDateTime": expiration,
            "changeType": notification.event,
            "resource": format!("communications/callRecords/{record_id}"),
            "resourceData": {
                // The spelling of Graph's call records notification docs, written verbatim.
                "@odata.type": "#Microsoft.Graph.callRecord",
                "@odata.id": format!("communications/callRecords/{record_id}"),
                "id": record_id,
            },
            "clientState": notification.client_state,
            "tenantId": notification.tenant_id,
        }),
        None => json!({
            "subscriptionId": notification.subscription_id,
            "subscriptionExpirationDateTime": expiration,
            "tenantId": notification.tenant_id,
            "clientState": notification.client_state,
            "lifecycleEvent": notification.event,
        }),
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub delivered: usize,
    pub retried: usize,
    pub(crate) abandoned: usize,
    /// Rows given back unsent because the lease would have run out during their batch.
    pub released: usize,
}

/// What became of one receiver's batch.
enum Attempt {
    Delivered,
    Failed,
    /// Not sent: it could not have ended inside the lease.
    Unsent,
}

/// One pass: claim what is due, deliver it, record the outcome. Public so tests can drain the
/// outbox deterministically.
pub async fn deliver_due_once(notifier: &Notifier, worker: &str) -> StoreResult<StepReport> {
    let now = notifier.clock.timestamp();
    let claimed_at = Instant::now();
    let lease = notifier.settings.lease;
    let claimed = notifier
        .store
        .claim_notifications(worker, now, lease, CLAIM_LIMIT)
        .await?;
    if claimed.is_empty() {
        return Ok(StepReport::default());
    }
    // One POST per receiver URL, items in outbox order, so one record's notifications arrive in
    // the order they were made.
    let mut batches: BTreeMap<&str, Vec<&ClaimedNotification>> = BTreeMap::new();
    for notification in &claimed {
        batches.entry(notification.url.as_str()).or_default().push(notification);
    }
    let permits = Arc::new(Semaphore::new(notifier.settings.max_concurrent_deliveries.max(1)));
    // Once the lease runs out another node may claim these rows and send them too, so a batch
    // starts only while it can time out and have its outcome recorded inside the lease (with
    // 500 rows for as many receivers, 16 at a time, 3 s each, a step would otherwise outlast a
    // 60 s lease). The first batch always goes, so every step makes progress.
    let last_start = lease.saturating_sub(notifier.settings.delivery_timeout * 2);
    let any_started = AtomicBool::new(false);
    let outcomes = join_all(batches.into_iter().map(|(url, items)| {
        let permits = permits.clone();
        let any_started = &any_started;
        async move {
            let _permit = permits.acquire().await;
            if any_started.swap(true, Ordering::Relaxed) && claimed_at.elapsed() > last_start {
                return (items, Attempt::Unsent);
            }
            let body = json!({ "value": items.iter().map(|n| notification_item(n)).collect::<Vec<_>>() });
            let ok = match notifier
                .client
                .post(url)
                .timeout(notifier.settings.delivery_timeout)
                .json(&body)
                .send()
                .await
            {
                Ok(response) => response.status().is_success(),
                Err(error) => {
                    // A failure like any other (retried, in time abandoned), but one the
                    // operator should see: the receiver's name now points somewhere private.
                    if let Some(refusal) = NonPublicAddress::cause_of(&error) {
                        tracing::warn!(host = %refusal.host, "webhook not sent: {refusal}");
                    }
                    false
                }
            };
            (items, if ok { Attempt::Delivered } else { Attempt::Failed })
        }
    }))
    .await;

    let now_after = notifier.clock.timestamp();
    let mut report = StepReport::default();
    let mut completed = Vec::new();
    let mut retries = Vec::new();
    let mut abandoned: Vec<&ClaimedNotification> = Vec::new();
    let mut unsent = Vec::new();
    for (items, attempt) in outcomes {
        match attempt {
            Attempt::Delivered => {
                notifier.metrics.deliveries_sent.inc_by(items.len() as u64);
                for item in &items {
                    let seconds = now_after.duration_since(item.created).as_secs_f64();
                    notifier.metrics.ingest_to_delivery_seconds.observe(seconds);
                    completed.push(item.id);
                }
                report.delivered += items.len();
            }
            Attempt::Unsent => unsent.extend(items.iter().map(|item| item.id)),
            Attempt::Failed => {
                notifier.metrics.deliveries_failed.inc();
                // One due time for the whole batch: per-item jitter could reorder one record's versions.
                let attempts = items.iter().map(|item| item.attempts).max().unwrap_or(0);
                let due = now_after + backoff(notifier.settings.backoff_base, attempts);
                for item in items {
                    let first_attempt = item.first_attempt.unwrap_or(now);
                    if now_after.duration_since(first_attempt) >= notifier.settings.retry_window {
                        completed.push(item.id);
                        abandoned.push(item);
                    } else {
                        retries.push((item.id, due));
                    }
                }
            }
        }
    }
    report.retried = retries.len();
    report.abandoned = abandoned.len();
    report.released = unsent.len();
    notifier.metrics.deliveries_retried.inc_by(retries.len() as u64);
    notifier.metrics.deliveries_abandoned.inc_by(abandoned.len() as u64);
    notifier.store.retry_notifications(&retries, now).await?;
    notifier.store.complete_notifications(&completed).await?;
    notifier.store.release_notifications(worker, &unsent).await?;
    abandon(notifier, &abandoned, now_after).await?;
    Ok(report)
}

/// A receiver that stayed down past the retry window: its change notifications are `missed`,
/// and its subscription is removed, with `subscriptionRemoved`. Graph documents neither for call
/// records, but a dead endpoint should not keep its subscription forever.
async fn abandon(notifier: &Notifier, abandoned: &[&ClaimedNotification], now: Timestamp) -> StoreResult<()> {
    let mut done = std::collections::BTreeSet::new();
    for notification in abandoned.iter().filter(|n| n.call_record_id.is_some()) {
        if !done.insert((notification.tenant_id.clone(), notification.subscription_id.clone())) {
            continue;
        }
        let tenant = TenantId::from_stored(notification.tenant_id.clone());
        let Some(subscription) = notifier
            .store
            .get_subscription(&tenant, &notification.subscription_id, now)
            .await?
        else {
            continue;
        };
        let parsed: Option<crate::model::Subscription> = serde_json::from_str(&subscription.document).ok();
        if let Some(lifecycle_url) = parsed.as_ref().and_then(|s| s.lifecycle_notification_url.clone()) {
            let event = |name: &str| LifecycleEvent {
                subscription_id: notification.subscription_id.clone(),
                event: name.to_owned(),
                target_url: lifecycle_url.clone(),
                client_state: parsed.as_ref().and_then(|s| s.client_state.clone()),
                expiration: subscription.expiration,
            };
            notifier
                .store
                .enqueue_lifecycle_events(&tenant, &[event("missed"), event("subscriptionRemoved")], now)
                .await?;
        }
        notifier
            .store
            .delete_subscription(&tenant, &notification.subscription_id)
            .await?;
        tracing::warn!(subscription = %notification.subscription_id, "receiver unreachable past the retry window; subscription removed");
    }
    Ok(())
}

/// Housekeeping: expired subscriptions removed, reauthorization reminders queued.
pub(crate) async fn maintain_subscriptions(notifier: &Notifier) -> StoreResult<()> {
    let now = notifier.clock.timestamp();
    notifier.store.remove_expired_subscriptions(now).await?;
    let due = notifier
        .store
        .take_reauthorization_due(now, REAUTHORIZATION_WINDOW, REMINDER)
        .await?;
    for (tenant, subscription) in due {
        let parsed: Option<crate::model::Subscription> = serde_json::from_str(&subscription.document).ok();
        let Some(parsed) = parsed else { continue };
        if let Some(url) = parsed.lifecycle_notification_url {
            let event = LifecycleEvent {
                subscription_id: subscription.id.clone(),
                event: "reauthorizationRequired".to_owned(),
                target_url: url,
                client_state: parsed.client_state,
                expiration: subscription.expiration,
            };
            notifier.store.enqueue_lifecycle_events(&tenant, &[event], now).await?;
        }
    }
    if let Ok(depth) = notifier.store.outbox_depth().await {
        notifier.metrics.outbox_depth.set(depth);
    }
    Ok(())
}

/// The delivery loop of one node: steps whenever ingest wakes it or the poll interval passes,
/// until `shutdown` turns true (the batch in hand is finished first).
pub async fn run(notifier: Arc<Notifier>, mut shutdown: watch::Receiver<bool>) {
    let worker = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let mut last_maintenance = Instant::now() - Duration::from_secs(3600);
    loop {
        if last_maintenance.elapsed() >= notifier.settings.maintenance_interval {
            if let Err(error) = maintain_subscriptions(&notifier).await {
                tracing::warn!(%error, "subscription maintenance failed");
            }
            last_maintenance = Instant::now();
        }
        let busy = match deliver_due_once(&notifier, &worker).await {
            Ok(report) => report.delivered + report.retried + report.abandoned + report.released > 0,
            Err(error) => {
                tracing::warn!(%error, "notification delivery step failed");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = notifier.wake.notified() => {}
            _ = tokio::time::sleep(notifier.settings.poll_interval) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
    }
}
