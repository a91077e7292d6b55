//! The real binary as a child process: `callrecords serve` on a free port, killed with SIGKILL
//! when dropped, so a failing test leaves no server behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_callrecords");

pub struct ServerProcess(Child);

impl ServerProcess {
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
    let mut child = Command::new(BIN)
        .args([
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
        ])
        .args(extra)
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
