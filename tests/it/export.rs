//! `callrecords export` and `GET /export/{what}`: an export of every kind, imported into an
//! empty store, gives a store that answers every resource as the original does; what changed
//! since an instant is exported alone; bad requests are refused before anything is written;
//! HTTP streams the same bytes as the command line, for the caller's tenant only. The Parquet
//! files are read by pyarrow and DuckDB in the conformance suite (`conformance/tests/test_export.py`).

use std::path::Path;
use std::sync::Arc;

use callrecords::auth::local::DEFAULT_AUDIENCE;
use callrecords::auth::{INGEST, READ_ALL};
use serde_json::Value;

use crate::answers::{answers, assert_same_answers, ingest_generated};
use crate::support::*;

/// What a backup holds: the call records and every kind of usage-log row, each with the kind
/// `import` takes it as.
const BACKUP: [(&str, &str); 6] = [
    ("records", "callRecords"),
    ("pstnCalls", "pstnCalls"),
    ("directRoutingCalls", "directRoutingCalls"),
    ("smsLogs", "smsLogs"),
    ("pstnBlockedUsers", "pstnBlockedUsers"),
    ("pstnOnlineMeetingDialoutReport", "pstnOnlineMeetingDialoutReport"),
];

/// Runs the binary with `args`; returns whether it succeeded and its stderr.
async fn run(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn export(db: &str, what: &str, format: &str, file: &Path, extra: &[&str]) {
    let file = file.to_str().unwrap();
    let mut args = vec!["export", "--db", db, "--what", what, "--format", format, "-o", file];
    args.extend_from_slice(extra);
    let (ok, stderr) = run(&args).await;
    assert!(ok, "export {what} as {format} failed: {stderr}");
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The ids of an NDJSON export's records, in order.
fn line_ids(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("each line is JSON")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

both!(an_export_imported_into_an_empty_store_answers_every_resource_as_the_original);
async fn an_export_imported_into_an_empty_store_answers_every_resource_as_the_original(backend: Backend) {
    let original_db = Arc::new(TestDatabase::new(backend).await);
    let original = TestApp::spawn_on(original_db.clone(), settings_with_retention(0)).await;
    ingest_generated(&original).await;
    let dir = tempfile::tempdir().unwrap();
    let restored = restored_from_backup(backend, &original_db.url, dir.path()).await;

    // The meeting with more sessions and participants than a page holds is exported whole.
    let records = lines(&dir.path().join("records.ndjson"));
    let big = records
        .iter()
        .find(|record| record["id"] == "big-meeting")
        .expect("the big meeting is exported");
    assert_eq!(big["sessions"].as_array().unwrap().len(), 75);
    assert_eq!(big["participants_v2"].as_array().unwrap().len(), 140);
    assert!(big["sessions"][74]["segments"]
        .as_array()
        .is_some_and(|segments| !segments.is_empty()));
    assert!(records.iter().all(|record| record.get("@odata.context").is_none()));

    assert_same_answers(
        &answers(&original).await,
        &answers(&restored).await,
        "the restored store",
    );
}

both!(a_store_of_the_first_release_is_backed_up_and_restored_as_it_answers);
/// A store written by the first release (documents in its layout, retired properties stored as
/// it stored them) is backed up and restored like a new one.
async fn a_store_of_the_first_release_is_backed_up_and_restored_as_it_answers(backend: Backend) {
    let original_db = Arc::new(TestDatabase::previous_release(backend).await);
    let original = TestApp::spawn_on(original_db.clone(), settings_with_retention(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let restored = restored_from_backup(backend, &original_db.url, dir.path()).await;
    assert_same_answers(
        &answers(&original).await,
        &answers(&restored).await,
        "the restored store",
    );
}

/// Exports every kind of the store at `url` as NDJSON into `dir` and imports each into a new,
/// empty store, which it serves.
async fn restored_from_backup(backend: Backend, url: &str, dir: &Path) -> TestApp {
    let restored_db = Arc::new(TestDatabase::new(backend).await);
    for (what, kind) in BACKUP {
        let file = dir.join(format!("{what}.ndjson"));
        export(url, what, "ndjson", &file, &[]).await;
        let (ok, stderr) = run(&[
            "import",
            file.to_str().unwrap(),
            "--kind",
            kind,
            "--db",
            &restored_db.url,
            "--quiet",
        ])
        .await;
        assert!(ok, "import of the {what} export failed: {stderr}");
    }
    TestApp::spawn_on(restored_db, settings_with_retention(0)).await
}

both!(what_changed_since_an_instant_is_exported_alone);
async fn what_changed_since_an_instant_is_exported_alone(backend: Backend) {
    let database = Arc::new(TestDatabase::new(backend).await);
    let app = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    app.ingest_ok(&[
        record("a", "2024-03-01T10:00:00Z", 1, &["p1"]),
        record("b", "2024-03-02T10:00:00Z", 1, &["p1"]),
        record("c", "2024-03-03T10:00:00Z", 1, &["p1"]),
    ])
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = callrecords::model::DateTimeOffset::now().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut newer_a = record("a", "2024-03-01T10:00:00Z", 2, &["p1", "p2"]);
    newer_a["version"] = 2.into();
    app.ingest_ok(&[newer_a, record("d", "2024-02-01T10:00:00Z", 1, &["p3"])])
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("changed.ndjson");
    export(&database.url, "records", "ndjson", &file, &["--changed-since", &since]).await;
    let changed = lines(&file);
    let ids: Vec<&str> = changed.iter().map(|record| record["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["d", "a"], "in start order");
    assert_eq!(changed[1]["version"], 2);
    assert_eq!(changed[1]["sessions"].as_array().unwrap().len(), 2);

    // With a range as well, and over HTTP.
    let query = format!("/export/records?changedSince={since}&fromDateTime=2024-03-01");
    let answer = app.get_with(&query, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(line_ids(&answer.text), ["a"]);
}

/// `GET /export/{what}` answers the bytes the command line writes.
#[tokio::test]
async fn http_streams_what_the_command_line_writes() {
    let database = Arc::new(TestDatabase::new(Backend::Sqlite).await);
    let app = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    ingest_generated(&app).await;
    let dir = tempfile::tempdir().unwrap();
    for (what, format, content_type) in [
        ("records", "ndjson", "application/x-ndjson"),
        ("streams", "parquet", "application/vnd.apache.parquet"),
        ("sessions", "ndjson", "application/x-ndjson"),
        ("pstnCalls", "parquet", "application/vnd.apache.parquet"),
    ] {
        let file = dir.path().join(format!("{what}.{format}"));
        export(
            &database.url,
            what,
            format,
            &file,
            &["--from", "2024-03-01", "--to", "2024-03-12"],
        )
        .await;
        let response = app
            .client
            .get(app.url(&format!(
                "/export/{what}?format={format}&fromDateTime=2024-03-01&toDateTime=2024-03-12"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], content_type);
        let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(disposition.contains(&format!("{what}.{format}")), "{disposition}");
        let body = response.bytes().await.unwrap();
        let written = std::fs::read(&file).unwrap();
        assert!(written.len() > 1000, "{what} as {format}: {} bytes", written.len());
        assert!(
            body[..] == written[..],
            "{what} as {format}: HTTP and the command line differ"
        );
        if format == "parquet" {
            assert_eq!(&written[..4], b"PAR1");
            assert_eq!(&written[written.len() - 4..], b"PAR1");
        }
    }
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_written() {
    let database = Arc::new(TestDatabase::new(Backend::Sqlite).await);
    let app = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let out = file.to_str().unwrap();
    let db = database.url.as_str();
    let refusals: [(&[&str], &str); 5] = [
        (&["--what", "everything"], "everything"),
        (&["--format", "csv"], "csv"),
        (
            &["--from", "2024-03-07", "--to", "2024-03-05"],
            "--to: must be after --from",
        ),
        (&["--from", "yesterday"], "--from: 'yesterday' is not an ISO 8601"),
        (
            &["--what", "pstnCalls", "--changed-since", "2024-03-01"],
            "--changed-since: applies to call records only",
        ),
    ];
    for (extra, expected) in refusals {
        let mut args = vec!["export", "--db", db, "-o", out];
        args.extend_from_slice(extra);
        let (ok, stderr) = run(&args).await;
        assert!(!ok, "{extra:?} was taken");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert!(!file.exists(), "{extra:?} wrote a file");
    }
    let nowhere = dir.path().join("no-such-dir").join("out.ndjson");
    let (ok, stderr) = run(&["export", "--db", db, "-o", nowhere.to_str().unwrap()]).await;
    assert!(!ok && stderr.contains("cannot write there"), "{stderr}");
    // Nothing but the target appears in the directory once an export is done.
    let (ok, stderr) = run(&["export", "--db", db, "-o", out, "--quiet"]).await;
    assert!(ok, "{stderr}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out.ndjson"]);
    // A Parquet row group's pages wait in a temporary file: with nowhere to put it, the
    // export fails and says where, leaving nothing behind.
    let parquet = dir.path().join("out.parquet");
    let output = tokio::process::Command::new(BIN)
        .args(["export", "--db", db, "--what", "streams", "--format", "parquet"])
        .arg("-o")
        .arg(&parquet)
        .env("TMPDIR", dir.path().join("no-such-dir"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("temporary file holding a row group's pages") && stderr.contains("no-such-dir"),
        "{stderr}"
    );
    assert!(!parquet.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    for (query, target) in [
        ("/export/everything", "what"),
        ("/export/records?format=csv", "format"),
        (
            "/export/records?fromDateTime=2024-03-07&toDateTime=2024-03-05",
            "toDateTime",
        ),
        ("/export/records?fromDateTime=soon", "fromDateTime"),
        ("/export/pstnCalls?changedSince=2024-03-01", "changedSince"),
        ("/export/records?limit=5", "limit"),
    ] {
        let error = app.get_with(query, &[]).await.assert_error(400, "BadRequest");
        assert_eq!(error["error"]["target"], target, "{query}");
    }
}

both!(an_export_over_http_holds_the_caller_s_tenant_only);
async fn an_export_over_http_holds_the_caller_s_tenant_only(backend: Backend) {
    const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";
    const TENANT_B: &str = "22222222-2222-2222-2222-222222222222";
    let mut app = TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await;
    let store = app.store.clone();
    let token = |tenant, roles| local_token(store.as_ref(), tenant, roles);
    app.use_token(Some(&token(TENANT_A, &[INGEST]).await));
    app.ingest_ok(&[record("mine", "2024-03-05T10:00:00Z", 1, &["p1"])])
        .await;
    app.use_token(None);
    assert_eq!(app.get_with("/export/records", &[]).await.status, 401);
    app.use_token(Some(&token(TENANT_A, &[INGEST]).await));
    assert_eq!(app.get_with("/export/records", &[]).await.status, 403);
    app.use_token(Some(&token(TENANT_A, &[READ_ALL]).await));
    let mine = app.get_with("/export/records", &[]).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.text.lines().count(), 1);
    assert!(mine.text.contains("\"id\":\"mine\""));
    app.use_token(Some(&token(TENANT_B, &[READ_ALL]).await));
    let theirs = app.get_with("/export/records", &[]).await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.text, "");
}

/// Over HTTP a record past the retention window is left out, as the API hides it; usage-log
/// rows are exported as the log functions serve them, all that are stored.
#[tokio::test]
async fn http_leaves_out_records_past_retention_and_keeps_log_rows() {
    let app = TestApp::spawn_with(Backend::Sqlite, settings_with_retention(30)).await;
    let yesterday = (callrecords::model::DateTimeOffset::now().unix_ticks() / 10_000_000 - 86_400) * 10_000_000;
    let yesterday = callrecords::model::DateTimeOffset::from_unix_ticks(yesterday)
        .unwrap()
        .to_string();
    app.ingest_ok(&[
        record("old", "2024-03-05T10:00:00Z", 1, &["p1"]),
        record("recent", &yesterday, 1, &["p1"]),
    ])
    .await;
    app.ingest_kind_ok("pstnCalls", &[pstn_row("old-row", "2024-03-05T10:00:00Z")])
        .await;
    let records = app.get_with("/export/records", &[]).await;
    assert_eq!(records.status, 200);
    assert_eq!(line_ids(&records.text), ["recent"]);
    let rows = app.get_with("/export/pstnCalls", &[]).await;
    assert_eq!(rows.status, 200);
    assert!(rows.text.contains("\"id\":\"old-row\""), "{}", rows.text);
}
