//! Hot responses: small, complete `200` answers for immutable content (`/ipfs/…` paths and
//! `{cid}.ipfs.*` origins) kept whole, so a request for a hot asset skips routing, path
//! resolution, type sniffing and header building.
//!
//! Only plain `GET`s are answered from here: no `Range`, no `If-None-Match` (those take the
//! full path, which answers them exactly). The key is what the answer depends on: `Host`,
//! path and query, and `Accept`. What is kept was made from verified blocks, and content under
//! a CID never changes; the denylist is still asked, for every CID the answer's path went
//! through, on every hit. Bounded by bytes, least recently used out first; an answer larger
//! than [`MAX_BODY`] is never kept.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use cairn_protocol::Cid;
use lru::LruCache;

/// The largest body kept: hot assets are small; large files stream from the block cache.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Most answers kept, whatever their size.
const MAX_ENTRIES: usize = 4096;

/// One kept answer.
#[derive(Clone)]
pub(crate) struct Hot {
    /// Its headers (without the CORS ones, which are added to every answer).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// Every CID its path went through (`X-Ipfs-Roots`), for the denylist.
    pub roots: Vec<Cid>,
}

/// The answers kept.
pub(crate) struct HotResponses {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    map: LruCache<String, Hot>,
    bytes: usize,
}

impl HotResponses {
    /// Keep at most `capacity` bytes of bodies (0: off).
    pub(crate) fn new(capacity: usize) -> HotResponses {
        let map = LruCache::new(NonZeroUsize::new(MAX_ENTRIES).expect("non-zero"));
        HotResponses { inner: Mutex::new(Inner { map, bytes: 0 }), capacity }
    }

    /// The key of a request that may be answered from here, if it may.
    pub(crate) fn key(method: &Method, headers: &HeaderMap, path_and_query: &str) -> Option<String> {
        if method != Method::GET || headers.contains_key(axum::http::header::RANGE) {
            return None;
        }
        if headers.contains_key(axum::http::header::IF_NONE_MATCH) {
            return None;
        }
        let text = |h| headers.get(h).and_then(|v: &axum::http::HeaderValue| v.to_str().ok()).unwrap_or("");
        let host = text(axum::http::header::HOST);
        // Names change when republished: only content paths and content origins.
        let immutable = path_and_query.starts_with("/ipfs/") || host.contains(".ipfs.");
        immutable.then(|| format!("{host}\n{path_and_query}\n{}", text(axum::http::header::ACCEPT)))
    }

    /// The answer kept under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Hot> {
        if self.capacity == 0 {
            return None;
        }
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).map.get(key).cloned()
    }

    /// Keep an answer if it qualifies: `200`, a complete body of at most [`MAX_BODY`] bytes.
    pub(crate) fn offer(&self, key: String, status: StatusCode, hot: Hot) {
        if status != StatusCode::OK || hot.body.len() > MAX_BODY || hot.body.len() > self.capacity / 8 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let size = hot.body.len();
        if let Some((_, old)) = inner.map.push(key, hot) {
            // The same key replaced, or the least recently used pushed out by the count.
            inner.bytes -= old.body.len();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            match inner.map.pop_lru() {
                Some((_, old)) => inner.bytes -= old.body.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hot(n: usize) -> Hot {
        Hot { headers: HeaderMap::new(), body: Bytes::from(vec![1u8; n]), roots: vec![] }
    }

    #[test]
    fn only_plain_gets_of_immutable_content_have_a_key() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        assert!(HotResponses::key(&Method::GET, &h, "/ipfs/bafy/x").is_some());
        assert!(HotResponses::key(&Method::GET, &h, "/ipns/k51/x").is_none());
        assert!(HotResponses::key(&Method::HEAD, &h, "/ipfs/bafy/x").is_none());
        h.insert("range", HeaderValue::from_static("bytes=0-1"));
        assert!(HotResponses::key(&Method::GET, &h, "/ipfs/bafy/x").is_none());
        let mut o = HeaderMap::new();
        o.insert("host", HeaderValue::from_static("bafy.ipfs.localhost:8080"));
        assert!(HotResponses::key(&Method::GET, &o, "/index.html").is_some());
        o.insert("host", HeaderValue::from_static("k51.ipns.localhost:8080"));
        assert!(HotResponses::key(&Method::GET, &o, "/index.html").is_none());
    }

    #[test]
    fn answers_are_bounded_by_bytes_and_only_small_200s_are_kept() {
        let c = HotResponses::new(8 * 1024);
        c.offer("big".into(), StatusCode::OK, hot(1025));
        assert!(c.get("big").is_none(), "over an eighth of the capacity");
        c.offer("404".into(), StatusCode::NOT_FOUND, hot(10));
        assert!(c.get("404").is_none());
        for i in 0..20 {
            c.offer(format!("k{i}"), StatusCode::OK, hot(1000));
        }
        assert!(c.get("k0").is_none() && c.get("k19").is_some());
        assert!(c.inner.lock().unwrap().bytes <= 8 * 1024);
    }
}
