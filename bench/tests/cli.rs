//! The benchmark's binary as `callrecords bench` runs it: its help, its refusals, and the
//! baseline server it starts as its own child.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_callrecords-bench");

#[test]
fn the_help_lists_the_flags_and_the_baseline_stays_hidden() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in ["--quick", "--records", "--small", "--db", "--json", "--concurrency"] {
        assert!(help.contains(flag), "{flag} in {help}");
    }
    assert!(help.starts_with("Measure a server over HTTP"), "{help}");
    assert!(!help.contains("baseline"), "{help}");
}

#[test]
fn a_bad_argument_is_one_error_line_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--quick", "--records", "0", "--db"])
        .arg(format!("sqlite://{}", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: --records and --small must be at least 1"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no store was built");
}

#[test]
fn the_baseline_answers_every_get_with_the_bytes_asked_for() {
    let mut child = Command::new(BIN)
        .args(["baseline", "--listen", "127.0.0.1:0", "--bytes", "1000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("callrecords listening on http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the listening line: {line:?}"))
        .to_owned();

    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /v1.0/anything HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();

    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-length: 1000"), "{head}");
    assert_eq!(body.len(), 1000);
}
