//! The real binary: crash safety under `kill -9`, `import` and `generate`.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

both!(acknowledged_records_survive_kill_9);
async fn acknowledged_records_survive_kill_9(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let db_url = database.url.clone();
    let (mut server, base) = spawn_server(&db_url);
    let client = reqwest::Client::new();

    // Arrange: batches acknowledged one after another, then one in flight when the kill lands.
    let mut acknowledged = Vec::new();
    for batch in 0..5 {
        let records = minute_records(&format!("b{batch}"), 200);
        let body: String = records.iter().map(|r| format!("{r}\n")).collect();
        let response = client
            .post(format!("{base}/ingest/callRecords"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        acknowledged.extend(ids(&records));
    }
    let in_flight: String = minute_records("late", 2000).iter().map(|r| format!("{r}\n")).collect();
    let pending = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/ingest/callRecords");
        async move {
            client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(in_flight)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Act: SIGKILL, no chance to flush anything.
    server.kill_9();
    let in_flight_acknowledged = matches!(pending.await.unwrap(), Ok(response) if response.status() == 200);

    // Assert: a new server on the same file has every acknowledged record, intact.
    let (mut server, base) = spawn_server(&db_url);
    let stored = record_count(&client, &base).await;
    assert!(stored >= acknowledged.len(), "{stored} < {}", acknowledged.len());
    if in_flight_acknowledged {
        assert_eq!(stored, acknowledged.len() + 2000);
    }
    for id in acknowledged.iter().step_by(97) {
        let response = client
            .get(format!(
                "{base}/v1.0/communications/callRecords/{id}?$expand=sessions($expand=segments)"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"],
            "PT0.016S"
        );
    }
    server.kill_9();
}

#[test]
fn generate_is_deterministic_per_seed() {
    let run = |seed: &str| {
        let output = Command::new(BIN)
            .args([
                "generate",
                "--calls",
                "40",
                "--seed",
                seed,
                "--days",
                "5",
                "--until",
                "2024-06-01T00:00:00Z",
            ])
            .output()
            .expect("generate runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    let first = run("7");
    assert_eq!(first, run("7"), "same seed, same bytes");
    assert_ne!(first, run("8"));
    let lines = first.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(lines >= 40, "{lines} lines for 40 calls");
}

#[test]
fn import_stores_generated_records_and_reports_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calls.ndjson");
    let generated = Command::new(BIN)
        .args([
            "generate",
            "--calls",
            "120",
            "--seed",
            "3",
            "--until",
            "2024-06-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    std::fs::File::create(&file)
        .unwrap()
        .write_all(&generated.stdout)
        .unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("import.db").display());
    let import = |path: &str| {
        Command::new(BIN)
            .args(["import", path, "--db", &db_url, "--quiet"])
            .output()
            .unwrap()
    };
    let first = import(file.to_str().unwrap());
    let summary = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{summary}");
    assert!(summary.contains("120 stored"), "{summary}");
    let again = import(file.to_str().unwrap());
    let summary = String::from_utf8_lossy(&again.stderr);
    assert!(summary.contains("0 stored, 0 replaced"), "{summary}");
    assert!(summary.contains(" ignored"), "{summary}");

    std::fs::write(&file, "{\"id\": 1}\n").unwrap();
    let bad = import(file.to_str().unwrap());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1: id: invalid type: integer `1`, expected a string"));
}

#[test]
fn generated_usage_log_rows_import_with_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("logs.db").display());
    for kind in ["pstnCalls", "directRoutingCalls", "smsLogs"] {
        let file = dir.path().join(format!("{kind}.ndjson"));
        let generated = Command::new(BIN)
            .args([
                "generate",
                "--calls",
                "400",
                "--seed",
                "5",
                "--until",
                "2024-06-01T00:00:00Z",
                "--kind",
                kind,
            ])
            .output()
            .unwrap();
        assert!(generated.status.success());
        let lines = generated
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(lines > 0, "the generator makes {kind} rows");
        std::fs::write(&file, &generated.stdout).unwrap();
        let import = Command::new(BIN)
            .args([
                "import",
                file.to_str().unwrap(),
                "--kind",
                kind,
                "--db",
                &db_url,
                "--quiet",
            ])
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&import.stderr);
        assert!(import.status.success(), "{summary}");
        assert!(summary.contains(&format!("{lines} stored")), "{kind}: {summary}");
    }
}

both!(notifications_survive_kill_9_between_commit_and_delivery);
async fn notifications_survive_kill_9_between_commit_and_delivery(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let (mut server, base) = spawn_server(&database.url);
    let client = reqwest::Client::new();
    let receiver = Receiver::start().await;
    let expiration = callrecords::model::DateTimeOffset::from_offset_date_time(
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let created = client
        .post(format!("{base}/v1.0/subscriptions"))
        .json(&serde_json::json!({
            "changeType": "created", "notificationUrl": receiver.url("/hook"),
            "resource": "/communications/callRecords", "expirationDateTime": expiration.to_string()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The receiver is down while the records are committed, so every notification sits in the outbox.
    receiver.fail_next(usize::MAX);
    let records = minute_records("n", 50);
    let body: String = records.iter().map(|r| format!("{r}\n")).collect();
    let ingested = client
        .post(format!("{base}/ingest/callRecords"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ingested.status(), 200);

    server.kill_9();
    receiver.fail_next(0);
    let (mut server, _) = spawn_server(&database.url);

    // The worker claims the rows as soon as they are committed, so the kill often lands while some
    // are leased to the dead process; the restarted server takes those once the lease runs out.
    let got = receiver
        .wait_for_within(
            50,
            callrecords::notify::NotifySettings::default().lease + Duration::from_secs(30),
        )
        .await;
    let mut delivered: Vec<String> = got
        .iter()
        .map(|n| n["resourceData"]["id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered, ids(&records));
    server.kill_9();
}
