//! `block/get|put|stat|rm` and `dag/import|export`.
//!
//! `block/get`, `block/stat` and `dag/export` fetch missing blocks through the node (unless
//! `offline=true`); `dag/export` first makes the whole DAG local, so a CAR is never cut short
//! by a missing block after its header went out. `dag/import` streams each CAR part into the
//! CAR importer on a blocking thread and pins the roots once every part is in, as offline.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_protocol::cids::{self, HashFn};
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::{Block, Cid};
use serde_json::{json, Value};

use super::args::{cid_arg, Args};
use super::error::ApiError;
use super::pin::ensure_local;
use super::stream::{self, blocking, blocking_body, ndjson, BodyReader};
use super::Ctx;
use crate::car_io::{self, ImportOptions};
use crate::exporter;
use crate::pins::{self, PinKind};
use crate::store::key_of;

/// Largest block `block/put` accepts: what Bitswap can carry.
pub const MAX_BLOCK: usize = 2 * 1024 * 1024;

/// `block/get`: `arg` = CID; the raw bytes.
pub async fn block_get(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let cid = cid_arg(args.arg()?)?;
    let offline = args.flag("offline", false)?;
    let data = blocking(move |token| {
        let mut fetch = stream::fetcher(&ctx, offline, token.clone());
        fetch(&cid).map_err(|e| ApiError::failed(e.to_string()))
    })
    .await?;
    let mut resp = Body::from(data).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(resp)
}

/// `block/stat`: `arg` = CID; `{"Key","Size"}`.
pub async fn block_stat(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let cid = cid_arg(args.arg()?)?;
    let offline = args.flag("offline", false)?;
    let size = blocking(move |token| {
        if let Some(size) = ctx.node.store().size(&cid)? {
            return Ok(size);
        }
        let mut fetch = stream::fetcher(&ctx, offline, token.clone());
        Ok(fetch(&cid).map_err(|e| ApiError::failed(e.to_string()))?.len() as u64)
    })
    .await?;
    Ok(axum::Json(json!({ "Key": cid.to_string(), "Size": size })).into_response())
}

/// `block/put`: one block per multipart part; `cid-codec` (raw, dag-pb, dag-cbor), `mhtype`
/// (sha2-256, blake3), `pin`. One `{"Key","Size"}` per block.
pub async fn block_put(
    State(ctx): State<Ctx>,
    args: Args,
    body: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut body = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let codec_name = args.get("cid-codec").or(args.get("format")).unwrap_or("raw").to_string();
    let codec = match codec_name.as_str() {
        "raw" => cids::RAW,
        "dag-pb" | "protobuf" => cids::DAG_PB,
        "dag-cbor" | "cbor" => cids::DAG_CBOR,
        other => return Err(ApiError::bad(format!("unsupported codec {other:?}: use raw, dag-pb or dag-cbor"))),
    };
    let mhtype = args.get("mhtype").unwrap_or("sha2-256");
    let hash = HashFn::from_name(mhtype).ok_or_else(|| ApiError::bad(format!("unknown hash {mhtype:?}")))?;
    let pin = args.flag("pin", false)?;
    let mut rows = Vec::new();
    while let Some(mut field) = body.next_field().await.map_err(|e| ApiError::bad(e.body_text()))? {
        let mut data = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad(e.body_text()))? {
            len += chunk.len();
            if len <= MAX_BLOCK {
                data.extend_from_slice(&chunk);
            }
        }
        if len > MAX_BLOCK {
            return Err(ApiError::bad(format!(
                "block of {len} bytes is larger than the {MAX_BLOCK}-byte limit peers accept"
            )));
        }
        let data = Bytes::from(data);
        let cid = cids::cid_for(cid::Version::V1, codec, hash, &data);
        // Refuse blocks that do not parse as their codec: they would poison every reader.
        crate::dag::links(&cid, &data).map_err(|e| ApiError::context(format!("not a valid {codec_name} block"), &e))?;
        if codec == cids::DAG_PB {
            PbNode::decode(&data)?;
        }
        let store = ctx.node.store().clone();
        let size = data.len();
        blocking(move |_| {
            store.put_many([Block::new_unchecked(cid, data)])?;
            if pin {
                pins::add(&store, &cid, PinKind::Direct, None)?;
            }
            Ok(())
        })
        .await?;
        rows.push(json!({ "Key": cid.to_string(), "Size": size }));
    }
    if rows.is_empty() {
        return Err(ApiError::bad("no block in the request: send the data as a multipart file part"));
    }
    Ok(ndjson(rows))
}

/// `block/rm`: `arg` = CIDs, `force`. One `{"Hash"}` per removed block; the first failure
/// ends the list with `{"Hash","Error"}` (pinned blocks are refused, missing ones too unless
/// `force`).
pub async fn block_rm(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let list: Vec<String> = args.some()?.into_iter().map(String::from).collect();
    let force = args.flag("force", false)?;
    let rows = blocking(move |_| {
        let store = ctx.node.store();
        let pinned = pins::list(store, &[PinKind::Recursive, PinKind::Direct, PinKind::Indirect])?;
        let mut rows = Vec::new();
        for text in list {
            let step = (|| -> Result<Option<Cid>, ApiError> {
                let cid = cid_arg(&text)?;
                if let Some(p) = pinned.iter().find(|p| p.cid.hash() == cid.hash()) {
                    return Err(ApiError::failed(format!("cannot remove {cid}: it is pinned ({})", p.kind.as_str())));
                }
                if !store.has(&cid)? {
                    if force {
                        return Ok(None);
                    }
                    return Err(ApiError::failed(format!("block {cid} is not in the local store")));
                }
                store.remove_keys(&[key_of(&cid)])?;
                Ok(Some(cid))
            })();
            match step {
                Ok(Some(cid)) => rows.push(json!({ "Hash": cid.to_string() })),
                Ok(None) => {}
                Err(e) => {
                    rows.push(json!({ "Hash": text, "Error": e.message() }));
                    break;
                }
            }
        }
        Ok(rows)
    })
    .await?;
    Ok(ndjson(rows))
}

/// `dag/import`: CAR files (v1 or v2) as multipart parts; `pin-roots` (default true), `stats`.
/// One `{"Root":{"Cid":{"/":cid},"PinErrorMsg"}}` per root, then `{"Stats":{...}}` if asked.
pub async fn dag_import(
    State(ctx): State<Ctx>,
    args: Args,
    body: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut body = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let pin_roots = args.flag("pin-roots", true)?;
    let stats = args.flag("stats", false)?;
    let mut roots: Vec<Cid> = Vec::new();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(mut field) = body.next_field().await.map_err(|e| ApiError::bad(e.body_text()))? {
        let name = field.file_name().filter(|n| !n.is_empty()).unwrap_or("standard input").to_string();
        let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy().into_owned();
        let (tx, reader) = BodyReader::channel();
        let store = ctx.node.store().clone();
        let job = tokio::task::spawn_blocking(move || {
            car_io::import(&store, reader, &ImportOptions { pin_roots: false }, &|_| {})
        });
        let mut fed = Ok(());
        while let Some(chunk) = field.chunk().await.transpose() {
            match chunk {
                // A closed channel means the importer stopped; its error says why.
                Ok(c) => {
                    if tx.send(c).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    fed = Err(ApiError::bad(e.body_text()));
                    break;
                }
            }
        }
        drop(tx);
        let report = job.await.map_err(|e| ApiError::failed(format!("internal error: {e}")))?;
        fed?;
        let report = report.map_err(|e| ApiError::context(format!("importing {name} (nothing was pinned)"), &e))?;
        blocks += report.blocks;
        bytes += report.bytes;
        roots.extend(report.header.roots);
    }
    let mut rows: Vec<Value> = Vec::new();
    if pin_roots {
        let store = ctx.node.store().clone();
        let (pinned, missing) = blocking(move |_| {
            car_io::pin_roots(&store, &roots)
                .map_err(|e| ApiError::context("blocks were imported, but pinning failed", &e))
        })
        .await?;
        for cid in &pinned {
            rows.push(json!({ "Root": { "Cid": { "/": cid.to_string() }, "PinErrorMsg": "" } }));
        }
        ctx.node.announce(pinned).await;
        for m in missing {
            let msg = format!("its DAG is incomplete: block {} is not in the store", m.missing);
            rows.push(json!({ "Root": { "Cid": { "/": m.root.to_string() }, "PinErrorMsg": msg } }));
        }
    }
    if stats {
        rows.push(json!({ "Stats": { "BlockCount": blocks, "BlockBytesCount": bytes } }));
    }
    Ok(ndjson(rows))
}

/// `dag/export`: `arg` = root path; a CARv1 of the whole DAG.
pub async fn dag_export(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let path = args.arg()?.to_string();
    let offline = args.flag("offline", false)?;
    blocking_body("application/vnd.ipld.car", move |w| {
        let token = w.token();
        let mut fetch = stream::fetcher(&ctx, offline, token.clone());
        let root = exporter::resolve_from(&mut fetch, &path)
            .map_err(|e| ApiError::context(format!("resolving {path}"), &e))?;
        let store = ctx.node.store();
        let _fetched = ensure_local(store, &root, &mut fetch, &token)?;
        car_io::export(store, &root, w).map_err(|e| ApiError::context(format!("exporting {root}"), &e))?;
        Ok(())
    })
    .await
}
