//! HTTP bodies for the API and the gateway: streaming responses from blocking work (store
//! reads, DAG walks, network fetches) or from async work, request bodies read on blocking
//! threads, ndjson.
//!
//! A producer runs as a task and sends through a [`PieceSender`] ([`async_body`]), or runs on
//! a blocking thread and writes through its [`BodyWriter`] ([`run_blocking`]); either hands
//! pieces to the response over a channel of [`STREAM_QUEUE`] entries, so at most a few MiB
//! are in flight whatever the content size and a slow client slows the producer down. When the
//! client goes away the channel closes, the next write fails with `BrokenPipe`, and the producer
//! stops (fetches check [`PieceSender::token`] between blocks).
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

/// Pieces queued between a producer and the response (each up to [`PIECE`] bytes, or one
/// file chunk of up to 1 MiB).
pub(crate) const STREAM_QUEUE: usize = 8;

/// Bytes [`BodyWriter`] collects before it sends a piece.
pub(crate) const PIECE: usize = 256 * 1024;

/// A producer's end of a streaming body: pieces go to the response through a channel of
/// [`STREAM_QUEUE`] entries. Async producers [`PieceSender::send`]; blocking ones write
/// through [`PieceSender::writer`].
#[derive(Clone)]
pub struct PieceSender {
    tx: mpsc::Sender<Bytes>,
    /// Longest wait for the client to take a piece before giving up on it.
    send_timeout: Option<Duration>,
    /// Cancelled when the response body is dropped (the client went away).
    token: CancellationToken,
}

impl PieceSender {
    /// A sender into `tx`; `token` is the producer's signal that its reader went away.
    pub fn new(tx: mpsc::Sender<Bytes>, send_timeout: Option<Duration>, token: CancellationToken) -> PieceSender {
        PieceSender { tx, send_timeout, token }
    }

    /// Send one piece, waiting (at most the send timeout) for the client to make room.
    pub async fn send(&self, piece: Bytes) -> io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        match self.send_timeout {
            None => self.tx.send(piece).await.map_err(|_| gone()),
            Some(t) => match tokio::time::timeout(t, self.tx.send(piece)).await {
                Ok(sent) => sent.map_err(|_| gone()),
                Err(_) => Err(timed_out(t)),
            },
        }
    }

    /// A token cancelled when the client goes away, for fetches between sends.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// A blocking, buffered `Write` into this body, for producers on a blocking thread. Must
    /// be created inside the runtime.
    pub(crate) fn writer(&self) -> BodyWriter {
        BodyWriter {
            out: self.clone(),
            buf: BytesMut::with_capacity(PIECE),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

/// A blocking producer's end of a streaming body: what it writes is collected into pieces of
/// [`PIECE`] bytes and sent, waiting when the client is behind.
pub(crate) struct BodyWriter {
    out: PieceSender,
    buf: BytesMut,
    runtime: tokio::runtime::Handle,
}

impl BodyWriter {
    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = self.buf.split().freeze();
        self.push(piece)
    }

    fn push(&mut self, piece: Bytes) -> io::Result<()> {
        let runtime = self.runtime.clone();
        runtime.block_on(self.out.send(piece))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the connection")
}

fn timed_out(t: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("the client read nothing for {t:?}; giving up on it"))
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

/// Mark a streamed answer as kubo does (its clients look for `X-Stream-Output`), with
/// `content_type`.
pub(crate) fn stream_output(mut resp: Response, content_type: &'static str) -> Response {
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("X-Stream-Output", HeaderValue::from_static("1"));
    resp
}

/// Run `produce` on a blocking thread over `out`'s [`BodyWriter`], flushing it at the end.
pub(crate) async fn run_blocking<F, E>(out: PieceSender, produce: F) -> Result<(), E>
where
    F: FnOnce(&mut BodyWriter) -> Result<(), E> + Send + 'static,
    E: From<io::Error> + Send + 'static,
{
    let mut w = out.writer();
    tokio::task::spawn_blocking(move || produce(&mut w).and_then(|()| w.flush_buf().map_err(E::from)))
        .await
        .unwrap_or_else(|e| Err(E::from(io::Error::other(format!("a worker thread failed: {e}")))))
}

/// Run `produce` as a task and stream the pieces it sends as a `200` body with no headers
/// set, holding no thread while it waits (a blocking producer runs through [`run_blocking`]).
/// If it fails before its first piece, its error is returned instead; after that, the body is
/// cut short. With `send_timeout`, a client that
/// takes no piece for that long is given up on (it must not hold a request slot forever);
/// dropping the body cancels `token`.
pub(crate) async fn async_body<F, Fut, E>(
    token: CancellationToken,
    produce: F,
    send_timeout: Option<Duration>,
) -> Result<Response, E>
where
    F: FnOnce(PieceSender) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let (done_tx, done_rx) = oneshot::channel::<Result<(), E>>();
    let out = PieceSender::new(tx, send_timeout, token.clone());
    let guard = token.drop_guard();
    let work = produce(out);
    tokio::spawn(async move {
        let result = work.await;
        if let Err(e) = &result {
            tracing::debug!("streamed response failed: {e}");
        }
        // Every sender went with `work`: the reader sees the data end before the result.
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
pub(crate) fn hold_until_body_ends<P: Send + Sync + 'static>(resp: Response, permit: P) -> Response {
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

/// A complete newline-delimited JSON body of lines already serialized (one JSON value and
/// `\n` each), as kubo streams lists.
pub(crate) fn ndjson_lines(out: Vec<u8>) -> Response {
    let mut resp = Body::from(out).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("X-Chunked-Output", HeaderValue::from_static("1"));
    resp
}

/// A request body fed chunk by chunk from the async side, read as `io::Read` on a blocking
/// thread. The channel holds [`BODY_QUEUE`] chunks, so a slow import slows the upload down.
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

/// Request-body chunks queued for a blocking reader.
pub(crate) const BODY_QUEUE: usize = 8;

impl BodyReader {
    /// A reader and the sender the request handler pushes chunks into; dropping the sender
    /// is the end of the data, and an `Err` is the reader's error (a body cut short).
    pub(crate) fn channel() -> (mpsc::Sender<io::Result<Bytes>>, BodyReader) {
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
