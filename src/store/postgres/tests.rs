//! `PgStore` against a real server: each test gets a fresh `callrecords_dev_*` database, dropped
//! afterwards even when the test fails. The server is `CALLRECORDS_TEST_PG` (an admin URL), by
//! default the local one CI starts.

use sqlx::{Connection, Executor, PgConnection};

use super::*;
use crate::model::DateTimeOffset;
use UpsertOutcome::{Ignored, Replaced, Stored};

fn admin_url() -> String {
    std::env::var("CALLRECORDS_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn create() -> Self {
        let name = format!("callrecords_dev_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL is running");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        Self { name }
    }

    fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    async fn open(&self) -> PgStore {
        PgStore::open(&self.url()).await.expect("open")
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

fn ticks(text: &str) -> i64 {
    DateTimeOffset::parse(text).expect("test time").unix_ticks()
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// A record starting at `start`, whose document carries a number whose text must survive.
fn record(id: &str, version: i64, start: &str, sessions: &[&str], participants: &[&str]) -> PreparedRecord {
    let child = |id: &&str| (id.to_string(), format!(r#"{{"id":"{id}","of":"{version}"}}"#));
    PreparedRecord {
        id: id.to_owned(),
        version,
        start_ticks: ticks(start),
        end_ticks: ticks(start) + 600_000_000,
        document: format!(r#"{{"id":"{id}","version":{version},"startDateTime":"{start}","cost":0.00}}"#),
        organizer_at: 0,
        sessions: sessions.iter().map(child).collect(),
        participants: participants.iter().map(child).collect(),
    }
}

fn log_row(id: &str, start: &str) -> PreparedLogRow {
    PreparedLogRow {
        id: id.to_owned(),
        start_ticks: ticks(start),
        document: format!(r#"{{"id":"{id}","startDateTime":"{start}","charge":0.00}}"#),
    }
}

fn ids(records: &[StoredRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

async fn count(store: &PgStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&store.pool).await.expect(sql)
}

async fn partitions(store: &PgStore, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::text::regclass ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(&store.pool)
    .await
    .expect("partitions")
}

/// Every page of a selection, `limit` at a time, following the cursor.
async fn all_pages(store: &PgStore, selection: &RecordSelection, limit: u32) -> Vec<String> {
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
                    start_ticks: last.start_ticks,
                    id: last.id.clone(),
                })
            }
            _ => return seen,
        }
    }
}

#[tokio::test]
async fn upsert_stores_replaces_and_ignores_by_version() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();

    let outcomes = store
        .upsert_call_records(
            &t,
            &[
                record("a", 1, "2024-03-10T00:00:00Z", &["s1", "s2"], &["p1"]),
                record("b", 1, "2024-03-11T00:00:00Z", &["s1"], &[]),
                record("a", 1, "2024-03-10T00:00:00Z", &["s1", "s2"], &["p1"]),
                record("b", 2, "2024-03-11T00:00:00Z", &["s7", "s8"], &["p7"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [Stored, Stored, Ignored, Replaced]);
    let b = store.get_call_record(&t, "b", None).await.unwrap().unwrap();
    assert_eq!((b.n_sessions, b.n_participants), (2, 1));
    assert!(b.document.contains(r#""version":2"#));
    let b_sessions = store.list_sessions(&t, "b", None, 10).await.unwrap();
    assert_eq!(
        b_sessions.iter().map(|s| s.document.as_str()).collect::<Vec<_>>(),
        [r#"{"id":"s7","of":"2"}"#, r#"{"id":"s8","of":"2"}"#]
    );

    // Replays and lower versions change nothing.
    let replay = [
        record("a", 1, "2024-03-10T00:00:00Z", &[], &[]),
        record("b", 1, "2024-03-11T00:00:00Z", &[], &[]),
    ];
    assert_eq!(
        store.upsert_call_records(&t, &replay).await.unwrap(),
        [Ignored, Ignored]
    );
    assert_eq!(store.list_sessions(&t, "a", None, 10).await.unwrap().len(), 2);

    // A new version may start in another month: the old row and its children go.
    let moved = record("a", 3, "2024-05-02T08:00:00Z", &["s9"], &["p2", "p3"]);
    assert_eq!(
        store
            .upsert_call_records(&t, std::slice::from_ref(&moved))
            .await
            .unwrap(),
        [Replaced]
    );
    let a = store.get_call_record(&t, "a", None).await.unwrap().unwrap();
    assert_eq!(
        (a.start_ticks, a.document.as_str()),
        (moved.start_ticks, moved.document.as_str())
    );
    assert!(a.document.contains("0.00"), "number text kept: {}", a.document);
    assert_eq!(
        count(&store, "SELECT count(*) FROM call_record WHERE id = 'a'").await,
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM session_y2024m03 WHERE call_record_id = 'a'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM participant_y2024m03 WHERE call_record_id = 'a'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM session_y2024m05 WHERE call_record_id = 'a'"
        )
        .await,
        1
    );
    let participants = store.list_participants(&t, "a", None, 10).await.unwrap();
    assert_eq!(participants.iter().map(|p| p.ordinal).collect::<Vec<_>>(), [0, 1]);

    // Tenants never see each other's records, and the same id is new in another tenant.
    let other = TenantId("other".to_owned());
    assert!(store.get_call_record(&other, "a", None).await.unwrap().is_none());
    assert_eq!(
        store
            .upsert_call_records(&other, &[record("a", 1, "2024-03-10T00:00:00Z", &[], &[])])
            .await
            .unwrap(),
        [Stored]
    );
    assert_eq!(
        store.count_call_records(&t, &RecordSelection::default()).await.unwrap(),
        2
    );
    assert!(store.upsert_call_records(&t, &[]).await.unwrap().is_empty());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn list_and_count_follow_selection_order_and_cursor() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    // Inserted out of order; r2 and r3 start together, so their ids decide.
    let batch = [
        record("r5", 1, "2024-04-01T00:00:00Z", &[], &["alice", "bob", "carol"]),
        record("r3", 1, "2024-03-01T00:00:00Z", &["s"], &["bob"]),
        record("r1", 1, "2024-02-28T23:00:00Z", &[], &["alice"]),
        record("r4", 1, "2024-03-15T00:00:00Z", &[], &["bob", "alice"]),
        record("r2", 1, "2024-03-01T00:00:00Z", &[], &["alice", "bob"]),
    ];
    store.upsert_call_records(&t, &batch).await.unwrap();

    let everything = RecordSelection::default();
    let listed = store.list_call_records(&t, &everything, None, 10).await.unwrap();
    assert_eq!(ids(&listed), ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!((listed[2].n_sessions, listed[2].n_participants), (1, 1));
    assert_eq!(all_pages(&store, &everything, 2).await, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(store.count_call_records(&t, &everything).await.unwrap(), 5);

    let mut march = RecordSelection::default();
    march.start_at_or_after(ticks("2024-03-01T00:00:00Z"));
    march.start_before(ticks("2024-04-01T00:00:00Z"));
    assert_eq!(all_pages(&store, &march, 1).await, ["r2", "r3", "r4"]);
    assert_eq!(store.count_call_records(&t, &march).await.unwrap(), 3);

    let alice_and_bob = RecordSelection {
        participant_ids: vec!["alice".to_owned(), "bob".to_owned()],
        ..RecordSelection::default()
    };
    assert_eq!(all_pages(&store, &alice_and_bob, 1).await, ["r2", "r4", "r5"]);
    assert_eq!(store.count_call_records(&t, &alice_and_bob).await.unwrap(), 3);
    let alice_and_bob_in_march = RecordSelection {
        participant_ids: alice_and_bob.participant_ids.clone(),
        ..march.clone()
    };
    assert_eq!(all_pages(&store, &alice_and_bob_in_march, 10).await, ["r2", "r4"]);
    let nobody = RecordSelection {
        participant_ids: vec!["mallory".to_owned()],
        ..RecordSelection::default()
    };
    assert!(store.list_call_records(&t, &nobody, None, 10).await.unwrap().is_empty());

    let mut empty = march.clone();
    empty.start_before(ticks("2024-01-01T00:00:00Z"));
    assert!(empty.is_empty_range());
    assert!(store.list_call_records(&t, &empty, None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_call_records(&t, &empty).await.unwrap(), 0);

    let from_march = Some(ticks("2024-03-01T00:00:00Z"));
    assert!(store.get_call_record(&t, "r1", from_march).await.unwrap().is_none());
    assert_eq!(
        store.get_call_record(&t, "r2", from_march).await.unwrap().unwrap().id,
        "r2"
    );
    assert!(store
        .list_call_records(&TenantId("other".to_owned()), &everything, None, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sessions_and_participants_page_by_ordinal() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    let sessions = ["e", "d", "c", "b", "a"];
    store
        .upsert_call_records(
            &t,
            &[record("r", 1, "2024-03-01T00:00:00Z", &sessions, &["z", "y", "x"])],
        )
        .await
        .unwrap();

    let first = store.list_sessions(&t, "r", None, 2).await.unwrap();
    assert_eq!(first.iter().map(|s| s.ordinal).collect::<Vec<_>>(), [0, 1]);
    assert!(first[0].document.contains(r#""id":"e""#));
    let second = store.list_sessions(&t, "r", Some(1), 2).await.unwrap();
    assert_eq!(second.iter().map(|s| s.ordinal).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.list_sessions(&t, "r", Some(3), 2).await.unwrap().len(), 1);
    assert!(store.list_sessions(&t, "r", Some(4), 2).await.unwrap().is_empty());
    assert!(store.list_sessions(&t, "missing", None, 2).await.unwrap().is_empty());
    assert_eq!(store.get_session(&t, "r", "b").await.unwrap().unwrap().ordinal, 3);
    assert!(store.get_session(&t, "r", "zz").await.unwrap().is_none());

    let participants = store.list_participants(&t, "r", Some(0), 5).await.unwrap();
    assert_eq!(participants.iter().map(|p| p.ordinal).collect::<Vec<_>>(), [1, 2]);
    let x = store.get_participant(&t, "r", "x").await.unwrap().unwrap();
    assert_eq!((x.ordinal, x.document.as_str()), (2, r#"{"id":"x","of":"1"}"#));
    assert!(store
        .get_participant(&TenantId("other".to_owned()), "r", "x")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn log_rows_are_idempotent_by_id_and_page_by_time() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    let outcomes = store
        .upsert_log_rows(
            &t,
            LogKind::PstnCall,
            &[
                log_row("x1", "2024-03-01T00:00:00Z"),
                log_row("x3", "2024-03-02T00:00:00Z"),
                log_row("x1", "2024-03-01T00:00:00Z"),
                log_row("x2", "2024-03-02T00:00:00Z"),
                log_row("x0", "2024-02-29T23:59:59Z"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [Stored, Stored, Ignored, Stored, Stored]);
    // A replay is ignored by id even when its time differs (rows have no version).
    let replay = [log_row("x1", "2024-04-01T00:00:00Z")];
    assert_eq!(
        store.upsert_log_rows(&t, LogKind::PstnCall, &replay).await.unwrap(),
        [Ignored]
    );
    assert_eq!(
        store.upsert_log_rows(&t, LogKind::SmsLog, &replay).await.unwrap(),
        [Stored]
    );

    let query = |after: Option<(&str, &str)>, skip: u64, limit: u32| LogRowQuery {
        kind: LogKind::PstnCall,
        from_ticks: ticks("2024-02-01T00:00:00Z"),
        to_ticks: ticks("2024-03-02T00:00:00.0000001Z"),
        after: after.map(|(start, id)| RecordCursor {
            start_ticks: ticks(start),
            id: id.to_owned(),
        }),
        skip,
        limit,
    };
    let listed = |rows: Vec<StoredLogRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        listed(store.list_log_rows(&t, &query(None, 0, 10)).await.unwrap()),
        ["x0", "x1", "x2", "x3"]
    );
    let after_x2 = Some(("2024-03-02T00:00:00Z", "x2"));
    assert_eq!(
        listed(store.list_log_rows(&t, &query(after_x2, 0, 10)).await.unwrap()),
        ["x3"]
    );
    assert_eq!(
        listed(store.list_log_rows(&t, &query(None, 1, 2)).await.unwrap()),
        ["x1", "x2"]
    );
    let after_x0 = Some(("2024-02-29T23:59:59Z", "x0"));
    assert_eq!(
        listed(store.list_log_rows(&t, &query(after_x0, 2, 10)).await.unwrap()),
        ["x3"]
    );
    let narrow = LogRowQuery {
        to_ticks: ticks("2024-03-02T00:00:00Z"),
        ..query(None, 0, 10)
    };
    assert_eq!(listed(store.list_log_rows(&t, &narrow).await.unwrap()), ["x0", "x1"]);
    let sms = LogRowQuery {
        kind: LogKind::SmsLog,
        to_ticks: ticks("2024-05-01T00:00:00Z"),
        ..query(None, 0, 10)
    };
    assert_eq!(listed(store.list_log_rows(&t, &sms).await.unwrap()), ["x1"]);
    let stored = store.list_log_rows(&t, &query(None, 0, 1)).await.unwrap();
    assert_eq!(
        stored[0].document,
        r#"{"id":"x0","startDateTime":"2024-02-29T23:59:59Z","charge":0.00}"#
    );
}

#[tokio::test]
async fn purge_drops_expired_months_then_deletes_the_boundary_in_batches() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
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
    store.upsert_call_records(&t, &batch).await.unwrap();
    store
        .upsert_call_records(
            &TenantId("other".to_owned()),
            &[record("feb-x", 1, "2024-02-11T00:00:00Z", &[], &[])],
        )
        .await
        .unwrap();
    let cutoff = ticks("2024-03-10T00:00:00Z");

    // The first call drops January and February whole (4 records) and deletes 2 March ones.
    assert_eq!(store.purge_call_records_before(cutoff, 2).await.unwrap(), 6);
    for parent in ["call_record", "session", "participant"] {
        let names = partitions(&store, parent).await;
        assert!(
            !names.iter().any(|n| n.ends_with("y2024m01") || n.ends_with("y2024m02")),
            "{names:?}"
        );
        assert!(names.contains(&format!("{parent}_y2024m03")), "{names:?}");
    }
    assert_eq!(store.purge_call_records_before(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_call_records_before(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_call_records_before(cutoff, 2).await.unwrap(), 0);
    let left = store
        .list_call_records(&t, &RecordSelection::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&left), ["mar-late", "apr"]);
    assert_eq!(count(&store, "SELECT count(*) FROM session").await, 2);
    assert_eq!(count(&store, "SELECT count(*) FROM participant").await, 2);
    assert_eq!(store.list_sessions(&t, "mar-late", None, 10).await.unwrap().len(), 1);

    // A month dropped by the purge is created again for a late arrival.
    assert_eq!(
        store
            .upsert_call_records(&t, &[record("jan-1", 2, "2024-01-05T00:00:00Z", &[], &[])])
            .await
            .unwrap(),
        [Stored]
    );

    let rows = [
        log_row("dec-1", "2023-12-01T00:00:00Z"),
        log_row("dec-2", "2023-12-31T00:00:00Z"),
        log_row("jan", "2024-01-15T00:00:00Z"),
        log_row("feb-20", "2024-02-20T00:00:00Z"),
        log_row("feb-21", "2024-02-21T00:00:00Z"),
        log_row("feb-26", "2024-02-26T00:00:00Z"),
    ];
    store
        .upsert_log_rows(&t, LogKind::DirectRoutingCall, &rows)
        .await
        .unwrap();
    let log_cutoff = ticks("2024-02-25T00:00:00Z");
    assert_eq!(store.purge_log_rows_before(log_cutoff, 1).await.unwrap(), 4);
    assert_eq!(store.purge_log_rows_before(log_cutoff, 1).await.unwrap(), 1);
    assert_eq!(store.purge_log_rows_before(log_cutoff, 1).await.unwrap(), 0);
    let names = partitions(&store, "log_row").await;
    assert!(
        !names.iter().any(|n| n.ends_with("y2023m12") || n.ends_with("y2024m01")),
        "{names:?}"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM log_row").await, 1);
}

#[tokio::test]
async fn nodes_open_one_fresh_database_together_and_survive_each_others_drops() {
    let db = TestDb::create().await;
    let url = db.url();

    let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
    let (node_a, node_b) = (a.expect("first node opens"), b.expect("second node opens"));
    node_a.ping().await.unwrap();
    node_b.ping().await.unwrap();
    let t = tenant();

    // Node A knows January; node B drops it; A's next January write must still land.
    node_a
        .upsert_call_records(&t, &[record("old", 1, "2024-01-05T00:00:00Z", &["s"], &[])])
        .await
        .unwrap();
    node_a
        .upsert_log_rows(&t, LogKind::PstnCall, &[log_row("old", "2024-01-05T00:00:00Z")])
        .await
        .unwrap();
    assert_eq!(
        node_b
            .purge_call_records_before(ticks("2024-02-01T00:00:00Z"), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        node_b
            .purge_log_rows_before(ticks("2024-02-01T00:00:00Z"), 10)
            .await
            .unwrap(),
        1
    );
    let again = [record("older", 1, "2024-01-06T00:00:00Z", &["s"], &["p"])];
    assert_eq!(node_a.upsert_call_records(&t, &again).await.unwrap(), [Stored]);
    let row_again = [log_row("old", "2024-01-05T00:00:00Z")];
    assert_eq!(
        node_a.upsert_log_rows(&t, LogKind::PstnCall, &row_again).await.unwrap(),
        [Stored]
    );
    assert_eq!(
        node_b
            .count_call_records(&t, &RecordSelection::default())
            .await
            .unwrap(),
        1
    );

    // The same batch through both nodes at once is stored once.
    let batch: Vec<PreparedRecord> = (0..50)
        .map(|i| record(&format!("race-{i:02}"), 1, "2024-03-01T00:00:00Z", &["s"], &["p"]))
        .collect();
    let (from_a, from_b) = tokio::join!(
        node_a.upsert_call_records(&t, &batch),
        node_b.upsert_call_records(&t, &batch)
    );
    let outcomes: Vec<UpsertOutcome> = from_a.unwrap().into_iter().chain(from_b.unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Stored).count(), 50);
    assert_eq!(outcomes.iter().filter(|o| **o == Ignored).count(), 50);
    assert_eq!(
        node_a
            .count_call_records(&t, &RecordSelection::default())
            .await
            .unwrap(),
        51
    );
}

// Change notifications: subscriptions and the outbox.

const SECOND: i64 = 10_000_000;
const MINUTE: i64 = 60 * SECOND;

fn now() -> i64 {
    DateTimeOffset::now().unix_ticks()
}

/// A subscription expiring at `expiration_ticks`, delivering to a URL and clientState named after it.
fn subscription(id: &str, expiration_ticks: i64, scope: SubscriptionScope) -> StoredSubscription {
    let expiration = DateTimeOffset::from_unix_ticks(expiration_ticks).expect("expiration");
    let document = crate::model::Subscription {
        id: id.to_owned(),
        resource: "/communications/callRecords".to_owned(),
        change_type: "created,updated".to_owned(),
        client_state: Some(format!("state-{id}")),
        notification_url: format!("https://receiver.example/{id}"),
        notification_query_options: None,
        lifecycle_notification_url: None,
        expiration_date_time: expiration,
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
        expiration_ticks,
        scope,
        document: crate::model::to_json(&document),
    }
}

fn scope(created: bool, updated: bool, participants: Option<&[&str]>) -> SubscriptionScope {
    SubscriptionScope {
        created,
        updated,
        participant_ids: participants.map(|ids| ids.iter().map(|id| (*id).to_owned()).collect()),
    }
}

/// The outbox as (subscription, event, call record), in id order.
async fn outbox(store: &PgStore) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("SELECT subscription_id, event, call_record_id FROM outbox ORDER BY id")
        .fetch_all(&store.pool)
        .await
        .expect("outbox")
}

fn planned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, Option<String>)> {
    rows.iter()
        .map(|(s, e, r)| (s.to_string(), e.to_string(), Some(r.to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_quota_holds_across_nodes() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let later = now() + 60 * MINUTE;

    // An expired subscription does not count against the quota.
    let expired = subscription("expired", now() - MINUTE, scope(true, true, None));
    assert!(node_a.create_subscription(&t, &expired, 3).await.unwrap());

    let tenant_ref = &t;
    let attempts = (0..10).map(|i| {
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        let sub = subscription(&format!("s{i}"), later, scope(true, true, None));
        async move { node.create_subscription(tenant_ref, &sub, 3).await.unwrap() }
    });
    let created = futures::future::join_all(attempts).await;
    assert_eq!(created.iter().filter(|stored| **stored).count(), 3, "{created:?}");
    assert_eq!(node_b.list_subscriptions(&t, now()).await.unwrap().len(), 3);

    // Another tenant has a quota of its own.
    let other = TenantId("other".to_owned());
    let sub = subscription("s0", later, scope(true, false, Some(&["p1"])));
    assert!(node_b.create_subscription(&other, &sub, 3).await.unwrap());
    assert_eq!(
        node_a.get_subscription(&other, "s0", now()).await.unwrap(),
        Some(sub.clone())
    );
    assert!(node_a.get_subscription(&t, "expired", now()).await.unwrap().is_none());

    // Replace, delete, and expiry sweeps.
    let mut replaced = sub.clone();
    replaced.scope = scope(false, true, None);
    assert!(node_a.replace_subscription(&other, &replaced).await.unwrap());
    assert_eq!(
        node_a.get_subscription(&other, "s0", now()).await.unwrap(),
        Some(replaced)
    );
    assert!(!node_a
        .replace_subscription(&other, &subscription("nope", later, scope(true, true, None)))
        .await
        .unwrap());
    assert!(node_a.delete_subscription(&other, "s0").await.unwrap());
    assert!(!node_a.delete_subscription(&other, "s0").await.unwrap());
    assert_eq!(node_a.remove_expired_subscriptions(now()).await.unwrap(), 1);
    assert_eq!(count(&node_a, "SELECT count(*) FROM subscription").await, 3);
}

#[tokio::test]
async fn ingest_plans_notifications_in_the_records_transaction() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    let later = now() + 60 * MINUTE;
    for sub in [
        subscription("all", later, scope(true, true, None)),
        subscription("created-only", later, scope(true, false, None)),
        subscription("updated-only", later, scope(false, true, None)),
        subscription("p9", later, scope(true, true, Some(&["p9", "p8"]))),
        subscription("expired", now() - MINUTE, scope(true, true, None)),
    ] {
        assert!(store.create_subscription(&t, &sub, 10).await.unwrap());
    }
    // Another tenant's subscription never hears of this tenant's records.
    let other = TenantId("other".to_owned());
    store
        .create_subscription(&other, &subscription("theirs", later, scope(true, true, None)), 10)
        .await
        .unwrap();

    let outcomes = store
        .upsert_call_records(
            &t,
            &[
                record("a", 1, "2024-03-10T00:00:00Z", &[], &["p1"]),
                record("a", 1, "2024-03-10T00:00:00Z", &[], &["p1"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [Stored, Ignored]);
    let expected_a1 = [
        ("all", "created", "a"),
        ("created-only", "created", "a"),
        ("updated-only", "updated", "a"),
    ];
    assert_eq!(outbox(&store).await, planned(&expected_a1));

    // A replacement is `updated`, for subscriptions that want updates; the filtered one hears
    // only of records with one of its participants.
    let outcomes = store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &["p8"])])
        .await
        .unwrap();
    assert_eq!(outcomes, [Replaced]);
    let mut expected = expected_a1.to_vec();
    expected.extend([
        ("all", "updated", "a"),
        ("p9", "updated", "a"),
        ("updated-only", "updated", "a"),
    ]);
    assert_eq!(outbox(&store).await, planned(&expected));

    // Ignored versions plan nothing; a batch that fails leaves no records and no rows.
    store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &["p8"])])
        .await
        .unwrap();
    let mut broken = record("b", 1, "2024-03-10T00:00:00Z", &[], &["p9"]);
    broken.document = "\u{0}".to_owned();
    assert!(store
        .upsert_call_records(&t, &[record("c", 1, "2024-03-10T00:00:00Z", &[], &[]), broken])
        .await
        .is_err());
    assert_eq!(outbox(&store).await, planned(&expected));
    assert_eq!(
        store.count_call_records(&t, &RecordSelection::default()).await.unwrap(),
        1
    );
    assert_eq!(store.outbox_depth().await.unwrap(), 6);

    // Claimed change rows carry the subscription's URL, clientState and expiration.
    let claimed = store.claim_notifications("w", now(), MINUTE, 100).await.unwrap();
    assert_eq!(claimed.len(), 6);
    assert!(claimed.windows(2).all(|pair| pair[0].id < pair[1].id));
    let first = &claimed[0];
    assert_eq!(
        (
            first.subscription_id.as_str(),
            first.event.as_str(),
            first.call_record_id.as_deref()
        ),
        ("all", "created", Some("a"))
    );
    assert_eq!(first.url, "https://receiver.example/all");
    assert_eq!(first.client_state.as_deref(), Some("state-all"));
    assert_eq!(first.subscription_expiration_ticks, later);
    assert_eq!((first.attempts, first.first_attempt_ticks), (0, None));

    // Deleting a subscription drops its pending change rows.
    assert!(store.delete_subscription(&t, "all").await.unwrap());
    assert_eq!(store.outbox_depth().await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_take_disjoint_rows() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    node_a
        .create_subscription(
            &t,
            &subscription("all", now() + 60 * MINUTE, scope(true, true, None)),
            10,
        )
        .await
        .unwrap();
    let batch: Vec<PreparedRecord> = (0..300)
        .map(|i| record(&format!("r{i:03}"), 1, "2024-03-01T00:00:00Z", &[], &[]))
        .collect();
    node_a.upsert_call_records(&t, &batch).await.unwrap();
    assert_eq!(node_b.outbox_depth().await.unwrap(), 300);

    let at = now();
    async fn drain(node: &PgStore, worker: &str, at: i64) -> Vec<i64> {
        let mut ids = Vec::new();
        loop {
            let claimed = node.claim_notifications(worker, at, MINUTE, 7).await.unwrap();
            if claimed.is_empty() {
                return ids;
            }
            assert!(claimed.iter().all(|n| n.url == "https://receiver.example/all"));
            ids.extend(claimed.iter().map(|n| n.id));
        }
    }
    let (from_a, from_b) = tokio::join!(drain(&node_a, "a", at), drain(&node_b, "b", at));
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "both claimed: {} {}",
        from_a.len(),
        from_b.len()
    );
    let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (300, 300),
        "no row handed out twice, none left behind"
    );
    let owners: Vec<(String, i64)> = sqlx::query_as("SELECT lease_owner, count(*) FROM outbox GROUP BY 1 ORDER BY 1")
        .fetch_all(&node_a.pool)
        .await
        .unwrap();
    assert_eq!(
        owners,
        [
            ("a".to_owned(), from_a.len() as i64),
            ("b".to_owned(), from_b.len() as i64)
        ]
    );
}

#[tokio::test]
async fn leases_expire_and_retries_keep_the_first_attempt() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    let later = now() + 60 * MINUTE;
    store
        .create_subscription(&t, &subscription("all", later, scope(true, true, None)), 10)
        .await
        .unwrap();
    store
        .upsert_call_records(&t, &[record("a", 1, "2024-03-10T00:00:00Z", &[], &[])])
        .await
        .unwrap();
    let lifecycle = LifecycleEvent {
        subscription_id: "gone".to_owned(),
        event: "subscriptionRemoved".to_owned(),
        target_url: "https://receiver.example/lifecycle".to_owned(),
        client_state: None,
        expiration_ticks: 42,
    };
    let t0 = now();
    store.enqueue_lifecycle_events(&t, &[lifecycle], t0).await.unwrap();

    let claimed = store.claim_notifications("w1", t0, 10 * SECOND, 10).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), 2);
    // A lifecycle row carries its own target, even with no subscription behind it.
    let removed = &claimed[1];
    assert_eq!(
        (
            removed.event.as_str(),
            removed.url.as_str(),
            removed.subscription_expiration_ticks,
            removed.call_record_id.as_deref()
        ),
        ("subscriptionRemoved", "https://receiver.example/lifecycle", 42, None)
    );

    // Leased rows stay with their worker until the lease lapses, then anyone may take them.
    assert!(store
        .claim_notifications("w2", t0 + 5 * SECOND, MINUTE, 10)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim_notifications("w2", t0 + 10 * SECOND, MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(again.iter().map(|n| n.id).collect::<Vec<_>>(), ids);

    // A retry counts the attempt, releases the lease and is due at the given time.
    let t1 = t0 + 20 * SECOND;
    store.retry_notifications(&[(ids[0], t1 + MINUTE)], t1).await.unwrap();
    assert!(store
        .claim_notifications("w3", t1 + SECOND, MINUTE, 10)
        .await
        .unwrap()
        .is_empty());
    let retried = store.claim_notifications("w3", t1 + MINUTE, MINUTE, 10).await.unwrap();
    assert_eq!(retried.len(), 2, "the other row's lease lapsed too");
    assert_eq!(
        (retried[0].id, retried[0].attempts, retried[0].first_attempt_ticks),
        (ids[0], 1, Some(t1))
    );
    let t2 = t1 + 2 * MINUTE;
    store.retry_notifications(&[(ids[0], t2)], t2).await.unwrap();
    let retried = store.claim_notifications("w4", t2, MINUTE, 1).await.unwrap();
    assert_eq!(
        (retried[0].id, retried[0].attempts, retried[0].first_attempt_ticks),
        (ids[0], 2, Some(t1))
    );

    store.complete_notifications(&ids).await.unwrap();
    store.complete_notifications(&[]).await.unwrap();
    store.retry_notifications(&[], t2).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 0);

    // Change rows of an expired subscription are dropped, never claimed; lifecycle rows stay.
    store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &[])])
        .await
        .unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
    assert!(store
        .claim_notifications("w5", later, MINUTE, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorization_is_due_once_per_interval_across_nodes() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let t0 = now();
    let soon = subscription("soon", t0 + 30 * MINUTE, scope(true, true, None));
    let far = subscription("far", t0 + 3 * 24 * 60 * MINUTE, scope(true, true, None));
    for sub in [&soon, &far] {
        assert!(node_a.create_subscription(&t, sub, 10).await.unwrap());
    }
    let (within, every) = (60 * MINUTE, 10 * MINUTE);

    let (a, b) = tokio::join!(
        node_a.take_reauthorization_due(t0, within, every),
        node_b.take_reauthorization_due(t0, within, every)
    );
    let taken: Vec<(TenantId, StoredSubscription)> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(taken, [(t.clone(), soon.clone())], "reminded once, by one node");
    assert!(node_b
        .take_reauthorization_due(t0 + 5 * MINUTE, within, every)
        .await
        .unwrap()
        .is_empty());
    let again = node_b
        .take_reauthorization_due(t0 + 10 * MINUTE, within, every)
        .await
        .unwrap();
    assert_eq!(again, [(t.clone(), soon.clone())]);

    // Renewing resets the reminder; an expired subscription is never due.
    assert!(node_a.replace_subscription(&t, &soon).await.unwrap());
    assert_eq!(
        node_a
            .take_reauthorization_due(t0 + 11 * MINUTE, within, every)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(node_a
        .take_reauthorization_due(t0 + 31 * MINUTE, within, 0)
        .await
        .unwrap()
        .is_empty());
}
