//! The dashboard in a real browser: `callrecords serve --demo` (a month of generated calls and
//! the offices' building file) on a fresh SQLite file, and headless Chromium driven by
//! `tests/browser/dashboard.test.mjs` (puppeteer-core), which checks that the charts show the
//! numbers the API gives, that filters and drill-down work and that the page logs no errors, and
//! saves screenshots under `target/dashboard-screenshots`. A Rust test so that `cargo nextest
//! run` is the whole suite; `.config/nextest.toml` runs it alone.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --demo` on a port the system picks and waits until it listens; the demo data
/// is in the store by then.
fn serve_demo(db_url: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callrecords"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--db", db_url])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = child.stderr.take().expect("stderr");
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(600);
    let base = loop {
        assert!(Instant::now() < deadline, "the demo server did not report its address");
        let line = lines
            .next()
            .expect("the server printed its address before exiting")
            .expect("readable");
        if let Some(rest) = line.strip_prefix("callrecords listening on ") {
            break rest.split("/v1.0").next().expect("a base URL").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (server, base)
}

#[test]
fn the_dashboard_shows_the_api_s_numbers_in_chromium() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let (_server, base) = serve_demo(&db);
    let screenshots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard-screenshots");
    let status = Command::new("bash")
        .arg("tests/browser/run.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CALLRECORDS_URL", &base)
        .env("CALLRECORDS_SCREENSHOTS", screenshots)
        .status()
        .expect("bash starts tests/browser/run.sh");
    assert!(status.success(), "the browser test failed: {status}");
}
