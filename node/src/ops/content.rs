//! `cat`, `get` and `ls`: reading UnixFS content, fetching missing blocks through the node
//! when it runs (unless `offline`). Bytes stream out piece by piece; nothing holds a file.
//!
//! `get` answers with a tar stream, as kubo does: the root entry is named after the last path
//! segment (the CID for a bare CID), directories before their entries, files with their
//! UnixFS mode when recorded (else 0644, directories 0755). The CLI unpacks it with its own
//! rules (nothing outside the destination, nothing overwritten), in-process or not.

use std::io::{self, Read, Write};

use bytes::{Buf, Bytes};
use cairn_protocol::reader::{self, FileCursor, Kind, Node};
use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};

use super::work::{self, blocking, Fetcher};
use super::{json_reply, Args, Command, Ctx, Op, OpError, PieceSender, WriteOp};
use crate::exporter;

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
        let (root, segments) = exporter::parse_path(&self.path)?;
        let mut blocks = work::blocks(&ctx, self.offline, out.token());
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

    async fn write(self, ctx: Ctx, out: PieceSender) -> Result<(), OpError> {
        work::blocking_write(out, move |out, token| {
            let name = self.path.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.path).to_string();
            let mut fetch = work::fetcher(&ctx, self.offline, token.clone());
            let root = exporter::resolve_from(&mut fetch, &self.path)?;
            write_tar(root, &name, &mut fetch, out)
        })
        .await
    }
}

/// Walk the DAG depth-first (parents first) and write each entry into a tar stream.
fn write_tar(root: Cid, name: &str, fetch: &mut Fetcher, w: &mut dyn Write) -> Result<(), OpError> {
    let mut tar = tar::Builder::new(w);
    let mut stack = vec![(root, name.to_string())];
    while let Some((cid, path)) = stack.pop() {
        let node = reader::load(&cid, fetch)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match &node {
            Node::Directory { .. } | Node::Shard { .. } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), io::empty())?;
                for e in reader::list(&cid, &node, fetch)?.into_iter().rev() {
                    stack.push((e.cid, format!("{path}/{}", e.name)));
                }
            }
            Node::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &path, target)?;
            }
            Node::File { size, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode.unwrap_or(0o644));
                header.set_size(*size);
                let data = CursorReader { cursor: FileCursor::new(cid, 0, None), fetch, piece: Bytes::new() };
                tar.append_data(&mut header, &path, data)?;
            }
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// A file's bytes as `io::Read`, piece by piece from a [`FileCursor`].
struct CursorReader<'a> {
    cursor: FileCursor,
    fetch: &'a mut Fetcher,
    piece: Bytes,
}

impl Read for CursorReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.piece.is_empty() {
            match self.cursor.next_piece(self.fetch) {
                None => return Ok(0),
                Some(Ok(p)) => self.piece = p,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = out.len().min(self.piece.len());
        out[..n].copy_from_slice(&self.piece[..n]);
        self.piece.advance(n);
        Ok(n)
    }
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
        blocking(move |token| {
            let mut fetch = work::fetcher(&ctx, self.offline, token.clone());
            let store = ctx.store();
            let mut objects = Vec::new();
            for path in self.paths {
                let cid = exporter::resolve_from(&mut fetch, &path)?;
                let node = reader::load(&cid, &mut fetch)?;
                let links = if node.kind() == Kind::File {
                    let size = node.file_size();
                    vec![LsLink { name: String::new(), hash: cid.to_string(), size, kind: 2, target: String::new() }]
                } else {
                    let mut links = Vec::new();
                    for e in reader::list(&cid, &node, &mut fetch)? {
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
                        links.push(LsLink { name: e.name, hash: e.cid.to_string(), size, kind, target });
                    }
                    links
                };
                objects.push(LsObject { hash: path, links });
            }
            Ok(LsObjects { objects })
        })
        .await
    }
}
