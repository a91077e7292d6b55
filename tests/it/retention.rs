//! The retention purge removes what is past the window, in batches, and nothing else.

use callrecords::model::DateTimeOffset;
use callrecords::retention::{purge_once, PurgeReport, RetentionPolicy};
use callrecords::store::{RecordSelection, TenantId, Timestamp};

use crate::support::*;

both!(purge_removes_records_and_rows_past_their_windows_in_batches);
async fn purge_removes_records_and_rows_past_their_windows_in_batches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = DateTimeOffset::parse("2024-06-30T00:00:00Z").unwrap();
    let mut records = minute_records("old", 25);
    records.push(record("recent", "2024-06-20T00:00:00Z", 2, &["a"]));
    app.ingest_ok(&records).await;
    app.ingest_kind_ok(
        "pstnCalls",
        &[
            pstn_row("old-row", "2023-01-01T00:00:00Z"),
            pstn_row("new-row", "2024-06-01T00:00:00Z"),
        ],
    )
    .await;
    let policy = RetentionPolicy {
        call_record_days: 30,
        log_row_days: 365,
        batch: 10,
        ..RetentionPolicy::default()
    };

    let report = purge_once(app.store.as_ref(), &policy, Timestamp::from(now))
        .await
        .unwrap();

    assert_eq!(
        report,
        PurgeReport {
            call_records: 25,
            log_rows: 1
        }
    );
    let tenant = TenantId::default_tenant();
    assert_eq!(
        app.store
            .count_call_records(&tenant, &RecordSelection::default())
            .await
            .unwrap(),
        1
    );
    let recent = app.graph("/communications/callRecords/recent/sessions").await.json();
    assert_eq!(recent["value"].as_array().unwrap().len(), 2);
    app.graph("/communications/callRecords/old-0000")
        .await
        .assert_error(404, "NotFound");
    let rows = app
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-05-15,toDateTime=2024-06-15)")
        .await
        .json();
    assert_eq!(ids(rows["value"].as_array().unwrap()), ["new-row"]);
    assert_eq!(
        purge_once(app.store.as_ref(), &policy, Timestamp::from(now))
            .await
            .unwrap(),
        PurgeReport::default()
    );
}
