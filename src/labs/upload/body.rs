//! The request body as a stream the handler can hand back: [`shared`] splits a body into a
//! stream for the parser and a [`BodyHandle`] that can take the rest away again.
//!
//! Why: when a limit stops an upload, the answer must reach the client. If the server simply
//! closed the socket with unread request bytes in its buffer, the kernel would send a TCP reset,
//! and a client still sending could lose the 413 it was just given. So, after answering,
//! [`BodyHandle::linger`] reads and discards what is already on its way for a short, bounded
//! time (as nginx's lingering close does) — up to [`LINGER_TIME`] in all, [`LINGER_IDLE`]
//! without data, [`LINGER_BYTES`] in all — then drops the body so the connection closes cleanly.
//! A client that stops on the 413 (curl does) is not made to send anything more; one that keeps
//! going is cut off when the bound is reached.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures::{Stream, StreamExt};

pub const LINGER_TIME: Duration = Duration::from_secs(2);
pub const LINGER_IDLE: Duration = Duration::from_millis(500);
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    stream: Option<BodyDataStream>,
    /// Whether the parser ever asked for body bytes (hyper sends `100 Continue` on the first
    /// poll, so a body never polled was never invited).
    polled: bool,
}

type Slot = Arc<Mutex<Inner>>;

/// The body as the parser sees it; ends early once the handle has taken it back.
pub struct SharedBody(Slot);

pub struct BodyHandle(Slot);

pub fn shared(body: Body) -> (SharedBody, BodyHandle) {
    let slot: Slot = Arc::new(Mutex::new(Inner {
        stream: Some(body.into_data_stream()),
        polled: false,
    }));
    (SharedBody(slot.clone()), BodyHandle(slot))
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.polled = true;
        match slot.stream.as_mut() {
            Some(stream) => stream.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl BodyHandle {
    /// Drains what the client already sent, bounded, in the background (see the module docs).
    /// A client that asked `Expect: 100-continue` and was never told to continue has sent
    /// nothing: its body is dropped unread, so no `100 Continue` goes out after the refusal.
    pub fn linger(self, expects_continue: bool) {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let stream = inner.stream.take();
        let invited = inner.polled || !expects_continue;
        drop(inner);
        if let Some(mut stream) = stream.filter(|_| invited) {
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let mut drained = 0usize;
                while drained < LINGER_BYTES {
                    let left = LINGER_TIME.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left.min(LINGER_IDLE), stream.next()).await {
                        Ok(Some(Ok(chunk))) => drained += chunk.len(),
                        _ => break,
                    }
                }
            });
        }
    }
}

/// Did the client send `Expect: 100-continue`?
pub fn expects_continue(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}
