//! `pin/add`, `pin/rm`, `pin/ls`, `pin/verify`.
//!
//! `pin/add` of content this node does not hold fetches the whole DAG first (online), and
//! records the pin as pending while it does, so an interrupted pin resumes when the daemon
//! restarts; offline, every block must already be local. `pin/rm` stops announcing the blocks
//! that no other pin reaches (online: the provider is the daemon's).

use std::collections::BTreeMap;

use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::work::{self, blocking, ensure_local, ensure_local_block};
use super::{json_reply, Args, Command, Ctx, Op, OpError, Reply};
use crate::exporter;
use crate::pins::{self, PinKind};

/// `pin/add`: pin paths, recursively by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinAdd {
    /// `CID[/path]`s.
    pub paths: Vec<String>,
    /// The whole DAG (false: the block only).
    pub recursive: bool,
    /// A label for the pins.
    pub name: Option<String>,
    /// Only blocks already in the store.
    pub offline: bool,
}

/// The CIDs pinned or unpinned: kubo's `{"Pins":[cid…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pins {
    /// In the order asked.
    pub pins: Vec<String>,
}
json_reply!(Pins);

impl Command for PinAdd {
    const NAME: &'static str = "pin/add";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.paths.iter().map(|p| ("arg", p.clone())).collect();
        a.push(("recursive", self.recursive.to_string()));
        a.extend(self.name.clone().map(|n| ("name", n)));
        a.push(("offline", self.offline.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(PinAdd {
            paths: args.some()?.into_iter().map(String::from).collect(),
            recursive: args.flag("recursive", true)?,
            name: args.get("name").filter(|n| !n.is_empty()).map(String::from),
            offline: args.flag("offline", false)?,
        })
    }
}

impl Op for PinAdd {
    type Output = Pins;

    async fn run(self, ctx: Ctx) -> Result<Pins, OpError> {
        let kind = if self.recursive { PinKind::Recursive } else { PinKind::Direct };
        let (name, offline, paths) = (self.name, self.offline, self.paths);
        let pinned = match &ctx {
            Ctx::Online(node) if !offline => {
                // Resolve first, then fetch each whole DAG and pin it (resumable).
                let mut blocks = work::blocks(&ctx, false, CancellationToken::new());
                let mut roots = Vec::new();
                for p in &paths {
                    let (root, segments) = super::name::content_path(&ctx, p).await?;
                    roots.push(blocks.resolve(root, &segments).await?);
                }
                for cid in &roots {
                    node.pin_remote(*cid, kind, name.clone())
                        .await
                        .map_err(|e| OpError::failed(format!("pinning {cid}: {e}")))?;
                }
                roots
            }
            _ => {
                let store = ctx.store().clone();
                let mut blocks = work::blocks(&ctx, offline, CancellationToken::new());
                let mut pinned = Vec::new();
                for p in paths {
                    let (root, segments) = super::name::content_path(&ctx, &p).await?;
                    let cid = blocks.resolve(root, &segments).await?;
                    // Held until the pin is written: the fetched blocks stay safe from GC.
                    let fetched = match kind {
                        PinKind::Recursive => ensure_local(&store, &cid, &mut blocks).await?,
                        _ => ensure_local_block(&store, &cid, &mut blocks).await?,
                    };
                    let (s, name) = (store.clone(), name.clone());
                    blocking(move |_| Ok(pins::add(&s, &cid, kind, name)?)).await?;
                    drop(fetched);
                    pinned.push(cid);
                }
                pinned
            }
        };
        ctx.announce(pinned.clone()).await;
        Ok(Pins { pins: pinned.iter().map(Cid::to_string).collect() })
    }
}

/// `pin/rm`: remove pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRm {
    /// `CID[/path]`s.
    pub paths: Vec<String>,
}

impl Command for PinRm {
    const NAME: &'static str = "pin/rm";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.paths.iter().map(|p| ("arg", p.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(PinRm { paths: args.some()?.into_iter().map(String::from).collect() })
    }
}

impl Op for PinRm {
    type Output = Pins;

    async fn run(self, ctx: Ctx) -> Result<Pins, OpError> {
        let c = ctx.clone();
        let online = matches!(ctx, Ctx::Online(_));
        let (removed, unannounced) = blocking(move |_| {
            let store = c.store();
            let mut removed = Vec::new();
            for p in self.paths {
                let cid = exporter::resolve(store, &p)?;
                pins::rm(store, &cid)?;
                removed.push(cid);
            }
            // Blocks of the unpinned DAGs that no other pin reaches are no longer announced.
            let unannounced = if online { crate::gc::unreached(store, &removed)? } else { Vec::new() };
            Ok((removed, unannounced))
        })
        .await?;
        if let Ctx::Online(node) = &ctx {
            node.provider().forget(unannounced).await;
        }
        Ok(Pins { pins: removed.iter().map(Cid::to_string).collect() })
    }
}

/// Which pins `pin/ls` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PinType {
    /// Every kind.
    #[default]
    All,
    /// Recursive pins.
    Recursive,
    /// Direct pins.
    Direct,
    /// Blocks under recursive pins.
    Indirect,
    /// Pins whose DAG is still being fetched (`pin add`, a follow's next version).
    Pending,
}

impl PinType {
    /// kubo's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PinType::All => "all",
            PinType::Recursive => "recursive",
            PinType::Direct => "direct",
            PinType::Indirect => "indirect",
            PinType::Pending => "pending",
        }
    }

    fn parse(t: &str) -> Result<PinType, OpError> {
        Ok(match t {
            "all" => PinType::All,
            "recursive" => PinType::Recursive,
            "direct" => PinType::Direct,
            "indirect" => PinType::Indirect,
            "pending" => PinType::Pending,
            other => {
                return Err(OpError::bad(format!(
                    "invalid pin type {other:?}: use all, recursive, direct, indirect or pending"
                )))
            }
        })
    }

    fn kinds(self) -> Vec<PinKind> {
        match self {
            PinType::All => vec![PinKind::Recursive, PinKind::Direct, PinKind::Indirect],
            PinType::Recursive => vec![PinKind::Recursive],
            PinType::Direct => vec![PinKind::Direct],
            PinType::Indirect => vec![PinKind::Indirect],
            PinType::Pending => vec![],
        }
    }
}

/// `pin/ls`: the pins of a type, or only those of some paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinLs {
    /// Which pins.
    pub kind: PinType,
    /// Only these `CID[/path]`s (an error if none of them is pinned).
    pub paths: Vec<String>,
    /// One row per line (else kubo's `{"Keys":{…}}` map).
    pub stream: bool,
}

/// One pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinRow {
    /// The pinned CID.
    pub cid: String,
    /// `recursive`, `direct` or `indirect`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The pin's label.
    pub name: Option<String>,
    /// How far the fetch of a pending pin has come (through a daemon).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub progress: Option<PinProgress>,
}

/// How far a pending pin's fetch has come.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinProgress {
    /// Blocks walked (local or fetched).
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A pin in kubo's `{"Keys":{cid:{"Type","Name"}}}` map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinKey {
    /// `recursive`, `direct` or `indirect`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The pin's label.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// How far the fetch of a pending pin has come (through a daemon).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub progress: Option<PinProgress>,
}

/// `pin/ls`'s answer, in the shape asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinList {
    /// kubo's map, keyed by CID.
    Keys(BTreeMap<String, PinKey>),
    /// One row per line (`stream=true`), in the store's order.
    Rows(Vec<PinRow>),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysBody {
    keys: BTreeMap<String, PinKey>,
}

impl Reply for PinList {
    fn is_lines(&self) -> bool {
        matches!(self, PinList::Rows(_))
    }

    fn to_body(&self) -> Vec<u8> {
        match self {
            PinList::Keys(keys) => serde_json::to_vec(&KeysBody { keys: keys.clone() }).expect("answers serialize"),
            PinList::Rows(rows) => super::Lines(rows.clone()).to_body(),
        }
    }

    fn from_body(body: &[u8]) -> Result<Self, serde_json::Error> {
        match serde_json::from_slice::<KeysBody>(body) {
            Ok(k) => Ok(PinList::Keys(k.keys)),
            Err(_) => super::Lines::from_body(body).map(|l| PinList::Rows(l.0)),
        }
    }
}

impl Command for PinLs {
    const NAME: &'static str = "pin/ls";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![("type", self.kind.as_str().to_string()), ("stream", self.stream.to_string())];
        a.extend(self.paths.iter().map(|p| ("arg", p.clone())));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(PinLs {
            kind: PinType::parse(args.get("type").unwrap_or("all"))?,
            paths: args.all().into_iter().map(String::from).collect(),
            stream: args.flag("stream", false)?,
        })
    }
}

impl Op for PinLs {
    type Output = PinList;

    async fn run(self, ctx: Ctx) -> Result<PinList, OpError> {
        let kinds = self.kind.kinds();
        let paths = self.paths;
        let pending = matches!(self.kind, PinType::All | PinType::Pending) && paths.is_empty();
        let c = ctx.clone();
        let (list, waiting) = blocking(move |_| {
            let store = c.store();
            let mut list = pins::list(store, &kinds)?;
            if !paths.is_empty() {
                let wanted = paths.iter().map(|p| exporter::resolve(store, p)).collect::<Result<Vec<_>, _>>()?;
                list.retain(|p| wanted.iter().any(|w| w.hash() == p.cid.hash()));
                if list.is_empty() {
                    return Err(OpError::failed(format!("not pinned: {}", paths.join(", "))));
                }
            }
            let waiting = if pending { crate::pinning::pending_roots(store)? } else { Vec::new() };
            Ok((list, waiting))
        })
        .await?;
        let mut rows: Vec<PinRow> = list
            .into_iter()
            .map(|p| PinRow { cid: p.cid.to_string(), kind: p.kind.as_str().into(), name: p.name, progress: None })
            .collect();
        if pending {
            // Interrupted pins (from the store) and fetches under way (the daemon's).
            let mut under_way = match &ctx {
                Ctx::Online(node) => node.pinning().list(),
                Ctx::Offline(_) => Vec::new(),
            };
            for root in waiting {
                if !under_way.iter().any(|(c, _)| *c == root) {
                    under_way.push((root, Default::default()));
                }
            }
            let online = matches!(ctx, Ctx::Online(_));
            rows.extend(under_way.into_iter().map(|(cid, p)| PinRow {
                cid: cid.to_string(),
                kind: PinType::Pending.as_str().into(),
                name: p.name,
                progress: online.then_some(PinProgress { blocks: p.blocks, bytes: p.bytes }),
            }));
        }
        Ok(if self.stream {
            PinList::Rows(rows)
        } else {
            PinList::Keys(
                rows.into_iter()
                    .map(|r| (r.cid, PinKey { kind: r.kind, name: r.name, progress: r.progress }))
                    .collect(),
            )
        })
    }
}

/// `pin/verify`: check that every pinned DAG is complete and uncorrupted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinVerify {
    /// List good pins too (kubo lists only bad ones unless asked).
    pub verbose: bool,
}

/// One checked pin: kubo's `{"Cid","Ok","BadNodes":[{"Cid","Err"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinCheckRow {
    /// The pin.
    pub cid: String,
    /// Complete and uncorrupted.
    pub ok: bool,
    /// What is wrong with it.
    pub bad_nodes: Vec<BadNode>,
}

/// A problem found under a pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BadNode {
    /// The pin.
    pub cid: String,
    /// The problem.
    pub err: String,
}

impl Command for PinVerify {
    const NAME: &'static str = "pin/verify";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("verbose", self.verbose.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(PinVerify { verbose: args.flag("verbose", false)? })
    }
}

impl Op for PinVerify {
    type Output = super::Lines<PinCheckRow>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let checks = blocking(move |_| Ok(pins::verify(ctx.store())?)).await?;
        Ok(super::Lines(
            checks
                .into_iter()
                .filter(|c| self.verbose || c.problem.is_some())
                .map(|c| {
                    let cid = c.cid.to_string();
                    let bad_nodes = c.problem.iter().map(|p| BadNode { cid: cid.clone(), err: p.clone() }).collect();
                    PinCheckRow { cid, ok: c.problem.is_none(), bad_nodes }
                })
                .collect(),
        ))
    }
}
