//! What anyone who reaches the port can do to it: idle and slow connections, floods past the
//! connection cap, and requests hyper refuses before our code sees them.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// A health check and a read, each answered within `within`.
async fn still_serving(client: &reqwest::Client, base: &str, within: Duration) {
    for path in ["/healthz", "/v1.0/communications/callRecords/$count"] {
        let answer = tokio::time::timeout(within, client.get(format!("{base}{path}")).send())
            .await
            .unwrap_or_else(|_| panic!("{path} was not answered within {within:?}"))
            .unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_eq!(answer.status(), 200, "{path}");
    }
}

/// Reads until the server closes the connection, or `within` passes; the bytes read.
async fn read_until_closed(socket: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(answer),
            Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
            Err(_) => return None,
        }
    }
}

/// 5,000 idle connections and 50 that send their head a byte at a time, against a server
/// started with the usual soft limit of 1,024 open files: health checks and reads still answer.
#[tokio::test]
async fn health_checks_answer_with_5000_idle_and_slow_connections_open() {
    callrecords::connections::raise_open_file_limit();
    let database = TestDatabase::new(Backend::Sqlite).await;
    let (server, base) = spawn_server_with_file_limit(&database.url, &["--request-head-timeout-secs", "30"], 1024);
    let address = host_port(&base);
    let client = reqwest::Client::new();
    still_serving(&client, &base, Duration::from_secs(5)).await;

    let mut idle = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        idle.push(TcpStream::connect(&address).await.expect("connected"));
    }
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut socket = TcpStream::connect(&address).await.unwrap();
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(socket);
    }
    for round in 0..3 {
        for socket in &mut slow {
            let _ = socket.write_all(b"s").await;
        }
        still_serving(&client, &base, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(300 * round)).await;
    }
    eprintln!(
        "peak RSS with {} idle and {} slow connections: {} KiB",
        idle.len(),
        slow.len(),
        server.peak_rss_kib()
    );
}

/// A head sent two bytes a second is cut off at the head timeout, and so is an idle keep-alive
/// connection; neither gets to hold its socket for longer.
#[tokio::test]
async fn slow_heads_and_idle_keep_alive_connections_are_closed() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let (_server, base) = spawn_server_with(&database.url, &["--request-head-timeout-secs", "2"]);
    let address = host_port(&base);

    let started = Instant::now();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut closed = false;
    for pair in head.chunks(2) {
        if slow.write_all(pair).await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0_u8; 64];
        match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => panic!("a slow head was answered"),
            Err(_) => {}
        }
    }
    assert!(
        closed,
        "a head sent at 2 bytes a second was still open after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());

    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(head).await.unwrap();
    let mut buffer = [0_u8; 4096];
    let read = idle.read(&mut buffer).await.unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let rest = read_until_closed(&mut idle, Duration::from_secs(6)).await;
    assert!(rest.is_some(), "an idle keep-alive connection stayed open");
}

/// Past `--max-connections`, a new connection is closed at once; once others close, new ones
/// are served again.
#[tokio::test]
async fn connections_past_the_cap_are_closed_and_the_server_recovers() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let (_server, base) = spawn_server_with(
        &database.url,
        &["--max-connections", "20", "--request-head-timeout-secs", "2"],
    );
    let address = host_port(&base);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = TcpStream::connect(&address).await.unwrap();
    let _ = refused.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_until_closed(&mut refused, Duration::from_secs(1))
        .await
        .expect("the connection past the cap was closed at once");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    still_serving(&reqwest::Client::new(), &base, Duration::from_secs(5)).await;
}

/// The answers hyper writes itself, for requests it cannot parse, carry Graph's error body.
#[tokio::test]
async fn requests_hyper_refuses_get_graph_error_bodies() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let long_url = format!("GET /v1.0/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200).map(|i| format!("X-{i}: y\r\n")).collect::<String>()
    );
    let cases: [(&[u8], u16, &str); 3] = [
        (b"GET /v1\x01.0 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BadRequest"),
        (long_url.as_bytes(), 414, "RequestUriTooLong"),
        (many_headers.as_bytes(), 431, "RequestHeaderFieldsTooLarge"),
    ];
    for (request, status, code) in cases {
        let mut socket = TcpStream::connect(app.addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let answer = read_until_closed(&mut socket, Duration::from_secs(5))
            .await
            .expect("answered and closed");
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(error["error"]["code"], code, "{body}");
        assert!(error["error"]["innerError"]["request-id"].is_string(), "{body}");
    }
    // The connection-level guard does not touch our own answers.
    let answer = app.graph("/communications/callRecords/nope").await;
    answer.assert_error(404, "NotFound");
}
