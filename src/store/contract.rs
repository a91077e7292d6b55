//! The storage contract as a test suite: what every backend must do, checked through `dyn Store`
//! alone (no SQL, no backend type), once on SQLite and once on PostgreSQL. A new backend is done
//! when it passes this suite; what only one backend has (PostgreSQL's partitions, locks and
//! several nodes) is tested beside that backend.

use super::test_support::*;
use super::*;
use UpsertOutcome::{Ignored, Replaced, Stored};

/// Runs each named test body (an `async fn(&dyn Store)`) on a fresh store of every backend, as
/// `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fresh = super::FreshStore::sqlite().await;
                super::$name(fresh.store.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let fresh = super::FreshStore::postgres().await;
                super::$name(fresh.store.as_ref()).await;
            }
        }
    )*};
}

on_every_backend!(
    upsert_stores_replaces_and_ignores_by_version,
    list_and_count_follow_selection_order_and_cursor,
    sessions_and_participants_page_by_ordinal,
    log_rows_are_idempotent_by_id_and_page_by_time,
    purges_remove_what_started_before_the_cutoff_in_batches,
    subscriptions_keep_their_quota_and_expire,
    ingest_plans_notifications_in_the_records_transaction,
    leases_expire_and_retries_keep_the_first_attempt,
    released_rows_are_claimed_again_at_once,
    a_records_later_versions_wait_for_its_retried_one,
    reauthorization_is_due_once_per_interval,
    signing_keys_rotate_and_apps_are_per_tenant,
    stats_count_what_is_stored,
    the_collectors_progress_leases_and_notes_are_per_tenant,
);

/// The outbox as (subscription, event, call record), in id order, read through a claim that is
/// given back at once, so nothing about the rows changes.
async fn outbox(store: &dyn Store) -> Vec<(String, String, Option<String>)> {
    let claimed = store.claim_notifications("peek", now(), MINUTE, 10_000).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|n| n.id).collect();
    store.release_notifications("peek", &ids).await.unwrap();
    claimed
        .into_iter()
        .map(|n| (n.subscription_id, n.event, n.call_record_id))
        .collect()
}

fn planned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, Option<String>)> {
    rows.iter()
        .map(|(s, e, r)| (s.to_string(), e.to_string(), Some(r.to_string())))
        .collect()
}

async fn upsert_stores_replaces_and_ignores_by_version(store: &dyn Store) {
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
            now(),
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
    assert!(
        store.get_session(&t, "b", "s1").await.unwrap().is_none(),
        "old children go"
    );

    // Replays and lower versions change nothing.
    let replay = [
        record("a", 1, "2024-03-10T00:00:00Z", &[], &[]),
        record("b", 1, "2024-03-11T00:00:00Z", &[], &[]),
    ];
    assert_eq!(
        store.upsert_call_records(&t, &replay, now()).await.unwrap(),
        [Ignored, Ignored]
    );
    assert_eq!(store.list_sessions(&t, "a", None, 10).await.unwrap().len(), 2);

    // A new version may start in another month: it replaces the old one, children and all.
    let moved = record("a", 3, "2024-05-02T08:00:00Z", &["s9"], &["p2", "p3"]);
    assert_eq!(
        store
            .upsert_call_records(&t, std::slice::from_ref(&moved), now())
            .await
            .unwrap(),
        [Replaced]
    );
    let a = store.get_call_record(&t, "a", None).await.unwrap().unwrap();
    assert_eq!((a.start, a.document.as_str()), (moved.start, moved.document.as_str()));
    assert!(a.document.contains("0.00"), "number text kept: {}", a.document);
    assert_eq!(
        store
            .list_sessions(&t, "a", None, 10)
            .await
            .unwrap()
            .iter()
            .map(|s| s.document.as_str())
            .collect::<Vec<_>>(),
        [r#"{"id":"s9","of":"3"}"#]
    );
    let participants = store.list_participants(&t, "a", None, 10).await.unwrap();
    assert_eq!(participants.iter().map(|p| p.ordinal).collect::<Vec<_>>(), [0, 1]);
    let march = RecordSelection {
        start_from: Some(at("2024-03-01T00:00:00Z")),
        start_before: Some(at("2024-04-01T00:00:00Z")),
        ..RecordSelection::default()
    };
    assert_eq!(
        all_pages(store, &march, 10).await,
        ["b"],
        "nothing of a is left in March"
    );

    // Tenants never see each other's records, and the same id is new in another tenant.
    let other = other_tenant();
    assert!(store.get_call_record(&other, "a", None).await.unwrap().is_none());
    assert_eq!(
        store
            .upsert_call_records(&other, &[record("a", 1, "2024-03-10T00:00:00Z", &[], &[])], now())
            .await
            .unwrap(),
        [Stored]
    );
    assert_eq!(
        store.count_call_records(&t, &RecordSelection::default()).await.unwrap(),
        2
    );
    assert!(store.upsert_call_records(&t, &[], now()).await.unwrap().is_empty());
    store.ping().await.unwrap();
}

async fn list_and_count_follow_selection_order_and_cursor(store: &dyn Store) {
    let t = tenant();
    // Inserted out of order; r2 and r3 start together, so their ids decide.
    let batch = [
        record("r5", 1, "2024-04-01T00:00:00Z", &[], &["alice", "bob", "carol"]),
        record("r3", 1, "2024-03-01T00:00:00Z", &["s"], &["bob"]),
        record("r1", 1, "2024-02-28T23:00:00Z", &[], &["alice"]),
        record("r4", 1, "2024-03-15T00:00:00Z", &[], &["bob", "alice"]),
        record("r2", 1, "2024-03-01T00:00:00Z", &[], &["alice", "bob"]),
    ];
    store.upsert_call_records(&t, &batch, now()).await.unwrap();

    let everything = RecordSelection::default();
    let listed = store.list_call_records(&t, &everything, None, 10).await.unwrap();
    assert_eq!(ids(&listed), ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!((listed[2].n_sessions, listed[2].n_participants), (1, 1));
    assert_eq!(all_pages(store, &everything, 2).await, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(store.count_call_records(&t, &everything).await.unwrap(), 5);

    let mut march = RecordSelection::default();
    march.start_at_or_after(at("2024-03-01T00:00:00Z"));
    march.start_before(at("2024-04-01T00:00:00Z"));
    assert_eq!(all_pages(store, &march, 1).await, ["r2", "r3", "r4"]);
    assert_eq!(store.count_call_records(&t, &march).await.unwrap(), 3);

    let alice_and_bob = RecordSelection {
        participant_ids: vec!["alice".to_owned(), "bob".to_owned()],
        ..RecordSelection::default()
    };
    assert_eq!(all_pages(store, &alice_and_bob, 1).await, ["r2", "r4", "r5"]);
    assert_eq!(store.count_call_records(&t, &alice_and_bob).await.unwrap(), 3);
    let alice_and_bob_in_march = RecordSelection {
        participant_ids: alice_and_bob.participant_ids.clone(),
        ..march.clone()
    };
    assert_eq!(all_pages(store, &alice_and_bob_in_march, 10).await, ["r2", "r4"]);
    assert_eq!(store.count_call_records(&t, &alice_and_bob_in_march).await.unwrap(), 2);
    let nobody = RecordSelection {
        participant_ids: vec!["mallory".to_owned()],
        ..RecordSelection::default()
    };
    assert!(store.list_call_records(&t, &nobody, None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_call_records(&t, &nobody).await.unwrap(), 0);

    let mut empty = march.clone();
    empty.start_before(at("2024-01-01T00:00:00Z"));
    assert!(empty.is_empty_range());
    assert!(store.list_call_records(&t, &empty, None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_call_records(&t, &empty).await.unwrap(), 0);

    let from_march = Some(at("2024-03-01T00:00:00Z"));
    assert!(store.get_call_record(&t, "r1", from_march).await.unwrap().is_none());
    assert_eq!(
        store.get_call_record(&t, "r2", from_march).await.unwrap().unwrap().id,
        "r2"
    );
    assert!(store
        .list_call_records(&other_tenant(), &everything, None, 10)
        .await
        .unwrap()
        .is_empty());

    // What changed since an instant: r3 replaced and r6 added later; both count from the
    // instant itself on.
    let later = now() + Duration::from_secs(3600);
    let changes = [
        record("r3", 2, "2024-03-01T00:00:00Z", &["s"], &["bob"]),
        record("r6", 1, "2024-01-01T00:00:00Z", &[], &[]),
    ];
    store.upsert_call_records(&t, &changes, later).await.unwrap();
    let changed = RecordSelection {
        stored_since: Some(later),
        ..RecordSelection::default()
    };
    assert_eq!(all_pages(store, &changed, 1).await, ["r6", "r3"]);
    let changed_in_march = RecordSelection {
        stored_since: Some(later),
        ..march.clone()
    };
    assert_eq!(all_pages(store, &changed_in_march, 10).await, ["r3"]);
    let after_the_change = RecordSelection {
        stored_since: Some(later.next_tick()),
        ..RecordSelection::default()
    };
    assert!(store
        .list_call_records(&t, &after_the_change, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn sessions_and_participants_page_by_ordinal(store: &dyn Store) {
    let t = tenant();
    let sessions = ["e", "d", "c", "b", "a"];
    store
        .upsert_call_records(
            &t,
            &[record("r", 1, "2024-03-01T00:00:00Z", &sessions, &["z", "y", "x"])],
            now(),
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

    let (record, with_sessions) = store
        .get_call_record_with_sessions(&t, "r", None, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, "r");
    assert_eq!(with_sessions.iter().map(|s| s.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
    let later = Some(at("2024-03-02T00:00:00Z"));
    assert!(store
        .get_call_record_with_sessions(&t, "r", later, 3)
        .await
        .unwrap()
        .is_none());

    let participants = store.list_participants(&t, "r", Some(0), 5).await.unwrap();
    assert_eq!(participants.iter().map(|p| p.ordinal).collect::<Vec<_>>(), [1, 2]);
    let x = store.get_participant(&t, "r", "x").await.unwrap().unwrap();
    assert_eq!((x.ordinal, x.document.as_str()), (2, r#"{"id":"x","of":"1"}"#));
    assert!(store
        .get_participant(&other_tenant(), "r", "x")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_participants(&other_tenant(), "r", None, 5)
        .await
        .unwrap()
        .is_empty());
}

async fn log_rows_are_idempotent_by_id_and_page_by_time(store: &dyn Store) {
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
        from: at("2024-02-01T00:00:00Z"),
        to: at("2024-03-02T00:00:00.0000001Z"),
        after: after.map(|(start, id)| RecordCursor {
            start: at(start),
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
        to: at("2024-03-02T00:00:00Z"),
        ..query(None, 0, 10)
    };
    assert_eq!(listed(store.list_log_rows(&t, &narrow).await.unwrap()), ["x0", "x1"]);
    let sms = LogRowQuery {
        kind: LogKind::SmsLog,
        to: at("2024-05-01T00:00:00Z"),
        ..query(None, 0, 10)
    };
    assert_eq!(listed(store.list_log_rows(&t, &sms).await.unwrap()), ["x1"]);
    assert!(store.list_log_rows(&other_tenant(), &sms).await.unwrap().is_empty());
    let stored = store.list_log_rows(&t, &query(None, 0, 1)).await.unwrap();
    assert_eq!(
        stored[0].document,
        r#"{"id":"x0","startDateTime":"2024-02-29T23:59:59Z","charge":0.00}"#
    );
}

/// Calls `purge` with `limit` until it removes fewer than `limit` (as the retention loop does)
/// and returns the total it reported.
async fn purge_all<F, Fut>(limit: u32, purge: F) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    for _ in 0..100 {
        let removed = purge().await.unwrap();
        total += removed;
        if removed < u64::from(limit) {
            return total;
        }
    }
    panic!("the purge never finished");
}

async fn purges_remove_what_started_before_the_cutoff_in_batches(store: &dyn Store) {
    store_purge_fixture(store).await;
    let t = tenant();
    let cutoff = at("2024-03-10T00:00:00Z");
    // Each call removes at least one batch while there is more; a backend may remove more at
    // once (PostgreSQL drops whole months), never less.
    let first = store.purge_call_records_before(cutoff, 2).await.unwrap();
    assert!(first >= 2, "{first}");
    let rest = purge_all(2, || store.purge_call_records_before(cutoff, 2)).await;
    assert_eq!(first + rest, 9, "every tenant's records before the cutoff");
    let left = store
        .list_call_records(&t, &RecordSelection::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&left), ["mar-late", "apr"]);
    assert!(store.get_session(&t, "jan-1", "s").await.unwrap().is_none());
    assert!(store.get_participant(&t, "mar-1", "p").await.unwrap().is_none());
    assert_eq!(store.list_sessions(&t, "mar-late", None, 10).await.unwrap().len(), 1);
    assert_eq!(
        store
            .count_call_records(&other_tenant(), &RecordSelection::default())
            .await
            .unwrap(),
        0
    );

    // A late arrival before the cutoff is stored again.
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
    assert_eq!(purge_all(1, || store.purge_log_rows_before(log_cutoff, 1)).await, 5);
    let everything = LogRowQuery {
        kind: LogKind::DirectRoutingCall,
        from: at("2023-01-01T00:00:00Z"),
        to: at("2025-01-01T00:00:00Z"),
        after: None,
        skip: 0,
        limit: 100,
    };
    let left: Vec<String> = store
        .list_log_rows(&t, &everything)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(left, ["feb-26"]);
}

async fn subscriptions_keep_their_quota_and_expire(store: &dyn Store) {
    let t = tenant();
    let later = now() + 60 * MINUTE;

    // An expired subscription does not count against the quota.
    let expired = subscription("expired", now() - MINUTE, scope(true, true, None));
    assert!(store.create_subscription(&t, &expired, 3, now()).await.unwrap());
    let mut created = Vec::new();
    for i in 0..5 {
        let sub = subscription(&format!("s{i}"), later, scope(true, true, None));
        created.push(store.create_subscription(&t, &sub, 3, now()).await.unwrap());
    }
    assert_eq!(created, [true, true, true, false, false]);
    let listed = store.list_subscriptions(&t, now()).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s0", "s1", "s2"]
    );

    // Another tenant has a quota of its own.
    let other = other_tenant();
    let sub = subscription("s0", later, scope(true, false, Some(&["p1"])));
    assert!(store.create_subscription(&other, &sub, 3, now()).await.unwrap());
    assert_eq!(
        store.get_subscription(&other, "s0", now()).await.unwrap(),
        Some(sub.clone())
    );
    assert!(store.get_subscription(&t, "expired", now()).await.unwrap().is_none());
    assert!(
        store.get_subscription(&t, "s0", later).await.unwrap().is_none(),
        "expired then"
    );

    // Replace, delete, and expiry sweeps.
    let mut replaced = sub.clone();
    replaced.scope = scope(false, true, None);
    assert!(store.replace_subscription(&other, &replaced).await.unwrap());
    assert_eq!(
        store.get_subscription(&other, "s0", now()).await.unwrap(),
        Some(replaced)
    );
    assert!(!store
        .replace_subscription(&other, &subscription("nope", later, scope(true, true, None)))
        .await
        .unwrap());
    assert!(store.delete_subscription(&other, "s0").await.unwrap());
    assert!(!store.delete_subscription(&other, "s0").await.unwrap());
    assert_eq!(store.remove_expired_subscriptions(now()).await.unwrap(), 1);
    assert_eq!(store.list_subscriptions(&t, now()).await.unwrap().len(), 3);
    assert!(store.list_subscriptions(&other, now()).await.unwrap().is_empty());
}

async fn ingest_plans_notifications_in_the_records_transaction(store: &dyn Store) {
    let t = tenant();
    let later = now() + 60 * MINUTE;
    for sub in [
        subscription("all", later, scope(true, true, None)),
        subscription("created-only", later, scope(true, false, None)),
        subscription("updated-only", later, scope(false, true, None)),
        subscription("p9", later, scope(true, true, Some(&["p9", "p8"]))),
        subscription("expired", now() - MINUTE, scope(true, true, None)),
    ] {
        assert!(store.create_subscription(&t, &sub, 10, now()).await.unwrap());
    }
    // Another tenant's subscription never hears of this tenant's records.
    store
        .create_subscription(
            &other_tenant(),
            &subscription("theirs", later, scope(true, true, None)),
            10,
            now(),
        )
        .await
        .unwrap();

    let outcomes = store
        .upsert_call_records(
            &t,
            &[
                record("a", 1, "2024-03-10T00:00:00Z", &[], &["p1"]),
                record("a", 1, "2024-03-10T00:00:00Z", &[], &["p1"]),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [Stored, Ignored]);
    let expected_a1 = [
        ("all", "created", "a"),
        ("created-only", "created", "a"),
        ("updated-only", "updated", "a"),
    ];
    assert_eq!(outbox(store).await, planned(&expected_a1));

    // A replacement is `updated`, for subscriptions that want updates; the filtered one hears
    // only of records with one of its participants.
    let outcomes = store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &["p8"])], now())
        .await
        .unwrap();
    assert_eq!(outcomes, [Replaced]);
    let mut expected = expected_a1.to_vec();
    expected.extend([
        ("all", "updated", "a"),
        ("p9", "updated", "a"),
        ("updated-only", "updated", "a"),
    ]);
    assert_eq!(outbox(store).await, planned(&expected));

    // Ignored versions plan nothing; a batch that fails leaves no records and no rows.
    store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &["p8"])], now())
        .await
        .unwrap();
    // Two participants with one id break a unique key in every backend (ingest refuses such a
    // record before it reaches a store; the store must still not keep half of it).
    let broken = record("b", 1, "2024-03-10T00:00:00Z", &["s"], &["p9", "p9"]);
    assert!(store
        .upsert_call_records(&t, &[record("c", 1, "2024-03-10T00:00:00Z", &[], &[]), broken], now())
        .await
        .is_err());
    assert_eq!(outbox(store).await, planned(&expected));
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
    assert_eq!(first.tenant_id, t.as_str());
    assert_eq!(first.url, "https://receiver.example/all");
    assert_eq!(first.client_state.as_deref(), Some("state-all"));
    assert_eq!(first.subscription_expiration, later);
    assert_eq!((first.attempts, first.first_attempt), (0, None));

    // Deleting a subscription drops its pending change rows.
    assert!(store.delete_subscription(&t, "all").await.unwrap());
    assert_eq!(store.outbox_depth().await.unwrap(), 4);
}

async fn leases_expire_and_retries_keep_the_first_attempt(store: &dyn Store) {
    let t = tenant();
    let later = now() + 60 * MINUTE;
    store
        .create_subscription(&t, &subscription("all", later, scope(true, true, None)), 10, now())
        .await
        .unwrap();
    store
        .upsert_call_records(&t, &[record("a", 1, "2024-03-10T00:00:00Z", &[], &[])], now())
        .await
        .unwrap();
    let lifecycle = LifecycleEvent {
        subscription_id: "gone".to_owned(),
        event: "subscriptionRemoved".to_owned(),
        target_url: "https://receiver.example/lifecycle".to_owned(),
        client_state: None,
        expiration: Timestamp::from_ticks(42),
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
            removed.subscription_expiration,
            removed.call_record_id.as_deref()
        ),
        (
            "subscriptionRemoved",
            "https://receiver.example/lifecycle",
            Timestamp::from_ticks(42),
            None
        )
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
        (retried[0].id, retried[0].attempts, retried[0].first_attempt),
        (ids[0], 1, Some(t1))
    );
    let t2 = t1 + 2 * MINUTE;
    store.retry_notifications(&[(ids[0], t2)], t2).await.unwrap();
    let retried = store.claim_notifications("w4", t2, MINUTE, 1).await.unwrap();
    assert_eq!(
        (retried[0].id, retried[0].attempts, retried[0].first_attempt),
        (ids[0], 2, Some(t1))
    );

    store.complete_notifications(&ids).await.unwrap();
    store.complete_notifications(&[]).await.unwrap();
    store.retry_notifications(&[], t2).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 0);

    // Change rows of an expired subscription are dropped, never claimed; lifecycle rows stay.
    store
        .upsert_call_records(&t, &[record("a", 2, "2024-03-10T00:00:00Z", &[], &[])], now())
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

async fn released_rows_are_claimed_again_at_once(store: &dyn Store) {
    let t = tenant();
    subscribe_to_every_change(store).await;
    let batch: Vec<PreparedRecord> = (0..5)
        .map(|i| record(&format!("r{i}"), 1, "2024-03-01T00:00:00Z", &[], &[]))
        .collect();
    store.upsert_call_records(&t, &batch, now()).await.unwrap();
    let t0 = now();
    let claimed = store.claim_notifications("w1", t0, 10 * MINUTE, 3).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let ids: Vec<i64> = claimed.iter().map(|n| n.id).collect();
    // Another worker's release changes nothing; the owner's gives the rows back unchanged.
    store.release_notifications("w2", &ids).await.unwrap();
    let others = store.claim_notifications("w2", t0, 10 * MINUTE, 10).await.unwrap();
    assert_eq!(others.len(), 2);
    store.release_notifications("w1", &ids[..2]).await.unwrap();
    store.release_notifications("w1", &[]).await.unwrap();
    let again = store.claim_notifications("w3", t0, 10 * MINUTE, 10).await.unwrap();
    assert_eq!(again.iter().map(|n| n.id).collect::<Vec<_>>(), &ids[..2]);
    assert!(again.iter().all(|n| n.attempts == 0 && n.first_attempt.is_none()));
}

async fn a_records_later_versions_wait_for_its_retried_one(store: &dyn Store) {
    let t = tenant();
    subscribe_to_every_change(store).await;
    store
        .upsert_call_records(
            &t,
            &[
                record("a", 1, "2024-03-01T00:00:00Z", &[], &[]),
                record("b", 1, "2024-03-01T00:00:00Z", &[], &[]),
            ],
            now(),
        )
        .await
        .unwrap();
    let t0 = now();
    let first = store.claim_notifications("w", t0, MINUTE, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    let a1 = first
        .iter()
        .find(|n| n.call_record_id.as_deref() == Some("a"))
        .unwrap()
        .id;
    let b1 = first
        .iter()
        .find(|n| n.call_record_id.as_deref() == Some("b"))
        .unwrap()
        .id;
    store.retry_notifications(&[(a1, t0 + 10 * MINUTE)], t0).await.unwrap();
    store.complete_notifications(&[b1]).await.unwrap();
    store
        .upsert_call_records(
            &t,
            &[
                record("a", 2, "2024-03-01T00:00:00Z", &[], &[]),
                record("b", 2, "2024-03-01T00:00:00Z", &[], &[]),
            ],
            now(),
        )
        .await
        .unwrap();
    // a's second version waits behind its first, which waits for its retry; b flows on.
    let now_due = store.claim_notifications("w", now(), MINUTE, 10).await.unwrap();
    assert_eq!(
        now_due.iter().map(|n| n.call_record_id.as_deref()).collect::<Vec<_>>(),
        [Some("b")]
    );
    store.complete_notifications(&[now_due[0].id]).await.unwrap();
    // Once the retry is due, both of a's versions go out together, in the order they were made.
    let at_retry = store
        .claim_notifications("w", t0 + 10 * MINUTE, MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(
        at_retry.iter().map(|n| n.call_record_id.as_deref()).collect::<Vec<_>>(),
        [Some("a"), Some("a")]
    );
    assert_eq!(at_retry[0].id, a1);
}

async fn reauthorization_is_due_once_per_interval(store: &dyn Store) {
    let t = tenant();
    let t0 = now();
    let soon = subscription("soon", t0 + 30 * MINUTE, scope(true, true, None));
    let far = subscription("far", t0 + 3 * 24 * 60 * MINUTE, scope(true, true, None));
    for sub in [&soon, &far] {
        assert!(store.create_subscription(&t, sub, 10, now()).await.unwrap());
    }
    let (within, every) = (60 * MINUTE, 10 * MINUTE);

    let taken = store.take_reauthorization_due(t0, within, every).await.unwrap();
    assert_eq!(taken, [(t.clone(), soon.clone())]);
    assert!(store
        .take_reauthorization_due(t0 + 5 * MINUTE, within, every)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .take_reauthorization_due(t0 + 10 * MINUTE, within, every)
        .await
        .unwrap();
    assert_eq!(again, [(t.clone(), soon.clone())]);

    // Renewing resets the reminder; an expired subscription is never due.
    assert!(store.replace_subscription(&t, &soon).await.unwrap());
    assert_eq!(
        store
            .take_reauthorization_due(t0 + 11 * MINUTE, within, every)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .take_reauthorization_due(t0 + 31 * MINUTE, within, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
}

async fn signing_keys_rotate_and_apps_are_per_tenant(store: &dyn Store) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, created: Timestamp| StoredSigningKey {
        kid: kid.to_owned(),
        private_key_pem: format!("pem of {kid}"),
        created,
        retired: None,
    };
    let t0 = now();
    store.add_signing_key(&key("k1", t0), None).await.unwrap();
    store.add_signing_key(&key("k2", t0 + SECOND), None).await.unwrap();
    store
        .add_signing_key(&key("k3", t0 + 2 * SECOND), Some(t0 + 60 * MINUTE))
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.kid.as_str(), k.retired)).collect::<Vec<_>>(),
        [
            ("k3", None),
            ("k2", Some(t0 + 60 * MINUTE)),
            ("k1", Some(t0 + 60 * MINUTE))
        ]
    );
    assert_eq!(keys[0].private_key_pem, "pem of k3");

    let app = StoredApp {
        client_id: "client-1".to_owned(),
        name: "reporting".to_owned(),
        roles: vec!["CallRecords.Read.All".to_owned(), "CallRecords.Ingest".to_owned()],
        secret_sha256: "ab".repeat(32),
        created: t0,
    };
    store.add_app(&tenant(), &app).await.unwrap();
    let found = store.get_app(&tenant(), "client-1").await.unwrap().unwrap();
    assert_eq!(
        (
            found.name.as_str(),
            found.roles.clone(),
            found.secret_sha256.as_str(),
            found.created
        ),
        ("reporting", app.roles.clone(), app.secret_sha256.as_str(), t0)
    );
    assert!(store.get_app(&other_tenant(), "client-1").await.unwrap().is_none());
    assert!(
        store.add_app(&tenant(), &app).await.is_err(),
        "a client id is registered once"
    );
    store.add_app(&other_tenant(), &app).await.unwrap();

    // Certificates are per app and thumbprint; adding one twice changes nothing.
    for _ in 0..2 {
        store
            .add_app_certificate(&tenant(), "client-1", "thumb-1", "PEM 1", t0)
            .await
            .unwrap();
    }
    let found = store.app_certificate(&tenant(), "client-1", "thumb-1").await.unwrap();
    assert_eq!(found.as_deref(), Some("PEM 1"));
    assert!(store
        .app_certificate(&tenant(), "client-1", "thumb-2")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .app_certificate(&other_tenant(), "client-1", "thumb-1")
        .await
        .unwrap()
        .is_none());
}

async fn stats_count_what_is_stored(store: &dyn Store) {
    let empty = store.stats().await.unwrap();
    assert_eq!(empty.call_records(), 0);
    assert!(empty.bytes > 0, "an empty store still has its schema: {}", empty.bytes);
    let batch: Vec<PreparedRecord> = (0..3)
        .map(|i| record(&format!("r{i}"), 1, "2024-03-01T00:00:00Z", &["s"], &["p"]))
        .collect();
    store.upsert_call_records(&tenant(), &batch, now()).await.unwrap();
    store
        .upsert_call_records(&other_tenant(), &batch[..1], now())
        .await
        .unwrap();
    store
        .upsert_log_rows(&tenant(), LogKind::PstnCall, &[log_row("x", "2024-03-01T00:00:00Z")])
        .await
        .unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.call_records(), 4);
    assert_eq!(
        stats.call_records_by_tenant,
        [(tenant(), 3), (other_tenant(), 1)],
        "most first"
    );
    assert_eq!(stats.log_rows_by_kind, [(LogKind::PstnCall.as_str().to_owned(), 1)]);
}

async fn the_collectors_progress_leases_and_notes_are_per_tenant(store: &dyn Store) {
    let (t, other) = (tenant(), other_tenant());
    store
        .upsert_call_records(
            &t,
            &[
                record("a", 3, "2024-03-10T00:00:00Z", &[], &[]),
                record("b", 1, "2024-03-11T00:00:00Z", &[], &[]),
            ],
            now(),
        )
        .await
        .unwrap();
    let wanted = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let versions = store.stored_versions(&t, &wanted).await.unwrap();
    assert_eq!(versions, HashMap::from([("a".to_owned(), 3), ("b".to_owned(), 1)]));
    assert!(store.stored_versions(&other, &wanted).await.unwrap().is_empty());
    assert!(store.stored_versions(&t, &[]).await.unwrap().is_empty());

    assert_eq!(store.sync_value(&t, "sweep").await.unwrap(), None);
    store.set_sync_value(&t, "sweep", "1").await.unwrap();
    store.set_sync_value(&t, "sweep", "2").await.unwrap();
    assert_eq!(store.sync_value(&t, "sweep").await.unwrap().as_deref(), Some("2"));
    assert_eq!(store.sync_value(&other, "sweep").await.unwrap(), None);
    assert_eq!(store.collected_tenants().await.unwrap(), std::slice::from_ref(&t));

    // One holder at a time, until the lease runs out or is given back.
    let until = now() + MINUTE;
    assert!(store.take_sync_lease(&t, "node-1", now(), until).await.unwrap());
    assert!(
        store.take_sync_lease(&t, "node-1", now(), until).await.unwrap(),
        "renewed"
    );
    assert!(!store.take_sync_lease(&t, "node-2", now(), until).await.unwrap());
    assert!(store.take_sync_lease(&other, "node-2", now(), until).await.unwrap());
    assert!(
        store
            .take_sync_lease(&t, "node-2", until, until + MINUTE)
            .await
            .unwrap(),
        "expired"
    );
    store.release_sync_lease(&t, "node-1").await.unwrap();
    assert!(
        !store
            .take_sync_lease(&t, "node-1", until, until + MINUTE)
            .await
            .unwrap(),
        "not node-1's to give back"
    );
    store.release_sync_lease(&t, "node-2").await.unwrap();
    assert!(store
        .take_sync_lease(&t, "node-1", until, until + MINUTE)
        .await
        .unwrap());

    // A note made again while its record was being fetched survives the clearing.
    let first = now();
    let later = first + MINUTE;
    store
        .note_pending_records(&t, &["x".to_owned(), "y".to_owned()], first)
        .await
        .unwrap();
    let pending = store.pending_records(&t, 10).await.unwrap();
    assert_eq!(pending, [("x".to_owned(), first), ("y".to_owned(), first)]);
    store.note_pending_records(&t, &["y".to_owned()], later).await.unwrap();
    store
        .clear_pending_records(&t, &["x".to_owned(), "y".to_owned()], first)
        .await
        .unwrap();
    assert_eq!(store.pending_records(&t, 10).await.unwrap(), [("y".to_owned(), later)]);
    assert!(store.pending_records(&other, 10).await.unwrap().is_empty());
}
