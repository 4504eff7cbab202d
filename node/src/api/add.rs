//! `add`: a `multipart/form-data` body of files, directories and symlinks, as kubo's clients
//! send it, imported into UnixFS exactly as `cairn add` does offline (same CIDs).
//!
//! Body shape (kubo, flat form): one part per entry, in depth-first order, each named by its
//! path in `filename` (percent-encoded), `Content-Type: application/x-directory` for a
//! directory, `application/symlink` for a symlink (the body is the target), anything else for a
//! file. The part's field name may carry `?mode=0644&mtime=SECS&mtime-nsecs=N`
//! (kubo-rpc-client). A file whose directory part never came gets an implicit one.
//!
//! Flow: the request task reads parts and hands them, chunk by chunk, over a bounded channel
//! to one blocking session thread, which cuts chunks, hashes leaves on a few worker threads
//! and builds the DAG into one store batch (one durable commit for the whole request); then
//! the roots are pinned. Directories stay open while their entries arrive (a stack, so memory
//! follows the depth and the entry count, not the data). The answer lists each entry
//! (`{"Name","Hash","Size"}`, children before parents, kubo's order) once the body has been
//! read: a blocking client writes its whole body before reading, so answering earlier could
//! fill the socket both ways.

use std::collections::HashSet;
use std::io::{self, Read};

use axum::extract::multipart::MultipartRejection;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, State};
use axum::response::Response;
use bytes::Bytes;
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::cids::HashFn;
use cairn_protocol::dir::{self, DirBuilder, DirEntry};
use cairn_protocol::profile::{ImportSettings, Layout};
use cairn_protocol::unixfs::Metadata;
use cairn_protocol::{Block, Cid};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::Ctx;
use crate::http_body::ndjson_lines;
use crate::importer;
use crate::ops::args::Args;
use crate::ops::OpError;
use crate::pins::{self, PinKind};
use crate::store::{BatchWriter, Store, StoreError};

/// What reading the body reports when the session is gone (it failed, and says why itself).
const STOPPED_EARLY: &str = "the add stopped early";

/// Parts (and file chunks) queued for the session thread.
const PART_QUEUE: usize = 8;

/// Longest symlink target accepted (Linux's `PATH_MAX`).
const MAX_SYMLINK: usize = 4096;

/// One step of the body, as the session thread sees it.
enum Part {
    Dir {
        path: String,
        meta: Metadata,
    },
    File {
        path: String,
        meta: Metadata,
    },
    Data(Bytes),
    EndFile,
    Symlink {
        path: String,
        target: String,
        meta: Metadata,
    },
    /// The whole body was read: only now may the session commit and pin. A body cut short
    /// (a deadline, a client that hung up) closes the channel without it, and nothing is
    /// pinned.
    End,
}

/// The session's settings.
#[derive(Clone)]
struct Options {
    settings: ImportSettings,
    wrap: bool,
    only_hash: bool,
    pin: bool,
    progress: bool,
}

/// `add`: options `cid-version`, `raw-leaves`, `chunker`, `trickle`, `hash`, `max-links`,
/// `profile`, `pin`, `only-hash`, `wrap-with-directory`, `progress` (`quiet` and `quieter`
/// only change what a client prints, as in kubo).
pub async fn add(
    State(ctx): State<Ctx>,
    args: Args,
    body: Result<Multipart, MultipartRejection>,
) -> Result<Response, OpError> {
    let mut body = body.map_err(|e| OpError::bad(e.body_text()))?;
    let opts = Options {
        settings: settings(&ctx, &args)?,
        wrap: args.flag("wrap-with-directory", false)?,
        only_hash: args.flag("only-hash", false)?,
        pin: args.flag("pin", true)?,
        progress: args.flag("progress", false)?,
    };
    let store = ctx.node.store().clone();
    let (tx, rx) = mpsc::channel(PART_QUEUE);
    let session = tokio::task::spawn_blocking(move || Session::new(store, opts).run(rx));
    // A send fails only when the session stopped early; its error is the one to report.
    let mut fed = feed(&mut body, &tx).await;
    if fed.is_ok() && tx.send(Part::End).await.is_err() {
        fed = Err(OpError::failed(STOPPED_EARLY));
    }
    drop(tx);
    let done = session.await.map_err(|e| OpError::failed(format!("internal error: the add session failed: {e}")))?;
    let (rows, roots) = match (done, fed) {
        (Ok(done), Ok(())) => done,
        // The session stopped first (disk full, a bad entry): its error is the one to report.
        // Read the rest of the body first: a client that sends its whole body before it reads
        // (the CLI, most HTTP libraries) would otherwise see a broken pipe instead.
        (Err(e), Err(f)) if f.message() == STOPPED_EARLY => {
            drain(&mut body).await;
            return Err(e);
        }
        // The body failed first (cut off, malformed): say why.
        (_, Err(f)) => return Err(f),
        (Err(e), Ok(())) => return Err(e),
    };
    if !roots.is_empty() {
        // Announce what was stored (the provider keeps re-announcing it).
        ctx.node.announce(roots).await;
    }
    Ok(ndjson_lines(rows))
}

/// Import settings: the profile (option, else the repo's), then single-setting options, as
/// the CLI builds them.
fn settings(ctx: &Ctx, args: &Args) -> Result<ImportSettings, OpError> {
    let profile = match args.get("profile") {
        Some(p) => p.to_string(),
        None => ctx.node.repo().config().import.profile.clone(),
    };
    let bad = |e: &dyn std::fmt::Display| OpError::bad(e.to_string());
    let mut s = ImportSettings::profile(&profile).map_err(|e| bad(&e))?;
    if let Some(v) = args.u64("cid-version")? {
        let version = match v {
            0 => cid::Version::V0,
            1 => cid::Version::V1,
            other => return Err(OpError::bad(format!("--cid-version {other} is not supported: use 0 or 1"))),
        };
        s.set_cid_version(version, args.get("raw-leaves").is_some());
    }
    if let Some(r) = args.opt_flag("raw-leaves")? {
        s.raw_leaves = r;
    }
    if let Some(c) = args.get("chunker") {
        s.chunker = ChunkerSpec::parse(c).map_err(|e| bad(&e))?;
    }
    if args.flag("trickle", false)? {
        s.layout = Layout::Trickle;
    }
    if let Some(h) = args.get("hash") {
        s.hash =
            HashFn::from_name(h).ok_or_else(|| OpError::bad(format!("unknown hash {h:?}: use sha2-256 or blake3")))?;
    }
    if let Some(m) = args.u64("max-links")?.or(args.u64("max-file-links")?) {
        s.max_links = usize::try_from(m).map_err(|_| OpError::bad("max-links is too large"))?;
    }
    s.validate().map_err(|e| bad(&e))
}

/// Read every part of the body and pass it on.
async fn feed(body: &mut Multipart, tx: &mpsc::Sender<Part>) -> Result<(), OpError> {
    let closed = || OpError::failed(STOPPED_EARLY);
    while let Some(mut field) = body.next_field().await.map_err(multipart_error)? {
        let (kind, path, meta) = describe(&field)?;
        match kind {
            Kind::Dir => tx.send(Part::Dir { path, meta }).await.map_err(|_| closed())?,
            Kind::Symlink => {
                let mut target = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    target.extend_from_slice(&chunk);
                    if target.len() > MAX_SYMLINK {
                        return Err(OpError::bad(format!("symlink {path}: target longer than {MAX_SYMLINK} bytes")));
                    }
                }
                let target = String::from_utf8(target)
                    .map_err(|_| OpError::bad(format!("symlink {path}: the target is not UTF-8")))?;
                tx.send(Part::Symlink { path, target, meta }).await.map_err(|_| closed())?;
            }
            Kind::File => {
                tx.send(Part::File { path, meta }).await.map_err(|_| closed())?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    tx.send(Part::Data(chunk)).await.map_err(|_| closed())?;
                }
                tx.send(Part::EndFile).await.map_err(|_| closed())?;
            }
        }
    }
    Ok(())
}

/// Longest a failed `add` keeps reading (and dropping) the rest of its body before it answers.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Read and drop the rest of the body, for at most [`DRAIN_LIMIT`].
async fn drain(body: &mut Multipart) {
    let rest = async {
        while let Ok(Some(mut field)) = body.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, rest).await;
}

fn multipart_error(e: MultipartError) -> OpError {
    OpError::bad(format!("reading the multipart body: {}", e.body_text()))
}

enum Kind {
    Dir,
    File,
    Symlink,
}

/// A part's kind, decoded path and metadata.
fn describe(field: &Field<'_>) -> Result<(Kind, String, Metadata), OpError> {
    let kind = match field.content_type().map(|c| c.split(';').next().unwrap_or("").trim()) {
        Some("application/x-directory") => Kind::Dir,
        Some("application/symlink") => Kind::Symlink,
        Some("multipart/mixed") => {
            return Err(OpError::bad(
                "nested multipart directories (old go-ipfs clients) are not supported: send one part per entry",
            ))
        }
        _ => Kind::File,
    };
    let raw = field.file_name().unwrap_or("");
    let path = percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map_err(|_| OpError::bad(format!("file name {raw:?} is not UTF-8")))?
        .into_owned();
    let meta = field.name().map(field_metadata).transpose()?.unwrap_or_default();
    Ok((kind, path, meta))
}

/// `file?mode=0755&mtime=SECS&mtime-nsecs=N` (kubo-rpc-client's way of sending metadata).
fn field_metadata(name: &str) -> Result<Metadata, OpError> {
    let Some((_, query)) = name.split_once('?') else { return Ok(Metadata::default()) };
    let args = Args::parse(query)?;
    let mode = args
        .get("mode")
        .map(|m| u32::from_str_radix(m, 8).map_err(|_| OpError::bad(format!("mode {m:?} is not octal"))))
        .transpose()?;
    let mtime = match args.get("mtime") {
        None => None,
        Some(t) => {
            let secs: i64 = t.parse().map_err(|_| OpError::bad(format!("mtime {t:?} is not a number")))?;
            let nsecs = args.u64("mtime-nsecs")?.unwrap_or(0);
            Some((secs, u32::try_from(nsecs).map_err(|_| OpError::bad("mtime-nsecs is too large"))?))
        }
    };
    Ok(Metadata { mode: mode.map(|m| m & 0o7777), mtime })
}

/// Split a part's path into validated segments (`""` is a nameless file).
fn segments(path: &str) -> Result<Vec<String>, OpError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split('/')
        .map(|s| match s {
            "" | "." | ".." => {
                Err(OpError::bad(format!("invalid path {path:?}: empty, `.` and `..` segments are refused")))
            }
            s => Ok(s.to_string()),
        })
        .collect()
}

/// A directory whose entries are still arriving.
struct OpenDir {
    path: Vec<String>,
    builder: DirBuilder,
}

/// The blocking side of one `add` request.
struct Session {
    opts: Options,
    store: Store,
    /// Where blocks go; `None` with `only-hash`. Its batch also protects the blocks from GC
    /// until the pins are written.
    writer: Option<BatchWriter>,
    open: Vec<OpenDir>,
    closed: HashSet<Vec<String>>,
    /// Top-level entries: name, CID, cumulative size.
    roots: Vec<(String, Cid, u64)>,
    /// The answer, one JSON line per entry, serialized as it is made: a `Value` per row cost
    /// about 600 bytes, 60 MiB for an add of 100,000 files.
    rows: Vec<u8>,
}

impl Session {
    fn new(store: Store, opts: Options) -> Session {
        let writer = (!opts.only_hash).then(|| store.writer());
        Session { opts, store, writer, open: Vec::new(), closed: HashSet::new(), roots: Vec::new(), rows: Vec::new() }
    }

    /// Import every part; returns the answer's rows and the roots stored (none with
    /// `only-hash`).
    fn run(mut self, mut rx: mpsc::Receiver<Part>) -> Result<(Vec<u8>, Vec<Cid>), OpError> {
        if !self.opts.only_hash {
            self.store.check_space()?;
        }
        loop {
            match rx.blocking_recv() {
                Some(Part::Dir { path, meta }) => self.dir(&path, meta)?,
                Some(Part::File { path, meta }) => self.file(&path, meta, &mut rx)?,
                Some(Part::Symlink { path, target, meta }) => self.symlink(&path, &target, meta)?,
                Some(Part::End) => break,
                Some(Part::Data(_) | Part::EndFile) => {
                    return Err(OpError::failed("internal error: file data outside a file"))
                }
                None => {
                    return Err(OpError::failed(
                        "the request body ended before the upload was complete; nothing was pinned",
                    ))
                }
            }
        }
        while !self.open.is_empty() {
            self.close_top()?;
        }
        self.finish()
    }

    fn put(&mut self, block: Block) -> Result<(), StoreError> {
        match &mut self.writer {
            Some(w) => w.write(block),
            None => Ok(()),
        }
    }

    fn report(&mut self, path: &str, cid: &Cid, size: u64) {
        let name = if path.is_empty() { cid.to_string() } else { path.to_string() };
        self.row(&json!({ "Name": name, "Hash": cid.to_string(), "Size": size.to_string() }));
    }

    fn row(&mut self, v: &Value) {
        serde_json::to_writer(&mut self.rows, v).expect("JSON values serialize");
        self.rows.push(b'\n');
    }

    /// Close open directories until the top one is `parent`'s deepest open ancestor, then
    /// open (implicitly) whatever of `parent` is missing.
    fn enter(&mut self, parent: &[String]) -> Result<(), OpError> {
        while self.open.last().is_some_and(|top| !parent.starts_with(&top.path)) {
            self.close_top()?;
        }
        for depth in self.open.len()..parent.len() {
            let path = parent[..=depth].to_vec();
            self.check_not_closed(&path)?;
            self.open.push(OpenDir { path, builder: DirBuilder::new(&self.opts.settings) });
        }
        Ok(())
    }

    fn check_not_closed(&self, path: &[String]) -> Result<(), OpError> {
        if self.closed.contains(path) {
            return Err(OpError::bad(format!(
                "directory {:?} is sent twice, or an entry arrives after the entries of another directory: \
                 send each directory's entries together, depth first",
                path.join("/")
            )));
        }
        Ok(())
    }

    fn dir(&mut self, path: &str, meta: Metadata) -> Result<(), OpError> {
        let segs = segments(path)?;
        if segs.is_empty() {
            return Err(OpError::bad("a directory part needs a name"));
        }
        self.enter(&segs[..segs.len() - 1])?;
        self.check_not_closed(&segs)?;
        let builder = DirBuilder::new(&self.opts.settings).with_metadata(meta);
        self.open.push(OpenDir { path: segs, builder });
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), OpError> {
        let OpenDir { path, builder } = self.open.pop().expect("close_top with an open directory");
        let mut blocks = Vec::new();
        let (cid, tsize) = builder.finish(&mut |b| blocks.push(b))?;
        for b in blocks {
            self.put(b)?;
        }
        self.report(&path.join("/"), &cid, tsize);
        self.attach(&path, cid, tsize)?;
        self.closed.insert(path);
        Ok(())
    }

    /// Link a finished entry into its directory, or record it as a root.
    fn attach(&mut self, path: &[String], cid: Cid, tsize: u64) -> Result<(), OpError> {
        let name = path.last().cloned().unwrap_or_default();
        match self.open.last_mut() {
            Some(parent) if path.len() > 1 => parent.builder.add(DirEntry { name, cid, tsize })?,
            _ => self.roots.push((name, cid, tsize)),
        }
        Ok(())
    }

    fn file(&mut self, path: &str, meta: Metadata, rx: &mut mpsc::Receiver<Part>) -> Result<(), OpError> {
        let segs = segments(path)?;
        self.enter(&segs[..segs.len().saturating_sub(1)])?;
        let mut data = PartReader { rx, cur: Bytes::new(), done: false };
        let settings = self.opts.settings.clone();
        let writer = &mut self.writer;
        let root = importer::build_file(&mut data, &settings, meta, &|_| {}, &mut |b| match writer.as_mut() {
            Some(w) => w.write(b),
            None => Ok(()),
        })
        .map_err(|e| match e {
            importer::BuildError::Emit(e) => OpError::from(e),
            importer::BuildError::Read(e) => OpError::failed(format!("reading {path} from the request: {e}")),
        })?;
        let rel = segs.join("/");
        if self.opts.progress {
            let name = if rel.is_empty() { root.cid.to_string() } else { rel.clone() };
            self.row(&json!({ "Name": name, "Bytes": root.size }));
        }
        self.report(&rel, &root.cid, root.size);
        self.attach(&segs, root.cid, root.tsize)
    }

    fn symlink(&mut self, path: &str, target: &str, meta: Metadata) -> Result<(), OpError> {
        let segs = segments(path)?;
        self.enter(&segs[..segs.len().saturating_sub(1)])?;
        let block = dir::symlink(&self.opts.settings, target, meta);
        let (cid, tsize) = (block.cid, block.data.len() as u64);
        self.put(block)?;
        self.report(&segs.join("/"), &cid, target.len() as u64);
        self.attach(&segs, cid, tsize)
    }

    /// Wrap if asked, commit the batch, then pin the roots.
    fn finish(mut self) -> Result<(Vec<u8>, Vec<Cid>), OpError> {
        let mut roots: Vec<Cid> = self.roots.iter().map(|(_, cid, _)| *cid).collect();
        if self.opts.wrap {
            let mut d = DirBuilder::new(&self.opts.settings);
            for (name, cid, tsize) in std::mem::take(&mut self.roots) {
                d.add(DirEntry { name, cid, tsize })?;
            }
            let mut blocks = Vec::new();
            let (cid, size) = d.finish(&mut |b| blocks.push(b))?;
            for b in blocks {
                self.put(b)?;
            }
            self.row(&json!({ "Name": "", "Hash": cid.to_string(), "Size": size.to_string() }));
            roots = vec![cid];
        }
        let Some(writer) = &mut self.writer else {
            return Ok((self.rows, Vec::new()));
        };
        // Blocks durable first; only then the pins that refer to them.
        writer.commit()?;
        if self.opts.pin {
            for root in &roots {
                pins::add(&self.store, root, PinKind::Recursive, None)?;
            }
        }
        Ok((self.rows, roots))
    }
}

/// One file's bytes from the part channel, up to its `EndFile`.
struct PartReader<'a> {
    rx: &'a mut mpsc::Receiver<Part>,
    cur: Bytes,
    done: bool,
}

impl Read for PartReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() && !self.done {
            match self.rx.blocking_recv() {
                Some(Part::Data(b)) => self.cur = b,
                Some(Part::EndFile) => self.done = true,
                Some(_) => return Err(io::Error::other("internal error: a new entry inside a file")),
                None => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the request body ended inside a file"))
                }
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_metadata() {
        assert_eq!(segments("a/b/c.txt").unwrap(), vec!["a", "b", "c.txt"]);
        assert!(segments("").unwrap().is_empty());
        assert!(segments("a/../b").is_err());
        let m = field_metadata("file-1?mode=0755&mtime=12&mtime-nsecs=3").unwrap();
        assert_eq!((m.mode, m.mtime), (Some(0o755), Some((12, 3))));
        assert_eq!(field_metadata("file").unwrap(), Metadata::default());
    }
}
