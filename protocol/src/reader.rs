//! Reading UnixFS DAGs: decode a block into a typed [`Node`], resolve `cid/a/b` through plain and
//! HAMT-sharded directories, list a directory, and stream a file or a byte range.
//!
//! The reader never does I/O itself. Its state machines say which block they need next and
//! take its bytes (already verified against its CID by the caller's store or network layer):
//! [`FileCursor`] answers [`Read::Need`] or [`Read::Piece`], [`lookup`] / [`lookup_in`] step
//! through HAMT shards, [`Listing`] walks a sharded directory. Async code drives them without
//! holding a thread per block; [`load`], [`find`], [`resolve`], [`list`] and
//! [`FileCursor::next_piece`] drive them with a blocking `fetch` callback. A [`FileCursor`]
//! asks only for the blocks that cover the requested range, in file order, so a range read of
//! a large file touches a handful of blocks and memory stays at one block per tree level.
//!
//! Untrusted DAGs get strict checks: directory entry names must be single path components, a
//! file node's `blocksizes` must match its links, and every subtree must produce exactly the
//! bytes its parent claims, so a hostile DAG cannot make a reader emit more (or other) bytes
//! than the root's declared size.

use bytes::Bytes;
use cid::Cid;

use crate::cids::{DAG_PB, RAW};
use crate::dagpb::{DagPbError, PbLink, PbNode};
use crate::dir::validate_entry_name;
use crate::hamt::{self, HamtError, LookupStep, ShardItem};
use crate::unixfs::{Data, DataType, UnixFsError};

/// Whatever error a blocking `fetch` callback returns (missing block, store or network
/// failure). Async callers drive the state machines and keep their own typed errors.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Why a DAG could not be read: the kinds behind [`ReadError`].
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// The block source could not supply a block.
    #[error("{source}")]
    Fetch {
        /// The block asked for.
        cid: Cid,
        /// What the source said.
        source: SourceError,
    },
    /// A dag-pb block did not decode.
    #[error("block {cid}: {source}")]
    DagPb {
        /// The block.
        cid: Cid,
        /// Why.
        source: DagPbError,
    },
    /// A dag-pb block without a valid UnixFS payload.
    #[error("block {cid}: {source}")]
    UnixFs {
        /// The block.
        cid: Cid,
        /// Why.
        source: UnixFsError,
    },
    /// A HAMT shard node was refused.
    #[error("block {cid}: {source}")]
    Hamt {
        /// The block.
        cid: Cid,
        /// Why.
        source: HamtError,
    },
    /// A codec the UnixFS reader does not understand.
    #[error("block {cid} has codec 0x{codec:x}, not raw or dag-pb UnixFS")]
    UnsupportedCodec {
        /// The block.
        cid: Cid,
        /// Its multicodec.
        codec: u64,
    },
    /// A path segment that names nothing in its directory.
    #[error("no link named {name:?} under {parent}")]
    NotFound {
        /// The directory searched.
        parent: Cid,
        /// The missing name.
        name: String,
    },
    /// A path continued through something that is not a directory.
    #[error("{cid} is a {kind}, not a directory: cannot resolve {name:?} below it")]
    NotDirectory {
        /// The node reached.
        cid: Cid,
        /// What it is.
        kind: Kind,
        /// The segment that could not be resolved.
        name: String,
    },
    /// Bytes were asked of something that is not a file.
    #[error("{cid} is a {kind}, not a file")]
    NotFile {
        /// The node.
        cid: Cid,
        /// What it is.
        kind: Kind,
    },
    /// A directory entry whose name is not a single safe path component.
    #[error("directory {parent} has an unsafe entry name {name:?} ({reason}); refusing to use it")]
    UnsafeName {
        /// The directory.
        parent: Cid,
        /// The name as found.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path segment given by the user that is not a plain name.
    #[error("invalid path segment {0:?}: `.`, `..` and empty names are not allowed")]
    BadSegment(String),
    /// A structurally inconsistent UnixFS node (sizes that do not add up, a non-file below a
    /// file, a legacy Metadata node).
    #[error("block {cid} is malformed: {reason}")]
    Malformed {
        /// The block.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
}

/// Why a DAG could not be read. Boxed so that results stay small on the hot path; match on
/// [`ReadError::kind`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReadError(Box<ReadErrorKind>);

impl ReadError {
    /// What went wrong.
    pub fn kind(&self) -> &ReadErrorKind {
        &self.0
    }
}

impl From<ReadErrorKind> for ReadError {
    fn from(kind: ReadErrorKind) -> Self {
        ReadError(Box::new(kind))
    }
}

/// What a UnixFS node is, as users see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A file (raw leaf or dag-pb file node).
    File,
    /// A directory, plain or HAMT-sharded.
    Directory,
    /// A symbolic link.
    Symlink,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
        })
    }
}

/// A decoded UnixFS node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A file: a raw block, or a dag-pb file node (its children are read through
    /// [`FileCursor`]).
    File {
        /// Total file bytes.
        size: u64,
        /// Permission bits, when recorded.
        mode: Option<u32>,
    },
    /// A plain directory; links are its entries.
    Directory {
        /// The entries, as stored.
        links: Vec<PbLink>,
    },
    /// The root node of a HAMT-sharded directory.
    Shard {
        /// The shard node.
        node: PbNode,
        /// Its UnixFS data (bitfield, fanout).
        data: Data,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, as stored.
        target: String,
    },
}

impl Node {
    /// What the node is.
    pub fn kind(&self) -> Kind {
        match self {
            Node::File { .. } => Kind::File,
            Node::Directory { .. } | Node::Shard { .. } => Kind::Directory,
            Node::Symlink { .. } => Kind::Symlink,
        }
    }

    /// File bytes for files, 0 otherwise.
    pub fn file_size(&self) -> u64 {
        match self {
            Node::File { size, .. } => *size,
            _ => 0,
        }
    }
}

/// One directory entry, as a listing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry name (validated as a single path component).
    pub name: String,
    /// The entry's root CID.
    pub cid: Cid,
    /// The cumulative DAG size the parent records for it.
    pub tsize: u64,
}

/// Split the path after a CID into segments: empty segments (`a//b`, a trailing `/`) are
/// skipped, `.` and `..` are refused rather than interpreted.
pub fn split_path(path: &str) -> Result<Vec<String>, ReadError> {
    let mut out = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" => continue,
            "." | ".." => return Err(ReadError::from(ReadErrorKind::BadSegment(seg.to_string()))),
            s if s.contains('\0') => return Err(ReadError::from(ReadErrorKind::BadSegment(seg.to_string()))),
            s => out.push(s.to_string()),
        }
    }
    Ok(out)
}

fn fetch_block(cid: &Cid, fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>) -> Result<Bytes, ReadError> {
    fetch(cid).map_err(|source| ReadError::from(ReadErrorKind::Fetch { cid: *cid, source }))
}

/// Decode a dag-pb block and its UnixFS payload.
fn decode_pb(cid: &Cid, bytes: &Bytes) -> Result<(PbNode, Data), ReadError> {
    let node = PbNode::decode(bytes).map_err(|source| ReadError::from(ReadErrorKind::DagPb { cid: *cid, source }))?;
    let raw = node
        .data
        .as_ref()
        .ok_or(ReadError::from(ReadErrorKind::UnixFs { cid: *cid, source: UnixFsError::MissingData }))?;
    let data = Data::from_bytes(raw).map_err(|source| ReadError::from(ReadErrorKind::UnixFs { cid: *cid, source }))?;
    Ok((node, data))
}

/// Decode one block into a typed node.
pub fn decode(cid: &Cid, bytes: &Bytes) -> Result<Node, ReadError> {
    match cid.codec() {
        RAW => Ok(Node::File { size: bytes.len() as u64, mode: None }),
        DAG_PB => {
            let (node, data) = decode_pb(cid, bytes)?;
            let kind = data.kind().map_err(|source| ReadError::from(ReadErrorKind::UnixFs { cid: *cid, source }))?;
            match kind {
                DataType::File | DataType::Raw => {
                    Ok(Node::File { size: file_node_size(cid, &node, &data)?, mode: data.mode })
                }
                DataType::Directory => Ok(Node::Directory { links: node.links }),
                DataType::HamtShard => Ok(Node::Shard { node, data }),
                DataType::Symlink => {
                    let target = data.data.clone().unwrap_or_default();
                    let target = String::from_utf8(target.to_vec()).map_err(|_| {
                        ReadError::from(ReadErrorKind::Malformed {
                            cid: *cid,
                            reason: "symlink target is not UTF-8".into(),
                        })
                    })?;
                    Ok(Node::Symlink { target })
                }
                DataType::Metadata => Err(ReadError::from(ReadErrorKind::Malformed {
                    cid: *cid,
                    reason: "legacy UnixFS Metadata nodes are not supported".into(),
                })),
            }
        }
        codec => Err(ReadError::from(ReadErrorKind::UnsupportedCodec { cid: *cid, codec })),
    }
}

/// The byte size of a dag-pb file node: its inline data plus its children's `blocksizes`, which
/// must agree with `filesize` when that is present.
fn file_node_size(cid: &Cid, node: &PbNode, data: &Data) -> Result<u64, ReadError> {
    let malformed = |reason: String| ReadError::from(ReadErrorKind::Malformed { cid: *cid, reason });
    if data.blocksizes.len() != node.links.len() {
        return Err(malformed(format!("{} links but {} blocksizes", node.links.len(), data.blocksizes.len())));
    }
    let inline = data.data.as_ref().map_or(0, |d| d.len() as u64);
    let total = data
        .blocksizes
        .iter()
        .try_fold(inline, |acc, &s| acc.checked_add(s))
        .ok_or_else(|| malformed("blocksizes overflow".into()))?;
    match data.filesize {
        Some(fs) if fs != total => Err(malformed(format!("filesize {fs} but data and blocksizes add up to {total}"))),
        _ => Ok(total),
    }
}

/// Fetch and decode a block.
pub fn load(cid: &Cid, fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>) -> Result<Node, ReadError> {
    let bytes = fetch_block(cid, fetch)?;
    decode(cid, &bytes)
}

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

/// A block still to visit: its CID, the file offset where its bytes start, and the byte count
/// its parent says it holds (`None` for the root).
#[derive(Clone, Debug)]
struct Pending {
    cid: Cid,
    offset: u64,
    expect: Option<u64>,
}

/// What a [`FileCursor`] wants next.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// The bytes of this block: pass them to [`FileCursor::give`].
    Need(Cid),
    /// The next non-empty piece of the range, in file order.
    Piece(Bytes),
    /// The range is complete (or the cursor failed).
    End,
}

/// Streams the bytes `[offset, offset + length)` of a UnixFS file in order, asking only for the
/// blocks that overlap that range: call [`FileCursor::next_step`] and answer each [`Read::Need`]
/// with [`FileCursor::give`] until it returns [`Read::End`].
#[derive(Debug)]
pub struct FileCursor {
    root: Cid,
    start: u64,
    length: Option<u64>,
    /// Exclusive end, known once the root is decoded.
    end: u64,
    /// Blocks to visit, the next one last.
    stack: Vec<Pending>,
    /// The block asked for and not given yet.
    waiting: Option<Pending>,
    /// A piece of the block given last, not yet returned.
    ready: Option<Bytes>,
    started: bool,
    /// The root was given, so `end` is known.
    sized: bool,
    failed: bool,
}

impl FileCursor {
    /// A cursor over `[offset, offset + length)` of the file `root` (to the end when `length`
    /// is `None`; a range past the end yields nothing).
    pub fn new(root: Cid, offset: u64, length: Option<u64>) -> Self {
        FileCursor {
            root,
            start: offset,
            length,
            end: 0,
            stack: Vec::new(),
            waiting: None,
            ready: None,
            started: false,
            sized: false,
            failed: false,
        }
    }

    /// The file's total size, once the root block has been given.
    pub fn file_size(&self) -> Option<u64> {
        self.sized.then_some(self.end)
    }

    /// What the cursor wants next. Asking again before [`FileCursor::give`] repeats the need.
    pub fn next_step(&mut self) -> Read {
        if let Some(piece) = self.ready.take() {
            return Read::Piece(piece);
        }
        if self.failed {
            return Read::End;
        }
        if !self.started {
            self.started = true;
            self.stack.push(Pending { cid: self.root, offset: 0, expect: None });
        }
        if let Some(p) = &self.waiting {
            return Read::Need(p.cid);
        }
        let Some(p) = self.stack.pop() else { return Read::End };
        if p.expect.is_some() && p.offset >= self.end {
            // Everything left lies past the range.
            self.stack.clear();
            return Read::End;
        }
        let cid = p.cid;
        self.waiting = Some(p);
        Read::Need(cid)
    }

    /// The bytes of the block the last [`Read::Need`] asked for (verified by the caller).
    /// After an error the cursor yields nothing more.
    pub fn give(&mut self, bytes: &Bytes) -> Result<(), ReadError> {
        let Some(p) = self.waiting.take() else { return Ok(()) };
        match self.expand(&p, bytes) {
            Ok((inline, size)) => {
                if p.expect.is_none() {
                    self.end = match self.length {
                        Some(len) => self.start.saturating_add(len).min(size),
                        None => size,
                    };
                    self.sized = true;
                }
                self.ready = self.clip(p.offset, inline);
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// Stop: the cursor yields nothing more (its source failed).
    pub fn fail(&mut self) {
        self.failed = true;
        self.stack.clear();
        self.waiting = None;
        self.ready = None;
    }

    /// The next non-empty piece of the range in file order, `None` at the end, each block
    /// from a blocking `fetch`. After an error the cursor yields nothing more.
    pub fn next_piece(
        &mut self,
        fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
    ) -> Option<Result<Bytes, ReadError>> {
        loop {
            match self.next_step() {
                Read::Piece(piece) => return Some(Ok(piece)),
                Read::End => return None,
                Read::Need(cid) => {
                    let given = fetch_block(&cid, fetch).and_then(|bytes| self.give(&bytes));
                    if let Err(e) = given {
                        self.fail();
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// Decode one block of the file: push its overlapping children and return its inline bytes
    /// and the size of the subtree it roots.
    fn expand(&mut self, p: &Pending, bytes: &Bytes) -> Result<(Bytes, u64), ReadError> {
        let malformed = |reason: String| ReadError::from(ReadErrorKind::Malformed { cid: p.cid, reason });
        let (inline, size, children) = match p.cid.codec() {
            RAW => (bytes.clone(), bytes.len() as u64, Vec::new()),
            DAG_PB => {
                let (node, data) = decode_pb(&p.cid, bytes)?;
                let kind =
                    data.kind().map_err(|source| ReadError::from(ReadErrorKind::UnixFs { cid: p.cid, source }))?;
                if !matches!(kind, DataType::File | DataType::Raw) {
                    let kind = decode(&p.cid, bytes).map(|n| n.kind()).unwrap_or(Kind::File);
                    if p.expect.is_none() {
                        return Err(ReadError::from(ReadErrorKind::NotFile { cid: p.cid, kind }));
                    }
                    return Err(malformed(format!("a {kind} inside a file")));
                }
                let size = file_node_size(&p.cid, &node, &data)?;
                let inline = data.data.clone().unwrap_or_default();
                let children: Vec<(Cid, u64)> =
                    node.links.iter().zip(data.blocksizes.iter()).map(|(l, &s)| (l.hash, s)).collect();
                (inline, size, children)
            }
            codec => return Err(ReadError::from(ReadErrorKind::UnsupportedCodec { cid: p.cid, codec })),
        };
        if let Some(expect) = p.expect {
            if expect != size {
                return Err(malformed(format!("holds {size} bytes but its parent says {expect}")));
            }
        }
        // Children start after the inline bytes; push the overlapping ones, last first.
        let (range_start, range_end) = if p.expect.is_none() {
            let end = match self.length {
                Some(len) => self.start.saturating_add(len).min(size),
                None => size,
            };
            (self.start, end)
        } else {
            (self.start, self.end)
        };
        let mut offset = p.offset + inline.len() as u64;
        let mut wanted = Vec::new();
        for (cid, s) in children {
            let child_end = offset + s;
            if s > 0 && child_end > range_start && offset < range_end {
                wanted.push(Pending { cid, offset, expect: Some(s) });
            } else if s == 0 {
                // An empty child still has to be checked to hold nothing: cheap, and keeps
                // "every subtree holds what its parent claims" true. Skip fetching it only when
                // it lies outside the range.
                if offset >= range_start && offset < range_end {
                    wanted.push(Pending { cid, offset, expect: Some(0) });
                }
            }
            offset = child_end;
        }
        self.stack.extend(wanted.into_iter().rev());
        Ok((inline, size))
    }

    /// The part of `bytes` (starting at file offset `at`) inside the range, if any.
    fn clip(&self, at: u64, bytes: Bytes) -> Option<Bytes> {
        let len = bytes.len() as u64;
        let from = self.start.max(at);
        let to = self.end.min(at + len);
        (from < to).then(|| bytes.slice((from - at) as usize..(to - at) as usize))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::dir::{DirBuilder, DirEntry};
    use crate::file::import_bytes;
    use crate::profile::{ImportSettings, Layout};
    use crate::unixfs::Metadata;
    use crate::Block;

    type Blocks = HashMap<Cid, Bytes>;

    fn fetcher(blocks: &Blocks) -> impl FnMut(&Cid) -> Result<Bytes, SourceError> + '_ {
        move |cid: &Cid| blocks.get(cid).cloned().ok_or_else(|| format!("missing {cid}").into())
    }

    fn small(layout: Layout, raw_leaves: bool) -> ImportSettings {
        let mut s = ImportSettings::v1_2025();
        s.chunker = crate::chunker::ChunkerSpec::parse("size-16").unwrap();
        s.max_links = 3;
        s.layout = layout;
        s.raw_leaves = raw_leaves;
        s
    }

    fn import(settings: &ImportSettings, data: &[u8]) -> (Blocks, Cid) {
        let (blocks, root) = import_bytes(settings, data);
        (blocks.into_iter().map(|b| (b.cid, b.data)).collect(), root.cid)
    }

    fn read_all(blocks: &Blocks, root: Cid, off: u64, len: Option<u64>) -> Result<Vec<u8>, ReadError> {
        let mut cur = FileCursor::new(root, off, len);
        let mut fetch = fetcher(blocks);
        let mut out = Vec::new();
        while let Some(p) = cur.next_piece(&mut fetch) {
            out.extend_from_slice(&p?);
        }
        Ok(out)
    }

    #[test]
    fn ranges_read_only_the_blocks_they_need() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let settings = small(Layout::Balanced, true);
        let (blocks, root) = import(&settings, &data);
        let mut asked = Vec::new();
        let mut fetch = |cid: &Cid| {
            asked.push(*cid);
            blocks.get(cid).cloned().ok_or_else(|| SourceError::from("missing"))
        };
        let mut cur = FileCursor::new(root, 500, Some(20));
        let mut out = Vec::new();
        while let Some(p) = cur.next_piece(&mut fetch) {
            out.extend_from_slice(&p.unwrap());
        }
        assert_eq!(out, &data[500..520]);
        let leaves = asked.iter().filter(|c| c.codec() == RAW).count();
        assert_eq!(leaves, 2, "bytes 500..520 span two 16-byte chunks");
        assert!(asked.len() < 12, "a range read walks one path, asked {}", asked.len());
    }

    #[test]
    fn the_cursor_asks_for_one_block_at_a_time_and_repeats_until_given() {
        let data: Vec<u8> = (0..100u8).collect();
        let (blocks, root) = import(&small(Layout::Balanced, true), &data);
        let mut cur = FileCursor::new(root, 0, None);
        assert_eq!(cur.next_step(), Read::Need(root));
        assert_eq!(cur.next_step(), Read::Need(root), "asking again repeats the need");
        assert_eq!(cur.file_size(), None, "unknown until the root is given");
        cur.give(&blocks[&root]).unwrap();
        assert_eq!(cur.file_size(), Some(100));
        let mut out = Vec::new();
        let mut needs = 1;
        loop {
            match cur.next_step() {
                Read::Need(cid) => {
                    needs += 1;
                    cur.give(&blocks[&cid]).unwrap();
                }
                Read::Piece(p) => out.extend_from_slice(&p),
                Read::End => break,
            }
        }
        assert_eq!((out, needs), (data, blocks.len()), "every block asked for once");

        // A source that fails stops the cursor.
        let mut cur = FileCursor::new(root, 0, None);
        assert!(matches!(cur.next_step(), Read::Need(_)));
        cur.fail();
        assert_eq!(cur.next_step(), Read::End);
        // Bytes that do not decode fail it too.
        let mut cur = FileCursor::new(root, 0, None);
        cur.next_step();
        assert!(cur.give(&Bytes::from_static(b"not dag-pb")).is_err());
        assert_eq!(cur.next_step(), Read::End);
    }

    proptest! {
        #[test]
        fn every_layout_reads_every_range(
            len in 0usize..600,
            off in 0u64..700,
            take in proptest::option::of(0u64..700),
            trickle in any::<bool>(),
            raw in any::<bool>(),
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let layout = if trickle { Layout::Trickle } else { Layout::Balanced };
            let (blocks, root) = import(&small(layout, raw), &data);
            let got = read_all(&blocks, root, off, take).unwrap();
            let from = (off as usize).min(len);
            let to = take.map_or(len, |t| (off as usize).saturating_add(t as usize).min(len)).max(from);
            prop_assert_eq!(got, &data[from..to]);
        }
    }

    #[test]
    fn a_lying_blocksize_is_refused() {
        let data = vec![7u8; 100];
        let settings = small(Layout::Balanced, true);
        let (mut blocks, root) = import(&settings, &data);
        // Replace one leaf with a longer block under a new CID and relink the root to it.
        let root_bytes = blocks[&root].clone();
        let (mut node, mut d) = decode_pb(&root, &root_bytes).unwrap();
        let long = Bytes::from(vec![1u8; 40]);
        let long_cid = settings.raw_cid(&long);
        blocks.insert(long_cid, long);
        node.links[0].hash = long_cid;
        d.blocksizes[0] = 16; // still claims 16 bytes
        node.data = Some(d.to_bytes());
        let bytes = Bytes::from(node.encode());
        let bad_root = settings.node_cid(&bytes);
        blocks.insert(bad_root, bytes);
        let err = read_all(&blocks, bad_root, 0, None).unwrap_err();
        assert!(matches!(err.kind(), ReadErrorKind::Malformed { .. }), "{err}");
    }

    fn dir_of(settings: &ImportSettings, files: &[(&str, &[u8])]) -> (Blocks, Cid) {
        let mut blocks = Blocks::new();
        let mut dir = DirBuilder::new(settings);
        for (name, content) in files {
            let (bs, root) = import_bytes(settings, content);
            for b in bs {
                blocks.insert(b.cid, b.data);
            }
            dir.add(DirEntry { name: name.to_string(), cid: root.cid, tsize: root.tsize }).unwrap();
        }
        let (root, _) = dir
            .finish(&mut |b: Block| {
                blocks.insert(b.cid, b.data);
            })
            .unwrap();
        (blocks, root)
    }

    #[test]
    fn paths_resolve_through_plain_and_sharded_directories() {
        let names: Vec<String> = (0..6000).map(|i| format!("file-{i:05}.txt")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
        let settings = ImportSettings::v1_2025();
        let (blocks, root) = dir_of(&settings, &files);
        let mut fetch = fetcher(&blocks);
        let node = load(&root, &mut fetch).unwrap();
        assert!(matches!(node, Node::Shard { .. }), "6000 entries shard");
        let cid = resolve(root, &["file-01234.txt".into()], &mut fetch).unwrap();
        assert_eq!(read_all(&blocks, cid, 0, None).unwrap(), b"file-01234.txt");
        let listed = list(&root, &node, &mut fetch).unwrap();
        assert_eq!(listed.len(), 6000);
        let err = resolve(root, &["nope".into()], &mut fetch).unwrap_err();
        assert!(matches!(err.kind(), ReadErrorKind::NotFound { .. }));
        let err = resolve(root, &["file-00001.txt".into(), "x".into()], &mut fetch).unwrap_err();
        assert!(matches!(err.kind(), ReadErrorKind::NotDirectory { kind: Kind::File, .. }), "{err}");
    }

    #[test]
    fn unsafe_names_fail_a_listing() {
        let settings = ImportSettings::v1_2025();
        let (mut blocks, _) = dir_of(&settings, &[("a", b"x")]);
        let leaf = settings.raw_cid(b"x");
        for bad in ["..", "a/b", "", "/etc"] {
            let node = PbNode {
                links: vec![PbLink { hash: leaf, name: Some(bad.into()), tsize: Some(1) }],
                data: Some(Data::new(DataType::Directory).to_bytes()),
            };
            let bytes = Bytes::from(node.encode());
            let cid = settings.node_cid(&bytes);
            blocks.insert(cid, bytes);
            let mut fetch = fetcher(&blocks);
            let n = load(&cid, &mut fetch).unwrap();
            let err = list(&cid, &n, &mut fetch).unwrap_err();
            assert!(matches!(err.kind(), ReadErrorKind::UnsafeName { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn path_segments_are_checked() {
        assert_eq!(split_path("a//b/").unwrap(), vec!["a", "b"]);
        assert!(split_path("a/../b").is_err());
        assert!(split_path("./a").is_err());
        assert!(split_path("").unwrap().is_empty());
    }

    #[test]
    fn symlinks_and_directories_are_not_files() {
        let settings = ImportSettings::v1_2025();
        let link = crate::dir::symlink(&settings, "target", Metadata::default());
        let blocks: Blocks = [(link.cid, link.data.clone())].into_iter().collect();
        let mut fetch = fetcher(&blocks);
        assert_eq!(load(&link.cid, &mut fetch).unwrap(), Node::Symlink { target: "target".into() });
        let err = read_all(&blocks, link.cid, 0, None).unwrap_err();
        assert!(matches!(err.kind(), ReadErrorKind::NotFile { kind: Kind::Symlink, .. }));
    }
}
