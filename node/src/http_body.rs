//! HTTP bodies for the API and the gateway: streaming responses from blocking work (store
//! reads, DAG walks, network fetches) or from async work, request bodies read on blocking
//! threads, ndjson.
//!
//! A producer runs on a blocking thread and writes through a [`BodyWriter`] ([`stream_body`]),
//! or runs as a task and sends through a [`PieceSender`] ([`async_body`]); either hands
//! pieces to the response over a channel of [`STREAM_QUEUE`] entries, so at most a few MiB
//! are in flight whatever the content size and a slow client slows the producer down. When the
//! client goes away the channel closes, the next write fails with `BrokenPipe`, and the producer
//! stops (fetches check [`BodyWriter::is_closed`] between blocks).
//!
//! Errors before the first byte become a normal error response; after it, the body is cut
//! short (the chunked encoding never terminates), which every HTTP client reports as an error.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::ops::OpError;

/// Pieces queued between a producer and the response (each up to [`PIECE`] bytes, or one
/// file chunk of up to 1 MiB).
pub const STREAM_QUEUE: usize = 8;

/// Bytes [`BodyWriter`] collects before it sends a piece.
pub const PIECE: usize = 256 * 1024;

/// The producer's end of a streaming body.
pub struct BodyWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    /// Cancelled when the response body is dropped (the client went away).
    token: CancellationToken,
    /// Longest wait for the client to take a piece before giving up on it.
    send_timeout: Option<Duration>,
    runtime: tokio::runtime::Handle,
}

impl BodyWriter {
    /// Send `bytes` as one piece (after whatever is buffered), without copying.
    pub fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        self.flush_buf()?;
        self.push(bytes)
    }

    /// Whether the client has gone away (the response was dropped).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// A token cancelled when the client goes away, for fetches between writes.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = self.buf.split().freeze();
        self.push(piece)
    }

    fn push(&mut self, piece: Bytes) -> io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        match self.send_timeout {
            None => self.tx.blocking_send(piece).map_err(|_| gone()),
            Some(t) => match self.runtime.block_on(tokio::time::timeout(t, self.tx.send(piece))) {
                Ok(sent) => sent.map_err(|_| gone()),
                Err(_) => Err(timed_out(t)),
            },
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the connection")
}

fn timed_out(t: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("the client read nothing for {t:?}; giving up on it"))
}

/// An async producer's end of a streaming body.
pub struct PieceSender {
    tx: mpsc::Sender<Bytes>,
    send_timeout: Duration,
}

impl PieceSender {
    /// Send one piece, waiting at most the send timeout for the client to make room.
    pub async fn send(&self, piece: Bytes) -> io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.send_timeout, self.tx.send(piece)).await {
            Ok(sent) => sent.map_err(|_| gone()),
            Err(_) => Err(timed_out(self.send_timeout)),
        }
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()
    }
}

/// Run `produce` on a blocking thread and stream what it writes as the response body, with
/// `content_type`. Fails with `produce`'s error if it fails before writing anything.
pub async fn blocking_body<F>(content_type: &'static str, produce: F) -> Result<Response, OpError>
where
    F: FnOnce(&mut BodyWriter) -> Result<(), OpError> + Send + 'static,
{
    let mut resp = stream_body(produce, None).await?;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // kubo marks streamed output this way; its clients look for it.
    headers.insert("X-Stream-Output", HeaderValue::from_static("1"));
    Ok(resp)
}

/// Run `produce` on a blocking thread and stream what it writes as a `200` body with no
/// headers set. If it fails before its first byte, its error is returned instead; after
/// that, the body is cut short. With `send_timeout`, a client that takes no piece for that
/// long is given up on (a slow reader must not hold a thread forever).
pub async fn stream_body<F, E>(produce: F, send_timeout: Option<Duration>) -> Result<Response, E>
where
    F: FnOnce(&mut BodyWriter) -> Result<(), E> + Send + 'static,
    E: From<io::Error> + std::fmt::Display + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let (done_tx, done_rx) = oneshot::channel::<Result<(), E>>();
    let token = CancellationToken::new();
    let guard = token.clone().drop_guard();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter { tx, buf: BytesMut::with_capacity(PIECE), token, send_timeout, runtime };
        let result = produce(&mut w).and_then(|()| w.flush_buf().map_err(E::from));
        if let Err(e) = &result {
            if !w.is_closed() {
                tracing::debug!("streamed response failed: {e}");
            }
        }
        // Close the data channel before reporting, so the reader sees the data end first.
        drop(w);
        let _ = done_tx.send(result);
    });
    respond(rx, done_rx, guard).await
}

/// Run `produce` as a task and stream the pieces it sends as a `200` body with no headers
/// set, holding no thread while it waits. If it fails before its first piece, its error is
/// returned instead; after that, the body is cut short. A client that takes no piece for
/// `send_timeout` is given up on; dropping the body cancels `token`.
pub async fn async_body<F, Fut, E>(token: CancellationToken, produce: F, send_timeout: Duration) -> Result<Response, E>
where
    F: FnOnce(PieceSender) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: From<io::Error> + std::fmt::Display + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let (done_tx, done_rx) = oneshot::channel::<Result<(), E>>();
    let guard = token.drop_guard();
    let work = produce(PieceSender { tx, send_timeout });
    tokio::spawn(async move {
        let result = work.await;
        if let Err(e) = &result {
            tracing::debug!("streamed response failed: {e}");
        }
        // The sender was dropped with `work`: the reader sees the data end first.
        let _ = done_tx.send(result);
    });
    respond(rx, done_rx, guard).await
}

/// The response for a producer's channel: its first piece (or its error, if it failed before
/// one), then the rest. The guard rides with the body, so dropping it cancels the producer.
async fn respond<E: std::fmt::Display + Send + 'static>(
    mut rx: mpsc::Receiver<Bytes>,
    done_rx: oneshot::Receiver<Result<(), E>>,
    guard: tokio_util::sync::DropGuard,
) -> Result<Response, E> {
    let first = match rx.recv().await {
        Some(b) => b,
        None => {
            return match done_rx.await {
                Ok(Err(e)) => Err(e),
                _ => Ok(Body::empty().into_response()),
            }
        }
    };
    // The guard rides with the stream: dropping the body cancels the producer's token.
    let rest = futures::stream::unfold((Some(rx), Some(done_rx), guard), |(rx, done, guard)| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(b) => Some((Ok(b), (Some(rx), done, guard))),
            None => match done?.await {
                Ok(Err(e)) => Some((Err(io::Error::other(e.to_string())), (None, None, guard))),
                _ => None,
            },
        }
    });
    let body = futures::stream::once(async move { Ok::<Bytes, io::Error>(first) }).chain(rest);
    Ok(Body::from_stream(body).into_response())
}

/// Keep `permit` (a semaphore permit, or any guard) until `resp`'s body has been sent (at
/// once for a complete body), so a concurrency limit counts streamed responses until they end.
pub fn hold_until_body_ends<P: Send + Sync + 'static>(resp: Response, permit: P) -> Response {
    use axum::body::HttpBody;
    if resp.body().size_hint().exact().is_some() {
        // A complete answer: the work is done, the permit can go.
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = body.into_data_stream().map(move |piece| {
        let _held = &permit;
        piece
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// A complete newline-delimited JSON body (one value per line), as kubo streams lists.
pub fn ndjson(values: impl IntoIterator<Item = serde_json::Value>) -> Response {
    let mut out = Vec::new();
    for v in values {
        serde_json::to_writer(&mut out, &v).expect("JSON values serialize");
        out.push(b'\n');
    }
    ndjson_lines(out)
}

/// [`ndjson`] of lines already serialized (one JSON value and `\n` each).
pub fn ndjson_lines(out: Vec<u8>) -> Response {
    let mut resp = Body::from(out).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("X-Chunked-Output", HeaderValue::from_static("1"));
    resp
}

/// Write one ndjson line to a streaming body.
pub fn ndjson_line(w: &mut BodyWriter, v: &serde_json::Value) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).expect("JSON values serialize");
    line.push(b'\n');
    w.send(Bytes::from(line))
}

/// A request body fed chunk by chunk from the async side, read as `io::Read` on a blocking
/// thread. The channel holds [`BODY_QUEUE`] chunks, so a slow import slows the upload down.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

/// Request-body chunks queued for a blocking reader.
pub const BODY_QUEUE: usize = 8;

impl BodyReader {
    /// A reader and the sender the request handler pushes chunks into; dropping the sender
    /// is the end of the data, and an `Err` is the reader's error (a body cut short).
    pub fn channel() -> (mpsc::Sender<io::Result<Bytes>>, BodyReader) {
        let (tx, rx) = mpsc::channel(BODY_QUEUE);
        (tx, BodyReader { rx, cur: Bytes::new() })
    }
}

impl io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}
