//! Compression dictionaries: a store trains them from its own records and needs every one it
//! ever wrote with. A damaged or lost dictionary is a clear error when the store is opened,
//! never a wrong answer; the records written with it read again once it is back.

use std::sync::Arc;

use callrecords::generate::{generate, GenerateOptions, Generated};
use sqlx::{Connection, Executor};

use crate::support::*;

/// Runs `statement` on the test's database directly, as an operator's mistake or a bad disk would.
async fn tamper(backend: Backend, url: &str, statement: &str) {
    match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
            connection.execute(statement).await.expect("tamper");
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(url).await.expect("connect");
            connection.execute(statement).await.expect("tamper");
        }
    }
}

async fn refusal(url: &str) -> String {
    match callrecords::store::open(url).await {
        Ok(_) => panic!("the store opened"),
        Err(error) => format!("{error:#}"),
    }
}

async fn a_damaged_or_lost_dictionary_is_a_startup_error(backend: Backend) {
    let database = Arc::new(TestDatabase::new(backend).await);
    let app = TestApp::spawn_on(database.clone(), settings_with_retention(0)).await;
    let options = GenerateOptions {
        calls: 80,
        seed: 5,
        days: 10,
        until: time::macros::datetime!(2024-03-11 00:00 UTC),
    };
    let mut records = Vec::new();
    generate(&options, |item| {
        if let Generated::CallRecord(record) = item {
            records.push(record);
        }
    });
    for chunk in records.chunks(20) {
        app.ingest_ok(chunk).await;
    }
    let probe = format!(
        "/communications/callRecords/{}?$expand=sessions",
        records[0]["id"].as_str().unwrap()
    );
    let before = app.graph(&probe).await;
    assert_eq!(before.status, 200);
    let before = before.text.replace(&app.url(""), "BASE");
    drop(app);

    let (zeroed, saved, restored) = match backend {
        Backend::Sqlite => (
            "UPDATE dictionary SET body = zeroblob(length(body)) WHERE id = 1",
            "CREATE TABLE saved AS SELECT * FROM dictionary WHERE id = 1",
            "UPDATE dictionary SET body = (SELECT body FROM saved) WHERE id = 1",
        ),
        Backend::Postgres => (
            "UPDATE dictionary SET body = decode(repeat('00', length(body)), 'hex') WHERE id = 1",
            "CREATE TABLE saved AS SELECT * FROM dictionary WHERE id = 1",
            "UPDATE dictionary SET body = (SELECT body FROM saved) WHERE id = 1",
        ),
    };
    tamper(backend, &database.url, saved).await;
    tamper(backend, &database.url, zeroed).await;
    let error = refusal(&database.url).await;
    assert!(error.contains("dictionary 1 of the store is corrupt"), "{error}");
    assert!(error.contains("restore the table from a backup"), "{error}");

    // The newest lost leaves no gap among the others; the store still knows it had it.
    tamper(backend, &database.url, restored).await;
    tamper(backend, &database.url, "DELETE FROM dictionary WHERE id = 1").await;
    let error = refusal(&database.url).await;
    assert!(error.contains("dictionary 1 is missing"), "{error}");

    // Restored from the backup, the store opens and answers as before.
    tamper(backend, &database.url, "INSERT INTO dictionary SELECT * FROM saved").await;
    let app = TestApp::spawn_on(database, settings_with_retention(0)).await;
    let after = app.graph(&probe).await;
    assert_eq!(after.status, 200);
    assert!(
        after.text.replace(&app.url(""), "BASE") == before,
        "the record reads as before"
    );
}
both!(a_damaged_or_lost_dictionary_is_a_startup_error);
