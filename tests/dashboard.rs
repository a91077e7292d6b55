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

/// Starts `serve --demo` (and `extra`) on a port the system picks and waits until it listens;
/// the demo data is in the store by then.
fn serve_demo(db_url: &str, extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callrecords"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--db", db_url])
        .args(extra)
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
    let (_server, base) = serve_demo(&db, &[]);
    run_browser_test("dashboard.test.mjs", &[("CALLRECORDS_URL", base)]);
}

/// Runs one of `tests/browser`'s test files with `env`.
fn run_browser_test(file: &str, env: &[(&str, String)]) {
    let screenshots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard-screenshots");
    let status = Command::new("bash")
        .args(["tests/browser/run.sh", file])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CALLRECORDS_SCREENSHOTS", screenshots)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .status()
        .expect("bash starts tests/browser/run.sh");
    assert!(status.success(), "the browser test {file} failed: {status}");
}

/// Registers an app of `tenant` with the read role (`callrecords apps add`): its client id and
/// secret.
fn register_app(db_url: &str, tenant: &str) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_callrecords"))
        .args([
            "apps",
            "add",
            "--db",
            db_url,
            "--tenant",
            tenant,
            "--name",
            "dashboard test",
        ])
        .args(["--roles", "CallRecords.Read.All"])
        .output()
        .expect("callrecords apps add runs");
    assert!(output.status.success(), "apps add failed: {output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("apps add printed no {name}: {text}"))
    };
    (field("client_id"), field("client_secret"))
}

#[test]
fn with_authentication_a_person_signs_in_and_sees_only_their_tenant() {
    const DEMO_TENANT: &str = "00000000-0000-0000-0000-000000000000";
    const OTHER_TENANT: &str = "22222222-2222-2222-2222-222222222222";
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let (client_id, client_secret) = register_app(&db, DEMO_TENANT);
    let (other_id, other_secret) = register_app(&db, OTHER_TENANT);
    let (_server, base) = serve_demo(&db, &["--auth", "local"]);
    run_browser_test(
        "signin.test.mjs",
        &[
            ("CALLRECORDS_URL", base),
            ("CALLRECORDS_TENANT", DEMO_TENANT.to_owned()),
            ("CALLRECORDS_CLIENT_ID", client_id),
            ("CALLRECORDS_CLIENT_SECRET", client_secret),
            ("CALLRECORDS_OTHER_TENANT", OTHER_TENANT.to_owned()),
            ("CALLRECORDS_OTHER_CLIENT_ID", other_id),
            ("CALLRECORDS_OTHER_CLIENT_SECRET", other_secret),
        ],
    );
}
