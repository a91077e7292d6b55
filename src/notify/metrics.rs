//! Delivery metrics; `crate::metrics` registers them beside the service's for `GET /metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub(crate) struct Metrics {
    pub(crate) deliveries_sent: Counter,
    pub(crate) deliveries_failed: Counter,
    pub(crate) deliveries_retried: Counter,
    pub(crate) deliveries_abandoned: Counter,
    pub(crate) outbox_depth: Gauge,
    pub(crate) ingest_to_delivery_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let deliveries_sent = Counter::default();
        let deliveries_failed = Counter::default();
        let deliveries_retried = Counter::default();
        let deliveries_abandoned = Counter::default();
        let outbox_depth = Gauge::default();
        let ingest_to_delivery_seconds = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]);
        Self {
            deliveries_sent,
            deliveries_failed,
            deliveries_retried,
            deliveries_abandoned,
            outbox_depth,
            ingest_to_delivery_seconds,
        }
    }
}

impl Metrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "deliveries_sent",
            "Notifications acknowledged by their receiver",
            self.deliveries_sent.clone(),
        );
        registry.register(
            "deliveries_failed",
            "Notification POSTs that failed (error, timeout or non-2xx)",
            self.deliveries_failed.clone(),
        );
        registry.register(
            "deliveries_retried",
            "Notifications rescheduled after a failure",
            self.deliveries_retried.clone(),
        );
        registry.register(
            "deliveries_abandoned",
            "Notifications given up after the retry window",
            self.deliveries_abandoned.clone(),
        );
        registry.register(
            "outbox_depth",
            "Notifications waiting in the outbox",
            self.outbox_depth.clone(),
        );
        registry.register(
            "ingest_to_delivery_seconds",
            "Time from the commit of a record version to the acknowledgement of its notification",
            self.ingest_to_delivery_seconds.clone(),
        );
    }
}
