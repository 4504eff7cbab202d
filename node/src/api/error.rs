//! API errors and the one place that turns them into HTTP responses.
//!
//! Bodies follow kubo: `{"Message": "...", "Code": 0, "Type": "error"}`, where `Code` 0 is a
//! failed command (HTTP 500) and 1 a bad request (HTTP 400), as in kubo's `cmds` library.
//! Messages carry the whole error chain (`outer: inner: cause`), the way the CLI prints an
//! error offline, so a command fails with the same words through the daemon.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The command failed (missing block, corrupt DAG, disk full...).
    Failed(String),
    /// The request itself is wrong: unknown option value, missing argument, bad CID.
    BadRequest(String),
    /// No or wrong bearer token.
    Unauthorized,
    /// Refused for where it came from (a browser origin, a foreign `Host`).
    Forbidden(String),
    /// A body larger than the command accepts.
    TooLarge(String),
    /// The node is shutting down.
    ShuttingDown,
}

impl ApiError {
    /// A failed command, with `e`'s whole source chain as the message.
    pub fn chain(e: &(dyn std::error::Error + 'static)) -> ApiError {
        ApiError::Failed(error_chain(e))
    }

    /// A failed command whose message starts with `context` (like anyhow's `.context`).
    pub fn context(context: impl fmt::Display, e: &(dyn std::error::Error + 'static)) -> ApiError {
        ApiError::Failed(format!("{context}: {}", error_chain(e)))
    }

    /// A bad request.
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    /// A failed command with a plain message.
    pub fn failed(msg: impl Into<String>) -> ApiError {
        ApiError::Failed(msg.into())
    }

    /// The message clients see.
    pub fn message(&self) -> String {
        match self {
            ApiError::Failed(m) | ApiError::BadRequest(m) | ApiError::Forbidden(m) | ApiError::TooLarge(m) => m.clone(),
            ApiError::Unauthorized => {
                "missing or wrong API token: send `Authorization: Bearer <network.api_token>`".into()
            }
            ApiError::ShuttingDown => "the node is shutting down".into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl<E: std::error::Error + 'static> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::chain(&e)
    }
}

/// HTTP status and kubo error code for each error: the only place statuses are chosen.
pub fn status_of(e: &ApiError) -> (StatusCode, u8) {
    match e {
        ApiError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, 0),
        ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, 1),
        ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, 1),
        ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, 1),
        ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, 1),
        ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, 0),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_of(&self);
        let body = json!({ "Message": self.message(), "Code": code, "Type": "error" });
        let mut resp = (status, axum::Json(body)).into_response();
        if self == ApiError::Unauthorized {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// `e` and its sources joined by `": "`, skipping a source whose text the outer message
/// already ends with (thiserror's `{source}` formats repeat it).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_and_statuses() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(ApiError::from(e).message(), "outer: disk on fire");
        assert_eq!(status_of(&ApiError::bad("x")).0, StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&ApiError::failed("x")), (StatusCode::INTERNAL_SERVER_ERROR, 0));
    }
}
