//! The real binary as a child process: `callrecords serve` on a free port, killed with SIGKILL
//! when dropped, so a failing test leaves no server behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_callrecords");

pub struct ServerProcess(Child);

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The most memory the process has had resident, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// `serve` without authentication or retention on `db_url`; returns the server and its base
/// URL once it reports that it listens.
pub fn spawn_server(db_url: &str) -> (ServerProcess, String) {
    spawn_server_with(db_url, &[])
}

/// `spawn_server` with more arguments.
pub fn spawn_server_with(db_url: &str, extra: &[&str]) -> (ServerProcess, String) {
    start(Command::new(BIN), db_url, extra)
}

/// `spawn_server_with`, started with a soft limit of `open_files` open files, as a shell's
/// default of 1,024 would start it.
pub fn spawn_server_with_file_limit(db_url: &str, extra: &[&str], open_files: u64) -> (ServerProcess, String) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -S -n {open_files} && exec \"$0\" \"$@\""))
        .arg(BIN);
    start(command, db_url, extra)
}

fn start(mut command: Command, db_url: &str, extra: &[&str]) -> (ServerProcess, String) {
    command.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db_url,
        "--retention-days",
        "0",
        "--auth",
        "none",
        // Retries come quickly, so a delivery that failed before the kill is retried soon after.
        "--webhook-retry-base-ms",
        "100",
    ]);
    command.args(extra);
    run_until_listening(command)
}

/// `serve` with only `args` (listen address, store and everything else as the caller gives them).
pub fn spawn_serve(args: &[&str]) -> (ServerProcess, String) {
    let mut command = Command::new(BIN);
    command.arg("serve").args(args);
    run_until_listening(command)
}

fn run_until_listening(mut command: Command) -> (ServerProcess, String) {
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let stderr = child.stderr.take().expect("stderr");
    let server = ServerProcess(child);
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        assert!(Instant::now() < deadline, "server did not report its address");
        let line = lines.next().expect("a line").expect("readable");
        if let Some(rest) = line.strip_prefix("callrecords listening on ") {
            break rest.split("/v1.0").next().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, base)
}

/// `GET /v1.0/communications/callRecords/$count` of a server at `base`.
pub async fn record_count(client: &reqwest::Client, base: &str) -> usize {
    let text = client
        .get(format!("{base}/v1.0/communications/callRecords/$count"))
        .send()
        .await
        .expect("counted")
        .text()
        .await
        .expect("a count");
    text.parse().unwrap_or_else(|_| panic!("not a count: {text}"))
}
