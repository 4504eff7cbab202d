//! `cairn block …`: on the repo, or through a daemon (`block get` and `block stat` then fetch a
//! missing block from the network).

use std::io::{self, Read, Write};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use cairn_node::pins::{self, PinKind};
use cairn_node::repo::Repo;
use cairn_node::store::key_of;
use cairn_protocol::cids::{self, HashFn};
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::Block;
use serde_json::json;

use super::multipart::{self, Part};
use super::Target;
use crate::args::BlockCommand;
use crate::client::{self, Api};
use crate::output::Printer;

/// Largest block `block put` accepts: what Bitswap can carry.
const MAX_BLOCK: usize = 2 * 1024 * 1024;

/// Run a block subcommand.
pub fn run(t: &Target, cmd: BlockCommand, out: &mut Printer) -> Result<()> {
    match t {
        Target::Local(repo) => local(repo, cmd, out),
        Target::Daemon(api) => remote(api, cmd, out),
    }
}

/// Read `block put`'s input, refusing more than a block.
fn read_input(file: &Option<std::path::PathBuf>) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    match file {
        Some(f) if f.as_os_str() != "-" => {
            data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        }
        _ => {
            io::stdin().lock().read_to_end(&mut data)?;
        }
    }
    if data.len() > MAX_BLOCK {
        bail!("block of {} bytes is larger than the {MAX_BLOCK}-byte limit peers accept", data.len());
    }
    Ok(data)
}

fn local(repo: &Repo, cmd: BlockCommand, out: &mut Printer) -> Result<()> {
    let store = repo.store();
    match cmd {
        BlockCommand::Get { cid } => {
            let cid = cids::parse(&cid)?;
            let data = store.get(&cid)?.with_context(|| format!("block {cid} is not in the local store"))?;
            io::stdout().lock().write_all(&data)?;
        }
        BlockCommand::Put { file, cid_codec, mhtype, pin } => {
            let data = read_input(&file)?;
            let codec = match cid_codec.as_str() {
                "raw" => cids::RAW,
                "dag-pb" => cids::DAG_PB,
                "dag-cbor" => cids::DAG_CBOR,
                other => bail!("unsupported codec {other:?}: use raw, dag-pb or dag-cbor"),
            };
            let hash = HashFn::from_name(&mhtype).with_context(|| format!("unknown hash {mhtype:?}"))?;
            let data = Bytes::from(data);
            let cid = cids::cid_for(cid::Version::V1, codec, hash, &data);
            // Refuse blocks that do not parse as their codec: they would poison every reader.
            cairn_node::dag::links(&cid, &data).with_context(|| format!("not a valid {cid_codec} block"))?;
            if codec == cids::DAG_PB {
                PbNode::decode(&data)?;
            }
            store.put_many([Block::new_unchecked(cid, data.clone())])?;
            if pin {
                pins::add(store, &cid, PinKind::Direct, None)?;
            }
            let c = cid.to_string();
            out.emit(json!({ "Key": c, "Size": data.len() }), || c.clone())?;
        }
        BlockCommand::Stat { cid } => {
            let cid = cids::parse(&cid)?;
            let size = store.size(&cid)?.with_context(|| format!("block {cid} is not in the local store"))?;
            let c = cid.to_string();
            out.emit(json!({ "Key": c, "Size": size }), || format!("Key: {c}\nSize: {size}"))?;
        }
        BlockCommand::Rm { cids: list, force } => {
            let pinned = pins::list(store, &[PinKind::Recursive, PinKind::Direct, PinKind::Indirect])?;
            for text in list {
                let cid = cids::parse(&text)?;
                if let Some(p) = pinned.iter().find(|p| p.cid.hash() == cid.hash()) {
                    bail!("cannot remove {cid}: it is pinned ({})", p.kind.as_str());
                }
                if !store.has(&cid)? {
                    if force {
                        continue;
                    }
                    bail!("block {cid} is not in the local store");
                }
                store.remove_keys(&[key_of(&cid)])?;
                let c = cid.to_string();
                out.emit(json!({ "Hash": c }), || format!("removed {c}"))?;
            }
        }
    }
    Ok(())
}

fn remote(api: &Api, cmd: BlockCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        BlockCommand::Get { cid } => {
            let mut body = client::bytes(api.call("block/get", &[("arg", cid)])?);
            let mut data = Vec::new();
            body.read_to_end(&mut data).context("reading the block from the daemon")?;
            io::stdout().lock().write_all(&data)?;
        }
        BlockCommand::Put { file, cid_codec, mhtype, pin } => {
            let data = read_input(&file)?;
            let part = Part {
                path: String::new(),
                field: "file".into(),
                content_type: "application/octet-stream",
                body: Some(Box::new(io::Cursor::new(data))),
            };
            let body = multipart::Body::new(Box::new(std::iter::once(Ok(part))), None);
            let ct = body.content_type();
            let q = [("cid-codec", cid_codec), ("mhtype", mhtype), ("pin", pin.to_string())];
            for row in client::ndjson(api.call_with("block/put", &q, &ct, body)?) {
                let row = row?;
                let c = row["Key"].as_str().context("a block/put answer without Key")?.to_string();
                out.emit(json!({ "Key": c, "Size": row["Size"] }), || c.clone())?;
            }
        }
        BlockCommand::Stat { cid } => {
            let v = api.json("block/stat", &[("arg", cid)])?;
            let c = v["Key"].as_str().context("a block/stat answer without Key")?.to_string();
            let size = v["Size"].as_u64().context("a block/stat answer without Size")?;
            out.emit(json!({ "Key": c, "Size": size }), || format!("Key: {c}\nSize: {size}"))?;
        }
        BlockCommand::Rm { cids: list, force } => {
            let mut q: Vec<(&str, String)> = list.into_iter().map(|c| ("arg", c)).collect();
            q.push(("force", force.to_string()));
            for row in client::ndjson(api.call("block/rm", &q)?) {
                let row = row?;
                if let Some(e) = row["Error"].as_str() {
                    bail!("{e}");
                }
                let c = row["Hash"].as_str().context("a block/rm answer without Hash")?.to_string();
                out.emit(json!({ "Hash": c }), || format!("removed {c}"))?;
            }
        }
    }
    Ok(())
}
