//! callrecords: a self-hostable Microsoft Graph call records API.
//! Modules in reading order; each one's `//!` says what it owns and what it must never do.

/// Call-quality analytics over the stored streams and legs: dimensions, filters, answers.
pub mod analytics;
/// The HTTP surface: routes, OData envelopes, errors. The only module that knows HTTP.
pub mod api;
/// `App::build` / `App::run`: the startup seam shared by `serve` and the tests.
pub mod app;
/// Bearer tokens, application roles and tenants; the local token issuer and external OIDC issuers' keys.
pub mod auth;
/// The command line: serve, import, generate, migrate, the local issuer, and `bench`, which runs
/// the benchmark's own binary (the workspace's `bench` crate).
pub mod cli;
/// Where time is read: the system clock, or a test's manual one.
pub mod clock;
/// The served sockets: the connection cap, the request-head timeout, Graph errors for hyper's own refusals.
pub mod connections;
/// Exports: records, sessions, streams and usage logs out of the store as NDJSON or Parquet.
pub mod export;
/// The seeded, deterministic generator of realistic call records.
pub mod generate;
/// Validation and batching of ingested records; shared by HTTP ingest and `import`.
pub mod ingest;
/// What `GET /metrics` exposes: requests, latencies, ingest, the store, deliveries.
pub mod metrics;
/// Graph resource types with serde: the wire contract. No IO.
pub mod model;
/// Change notifications: subscription rules, the validation handshake, outbox delivery.
pub mod notify;
/// The personal-data scrub: identifying values cleared from old records, quality data kept.
pub mod privacy;
/// Call quality as Microsoft's Call Quality Dashboard measures it: streams placed and classified.
pub mod quality;
/// OData query options (`$filter`, `$select`, `$expand`, `$top`, skip tokens, `Prefer`) parsed to a typed AST. No IO, no SQL.
pub mod query;
/// The background purge of data past its retention window.
pub mod retention;
/// The `Store` trait and its backends (SQLite). Knows the model, never HTTP.
pub mod store;
/// `callrecords sync`: the collector that copies Graph tenants into the store.
pub mod sync;
/// Logging setup.
pub mod telemetry;
/// HTTPS: an operator's certificate (reloaded on renewal) or a self-signed local CA and certificate.
pub mod tls;
