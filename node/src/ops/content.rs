//! `cat`, `get` and `ls`: reading UnixFS content, fetching missing blocks through the node
//! when it runs (unless `offline`). Bytes stream out piece by piece; nothing holds a file.
//!
//! `get` answers with a tar stream, as kubo does: the root entry is named after the last path
//! segment (the CID for a bare CID), directories before their entries, files with their
//! UnixFS mode when recorded (else 0644, directories 0755). The CLI unpacks it with its own
//! rules (nothing outside the destination, nothing overwritten), in-process or not.

use std::io;

use bytes::Bytes;
use cairn_protocol::reader::{self, FileCursor, Kind, Node};
use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::work::{self, blocking};
use super::{json_reply, Args, Command, Ctx, Op, OpError, PieceSender, WriteOp};
use crate::dag_read::Blocks;

/// `cat`: a file's bytes, or the range `[offset, offset+length)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cat {
    /// `CID[/path]` or `/ipfs/CID[/path]`.
    pub path: String,
    /// First byte.
    pub offset: u64,
    /// Bytes to send (default: to the end).
    pub length: Option<u64>,
    /// Only blocks already in the store.
    pub offline: bool,
}

impl Command for Cat {
    const NAME: &'static str = "cat";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![("arg", self.path.clone()), ("offset", self.offset.to_string())];
        a.extend(self.length.map(|l| ("length", l.to_string())));
        a.push(("offline", self.offline.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(Cat {
            path: args.arg()?.to_string(),
            offset: args.u64("offset")?.unwrap_or(0),
            length: args.u64("length")?,
            offline: args.flag("offline", false)?,
        })
    }
}

impl WriteOp for Cat {
    const CONTENT_TYPE: &'static str = "text/plain";

    /// Async end to end: a block on its way over the network holds no thread.
    async fn write(self, ctx: Ctx, out: PieceSender) -> Result<(), OpError> {
        let (root, segments) = super::name::content_path(&ctx, &self.path).await?;
        // Only the blocks of the range: the path to its first byte, then the covering leaves.
        let mut blocks = work::blocks(&ctx, self.offline, out.token()).only_requested();
        let cid = blocks.resolve(root, &segments).await?;
        let mut cursor = FileCursor::new(cid, self.offset, self.length);
        while let Some(piece) = blocks.next_piece(&mut cursor).await {
            out.send(piece?).await?;
        }
        Ok(())
    }
}

/// `get`: a tar of the file or tree at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Get {
    /// `CID[/path]` or `/ipfs/CID[/path]`.
    pub path: String,
    /// Only blocks already in the store.
    pub offline: bool,
}

impl Command for Get {
    const NAME: &'static str = "get";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.path.clone()), ("offline", self.offline.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        if args.flag("compress", false)? {
            return Err(OpError::bad("compressed archives are not supported: ask without compress"));
        }
        Ok(Get { path: args.arg()?.to_string(), offline: args.flag("offline", false)? })
    }
}

impl WriteOp for Get {
    const CONTENT_TYPE: &'static str = "application/x-tar";

    /// Async end to end, as `cat`.
    async fn write(self, ctx: Ctx, out: PieceSender) -> Result<(), OpError> {
        let name = self.path.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.path).to_string();
        let (root, segments) = super::name::content_path(&ctx, &self.path).await?;
        let mut blocks = work::blocks(&ctx, self.offline, out.token());
        let root = blocks.resolve(root, &segments).await?;
        write_tar(root, &name, &mut blocks, &out).await
    }
}

/// Walk the DAG depth-first (parents first) and send each entry as tar. Headers (with GNU
/// long-name entries when a path needs them) come from the `tar` crate's builder writing into
/// memory; a file's bytes then stream from the reader, followed by the padding to 512 bytes
/// that the builder would have written after them.
async fn write_tar(root: Cid, name: &str, blocks: &mut Blocks, out: &PieceSender) -> Result<(), OpError> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut stack = vec![(root, name.to_string())];
    while let Some((cid, path)) = stack.pop() {
        let node = blocks.load(&cid).await?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match &node {
            Node::Directory { .. } | Node::Shard { .. } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), io::empty())?;
                send_written(&mut tar, out).await?;
                for e in blocks.list(&cid, &node).await?.into_iter().rev() {
                    stack.push((e.cid, format!("{path}/{}", e.name)));
                }
            }
            Node::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &path, target)?;
                send_written(&mut tar, out).await?;
            }
            Node::File { size, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode.unwrap_or(0o644));
                header.set_size(*size);
                // The header alone: with no data the builder writes no padding either.
                tar.append_data(&mut header, &path, io::empty())?;
                send_written(&mut tar, out).await?;
                let mut cursor = FileCursor::new(cid, 0, None);
                while let Some(piece) = blocks.next_piece(&mut cursor).await {
                    out.send(piece?).await?;
                }
                let pad = (512 - size % 512) % 512;
                out.send(Bytes::from(vec![0u8; pad as usize])).await?;
            }
        }
    }
    out.send(Bytes::from(tar.into_inner()?)).await?;
    Ok(())
}

/// Send what the tar builder has written so far.
async fn send_written(tar: &mut tar::Builder<Vec<u8>>, out: &PieceSender) -> Result<(), OpError> {
    Ok(out.send(Bytes::from(std::mem::take(tar.get_mut()))).await?)
}

/// `ls`: the entries of directories (a file lists as one nameless entry: itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ls {
    /// `CID[/path]`s.
    pub paths: Vec<String>,
    /// Only blocks already in the store.
    pub offline: bool,
}

/// `ls`'s answer: kubo's `{"Objects":[{"Hash","Links"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsObjects {
    /// One per path asked.
    pub objects: Vec<LsObject>,
}
json_reply!(LsObjects);

/// One listed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsObject {
    /// The path as asked.
    pub hash: String,
    /// Its entries.
    pub links: Vec<LsLink>,
}

/// One entry. Its type and file size come from its root block when that is local, else
/// the type is unknown (`-1`) and the size is the DAG size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsLink {
    /// The entry's name (empty for a file listed as itself).
    pub name: String,
    /// Its CID.
    pub hash: String,
    /// File bytes, or the DAG size.
    pub size: u64,
    /// kubo's UnixFS type numbers: 1 directory, 2 file, 4 symlink, -1 not known.
    #[serde(rename = "Type")]
    pub kind: i32,
    /// A symlink's target.
    #[serde(default)]
    pub target: String,
}

impl LsLink {
    /// The entry's kind, when known.
    pub fn kind(&self) -> Option<Kind> {
        match self.kind {
            1 | 5 => Some(Kind::Directory),
            2 => Some(Kind::File),
            4 => Some(Kind::Symlink),
            _ => None,
        }
    }
}

/// One listed entry, typed and sized from its root block when that is in the store.
fn ls_link(store: &crate::store::Store, e: reader::Entry) -> LsLink {
    let child = store.get(&e.cid).ok().flatten().and_then(|b| reader::decode(&e.cid, &b).ok());
    let size = match &child {
        Some(n) if n.kind() == Kind::File => n.file_size(),
        _ => e.tsize,
    };
    let target = match &child {
        Some(Node::Symlink { target }) => target.clone(),
        _ => String::new(),
    };
    let kind = type_code(child.map(|n| n.kind()));
    LsLink { name: e.name, hash: e.cid.to_string(), size, kind, target }
}

/// kubo's UnixFS type numbers in `ls`.
fn type_code(kind: Option<Kind>) -> i32 {
    match kind {
        Some(Kind::Directory) => 1,
        Some(Kind::File) => 2,
        Some(Kind::Symlink) => 4,
        None => -1,
    }
}

impl Command for Ls {
    const NAME: &'static str = "ls";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.paths.iter().map(|p| ("arg", p.clone())).collect();
        a.push(("offline", self.offline.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(Ls { paths: args.some()?.into_iter().map(String::from).collect(), offline: args.flag("offline", false)? })
    }
}

impl Op for Ls {
    type Output = LsObjects;

    async fn run(self, ctx: Ctx) -> Result<LsObjects, OpError> {
        let mut blocks = work::blocks(&ctx, self.offline, CancellationToken::new());
        let mut objects = Vec::new();
        for path in self.paths {
            let (root, segments) = super::name::content_path(&ctx, &path).await?;
            let cid = blocks.resolve(root, &segments).await?;
            let node = blocks.load(&cid).await?;
            let links = if node.kind() == Kind::File {
                let size = node.file_size();
                vec![LsLink { name: String::new(), hash: cid.to_string(), size, kind: 2, target: String::new() }]
            } else {
                let entries = blocks.list(&cid, &node).await?;
                // Each entry's kind and size from its root block when that is local: store
                // reads, on a blocking thread.
                let store = ctx.store().clone();
                blocking(move |_| Ok(entries.into_iter().map(|e| ls_link(&store, e)).collect())).await?
            };
            objects.push(LsObject { hash: path, links });
        }
        Ok(LsObjects { objects })
    }
}
