//! `repo/gc`, `repo/stat`, `repo/verify`: the offline maintenance commands, run by the daemon
//! on a blocking thread. GC is safe while the node runs: blocks of in-flight adds and fetches
//! sit in open write batches, which GC never sweeps.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::args::Args;
use super::error::ApiError;
use super::stream::{blocking, ndjson};
use super::Ctx;
use crate::{gc, maintenance};

/// `repo/gc`: one `{"Removed","FreedBytes","Kept"}` summary (kubo lists each removed key;
/// our collector counts them).
pub async fn repo_gc(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let r = blocking(move |_| Ok(gc::run(ctx.node.store())?)).await?;
    Ok(ndjson([json!({ "Removed": r.removed, "FreedBytes": r.freed_bytes, "Kept": r.marked })]))
}

/// `repo/stat`: kubo's `{"NumObjects","RepoSize","StorageMax","RepoPath","Version"}` plus
/// `BlockBytes`, `MetaBytes` and `Pins`.
pub async fn repo_stat(State(ctx): State<Ctx>, _args: Args) -> Result<Response, ApiError> {
    let node = ctx.node.clone();
    let s = blocking(move |_| Ok(maintenance::stat(node.store())?)).await?;
    let repo = ctx.node.repo();
    Ok(axum::Json(json!({
        "NumObjects": s.blocks,
        "RepoSize": s.block_bytes + s.meta_disk_bytes,
        "StorageMax": repo.config().store.max_size_bytes,
        "RepoPath": repo.path().display().to_string(),
        "Version": format!("fs-repo@{}", crate::repo::REPO_VERSION),
        "BlockBytes": s.block_bytes,
        "MetaBytes": s.meta_disk_bytes,
        "Pins": s.pins,
    }))
    .into_response())
}

/// `repo/verify`: one `{"Cid","Status"}` per bad block (`corrupt` or `unverifiable`), then
/// `{"Checked","Corrupt","Ok"}`.
pub async fn repo_verify(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let r = blocking(move |_| Ok(maintenance::verify(ctx.node.store(), &|_| {})?)).await?;
    let mut rows = Vec::new();
    rows.extend(r.corrupt.iter().map(|c| json!({ "Cid": c.to_string(), "Status": "corrupt" })));
    rows.extend(r.unverifiable.iter().map(|c| json!({ "Cid": c.to_string(), "Status": "unverifiable" })));
    rows.push(json!({ "Checked": r.checked, "Corrupt": r.corrupt.len(), "Ok": r.corrupt.is_empty() }));
    Ok(ndjson(rows))
}
