//! Change notifications: subscription rules (`subscriptions`), the validation handshake, and
//! delivery of the durable outbox to webhooks with retries, backoff and lifecycle events
//! (`delivery`), plus the metrics they keep (`metrics`).
//!
//! Never: HTTP status codes (api maps `SubscriptionError`), SQL (the store claims and leases
//! outbox rows). Notifications are planned by the store inside the ingest transaction; this
//! module only sends what is in the outbox, so a crash loses nothing.

pub mod delivery;
pub mod metrics;
pub mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::Store;
pub use metrics::Metrics;
pub use subscriptions::{SubscriptionError, SubscriptionErrorKind};

/// How notifications are validated and delivered. The defaults are Graph's figures (spec §5).
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// Whether notification URLs may be `http://` or point at loopback and private addresses.
    /// Safe only for local development; public deployments turn it off.
    pub allow_private_targets: bool,
    /// How long a receiver has to answer the validation handshake.
    pub validation_timeout: Duration,
    /// How long a receiver has to acknowledge a notification.
    pub delivery_timeout: Duration,
    /// How long claimed outbox rows stay with one worker. A step sends no batch it could not
    /// finish inside it, and rows leased by a node that died wait this long before another node
    /// (or the restarted one) takes them.
    pub lease: Duration,
    /// The first retry delay; later ones are 3, 6, 12, 30 and 60 times it (10 s gives Graph's
    /// 10 s, 30 s, 1 min, 2 min, 5 min, then every 10 min).
    pub backoff_base: Duration,
    /// How long a notification is retried before it is abandoned and reported as `missed`.
    pub retry_window: Duration,
    /// Time between outbox polls when nothing wakes the worker.
    pub poll_interval: Duration,
    /// Requests in flight to receivers at once, per node.
    pub max_concurrent_deliveries: usize,
    /// Time between housekeeping passes: expired subscriptions removed, reauthorization
    /// reminders queued, the outbox depth gauge refreshed.
    pub maintenance_interval: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            allow_private_targets: true,
            validation_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(3),
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(10),
            retry_window: Duration::from_secs(4 * 3600),
            poll_interval: Duration::from_secs(1),
            max_concurrent_deliveries: 16,
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

/// What the API and the worker share: the store, an HTTP client for webhooks, the settings,
/// the metrics, and a signal that wakes the worker when ingest has queued notifications.
pub struct Notifier {
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    pub settings: NotifySettings,
    pub metrics: Metrics,
    pub wake: Notify,
}

impl Notifier {
    pub fn new(store: Arc<dyn Store>, settings: NotifySettings) -> anyhow::Result<Self> {
        // Webhooks never follow redirects: a redirect could steer our requests anywhere.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("callrecords/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            client,
            settings,
            metrics: Metrics::default(),
            wake: Notify::new(),
        })
    }
}
