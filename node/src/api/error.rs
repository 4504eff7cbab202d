//! The one place that turns an [`OpError`] into an HTTP response.
//!
//! Bodies follow kubo: `{"Message": "...", "Code": 0, "Type": "error"}`, where `Code` 0 is a
//! failed command (HTTP 500) and 1 a bad request (HTTP 400), as in kubo's `cmds` library.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ops::OpError;

/// HTTP status and kubo error code for each error: the only place statuses are chosen.
pub(crate) fn status_of(e: &OpError) -> (StatusCode, u8) {
    match e {
        OpError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, 0),
        OpError::BadRequest(_) => (StatusCode::BAD_REQUEST, 1),
        OpError::Unauthorized => (StatusCode::UNAUTHORIZED, 1),
        OpError::Forbidden(_) => (StatusCode::FORBIDDEN, 1),
        OpError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, 1),
        OpError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, 0),
        OpError::Offline(_) => (StatusCode::INTERNAL_SERVER_ERROR, 0),
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let (status, code) = status_of(&self);
        let body = json!({ "Message": self.message(), "Code": code, "Type": "error" });
        let mut resp = (status, axum::Json(body)).into_response();
        if self == OpError::Unauthorized {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status_of(&OpError::bad("x")).0, StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&OpError::failed("x")), (StatusCode::INTERNAL_SERVER_ERROR, 0));
    }
}
