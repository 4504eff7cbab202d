//! The node's own and network commands: `version`, `id`, `swarm/*`, `dht/*`, `bitswap/*`,
//! `stats/bw`, `shutdown`. Each is one request to the swarm task or Bitswap through their
//! handles; nothing here blocks.
//!
//! `stats/bw` reports Bitswap's block byte counters (`TotalIn`/`TotalOut`): there are no
//! transport-level counters yet, and rates are not measured (always 0).

use std::io;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use serde_json::{json, Value};

use super::args::{cid_arg, Args};
use super::error::ApiError;
use super::stream::{blocking, ndjson};
use super::Ctx;
use crate::dag::{self, WalkMode};
use crate::net;

/// kubo's routing event types, as `dht/*` answers carry them.
const FINAL_PEER: u8 = 2;
const PROVIDER: u8 = 4;

/// Providers `dht/findprovs` looks for unless told (`num-providers`), as kubo.
const DEFAULT_PROVIDERS: usize = 20;

/// Most providers one `dht/findprovs` may ask for.
const MAX_PROVIDERS: usize = 1000;

fn json_resp(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// `version`.
pub async fn version() -> Response {
    json_resp(json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Commit": "",
        "Repo": crate::repo::REPO_VERSION.to_string(),
        "System": format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
        "Golang": "",
    }))
}

/// `id`: this node's identity and addresses (with `/p2p/<id>`). Other peers' records are not
/// kept, so an `arg` naming another peer is refused.
pub async fn id(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let me = ctx.node.net().local_peer_id();
    if let Some(other) = args.all().first() {
        if *other != me.to_string() {
            return Err(ApiError::bad("`id` of another peer is not supported: use `dht/findpeer` for its addresses"));
        }
    }
    let mut proto = vec![0x08, 0x01, 0x12, 0x20];
    proto.extend_from_slice(&ctx.node.repo().identity().public_bytes());
    let addrs: Vec<String> = ctx.node.net().addrs().await?.into_iter().map(|a| format!("{a}/p2p/{me}")).collect();
    Ok(json_resp(json!({
        "ID": me.to_string(),
        "PublicKey": base64::engine::general_purpose::STANDARD.encode(proto),
        "Addresses": addrs,
        "AgentVersion": concat!("cairn/", env!("CARGO_PKG_VERSION")),
        "ProtocolVersion": "ipfs/0.1.0",
    })))
}

/// `swarm/peers`: `{"Peers":[{"Addr","Peer","Connections"}]}`.
pub async fn swarm_peers(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let peers: Vec<Value> = ctx
        .node
        .net()
        .peers()
        .await?
        .into_iter()
        .map(|p| {
            json!({ "Addr": p.addr, "Peer": p.peer, "Latency": "", "Muxer": "", "Direction": 0,
                          "Streams": null, "Connections": p.connections })
        })
        .collect();
    Ok(json_resp(json!({ "Peers": peers })))
}

fn parse_addr(text: &str) -> Result<Multiaddr, ApiError> {
    text.parse().map_err(|_| ApiError::bad(format!("invalid multiaddr {text:?}")))
}

/// `swarm/connect`: `arg` = multiaddrs; `{"Strings":["connect <peer> success"]}`.
pub async fn swarm_connect(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let mut lines = Vec::new();
    for text in args.some()? {
        let addr = parse_addr(text)?;
        let peer =
            ctx.node.net().dial(addr).await.map_err(|e| ApiError::failed(format!("connect {text} failure: {e}")))?;
        lines.push(format!("connect {peer} success"));
    }
    Ok(json_resp(json!({ "Strings": lines })))
}

/// `swarm/disconnect`: `arg` = peer IDs or multiaddrs ending in `/p2p/<id>`.
pub async fn swarm_disconnect(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let mut lines = Vec::new();
    for text in args.some()? {
        let peer = parse_peer(text)?;
        if !ctx.node.net().disconnect(peer).await? {
            return Err(ApiError::failed(format!("disconnect {peer} failure: not connected")));
        }
        lines.push(format!("disconnect {peer} success"));
    }
    Ok(json_resp(json!({ "Strings": lines })))
}

fn parse_peer(text: &str) -> Result<PeerId, ApiError> {
    if text.starts_with('/') {
        let addr = parse_addr(text)?;
        return net::peer_of(&addr).ok_or_else(|| ApiError::bad(format!("{text} does not end in /p2p/<peer ID>")));
    }
    text.parse().map_err(|_| ApiError::bad(format!("invalid peer ID {text:?}")))
}

/// `swarm/addrs`: the addresses of connected peers, `{"Addrs":{peer:[addr]}}`.
pub async fn swarm_addrs(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let mut map = serde_json::Map::new();
    for p in ctx.node.net().peers().await? {
        map.insert(p.peer, json!([p.addr]));
    }
    Ok(json_resp(json!({ "Addrs": map })))
}

/// `swarm/addrs/local`: our listen and external addresses, `{"Strings":[...]}` (`id=true`
/// appends `/p2p/<id>`).
pub async fn swarm_addrs_local(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let with_id = args.flag("id", false)?;
    let me = ctx.node.net().local_peer_id();
    let addrs: Vec<String> = ctx
        .node
        .net()
        .addrs()
        .await?
        .into_iter()
        .map(|a| if with_id { format!("{a}/p2p/{me}") } else { a.to_string() })
        .collect();
    Ok(json_resp(json!({ "Strings": addrs })))
}

fn routing_event(kind: u8, peer: &str, addrs: &[String], extra: &str) -> Value {
    json!({ "Extra": extra, "ID": "", "Responses": [{ "ID": peer, "Addrs": addrs }], "Type": kind })
}

/// `dht/findprovs`: `arg` = CID, `num-providers`; one kubo routing event (type 4, provider) per
/// provider, streamed as the DHT finds them.
pub async fn dht_findprovs(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let cid = cid_arg(args.arg()?)?;
    let n = args.u64("num-providers")?.map_or(DEFAULT_PROVIDERS, |n| n as usize);
    if n == 0 || n > MAX_PROVIDERS {
        return Err(ApiError::bad(format!("num-providers must be between 1 and {MAX_PROVIDERS}")));
    }
    let rx = ctx.node.net().find_providers(cid, n).await?;
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let peer = rx.recv().await?;
        let mut line = serde_json::to_vec(&routing_event(PROVIDER, &peer.to_string(), &[], "")).ok()?;
        line.push(b'\n');
        Some((Ok::<Bytes, io::Error>(Bytes::from(line)), rx))
    });
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert("X-Chunked-Output", HeaderValue::from_static("1"));
    Ok(resp)
}

/// `dht/findpeer`: `arg` = peer ID; one routing event (type 2, final peer) with its addresses.
pub async fn dht_findpeer(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let peer = parse_peer(args.arg()?)?;
    let addrs: Vec<String> = ctx.node.net().find_peer(peer).await?.into_iter().map(|a| a.to_string()).collect();
    if addrs.is_empty() {
        return Err(ApiError::failed(format!("routing: peer {peer} not found")));
    }
    Ok(ndjson([routing_event(FINAL_PEER, &peer.to_string(), &addrs, "")]))
}

/// `dht/provide`: `arg` = CIDs (held locally), `recursive` (every block of their DAGs).
/// Announces each key with one DHT walk and answers one event per key, `Extra` naming it.
pub async fn dht_provide(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let roots = args.some()?.into_iter().map(cid_arg).collect::<Result<Vec<_>, _>>()?;
    let recursive = args.flag("recursive", false)?;
    let node = ctx.node.clone();
    let keys = blocking(move |_| {
        let store = node.store();
        let mut keys = Vec::new();
        for root in roots {
            if !store.has(&root)? {
                return Err(ApiError::failed(format!(
                    "block {root} is not in the local store: only held blocks can be provided"
                )));
            }
            if recursive {
                dag::walk(store, &root, WalkMode::LinksOnly, true, &mut |c, _| {
                    keys.push(*c);
                    Ok(())
                })?;
            } else {
                keys.push(root);
            }
        }
        Ok(keys)
    })
    .await?;
    let me = ctx.node.net().local_peer_id().to_string();
    let mut rows = Vec::new();
    for key in keys {
        ctx.node.net().provide(key).await.map_err(|e| ApiError::failed(format!("providing {key}: {e}")))?;
        rows.push(routing_event(PROVIDER, &me, &[], &key.to_string()));
    }
    Ok(ndjson(rows))
}

/// `bitswap/stat`: kubo's fields (`Wantlist`, `Peers`, `BlocksReceived`, `DataReceived`,
/// `BlocksSent`, `DataSent`, `DupBlksReceived`, `DupDataReceived`) plus cairn's own counters.
pub async fn bitswap_stat(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let s = ctx.node.bitswap().stats().await?;
    let wantlist: Vec<Value> =
        ctx.node.bitswap().wantlist().await?.iter().map(|c| json!({ "/": c.to_string() })).collect();
    let peers: Vec<String> = ctx.node.net().peers().await?.into_iter().map(|p| p.peer).collect();
    Ok(json_resp(json!({
        "ProvideBufLen": 0,
        "Wantlist": wantlist,
        "Peers": peers,
        "BlocksReceived": s.blocks_received,
        "DataReceived": s.bytes_received,
        "BlocksSent": s.blocks_sent,
        "DataSent": s.bytes_sent,
        "DupBlksReceived": s.dup_blocks,
        "DupDataReceived": s.dup_bytes,
        "MessagesReceived": s.messages_received,
        "UnwantedBlocks": s.unwanted_blocks,
        "ProtocolViolations": s.protocol_violations,
        "PeersBanned": s.peers_banned,
        "BannedNow": s.banned_now,
        "LedgerPeers": s.ledger_peers,
        "LedgerWants": s.ledger_wants,
    })))
}

/// `bitswap/wantlist`: `{"Keys":[{"/":cid}]}`; with `peer`, what that peer wants from us.
pub async fn bitswap_wantlist(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let list = match args.get("peer") {
        Some(p) => ctx.node.bitswap().peer_wantlist(parse_peer(p)?).await?,
        None => ctx.node.bitswap().wantlist().await?,
    };
    let keys: Vec<Value> = list.iter().map(|c| json!({ "/": c.to_string() })).collect();
    Ok(json_resp(json!({ "Keys": keys })))
}

/// `stats/bw`: Bitswap block bytes in and out (see the module docs).
pub async fn stats_bw(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let s = ctx.node.bitswap().stats().await?;
    Ok(json_resp(json!({ "TotalIn": s.bytes_received, "TotalOut": s.bytes_sent, "RateIn": 0.0, "RateOut": 0.0 })))
}

/// `provide/stat`: the DHT announcement schedule.
pub async fn provide_stat(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let s = ctx.node.provider().stat();
    Ok(json_resp(json!({
        "Queued": s.queued, "Provided": s.provided, "Failed": s.failed, "TotalKeys": s.total_keys,
        "LastProvide": s.last_provide, "LagSeconds": s.lag_secs, "Walks": s.walks,
    })))
}

/// `shutdown`: stop the node (the daemon then stops the API, flushes the store and exits).
pub async fn shutdown(State(ctx): State<Ctx>) -> Response {
    tracing::info!("shutdown requested through the API");
    ctx.node.shutdown_token().cancel();
    Body::empty().into_response()
}
