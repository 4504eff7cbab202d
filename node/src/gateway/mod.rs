//! The HTTP gateway: content by CID for browsers and HTTP clients, read-only, so it may be
//! bound publicly. It follows the IPFS gateway specs:
//!
//! - **path gateway**: `GET|HEAD /ipfs/{cid}[/{path}]`: files streamed with their content type
//!   and a single `Range` (206), directories as `index.html` or a listing, `ETag` = the CID
//!   with `If-None-Match` → 304, immutable caching ([`unixfs`]);
//! - **trustless gateway**: `?format=raw` / `?format=car` (or the matching `Accept`), with
//!   `dag-scope` and `entity-bytes` ([`trustless`]);
//! - **subdomain gateway**: `{cid}.ipfs.{host}` for each configured host (`localhost` by
//!   default), where a site gets its own browser origin and `_redirects` apply ([`request`]).
//!
//! Content not in the store is fetched through Bitswap, each block within
//! `gateway.retrieval_timeout_secs` (else 504). At most `gateway.max_requests` requests run
//! at once, a streamed body counting until it ends; requests waiting on the network run in a
//! separate pool of `gateway.max_retrievals`, and identical missing roots are fetched once
//! ([`admission`]), so content nobody has cannot starve content the node holds. A body holds
//! at most a few MiB in flight, and a client that reads nothing for [`SEND_TIMEOUT`] is
//! dropped; connections get header read deadlines ([`crate::http_serve`]). CIDs on the
//! operator's denylist answer 410 ([`denylist`]).
//!
//! A request reads blocks through one [`Blocks`] source (store, then network with read-ahead),
//! all in async code driving the protocol reader's state machines, so a block on its way over
//! the network holds no thread. Two steps: a plan (resolve the path, choose status and
//! headers; errors here are proper error responses) and the body (a file's range, or a CAR);
//! an error in a body cuts it short. Failures stay typed ([`DagReadError`]) until
//! [`GatewayError::from_dag`] picks their status.
//!
//! Hot content: blocks read and verified once are kept by the store's read cache, and small
//! complete answers for immutable content are kept whole ([`hot`]), so a hot asset costs
//! neither a disk read, nor a hash, nor a path walk.

pub mod admission;
pub mod denylist;
pub mod error;
mod hot;
pub mod mime;
pub mod redirects;
pub mod request;
mod trustless;
pub(crate) mod unixfs;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cairn_protocol::reader::{FileCursor, ReadError, ReadErrorKind};
use cairn_protocol::Cid;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::GatewayError;

use crate::dag_read::{Blocks, DagReadError};
use crate::http_body as stream;
use crate::node::Node;
use crate::repo::config::GatewayConfig;
use crate::repo::Repo;
use admission::{Admission, Slot};
use denylist::Denylist;
use request::{Format, Parts, Query, Route, RouteConfig, Target};

/// Longest a client may take no bytes of a body before the gateway gives up on it.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// `Cache-Control` of `/ipfs/` responses: content under a CID never changes.
const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `network.gateway` is not `IP:PORT`.
    #[error("invalid network.gateway address {0:?}: expected IP:PORT, like 127.0.0.1:8080 (or empty for no gateway)")]
    BadAddress(String),
    /// The port is taken or the address is not ours.
    #[error("cannot listen for the gateway on {addr} (setting network.gateway): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// What the gateway needs from the repo.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// `IP:PORT` to bind (port 0: any free port).
    pub addr: String,
    /// The `[gateway]` settings.
    pub config: GatewayConfig,
    /// The denylist file.
    pub denylist: PathBuf,
}

impl GatewayOptions {
    /// The repo's gateway settings, or `None` when `network.gateway` is empty (no gateway).
    pub fn from_repo(repo: &Repo) -> Option<GatewayOptions> {
        let c = repo.config();
        let addr = c.network.gateway.trim();
        (!addr.is_empty()).then(|| GatewayOptions {
            addr: addr.to_string(),
            config: c.gateway.clone(),
            denylist: repo.path().join(&c.gateway.denylist),
        })
    }
}

/// Shared by every request.
struct Gateway {
    node: Arc<Node>,
    config: GatewayConfig,
    denylist: Denylist,
    admission: Admission,
    hot: hot::HotResponses,
}

impl Gateway {
    fn retrieval_timeout(&self) -> Duration {
        Duration::from_secs(self.config.retrieval_timeout_secs.max(1))
    }

    /// Fetch a missing root block before the request takes a slot (coalesced with identical
    /// requests, in the retrieval pool).
    async fn fetch_root(&self, root: Cid) -> Result<(), GatewayError> {
        let session = self.node.session_with_timeout(self.retrieval_timeout());
        let mut blocks =
            Blocks::new(self.node.store().clone(), Some(session), CancellationToken::new()).only_requested();
        let fetch = async move {
            blocks.get(&root).await.map(|_| ()).map_err(|e| GatewayError::from_block(&e, &format!("/ipfs/{root}")))
        };
        self.admission.fetch_root(root, fetch).await
    }

    /// The store, then (unless `no_fetch`) the network, checking `token` before each block.
    /// Before its first network fetch the request moves to the retrieval pool (`slot`).
    fn blocks(&self, token: CancellationToken, slot: Arc<Slot>) -> Blocks {
        let session = (!self.config.no_fetch).then(|| self.node.session_with_timeout(self.retrieval_timeout()));
        Blocks::new(self.node.store().clone(), session, token).with_gate(slot).only_requested()
    }
}

/// One request, as the planners read it.
pub(crate) struct Req {
    head: bool,
    /// The URL path, as sent (percent-encoded).
    path: String,
    query: Query,
    if_none_match: Option<String>,
    range: Option<String>,
    gateway: Arc<Gateway>,
}

impl Req {
    fn denied(&self, cid: &Cid) -> bool {
        self.gateway.denylist.denies(cid)
    }

    fn query_suffix(&self) -> String {
        self.query.suffix()
    }
}

/// What a planner decided.
pub(crate) enum Plan {
    /// A complete response.
    Done(Response),
    /// Status and headers, then a CAR stream.
    Car { head: Response, body: Box<trustless::CarBody> },
    /// Status and headers, then the cursor's bytes.
    File {
        /// Status and headers.
        head: Response,
        /// The range to send.
        cursor: Box<FileCursor>,
        /// The content path, for errors.
        path: String,
    },
}

/// A bound, not yet serving, gateway.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    max_requests: usize,
}

impl Server {
    /// Bind the listener.
    pub async fn bind(node: Arc<Node>, opts: &GatewayOptions) -> Result<Server, ServeError> {
        let addr: SocketAddr = opts.addr.trim().parse().map_err(|_| ServeError::BadAddress(opts.addr.clone()))?;
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        // A quarter of the block cache's budget: hot small answers whole.
        let hot_bytes = usize::try_from(node.repo().config().store.read_cache_bytes / 4).unwrap_or(usize::MAX);
        let gateway = Arc::new(Gateway {
            hot: hot::HotResponses::new(hot_bytes),
            node,
            config: opts.config.clone(),
            denylist: Denylist::open(opts.denylist.clone()),
            admission: Admission::new(
                opts.config.max_requests,
                admission::retrieval_slots(opts.config.max_requests, opts.config.max_retrievals),
                Duration::from_secs(opts.config.retrieval_timeout_secs.max(1)),
            ),
        });
        let router = Router::new().fallback(handle).with_state(gateway);
        Ok(Server { listener, addr, router, max_requests: opts.config.max_requests })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address as a multiaddr (`/ip4/127.0.0.1/tcp/8080`).
    pub fn multiaddr(&self) -> String {
        crate::api::tcp_multiaddr(self.addr)
    }

    /// Serve until `shutdown` fires, then let running requests finish for a moment.
    pub async fn serve(self, shutdown: CancellationToken) -> io::Result<()> {
        let connections = (self.max_requests * 4).max(1024);
        crate::http_serve::serve_until(self.listener, self.router, connections, shutdown, "gateway").await
    }
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let mut slot = None;
    let budget = gw.node.upload().cloned();
    let node = gw.node.clone();
    let key =
        hot::HotResponses::key(req.method(), req.headers(), req.uri().path_and_query().map_or("", |p| p.as_str()));
    let kept = key.as_deref().and_then(|k| gw.hot.get(k)).filter(|h| !h.roots.iter().any(|c| gw.denylist.denies(c)));
    let mut resp = match kept {
        Some(h) => {
            let mut resp = axum::body::Body::from(h.body).into_response();
            *resp.headers_mut() = h.headers;
            resp
        }
        None => {
            let hot = gw.clone();
            let resp = match serve(gw, req, &mut slot).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            match key {
                Some(k) => keep_if_hot(&hot, k, resp).await,
                None => resp,
            }
        }
    };
    cors(resp.headers_mut());
    node.metrics().gateway_response(resp.status().as_u16());
    if let Some(budget) = budget {
        resp = throttled(resp, budget);
    }
    match slot {
        // The slot rides along with a streamed body until it ends.
        Some(slot) => stream::hold_until_body_ends(resp, slot),
        None => resp,
    }
}

/// Offer a complete, small `200` answer to the hot responses; the answer itself goes on.
async fn keep_if_hot(gw: &Gateway, key: String, resp: Response) -> Response {
    use axum::body::HttpBody;
    let small = resp.body().size_hint().exact().is_some_and(|n| n <= hot::MAX_BODY as u64);
    if resp.status() != StatusCode::OK || !small {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // A complete body: collected at once.
    let Ok(bytes) = axum::body::to_bytes(body, hot::MAX_BODY).await else {
        return GatewayError::internal("a complete answer could not be read back").into_response();
    };
    let roots = parts
        .headers
        .get("x-ipfs-roots")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.split(',').filter_map(|c| cairn_protocol::cids::parse(c).ok()).collect())
        .unwrap_or_default();
    let roots: Vec<Cid> = roots;
    if roots.is_empty() {
        // Without the CIDs of its path the denylist could not be asked on a hit.
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    gw.hot.offer(key, parts.status, hot::Hot { headers: parts.headers.clone(), body: bytes.clone(), roots });
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// `resp` with its body paced by the serving budget, piece by piece.
fn throttled(resp: Response, budget: crate::throttle::Throttle) -> Response {
    let (parts, body) = resp.into_parts();
    let body = futures::StreamExt::then(body.into_data_stream(), move |piece| {
        let budget = budget.clone();
        async move {
            if let Ok(p) = &piece {
                budget.take(p.len()).await;
            }
            piece
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

async fn serve(gw: Arc<Gateway>, req: Request, slot: &mut Option<Arc<Slot>>) -> Result<Response, GatewayError> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS => return Ok(StatusCode::NO_CONTENT.into_response()),
        _ => {
            let mut resp = GatewayError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "the gateway is read-only: use GET or HEAD".into(),
            }
            .into_response();
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return Ok(resp);
        }
    };
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let host = text(header::HOST).or_else(|| req.uri().authority().map(|a| a.to_string()));
    let uri = req.uri();
    let route = request::route(
        &Parts { host: host.as_deref(), path: uri.path(), query: uri.query(), accept: text(header::ACCEPT).as_deref() },
        &RouteConfig {
            subdomain_hosts: &gw.config.subdomain_hosts,
            redirect_to_subdomain: gw.config.redirect_to_subdomain,
        },
    )?;
    let (target, named) = match route {
        Route::Redirect(to) => return Ok(redirect_response(StatusCode::MOVED_PERMANENTLY, &to)),
        Route::Content(t) => {
            // The path as the client asked for it (still percent-encoded); on a subdomain
            // origin, under the CID its host names.
            let asked = match t.subdomain {
                true => format!("/ipfs/{}{}", t.root, uri.path()),
                false => uri.path().to_string(),
            };
            (t, Some(Named::Path(asked)))
        }
        Route::Name(n) => {
            let (path, ttl, record) = resolve_name(&gw, &n).await?;
            if n.record {
                return Ok(record_response(&n, &record, ttl));
            }
            let accept = text(header::ACCEPT);
            let t = request::resolved_target(&path, &n.rest, uri.query(), accept.as_deref(), n.subdomain)?;
            // `rest` is still percent-encoded, as the header wants it.
            (t, Some(Named::Name(n.name, n.rest.clone(), ttl)))
        }
    };
    // A trustless format chosen by `Accept` (not `?format=`): say where that representation
    // lives on its own, and that the answer depends on `Accept`.
    let negotiated = match &target.format {
        Format::Raw if Query::parse(uri.query()).get("format").is_none() => Some("raw"),
        Format::Car(_) if Query::parse(uri.query()).get("format").is_none() => Some("car"),
        _ => None,
    };
    let mut resp = serve_content(&gw, head, uri, &headers_text(headers), target, slot).await?;
    if let Some(format) = negotiated {
        let location = match uri.query().filter(|q| !q.is_empty()) {
            Some(q) => format!("{}?{q}&format={format}", uri.path()),
            None => format!("{}?format={format}", uri.path()),
        };
        let success = resp.status().is_success();
        let h = resp.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        if success {
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::CONTENT_LOCATION, v);
            }
        }
    }
    if let Some(Named::Path(asked)) = &named {
        if resp.headers().contains_key("x-ipfs-path") {
            if let Ok(v) = HeaderValue::from_str(asked) {
                resp.headers_mut().insert("x-ipfs-path", v);
            }
        }
    }
    if let Some(Named::Name(name, rest, ttl)) = named {
        // Content under a name changes when the name is republished: cache it for the record's
        // TTL, not forever.
        let h = resp.headers_mut();
        if h.contains_key(header::CACHE_CONTROL) {
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())) {
                h.insert(header::CACHE_CONTROL, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&format!("/ipns/{name}{rest}")) {
            h.insert("x-ipfs-path", v);
        }
    }
    Ok(resp)
}

/// How the client named what it asked for.
enum Named {
    /// A content path (`/ipfs/…`, or a subdomain origin's path under its CID).
    Path(String),
    /// A name, the path below it and the record's TTL.
    Name(cairn_protocol::names::Name, String, Duration),
}

/// The request headers the content path reads.
struct HeadersText {
    if_none_match: Option<String>,
    range: Option<String>,
}

fn headers_text(headers: &HeaderMap) -> HeadersText {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    HeadersText { if_none_match: text(header::IF_NONE_MATCH), range: text(header::RANGE) }
}

/// Resolve a name through the node's name service (recursively, cached within the records'
/// TTLs): the `/ipfs/` path, how long it may be cached, and the name's own signed record.
async fn resolve_name(gw: &Gateway, n: &request::NameTarget) -> Result<(String, Duration, Vec<u8>), GatewayError> {
    let names = gw.node.names().clone();
    let first = names.resolve(n.name, false).await.map_err(|e| GatewayError::from_name(&e))?;
    let record = first.record.clone();
    let (path, ttl) = crate::names::follow(&format!("/ipns/{}", n.name), true, |name| {
        let names = names.clone();
        let first = first.clone();
        async move {
            if name == first.name {
                return Ok(first);
            }
            names.resolve(name, false).await
        }
    })
    .await
    .map_err(|e| GatewayError::from_name(&e))?;
    Ok((path, ttl, record))
}

/// `?format=ipns-record`: the signed record, verifiable by the client.
fn record_response(n: &request::NameTarget, record: &[u8], ttl: Duration) -> Response {
    let mut resp = (StatusCode::OK, record.to_vec()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.ipfs.ipns-record"));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.ipns-record\"", n.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

/// Serve one content target (from `/ipfs/…`, or a resolved name).
async fn serve_content(
    gw: &Arc<Gateway>,
    head: bool,
    uri: &axum::http::Uri,
    headers: &HeadersText,
    target: Target,
    slot: &mut Option<Arc<Slot>>,
) -> Result<Response, GatewayError> {
    let r = Req {
        head,
        path: uri.path().to_string(),
        query: Query::parse(uri.query()),
        if_none_match: headers.if_none_match.clone(),
        range: headers.range.clone(),
        gateway: gw.clone(),
    };
    // On a blocking thread: the denylist may stat and re-read its file, the store reads sled.
    let (check, root) = (gw.clone(), target.root);
    // A hot root is in the read cache: no trip to the blocking pool.
    let cached = gw.node.store().cached(&root).is_some();
    let missing = !cached
        && tokio::task::spawn_blocking(move || {
            !check.config.no_fetch && !check.denylist.denies(&root) && !check.node.store().has(&root).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
    if missing {
        gw.fetch_root(root).await?;
    }
    let admitted = gw.admission.admit().await?;
    *slot = Some(admitted.clone());
    let token = CancellationToken::new();
    let mut blocks = gw.blocks(token.clone(), admitted);
    let (head, mut resp) = match plan(&r, &target, &mut blocks).await? {
        Plan::Done(resp) => return Ok(resp),
        Plan::Car { head, body } => {
            let car = move |out| trustless::stream_car(*body, blocks, out);
            (head, stream::async_body(token, car, Some(SEND_TIMEOUT)).await?)
        }
        Plan::File { head, mut cursor, path } => {
            let body = move |out: stream::PieceSender| async move {
                while let Some(piece) = blocks.next_piece(&mut cursor).await {
                    out.send(piece.map_err(|e| GatewayError::from_dag(&e, &path))?).await?;
                }
                Ok::<(), GatewayError>(())
            };
            (head, stream::async_body(token, body, Some(SEND_TIMEOUT)).await?)
        }
    };
    let (parts, _) = head.into_parts();
    *resp.status_mut() = parts.status;
    resp.headers_mut().extend(parts.headers);
    Ok(resp)
}

/// The response's plan. The denylist may stat its file (and re-read it when it changed).
async fn plan(req: &Req, t: &Target, blocks: &mut Blocks) -> Result<Plan, GatewayError> {
    if req.denied(&t.root) {
        return Err(GatewayError::denied(&t.root));
    }
    match &t.format {
        Format::UnixFs => unixfs::plan(req, t, blocks).await,
        Format::Raw => trustless::raw(req, t, blocks).await,
        Format::Car(params) => trustless::car(req, t, *params, blocks).await,
    }
}

/// Resolve `segments` below `root` one directory at a time: the CID of every step, the
/// root first and the terminal last (what `X-Ipfs-Roots` lists).
async fn walk_path(root: Cid, segments: &[String], blocks: &mut Blocks) -> Result<Vec<Cid>, DagReadError> {
    let mut roots = vec![root];
    for name in segments {
        let cid = *roots.last().expect("starts with the root");
        let node = blocks.load(&cid).await?;
        let next = blocks
            .find(&cid, &node, name)
            .await?
            .ok_or_else(|| ReadError::from(ReadErrorKind::NotFound { parent: cid, name: name.clone() }))?;
        roots.push(next);
    }
    Ok(roots)
}

/// `ETag`, immutable `Cache-Control`, `X-Ipfs-Path` and `X-Ipfs-Roots` of a content response.
fn common_headers(h: &mut HeaderMap, etag: &str, content_path: &str, roots: &[Cid]) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    let encoded = percent_encoding::utf8_percent_encode(content_path, PATH_HEADER).to_string();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert("x-ipfs-path", v);
    }
    let roots = roots.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    if let Ok(v) = HeaderValue::from_str(&roots) {
        h.insert("x-ipfs-roots", v);
    }
}

/// What a path escapes (in `X-Ipfs-Path`): controls, non-ASCII and characters not allowed in
/// a URL path.
pub(crate) const PATH_HEADER: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// What one path segment escapes (links in listings): [`PATH_HEADER`] and the separators.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &PATH_HEADER.add(b'/').add(b'\\');

/// Whether `If-None-Match` names `etag` (or is `*`). Weak validators compare equal, as RFC
/// 9110 asks for this header.
fn etag_matches(req: &Req, etag: &str) -> bool {
    let Some(inm) = &req.if_none_match else { return false };
    inm.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

fn not_modified(etag: &str, content_path: &str, roots: &[Cid]) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    common_headers(resp.headers_mut(), etag, content_path, roots);
    resp
}

fn redirect_response(status: StatusCode, to: &str) -> Response {
    let mut resp = (status, format!("<a href=\"{to}\">Moved</a>\n")).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// Public content: any page may read it (as kubo's gateway allows).
fn cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Range, User-Agent, X-Requested-With"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, Etag, X-Ipfs-Path, X-Ipfs-Roots"),
    );
}
