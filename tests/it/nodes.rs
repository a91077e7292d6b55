//! Several stateless `serve` nodes on one PostgreSQL: what one node ingests, another serves,
//! pages and filters, and a next link issued by one node works on the other.

use std::sync::Arc;

use crate::support::*;

#[tokio::test]
async fn two_nodes_share_one_postgres_database() {
    let database = Arc::new(TestDatabase::new(Backend::Postgres).await);
    let node_a = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let node_b = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;

    node_a.ingest_ok(&minute_records("r", 130)).await;
    node_b
        .ingest_kind_ok("pstnCalls", &[pstn_row("p1", "2024-03-01T00:30:00Z")])
        .await;

    let first = node_b
        .graph("/communications/callRecords?$filter=participants_v2/any(p:p/id%20eq%20'alice')")
        .await
        .json();
    assert_eq!(first["value"].as_array().unwrap().len(), 60);
    let next = first["@odata.nextLink"].as_str().unwrap();
    let on_a = next.replace(&node_b.addr.to_string(), &node_a.addr.to_string());
    let second = node_a.follow(&on_a, &[]).await.json();
    assert_eq!(second["value"][0]["id"], "r-0060");
    let (all, _) = node_a
        .collect_pages(
            "/communications/callRecords?$filter=startDateTime%20ge%202024-03-01T01:00:00Z",
            &[],
        )
        .await;
    assert_eq!(all.len(), 70);
    let rows = node_a
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-03-01,toDateTime=2024-03-02)")
        .await
        .json();
    assert_eq!(ids(rows["value"].as_array().unwrap()), ["p1"]);

    // The same batch ingested through both nodes at once is stored once.
    let batch = minute_records("race", 200);
    let (report_a, report_b) = tokio::join!(node_a.ingest_ok(&batch), node_b.ingest_ok(&batch));
    let stored = report_a["stored"].as_u64().unwrap() + report_b["stored"].as_u64().unwrap();
    let ignored = report_a["ignored"].as_u64().unwrap() + report_b["ignored"].as_u64().unwrap();
    assert_eq!((stored, ignored), (200, 200));
    assert_eq!(node_b.graph("/communications/callRecords/$count").await.text, "330");
}

#[tokio::test]
async fn two_nodes_deliver_each_notification_once() {
    let database = Arc::new(TestDatabase::new(Backend::Postgres).await);
    let node_a = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let node_b = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let receiver = Receiver::start().await;
    node_a.subscribe(&receiver.url("/hook"), "created,updated").await;

    let (first, second) = (minute_records("a", 150), minute_records("b", 150));
    let (report_a, report_b) = tokio::join!(node_a.ingest_ok(&first), node_b.ingest_ok(&second));
    assert_eq!(
        (report_a["stored"].clone(), report_b["stored"].clone()),
        (serde_json::json!(150), serde_json::json!(150))
    );

    receiver.wait_for(300).await;
    node_a.outbox_drained().await;
    let got = receiver.notifications();
    let mut delivered: Vec<&str> = got.iter().map(|n| n["resourceData"]["id"].as_str().unwrap()).collect();
    delivered.sort();
    let before = delivered.len();
    delivered.dedup();
    assert_eq!(
        (before, delivered.len()),
        (300, 300),
        "each notification exactly once across the two nodes"
    );
}
