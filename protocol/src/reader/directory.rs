//! Directories: looking a name up (through HAMT shards, one sub-shard at a time) and listing
//! every entry, as state machines and as blocking drivers over a `fetch` callback.

use bytes::Bytes;
use cid::Cid;

use super::{decode_pb, fetch_block, load, Entry, Node, ReadError, ReadErrorKind, SourceError};
use crate::cids::DAG_PB;
use crate::dagpb::{PbLink, PbNode};
use crate::dir::validate_entry_name;
use crate::hamt::{self, HamtError, LookupStep, ShardItem};
use crate::unixfs::{Data, DataType};

/// Where a lookup of one name in a directory stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name links to this CID.
    Found(Cid),
    /// The directory has no such name.
    Missing,
    /// The answer lies in this sub-shard: pass its bytes and `depth` to [`lookup_in`].
    Need {
        /// The sub-shard.
        shard: Cid,
        /// Its depth in the HAMT.
        depth: usize,
    },
}

impl From<LookupStep> for Lookup {
    fn from(step: LookupStep) -> Self {
        match step {
            LookupStep::Found(link) => Lookup::Found(link.hash),
            LookupStep::NotFound => Lookup::Missing,
            LookupStep::Descend { cid, depth } => Lookup::Need { shard: cid, depth },
        }
    }
}

/// Look `name` up in the directory `node` (plain or sharded): the first step.
pub fn lookup(dir: &Cid, node: &Node, name: &str) -> Result<Lookup, ReadError> {
    match node {
        Node::Directory { links } => Ok(links
            .iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map_or(Lookup::Missing, |l| Lookup::Found(l.hash))),
        Node::Shard { node, data } => Ok(hamt::lookup(node, data, name, 0)
            .map_err(|source| ReadError::from(ReadErrorKind::Hamt { cid: *dir, source }))?
            .into()),
        other => {
            Err(ReadError::from(ReadErrorKind::NotDirectory { cid: *dir, kind: other.kind(), name: name.to_string() }))
        }
    }
}

/// The next step of a lookup, in the sub-shard a [`Lookup::Need`] asked for.
pub fn lookup_in(shard: &Cid, bytes: &Bytes, name: &str, depth: usize) -> Result<Lookup, ReadError> {
    let (sub, data) = shard_of(shard, bytes)?;
    Ok(hamt::lookup(&sub, &data, name, depth)
        .map_err(|source| ReadError::from(ReadErrorKind::Hamt { cid: *shard, source }))?
        .into())
}

/// Find `name` in the directory `node` (plain or sharded), fetching sub-shards as needed.
pub fn find(
    dir: &Cid,
    node: &Node,
    name: &str,
    fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
) -> Result<Option<Cid>, ReadError> {
    let mut step = lookup(dir, node, name)?;
    loop {
        match step {
            Lookup::Found(cid) => return Ok(Some(cid)),
            Lookup::Missing => return Ok(None),
            Lookup::Need { shard, depth } => {
                let bytes = fetch_block(&shard, fetch)?;
                step = lookup_in(&shard, &bytes, name, depth)?;
            }
        }
    }
}

/// Decode a block that must be a HAMT shard node.
fn shard_of(cid: &Cid, bytes: &Bytes) -> Result<(PbNode, Data), ReadError> {
    if cid.codec() != DAG_PB {
        return Err(ReadError::from(ReadErrorKind::Hamt { cid: *cid, source: HamtError::NotShard }));
    }
    let (node, data) = decode_pb(cid, bytes)?;
    if data.kind().ok() != Some(DataType::HamtShard) {
        return Err(ReadError::from(ReadErrorKind::Hamt { cid: *cid, source: HamtError::NotShard }));
    }
    Ok((node, data))
}

/// Resolve `segments` below `root`, one directory at a time.
pub fn resolve(
    root: Cid,
    segments: &[String],
    fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
) -> Result<Cid, ReadError> {
    let mut cid = root;
    for name in segments {
        let node = load(&cid, fetch)?;
        cid = find(&cid, &node, name, fetch)?
            .ok_or_else(|| ReadError::from(ReadErrorKind::NotFound { parent: cid, name: name.clone() }))?;
    }
    Ok(cid)
}

fn checked_entry(parent: &Cid, name: String, link: &PbLink) -> Result<Entry, ReadError> {
    if let Err(e) = validate_entry_name(&name) {
        let reason = match e {
            crate::dir::DirError::InvalidName { reason, .. } => reason.to_string(),
            other => other.to_string(),
        };
        return Err(ReadError::from(ReadErrorKind::UnsafeName { parent: *parent, name, reason }));
    }
    Ok(Entry { name, cid: link.hash, tsize: link.tsize.unwrap_or(0) })
}

/// What a [`Listing`] wants next.
#[derive(Debug)]
pub enum ListStep {
    /// The bytes of this sub-shard: pass them to [`Listing::give`].
    Need(Cid),
    /// Every entry, in slot order.
    Done(Vec<Entry>),
}

/// Lists a directory, plain or sharded, asking for one sub-shard at a time. Entry names are
/// checked: an unsafe one fails the whole listing.
#[derive(Debug)]
pub struct Listing {
    dir: Cid,
    out: Vec<Entry>,
    /// (shard node CID, its depth, its items in reverse so `pop` yields slot order).
    stack: Vec<(Cid, usize, Vec<ShardItem>)>,
    /// The sub-shard asked for, and its depth.
    waiting: Option<(Cid, usize)>,
}

impl Listing {
    /// Start listing the directory `node` (the block `dir`).
    pub fn new(dir: &Cid, node: &Node) -> Result<Listing, ReadError> {
        let mut listing = Listing { dir: *dir, out: Vec::new(), stack: Vec::new(), waiting: None };
        match node {
            Node::Directory { links } => {
                for l in links {
                    listing.out.push(checked_entry(dir, l.name.clone().unwrap_or_default(), l)?);
                }
            }
            Node::Shard { node, data } => {
                let items = hamt::items(node, data)
                    .map_err(|source| ReadError::from(ReadErrorKind::Hamt { cid: *dir, source }))?;
                listing.stack.push((*dir, 0, items.into_iter().rev().collect()));
            }
            other => {
                return Err(ReadError::from(ReadErrorKind::NotDirectory {
                    cid: *dir,
                    kind: other.kind(),
                    name: String::new(),
                }))
            }
        }
        Ok(listing)
    }

    /// The next sub-shard needed, or every entry once none is left.
    pub fn next_step(&mut self) -> Result<ListStep, ReadError> {
        if let Some((cid, _)) = self.waiting {
            return Ok(ListStep::Need(cid));
        }
        while let Some((cid, depth, mut items)) = self.stack.pop() {
            let Some(item) = items.pop() else { continue };
            self.stack.push((cid, depth, items));
            match item {
                ShardItem::Entry { name, link } => self.out.push(checked_entry(&self.dir, name, &link)?),
                ShardItem::Shard(sub) => {
                    if depth + 1 >= hamt::MAX_DEPTH {
                        return Err(ReadError::from(ReadErrorKind::Hamt { cid: sub, source: HamtError::TooDeep }));
                    }
                    self.waiting = Some((sub, depth + 1));
                    return Ok(ListStep::Need(sub));
                }
            }
        }
        Ok(ListStep::Done(std::mem::take(&mut self.out)))
    }

    /// The bytes of the sub-shard the last [`ListStep::Need`] asked for.
    pub fn give(&mut self, bytes: &Bytes) -> Result<(), ReadError> {
        let Some((sub, depth)) = self.waiting.take() else { return Ok(()) };
        let (n, d) = shard_of(&sub, bytes)?;
        let items = hamt::items(&n, &d).map_err(|source| ReadError::from(ReadErrorKind::Hamt { cid: sub, source }))?;
        self.stack.push((sub, depth, items.into_iter().rev().collect()));
        Ok(())
    }
}

/// Every entry of a directory (for a HAMT, across all its sub-shards, in slot order). Entry
/// names are checked: an unsafe one fails the whole listing.
pub fn list(
    dir: &Cid,
    node: &Node,
    fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
) -> Result<Vec<Entry>, ReadError> {
    let mut listing = Listing::new(dir, node)?;
    loop {
        match listing.next_step()? {
            ListStep::Need(cid) => {
                let bytes = fetch_block(&cid, fetch)?;
                listing.give(&bytes)?;
            }
            ListStep::Done(entries) => return Ok(entries),
        }
    }
}
