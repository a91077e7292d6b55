//! One integration-test binary (it links once): every test talks to a real server over real
//! HTTP on 127.0.0.1 with a port chosen at run time, backed by a real SQLite file.

#[macro_use]
mod support;

mod analytics;
mod answers;
mod auth;
mod beta;
mod buildings;
mod call_records;
mod cli;
mod connections;
mod crash;
mod dictionaries;
mod errors;
mod export;
mod front_door;
mod http_habits;
mod ingest;
mod ingest_limits;
mod nodes;
mod notifications;
mod oidc;
mod outbox;
mod paging;
mod retention;
mod retired;
mod store_full;
mod sub_resources;
mod sync;
mod throttling;
mod tls;
mod upgrade;
mod usage_logs;
