//! The operator's dashboard at `/webui`: three static files compiled into the binary (no build
//! step, no requests beyond this API). The page reads and changes the node only through the
//! API's commands and `/debug/metrics/prometheus`, so the API's token, `Host` and origin checks
//! guard everything it does; only these files are served without the token, so the page can
//! ask for it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::Ctx;

/// Where the dashboard lives.
pub const PREFIX: &str = "/webui";

const INDEX: &str = include_str!("webui/index.html");
const APP: &str = include_str!("webui/app.js");
const STYLE: &str = include_str!("webui/style.css");

/// The page may load its own files and talk to this API, nothing else; no other site may frame
/// it (clickjacking an "add" is then impossible).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `router` with the dashboard's routes.
pub fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route("/", get(|| async { Redirect::to("/webui/") }))
        .route(PREFIX, get(|| async { Redirect::to("/webui/") }))
        .route("/webui/", get(|| async { file(INDEX, "text/html; charset=utf-8") }))
        .route("/webui/app.js", get(|| async { file(APP, "text/javascript; charset=utf-8") }))
        .route("/webui/style.css", get(|| async { file(STYLE, "text/css; charset=utf-8") }))
}

/// Whether `path` is one of the dashboard's files (served without the API token).
pub fn is_static(path: &str) -> bool {
    path == "/" || path == PREFIX || path.starts_with("/webui/")
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
