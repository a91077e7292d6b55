//! The sockets the API is served on: how many may be open, how long a client may take to send a
//! request head, and Graph's error body on the refusals hyper writes by itself.
//!
//! Every connection takes a slot from `ConnectionLimits::max_connections` before anything else
//! (the TLS handshake included) and gives it back when it closes; past the cap, a new
//! connection is closed at once, so the server's own file descriptors (the store, webhook
//! calls) never run out. A request head must arrive within `request_head_timeout` of the
//! connection opening or of the previous response, so idle keep-alive connections and heads
//! sent a byte at a time close by themselves.
//!
//! hyper answers a request it cannot parse (bytes that are not HTTP: 400, a URL over 64 KiB:
//! 414, too many or too large headers: 431) without calling our service, with an empty body.
//! `GuardedStream` recognises those answers as they are written (a 4xx or 5xx head with
//! `content-length: 0` and no content type, which no answer of ours has) and writes the same
//! status with a Graph error body instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum_server::accept::Accept;
use axum_server::Server;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File descriptors kept back from connections for the store, webhook deliveries, the issuer's
/// key fetches and log files.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The most connections `serve` allows by default, whatever the file limit.
const DEFAULT_MAX_CONNECTIONS: u64 = 16_384;

/// How often an HTTP/2 connection is pinged to learn whether its client is still there.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Requests one HTTP/2 connection may have in flight at once.
const HTTP2_MAX_STREAMS: u32 = 100;

#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub(crate) max_connections: usize,
    pub(crate) request_head_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            request_head_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// Puts these limits on a server, around whatever acceptor it has (plain TCP or TLS).
    /// HTTP/2 (which the SDKs negotiate over TLS) has no head timeout of its own: a connection
    /// must send its first request within the same time, and one whose pings go unanswered is
    /// closed.
    pub(crate) fn apply<A>(&self, server: Server<SocketAddr, A>) -> Server<SocketAddr, GuardedAcceptor<A>> {
        let max_connections = self.max_connections;
        let mut server = server
            .map(|inner| GuardedAcceptor::new(inner, max_connections))
            .first_request_timeout(self.request_head_timeout);
        let builder = server.http_builder();
        builder.http1().header_read_timeout(self.request_head_timeout);
        builder
            .http2()
            .keep_alive_interval(Some(HTTP2_PING_INTERVAL))
            .keep_alive_timeout(self.request_head_timeout)
            .max_concurrent_streams(HTTP2_MAX_STREAMS);
        server
    }
}

/// Raises this process's soft limit on open files to its hard limit and returns the
/// connection cap that leaves room for everything else, at most `DEFAULT_MAX_CONNECTIONS`.
pub fn raise_open_file_limit() -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|error| {
        tracing::warn!(%error, "could not raise the open file limit");
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft)
    });
    let cap = soft
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(16, DEFAULT_MAX_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Wraps another acceptor (plain TCP or TLS): takes a connection slot first, then wraps the
/// stream so its slot is held as long as it is open.
#[derive(Clone)]
pub(crate) struct GuardedAcceptor<A> {
    inner: A,
    slots: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, max_connections: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            refused: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl<A, I, S> Accept<I, S> for GuardedAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = GuardedStream<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // Logged on the first refusal and then every thousandth, not once a connection.
            let refused = self.refused.fetch_add(1, Ordering::Relaxed);
            if refused.is_multiple_of(1_000) {
                tracing::warn!(
                    refused = refused + 1,
                    "connection limit reached: closing new connections"
                );
            }
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other("connection limit reached"))));
        };
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((GuardedStream::new(stream, slot), service))
        })
    }
}

/// A served connection: holds its slot, and replaces hyper's empty error answers.
pub(crate) struct GuardedStream<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
    /// A replacement being written, and how far; the caller's bytes count as written once all
    /// of it is.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<S> GuardedStream<S> {
    fn new(inner: S, slot: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            _slot: slot,
            replacement: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> GuardedStream<S> {
    /// Writes the pending replacement; `Ready(Ok(()))` once all of it is written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Starts replacing `head` if it is one of hyper's own empty error answers.
    fn replace_if_protocol_error(&mut self, head: &[u8]) -> bool {
        match protocol_error_status(head) {
            Some(status) => {
                self.replacement = Some((protocol_error_response(status), 0));
                true
            }
            None => false,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_some() || this.replace_if_protocol_error(buf) {
            return this.poll_replacement(cx).map_ok(|()| buf.len());
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        // hyper writes its error answers as a head alone, in the first slice.
        let head_alone = bufs.first().filter(|first| first.len() == total);
        if this.replacement.is_some() || head_alone.is_some_and(|head| this.replace_if_protocol_error(head)) {
            return this.poll_replacement(cx).map_ok(|()| total);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of a response head that hyper wrote by itself: 4xx or 5xx, `content-length: 0`,
/// no content type, and nothing after the head.
fn protocol_error_status(head: &[u8]) -> Option<StatusCode> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?.parse::<u16>().ok()?;
    let status = StatusCode::from_u16(code).ok()?;
    if !(status.is_client_error() || status.is_server_error()) || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let lowered = head.to_ascii_lowercase();
    let has = |needle: &[u8]| lowered.windows(needle.len()).any(|window| window == needle);
    (has(b"\r\ncontent-length: 0\r\n") && !has(b"\r\ncontent-type:")).then_some(status)
}

/// A whole HTTP/1.1 answer with Graph's error body for `status`; the connection closes after
/// it, as hyper closes it after a request it could not parse.
fn protocol_error_response(status: StatusCode) -> Vec<u8> {
    let (head, body) = crate::api::protocol_error(status);
    let mut response = format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        crate::api::ODATA_JSON,
        body.len()
    )
    .into_bytes();
    for (name, value) in head {
        response.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    response.extend_from_slice(b"\r\n");
    response.extend_from_slice(body.as_bytes());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_own_empty_error_heads_are_recognised() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 17:12:06 GMT\r\n\r\n";
        assert_eq!(protocol_error_status(hyper_414), Some(StatusCode::URI_TOO_LONG));
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(protocol_error_status(hyper_400), Some(StatusCode::BAD_REQUEST));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 120\r\n\r\n";
        assert_eq!(protocol_error_status(ours), None);
        let empty_success = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(protocol_error_status(empty_success), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}";
        assert_eq!(protocol_error_status(with_body), None);
    }

    #[test]
    fn the_replacement_is_a_whole_graph_error_answer() {
        let response = String::from_utf8(protocol_error_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], "RequestHeaderFieldsTooLarge");
        assert!(error["error"]["innerError"]["request-id"].is_string());
    }
}
