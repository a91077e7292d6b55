//! What only the PostgreSQL store has, against a real server: month partitions, advisory locks
//! and several nodes over one database. What every backend must do is `store::contract`.

use super::*;
use crate::store::test_support::*;
use conversion::Conversion;
use UpsertOutcome::{Ignored, Replaced, Stored};

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
    assert_eq!(count(&store, "SELECT count(*) FROM record WHERE id = 'a'").await, 1);
    for (sql, expected) in [
        ("SELECT count(*) FROM record_y2024m03 WHERE id = 'a'", 0),
        ("SELECT count(*) FROM record_part_y2024m03 WHERE record_id = 'a'", 0),
        ("SELECT count(*) FROM participant_ref_y2024m03 WHERE record_id = 'a'", 0),
        (
            "SELECT count(*) FROM record_part_y2024m05 WHERE record_id = 'a' AND kind = 0",
            1,
        ),
        (
            "SELECT count(*) FROM record_part_y2024m05 WHERE record_id = 'a' AND kind = 1",
            1,
        ),
        ("SELECT count(*) FROM participant_ref_y2024m05 WHERE record_id = 'a'", 2),
    ] {
        assert_eq!(count(&store, sql).await, expected, "{sql}");
    }
    let filtered = RecordSelection {
        participant_ids: vec!["p1".to_owned()],
        ..RecordSelection::default()
    };
    assert_eq!(store.count_call_records(&t, &filtered).await.unwrap(), 0);
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
    for parent in ["record", "record_part", "participant_ref"] {
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
    assert_eq!(
        count(&store, "SELECT count(*) FROM record_part WHERE kind = 0").await,
        2
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM record_part WHERE kind = 1").await,
        2
    );
    assert_eq!(count(&store, "SELECT count(*) FROM participant_ref").await, 2);
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

/// A database as the previous release left it: its migrations only, and partitions of the
/// previous layout's tables for March and April 2024.
async fn previous_release_database(db: &TestDb) -> PgPool {
    let pool = PgPool::connect(&db.url()).await.expect("connect");
    let migrator = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .migrations
            .iter()
            .filter(|migration| migration.version <= 5)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    migrator.run(&pool).await.expect("previous migrations");
    let months = [
        ("y2024m03", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"),
        ("y2024m04", "2024-04-01T00:00:00Z", "2024-05-01T00:00:00Z"),
    ];
    for table in ["call_record", "session", "participant"] {
        for (suffix, from, to) in months {
            let ddl = format!(
                "CREATE TABLE {table}_{suffix} PARTITION OF {table} FOR VALUES FROM ({}) TO ({})",
                at(from).ticks(),
                at(to).ticks()
            );
            sqlx::query(&ddl).execute(&pool).await.expect("partition");
        }
    }
    pool
}

/// A record as the previous release stored it: a row for it and one per session and
/// participant, documents as text.
async fn store_previously(
    pool: &PgPool,
    tenant: &TenantId,
    record: &PreparedRecord,
    stored_at: Timestamp,
    organizer_at: Option<i64>,
) {
    sqlx::query(
        "INSERT INTO call_record (tenant_id, id, start_ticks, version, end_ticks, n_sessions, n_participants,
                                  stored_at_ticks, document, organizer_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant.as_str())
    .bind(&record.id)
    .bind(record.start)
    .bind(record.version)
    .bind(record.end)
    .bind(record.sessions.len() as i64)
    .bind(record.participants.len() as i64)
    .bind(stored_at)
    .bind(&record.document)
    .bind(organizer_at)
    .execute(pool)
    .await
    .expect("previous record");
    for (table, children) in [("session", &record.sessions), ("participant", &record.participants)] {
        sqlx::query(&format!(
            "INSERT INTO {table} (tenant_id, call_record_id, start_ticks, ordinal, id, document)
             SELECT $1, $2, $3, u.n - 1, u.id, u.document FROM UNNEST($4::text[], $5::text[]) WITH ORDINALITY AS u (id, document, n)"
        ))
        .bind(tenant.as_str())
        .bind(&record.id)
        .bind(record.start)
        .bind(children.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(children.iter().map(|(_, document)| document.as_str()).collect::<Vec<_>>())
        .execute(pool)
        .await
        .expect("previous children");
    }
}

/// Every child of a record, read page by page.
async fn every_child(store: &PgStore, tenant: &TenantId, id: &str, sessions: bool, page: u32) -> Vec<(i64, String)> {
    let mut children = Vec::new();
    let mut after = None;
    loop {
        let found = if sessions {
            store.list_sessions(tenant, id, after, page).await.unwrap()
        } else {
            store.list_participants(tenant, id, after, page).await.unwrap()
        };
        assert!(found.len() <= page as usize);
        children.extend(found.iter().map(|child| (child.ordinal, child.document.clone())));
        match found.last() {
            Some(last) if found.len() == page as usize => after = Some(last.ordinal),
            _ => return children,
        }
    }
}

fn numbered(children: &[(String, String)]) -> Vec<(i64, String)> {
    (0..)
        .zip(children.iter().map(|(_, document)| document.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_the_previous_layout_are_moved_once_and_read_back_the_same() {
    let db = TestDb::create().await;
    let pool = previous_release_database(&db).await;
    let (t, other) = (tenant(), other_tenant());
    let session_ids: Vec<String> = (0..125).map(|i| format!("s{i:03}")).collect();
    let participant_ids: Vec<String> = (0..270).map(|i| format!("p{i:03}")).collect();
    let session_ids: Vec<&str> = session_ids.iter().map(String::as_str).collect();
    let participant_ids: Vec<&str> = participant_ids.iter().map(String::as_str).collect();
    // (tenant, record, stored at, organizer offset)
    let mut previous = vec![(
        t.clone(),
        record("big", 4, "2024-03-15T10:00:00Z", &session_ids, &participant_ids),
        at("2024-03-15T11:00:00Z"),
        None,
    )];
    for i in 0..5 {
        previous.push((
            t.clone(),
            record(
                &format!("r{i}"),
                i + 1,
                &format!("2024-04-0{}T00:00:00Z", i + 1),
                &["a", "b"],
                &["shared", "p001"],
            ),
            at("2024-04-10T00:00:00Z"),
            Some(i * 7),
        ));
    }
    previous.push((
        other.clone(),
        record("r0", 9, "2024-03-02T00:00:00Z", &[], &["shared"]),
        at("2024-03-03T00:00:00Z"),
        Some(0),
    ));
    for (tenant, record, stored_at, organizer_at) in &previous {
        store_previously(&pool, tenant, record, *stored_at, *organizer_at).await;
    }

    // A start that stops after one batch, as a node killed between batches would.
    let interrupted = PgStore::open_converting(
        &db.url(),
        Conversion {
            batch: 3,
            max_batches: Some(1),
        },
    )
    .await
    .expect("open");
    assert_eq!(count(&interrupted, "SELECT count(*) FROM record").await, 3);
    assert_eq!(count(&interrupted, "SELECT count(*) FROM call_record").await, 4);
    drop(interrupted);

    let store = db.open().await;
    let legacy: Option<String> = sqlx::query_scalar("SELECT to_regclass('call_record')::text")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(legacy, None, "the previous tables are dropped once empty");
    assert_eq!(count(&store, "SELECT count(*) FROM record").await, 7);
    assert_eq!(store.convert_previous_layout().await.unwrap(), 0);

    for (tenant, record, stored_at, organizer_at) in &previous {
        let stored = store
            .get_call_record(tenant, &record.id, None)
            .await
            .unwrap()
            .expect("converted");
        assert_eq!(stored.document, record.document);
        assert_eq!(stored.start, record.start);
        assert_eq!(stored.organizer_at, *organizer_at);
        assert_eq!(stored.n_sessions, record.sessions.len() as i64);
        assert_eq!(stored.n_participants, record.participants.len() as i64);
        let columns: (i64, i64, i64) = sqlx::query_as(
            "SELECT r.version, r.end_ticks, r.stored_at_ticks FROM record r JOIN tenant t ON t.key = r.tenant_key
             WHERE t.id = $1 AND r.id = $2",
        )
        .bind(tenant.as_str())
        .bind(&record.id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(columns, (record.version, record.end.ticks(), stored_at.ticks()));
        assert_eq!(
            every_child(&store, tenant, &record.id, true, 50).await,
            numbered(&record.sessions)
        );
        assert_eq!(
            every_child(&store, tenant, &record.id, false, 100).await,
            numbered(&record.participants)
        );
        for (ordinal, (id, document)) in (0..).zip(&record.sessions) {
            if ordinal % 40 == 1 {
                let found = store.get_session(tenant, &record.id, id).await.unwrap().unwrap();
                assert_eq!((found.ordinal, &found.document), (ordinal, document));
            }
        }
        for (ordinal, (id, document)) in (0..).zip(&record.participants) {
            if ordinal % 90 == 1 || ordinal == 269 {
                let found = store.get_participant(tenant, &record.id, id).await.unwrap().unwrap();
                assert_eq!((found.ordinal, &found.document), (ordinal, document));
            }
        }
        // Versions are kept: a replay is ignored, the next version replaces.
        let replay = [record.clone()];
        assert_eq!(
            store.upsert_call_records(tenant, &replay, now()).await.unwrap(),
            [Ignored]
        );
    }

    let (_, big, _, _) = &previous[0];
    let (_, first) = store
        .get_call_record_with_sessions(&t, "big", None, 70)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|s| (s.ordinal, s.document.clone()))
            .collect::<Vec<_>>(),
        numbered(&big.sessions)[..70]
    );
    let with = |ids: &[&str]| RecordSelection {
        participant_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        ..RecordSelection::default()
    };
    assert_eq!(store.count_call_records(&t, &with(&["shared"])).await.unwrap(), 5);
    assert_eq!(store.count_call_records(&t, &with(&["p001"])).await.unwrap(), 6);
    assert_eq!(store.count_call_records(&t, &with(&["p269", "p001"])).await.unwrap(), 1);
    assert_eq!(store.count_call_records(&other, &with(&["shared"])).await.unwrap(), 1);
    assert_eq!(
        all_pages(&store, &RecordSelection::default(), 2).await,
        ["big", "r0", "r1", "r2", "r3", "r4"]
    );
    let mut next = previous[0].1.clone();
    next.version = 5;
    next.participants.truncate(3);
    assert_eq!(store.upsert_call_records(&t, &[next], now()).await.unwrap(), [Replaced]);
    assert_eq!(store.count_call_records(&t, &with(&["p269"])).await.unwrap(), 0);
    assert_eq!(
        count(&store, "SELECT count(*) FROM participant_ref WHERE record_id = 'big'").await,
        3
    );
}

#[tokio::test]
async fn a_fresh_database_has_nothing_to_convert() {
    let db = TestDb::create().await;
    let store = db.open().await;
    assert_eq!(store.convert_previous_layout().await.unwrap(), 0);
    for table in ["call_record", "session", "participant"] {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(found, None, "{table}");
    }
}

#[tokio::test]
async fn a_damaged_dictionary_stops_the_store_from_opening() {
    let db = TestDb::create().await;
    let store = db.open().await;
    sqlx::query(
        "INSERT INTO dictionary (id, kind, created_ticks, sha256, body) VALUES (1, 'record', 0, '00', '\\x00')",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    let error = PgStore::open(&db.url()).await.err().expect("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("compression dictionaries") && message.contains("dictionary 1 of the store is corrupt"),
        "{message}"
    );
}

fn training_samples() -> codec::Sample {
    (0..2000)
        .map(|i| {
            format!(
                r#"{{"id":"{i:08x}-0000-4000-8000-{:012x}","version":1,"startDateTime":"2024-03-01T00:00:00Z","cost":0.00,"modalities":["audio","video"],"media":[{{"label":"main-audio","jitter":"PT0.{:03}S"}}]}}"#,
                i * 7919,
                i % 1000
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_what_another_wrote_with_a_dictionary_it_trained_since() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let trained = codec::train(&training_samples()).unwrap();

    // Nodes training at once take ids one after the other.
    let (first, second) = tokio::join!(
        node_a.add_dictionary(DocumentKind::Record, trained.clone(), now()),
        node_b.add_dictionary(DocumentKind::Record, trained.clone(), now())
    );
    let mut ids = vec![first.unwrap().id, second.unwrap().id];
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    for kind in [DocumentKind::Session, DocumentKind::Participant] {
        let dictionary = node_a.add_dictionary(kind, trained.clone(), now()).await.unwrap();
        node_a.codec.install(&dictionary);
    }
    node_a.load_new_dictionaries().await.unwrap();

    let written = record("d", 1, "2024-03-01T00:00:00Z", &["s1", "s2"], &["p1"]);
    node_a
        .upsert_call_records(&t, std::slice::from_ref(&written), now())
        .await
        .unwrap();
    let frame: Vec<u8> = sqlx::query_scalar("SELECT document FROM record WHERE id = 'd'")
        .fetch_one(&node_a.pool)
        .await
        .unwrap();
    assert_eq!(
        zstd::zstd_safe::get_dict_id_from_frame(&frame).map(|id| id.get()),
        Some(2),
        "the newest record dictionary"
    );

    let read = node_b.get_call_record(&t, "d", None).await.unwrap().unwrap();
    assert_eq!(read.document, written.document);
    let sessions = node_b.list_sessions(&t, "d", None, 10).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let third = db.open().await;
    let participant = third.get_participant(&t, "d", "p1").await.unwrap().unwrap();
    assert_eq!(participant.document, written.participants[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_share_the_conversion() {
    let db = TestDb::create().await;
    let pool = previous_release_database(&db).await;
    let t = tenant();
    let records: Vec<PreparedRecord> = (0..60)
        .map(|i| record(&format!("r{i:02}"), 1, "2024-03-05T00:00:00Z", &["s1", "s2"], &["p1"]))
        .collect();
    for record in &records {
        store_previously(&pool, &t, record, at("2024-03-06T00:00:00Z"), Some(0)).await;
    }
    let conversion = Conversion {
        batch: 4,
        max_batches: None,
    };
    let url = db.url();
    let (a, b) = tokio::join!(
        PgStore::open_converting(&url, conversion),
        PgStore::open_converting(&url, conversion)
    );
    let (node_a, node_b) = (a.expect("first node opens"), b.expect("second node opens"));
    assert_eq!(count(&node_a, "SELECT count(*) FROM record").await, 60);
    assert_eq!(count(&node_a, "SELECT count(*) FROM record_part").await, 120);
    assert_eq!(count(&node_a, "SELECT count(*) FROM participant_ref").await, 60);
    assert_eq!(all_pages(&node_b, &RecordSelection::default(), 25).await.len(), 60);
    assert_eq!(node_b.list_sessions(&t, "r59", None, 5).await.unwrap().len(), 2);
}

/// Batches of one tenant committed at once change the same rollup rows; each must wait for the
/// other rather than deadlock, and the rollups must still sum the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_of_a_tenant_change_its_rollups_in_turn() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let t = tenant();
    let options = crate::generate::GenerateOptions {
        calls: 480,
        seed: 11,
        days: 2,
        until: time::macros::datetime!(2024-03-10 00:00 UTC),
    };
    let at = crate::model::DateTimeOffset::parse("2024-03-11T00:00:00Z").expect("a date");
    let mut records = Vec::new();
    crate::generate::generate(&options, |item| {
        if let crate::generate::Generated::CallRecord(value) = item {
            let json = serde_json::to_vec(&value).expect("a generated record serializes");
            records.push(crate::ingest::prepare_record(&json, at).expect("a generated record is valid"));
        }
    });
    // Two writers at a time over the same two days, each batch of one writer a call's versions
    // apart from the other's, eight times.
    let (mut first, mut second): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for (index, record) in records.into_iter().enumerate() {
        match index % 2 {
            0 => first.push(record),
            _ => second.push(record),
        }
    }
    let rounds = first
        .chunks(first.len().div_ceil(8))
        .zip(second.chunks(second.len().div_ceil(8)));
    for (a, b) in rounds {
        let (written_a, written_b) = tokio::join!(
            node_a.upsert_call_records(&t, a, now()),
            node_b.upsert_call_records(&t, b, now())
        );
        written_a.expect("the first writer's batch commits");
        written_b.expect("the second writer's batch commits");
    }
    for (rows, rollup) in [
        (
            "SELECT count(*) FROM stream",
            "SELECT sum(streams)::int8 FROM stream_day",
        ),
        (
            "SELECT count(*) FROM stream",
            "SELECT sum(streams)::int8 FROM stream_network_day WHERE side = 0",
        ),
        (
            "SELECT count(*) FROM call_leg",
            "SELECT sum(sessions)::int8 FROM call_leg_day",
        ),
    ] {
        assert_eq!(count(&node_a, rows).await, count(&node_a, rollup).await, "{rollup}");
    }
    assert!(count(&node_a, "SELECT count(*) FROM stream").await > 1000);
}
