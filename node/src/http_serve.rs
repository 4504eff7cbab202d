//! The connection loop the RPC API and the gateway share: hyper's HTTP/1 server over the
//! axum router, with the deadlines a slow or hostile client must not get around.
//!
//! - **Headers**: a connection that has not sent a request's whole header within
//!   [`HEADER_TIMEOUT`] is closed (hyper's `header_read_timeout`).
//! - **Bodies** ([`body_deadline`]): a request body that sends nothing for [`BODY_IDLE`], or
//!   averages less than [`BODY_MIN_RATE`] after its first [`BODY_IDLE`], is cut off, so a
//!   client trickling a byte every two seconds cannot hold a request slot.
//! - **Connections**: at most `max_connections` at once; more wait in the kernel's backlog.
//!
//! Shutdown: stop accepting, let running requests finish for up to [`DRAIN_TIMEOUT`], then
//! return (the process is about to exit).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Longest a client may take to send one request's header.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a request body may send nothing; also the grace before [`BODY_MIN_RATE`] applies.
pub(crate) const BODY_IDLE: Duration = Duration::from_secs(20);

/// Slowest average a request body may keep up after its first [`BODY_IDLE`] (bytes per
/// second): far below any real upload, far above a trickle meant to hold a slot.
pub(crate) const BODY_MIN_RATE: u64 = 1024;

/// How long `serve_until` waits for running requests after shutdown is asked before it
/// returns anyway (a `cat` of a huge file must not hold the daemon up).
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `router` on `listener`, at most `max_connections` at once, until `shutdown` fires;
/// then let running requests finish for up to [`DRAIN_TIMEOUT`].
pub(crate) async fn serve_until(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: CancellationToken,
    what: &str,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!("{what}: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _held = permit;
            let _ = conn.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("{what} requests still running {DRAIN_TIMEOUT:?} after shutdown; closing them");
            Ok(())
        }
    }
}

/// Middleware: give the request body the idle and rate deadlines (see the module docs).
pub(crate) async fn body_deadline(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = Body::from_stream(Deadline { inner: body.into_data_stream(), start: None, bytes: 0, idle: None });
    next.run(Request::from_parts(parts, body)).await
}

/// A body stream that fails once it breaks a deadline.
struct Deadline<S> {
    inner: S,
    /// When the handler first read the body: a request that waited for a slot is not blamed
    /// for the wait (its bytes sat in the kernel's buffer meanwhile).
    start: Option<Instant>,
    bytes: u64,
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let start = *this.start.get_or_insert_with(Instant::now);
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.bytes += chunk.len() as u64;
                this.idle = None;
                let elapsed = start.elapsed();
                if elapsed > BODY_IDLE && this.bytes < BODY_MIN_RATE * elapsed.as_secs() {
                    return Poll::Ready(Some(Err(too_slow(format!(
                        "the request body arrived at {} bytes/s, slower than the {BODY_MIN_RATE} bytes/s this server \
                         accepts",
                        this.bytes / elapsed.as_secs().max(1)
                    )))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = this.idle.get_or_insert_with(|| Box::pin(tokio::time::sleep(BODY_IDLE)));
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(too_slow(format!(
                        "the request body sent nothing for {}s",
                        BODY_IDLE.as_secs()
                    ))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

fn too_slow(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, msg)
}
