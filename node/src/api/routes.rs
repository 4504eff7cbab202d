//! Every command of [`crate::ops`] as a route: parse the query into the typed request, run
//! it on the node, encode the answer. The three adapters match the three shapes of command.

use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, State};
use axum::http::request::Parts as HttpParts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::Ctx;
use crate::http_body::{blocking_body, ndjson_lines, BodyReader};
use crate::ops::{self, Args, Command, Op, OpError, Part, Reply, UploadOp, WriteOp};

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
pub fn reply<R: Reply>(r: &R) -> Response {
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
    blocking_body(W::CONTENT_TYPE, move |w| {
        let token = w.token();
        req.write(&ctx, w, &token)
    })
    .await
}

/// Each multipart part becomes a [`Part`] whose bytes the operation reads on its blocking
/// thread while this task feeds them in, chunk by chunk, so an upload is never held whole.
async fn run_upload<U: UploadOp>(
    State(ctx): State<Ctx>,
    args: Args,
    body: Result<Multipart, MultipartRejection>,
) -> Result<Response, OpError> {
    let req = U::from_args(&args)?;
    let mut body = body.map_err(|e| OpError::bad(e.body_text()))?;
    let (parts_tx, mut parts_rx) = mpsc::channel::<Result<Part, OpError>>(1);
    let parts = Box::new(std::iter::from_fn(move || parts_rx.blocking_recv()));
    let run = req.run(ops::Ctx::Online(ctx.node.clone()), parts);
    let feed = async move {
        let mut draining: Option<tokio::time::Instant> = None;
        while let Some(mut field) = next_field(&mut body, draining).await? {
            let (tx, reader) = BodyReader::channel();
            if draining.is_none() {
                let name = field.file_name().filter(|n| !n.is_empty()).unwrap_or("standard input");
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
                if parts_tx.send(Ok(Part { name, data: Box::new(reader) })).await.is_err() {
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
                        // The operation must not take a cut part for a whole one.
                        let _ = tx.send(Err(std::io::Error::other(e.body_text()))).await;
                        return Err(OpError::bad(e.body_text()));
                    }
                };
                let Some(chunk) = chunk else { break };
                // A closed channel means the operation stopped; its error says why.
                if draining.is_none() && tx.send(Ok(chunk)).await.is_err() {
                    draining = Some(tokio::time::Instant::now() + DRAIN_ON_FAILURE);
                }
            }
        }
        Ok::<(), OpError>(())
    };
    let (out, fed) = tokio::join!(run, feed);
    // A body that could not be read is the client's fault, whatever the operation made of it.
    fed?;
    Ok(reply(&out?))
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
