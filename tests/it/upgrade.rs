//! A store written by the previous release upgrades in place and answers as it did. The
//! fixtures (`tests/fixtures`) are the answers walk's records and usage-log rows as that release
//! stored them, on SQLite and on PostgreSQL, and the answers that release gave over them; the
//! upgraded store must give the same bytes for every one, also when the conversion was killed
//! part-way and resumed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::answers::answers;
use crate::support::*;

/// The answers the previous release gave over the fixture store.
fn previous_answers() -> BTreeMap<String, String> {
    let file = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/answers-v0.json.zst"
    ))
    .expect("the fixture");
    serde_json::from_slice(&zstd::stream::decode_all(file).expect("the fixture decompresses")).expect("JSON")
}

fn assert_same_answers(upgraded: &BTreeMap<String, String>) {
    crate::answers::assert_same_answers(&previous_answers(), upgraded, "the upgraded store");
}

async fn the_previous_release_s_store_answers_every_resource_as_it_did(backend: Backend) {
    let database = Arc::new(TestDatabase::previous_release(backend).await);
    let app = TestApp::spawn_on(database, settings_with_retention(0)).await;
    assert_same_answers(&answers(&app).await);
}
both!(the_previous_release_s_store_answers_every_resource_as_it_did);

/// The release with wide analytics rows (text endpoint values in every row) upgrades to rows
/// that name endpoint profiles; its records were those of the first fixture, so its answers are
/// too.
async fn a_store_with_wide_analytics_rows_answers_every_resource_as_it_did(backend: Backend) {
    let database = Arc::new(TestDatabase::release_fixture(backend, "v1").await);
    let app = TestApp::spawn_on(database, settings_with_retention(0)).await;
    assert_same_answers(&answers(&app).await);
}
both!(a_store_with_wide_analytics_rows_answers_every_resource_as_it_did);

async fn an_upgrade_killed_part_way_resumes_and_loses_nothing(backend: Backend) {
    let database = TestDatabase::previous_release(backend).await;
    // One record per transaction, so that the kill lands between committed batches of a
    // conversion under way.
    let mut migrate = Command::new(BIN)
        .args(["migrate", "--db", &database.url, "--conversion-batch", "1"])
        .env("RUST_LOG", "callrecords=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callrecords migrate starts");
    let log = BufReader::new(migrate.stderr.take().expect("stderr"));
    let mut batches = 0;
    for line in log.lines().map_while(Result::ok) {
        if line.contains("moved call records to the compact layout") {
            batches += 1;
            if batches == 25 {
                break;
            }
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(migrate.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    migrate.wait().expect("reaped");
    assert_eq!(batches, 25, "the conversion was under way when it was killed");
    // Opening the store finishes the conversion.
    let app = TestApp::spawn_on(Arc::new(database), settings_with_retention(0)).await;
    assert_same_answers(&answers(&app).await);
}
both!(an_upgrade_killed_part_way_resumes_and_loses_nothing);
