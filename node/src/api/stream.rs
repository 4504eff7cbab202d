//! Streaming response bodies from blocking work (store reads, DAG walks, network fetches).
//!
//! A producer runs on a blocking thread and writes through a [`BodyWriter`], which hands
//! pieces to the response over a channel of [`STREAM_QUEUE`] entries, so at most a few MiB
//! are in flight whatever the content size and a slow client slows the producer down. When the
//! client goes away the channel closes, the next write fails with `BrokenPipe`, and the producer
//! stops (fetches check [`BodyWriter::is_closed`] between blocks).
//!
//! Errors before the first byte become a normal error response; after it, the body is cut
//! short (the chunked encoding never terminates), which every HTTP client reports as an error.

use std::io::{self, Write};

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use cairn_protocol::reader::FetchError;
use cairn_protocol::Cid;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;

/// Pieces queued between a producer and the response (each up to [`PIECE`] bytes, or one
/// file chunk of up to 1 MiB).
pub const STREAM_QUEUE: usize = 8;

/// Bytes [`BodyWriter`] collects before it sends a piece.
pub const PIECE: usize = 256 * 1024;

enum Msg {
    Data(Bytes),
    Failed(ApiError),
}

/// The producer's end of a streaming body.
pub struct BodyWriter {
    tx: mpsc::Sender<Msg>,
    buf: BytesMut,
    /// Cancelled when the response body is dropped (the client went away).
    token: CancellationToken,
}

impl BodyWriter {
    /// Send `bytes` as one piece (after whatever is buffered), without copying.
    pub fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        self.flush_buf()?;
        if !bytes.is_empty() {
            self.tx.blocking_send(Msg::Data(bytes)).map_err(|_| gone())?;
        }
        Ok(())
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
        if !self.buf.is_empty() {
            let piece = self.buf.split().freeze();
            self.tx.blocking_send(Msg::Data(piece)).map_err(|_| gone())?;
        }
        Ok(())
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the connection")
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
pub async fn blocking_body<F>(content_type: &'static str, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut BodyWriter) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(STREAM_QUEUE);
    let token = CancellationToken::new();
    let guard = token.clone().drop_guard();
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter { tx, buf: BytesMut::with_capacity(PIECE), token };
        let result = produce(&mut w).and_then(|()| w.flush_buf().map_err(ApiError::from));
        if let Err(e) = result {
            if !w.is_closed() {
                tracing::debug!("streamed response failed: {e}");
            }
            let _ = w.tx.blocking_send(Msg::Failed(e));
        }
    });
    let first = match rx.recv().await {
        Some(Msg::Failed(e)) => return Err(e),
        Some(Msg::Data(b)) => Some(b),
        None => None,
    };
    // The guard rides with the stream: dropping the body cancels the producer's token.
    let rest = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        match rx.recv().await {
            Some(Msg::Data(b)) => Some((Ok(b), (rx, guard))),
            Some(Msg::Failed(e)) => Some((Err(io::Error::other(e.message())), (rx, guard))),
            None => None,
        }
    });
    let body = futures::stream::iter(first.map(Ok::<Bytes, io::Error>)).chain(rest);
    let mut resp = Body::from_stream(body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // kubo marks streamed output this way; its clients look for it.
    headers.insert("X-Stream-Output", HeaderValue::from_static("1"));
    Ok(resp)
}

/// A complete newline-delimited JSON body (one value per line), as kubo streams lists.
pub fn ndjson(values: impl IntoIterator<Item = serde_json::Value>) -> Response {
    let mut out = Vec::new();
    for v in values {
        serde_json::to_writer(&mut out, &v).expect("JSON values serialize");
        out.push(b'\n');
    }
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

/// Run `work` on a blocking thread. If the request goes away first (its future is dropped),
/// the token `work` gets is cancelled; long walks and fetches check it between blocks.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce(&CancellationToken) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let token = CancellationToken::new();
    let guard = token.clone().drop_guard();
    let result = tokio::task::spawn_blocking(move || work(&token))
        .await
        .map_err(|e| ApiError::failed(format!("internal error: a worker thread failed: {e}")))?;
    guard.disarm();
    result
}

/// A request body fed chunk by chunk from the async side, read as `io::Read` on a blocking
/// thread. The channel holds [`BODY_QUEUE`] chunks, so a slow import slows the upload down.
pub struct BodyReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

/// Request-body chunks queued for a blocking reader.
pub const BODY_QUEUE: usize = 8;

impl BodyReader {
    /// A reader and the sender the request handler pushes chunks into; dropping the sender
    /// is the end of the data.
    pub fn channel() -> (mpsc::Sender<Bytes>, BodyReader) {
        let (tx, rx) = mpsc::channel(BODY_QUEUE);
        (tx, BodyReader { rx, cur: Bytes::new() })
    }
}

impl io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// A block source for the DAG reader: the store, then (unless `offline`) the network through
/// the node; every call first checks that the request is still wanted.
pub fn fetcher(ctx: &super::Ctx, offline: bool, token: CancellationToken) -> Fetcher {
    let store = ctx.node.store().clone();
    let mut net: Option<Fetcher> = (!offline).then(|| Box::new(ctx.node.fetcher()) as Fetcher);
    Box::new(move |cid: &Cid| {
        if token.is_cancelled() {
            return Err("the request was cancelled".into());
        }
        match &mut net {
            Some(f) => f(cid),
            None => match store.get(cid) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(format!("block {cid} is not in the local store").into()),
                Err(e) => Err(Box::new(e) as FetchError),
            },
        }
    })
}

/// What [`fetcher`] returns.
pub type Fetcher = Box<dyn FnMut(&Cid) -> Result<Bytes, FetchError> + Send>;
