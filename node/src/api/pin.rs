//! `pin/add`, `pin/rm`, `pin/ls`, `pin/verify`.
//!
//! `pin/add` of content this node does not hold fetches the whole DAG through the node first
//! (parents before children, so the fetcher's read-ahead keeps peers busy), writes what it
//! fetched in one batch, and pins once every block is local; the batch keeps the new blocks
//! safe from GC until the pin exists.

use std::collections::HashSet;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cairn_protocol::cids::RAW;
use cairn_protocol::{Block, Cid};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::error::ApiError;
use super::stream::{self, blocking, ndjson, Fetcher};
use super::Ctx;
use crate::dag;
use crate::exporter;
use crate::pins::{self, PinKind};
use crate::store::{key_of, BatchWriter, Store};

/// Make every block of the DAG under `root` local, fetching what is missing. Returns the batch
/// holding the fetched blocks (committed; drop it once they are pinned) if any were fetched.
pub fn ensure_local(
    store: &Store,
    root: &Cid,
    fetch: &mut Fetcher,
    token: &CancellationToken,
) -> Result<Option<BatchWriter>, ApiError> {
    let mut writer: Option<BatchWriter> = None;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if token.is_cancelled() {
            return Err(ApiError::failed("the request was cancelled"));
        }
        if !seen.insert(key_of(&cid)) || (cid.codec() == RAW && store.has(&cid)?) {
            continue;
        }
        let data = match store.get(&cid)? {
            Some(d) => d,
            None => {
                let d = fetch(&cid).map_err(|e| ApiError::failed(format!("fetching block {cid}: {e}")))?;
                if !store.has(&cid)? {
                    writer.get_or_insert_with(|| store.writer()).write(Block::new_unchecked(cid, d.clone()))?;
                }
                d
            }
        };
        if cid.codec() != RAW {
            stack.extend(dag::links(&cid, &data)?.into_iter().rev());
        }
    }
    if let Some(w) = &mut writer {
        w.commit()?;
    }
    Ok(writer)
}

/// `pin/add`: `arg` = paths, `recursive` (default true), `name`. `{"Pins":[cid...]}`.
pub async fn pin_add(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let paths: Vec<String> = args.some()?.into_iter().map(String::from).collect();
    let kind = if args.flag("recursive", true)? { PinKind::Recursive } else { PinKind::Direct };
    let name = args.get("name").filter(|n| !n.is_empty()).map(String::from);
    let offline = args.flag("offline", false)?;
    let ctx2 = ctx.clone();
    if !offline {
        // Through the network: resolve, then fetch the whole DAG and pin it. The pin is
        // recorded as pending first, so an interrupted one resumes when the daemon restarts.
        let roots = blocking(move |token| {
            let mut fetch = stream::fetcher(&ctx, offline, token.clone());
            paths.iter().map(|p| Ok(exporter::resolve_from(&mut fetch, p)?)).collect::<Result<Vec<Cid>, ApiError>>()
        })
        .await?;
        for cid in &roots {
            ctx2.node
                .pin_remote(*cid, kind, name.clone(), &|_| {})
                .await
                .map_err(|e| ApiError::failed(format!("pinning {cid}: {e}")))?;
        }
        ctx2.node.announce(roots.clone()).await;
        let pinned: Vec<String> = roots.iter().map(Cid::to_string).collect();
        return Ok(axum::Json(json!({ "Pins": pinned })).into_response());
    }
    let pinned = blocking(move |token| {
        let store = ctx.node.store();
        let mut fetch = stream::fetcher(&ctx, offline, token.clone());
        let mut pinned = Vec::new();
        for p in paths {
            let cid = exporter::resolve_from(&mut fetch, &p)?;
            let _fetched = match kind {
                PinKind::Recursive => ensure_local(store, &cid, &mut fetch, token)?,
                _ => ensure_local_block(store, &cid, &mut fetch)?,
            };
            pins::add(store, &cid, kind, name.clone())?;
            pinned.push(cid);
        }
        Ok(pinned)
    })
    .await?;
    ctx2.node.announce(pinned.clone()).await;
    let pinned: Vec<String> = pinned.iter().map(Cid::to_string).collect();
    Ok(axum::Json(json!({ "Pins": pinned })).into_response())
}

/// One block, fetched if missing (for direct pins).
fn ensure_local_block(store: &Store, cid: &Cid, fetch: &mut Fetcher) -> Result<Option<BatchWriter>, ApiError> {
    if store.has(cid)? {
        return Ok(None);
    }
    let data = fetch(cid).map_err(|e| ApiError::failed(format!("fetching block {cid}: {e}")))?;
    let mut w = store.writer();
    if !store.has(cid)? {
        w.write(Block::new_unchecked(*cid, data))?;
        w.commit()?;
    }
    Ok(Some(w))
}

/// `pin/rm`: `arg` = paths. `{"Pins":[cid...]}`.
pub async fn pin_rm(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let paths: Vec<String> = args.some()?.into_iter().map(String::from).collect();
    let ctx2 = ctx.clone();
    let (removed, unannounced) = blocking(move |_| {
        let store = ctx.node.store();
        let mut removed = Vec::new();
        for p in paths {
            let cid = exporter::resolve(store, &p)?;
            pins::rm(store, &cid)?;
            removed.push(cid);
        }
        // Blocks of the unpinned DAGs that no other pin reaches are no longer announced.
        let live = crate::gc::live_keys(store)?;
        let mut unannounced = Vec::new();
        for root in &removed {
            let _ = crate::dag::walk(store, root, crate::dag::WalkMode::LinksOnly, true, &mut |c, _| {
                if !live.contains(&crate::store::key_of(c)) {
                    unannounced.push(*c);
                }
                Ok(())
            });
        }
        Ok((removed, unannounced))
    })
    .await?;
    ctx2.node.provider().forget(unannounced).await;
    let removed: Vec<String> = removed.iter().map(Cid::to_string).collect();
    Ok(axum::Json(json!({ "Pins": removed })).into_response())
}

fn kinds_of(t: &str) -> Result<Vec<PinKind>, ApiError> {
    Ok(match t {
        "all" => vec![PinKind::Recursive, PinKind::Direct, PinKind::Indirect],
        "recursive" => vec![PinKind::Recursive],
        "direct" => vec![PinKind::Direct],
        "indirect" => vec![PinKind::Indirect],
        other => {
            return Err(ApiError::bad(format!("invalid pin type {other:?}: use all, recursive, direct or indirect")))
        }
    })
}

/// `pin/ls`: `type` (all, recursive, direct, indirect), `arg` = only these, `stream`.
/// `{"Keys":{cid:{"Type","Name"}}}`, or with `stream=true` one `{"Cid","Type","Name"}` per line.
pub async fn pin_ls(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let kinds = kinds_of(args.get("type").unwrap_or("all"))?;
    let paths: Vec<String> = args.all().into_iter().map(String::from).collect();
    let stream = args.flag("stream", false)?;
    let list = blocking(move |_| {
        let store = ctx.node.store();
        let mut list = pins::list(store, &kinds)?;
        if !paths.is_empty() {
            let wanted = paths.iter().map(|p| exporter::resolve(store, p)).collect::<Result<Vec<_>, _>>()?;
            list.retain(|p| wanted.iter().any(|w| w.hash() == p.cid.hash()));
            if list.is_empty() {
                return Err(ApiError::failed(format!("not pinned: {}", paths.join(", "))));
            }
        }
        Ok(list)
    })
    .await?;
    if stream {
        return Ok(ndjson(
            list.into_iter().map(|p| json!({ "Cid": p.cid.to_string(), "Type": p.kind.as_str(), "Name": p.name })),
        ));
    }
    let keys: serde_json::Map<String, Value> = list
        .into_iter()
        .map(|p| {
            let mut v = json!({ "Type": p.kind.as_str() });
            if let Some(n) = p.name {
                v["Name"] = n.into();
            }
            (p.cid.to_string(), v)
        })
        .collect();
    Ok(axum::Json(json!({ "Keys": keys })).into_response())
}

/// `pin/verify`: one `{"Cid","Ok","BadNodes":[{"Cid","Err"}]}` per pin; good pins only with
/// `verbose=true` (as kubo).
pub async fn pin_verify(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let verbose = args.flag("verbose", false)?;
    let checks = blocking(move |_| Ok(pins::verify(ctx.node.store())?)).await?;
    Ok(ndjson(checks.into_iter().filter(|c| verbose || c.problem.is_some()).map(|c| {
        let cid = c.cid.to_string();
        let bad: Vec<Value> = c.problem.iter().map(|p| json!({ "Cid": cid, "Err": p })).collect();
        json!({ "Cid": cid, "Ok": c.problem.is_none(), "BadNodes": bad })
    })))
}
