//! A real webhook receiver on 127.0.0.1:0: answers validation handshakes and records every
//! notification POST, with switchable misbehaviour for the failure paths, and counts the
//! connections made to it (so a test can tell that nothing reached it at all).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use serde_json::Value;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Healthy,
    /// Answers handshakes with 500.
    RefuseValidation,
    /// Answers handshakes with another token.
    WrongToken,
    /// Never answers handshakes in time.
    SlowValidation,
    /// Answers notification POSTs only after 5 s.
    SlowNotifications,
}

#[derive(Default)]
struct Inner {
    validations: Mutex<Vec<String>>,
    notifications: Mutex<Vec<Value>>,
    /// Notification POSTs still to answer with 503 before answering 202.
    failures_left: AtomicUsize,
    mode: Mutex<Option<Mode>>,
    /// TCP connections accepted, whatever came over them.
    connections: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

async fn handle(State(inner): State<Arc<Inner>>, Query(query): Query<Vec<(String, String)>>, body: String) -> Response {
    let mode = inner.mode.lock().unwrap().unwrap_or(Mode::Healthy);
    if let Some((_, token)) = query.iter().find(|(name, _)| name == "validationToken") {
        inner.validations.lock().unwrap().push(token.clone());
        return match mode {
            Mode::Healthy | Mode::SlowNotifications => {
                ([("content-type", "text/plain")], token.clone()).into_response()
            }
            Mode::RefuseValidation => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Mode::WrongToken => ([("content-type", "text/plain")], "not-the-token").into_response(),
            Mode::SlowValidation => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                token.clone().into_response()
            }
        };
    }
    if mode == Mode::SlowNotifications {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let failing = inner
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Some(items) = parsed["value"].as_array() {
        inner.notifications.lock().unwrap().extend(items.iter().cloned());
    }
    StatusCode::ACCEPTED.into_response()
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().route("/{*path}", post(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counted = inner.clone();
        let listener = listener.tap_io(move |_| {
            counted.connections.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = Some(mode);
    }

    /// The next `n` notification POSTs are answered with 503.
    pub fn fail_next(&self, n: usize) {
        self.inner.failures_left.store(n, Ordering::SeqCst);
    }

    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    pub fn validations(&self) -> usize {
        self.inner.validations.lock().unwrap().len()
    }

    pub fn notifications(&self) -> Vec<Value> {
        self.inner.notifications.lock().unwrap().clone()
    }

    /// Waits (polling, with a deadline) until at least `n` notifications arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        self.wait_for_within(n, Duration::from_secs(30)).await
    }

    /// `wait_for` with a deadline of the caller's choosing.
    pub async fn wait_for_within(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.notifications();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
