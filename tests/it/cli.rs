//! What an operator sees of the real binary: one-line errors, a short start-up summary, plain
//! text in a pipe, JSON logs for log shippers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::BIN;

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on a fresh SQLite file with local authentication (nothing to warn about), and its
/// stderr lines up to and including the first that `last` accepts.
fn serve_until(extra: &[&str], last: impl Fn(&str) -> bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/store.db", dir.path().display());
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db, "--auth", "local"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("CALLRECORDS_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let done = last(&line);
        lines.push(line);
        if done {
            return lines;
        }
        assert!(lines.len() < 50, "no end in sight: {lines:#?}");
    }
    panic!("the server stopped: {lines:#?}");
}

#[test]
fn a_mistyped_store_path_is_one_error_line_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/nothere/sub/x.db", dir.path().display());
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db, "--auth", "local"])
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains("nothere/sub") && lines[0].contains("does not exist"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("nothere").exists(),
        "no directory made for a mistyped path"
    );
}

#[test]
fn text_logs_in_a_pipe_are_plain_and_the_summary_is_short() {
    let lines = serve_until(&[], |line| line.trim_start().starts_with("retention"));
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "no colour codes outside a terminal: {line:?}");
        assert!(line.len() < 240, "a short line: {line}");
    }
    let start = lines
        .iter()
        .position(|line| line.starts_with("callrecords listening on http://127.0.0.1:"))
        .expect("the summary's first line");
    let summary = &lines[start..];
    let labels: Vec<&str> = summary[1..]
        .iter()
        .map(|line| line.trim_start().split("  ").next().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["start page", "SDK base URLs", "store", "authentication", "retention"]
    );
    assert!(summary[4].contains("local"), "{summary:#?}");
    assert!(
        !lines.iter().any(|line| line.contains("ServeConfig")),
        "no configuration dump"
    );
}

#[test]
fn json_logs_are_one_object_a_line_with_the_summary_as_fields() {
    let lines = serve_until(&["--log-format", "json"], |line| {
        line.contains("callrecords listening on")
    });
    let entries: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for entry in &entries {
        assert!(entry["timestamp"].is_string() && entry["level"].is_string(), "{entry}");
    }
    let listening = entries.last().unwrap();
    assert_eq!(listening["level"], "INFO");
    let fields = &listening["fields"];
    assert!(fields["message"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/communications/callRecords"));
    assert!(fields["start_page"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert!(fields["authentication"].as_str().unwrap().starts_with("local"));
}

/// `callrecords bench` runs the benchmark's own binary, built beside it by the test command,
/// with every argument passed on, help included.
#[test]
fn bench_runs_the_benchmark_binary_with_its_arguments() {
    let help = Command::new(BIN).args(["bench", "--help"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&help.stderr);
    assert!(help.status.success(), "{stderr}");
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("--quick") && text.contains("--records"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(BIN)
        .args(["bench", "--quick", "--small", "0", "--db"])
        .arg(format!("sqlite://{}", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.starts_with("error: --records and --small must be at least 1"),
        "{stderr}"
    );
}
