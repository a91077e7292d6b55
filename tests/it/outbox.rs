//! The outbox claim, on each store directly: a record's later notification waits while an
//! earlier one is leased or waiting for its retry, so one record's versions reach a receiver in
//! the order they were made; and a delivery step ends inside its lease.

use std::time::{Duration, Instant};

use callrecords::model::{DateTimeOffset, SubscriptionScope};
use callrecords::notify::{delivery::deliver_due_once, Notifier, NotifySettings};
use callrecords::store::{ClaimedNotification, PreparedRecord, StoredSubscription, TenantId, Timestamp};
use serde_json::json;

use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

fn prepared(id: &str, version: i64) -> PreparedRecord {
    let start = Timestamp::from(DateTimeOffset::parse("2024-03-10T00:00:00Z").unwrap());
    PreparedRecord {
        id: id.to_owned(),
        version,
        start,
        end: start + MINUTE,
        document: json!({ "id": id, "version": version }).to_string(),
        organizer_at: 0,
        sessions: Vec::new(),
        participants: Vec::new(),
        streams: Default::default(),
        quality: Default::default(),
        rewrite: false,
    }
}

fn every_change(id: &str, expiration: Timestamp) -> StoredSubscription {
    sending_to(id, &format!("https://receiver.example/{id}"), expiration)
}

fn sending_to(id: &str, url: &str, expiration: Timestamp) -> StoredSubscription {
    StoredSubscription {
        id: id.to_owned(),
        expiration,
        scope: SubscriptionScope {
            created: true,
            updated: true,
            participant_ids: None,
        },
        document: json!({
            "id": id,
            "resource": "/communications/callRecords",
            "changeType": "created,updated",
            "notificationUrl": url,
            "expirationDateTime": expiration.to_date_time().unwrap().to_string(),
        })
        .to_string(),
    }
}

fn events(claimed: &[ClaimedNotification]) -> Vec<(String, String)> {
    claimed
        .iter()
        .map(|n| (n.event.clone(), n.call_record_id.clone().unwrap_or_default()))
        .collect()
}

fn expected(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter().map(|(e, r)| (e.to_string(), r.to_string())).collect()
}

both!(a_records_later_version_waits_for_its_earlier_one);
async fn a_records_later_version_waits_for_its_earlier_one(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = callrecords::store::open(&database.url).await.unwrap();
    let tenant = TenantId::default_tenant();
    let now = || callrecords::clock::system().timestamp();
    store
        .create_subscription(&tenant, &every_change("s", now() + 60 * MINUTE), 10, now())
        .await
        .unwrap();
    store
        .upsert_call_records(&tenant, &[prepared("r1", 1), prepared("x", 1)], now())
        .await
        .unwrap();

    // Leased: r1's next version is held back, other records are not.
    let t0 = now();
    let first = store.claim_notifications("w1", t0, MINUTE, 100).await.unwrap();
    assert_eq!(events(&first), expected(&[("created", "r1"), ("created", "x")]));
    store
        .upsert_call_records(&tenant, &[prepared("r1", 2), prepared("y", 1)], now())
        .await
        .unwrap();
    let t1 = now() + SECOND;
    let while_leased = store.claim_notifications("w2", t1, MINUTE, 100).await.unwrap();
    assert_eq!(events(&while_leased), expected(&[("created", "y")]));

    // Waiting for a retry: still held back, and sent after the earlier version once it is due.
    let retries: Vec<(i64, Timestamp)> = first.iter().map(|n| (n.id, t1 + MINUTE)).collect();
    store.retry_notifications(&retries, t1).await.unwrap();
    store.complete_notifications(&[while_leased[0].id]).await.unwrap();
    assert!(store
        .claim_notifications("w2", t1 + SECOND, MINUTE, 100)
        .await
        .unwrap()
        .is_empty());
    let retried = store.claim_notifications("w3", t1 + MINUTE, MINUTE, 100).await.unwrap();
    assert_eq!(
        events(&retried),
        expected(&[("created", "r1"), ("created", "x"), ("updated", "r1")])
    );
    assert!(retried.windows(2).all(|pair| pair[0].id < pair[1].id));

    // With the earlier rows done, a lone later version goes at once.
    store
        .complete_notifications(&retried.iter().map(|n| n.id).collect::<Vec<_>>())
        .await
        .unwrap();
    store
        .upsert_call_records(&tenant, &[prepared("r1", 3)], now())
        .await
        .unwrap();
    let last = store
        .claim_notifications("w4", now() + SECOND, MINUTE, 100)
        .await
        .unwrap();
    assert_eq!(events(&last), expected(&[("updated", "r1")]));
}

both!(a_step_sends_no_batch_that_could_outlast_its_lease);
async fn a_step_sends_no_batch_that_could_outlast_its_lease(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = callrecords::store::open(&database.url).await.unwrap();
    let tenant = TenantId::default_tenant();
    let now = || callrecords::clock::system().timestamp();
    // Four receivers that never answer in time, one batch each, sent one at a time: 2 s apiece
    // against a 7 s lease. A batch may start until 3 s (7 - 2 x 2), so two are sent and fail, and
    // the other two would have ended after the lease.
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::SlowNotifications);
    for n in 0..4 {
        let id = format!("s{n}");
        store
            .create_subscription(
                &tenant,
                &sending_to(&id, &receiver.url(&format!("/{id}")), now() + 60 * MINUTE),
                10,
                now(),
            )
            .await
            .unwrap();
    }
    store
        .upsert_call_records(&tenant, &[prepared("r1", 1)], now())
        .await
        .unwrap();
    let settings = NotifySettings {
        delivery_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(7),
        max_concurrent_deliveries: 1,
        ..NotifySettings::default()
    };
    let lease = settings.lease;
    let notifier = Notifier::new(store.clone(), settings, callrecords::clock::system()).unwrap();

    let started = Instant::now();
    let report = deliver_due_once(&notifier, "w1").await.unwrap();
    let took = started.elapsed();

    assert!(took < lease, "the step took {took:?}, past its {lease:?} lease");
    assert_eq!(report.delivered, 0);
    assert!(report.retried >= 1, "the first batch always goes: {report:?}");
    assert!(report.released >= 1, "{report:?}");
    assert_eq!(report.retried + report.released, 4, "{report:?}");
    // The unsent rows are free for any worker at once, attempts untouched; the failed ones wait
    // for their retry.
    let free = store.claim_notifications("w2", now(), MINUTE, 100).await.unwrap();
    assert_eq!(free.len(), report.released);
    assert!(free.iter().all(|n| n.attempts == 0), "{free:?}");
}
