//! A store that runs out of space, or whose database fails a commit: the request that hits it is
//! refused with a Graph error that names the class of failure, nothing is acknowledged that was
//! not committed, `/healthz` says so while it lasts, and writing works again by itself once the
//! cause is gone, across `kill -9` too.

use std::sync::Arc;
use std::time::Duration;

use callrecords::store::sqlite::SqliteStore;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

use crate::support::*;

/// Ten one-session records a request, so one request is one batch: all or nothing.
const BATCH: usize = 10;

/// What a run of ingests found: the ids acknowledged with 200, and the first refusal.
struct Filled {
    acknowledged: Vec<String>,
    refusal: Value,
}

async fn ingest_batch(client: &reqwest::Client, base: &str, prefix: &str) -> (u16, Value, Vec<String>) {
    let records = minute_records(prefix, BATCH);
    let body: String = records.iter().map(|r| format!("{r}\n")).collect();
    let response = client
        .post(format!("{base}/ingest/callRecords"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("ingest sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    (status, body, ids(&records))
}

/// Ingests batches until one is refused as full (at most `max_batches`), then checks that the
/// next few are refused too: a store that said "full" once must not go on saying "stored".
async fn fill_until_full(client: &reqwest::Client, base: &str, tag: &str, max_batches: usize) -> Filled {
    let mut acknowledged = Vec::new();
    for batch in 0..max_batches {
        let (status, body, ids) = ingest_batch(client, base, &format!("{tag}-{batch}")).await;
        match status {
            200 => {
                assert_eq!(body["stored"], BATCH, "{body}");
                acknowledged.extend(ids);
            }
            507 => {
                for again in 0..3 {
                    let (status, body, _) = ingest_batch(client, base, &format!("{tag}-again-{again}")).await;
                    assert_eq!(status, 507, "a full store must keep refusing: {body}");
                }
                return Filled {
                    acknowledged,
                    refusal: body,
                };
            }
            other => panic!("batch {batch}: unexpected {other}: {body}"),
        }
    }
    panic!("the store never filled up in {max_batches} batches");
}

fn assert_full_refusal(refusal: &Value) {
    let error = &refusal["error"];
    assert_eq!(error["code"], "InsufficientStorage", "{refusal}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("full"), "{message}");
    assert!(message.contains("Nothing of this request was stored"), "{message}");
    assert!(!message.to_lowercase().contains("sqlite"), "internals leak: {message}");
    assert!(error["innerError"]["request-id"].is_string(), "{refusal}");
}

async fn health(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Every acknowledged record reads back whole, and nothing else was stored.
async fn assert_exactly_stored(client: &reqwest::Client, base: &str, acknowledged: &[String]) {
    assert_eq!(record_count(client, base).await, acknowledged.len());
    for id in acknowledged {
        let response = client
            .get(format!(
                "{base}/v1.0/communications/callRecords/{id}?$expand=sessions($expand=segments)"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sessions"].as_array().map(Vec::len), Some(1), "{id}: {body}");
    }
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test]
async fn a_full_sqlite_store_refuses_ingest_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let sqlite = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    sqlite.set_max_size(Some(file_size(&path) + (256 << 10))).await.unwrap();
    let app = TestApp::spawn_with_store(sqlite.clone(), settings_with_retention(0)).await;
    let base = app.url("");

    let filled = fill_until_full(&app.client, &base, "full", 200).await;
    assert_full_refusal(&filled.refusal);
    assert!(!filled.acknowledged.is_empty());
    let (status, body) = health(&app.client, &base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "InsufficientStorage", "{body}");
    // Reads go on while writes are refused, and show exactly what was acknowledged.
    assert_exactly_stored(&app.client, &base, &filled.acknowledged).await;

    // Space is freed: the next ingest is stored, with no restart, and health recovers with it.
    sqlite.set_max_size(None).await.unwrap();
    let (status, body, more) = ingest_batch(&app.client, &base, "after").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], BATCH, "{body}");
    let (status, body) = health(&app.client, &base).await;
    assert_eq!((status, &body["status"]), (200, &Value::from("ok")), "{body}");
    let mut acknowledged = filled.acknowledged;
    acknowledged.extend(more);
    assert_exactly_stored(&app.client, &base, &acknowledged).await;
}

#[tokio::test]
async fn a_full_sqlite_store_loses_nothing_acknowledged_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let db_url = format!("sqlite://{}", path.display());
    let client = reqwest::Client::new();

    let (mut server, base) = spawn_server_with(&db_url, &["--sqlite-max-size", "1280KiB"]);
    let filled = fill_until_full(&client, &base, "full", 300).await;
    assert_full_refusal(&filled.refusal);
    server.kill_9();

    // A restart with room to grow has every acknowledged record and nothing else.
    let (mut server, base) = spawn_server(&db_url);
    assert_exactly_stored(&client, &base, &filled.acknowledged).await;
    let (status, body, more) = ingest_batch(&client, &base, "after").await;
    assert_eq!(status, 200, "{body}");
    server.kill_9();

    let (_server, base) = spawn_server(&db_url);
    let mut acknowledged = filled.acknowledged;
    acknowledged.extend(more);
    assert_exactly_stored(&client, &base, &acknowledged).await;
}

/// A real filesystem that fills up: a tmpfs of a few megabytes (mounting one needs root, as CI
/// and this project's development machines run).
#[tokio::test]
async fn a_full_filesystem_is_refused_and_recovered_without_loss() {
    let mount = TmpfsMount::new("8m");
    let db_url = format!("sqlite://{}", mount.path().join("calls.db").display());
    // Ballast that takes half the space (the rest holds the migrated schema's WAL and some
    // records) and is deleted later to free it.
    let ballast = mount.path().join("ballast");
    std::fs::write(&ballast, vec![0_u8; 4 << 20]).unwrap();
    let client = reqwest::Client::new();

    let (mut server, base) = spawn_server(&db_url);
    let filled = fill_until_full(&client, &base, "disk", 2000).await;
    assert_full_refusal(&filled.refusal);
    let (status, _) = health(&client, &base).await;
    assert_eq!(status, 503);
    assert_exactly_stored(&client, &base, &filled.acknowledged).await;

    std::fs::remove_file(&ballast).unwrap();
    let (status, body, more) = ingest_batch(&client, &base, "after").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = health(&client, &base).await;
    assert_eq!(status, 200);
    server.kill_9();

    let (_server, base) = spawn_server(&db_url);
    let mut acknowledged = filled.acknowledged;
    acknowledged.extend(more);
    assert_exactly_stored(&client, &base, &acknowledged).await;
}

/// A size-limited tmpfs on a fresh directory, unmounted when dropped.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed: this test needs root (CI runs as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// PostgreSQL: a write that fails inside the transaction (here the server's own `disk_full`,
/// raised by a trigger the test installs) is refused as full and stores nothing of its batch; a
/// backend killed in the middle of a transaction is a 503, never an acknowledgement, and the
/// pool does not hand the broken connection out again.
#[tokio::test]
async fn postgres_failed_writes_are_never_acknowledged() {
    let database = Arc::new(TestDatabase::new(Backend::Postgres).await);
    let app = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let base = app.url("");
    let mut admin = PgConnection::connect(&database.url).await.unwrap();
    admin
        .execute(
            "CREATE FUNCTION test_failures() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.id LIKE 'full-%' THEN
                 RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
               END IF;
               IF NEW.id LIKE 'slow-%' THEN
                 PERFORM pg_sleep(30);
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER test_failures BEFORE INSERT ON record FOR EACH ROW EXECUTE FUNCTION test_failures();",
        )
        .await
        .unwrap();

    let (status, body, mut acknowledged) = ingest_batch(&app.client, &base, "ok").await;
    assert_eq!(status, 200, "{body}");

    // Disk full: 507, the batch not stored, health says so until a write succeeds.
    let (status, body, _) = ingest_batch(&app.client, &base, "full").await;
    assert_eq!(status, 507, "{body}");
    assert_full_refusal(&body);
    let (status, _) = health(&app.client, &base).await;
    assert_eq!(status, 503);
    assert_exactly_stored(&app.client, &base, &acknowledged).await;
    let (status, body, more) = ingest_batch(&app.client, &base, "ok2").await;
    assert_eq!(status, 200, "{body}");
    acknowledged.extend(more);
    assert_eq!(health(&app.client, &base).await.0, 200);

    // A backend killed mid-transaction: the ingest in flight is refused as unavailable.
    let pending = tokio::spawn({
        let client = app.client.clone();
        let base = base.clone();
        async move { ingest_batch(&client, &base, "slow").await }
    });
    let killed = wait_and_kill_sleeping_backend(&mut admin).await;
    assert!(killed, "no backend was found sleeping in the trigger");
    let (status, body, _) = pending.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    // Every later write gets a working connection.
    for round in 0..12 {
        let (status, body, more) = ingest_batch(&app.client, &base, &format!("later{round}")).await;
        assert_eq!(status, 200, "round {round}: {body}");
        acknowledged.extend(more);
    }
    assert_exactly_stored(&app.client, &base, &acknowledged).await;
}

async fn wait_and_kill_sleeping_backend(admin: &mut PgConnection) -> bool {
    for _ in 0..200 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'",
        )
        .fetch_all(&mut *admin)
        .await
        .unwrap();
        if killed.iter().any(|k| *k) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
