//! `cat`, `get` and `ls`: reading UnixFS content, fetching missing blocks through the node
//! (unless `offline=true`). Bytes stream from a blocking reader ([`super::stream`]); nothing
//! holds a whole file.
//!
//! `get` answers with a tar stream, as kubo does: the root entry is named after the last path
//! segment (the CID for a bare CID), directories before their entries, files with their
//! UnixFS mode when recorded (else 0644, directories 0755).

use std::io::{self, Read, Write};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes};
use cairn_protocol::reader::{self, FileCursor, Kind, Node};
use cairn_protocol::Cid;
use serde_json::json;

use super::args::Args;
use super::error::ApiError;
use super::stream::{self, blocking, blocking_body, BodyWriter, Fetcher};
use super::Ctx;
use crate::exporter;

/// `cat`: `arg` = path, `offset`, `length`.
pub async fn cat(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let path = args.arg()?.to_string();
    let offset = args.u64("offset")?.unwrap_or(0);
    let length = args.u64("length")?;
    let offline = args.flag("offline", false)?;
    blocking_body("text/plain", move |w| {
        let mut fetch = stream::fetcher(&ctx, offline, w.token());
        let cid = exporter::resolve_from(&mut fetch, &path)?;
        let mut cursor = FileCursor::new(cid, offset, length);
        while let Some(piece) = cursor.next_piece(&mut fetch) {
            w.send(piece?)?;
        }
        Ok(())
    })
    .await
}

/// `get`: `arg` = path; a tar of the file or tree.
pub async fn get(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let path = args.arg()?.to_string();
    if args.flag("compress", false)? {
        return Err(ApiError::bad("compressed archives are not supported: ask without compress"));
    }
    let offline = args.flag("offline", false)?;
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or(&path).to_string();
    blocking_body("application/x-tar", move |w| {
        let mut fetch = stream::fetcher(&ctx, offline, w.token());
        let root = exporter::resolve_from(&mut fetch, &path)?;
        write_tar(root, &name, &mut fetch, w)
    })
    .await
}

/// Walk the DAG depth-first (parents first) and write each entry into a tar stream.
fn write_tar(root: Cid, name: &str, fetch: &mut Fetcher, w: &mut BodyWriter) -> Result<(), ApiError> {
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

/// kubo's UnixFS type numbers in `ls` (`-1`: not known, the entry's block is not local).
fn type_code(kind: Option<Kind>) -> i32 {
    match kind {
        Some(Kind::Directory) => 1,
        Some(Kind::File) => 2,
        Some(Kind::Symlink) => 4,
        None => -1,
    }
}

/// `ls`: `arg` = paths. kubo's `{"Objects":[{"Hash","Links":[{"Name","Hash","Size","Type"}]}]}`;
/// a file lists as one nameless link to itself. An entry's type and file size come from its
/// root block when it is local (as offline), else its size is the DAG size.
pub async fn ls(State(ctx): State<Ctx>, args: Args) -> Result<Response, ApiError> {
    let paths: Vec<String> = args.some()?.into_iter().map(String::from).collect();
    let offline = args.flag("offline", false)?;
    let objects = blocking(move |token| {
        let mut fetch = stream::fetcher(&ctx, offline, token.clone());
        let store = ctx.node.store();
        let mut objects = Vec::new();
        for path in paths {
            let cid = exporter::resolve_from(&mut fetch, &path)?;
            let node = reader::load(&cid, &mut fetch)?;
            let links = if node.kind() == Kind::File {
                vec![json!({ "Name": "", "Hash": cid.to_string(), "Size": node.file_size(), "Type": 2, "Target": "" })]
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
                    let kind = child.map(|n| n.kind());
                    links.push(json!({ "Name": e.name, "Hash": e.cid.to_string(), "Size": size,
                                       "Type": type_code(kind), "Target": target }));
                }
                links
            };
            objects.push(json!({ "Hash": path, "Links": links }));
        }
        Ok(objects)
    })
    .await?;
    Ok(axum::Json(json!({ "Objects": objects })).into_response())
}
