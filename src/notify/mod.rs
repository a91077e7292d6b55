//! Change notifications: subscription rules (`subscriptions`), the validation handshake, and
//! delivery of the durable outbox to webhooks with retries, backoff and lifecycle events
//! (`delivery`), the addresses webhooks may reach (`resolve`), plus the metrics they keep
//! (`metrics`).
//!
//! Never: HTTP status codes (api maps `SubscriptionError`), SQL (the store claims and leases
//! outbox rows). Notifications are planned by the store inside the ingest transaction; this
//! module only sends what is in the outbox, so a crash loses nothing.

pub mod delivery;
pub(crate) mod metrics;
pub(crate) mod resolve;
pub(crate) mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::Store;
pub(crate) use metrics::Metrics;
use resolve::GuardedResolver;
pub use resolve::Resolver;
pub(crate) use subscriptions::{SubscriptionError, SubscriptionErrorKind};

/// How notifications are validated and delivered. The defaults are Graph's documented figures.
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// Whether notification URLs may be `http://` or point at loopback and private addresses.
    /// Safe only for local development; public deployments turn it off.
    pub allow_private_targets: bool,
    /// Where webhook host names are resolved: the system's resolver, unless a test supplies
    /// one. Its answers pass the private-address check at every connection.
    pub resolver: Resolver,
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
            resolver: Resolver::system(),
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

/// What the API and the worker share: the store, an HTTP client for webhooks and the resolver
/// it connects through, the settings, the metrics, and a signal that wakes the worker when
/// ingest has queued notifications.
pub struct Notifier {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: reqwest::Client,
    pub(crate) resolver: Arc<GuardedResolver>,
    pub(crate) settings: NotifySettings,
    pub(crate) metrics: Metrics,
    pub(crate) wake: Notify,
    /// What subscription expiry, claims and retries are decided by.
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        settings: NotifySettings,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> anyhow::Result<Self> {
        let resolver = Arc::new(GuardedResolver::new(
            settings.resolver.clone(),
            settings.allow_private_targets,
        ));
        // Webhooks never follow redirects: a redirect could steer our requests anywhere. Nor do
        // they go through a proxy from the environment, which would resolve and connect in our
        // place, to addresses the resolver never sees.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(resolver.clone())
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("callrecords/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            client,
            resolver,
            settings,
            metrics: Metrics::default(),
            wake: Notify::new(),
            clock,
        })
    }
}
