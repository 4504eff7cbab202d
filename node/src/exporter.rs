//! Reading content back out: resolve `cid/path`, stream a file (or a byte range) to a writer,
//! list a directory, and write a whole tree to disk.
//!
//! Every block comes through the store's verified read. Names in a DAG are untrusted: the
//! reader refuses `..`, `/` and empty names, and files are created with `create_new`, so `get`
//! never writes outside its destination nor through an existing link.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cairn_protocol::reader::{self, FileCursor, Kind, Node, ReadError, SourceError};
use cairn_protocol::{cids, Cid};

use crate::store::Store;

/// Errors while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The path is not `cid[/path]`.
    #[error("invalid path {0:?}: expected CID[/path] or /ipfs/CID[/path]")]
    BadPath(String),
    /// A bad CID.
    #[error(transparent)]
    Cid(#[from] cids::CidError),
    /// Reading the DAG failed (missing or corrupt block, bad structure).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Split `cid/a/b` or `/ipfs/cid/a/b` into the root CID and validated segments.
pub(crate) fn parse_path(text: &str) -> Result<(Cid, Vec<String>), ExportError> {
    let t = text.trim();
    let t = t.strip_prefix("/ipfs/").unwrap_or(t);
    let (root, rest) = t.split_once('/').unwrap_or((t, ""));
    if root.is_empty() {
        return Err(ExportError::BadPath(text.to_string()));
    }
    let cid = cids::parse(root)?;
    let segments = reader::split_path(rest).map_err(|_| ExportError::BadPath(text.to_string()))?;
    Ok((cid, segments))
}

/// A block source over the store: missing blocks are an error naming the CID.
pub fn fetcher(store: &Store) -> impl FnMut(&Cid) -> Result<Bytes, SourceError> + '_ {
    move |cid: &Cid| match store.get(cid) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(format!("block {cid} is not in the local store").into()),
        Err(e) => Err(Box::new(e) as SourceError),
    }
}

/// A block source: the store, or the store plus the network when a node runs.
pub type Fetch<'a> = &'a mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>;

/// Resolve a path to its CID.
pub fn resolve(store: &Store, path: &str) -> Result<Cid, ExportError> {
    resolve_from(&mut fetcher(store), path)
}

/// Resolve a path to its CID through any block source.
pub(crate) fn resolve_from(fetch: Fetch<'_>, path: &str) -> Result<Cid, ExportError> {
    let (root, segments) = parse_path(path)?;
    Ok(reader::resolve(root, &segments, fetch)?)
}

/// Stream a file's bytes `[offset, offset+length)` to `out`; returns the bytes written.
pub fn cat(
    store: &Store,
    path: &str,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    cat_from(&mut fetcher(store), path, offset, length, out)
}

/// [`cat`] through any block source.
pub fn cat_from(
    fetch: Fetch<'_>,
    path: &str,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let cid = resolve_from(fetch, path)?;
    let mut cursor = FileCursor::new(cid, offset, length);
    let mut written = 0;
    while let Some(piece) = cursor.next_piece(fetch) {
        let piece = piece?;
        out.write_all(&piece).map_err(|source| ExportError::Write { path: "<output>".into(), source })?;
        written += piece.len() as u64;
    }
    Ok(written)
}

/// One directory listing row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsEntry {
    /// Entry name.
    pub name: String,
    /// Its CID.
    pub cid: Cid,
    /// File size if the entry is a locally available file, else its cumulative DAG size.
    pub size: u64,
    /// Kind, when the entry's root block is local.
    pub kind: Option<Kind>,
}

/// List a directory; a file lists as itself.
pub fn ls(store: &Store, path: &str) -> Result<Vec<LsEntry>, ExportError> {
    let cid = resolve(store, path)?;
    let mut fetch = fetcher(store);
    let node = reader::load(&cid, &mut fetch)?;
    if node.kind() == Kind::File {
        return Ok(vec![LsEntry { name: String::new(), cid, size: node.file_size(), kind: Some(Kind::File) }]);
    }
    let entries = reader::list(&cid, &node, &mut fetch)?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let child = store.get(&e.cid).ok().flatten().and_then(|b| reader::decode(&e.cid, &b).ok());
            let size = match &child {
                Some(n) if n.kind() == Kind::File => n.file_size(),
                _ => e.tsize,
            };
            LsEntry { name: e.name, cid: e.cid, size, kind: child.map(|n| n.kind()) }
        })
        .collect())
}

/// What `get` wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetReport {
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// Write the file or tree at `path` to `dest`, which must not exist yet.
pub fn get(store: &Store, path: &str, dest: &Path, progress: &dyn Fn(u64)) -> Result<GetReport, ExportError> {
    get_from(&mut fetcher(store), path, dest, progress)
}

/// [`get`] through any block source.
pub(crate) fn get_from(
    fetch: Fetch<'_>,
    path: &str,
    dest: &Path,
    progress: &dyn Fn(u64),
) -> Result<GetReport, ExportError> {
    let root = resolve_from(fetch, path)?;
    let mut report = GetReport::default();
    let mut stack = vec![(root, dest.to_path_buf())];
    while let Some((cid, target)) = stack.pop() {
        let werr = |source| ExportError::Write { path: target.clone(), source };
        match reader::load(&cid, fetch)? {
            node @ (Node::Directory { .. } | Node::Shard { .. }) => {
                fs::create_dir(&target).map_err(werr)?;
                report.dirs += 1;
                for e in reader::list(&cid, &node, fetch)?.into_iter().rev() {
                    stack.push((e.cid, target.join(&e.name)));
                }
            }
            Node::Symlink { target: link } => {
                std::os::unix::fs::symlink(&link, &target).map_err(werr)?;
                report.symlinks += 1;
            }
            Node::File { .. } => {
                let file = fs::OpenOptions::new().write(true).create_new(true).open(&target).map_err(werr)?;
                let mut out = io::BufWriter::with_capacity(1 << 20, file);
                let mut cursor = FileCursor::new(cid, 0, None);
                while let Some(piece) = cursor.next_piece(fetch) {
                    let piece = piece?;
                    out.write_all(&piece).map_err(|source| ExportError::Write { path: target.clone(), source })?;
                    report.bytes += piece.len() as u64;
                    progress(report.bytes);
                }
                out.flush().map_err(|source| ExportError::Write { path: target.clone(), source })?;
                report.files += 1;
            }
        }
    }
    Ok(report)
}
