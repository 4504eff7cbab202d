//! Every command of [`crate::ops`] as a route: parse the query into the typed request, run
//! it on the node, encode the answer. The three adapters match the three shapes of command.

use std::time::Duration;

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, State};
use axum::http::request::Parts as HttpParts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use cairn_protocol::unixfs::Metadata;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::http_body::{async_body, ndjson_lines, stream_output, BodyReader};
use crate::ops::{self, Args, Command, Op, OpError, Part, PartKind, Reply, UploadOp, WriteOp};

/// How long an upload that failed keeps reading its body, so the client gets the answer
/// instead of a connection reset while it is still sending.
const DRAIN_ON_FAILURE: Duration = Duration::from_secs(10);

impl<S: Send + Sync> FromRequestParts<S> for Args {
    type Rejection = OpError;

    async fn from_request_parts(parts: &mut HttpParts, _state: &S) -> Result<Self, Self::Rejection> {
        Args::from_uri(&parts.uri)
    }
}

fn path<C: Command>() -> String {
    format!("/api/v0/{}", C::NAME)
}

macro_rules! routes {
    (op: [$($o:ty),* $(,)?], write: [$($w:ty),* $(,)?], upload: [$($u:ty),* $(,)?] $(,)?) => {
        /// `router` with a route for every operation.
        pub fn commands(router: Router<Ctx>) -> Router<Ctx> {
            router
                $(.route(&path::<$o>(), post(run_op::<$o>)))*
                $(.route(&path::<$w>(), post(run_write::<$w>)))*
                $(.route(&path::<$u>(), post(run_upload::<$u>).layer(body_limit::<$u>())))*
        }
    };
}
crate::for_every_command!(routes);

fn body_limit<U: UploadOp>() -> DefaultBodyLimit {
    match U::MAX_BODY {
        Some(n) => DefaultBodyLimit::max(n),
        None => DefaultBodyLimit::disable(),
    }
}

/// An answer as kubo sends it: one JSON value, ndjson, or nothing.
pub(super) fn reply<R: Reply>(r: &R) -> Response {
    let body = r.to_body();
    if r.is_lines() {
        return ndjson_lines(body);
    }
    if body.is_empty() {
        return axum::body::Body::empty().into_response();
    }
    let mut resp = axum::body::Body::from(body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn run_op<O: Op>(State(ctx): State<Ctx>, args: Args) -> Result<Response, OpError> {
    let out = O::from_args(&args)?.run(ops::Ctx::Online(ctx.node.clone())).await?;
    Ok(reply(&out))
}

async fn run_write<W: WriteOp>(State(ctx): State<Ctx>, args: Args) -> Result<Response, OpError> {
    let req = W::from_args(&args)?;
    let ctx = ops::Ctx::Online(ctx.node.clone());
    let resp = async_body(CancellationToken::new(), move |out| req.write(ctx, out), None).await?;
    Ok(stream_output(resp, W::CONTENT_TYPE))
}

/// Each multipart part becomes a [`Part`] whose bytes the operation reads on its blocking
/// thread while this task feeds them in, chunk by chunk, so an upload is never held whole.
/// A body that fails (cut off, malformed, too slow) reaches the operation as an error before
/// the parts end, so it never takes a partial upload for a whole one.
async fn run_upload<U: UploadOp>(
    State(ctx): State<Ctx>,
    args: Args,
    body: Result<Multipart, MultipartRejection>,
) -> Result<Response, OpError> {
    let req = U::from_args(&args)?;
    let mut body = body.map_err(|e| OpError::bad(e.body_text()))?;
    let (parts_tx, mut parts_rx) = mpsc::channel::<std::io::Result<Part<'static>>>(1);
    let parts = Box::new(std::iter::from_fn(move || parts_rx.blocking_recv()));
    let run = req.run(ops::Ctx::Online(ctx.node.clone()), parts);
    let feed = async move {
        let fed = feed(&mut body, &parts_tx).await;
        if let Err(e) = &fed {
            let _ = parts_tx.send(Err(std::io::Error::other(e.message()))).await;
        }
        fed
    };
    let (out, fed) = tokio::join!(run, feed);
    // A body that could not be read is the client's fault, whatever the operation made of it.
    fed?;
    Ok(reply(&out?))
}

/// Hand every part of `body` to the operation. Once the operation stops taking them (it
/// failed), read and drop the rest for at most [`DRAIN_ON_FAILURE`].
async fn feed(body: &mut Multipart, parts: &mpsc::Sender<std::io::Result<Part<'static>>>) -> Result<(), OpError> {
    let mut draining: Option<tokio::time::Instant> = None;
    while let Some(mut field) = next_field(body, draining).await? {
        let (tx, reader) = BodyReader::channel();
        // `None` once the operation has dropped this part's reader (it needed no more of
        // it: a directory has no bytes); the rest of the part is then read and dropped.
        let mut tx = Some(tx);
        if draining.is_none() {
            let (name, kind, meta) = describe(&field)?;
            if parts.send(Ok(Part { name, kind, meta, data: Box::new(reader) })).await.is_err() {
                // The operation stopped (it failed): its error is the answer.
                draining = Some(tokio::time::Instant::now() + DRAIN_ON_FAILURE);
            }
        }
        loop {
            let chunk = match draining {
                None => field.chunk().await,
                Some(until) => match tokio::time::timeout_at(until, field.chunk()).await {
                    Ok(c) => c,
                    Err(_) => return Ok(()),
                },
            };
            let chunk: Option<Bytes> = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let text = format!("reading the multipart body: {}", e.body_text());
                    // The operation must not take a cut part for a whole one.
                    if let Some(tx) = &tx {
                        let _ = tx.send(Err(std::io::Error::other(text.clone()))).await;
                    }
                    return Err(OpError::bad(text));
                }
            };
            let Some(chunk) = chunk else { break };
            if draining.is_none() && !chunk.is_empty() {
                if let Some(t) = &tx {
                    if t.send(Ok(chunk)).await.is_err() {
                        tx = None;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A part's decoded path, kind and metadata.
pub(crate) fn describe(field: &Field<'_>) -> Result<(String, PartKind, Metadata), OpError> {
    if field.content_type().is_some_and(|c| c.starts_with("multipart/mixed")) {
        return Err(OpError::bad(
            "nested multipart directories (old go-ipfs clients) are not supported: send one part per entry",
        ));
    }
    let kind = PartKind::from_content_type(field.content_type());
    let raw = field.file_name().unwrap_or("");
    let name = percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map_err(|_| OpError::bad(format!("file name {raw:?} is not UTF-8")))?
        .into_owned();
    let meta = field.name().map(field_metadata).transpose()?.unwrap_or_default();
    Ok((name, kind, meta))
}

/// `file?mode=0755&mtime=SECS&mtime-nsecs=N` (kubo-rpc-client's way of sending metadata).
fn field_metadata(name: &str) -> Result<Metadata, OpError> {
    let Some((_, query)) = name.split_once('?') else { return Ok(Metadata::default()) };
    let args = Args::parse(query)?;
    let mode = args
        .get("mode")
        .map(|m| u32::from_str_radix(m, 8).map_err(|_| OpError::bad(format!("mode {m:?} is not octal"))))
        .transpose()?;
    let mtime = match args.get("mtime") {
        None => None,
        Some(t) => {
            let secs: i64 = t.parse().map_err(|_| OpError::bad(format!("mtime {t:?} is not a number")))?;
            let nsecs = args.u64("mtime-nsecs")?.unwrap_or(0);
            Some((secs, u32::try_from(nsecs).map_err(|_| OpError::bad("mtime-nsecs is too large"))?))
        }
    };
    Ok(Metadata { mode: mode.map(|m| m & 0o7777), mtime })
}

/// The next part, or none once the body ends (or the drain deadline passes).
async fn next_field(
    body: &mut Multipart,
    draining: Option<tokio::time::Instant>,
) -> Result<Option<axum::extract::multipart::Field<'_>>, OpError> {
    let next = match draining {
        None => body.next_field().await,
        Some(until) => match tokio::time::timeout_at(until, body.next_field()).await {
            Ok(n) => n,
            Err(_) => return Ok(None),
        },
    };
    next.map_err(|e| OpError::bad(e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_metadata_as_kubo_rpc_client_sends_it() {
        let m = field_metadata("file-1?mode=0755&mtime=12&mtime-nsecs=3").unwrap();
        assert_eq!((m.mode, m.mtime), (Some(0o755), Some((12, 3))));
        assert_eq!(field_metadata("file").unwrap(), Metadata::default());
        assert!(field_metadata("file?mode=9").is_err());
    }
}
