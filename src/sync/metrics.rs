//! What the collector counts: on `sync --listen`'s `GET /metrics`, or beside the service's own
//! metrics when `serve` runs the collector. No label names a tenant or a record: their number
//! has no bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::TenantId;

#[derive(Default)]
pub struct Metrics {
    pub(crate) requests: Counter,
    pub(crate) pages: Counter,
    pub(crate) records_fetched: Counter,
    pub(crate) records_unchanged: Counter,
    pub(crate) log_rows_fetched: Counter,
    pub(crate) throttled: Counter,
    pub(crate) errors: Counter,
    pub(crate) passes: Counter,
    pub(crate) passes_failed: Counter,
    pub(crate) notifications: Counter,
    /// Set from `completed` at each scrape (`refresh`).
    lag_seconds: Gauge,
    /// When each collected tenant last completed a pass (or when collecting it began).
    completed: Mutex<HashMap<String, Instant>>,
}

impl Metrics {
    /// Starts the lag of `tenant` counting, as of now.
    pub(crate) fn collecting(&self, tenant: &TenantId) {
        let mut completed = self.completed.lock().expect("not poisoned");
        completed.entry(tenant.as_str().to_owned()).or_insert_with(Instant::now);
    }

    pub(crate) fn completed(&self, tenant: &TenantId, at: Instant) {
        let mut completed = self.completed.lock().expect("not poisoned");
        completed.insert(tenant.as_str().to_owned(), at);
    }

    /// Sets the lag: seconds since the tenant collected least recently completed a pass.
    pub(crate) fn refresh(&self) {
        let completed = self.completed.lock().expect("not poisoned");
        let lag = completed
            .values()
            .map(|at| at.elapsed().as_secs() as i64)
            .max()
            .unwrap_or(0);
        self.lag_seconds.set(lag);
    }

    /// Registers every metric as `sync_*` in `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("sync");
        let counters: [(&str, &str, &Counter); 10] = [
            ("requests", "Requests sent to the upstream Graph", &self.requests),
            (
                "pages",
                "Pages of records, sessions, participants and log rows read",
                &self.pages,
            ),
            (
                "records_fetched",
                "Call records fetched because they were new or their version rose",
                &self.records_fetched,
            ),
            (
                "records_unchanged",
                "Listed call records whose stored version was current",
                &self.records_unchanged,
            ),
            (
                "log_rows_fetched",
                "PSTN and Direct Routing log rows read",
                &self.log_rows_fetched,
            ),
            (
                "throttled",
                "Upstream answers of 429 Too Many Requests",
                &self.throttled,
            ),
            (
                "errors",
                "Requests given up (after their retries) or refused",
                &self.errors,
            ),
            ("passes", "Passes completed", &self.passes),
            ("passes_failed", "Passes ended by an error", &self.passes_failed),
            ("notifications", "Change notifications received", &self.notifications),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "lag_seconds",
            "Seconds since the tenant collected least recently last completed a pass",
            self.lag_seconds.clone(),
        );
    }

    /// The text exposition, for the collector's own listener.
    pub(crate) fn render(&self) -> String {
        let mut registry = Registry::with_prefix("callrecords");
        self.register(&mut registry);
        self.refresh();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}
