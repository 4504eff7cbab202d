//! The path gateway's UnixFS responses: files streamed in order (a single `Range` reads only
//! the blocks it covers), directories as their `index.html` or an HTML listing, `_redirects`
//! on subdomain origins.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_protocol::reader::{self, Entry, FileCursor, Node, ReadErrorKind};
use cairn_protocol::Cid;
use http_range_header::{parse_range_header, RangeUnsatisfiableError};

use super::request::Target;
use super::{common_headers, etag_matches, mime, redirects, GatewayError, Plan, Req};
use crate::dag_read::{Blocks, DagReadError};

/// Files (or ranges) up to this size are answered in one piece from the planning thread;
/// larger ones are streamed by async code ([`Plan::File`]).
const IN_PLACE: u64 = 1024 * 1024;

/// Bump when the listing page changes, so caches drop old listings (part of its ETag).
const LISTING_VERSION: u32 = 1;

/// A resolved content path: the terminal node and every CID along the way.
struct Resolved {
    cid: Cid,
    node: Node,
    roots: Vec<Cid>,
}

async fn resolve(root: Cid, segments: &[String], blocks: &mut Blocks) -> Result<Resolved, DagReadError> {
    let roots = super::walk_path(root, segments, blocks).await?;
    let cid = *roots.last().expect("walk_path returns the root at least");
    let node = blocks.load(&cid).await?;
    Ok(Resolved { cid, node, roots })
}

/// A path that names nothing (or goes through a file): where `_redirects` may apply.
fn names_nothing(e: &DagReadError) -> bool {
    matches!(e.dag(), Some(ReadErrorKind::NotFound { .. } | ReadErrorKind::NotDirectory { .. }))
}

/// Plan the UnixFS response for `t`.
pub(super) async fn plan(req: &Req, t: &Target, blocks: &mut Blocks) -> Result<Plan, GatewayError> {
    let content_path = t.content_path();
    match resolve(t.root, &t.segments, blocks).await {
        Ok(r) => {
            if req.denied(&r.cid) {
                return Err(GatewayError::denied(&r.cid));
            }
            entity(req, t, r, StatusCode::OK, blocks).await
        }
        Err(e) if t.subdomain && names_nothing(&e) => match redirect(t, blocks).await? {
            Some(rule) => rule.plan(req, blocks).await,
            None => Err(GatewayError::from_dag(&e, &content_path)),
        },
        Err(e) => Err(GatewayError::from_dag(&e, &content_path)),
    }
}

/// The response for a resolved node.
async fn entity(
    req: &Req,
    t: &Target,
    r: Resolved,
    status: StatusCode,
    blocks: &mut Blocks,
) -> Result<Plan, GatewayError> {
    let name = t.segments.last().map(String::as_str);
    let dag_err = |e: DagReadError| GatewayError::from_dag(&e, &t.content_path());
    match &r.node {
        Node::File { size, .. } => file(req, t, &r.roots, r.cid, *size, name, status, blocks).await,
        Node::Symlink { target } => {
            let mut resp = Bytes::from(target.clone().into_bytes()).into_response();
            common_headers(resp.headers_mut(), &format!("\"{}\"", r.cid), &t.content_path(), &r.roots);
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            Ok(Plan::Done(resp))
        }
        Node::Directory { .. } | Node::Shard { .. } => {
            if !t.trailing_slash {
                let to = format!("{}/{}", req.path, req.query_suffix());
                return Ok(Plan::Done(super::redirect_response(StatusCode::MOVED_PERMANENTLY, &to)));
            }
            if let Some(index) = blocks.find(&r.cid, &r.node, "index.html").await.map_err(dag_err)? {
                let node = blocks.load(&index).await.map_err(dag_err)?;
                if let Node::File { size, .. } = node {
                    let mut roots = r.roots.clone();
                    roots.push(index);
                    return file(req, t, &roots, index, size, Some("index.html"), status, blocks).await;
                }
            }
            let entries = blocks.list(&r.cid, &r.node).await.map_err(dag_err)?;
            let etag = format!("\"DirIndex-{LISTING_VERSION}_CID-{}\"", r.cid);
            if etag_matches(req, &etag) {
                return Ok(Plan::Done(super::not_modified(&etag, &t.content_path(), &r.roots)));
            }
            let html = listing(t, &r.cid, &entries);
            let mut resp = (status, html).into_response();
            let h = resp.headers_mut();
            common_headers(h, &etag, &t.content_path(), &r.roots);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            Ok(Plan::Done(resp))
        }
    }
}

/// A file: `200` (or `status`), or `206` for a satisfiable single range, `416` otherwise.
#[allow(clippy::too_many_arguments)]
async fn file(
    req: &Req,
    t: &Target,
    roots: &[Cid],
    cid: Cid,
    size: u64,
    name: Option<&str>,
    status: StatusCode,
    blocks: &mut Blocks,
) -> Result<Plan, GatewayError> {
    let path = t.content_path();
    let etag = format!("\"{cid}\"");
    if status == StatusCode::OK && etag_matches(req, &etag) {
        return Ok(Plan::Done(super::not_modified(&etag, &path, roots)));
    }
    let filename = req.query.get("filename").filter(|f| !f.is_empty());
    let content_type = match mime_by_name(filename.or(name)) {
        Some(ct) => ct,
        None => {
            let head = blocks.read_range(cid, 0, size.min(mime::SNIFF_LEN as u64)).await;
            mime::sniff(&head.map_err(|e| GatewayError::from_dag(&e, &path))?)
        }
    };
    let (mut status, mut start, mut len) = (status, 0, size);
    let mut content_range = None;
    if let (Some(range), StatusCode::OK, true) = (req.range.as_deref(), status, size > 0) {
        match byte_range(range, size) {
            RangeAnswer::Ignore => {}
            RangeAnswer::Unsatisfiable => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                let h = resp.headers_mut();
                common_headers(h, &etag, &path, roots);
                h.insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
                return Ok(Plan::Done(resp));
            }
            RangeAnswer::Range(from, to) => {
                status = StatusCode::PARTIAL_CONTENT;
                start = from;
                len = to - from + 1;
                content_range = Some(format!("bytes {from}-{to}/{size}"));
            }
        }
    }
    let mut head = status.into_response();
    let h = head.headers_mut();
    common_headers(h, &etag, &path, roots);
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(header::CONTENT_LENGTH, value(&len.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(cr) = content_range {
        h.insert(header::CONTENT_RANGE, value(&cr));
    }
    if let Some(disposition) = disposition(filename, req.query.get("download") == Some("true")) {
        h.insert(header::CONTENT_DISPOSITION, value(&disposition));
    }
    if req.head || len == 0 {
        return Ok(Plan::Done(head));
    }
    if len <= IN_PLACE {
        // Small answers are read while planning and sent whole: no body task, no channel.
        // Usually one block, so no copy either.
        let body = blocks.read_range(cid, start, len).await.map_err(|e| GatewayError::from_dag(&e, &path))?;
        let (parts, _) = head.into_parts();
        return Ok(Plan::Done(Response::from_parts(parts, axum::body::Body::from(body))));
    }
    Ok(Plan::File { head, cursor: Box::new(FileCursor::new(cid, start, Some(len))), path })
}

fn mime_by_name(name: Option<&str>) -> Option<String> {
    let ext = name?.rsplit_once('.')?.1;
    mime_guess::from_ext(ext).first_raw().map(|_| mime::content_type(name, b""))
}

pub(crate) enum RangeAnswer {
    /// No usable single range: serve the whole file (a malformed header, or several ranges,
    /// which this gateway answers in full as HTTP allows).
    Ignore,
    Unsatisfiable,
    /// Inclusive byte offsets.
    Range(u64, u64),
}

pub(crate) fn byte_range(header: &str, size: u64) -> RangeAnswer {
    let Ok(parsed) = parse_range_header(header) else { return RangeAnswer::Ignore };
    if parsed.ranges.len() != 1 {
        return RangeAnswer::Ignore;
    }
    match parsed.validate(size) {
        Ok(ranges) => {
            let r = &ranges[0];
            if *r.start() >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Range(*r.start(), *r.end())
            }
        }
        // `bytes=-N` with N past the size means the whole file.
        Err(RangeUnsatisfiableError::FileSuffixOutOfBounds) => RangeAnswer::Range(0, size - 1),
        Err(_) => RangeAnswer::Unsatisfiable,
    }
}

/// `Content-Disposition` for `?filename=` (inline) and `?download=true` (attachment).
fn disposition(filename: Option<&str>, download: bool) -> Option<String> {
    if filename.is_none() && !download {
        return None;
    }
    let kind = if download { "attachment" } else { "inline" };
    let Some(name) = filename else { return Some(kind.to_string()) };
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    Some(format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// What a `_redirects` rule says for a path that does not exist.
enum Rule {
    /// Serve another path of the site with this status (200, 404).
    Serve { target: Target, to: String, status: u16 },
    /// The path is gone (410, 451).
    Gone { path: String, status: u16 },
    /// Redirect the browser.
    Redirect { to: String, status: u16 },
}

impl Rule {
    async fn plan(self, req: &Req, blocks: &mut Blocks) -> Result<Plan, GatewayError> {
        match self {
            Rule::Serve { target, to, status } => {
                let to_path = to.split(['?', '#']).next().unwrap_or("");
                let segments = reader::split_path(to_path)
                    .map_err(|_| GatewayError::internal(format!("_redirects target {to:?} is not a path")))?;
                let t = Target { segments, trailing_slash: to_path.ends_with('/'), ..target };
                let r = resolve(t.root, &t.segments, blocks)
                    .await
                    .map_err(|e| GatewayError::from_dag(&e, &t.content_path()))?;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                entity(req, &Target { trailing_slash: true, ..t }, r, status, blocks).await
            }
            Rule::Gone { path, status } => Err(GatewayError {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::GONE),
                message: format!("{path} is unavailable (rule in _redirects)"),
            }),
            Rule::Redirect { to, status } => Ok(Plan::Done(super::redirect_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                &to,
            ))),
        }
    }
}

/// The site's `_redirects` rule for `t`'s path, if any.
async fn redirect(t: &Target, blocks: &mut Blocks) -> Result<Option<Rule>, GatewayError> {
    let rules_path = format!("/ipfs/{}/_redirects", t.root);
    let file = match blocks.resolve(t.root, &["_redirects".to_string()]).await {
        Ok(cid) => cid,
        // No such file, or a root that is not a directory: no rules.
        Err(e) if names_nothing(&e) => return Ok(None),
        Err(e) => return Err(GatewayError::from_dag(&e, &rules_path)),
    };
    let dag_err = |e: DagReadError| GatewayError::from_dag(&e, &rules_path);
    let size = blocks.load(&file).await.map_err(dag_err)?.file_size();
    if size > redirects::MAX_SIZE {
        return Err(GatewayError::internal(format!(
            "_redirects is {size} bytes; the limit is {}",
            redirects::MAX_SIZE
        )));
    }
    let text = blocks.read_range(file, 0, size).await.map_err(dag_err)?;
    let rules = redirects::parse(&String::from_utf8_lossy(&text)).map_err(|e| GatewayError::internal(e.to_string()))?;
    let path = format!("/{}", t.segments.join("/"));
    let Some((status, to)) = redirects::find(&rules, &path) else { return Ok(None) };
    Ok(Some(match status {
        200 | 404 => Rule::Serve { target: t.clone(), to, status },
        410 | 451 => Rule::Gone { path, status },
        _ => Rule::Redirect { to, status },
    }))
}

/// An HTML listing of a directory with no `index.html`.
fn listing(t: &Target, cid: &Cid, entries: &[Entry]) -> String {
    let title = escape(&t.content_path());
    let mut rows = String::new();
    if !t.segments.is_empty() {
        rows.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let href = percent_encoding::utf8_percent_encode(&e.name, super::PATH_SEGMENT);
        rows.push_str(&format!(
            "<tr><td><a href=\"./{href}\">{}</a></td><td><code>{}</code></td><td>{}</td></tr>\n",
            escape(&e.name),
            e.cid,
            human_size(e.tsize)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em .2em 0}}code{{color:#555}}</style>\
         </head>\n<body><h1>Index of {title}</h1>\n<p><code>{cid}</code> · {} entries</p>\n<table>\n{rows}</table>\n</body></html>\n",
        entries.len()
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(matches!(byte_range("bytes=0-9", 100), RangeAnswer::Range(0, 9)));
        assert!(matches!(byte_range("bytes=90-", 100), RangeAnswer::Range(90, 99)));
        assert!(matches!(byte_range("bytes=-10", 100), RangeAnswer::Range(90, 99)));
        assert!(matches!(byte_range("bytes=-1000", 100), RangeAnswer::Range(0, 99)));
        assert!(matches!(byte_range("bytes=50-5000", 100), RangeAnswer::Range(50, 99)));
        assert!(matches!(byte_range("bytes=100-", 100), RangeAnswer::Unsatisfiable));
        assert!(matches!(byte_range("bytes=0-1,5-6", 100), RangeAnswer::Ignore));
        assert!(matches!(byte_range("pages=1", 100), RangeAnswer::Ignore));
    }

    #[test]
    fn listing_escapes_names() {
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(
            disposition(Some("ünï \"x\".txt"), true).unwrap(),
            "attachment; filename=\"_n_ _x_.txt\"; filename*=UTF-8''%C3%BCn%C3%AF%20%22x%22%2Etxt"
        );
    }
}
