//! Serving HTTP/1.1 connections to the router, with the limits a service on
//! a shared machine needs:
//!
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`], which is also
//!   how long an idle keep-alive connection stays open;
//! - a connection on which no byte moves either way for [`STALL_TIMEOUT`]
//!   (a stalled body, a client that stopped reading) is dropped;
//! - at most [`connection_limit`] connections at once; extra ones get a JSON
//!   503 and are closed, so they never starve the process of descriptors;
//! - accept errors (EMFILE, ENFILE, …) are logged and retried, never fatal;
//! - at shutdown, connections get [`SHUTDOWN_GRACE`] to finish, then are
//!   dropped, whatever the clients do;
//! - hyper's own answers to unparseable requests (an empty-bodied 400, 414
//!   or 431) are rewritten on the way out to carry a JSON `{"error": …}`.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Time to send a whole request head; also the keep-alive idle timeout.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with a request in progress on which nothing moves this long is dropped.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections may take to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Most connections served at once (fewer under a low open-file limit).
pub const MAX_CONNECTIONS: usize = 1024;
/// Descriptors kept free for the database, the listener and the runtime.
const FD_RESERVE: u64 = 32;
/// Pause after a failed accept (e.g. out of descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// [`MAX_CONNECTIONS`], or the open-file limit less [`FD_RESERVE`] if lower.
pub fn connection_limit() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let room = soft.saturating_sub(FD_RESERVE).max(4);
            usize::try_from(room).map_or(MAX_CONNECTIONS, |r| r.min(MAX_CONNECTIONS))
        }
        Err(_) => MAX_CONNECTIONS,
    }
}

/// Accepts and serves until `shutdown`, then drains for at most
/// [`SHUTDOWN_GRACE`] and drops what is left.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(connection_limit()));
    let mut conns = JoinSet::new();
    let mut last_complaint: Option<Instant> = None;
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            // Shutdown first: a connection waiting in the backlog at that
            // moment is not taken (select! would pick either at random).
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(
                        stream,
                        app.clone(),
                        shutdown.clone(),
                        permit,
                    ));
                }
                Err(_) => refuse(stream),
            },
            Err(e) => {
                // Out of descriptors, or a connection reset before we took
                // it: say so now and then, wait a little, carry on.
                if last_complaint.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!("controller: accepting a connection failed: {e} (retrying)");
                    last_complaint = Some(Instant::now());
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "controller: dropping {} connection(s) still open after {}s",
            conns.len(),
            SHUTDOWN_GRACE.as_secs()
        );
    }
    conns.shutdown().await;
}

/// Over the connection limit: a best-effort JSON 503, then close.
fn refuse(stream: TcpStream) {
    let body = r#"{"error":"too many connections; try again later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    // Non-blocking: a client that is not reading just misses the reason.
    let _ = stream.try_write(answer.as_bytes());
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Activity::default();
    // Both ends go on every request: a write is traced to its process by them.
    let ends = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(peer), Ok(local)) => Some(super::writer::ConnInfo::new(peer, local)),
        _ => None,
    };
    let io = TokioIo::new(Wire::new(stream, activity.clone()));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        if let Some(ends) = &ends {
            req.extensions_mut().insert(ends.clone());
        }
        // The router is always ready and answers every request (errors included).
        tower_service::Service::call(&mut app.clone(), req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            // Ends with an error for a client that vanished or sent garbage
            // (already answered): nothing to do about either.
            _ = conn.as_mut() => return,
            _ = shutdown.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = activity.stalled(STALL_TIMEOUT) => return,
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When a byte last moved on a connection.
#[derive(Clone)]
struct Activity(Arc<AtomicU64>);

impl Default for Activity {
    fn default() -> Self {
        let a = Activity(Arc::new(AtomicU64::new(0)));
        a.touch();
        a
    }
}

impl Activity {
    fn touch(&self) {
        let ms = crate::clock::millis(epoch().elapsed());
        self.0.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        epoch() + Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    /// Resolves once nothing has moved for `limit`.
    async fn stalled(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// The socket as hyper sees it: records activity, and gives hyper's own
/// error answers a JSON body.
struct Wire {
    inner: TcpStream,
    activity: Activity,
    /// A rewritten answer still to be sent, and how much of it is.
    pending: Vec<u8>,
    sent: usize,
}

impl Wire {
    fn new(inner: TcpStream, activity: Activity) -> Wire {
        Wire {
            inner,
            activity,
            pending: Vec::new(),
            sent: 0,
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
            self.activity.touch();
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if let Some(answer) = with_json_body(buf) {
            this.pending = answer;
            // Taken whole; poll_flush and poll_shutdown send it.
            let _ = this.poll_drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if n > 0 {
            this.activity.touch();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// When `buf` is exactly one response head with status >= 400, an empty
/// body and no content type — what hyper writes by itself for a request it
/// could not parse (the router's answers always carry JSON) — the same
/// answer with a JSON body. Response bodies never match: they are JSON or
/// SSE text, which hold no raw CR LF, and chunk framing starts with hex.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if status < 400 {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(&buf[..end + 2]).ok()?;
    let lower = head.to_ascii_lowercase();
    if lower.contains("\r\ncontent-type:") {
        return None;
    }
    let at = lower.find("\r\ncontent-length: 0\r\n")?;
    let message = match status {
        400 => "malformed HTTP request",
        414 => "request URI is too long",
        431 => "request headers are too large or too many",
        _ => "the request could not be read",
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = String::with_capacity(buf.len() + body.len() + 64);
    out.push_str(&head[..at]);
    out.push_str(&format!(
        "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    ));
    out.push_str(&head[at + "\r\ncontent-length: 0\r\n".len()..]);
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_error_heads_get_a_json_body_and_nothing_else_does() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 22:00:00 GMT\r\n\r\n";
        let fixed = String::from_utf8(with_json_body(bare).unwrap()).unwrap();
        let (head, body) = fixed.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{fixed}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\ndate: "));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("headers"));

        for other in [
            &b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"value\":\"HTTP/1.1 400 x\"}",
            b"1a\r\nHTTP/1.1 400 Bad Request\r\n",
        ] {
            assert!(with_json_body(other).is_none(), "{:?}", String::from_utf8_lossy(other));
        }
    }
}
