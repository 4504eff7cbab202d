//! Reading UnixFS DAGs: decode a block into a typed [`Node`] (here), resolve `cid/a/b` through
//! plain and HAMT-sharded directories and list a directory ([`lookup`], [`Listing`]), and stream a
//! file or a byte range ([`FileCursor`]).
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
use crate::hamt::HamtError;
use crate::unixfs::{Data, DataType, UnixFsError};

mod directory;
mod file;
#[cfg(test)]
mod tests;

pub use directory::{find, list, lookup, lookup_in, resolve, ListStep, Listing, Lookup};
pub use file::{FileCursor, Read};

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

pub(crate) fn fetch_block(
    cid: &Cid,
    fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
) -> Result<Bytes, ReadError> {
    fetch(cid).map_err(|source| ReadError::from(ReadErrorKind::Fetch { cid: *cid, source }))
}

/// Decode a dag-pb block and its UnixFS payload.
pub(crate) fn decode_pb(cid: &Cid, bytes: &Bytes) -> Result<(PbNode, Data), ReadError> {
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
pub(crate) fn file_node_size(cid: &Cid, node: &PbNode, data: &Data) -> Result<u64, ReadError> {
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
