//! `block/get|put|stat|rm`: raw blocks. `get` and `stat` fetch a missing block through the
//! node when it runs (unless `offline`).

use std::io::Read;

use bytes::Bytes;
use cairn_protocol::cids::{self, HashFn};
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::{Block, Cid};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::args::cid_arg;
use super::work::{self, blocking};
use super::{json_reply, Args, Command, Ctx, Lines, Op, OpError, Parts, PieceSender, UploadOp, WriteOp};
use crate::pins::{self, PinKind};
use crate::store::key_of;

/// Largest block `block/put` accepts: what Bitswap can carry.
pub const MAX_BLOCK: usize = 2 * 1024 * 1024;

/// `block/get`: a block's raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockGet {
    /// The CID (bare or `/ipfs/<cid>`).
    pub cid: String,
    /// Only the store.
    pub offline: bool,
}

impl Command for BlockGet {
    const NAME: &'static str = "block/get";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.cid.clone()), ("offline", self.offline.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(BlockGet { cid: args.arg()?.to_string(), offline: args.flag("offline", false)? })
    }
}

impl WriteOp for BlockGet {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    async fn write(self, ctx: Ctx, out: PieceSender) -> Result<(), OpError> {
        let cid = cid_arg(&self.cid)?;
        let data = work::blocks(&ctx, self.offline, out.token()).get(&cid).await?;
        out.send(data).await?;
        Ok(())
    }
}

/// A block's CID and size: kubo's `{"Key","Size"}` (`block/stat`, `block/put`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockInfo {
    /// The CID.
    pub key: String,
    /// Bytes.
    pub size: u64,
}
json_reply!(BlockInfo);

/// `block/stat`: a block's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockStat {
    /// The CID.
    pub cid: String,
    /// Only the store.
    pub offline: bool,
}

impl Command for BlockStat {
    const NAME: &'static str = "block/stat";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.cid.clone()), ("offline", self.offline.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(BlockStat { cid: args.arg()?.to_string(), offline: args.flag("offline", false)? })
    }
}

impl Op for BlockStat {
    type Output = BlockInfo;

    async fn run(self, ctx: Ctx) -> Result<BlockInfo, OpError> {
        let cid = cid_arg(&self.cid)?;
        let store = ctx.store().clone();
        let size = match blocking(move |_| Ok(store.size(&cid)?)).await? {
            Some(size) => size,
            None => work::blocks(&ctx, self.offline, CancellationToken::new()).get(&cid).await?.len() as u64,
        };
        Ok(BlockInfo { key: cid.to_string(), size })
    }
}

/// `block/put`: store blocks, one per part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockPut {
    /// `raw`, `dag-pb` or `dag-cbor`.
    pub codec: String,
    /// `sha2-256` or `blake3`.
    pub mhtype: String,
    /// Pin each block directly.
    pub pin: bool,
}

impl Default for BlockPut {
    fn default() -> Self {
        BlockPut { codec: "raw".into(), mhtype: "sha2-256".into(), pin: false }
    }
}

impl Command for BlockPut {
    const NAME: &'static str = "block/put";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("cid-codec", self.codec.clone()), ("mhtype", self.mhtype.clone()), ("pin", self.pin.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(BlockPut {
            codec: args.get("cid-codec").or(args.get("format")).unwrap_or("raw").to_string(),
            mhtype: args.get("mhtype").unwrap_or("sha2-256").to_string(),
            pin: args.flag("pin", false)?,
        })
    }
}

impl UploadOp for BlockPut {
    type Output = Lines<BlockInfo>;

    /// One block plus multipart framing.
    const MAX_BODY: Option<usize> = Some(MAX_BLOCK + 64 * 1024);

    async fn run(self, ctx: Ctx, parts: Parts) -> Result<Self::Output, OpError> {
        let codec = match self.codec.as_str() {
            "raw" => cids::RAW,
            "dag-pb" | "protobuf" => cids::DAG_PB,
            "dag-cbor" | "cbor" => cids::DAG_CBOR,
            other => return Err(OpError::bad(format!("unsupported codec {other:?}: use raw, dag-pb or dag-cbor"))),
        };
        let hash =
            HashFn::from_name(&self.mhtype).ok_or_else(|| OpError::bad(format!("unknown hash {:?}", self.mhtype)))?;
        let (codec_name, pin) = (self.codec, self.pin);
        let rows = blocking(move |_| {
            let store = ctx.store();
            let mut rows = Vec::new();
            for part in parts {
                let part = super::file_part(part, "a block")?;
                let mut data = Vec::new();
                let len =
                    part.data.take(MAX_BLOCK as u64 + 1).read_to_end(&mut data).map_err(|e| {
                        OpError::bad(format!("reading {}: {}", part.name, super::error::error_chain(&e)))
                    })?;
                if len > MAX_BLOCK {
                    return Err(OpError::bad(format!(
                        "{} is larger than the {MAX_BLOCK}-byte limit peers accept for a block",
                        part.name
                    )));
                }
                let data = Bytes::from(data);
                let cid = cids::cid_for(cid::Version::V1, codec, hash, &data);
                check_block(&cid, &data, &codec_name)?;
                store.put_many([Block::new_unchecked(cid, data)])?;
                if pin {
                    pins::add(store, &cid, PinKind::Direct, None)?;
                }
                rows.push(BlockInfo { key: cid.to_string(), size: len as u64 });
            }
            if rows.is_empty() {
                return Err(OpError::bad("no block in the request: send the data as a multipart file part"));
            }
            Ok(rows)
        })
        .await?;
        Ok(Lines(rows))
    }
}

/// Refuse blocks that do not parse as their codec: they would poison every reader.
fn check_block(cid: &Cid, data: &Bytes, codec_name: &str) -> Result<(), OpError> {
    crate::dag::links(cid, data).map_err(|e| OpError::context(format!("not a valid {codec_name} block"), &e))?;
    if cid.codec() == cids::DAG_PB {
        PbNode::decode(data)?;
    }
    Ok(())
}

/// `block/rm`: remove blocks (pinned ones are refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRm {
    /// CIDs.
    pub cids: Vec<String>,
    /// Skip blocks that are not present instead of failing.
    pub force: bool,
}

/// One `block/rm` row: kubo's `{"Hash"}`, or `{"Hash","Error"}` for the failure that ends
/// the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemovedBlock {
    /// The CID (as given, for a failure).
    pub hash: String,
    /// Why it was not removed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Command for BlockRm {
    const NAME: &'static str = "block/rm";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.cids.iter().map(|c| ("arg", c.clone())).collect();
        a.push(("force", self.force.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(BlockRm { cids: args.some()?.into_iter().map(String::from).collect(), force: args.flag("force", false)? })
    }
}

impl Op for BlockRm {
    type Output = Lines<RemovedBlock>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let rows = blocking(move |_| {
            let store = ctx.store();
            let pinned = pins::list(store, &[PinKind::Recursive, PinKind::Direct, PinKind::Indirect])?;
            let mut rows = Vec::new();
            for text in self.cids {
                let step = (|| -> Result<Option<Cid>, OpError> {
                    let cid = cid_arg(&text)?;
                    if let Some(p) = pinned.iter().find(|p| p.cid.hash() == cid.hash()) {
                        return Err(OpError::failed(format!(
                            "cannot remove {cid}: it is pinned ({})",
                            p.kind.as_str()
                        )));
                    }
                    if !store.has(&cid)? {
                        if self.force {
                            return Ok(None);
                        }
                        return Err(OpError::failed(format!("block {cid} is not in the local store")));
                    }
                    store.remove_keys(&[key_of(&cid)])?;
                    Ok(Some(cid))
                })();
                match step {
                    Ok(Some(cid)) => rows.push(RemovedBlock { hash: cid.to_string(), error: None }),
                    Ok(None) => {}
                    Err(e) => {
                        rows.push(RemovedBlock { hash: text, error: Some(e.message()) });
                        break;
                    }
                }
            }
            Ok(rows)
        })
        .await?;
        Ok(Lines(rows))
    }
}
