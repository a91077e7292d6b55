//! What `GET /metrics` exposes, in the OpenMetrics text format: HTTP requests by route and
//! status with their latency, ingest counts and bytes, the store's size and row counts, and the
//! delivery metrics of `notify`.
//!
//! Every label has a bounded set of values (route templates, status codes, ingest kinds), never
//! an id or a tenant, so a scrape stays the same size however many records and tenants the
//! store holds.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::ingest::IngestReport;
use crate::model::LogKind;
use crate::store::StoreStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: String,
    pub(crate) method: String,
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: String,
}

/// An ingest kind or a usage-log kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    pub(crate) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IngestOutcomeLabels {
    pub(crate) kind: &'static str,
    /// `stored`, `replaced`, `ignored` (an older or equal version) or `rejected`.
    pub(crate) outcome: &'static str,
}

/// A stream's media type and CQD classification.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StreamLabels {
    pub(crate) media_type: &'static str,
    pub(crate) classification: &'static str,
}

/// A poor stream's media type and one condition it is poor due to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PoorStreamLabels {
    pub(crate) media_type: &'static str,
    pub(crate) condition: &'static str,
}

/// Latency buckets from a cached page (a millisecond) to a large export or ingest (a minute).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

pub(crate) struct Metrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_seconds: Family<RouteLabels, Histogram>,
    pub(crate) ingest_records: Family<IngestOutcomeLabels, Counter>,
    pub(crate) ingest_bytes: Family<KindLabels, Counter>,
    pub(crate) ingest_streams: Family<StreamLabels, Counter>,
    pub(crate) ingest_poor_streams: Family<PoorStreamLabels, Counter>,
    pub(crate) store_bytes: Gauge,
    pub(crate) store_call_records: Gauge,
    pub(crate) store_tenants: Gauge,
    pub(crate) store_log_rows: Family<KindLabels, Gauge>,
    /// The collector's, when `serve` runs it.
    sync: Option<std::sync::Arc<crate::sync::Metrics>>,
    registry: Registry,
}

impl Metrics {
    /// The service's metrics, with `notify`'s registered beside them, and the collector's when
    /// `serve` runs one.
    pub fn new(delivery: &crate::notify::Metrics, sync: Option<std::sync::Arc<crate::sync::Metrics>>) -> Self {
        let mut registry = Registry::with_prefix("callrecords");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's head, by route template",
            request_seconds.clone(),
        );
        let ingest_records = Family::<IngestOutcomeLabels, Counter>::default();
        registry.register(
            "ingest_records",
            "Ingested records and log rows, by kind and outcome",
            ingest_records.clone(),
        );
        let ingest_bytes = Family::<KindLabels, Counter>::default();
        registry.register(
            "ingest_bytes",
            "Ingest request body bytes read, by kind",
            ingest_bytes.clone(),
        );
        let ingest_streams = Family::<StreamLabels, Counter>::default();
        registry.register(
            "ingest_streams",
            "Streams of the call records ingest stored, by media type and CQD classification (good, poor, unclassified)",
            ingest_streams.clone(),
        );
        let ingest_poor_streams = Family::<PoorStreamLabels, Counter>::default();
        registry.register(
            "ingest_poor_streams",
            "Poor streams of the call records ingest stored, by media type and each condition they are poor due to",
            ingest_poor_streams.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register("store_bytes", "Bytes the store takes on disk", store_bytes.clone());
        let store_call_records = Gauge::default();
        registry.register(
            "store_call_records",
            "Call records in the store, all tenants together",
            store_call_records.clone(),
        );
        let store_tenants = Gauge::default();
        registry.register(
            "store_tenants",
            "Tenants with at least one call record in the store",
            store_tenants.clone(),
        );
        let store_log_rows = Family::<KindLabels, Gauge>::default();
        registry.register(
            "store_log_rows",
            "Usage-log rows in the store, by kind",
            store_log_rows.clone(),
        );
        delivery.register(&mut registry);
        if let Some(sync) = &sync {
            sync.register(&mut registry);
        }
        Self {
            requests,
            request_seconds,
            ingest_records,
            ingest_bytes,
            ingest_streams,
            ingest_poor_streams,
            store_bytes,
            store_call_records,
            store_tenants,
            store_log_rows,
            sync,
            registry,
        }
    }

    /// Counts one answered request.
    pub(crate) fn observe_request(&self, route: &str, method: &axum::http::Method, status: u16, seconds: f64) {
        let method = match method.as_str() {
            known @ ("GET" | "HEAD" | "POST" | "PATCH" | "DELETE" | "OPTIONS" | "PUT") => known,
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts what one ingest request read and what became of its records.
    pub(crate) fn observe_ingest(&self, kind: &'static str, bytes: usize, report: &IngestReport) {
        self.ingest_bytes
            .get_or_create(&KindLabels { kind })
            .inc_by(bytes as u64);
        for (media, classification, count) in report.streams.by_class() {
            self.ingest_streams
                .get_or_create(&StreamLabels {
                    media_type: media.as_str(),
                    classification: classification.as_str(),
                })
                .inc_by(count);
        }
        for (media, condition, count) in report.streams.poor_due_to() {
            self.ingest_poor_streams
                .get_or_create(&PoorStreamLabels {
                    media_type: media.as_str(),
                    condition: condition.as_str(),
                })
                .inc_by(count);
        }
        for (outcome, count) in [
            ("stored", report.stored),
            ("replaced", report.replaced),
            ("ignored", report.ignored),
            ("rejected", report.rejected),
        ] {
            if count > 0 {
                self.ingest_records
                    .get_or_create(&IngestOutcomeLabels { kind, outcome })
                    .inc_by(count);
            }
        }
    }

    /// Sets the store gauges from a fresh reading.
    pub(crate) fn set_store(&self, stats: &StoreStats) {
        self.store_bytes.set(stats.bytes);
        self.store_call_records.set(stats.call_records());
        self.store_tenants.set(stats.call_records_by_tenant.len() as i64);
        // Every kind is set, so a kind whose last rows were purged reads 0.
        for kind in LogKind::ALL {
            let count = stats
                .log_rows_by_kind
                .iter()
                .find(|(stored, _)| stored == kind.as_str())
                .map_or(0, |(_, count)| *count);
            self.store_log_rows
                .get_or_create(&KindLabels { kind: kind.as_str() })
                .set(count);
        }
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        if let Some(sync) = &self.sync {
            sync.refresh();
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}
