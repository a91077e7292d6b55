//! The SDK conformance suite (`conformance/`: pytest driving the pinned msgraph-sdk, and Node
//! driving `@microsoft/microsoft-graph-client`, against the real binary over HTTPS), once on a
//! fresh SQLite file and once on a fresh PostgreSQL database. It is a Rust test so that
//! `cargo nextest run` is the whole suite; `.config/nextest.toml` runs it alone.

use std::process::Command;

use sqlx::{Connection, Executor, PgConnection};

fn admin_url() -> String {
    std::env::var("CALLRECORDS_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Runs `conformance/run.sh` against the server binary cargo built for this test, on the
/// PostgreSQL database `database` or (with `None`) a SQLite file of the suite's own.
fn run_suite(store: &str, database: Option<&str>) {
    let mut command = Command::new("bash");
    command
        .arg("conformance/run.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CALLRECORDS_BIN", env!("CARGO_BIN_EXE_callrecords"));
    if let Some(url) = database {
        command.env("CALLRECORDS_CONFORMANCE_DB", url);
    }
    let status = command.status().expect("bash starts conformance/run.sh");
    assert!(status.success(), "the conformance suite failed on {store}: {status}");
}

/// A PostgreSQL database that exists for the suite's run, dropped even when the run fails.
struct ScratchDatabase {
    runtime: tokio::runtime::Runtime,
    name: String,
}

impl ScratchDatabase {
    fn create() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let name = format!("callrecords_conformance_{}", std::process::id());
        runtime.block_on(async {
            let mut admin = PgConnection::connect(&admin_url())
                .await
                .expect("PostgreSQL is running");
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .expect("drop a leftover database");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the conformance database");
        });
        Self { runtime, name }
    }

    fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.runtime.block_on(async move {
            if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        });
    }
}

#[test]
fn msgraph_sdk_and_js_client_conform_on_sqlite_and_on_postgresql() {
    run_suite("SQLite", None);
    let database = ScratchDatabase::create();
    run_suite("PostgreSQL", Some(&database.url()));
}
