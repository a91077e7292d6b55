//! What the store tests share: a fresh store of each backend (a SQLite file in a temporary
//! directory, or a PostgreSQL database of its own on `CALLRECORDS_TEST_PG`, by default the local
//! server CI starts, dropped afterwards even when the test fails) and builders of the rows they
//! store.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use super::*;
use crate::clock::{Clock as _, SystemClock};
use crate::model::DateTimeOffset;

pub(super) fn admin_url() -> String {
    std::env::var("CALLRECORDS_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A PostgreSQL database that exists for one test.
pub(super) struct TestDb {
    name: String,
}

impl TestDb {
    pub(super) async fn create() -> Self {
        let name = format!("callrecords_dev_{}", uuid::Uuid::new_v4().simple());
        let admin_url = admin_url();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL at CALLRECORDS_TEST_PG or 127.0.0.1:5432 answers: {error}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        Self { name }
    }

    pub(super) fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    pub(super) async fn open(&self) -> postgres::PgStore {
        postgres::PgStore::open(&self.url()).await.expect("open")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop cannot await, and may run while the test's runtime unwinds: use a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

/// A fresh store of one backend, seen only through the `Store` trait. Holds what the store lives
/// in, so the file or database outlives the store.
pub(super) struct FreshStore {
    pub(super) store: Arc<dyn Store>,
    _home: Home,
}

enum Home {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] TestDb),
}

impl FreshStore {
    pub(super) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.db");
        let store = sqlite::SqliteStore::open(path.to_str().expect("UTF-8 path"))
            .await
            .expect("open");
        Self {
            store: Arc::new(store),
            _home: Home::Sqlite(dir),
        }
    }

    pub(super) async fn postgres() -> Self {
        let db = TestDb::create().await;
        let store = db.open().await;
        Self {
            store: Arc::new(store),
            _home: Home::Postgres(db),
        }
    }
}

pub(super) const SECOND: Duration = Duration::from_secs(1);
pub(super) const MINUTE: Duration = Duration::from_secs(60);

pub(super) fn at(text: &str) -> Timestamp {
    Timestamp::from(DateTimeOffset::parse(text).expect("test time"))
}

pub(super) fn now() -> Timestamp {
    SystemClock.timestamp()
}

pub(super) fn tenant() -> TenantId {
    TenantId::default_tenant()
}

pub(super) fn other_tenant() -> TenantId {
    TenantId("11111111-2222-3333-4444-555555555555".to_owned())
}

/// A record starting at `start`, whose document carries a number whose text must survive.
pub(super) fn record(id: &str, version: i64, start: &str, sessions: &[&str], participants: &[&str]) -> PreparedRecord {
    let child = |id: &&str| (id.to_string(), format!(r#"{{"id":"{id}","of":"{version}"}}"#));
    PreparedRecord {
        id: id.to_owned(),
        version,
        start: at(start),
        end: at(start) + MINUTE,
        document: format!(r#"{{"id":"{id}","version":{version},"startDateTime":"{start}","cost":0.00}}"#),
        organizer_at: 0,
        sessions: sessions.iter().map(child).collect(),
        participants: participants.iter().map(child).collect(),
        streams: Default::default(),
        quality: Default::default(),
        rewrite: false,
    }
}

pub(super) fn log_row(id: &str, start: &str) -> PreparedLogRow {
    PreparedLogRow {
        id: id.to_owned(),
        start: at(start),
        document: format!(r#"{{"id":"{id}","startDateTime":"{start}","charge":0.00}}"#),
    }
}

pub(super) fn ids(records: &[StoredRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

/// Every page of a selection, `limit` at a time, following the cursor.
pub(super) async fn all_pages(store: &dyn Store, selection: &RecordSelection, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<RecordCursor> = None;
    loop {
        let page = store
            .list_call_records(&tenant(), selection, cursor.as_ref(), limit)
            .await
            .unwrap();
        seen.extend(page.iter().map(|r| r.id.clone()));
        match page.last() {
            Some(last) if page.len() == limit as usize => {
                cursor = Some(RecordCursor {
                    start: last.start,
                    id: last.id.clone(),
                })
            }
            _ => return seen,
        }
    }
}

/// A subscription expiring at `expiration`, delivering to a URL and clientState named after it.
pub(super) fn subscription(id: &str, expiration: Timestamp, scope: SubscriptionScope) -> StoredSubscription {
    let expires = expiration.to_date_time().expect("expiration");
    let document = crate::model::Subscription {
        id: id.to_owned(),
        resource: "/communications/callRecords".to_owned(),
        change_type: "created,updated".to_owned(),
        client_state: Some(format!("state-{id}")),
        notification_url: format!("https://receiver.example/{id}"),
        notification_query_options: None,
        lifecycle_notification_url: None,
        expiration_date_time: expires,
        application_id: None,
        creator_id: None,
        include_resource_data: None,
        latest_supported_tls_version: None,
        encryption_certificate: None,
        encryption_certificate_id: None,
        notification_url_app_id: None,
    };
    StoredSubscription {
        id: id.to_owned(),
        expiration,
        scope,
        document: crate::model::to_json(&document),
    }
}

pub(super) fn scope(created: bool, updated: bool, participants: Option<&[&str]>) -> SubscriptionScope {
    SubscriptionScope {
        created,
        updated,
        participant_ids: participants.map(|ids| ids.iter().map(|id| (*id).to_owned()).collect()),
    }
}

/// The records the purge tests cut at 2024-03-10: nine of them before it (in January, February
/// and early March, one of another tenant), two after it, each with a session and a participant.
pub(super) async fn store_purge_fixture(store: &dyn Store) {
    let mut batch = vec![
        record("jan-1", 1, "2024-01-05T00:00:00Z", &["s"], &["p"]),
        record("jan-2", 1, "2024-01-31T23:59:59Z", &["s"], &["p"]),
        record("feb-1", 1, "2024-02-10T00:00:00Z", &["s"], &["p"]),
        record("mar-late", 1, "2024-03-20T00:00:00Z", &["s"], &["p"]),
        record("apr", 1, "2024-04-02T00:00:00Z", &["s"], &["p"]),
    ];
    for day in 1..=5 {
        batch.push(record(
            &format!("mar-{day}"),
            1,
            &format!("2024-03-0{day}T00:00:00Z"),
            &["s"],
            &["p"],
        ));
    }
    store.upsert_call_records(&tenant(), &batch, now()).await.unwrap();
    let other = [record("feb-x", 1, "2024-02-11T00:00:00Z", &[], &[])];
    store.upsert_call_records(&other_tenant(), &other, now()).await.unwrap();
}

/// A subscription `all` of the default tenant to every change, for an hour.
pub(super) async fn subscribe_to_every_change(store: &dyn Store) {
    let all = subscription("all", now() + 60 * MINUTE, scope(true, true, None));
    store.create_subscription(&tenant(), &all, 10, now()).await.unwrap();
}
