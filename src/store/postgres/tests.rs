//! What only the PostgreSQL store has, against a real server: month partitions, advisory locks
//! and several nodes over one database. What every backend must do is `store::contract`.

use super::*;
use crate::store::test_support::*;
use UpsertOutcome::{Ignored, Stored};

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

#[tokio::test]
async fn a_version_in_another_month_leaves_nothing_in_the_old_months_partitions() {
    let db = TestDb::create().await;
    let store = db.open().await;
    let t = tenant();
    store
        .upsert_call_records(
            &t,
            &[record("a", 1, "2024-03-10T00:00:00Z", &["s1", "s2"], &["p1"])],
            now(),
        )
        .await
        .unwrap();
    let moved = record("a", 3, "2024-05-02T08:00:00Z", &["s9"], &["p2", "p3"]);
    store.upsert_call_records(&t, &[moved], now()).await.unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM call_record WHERE id = 'a'").await,
        1
    );
    for (sql, expected) in [
        ("SELECT count(*) FROM call_record_y2024m03 WHERE id = 'a'", 0),
        ("SELECT count(*) FROM session_y2024m03 WHERE call_record_id = 'a'", 0),
        (
            "SELECT count(*) FROM participant_y2024m03 WHERE call_record_id = 'a'",
            0,
        ),
        ("SELECT count(*) FROM session_y2024m05 WHERE call_record_id = 'a'", 1),
        (
            "SELECT count(*) FROM participant_y2024m05 WHERE call_record_id = 'a'",
            2,
        ),
    ] {
        assert_eq!(count(&store, sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn purge_drops_expired_months_then_deletes_the_boundary_in_batches() {
    let db = TestDb::create().await;
    let store = db.open().await;
    store_purge_fixture(&store).await;
    let t = tenant();
    let cutoff = at("2024-03-10T00:00:00Z");

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
            .upsert_call_records(&t, &[record("jan-1", 2, "2024-01-05T00:00:00Z", &[], &[])], now())
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
    let log_cutoff = at("2024-02-25T00:00:00Z");
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
        .upsert_call_records(&t, &[record("old", 1, "2024-01-05T00:00:00Z", &["s"], &[])], now())
        .await
        .unwrap();
    node_a
        .upsert_log_rows(&t, LogKind::PstnCall, &[log_row("old", "2024-01-05T00:00:00Z")])
        .await
        .unwrap();
    assert_eq!(
        node_b
            .purge_call_records_before(at("2024-02-01T00:00:00Z"), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        node_b
            .purge_log_rows_before(at("2024-02-01T00:00:00Z"), 10)
            .await
            .unwrap(),
        1
    );
    let again = [record("older", 1, "2024-01-06T00:00:00Z", &["s"], &["p"])];
    assert_eq!(node_a.upsert_call_records(&t, &again, now()).await.unwrap(), [Stored]);
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
        node_a.upsert_call_records(&t, &batch, now()),
        node_b.upsert_call_records(&t, &batch, now())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_quota_holds_across_nodes() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let later = now() + 60 * MINUTE;

    // An expired subscription does not count against the quota.
    let expired = subscription("expired", now() - MINUTE, scope(true, true, None));
    assert!(node_a.create_subscription(&t, &expired, 3, now()).await.unwrap());

    let tenant_ref = &t;
    let attempts = (0..10).map(|i| {
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        let sub = subscription(&format!("s{i}"), later, scope(true, true, None));
        async move { node.create_subscription(tenant_ref, &sub, 3, now()).await.unwrap() }
    });
    let created = futures::future::join_all(attempts).await;
    assert_eq!(created.iter().filter(|stored| **stored).count(), 3, "{created:?}");
    assert_eq!(node_b.list_subscriptions(&t, now()).await.unwrap().len(), 3);

    // Another tenant has a quota of its own.
    let other = other_tenant();
    let sub = subscription("s0", later, scope(true, false, Some(&["p1"])));
    assert!(node_b.create_subscription(&other, &sub, 3, now()).await.unwrap());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_take_disjoint_rows() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    subscribe_to_every_change(&node_a).await;
    let batch: Vec<PreparedRecord> = (0..300)
        .map(|i| record(&format!("r{i:03}"), 1, "2024-03-01T00:00:00Z", &[], &[]))
        .collect();
    node_a.upsert_call_records(&t, &batch, now()).await.unwrap();
    assert_eq!(node_b.outbox_depth().await.unwrap(), 300);

    let at = now();
    async fn drain(node: &PgStore, worker: &str, at: Timestamp) -> Vec<i64> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorization_is_due_once_per_interval_across_nodes() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let t0 = now();
    let soon = subscription("soon", t0 + 30 * MINUTE, scope(true, true, None));
    let far = subscription("far", t0 + 3 * 24 * 60 * MINUTE, scope(true, true, None));
    for sub in [&soon, &far] {
        assert!(node_a.create_subscription(&t, sub, 10, now()).await.unwrap());
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
        .take_reauthorization_due(t0 + 31 * MINUTE, within, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
}
