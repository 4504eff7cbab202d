//! The RPC API: kubo's `/api/v0/<command>` over HTTP, so the `cairn` CLI and existing IPFS
//! clients (`kubo-rpc-client`, `ipfs --api`) can drive a running node.
//!
//! Every command is one typed operation of [`crate::ops`], which the CLI also runs in-process;
//! this module only routes, guards and encodes.
//!
//! Shape (as kubo): every command is `POST /api/v0/<command>`; arguments are query
//! parameters (`arg=` repeated, then named options); `add`, `block/put` and `dag/import` read
//! a `multipart/form-data` body; answers are JSON with kubo's field names, lists are
//! newline-delimited JSON, `cat`/`get`/`block/get`/`dag/export` stream raw bytes (tar for
//! `get`, CAR for `dag/export`); errors are `{"Message","Code","Type":"error"}` with the status
//! chosen in [`error::status_of`].
//!
//! Commands and where they differ from kubo:
//!
//! | command | answer |
//! |---|---|
//! | `version`, `id` | kubo's fields (`id` of another peer is refused) |
//! | `add` | ndjson `{"Name","Hash","Size"}`, children first; `Size` is file bytes for files |
//! | `cat`, `get`, `ls` | bytes / tar / `{"Objects":[{"Hash","Links"}]}`; `ls` of a file lists itself |
//! | `pin/add\|rm\|ls\|verify` | `{"Pins"}` / `{"Keys"}` or ndjson with `stream=true` / ndjson |
//! | `block/get\|put\|stat\|rm` | bytes / ndjson `{"Key","Size"}` / `{"Key","Size"}` / ndjson `{"Hash","Error"}` |
//! | `dag/import\|export` | ndjson `{"Root"}` then `{"Stats"}` / a CARv1 |
//! | `repo/gc\|stat\|verify` | one summary line (kubo lists keys) / kubo's fields and ours / ndjson |
//! | `swarm/peers\|connect\|disconnect\|addrs\|addrs/local` | kubo's `Peers` / `Strings` / `Addrs` |
//! | `dht/findprovs\|findpeer\|provide` | ndjson routing events (types 4, 2, 4) |
//! | `bitswap/stat\|wantlist`, `stats/bw` | kubo's fields; `stats/bw` counts Bitswap block bytes only |
//! | `shutdown` | empty; the node stops |
//! | `key/gen\|list\|rm\|rename\|import` | `{"Name","Id"}` / `{"Keys"}` / `{"Keys"}` / `{"Was","Now","Id","Overwrite"}` / `{"Name","Id"}`; no `key/export` (private keys stay off HTTP) |
//! | `name/publish\|resolve` | `{"Name","Value","Sequence"}` (+ `Warnings`) / `{"Path"}` |
//!
//! Reads (`cat`, `get`, `ls`, `block/get`, `block/stat`, `dag/export`, `pin/add`) fetch missing
//! blocks from the network unless `offline=true`, and take `/ipns/` paths.
//!
//! Tasks: [`Server::serve`] runs axum on the caller's runtime; each request runs as its own
//! task and does store and network work on blocking threads ([`crate::http_body`]), never on a runtime
//! worker. At most [`MAX_REQUESTS`] requests run at once, counting a streamed response until
//! its body is finished; more wait. Control calls ([`CONTROL`]) have their own
//! [`CONTROL_REQUESTS`] slots, so they answer while uploads or fetches hold every other one;
//! headers and bodies have read deadlines ([`crate::http_serve`]).
//!
//! Security: the server binds loopback by default. Bound anywhere else it refuses to start
//! without `network.api_token`, and a configured token is then required on every request as
//! `Authorization: Bearer <token>`. Requests from a browser page of another origin and requests
//! whose `Host` is not the loopback address (DNS rebinding) are refused, as kubo does, since any
//! web page can otherwise POST to `127.0.0.1:5001`.
//!
//! Module map:
//! - [`error`]: the HTTP status of each [`OpError`].
//! - [`routes`]: every command of [`crate::ops`] as a route, and the upload adapter.
//! - [`webui`]: the dashboard's static files at `/webui`.
//!
//! Besides the commands: `GET /debug/metrics/prometheus` (the node's metrics in the
//! OpenMetrics text format, see [`crate::metrics`]) and `GET /webui/` (the dashboard).
pub mod error;
pub(crate) mod routes;
pub mod webui;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use crate::ops::OpError;

use crate::node::Node;
use crate::repo::config::NetworkConfig;

/// Requests served at once (a streamed body counts until it ends): enough for a client's
/// parallel requests (kubo-rpc-client opens 6), small enough that blocking threads and
/// in-flight buffers stay bounded.
pub(crate) const MAX_REQUESTS: usize = 64;

/// Control calls served at once beside [`MAX_REQUESTS`], from their own pool: `version`,
/// `id`, `shutdown` and the stats answer even while every content slot is held.
pub(crate) const CONTROL_REQUESTS: usize = 16;

/// The commands that use the control pool: cheap, no content, no network waits.
const CONTROL: &[&str] = &[
    "version",
    "id",
    "shutdown",
    "stats/bw",
    "bitswap/stat",
    "bitswap/wantlist",
    "repo/stat",
    "provide/stat",
    "swarm/peers",
    "swarm/addrs",
    "swarm/addrs/local",
];

/// Connections open at once; more wait in the kernel's backlog.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `network.api` is not `IP:PORT`.
    #[error("invalid network.api address {0:?}: expected IP:PORT, like 127.0.0.1:5001")]
    BadAddress(String),
    /// A public address without a token.
    #[error(
        "refusing to serve the RPC API on {0}, which is not a loopback address, without a token: anyone who \
         can reach it could control this node. Set network.api_token in config.toml (clients then send \
         `Authorization: Bearer <token>`), or bind network.api to 127.0.0.1"
    )]
    PublicWithoutToken(SocketAddr),
    /// The port is taken or the address is not ours.
    #[error("cannot listen for the RPC API on {addr} (setting network.api): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// What the API needs from the config.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// `IP:PORT` to bind (port 0: any free port).
    pub addr: String,
    /// Bearer token required on every request when not empty.
    pub token: String,
}

impl From<&NetworkConfig> for ApiOptions {
    fn from(c: &NetworkConfig) -> Self {
        ApiOptions { addr: c.api.clone(), token: c.api_token.clone() }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct Ctx {
    /// The running node.
    pub node: Arc<Node>,
    token: Arc<str>,
    loopback: bool,
    port: u16,
    limit: Arc<Semaphore>,
    control: Arc<Semaphore>,
}

/// A bound, not yet serving, API.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl Server {
    /// Check the options and bind the listener.
    pub async fn bind(node: Arc<Node>, opts: &ApiOptions) -> Result<Server, ServeError> {
        let addr: SocketAddr = opts.addr.trim().parse().map_err(|_| ServeError::BadAddress(opts.addr.clone()))?;
        let loopback = addr.ip().is_loopback();
        if !loopback && opts.token.is_empty() {
            return Err(ServeError::PublicWithoutToken(addr));
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        let ctx = Ctx {
            node,
            token: opts.token.as_str().into(),
            loopback,
            port: addr.port(),
            limit: Arc::new(Semaphore::new(MAX_REQUESTS)),
            control: Arc::new(Semaphore::new(CONTROL_REQUESTS)),
        };
        Ok(Server { listener, addr, router: router(ctx) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address as a multiaddr (`/ip4/127.0.0.1/tcp/5001`), what kubo writes to the
    /// repo's `api` file.
    pub fn multiaddr(&self) -> String {
        tcp_multiaddr(self.addr)
    }

    /// Serve until `shutdown` fires, then let running requests finish for a moment
    /// ([`crate::http_serve::DRAIN_TIMEOUT`]).
    pub async fn serve(self, shutdown: CancellationToken) -> io::Result<()> {
        crate::http_serve::serve_until(self.listener, self.router, MAX_CONNECTIONS, shutdown, "API").await
    }
}

/// `addr` as a TCP multiaddr (`/ip4/127.0.0.1/tcp/5001`), as the daemon prints it.
pub(crate) fn tcp_multiaddr(addr: SocketAddr) -> String {
    let ip = match addr {
        SocketAddr::V4(a) => format!("/ip4/{}", a.ip()),
        SocketAddr::V6(a) => format!("/ip6/{}", a.ip()),
    };
    format!("{ip}/tcp/{}", addr.port())
}

/// Every command and the layers around them (outermost last).
fn router(ctx: Ctx) -> Router {
    webui::routes(routes::commands(Router::new()))
        .route("/debug/metrics/prometheus", axum::routing::get(metrics))
        .fallback(unknown_command)
        .layer(middleware::from_fn_with_state(ctx.clone(), limit))
        // Deadlines on the request body, counted from when the command first reads it.
        .layer(middleware::from_fn(crate::http_serve::body_deadline))
        .layer(middleware::from_fn_with_state(ctx.clone(), guard))
        .with_state(ctx)
}

/// The node's metrics as Prometheus scrapes them.
async fn metrics(State(ctx): State<Ctx>) -> Result<Response, OpError> {
    let text = ctx.node.metrics().render(&ctx.node).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

async fn unknown_command(req: Request) -> OpError {
    let path = req.uri().path();
    match path.strip_prefix("/api/v0/") {
        Some(cmd) => OpError::bad(format!("unknown command {cmd:?}")),
        None => OpError::bad(format!("{path} is not an API path: commands live under /api/v0/")),
    }
}

/// Token, origin and `Host` checks, before anything else runs.
async fn guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    // The dashboard's files carry no state and must load before the page can ask for a token.
    let token = !(req.method() == axum::http::Method::GET && webui::is_static(req.uri().path()));
    if let Err(e) = check_request(&ctx, req.headers(), token) {
        return e.into_response();
    }
    next.run(req).await
}

fn check_request(ctx: &Ctx, headers: &HeaderMap, token: bool) -> Result<(), OpError> {
    if token && !ctx.token.is_empty() {
        let sent =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !sent.is_some_and(|t| constant_time_eq(t.trim().as_bytes(), ctx.token.as_bytes())) {
            return Err(OpError::Unauthorized);
        }
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ctx.loopback && !host.is_empty() && !is_loopback_host(host, ctx.port) {
        return Err(OpError::Forbidden(format!(
            "Host {host:?} is not this API's loopback address; refusing (DNS rebinding protection)"
        )));
    }
    // Any `Origin` but the API's own is refused, `null` included: sandboxed iframes and
    // `file://` pages send `null`, and they must not reach `shutdown` or `add` either.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        let same = !host.is_empty() && origin == format!("http://{host}");
        if !same {
            return Err(OpError::Forbidden(format!(
                "requests from the web origin {origin} are not allowed to use the RPC API"
            )));
        }
    }
    Ok(())
}

/// `127.0.0.1[:port]`, `localhost[:port]` or `[::1][:port]`.
fn is_loopback_host(host: &str, port: u16) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, p)) if !name.ends_with(':') && p.parse::<u16>().is_ok() => {
            if p.parse::<u16>() != Ok(port) {
                return false;
            }
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// At most [`MAX_REQUESTS`] at once, and [`CONTROL_REQUESTS`] control calls beside them; the
/// permit rides along with a streamed body until it ends.
/// A `timeout` option (kubo's global one: `30s`, `2m`) bounds the wait for the answer.
async fn limit(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let timeout = match request_timeout(req.uri().query().unwrap_or("")) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let control = req.uri().path().strip_prefix("/api/v0/").is_some_and(|c| CONTROL.contains(&c));
    let pool = if control { &ctx.control } else { &ctx.limit };
    let Ok(permit) = pool.clone().acquire_owned().await else {
        return OpError::ShuttingDown.into_response();
    };
    let resp = match timeout {
        None => next.run(req).await,
        Some(t) => match tokio::time::timeout(t, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                return OpError::failed(format!(
                    "timed out after {} (the request's timeout)",
                    humantime::format_duration(t)
                ))
                .into_response()
            }
        },
    };
    crate::http_body::hold_until_body_ends(resp, permit)
}

/// The `timeout` query option, if given.
fn request_timeout(query: &str) -> Result<Option<Duration>, OpError> {
    let args = crate::ops::Args::parse(query)?;
    args.get("timeout")
        .map(|t| {
            humantime::parse_duration(t)
                .map_err(|e| OpError::bad(format!("timeout {t:?} is not a duration like 30s or 2m: {e}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:5001", 5001));
        assert!(is_loopback_host("localhost:5001", 5001));
        assert!(is_loopback_host("[::1]:5001", 5001));
        assert!(is_loopback_host("localhost", 5001));
        assert!(!is_loopback_host("evil.example:5001", 5001));
        assert!(!is_loopback_host("127.0.0.1:80", 5001));
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
