//! What an ingest body may cost the server: its size limit holds on every ingest path, and a
//! body that trickles in is cut off without holding up anyone else's ingest.

use std::time::{Duration, Instant};

use callrecords::api::ApiSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn limited(max_ingest_bytes: usize) -> ApiSettings {
    ApiSettings {
        max_ingest_bytes,
        ..settings_with_retention(0)
    }
}

/// NDJSON of `count` records, about `count` × 1.3 KB.
fn ndjson(prefix: &str, count: usize) -> String {
    minute_records(prefix, count).iter().map(|r| format!("{r}\n")).collect()
}

both!(the_body_limit_holds_on_every_ingest_path);
async fn the_body_limit_holds_on_every_ingest_path(backend: Backend) {
    let app = TestApp::spawn_with(backend, limited(64 << 10)).await;
    let body = ndjson("big", 200);
    assert!(body.len() > 64 << 10);
    for path in [
        "/ingest/callRecords",
        "/ingest/pstnCalls",
        "/ingest/directRoutingCalls",
        "/ingest/smsLogs",
    ] {
        // A declared length over the limit is refused before a byte is read.
        let answer = app
            .send(reqwest::Method::POST, path, "application/x-ndjson", body.clone())
            .await;
        let error = answer.assert_error(413, "RequestEntityTooLarge");
        assert!(error["error"]["message"].as_str().unwrap().contains("65536"), "{error}");
        // So is a chunked body with no length, once it passes the limit.
        let stream = futures::stream::iter(
            body.as_bytes()
                .chunks(8 << 10)
                .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
                .collect::<Vec<_>>(),
        );
        let answer = app
            .send(
                reqwest::Method::POST,
                path,
                "application/x-ndjson",
                reqwest::Body::wrap_stream(stream),
            )
            .await;
        answer.assert_error(413, "RequestEntityTooLarge");
    }
    let single = app
        .send(
            reqwest::Method::POST,
            "/ingest/callRecords",
            "application/json",
            "x".repeat(100 << 10),
        )
        .await;
    single.assert_error(413, "RequestEntityTooLarge");
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "0");
    // Under the limit, ingest is as before.
    app.ingest_ok(&minute_records("small", 20)).await;
}

/// A request head that announces a huge body and sends a little is answered at once, not left
/// hanging until the body would have arrived.
#[tokio::test]
async fn a_huge_declared_length_is_refused_at_once() {
    let app = TestApp::spawn_with(Backend::Sqlite, limited(1 << 20)).await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /ingest/callRecords HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 2000000000\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[b'{'; 1024]).await.unwrap();
    let mut answer = vec![0_u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered within seconds")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("RequestEntityTooLarge"), "{text}");
}

/// Opens an ingest whose body arrives one byte a second, as a slow or hostile client sends it.
async fn trickle(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<String> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let head = "POST /ingest/callRecords HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 5000\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    tokio::spawn(async move {
        let mut answer = vec![0_u8; 8192];
        for _ in 0..60 {
            if socket.write_all(b"{").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut answer)).await {
                Ok(Ok(read)) => return String::from_utf8_lossy(&answer[..read]).into_owned(),
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
        String::new()
    })
}

both!(slow_uploads_hold_up_nobody_and_are_cut_off);
async fn slow_uploads_hold_up_nobody_and_are_cut_off(backend: Backend) {
    // Two slots, as `serve` has by default: two trickling uploads used to take both.
    let app = TestApp::spawn_with(
        backend,
        ApiSettings {
            max_concurrent_ingests: 2,
            ..settings_with_retention(0)
        },
    )
    .await;
    let slow = [
        trickle(app.addr).await,
        trickle(app.addr).await,
        trickle(app.addr).await,
    ];
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    app.ingest_ok(&minute_records("quick", 1)).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "a 1-record ingest waited {waited:?} behind slow uploads"
    );

    for upload in slow {
        let answer = tokio::time::timeout(Duration::from_secs(30), upload)
            .await
            .expect("a trickling upload is cut off")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("too slowly"), "{answer}");
    }
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "1");
}
