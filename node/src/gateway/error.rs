//! Gateway errors and the one place that chooses their HTTP status: 400 for a bad request
//! (malformed CID, `..` in the path), 404 for a path that names nothing, 410 for denied
//! content, 501 for what the gateway does not serve, 502 for a malformed DAG, 504 when a block
//! could not be retrieved within the retrieval timeout.

use std::fmt;
use std::io;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_protocol::reader::{ReadError, ReadErrorKind};

use crate::bitswap::FetchError;
use crate::dag_read::{BlockError, DagReadError};

/// Seconds a client is told to wait (`Retry-After`) on 503 (busy) and 504 (slow network).
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// A failed gateway request: a status and a message for the person reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in one line.
    pub message: String,
}

impl GatewayError {
    fn new(status: StatusCode, message: impl Into<String>) -> GatewayError {
        GatewayError { status, message: message.into() }
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::NOT_FOUND, message)
    }

    /// 410: on the operator's denylist.
    pub fn denied(cid: &cairn_protocol::Cid) -> GatewayError {
        GatewayError::new(StatusCode::GONE, format!("{cid} is blocked by this gateway's operator"))
    }

    /// 501.
    pub(crate) fn not_implemented(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 502: what another party (a name's record) says is unusable.
    pub(crate) fn bad_gateway(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::BAD_GATEWAY, message)
    }

    /// The status for a name that could not be resolved.
    pub(crate) fn from_name(e: &crate::names::NameError) -> GatewayError {
        use crate::names::NameError;
        match e {
            NameError::NotFound(_) => GatewayError::not_found(e.to_string()),
            NameError::BadValue(_) | NameError::TooDeep(_) | NameError::Record(_) => {
                GatewayError::bad_gateway(e.to_string())
            }
            NameError::Shutdown | NameError::Busy => GatewayError::unavailable(e.to_string()),
            _ => GatewayError::internal(e.to_string()),
        }
    }

    /// 503.
    pub(crate) fn unavailable(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The status for a block that could not be had for `path`.
    pub(crate) fn from_block(source: &BlockError, path: &str) -> GatewayError {
        let msg = format!("{path}: {source}");
        match source {
            BlockError::Fetch(FetchError::Timeout(cid)) => GatewayError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{path}: block {cid} could not be retrieved from the network in time"),
            ),
            BlockError::Fetch(FetchError::TooManyWants(_)) => GatewayError::unavailable(msg),
            BlockError::Fetch(FetchError::Shutdown) => GatewayError::unavailable("the node is shutting down"),
            BlockError::Fetch(FetchError::Store(_)) | BlockError::Store(_) => GatewayError::internal(msg),
            // Every retrieval slot busy, or shutting down.
            BlockError::Unavailable(m) => GatewayError::unavailable(m.clone()),
            BlockError::NotLocal(cid) => GatewayError::not_found(format!(
                "{path}: block {cid} is not in this node's store and gateway.no_fetch is on"
            )),
            BlockError::Cancelled => GatewayError::unavailable(msg),
        }
    }

    /// The status for a failed async DAG read of `path`.
    pub(crate) fn from_dag(e: &DagReadError, path: &str) -> GatewayError {
        match e {
            DagReadError::Dag(e) => GatewayError::from_read(e, path),
            DagReadError::Block { source, .. } => GatewayError::from_block(source, path),
        }
    }

    /// The status for a DAG read failure of `path`.
    pub(crate) fn from_read(e: &ReadError, path: &str) -> GatewayError {
        use ReadErrorKind as K;
        let msg = format!("{path}: {e}");
        match e.kind() {
            // Only from the reader's blocking drivers, over a `Blocks::sync` source.
            K::Fetch { source, .. } => match source.downcast_ref::<BlockError>() {
                Some(b) => GatewayError::from_block(b, path),
                None => GatewayError::internal(msg),
            },
            K::NotFound { .. } | K::NotDirectory { .. } => GatewayError::not_found(msg),
            K::BadSegment(_) => GatewayError::bad_request(msg),
            K::UnsupportedCodec { .. } => GatewayError::not_implemented(format!(
                "{msg}; this gateway renders only UnixFS: ask for the block with ?format=raw or the DAG with ?format=car"
            )),
            K::NotFile { .. } => GatewayError::internal(msg),
            _ => GatewayError::new(StatusCode::BAD_GATEWAY, msg),
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for GatewayError {
    fn from(e: io::Error) -> Self {
        GatewayError::internal(e.to_string())
    }
}

impl std::error::Error for GatewayError {}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = format!("{} {title}\n\n{}\n", self.status.as_u16(), self.message);
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT) {
            // Busy or slow now, not broken: say when to try again.
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}
