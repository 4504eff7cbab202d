//! What a gateway request asks for, read from its `Host`, path, query and `Accept` header:
//! which content (root CID and path), in which response format, on which kind of origin.
//! Pure parsing; nothing here touches the store.

use std::borrow::Cow;

use cairn_protocol::names::Name;
use cairn_protocol::reader::split_path;
use cairn_protocol::{cids, Cid};

use super::GatewayError;
use crate::ops::Args;

/// The response format asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Deserialised UnixFS: files as their bytes, directories as `index.html` or a listing.
    UnixFs,
    /// One block, verbatim (`application/vnd.ipld.raw`).
    Raw,
    /// A CARv1 of the blocks that prove the path and the chosen part of the DAG under it.
    Car(CarParams),
}

/// Which blocks a CAR response holds below the path's terminal node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DagScope {
    /// The terminal block only.
    Block,
    /// What it takes to read the terminal entity: a whole file (or the bytes of
    /// `entity-bytes`), a directory's node and its HAMT shards, but not its entries.
    Entity,
    /// Every block reachable from the terminal.
    All,
}

/// `entity-bytes=from:to`: inclusive byte offsets, negative counting from the end, `to` may
/// be `*` (the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityBytes {
    /// First byte; negative: that many bytes before the end.
    pub from: i64,
    /// Last byte (inclusive); negative: from the end; `None`: the end.
    pub to: Option<i64>,
}

impl EntityBytes {
    /// The `[start, end)` byte range this selects of a file of `size` bytes (empty when it
    /// selects nothing).
    pub fn resolve(&self, size: u64) -> (u64, u64) {
        let at = |v: i64| if v >= 0 { (v as u64).min(size) } else { size.saturating_sub(v.unsigned_abs()) };
        let start = at(self.from);
        let end = match self.to {
            None => size,
            Some(t) if t >= 0 => (t as u64).saturating_add(1).min(size),
            Some(t) => size.saturating_sub(t.unsigned_abs()).saturating_add(1).min(size),
        };
        (start, end.max(start))
    }
}

/// Parameters of a CAR response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarParams {
    /// Which blocks under the terminal node.
    pub scope: DagScope,
    /// A byte range of the terminal file (only with `dag-scope=entity`).
    pub entity_bytes: Option<EntityBytes>,
}

/// A parsed gateway request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The content root.
    pub root: Cid,
    /// Path segments below it, decoded and checked (no `.`, `..` or empty names).
    pub segments: Vec<String>,
    /// Whether the URL path ended in `/` (directories without it are redirected to it).
    pub trailing_slash: bool,
    /// The response format.
    pub format: Format,
    /// Served on the CID's own origin (`{cid}.ipfs.{host}`), where `_redirects` apply.
    pub subdomain: bool,
}

impl Target {
    /// The content path as the gateway names it, `/ipfs/{root}/{segments…}`.
    pub(crate) fn content_path(&self) -> String {
        let mut p = format!("/ipfs/{}", self.root);
        for s in &self.segments {
            p.push('/');
            p.push_str(s);
        }
        p
    }
}

/// A request under an IPNS name, before the name is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameTarget {
    /// The name.
    pub name: Name,
    /// The URL path below the name, still percent-encoded (empty, or starting with `/`).
    pub rest: String,
    /// The signed record itself is asked for (`?format=ipns-record`).
    pub record: bool,
    /// Served on the name's own origin (`{name}.ipns.{host}`).
    pub subdomain: bool,
}

/// What to do with a request, before any content is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Serve content.
    Content(Target),
    /// Serve what a name points at (or its record).
    Name(NameTarget),
    /// Send the client elsewhere (301): a subdomain origin, or a canonical CID form.
    Redirect(String),
}

/// The request parts the gateway reads.
pub struct Parts<'a> {
    /// The `Host` header (with port), if any.
    pub host: Option<&'a str>,
    /// The URL path, still percent-encoded.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
}

/// Settings that change how requests are routed.
pub struct RouteConfig<'a> {
    /// Hosts that serve `{cid}.ipfs.{host}`.
    pub subdomain_hosts: &'a [String],
    /// Redirect `/ipfs/…` on those hosts to the subdomain origin.
    pub redirect_to_subdomain: bool,
}

/// Decide what `parts` asks for.
pub fn route(parts: &Parts<'_>, cfg: &RouteConfig<'_>) -> Result<Route, GatewayError> {
    let query = Query::parse(parts.query);
    let host = parts.host.unwrap_or("");
    let host_name = strip_port(host);
    if let Some((label, namespace, gateway_host)) = subdomain_of(host_name, cfg.subdomain_hosts) {
        if namespace == "ipns" {
            let name: Name = label.parse().map_err(|e: cairn_protocol::names::NameError| {
                GatewayError::bad_request(format!("{e} (DNSLink names are not supported)"))
            })?;
            let canonical = name.to_string();
            if canonical != label {
                // A peer ID or another base: DNS labels are case-insensitive, so base36 it is.
                let port = &host[host_name.len()..];
                return Ok(Route::Redirect(format!(
                    "http://{canonical}.ipns.{gateway_host}{port}{}{}",
                    parts.path,
                    query.suffix()
                )));
            }
            return name_route(name, parts.path, &query, parts.accept, true);
        }
        let root = parse_cid(label)?;
        let canonical = cids::to_v1(&root).to_string();
        if canonical != label {
            // CIDv0 or another base: DNS labels are case-insensitive, so only base32 CIDv1 works.
            let port = &host[host_name.len()..];
            return Ok(Route::Redirect(format!(
                "http://{canonical}.ipfs.{gateway_host}{port}{}{}",
                parts.path,
                query.suffix()
            )));
        }
        return content(root, parts.path, &query, parts.accept, true);
    }
    if let Some(to) = uri_router(parts.path, &query)? {
        return Ok(Route::Redirect(to));
    }
    let Some(after) = parts.path.strip_prefix("/ipfs/") else {
        if let Some(after) = parts.path.strip_prefix("/ipns/") {
            let (label, rest) = after.split_once('/').map_or((after, ""), |(l, _)| (l, &after[l.len()..]));
            let label = decode_path(label)?;
            let name: Name = label.parse().map_err(|e: cairn_protocol::names::NameError| {
                GatewayError::bad_request(format!("{e} (DNSLink names are not supported)"))
            })?;
            if cfg.redirect_to_subdomain && cfg.subdomain_hosts.iter().any(|h| h.eq_ignore_ascii_case(host_name)) {
                // The name's own origin, as for CIDs (its base36 form fits a DNS label).
                return Ok(Route::Redirect(format!("http://{name}.ipns.{host}{rest}{}", query.suffix())));
            }
            return name_route(name, rest, &query, parts.accept, false);
        }
        let decoded = decode_path(parts.path)?;
        return Err(GatewayError::not_found(format!("{decoded} is not a content path: ask for /ipfs/{{cid}}[/path]")));
    };
    let (cid_text, rest) = match after.split_once('/') {
        Some((c, r)) => (c, Some(r)),
        None => (after, None),
    };
    let root = parse_cid(&decode_path(cid_text)?)?;
    if cfg.redirect_to_subdomain && cfg.subdomain_hosts.iter().any(|h| h.eq_ignore_ascii_case(host_name)) {
        return Ok(Route::Redirect(format!(
            "http://{}.ipfs.{host}/{}{}",
            cids::to_v1(&root),
            rest.unwrap_or(""),
            query.suffix()
        )));
    }
    let path = rest.map(|r| format!("/{r}")).unwrap_or_default();
    content(root, &path, &query, parts.accept, false)
}

/// The URI router (path gateway spec, `uri` request query parameter): `/ipfs/?uri=ipfs://{cid}/…`
/// and `/ipns/?uri=ipns://{name}/…` (what a browser's `web+ipfs` protocol handler sends) are
/// redirected to the content path. `None` for any other request.
fn uri_router(path: &str, query: &Query) -> Result<Option<String>, GatewayError> {
    if !matches!(path, "/ipfs/" | "/ipns/" | "/ipfs" | "/ipns") {
        return Ok(None);
    }
    let Some(uri) = query.get("uri") else { return Ok(None) };
    let bad = || {
        GatewayError::bad_request(format!(
            "uri={uri:?} is not an ipfs:// or ipns:// URL: expected ipfs://{{cid}}[/path] or ipns://{{name}}[/path]"
        ))
    };
    let uri = uri.strip_prefix("web+").unwrap_or(uri);
    let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
    let namespace = match scheme.to_ascii_lowercase().as_str() {
        "ipfs" => "ipfs",
        "ipns" => "ipns",
        _ => return Err(bad()),
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad());
    }
    // The path part is kept as given; characters a URL path cannot hold are escaped.
    let rest = percent_encoding::utf8_percent_encode(rest, super::PATH_HEADER).to_string();
    Ok(Some(format!("/{namespace}/{rest}")))
}

/// A request under a name: the record itself (`?format=ipns-record` or its `Accept` type,
/// only for the name's root), or what the name points at.
fn name_route(
    name: Name,
    rest: &str,
    query: &Query,
    accept: Option<&str>,
    subdomain: bool,
) -> Result<Route, GatewayError> {
    let record = match query.get("format") {
        Some("ipns-record") => true,
        Some(_) => false,
        None => accept.is_some_and(|a| {
            a.split(',').any(|item| item.split(';').next().map(str::trim) == Some("application/vnd.ipfs.ipns-record"))
        }),
    };
    if record && !rest.trim_matches('/').is_empty() {
        return Err(GatewayError::bad_request("an IPNS record is served for /ipns/{name} only, without a path"));
    }
    Ok(Route::Name(NameTarget { name, rest: rest.to_string(), record, subdomain }))
}

/// The content a resolved name leads to: `path` (`/ipfs/{cid}[/…]`, decoded, from the
/// record) followed by the request's own `rest` (still encoded), in the request's format.
pub(crate) fn resolved_target(
    path: &str,
    rest: &str,
    query: Option<&str>,
    accept: Option<&str>,
    subdomain: bool,
) -> Result<Target, GatewayError> {
    let Some(after) = path.strip_prefix("/ipfs/") else {
        return Err(GatewayError::bad_gateway(format!("the name points at {path:?}, which is not an /ipfs/ path")));
    };
    let (cid_text, sub) = after.split_once('/').unwrap_or((after, ""));
    let root = parse_cid(cid_text)
        .map_err(|_| GatewayError::bad_gateway(format!("the name points at {path:?}: not a CID")))?;
    let mut encoded = String::new();
    for seg in sub.split('/').filter(|s| !s.is_empty()) {
        encoded.push('/');
        encoded.extend(percent_encoding::utf8_percent_encode(seg, super::PATH_SEGMENT));
    }
    encoded.push_str(rest);
    match content(root, &encoded, &Query::parse(query), accept, subdomain)? {
        Route::Content(t) => Ok(t),
        _ => Err(GatewayError::internal("a resolved name routed to something other than content")),
    }
}

fn content(
    root: Cid,
    encoded_path: &str,
    query: &Query,
    accept: Option<&str>,
    subdomain: bool,
) -> Result<Route, GatewayError> {
    let path = decode_path(encoded_path)?;
    let segments = split_path(&path).map_err(|_| {
        let why = match path.contains('\0') {
            true => "a NUL character is not allowed in a path",
            false => "`.` and `..` segments are not allowed",
        };
        GatewayError::bad_request(format!("invalid path {path:?}: {why}"))
    })?;
    let trailing_slash = path.ends_with('/');
    let format = format_of(query, accept)?;
    Ok(Route::Content(Target { root, segments, trailing_slash, format, subdomain }))
}

/// The response format from `?format=` (which wins) or `Accept`.
fn format_of(query: &Query, accept: Option<&str>) -> Result<Format, GatewayError> {
    let kind = match query.get("format") {
        Some("raw") => "raw",
        Some("car") => "car",
        Some(other) => {
            return Err(GatewayError::bad_request(format!(
                "unsupported format {other:?}: this gateway serves format=raw and format=car"
            )))
        }
        None => match accept.map(accepted_kind) {
            Some(Some(kind)) => kind,
            _ => "unixfs",
        },
    };
    match kind {
        "raw" => Ok(Format::Raw),
        "car" => {
            if let Some(v) = query.get("car-version") {
                if v != "1" {
                    return Err(GatewayError::bad_request(format!("car-version={v} is not supported: only 1")));
                }
            }
            let scope = match query.get("dag-scope") {
                None | Some("all") => DagScope::All,
                Some("entity") => DagScope::Entity,
                Some("block") => DagScope::Block,
                Some(other) => {
                    return Err(GatewayError::bad_request(format!(
                        "invalid dag-scope {other:?}: expected block, entity or all"
                    )))
                }
            };
            let entity_bytes = query.get("entity-bytes").map(parse_entity_bytes).transpose()?;
            Ok(Format::Car(CarParams { scope, entity_bytes }))
        }
        _ => Ok(Format::UnixFs),
    }
}

/// The first trustless type `Accept` lists (`raw`/`car`), ignoring parameters.
fn accepted_kind(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|item| match item.split(';').next().map(str::trim) {
        Some("application/vnd.ipld.raw") => Some("raw"),
        Some("application/vnd.ipld.car") => Some("car"),
        _ => None,
    })
}

/// `from:to` with inclusive, possibly negative offsets and `*` for the end.
pub(crate) fn parse_entity_bytes(text: &str) -> Result<EntityBytes, GatewayError> {
    let bad =
        || GatewayError::bad_request(format!("invalid entity-bytes {text:?}: expected from:to, like 0:1023 or -100:*"));
    let (from, to) = text.split_once(':').ok_or_else(bad)?;
    let from: i64 = from.parse().map_err(|_| bad())?;
    let to = match to {
        "*" => None,
        t => Some(t.parse::<i64>().map_err(|_| bad())?),
    };
    if let Some(t) = to {
        if from >= 0 && t >= 0 && t < from {
            return Err(bad());
        }
    }
    Ok(EntityBytes { from, to })
}

fn parse_cid(text: &str) -> Result<Cid, GatewayError> {
    cids::parse(text).map_err(|e| GatewayError::bad_request(e.to_string()))
}

fn decode_path(path: &str) -> Result<String, GatewayError> {
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| GatewayError::bad_request("the URL path is not valid UTF-8 once decoded"))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// `{label}.ipfs.{gw}` or `{label}.ipns.{gw}` for a configured `gw`: the label, the
/// namespace and the gateway host as configured.
fn subdomain_of<'a>(host: &'a str, hosts: &'a [String]) -> Option<(&'a str, &'static str, &'a str)> {
    let lower = host.to_ascii_lowercase();
    for gw in hosts {
        for ns in ["ipfs", "ipns"] {
            let suffix = format!(".{ns}.{}", gw.to_ascii_lowercase());
            if lower.len() > suffix.len() && lower.ends_with(&suffix) {
                let label = &host[..host.len() - suffix.len()];
                if !label.contains('.') {
                    return Some((label, ns, gw.as_str()));
                }
            }
        }
    }
    None
}

/// Query parameters, decoded by the API's parser (a query that does not parse has none).
pub(crate) struct Query {
    args: Args,
    raw: Option<String>,
}

impl Query {
    /// Parse a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let args = Args::parse(raw.unwrap_or("")).unwrap_or_default();
        Query { args, raw: raw.filter(|r| !r.is_empty()).map(String::from) }
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.args.first(key)
    }

    /// `?{raw}` or nothing, to carry the query over a redirect.
    pub(crate) fn suffix(&self) -> String {
        self.raw.as_ref().map(|r| format!("?{r}")).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    const V0: &str = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";

    fn cfg(redirect: bool) -> (Vec<String>, bool) {
        (vec!["localhost".to_string()], redirect)
    }

    fn go(
        host: &str,
        path: &str,
        query: Option<&str>,
        accept: Option<&str>,
        redirect: bool,
    ) -> Result<Route, GatewayError> {
        let (hosts, redirect) = cfg(redirect);
        route(
            &Parts { host: Some(host), path, query, accept },
            &RouteConfig { subdomain_hosts: &hosts, redirect_to_subdomain: redirect },
        )
    }

    fn target(r: Result<Route, GatewayError>) -> Target {
        match r.unwrap() {
            Route::Content(t) => t,
            other => panic!("expected content, got {other:?}"),
        }
    }

    #[test]
    fn path_requests() {
        let t = target(go("127.0.0.1:8080", &format!("/ipfs/{V1}/a%20b/c.txt"), None, None, false));
        assert_eq!(t.root.to_string(), V1);
        assert_eq!(t.segments, vec!["a b", "c.txt"]);
        assert!(!t.trailing_slash && !t.subdomain);
        assert_eq!(t.format, Format::UnixFs);
        let t = target(go("localhost:8080", &format!("/ipfs/{V0}/"), None, None, false));
        assert!(t.trailing_slash && t.segments.is_empty());
        assert_eq!(go("x", &format!("/ipfs/{V1}/../etc"), None, None, false).unwrap_err().status.as_u16(), 400);
        assert_eq!(go("x", &format!("/ipfs/{V1}/%2e%2e/etc"), None, None, false).unwrap_err().status.as_u16(), 400);
        assert_eq!(go("x", "/ipfs/not-a-cid", None, None, false).unwrap_err().status.as_u16(), 400);
        assert_eq!(go("x", "/", None, None, false).unwrap_err().status.as_u16(), 404);
        // DNSLink is not supported: a name must be a key.
        assert_eq!(go("x", "/ipns/example.com", None, None, false).unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn name_requests() {
        let name: Name = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse().unwrap();
        let k = name.to_string();
        let n = |r: Route| match r {
            Route::Name(n) => n,
            other => panic!("not a name: {other:?}"),
        };
        let t = n(go("x", &format!("/ipns/{k}/a%20b/"), None, None, false).unwrap());
        assert_eq!((t.name, t.rest.as_str(), t.record, t.subdomain), (name, "/a%20b/", false, false));
        // Any form of the name in a path; the record by query or by Accept, for the name only.
        let t = n(go("x", &format!("/ipns/{}", name.peer_id()), Some("format=ipns-record"), None, false).unwrap());
        assert!(t.record && t.rest.is_empty());
        let t = n(go("x", &format!("/ipns/{k}"), None, Some("application/vnd.ipfs.ipns-record"), false).unwrap());
        assert!(t.record);
        assert_eq!(
            go("x", &format!("/ipns/{k}/x"), Some("format=ipns-record"), None, false).unwrap_err().status.as_u16(),
            400
        );
        // On a subdomain host with redirects on: the name's own origin.
        assert_eq!(
            go("localhost:8080", &format!("/ipns/{}/a", name.peer_id()), Some("x=1"), None, true).unwrap(),
            Route::Redirect(format!("http://{k}.ipns.localhost:8080/a?x=1"))
        );
        // Subdomains: base36 names served, peer IDs redirected to their base36 label.
        let t = n(go(&format!("{k}.ipns.localhost:8080"), "/index.html", None, None, false).unwrap());
        assert_eq!((t.rest.as_str(), t.subdomain), ("/index.html", true));
        assert_eq!(
            go(&format!("{}.ipns.localhost:8080", name.peer_id()), "/p", None, None, false).unwrap(),
            Route::Redirect(format!("http://{k}.ipns.localhost:8080/p"))
        );
        // The resolved path, then the request's own rest, in the request's format.
        let t = resolved_target(&format!("/ipfs/{V1}/my site"), "/a%20b", Some("format=raw"), None, true).unwrap();
        assert_eq!(
            (t.segments.clone(), t.format.clone(), t.subdomain),
            (vec!["my site".into(), "a b".into()], Format::Raw, true)
        );
        assert_eq!(resolved_target("/ipns/x", "", None, None, false).unwrap_err().status.as_u16(), 502);
    }

    #[test]
    fn formats() {
        let p = format!("/ipfs/{V1}");
        assert_eq!(target(go("h", &p, Some("format=raw"), None, false)).format, Format::Raw);
        assert_eq!(target(go("h", &p, None, Some("application/vnd.ipld.raw"), false)).format, Format::Raw);
        // format wins over Accept.
        assert_eq!(
            target(go("h", &p, Some("format=car"), Some("application/vnd.ipld.raw"), false)).format,
            Format::Car(CarParams { scope: DagScope::All, entity_bytes: None })
        );
        let t = target(go("h", &p, Some("format=car&dag-scope=entity&entity-bytes=10:-5"), None, false));
        assert_eq!(
            t.format,
            Format::Car(CarParams {
                scope: DagScope::Entity,
                entity_bytes: Some(EntityBytes { from: 10, to: Some(-5) })
            })
        );
        let t = target(go("h", &p, None, Some("application/vnd.ipld.car; version=1, */*"), false));
        assert!(matches!(t.format, Format::Car(_)));
        assert_eq!(target(go("h", &p, None, Some("text/html,*/*"), false)).format, Format::UnixFs);
        assert_eq!(go("h", &p, Some("format=tar"), None, false).unwrap_err().status.as_u16(), 400);
        assert_eq!(go("h", &p, Some("format=car&dag-scope=x"), None, false).unwrap_err().status.as_u16(), 400);
        assert_eq!(go("h", &p, Some("format=car&entity-bytes=9:3"), None, false).unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn subdomains() {
        let t = target(go(&format!("{V1}.ipfs.localhost:8080"), "/img/a.png", None, None, false));
        assert!(t.subdomain);
        assert_eq!(t.segments, vec!["img", "a.png"]);
        // CIDv0 is not a valid DNS label: redirected to its base32 CIDv1.
        let v0_as_v1 = cids::to_v1(&cids::parse(V0).unwrap()).to_string();
        assert_eq!(
            go(&format!("{V0}.ipfs.localhost:8080"), "/x", Some("a=1"), None, false).unwrap(),
            Route::Redirect(format!("http://{v0_as_v1}.ipfs.localhost:8080/x?a=1"))
        );
        // Path requests on a subdomain host redirect only when configured.
        assert!(matches!(
            go("localhost:8080", &format!("/ipfs/{V1}/x"), None, None, false).unwrap(),
            Route::Content(_)
        ));
        assert_eq!(
            go("localhost:8080", &format!("/ipfs/{V1}/x%20y"), None, None, true).unwrap(),
            Route::Redirect(format!("http://{V1}.ipfs.localhost:8080/x%20y"))
        );
        // Other hosts never redirect.
        assert!(matches!(go("127.0.0.1:8080", &format!("/ipfs/{V1}"), None, None, true).unwrap(), Route::Content(_)));
        assert_eq!(go("k51.ipns.localhost", "/", None, None, false).unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn entity_bytes_ranges() {
        let eb = |f, t| EntityBytes { from: f, to: t };
        assert_eq!(eb(0, None).resolve(100), (0, 100));
        assert_eq!(eb(10, Some(19)).resolve(100), (10, 20));
        assert_eq!(eb(-10, None).resolve(100), (90, 100));
        assert_eq!(eb(0, Some(-1)).resolve(100), (0, 100));
        assert_eq!(eb(0, Some(-11)).resolve(100), (0, 90));
        assert_eq!(eb(500, None).resolve(100), (100, 100));
        assert_eq!(eb(0, Some(5000)).resolve(100), (0, 100));
        assert!(parse_entity_bytes("1:x").is_err() && parse_entity_bytes("5").is_err());
        assert_eq!(parse_entity_bytes("-5:*").unwrap(), eb(-5, None));
    }
}
