//! Adding files, directories and symlinks into the store: the one importer behind `add`, in
//! the CLI's process or the daemon's, from the file system or a request body.
//!
//! Input is a sequence of [`Part`]s in depth-first order (a directory, then its entries),
//! as [`walk`] reads them from disk and as kubo's clients send them over HTTP. Directories
//! stay open while their entries arrive (a stack, so memory follows the depth and the entry
//! count, not the data).
//!
//! A file flows through a small pipeline: one thread reads and cuts chunks, hashing workers
//! (one per core, none for a file of one chunk) turn chunks into leaves, and the calling thread
//! orders the leaves, builds the DAG and hands blocks to the store's writer thread. Every
//! channel is bounded, so memory stays at a few chunks per stage whatever the file size.
//! Nothing is visible until the batch is committed (one sync), and the pin is written only
//! after that.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;

use bytes::{Bytes, BytesMut};
use cairn_protocol::dir::{self, DirBuilder, DirEntry, DirError};
use cairn_protocol::file::{FileBuilder, FileRoot, Leaf};
use cairn_protocol::profile::ImportSettings;
use cairn_protocol::unixfs::Metadata;
use cairn_protocol::{Block, Cid};
use crossbeam_channel::bounded;

use crate::pins::{self, PinError, PinKind};
use crate::store::{BatchWriter, Store, StoreError};
use crate::upload::{Part, PartKind};

/// Longest symlink target accepted (Linux's `PATH_MAX`).
pub(crate) const MAX_SYMLINK: usize = 4096;

/// Chunks or leaves queued between pipeline stages.
const STAGE_QUEUE: usize = 4;

/// How to add.
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// CID-determining settings.
    pub settings: ImportSettings,
    /// Wrap the result in a directory holding it under its name (`-w`).
    pub wrap: bool,
    /// Include dot-files when adding a directory.
    pub hidden: bool,
    /// Compute CIDs without writing anything.
    pub only_hash: bool,
    /// Pin the root recursively.
    pub pin: bool,
    /// Record permission bits (UnixFS 1.5).
    pub preserve_mode: bool,
    /// Record modification times (UnixFS 1.5).
    pub preserve_mtime: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            settings: ImportSettings::default(),
            wrap: false,
            hidden: false,
            only_hash: false,
            pin: true,
            preserve_mode: false,
            preserve_mtime: false,
        }
    }
}

/// One added file, directory or symlink, reported as it completes (children before parents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// Path relative to what was added (the root has its own name, or "" for a nameless
    /// file and for the wrapping directory).
    pub path: String,
    /// Its CID.
    pub cid: Cid,
    /// File bytes (files), target length (symlinks) or cumulative DAG size (directories).
    pub size: u64,
    /// What it is.
    pub kind: PartKind,
}

/// What an add reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// An entry completed (children before parents). Nothing is durable yet: callers print
    /// it only once the add has returned `Ok`.
    Added(&'a Added),
    /// A special file (FIFO, socket, device) inside a directory, left out of the DAG.
    Skipped {
        /// The file.
        path: &'a Path,
        /// What it is (`a FIFO`, `a socket`, …).
        kind: &'static str,
    },
}

/// How an entry on disk is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A folder, walked.
    Dir,
    /// A symbolic link, stored as a UnixFS symlink.
    Symlink,
    /// Bytes read to the end: regular files, and on the command line also pipes, character
    /// devices and `/dev/fd/N` (`cairn add <(cmd)`).
    File,
    /// Left out with a warning: a FIFO, socket or device found inside a directory (reading
    /// one could block forever or never end).
    Special(&'static str),
}

/// Decide how to add `path`. `top_level`: named on the command line, where pipes, devices
/// and links to them (`/dev/fd/63 -> pipe:[…]`) are read as files, as the user asked for
/// them; inside a directory they are [`EntryKind::Special`].
pub(crate) fn entry_kind(path: &Path, top_level: bool) -> io::Result<EntryKind> {
    use std::os::unix::fs::FileTypeExt;
    let md = fs::symlink_metadata(path)?;
    let t = md.file_type();
    let special = |t: fs::FileType| -> Option<&'static str> {
        if t.is_fifo() {
            Some("a FIFO")
        } else if t.is_socket() {
            Some("a socket")
        } else if t.is_char_device() {
            Some("a character device")
        } else if t.is_block_device() {
            Some("a block device")
        } else {
            None
        }
    };
    if t.is_symlink() {
        if top_level {
            // `<(cmd)` gives /dev/fd/N, a link to `pipe:[…]`: the user means its bytes.
            let followed = fs::metadata(path).ok().map(|m| m.file_type());
            let pseudo = path.starts_with("/dev/fd") || path.starts_with("/proc");
            if followed.is_some_and(|f| special(f).is_some()) || (pseudo && followed.is_some_and(|f| f.is_file())) {
                return Ok(EntryKind::File);
            }
        }
        return Ok(EntryKind::Symlink);
    }
    if t.is_dir() {
        return Ok(EntryKind::Dir);
    }
    match special(t) {
        Some("a socket") => Ok(EntryKind::Special("a socket")),
        Some(_) if top_level => Ok(EntryKind::File),
        Some(kind) => Ok(EntryKind::Special(kind)),
        None => Ok(EntryKind::File),
    }
}

/// Errors while adding.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("reading {path}: {source}")]
    Read {
        /// What was being read.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The input ended or failed between entries.
    #[error("{0}")]
    Input(io::Error),
    /// The store failed (disk full, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A name that cannot be stored in UnixFS.
    #[error("cannot add {path}: {reason}")]
    Name {
        /// The entry.
        path: String,
        /// Why.
        reason: String,
    },
    /// Entries in an order that does not describe one tree (a directory sent twice, an entry
    /// after another directory's), or a malformed entry.
    #[error("{0}")]
    Shape(String),
    /// A directory-building problem.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// Pinning the result failed.
    #[error(transparent)]
    Pin(#[from] PinError),
}

/// Add files or directory trees from disk (see [`walk`]). `on_added` sees every entry as it
/// completes and every special file skipped; `progress` gets the running count of file
/// bytes read. Returns the roots (one per path, or the wrapping directory with `wrap`), each
/// pinned when `opts.pin`.
pub fn add_paths(
    store: &Store,
    paths: &[PathBuf],
    opts: &AddOptions,
    on_added: &mut dyn FnMut(Event<'_>),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Added>, ImportError> {
    let mut skipped = Vec::new();
    let parts = walk(paths, opts).filter_map(|w| match w {
        Ok(Walked::Part(p)) => Some(Ok(p)),
        Ok(Walked::Skipped(path, kind)) => {
            skipped.push((path, kind));
            None
        }
        Err(e) => Some(Err(e)),
    });
    let roots = import(store, opts, parts, on_added, progress);
    for (path, kind) in &skipped {
        on_added(Event::Skipped { path, kind });
    }
    roots
}

/// Add one file's bytes from a reader (stdin); `name` is used for `-w` and reporting.
pub fn add_reader(
    store: &Store,
    reader: impl Read + Send,
    name: &str,
    opts: &AddOptions,
    on_added: &mut dyn FnMut(Event<'_>),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Added>, ImportError> {
    import(store, opts, std::iter::once(Ok(Part::file(name, reader))), on_added, progress)
}

/// Import `parts` (depth first: a directory before its entries) into one store batch, wrap
/// them if asked, commit, then pin the roots. Returns the roots; nothing is pinned unless
/// every part was read to its end.
pub fn import<'a>(
    store: &Store,
    opts: &AddOptions,
    parts: impl Iterator<Item = io::Result<Part<'a>>>,
    on_added: &mut dyn FnMut(Event<'_>),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Added>, ImportError> {
    if !opts.only_hash {
        store.check_space()?;
    }
    let mut s = Session {
        opts,
        writer: (!opts.only_hash).then(|| store.writer()),
        open: Vec::new(),
        closed: HashSet::new(),
        roots: Vec::new(),
        on_added,
        done: 0,
        progress,
    };
    for part in parts {
        let part = part.map_err(ImportError::Input)?;
        match part.kind {
            PartKind::Dir => s.dir(&part.name, part.meta)?,
            PartKind::File => s.file(part)?,
            PartKind::Symlink => s.symlink(part)?,
        }
    }
    while !s.open.is_empty() {
        s.close_top()?;
    }
    let roots = s.finish()?;
    if opts.pin && !opts.only_hash {
        for root in &roots {
            pins::add(store, &root.cid, PinKind::Recursive, None)?;
        }
    }
    Ok(roots)
}

/// Split a part's path into checked segments (`""` is a nameless file).
fn segments(path: &str) -> Result<Vec<String>, ImportError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split('/')
        .map(|s| match s {
            "" | "." | ".." => {
                Err(ImportError::Shape(format!("invalid path {path:?}: empty, `.` and `..` segments are refused")))
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

/// One import in progress.
struct Session<'a> {
    opts: &'a AddOptions,
    /// Where blocks go; `None` with `only_hash`. Its batch also protects the blocks from GC
    /// until the pins are written.
    writer: Option<BatchWriter>,
    open: Vec<OpenDir>,
    closed: HashSet<Vec<String>>,
    /// Top-level entries and their cumulative sizes.
    roots: Vec<(Added, u64)>,
    on_added: &'a mut dyn FnMut(Event<'_>),
    /// File bytes read before the current file.
    done: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Session<'_> {
    fn put(&mut self, block: Block) -> Result<(), StoreError> {
        match &mut self.writer {
            Some(w) => w.write(block),
            None => Ok(()),
        }
    }

    fn put_all(&mut self, blocks: Vec<Block>) -> Result<(), StoreError> {
        blocks.into_iter().try_for_each(|b| self.put(b))
    }

    /// Close open directories until the top one is `parent`'s deepest open ancestor, then
    /// open (implicitly) whatever of `parent` is missing.
    fn enter(&mut self, parent: &[String]) -> Result<(), ImportError> {
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

    fn check_not_closed(&self, path: &[String]) -> Result<(), ImportError> {
        if self.closed.contains(path) {
            return Err(ImportError::Shape(format!(
                "directory {:?} is sent twice, or an entry arrives after the entries of another directory: \
                 send each directory's entries together, depth first",
                path.join("/")
            )));
        }
        Ok(())
    }

    fn dir(&mut self, path: &str, meta: Metadata) -> Result<(), ImportError> {
        let segs = segments(path)?;
        if segs.is_empty() {
            return Err(ImportError::Shape("a directory part needs a name".into()));
        }
        self.enter(&segs[..segs.len() - 1])?;
        self.check_not_closed(&segs)?;
        let builder = DirBuilder::new(&self.opts.settings).with_metadata(meta);
        self.open.push(OpenDir { path: segs, builder });
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), ImportError> {
        let OpenDir { path, builder } = self.open.pop().expect("close_top with an open directory");
        let mut blocks = Vec::new();
        let (cid, tsize) = builder.finish(&mut |b| blocks.push(b))?;
        self.put_all(blocks)?;
        let added = Added { path: path.join("/"), cid, size: tsize, kind: PartKind::Dir };
        self.attach(&path, added, tsize)?;
        self.closed.insert(path);
        Ok(())
    }

    /// Report a finished entry and link it into its directory, or record it as a root.
    fn attach(&mut self, path: &[String], added: Added, tsize: u64) -> Result<(), ImportError> {
        (self.on_added)(Event::Added(&added));
        let name = path.last().cloned().unwrap_or_default();
        match self.open.last_mut() {
            Some(parent) if path.len() > 1 => parent.builder.add(DirEntry { name, cid: added.cid, tsize })?,
            _ => self.roots.push((added, tsize)),
        }
        Ok(())
    }

    fn file(&mut self, part: Part<'_>) -> Result<(), ImportError> {
        let segs = segments(&part.name)?;
        self.enter(&segs[..segs.len().saturating_sub(1)])?;
        let (base, progress) = (self.done, self.progress);
        let writer = &mut self.writer;
        let root =
            build_file(part.data, &self.opts.settings, part.meta, &|n| progress(base + n), &mut |b| match writer
                .as_mut()
            {
                Some(w) => w.write(b),
                None => Ok(()),
            })
            .map_err(|e| match e {
                BuildError::Emit(e) => ImportError::Store(e),
                // Readers of files on disk name the file in their errors already.
                BuildError::Read(source) if source.to_string().starts_with("reading ") => ImportError::Input(source),
                BuildError::Read(source) => ImportError::Read { path: part.name.clone(), source },
            })?;
        self.done += root.size;
        let added = Added { path: segs.join("/"), cid: root.cid, size: root.size, kind: PartKind::File };
        self.attach(&segs, added, root.tsize)
    }

    fn symlink(&mut self, part: Part<'_>) -> Result<(), ImportError> {
        let segs = segments(&part.name)?;
        self.enter(&segs[..segs.len().saturating_sub(1)])?;
        let mut target = Vec::new();
        part.data
            .take(MAX_SYMLINK as u64 + 1)
            .read_to_end(&mut target)
            .map_err(|source| ImportError::Read { path: part.name.clone(), source })?;
        if target.len() > MAX_SYMLINK {
            return Err(ImportError::Shape(format!("symlink {}: target longer than {MAX_SYMLINK} bytes", part.name)));
        }
        let target = String::from_utf8(target)
            .map_err(|_| ImportError::Shape(format!("symlink {}: the target is not UTF-8", part.name)))?;
        let block = dir::symlink(&self.opts.settings, &target, part.meta);
        let (cid, tsize) = (block.cid, block.data.len() as u64);
        self.put(block)?;
        let added = Added { path: segs.join("/"), cid, size: target.len() as u64, kind: PartKind::Symlink };
        self.attach(&segs, added, tsize)
    }

    /// Wrap if asked, then commit the batch: blocks durable before any pin refers to them.
    fn finish(mut self) -> Result<Vec<Added>, ImportError> {
        let roots = if self.opts.wrap {
            let mut d = DirBuilder::new(&self.opts.settings);
            for (root, tsize) in std::mem::take(&mut self.roots) {
                d.add(DirEntry { name: root.path, cid: root.cid, tsize })?;
            }
            let mut blocks = Vec::new();
            let (cid, size) = d.finish(&mut |b| blocks.push(b))?;
            self.put_all(blocks)?;
            let wrapper = Added { path: String::new(), cid, size, kind: PartKind::Dir };
            (self.on_added)(Event::Added(&wrapper));
            vec![wrapper]
        } else {
            self.roots.into_iter().map(|(a, _)| a).collect()
        };
        if let Some(writer) = &mut self.writer {
            writer.commit()?;
        }
        Ok(roots)
    }
}

/// What [`walk`] finds.
pub enum Walked {
    /// An entry to add.
    Part(Part<'static>),
    /// A FIFO, socket or device inside a directory, left out.
    Skipped(PathBuf, &'static str),
}

/// The entries under `paths`, depth first, each directory's entries sorted by name and
/// dot-files left out unless `opts.hidden`, with metadata when `opts.preserve_*`. Each
/// top-level path is named by its last component (of its absolute path for `.` and the like).
/// Files are opened as they are reached, so an add of many files holds one open at a time.
pub fn walk(paths: &[PathBuf], opts: &AddOptions) -> Walk {
    let stack = paths.iter().rev().map(|p| (p.clone(), None, true)).collect();
    Walk { stack, hidden: opts.hidden, mode: opts.preserve_mode, mtime: opts.preserve_mtime }
}

/// The iterator of [`walk`].
pub struct Walk {
    /// Entries still to visit: path on disk, path in the upload (`None`: a top-level path,
    /// named when visited), named on the command line.
    stack: Vec<(PathBuf, Option<String>, bool)>,
    hidden: bool,
    mode: bool,
    mtime: bool,
}

/// The name a top-level path is added under.
fn root_name(p: &Path) -> io::Result<String> {
    let name = match p.file_name() {
        Some(n) => n.to_os_string(),
        None => fs::canonicalize(p)?.file_name().map(|n| n.to_os_string()).unwrap_or_default(),
    };
    name.into_string().map_err(|_| not_utf8(p))
}

fn not_utf8(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cannot add {}: the name is not valid UTF-8", p.display()))
}

impl Walk {
    fn visit(&mut self, path: PathBuf, rel: Option<String>, top_level: bool) -> io::Result<Walked> {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("reading {}: {e}", path.display()));
        let rel = match rel {
            Some(r) => r,
            None => root_name(&path).map_err(ctx)?,
        };
        let kind = entry_kind(&path, top_level).map_err(ctx)?;
        let md = match kind {
            EntryKind::File => fs::metadata(&path),
            _ => fs::symlink_metadata(&path),
        }
        .map_err(ctx)?;
        let meta = Metadata {
            mode: self.mode.then(|| md.mode() & 0o7777),
            mtime: self.mtime.then(|| (md.mtime(), md.mtime_nsec() as u32)),
        };
        let part = |kind, data: Box<dyn Read + Send>| Walked::Part(Part { name: rel.clone(), kind, meta, data });
        match kind {
            EntryKind::Special(what) if top_level => {
                Err(io::Error::other(format!("cannot add {}: it is {what}", path.display())))
            }
            EntryKind::Special(what) => Ok(Walked::Skipped(path, what)),
            EntryKind::Symlink => {
                let target = fs::read_link(&path).map_err(ctx)?;
                let target = target.into_os_string().into_string().map_err(|_| not_utf8(&path))?;
                Ok(part(PartKind::Symlink, Box::new(io::Cursor::new(target.into_bytes()))))
            }
            EntryKind::Dir => {
                let mut names = Vec::new();
                for entry in fs::read_dir(&path).map_err(ctx)? {
                    let entry = entry.map_err(ctx)?;
                    let name = entry.file_name().into_string().map_err(|_| not_utf8(&entry.path()))?;
                    if self.hidden || !name.starts_with('.') {
                        names.push(name);
                    }
                }
                names.sort();
                for name in names.into_iter().rev() {
                    self.stack.push((path.join(&name), Some(format!("{rel}/{name}")), false));
                }
                Ok(part(PartKind::Dir, Box::new(io::empty())))
            }
            EntryKind::File => {
                let file = fs::File::open(&path).map_err(ctx)?;
                Ok(part(PartKind::File, Box::new(Named { path: path.display().to_string(), inner: file })))
            }
        }
    }
}

impl Iterator for Walk {
    type Item = io::Result<Walked>;

    fn next(&mut self) -> Option<Self::Item> {
        let (path, rel, top_level) = self.stack.pop()?;
        Some(self.visit(path, rel, top_level))
    }
}

/// A reader whose errors name the file they came from.
struct Named<R> {
    path: String,
    inner: R,
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", self.path)))
    }
}

/// Why [`build_file`] stopped.
#[derive(Debug)]
pub(crate) enum BuildError<E> {
    /// Reading the input failed.
    Read(io::Error),
    /// The block consumer failed.
    Emit(E),
}

/// The import pipeline for one file, over any reader: one thread reads and cuts chunks,
/// hashing workers (one per core) turn them into leaves, and the calling thread puts them back
/// in order and builds the DAG, handing every block to `emit`. The first error of `emit` stops
/// it. Every channel is bounded, so memory stays at a few chunks per stage. A file no longer
/// than one chunk's window is built on the calling thread: no threads for small files.
pub(crate) fn build_file<E>(
    mut reader: impl Read + Send,
    settings: &ImportSettings,
    meta: Metadata,
    progress: &(dyn Fn(u64) + Sync),
    emit: &mut dyn FnMut(Block) -> Result<(), E>,
) -> Result<FileRoot, BuildError<E>> {
    let window = settings.chunker.build().max_size();
    let mut head = Vec::new();
    (&mut reader).take(window as u64 + 1).read_to_end(&mut head).map_err(BuildError::Read)?;
    if head.len() <= window {
        progress(head.len() as u64);
        return build_small(Bytes::from(head), settings, meta, emit);
    }
    let reader = io::Cursor::new(head).chain(reader);
    let workers = thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let (chunk_tx, chunk_rx) = bounded::<(u64, Bytes)>(STAGE_QUEUE);
    let (leaf_tx, leaf_rx) = bounded::<(u64, Leaf)>(STAGE_QUEUE);
    thread::scope(|s| {
        let reader_thread = s.spawn(move || read_chunks(reader, settings, chunk_tx, progress));
        for _ in 0..workers {
            let (rx, tx) = (chunk_rx.clone(), leaf_tx.clone());
            s.spawn(move || {
                for (seq, chunk) in rx {
                    if tx.send((seq, Leaf::new(settings, chunk))).is_err() {
                        break;
                    }
                }
            });
        }
        drop((chunk_rx, leaf_tx));
        let mut builder = FileBuilder::new(settings).with_metadata(meta);
        let mut waiting: BTreeMap<u64, Leaf> = BTreeMap::new();
        let mut next = 0u64;
        let mut err: Option<E> = None;
        let mut put = |b: Block, err: &mut Option<E>| {
            if err.is_none() {
                *err = emit(b).err();
            }
        };
        for (seq, leaf) in leaf_rx.iter() {
            waiting.insert(seq, leaf);
            while let Some(leaf) = waiting.remove(&next) {
                builder.push(leaf, &mut |b| put(b, &mut err));
                next += 1;
            }
            if err.is_some() {
                break;
            }
        }
        // Dropping the receiver stops the workers and then the reader.
        drop(leaf_rx);
        let read_result = reader_thread.join().expect("reader thread panicked");
        if let Some(e) = err {
            return Err(BuildError::Emit(e));
        }
        read_result.map_err(BuildError::Read)?;
        let root = builder.finish(&mut |b| put(b, &mut err));
        match err {
            Some(e) => Err(BuildError::Emit(e)),
            None => Ok(root),
        }
    })
}

/// [`build_file`] for a file whose bytes are all in `data`, on the calling thread.
fn build_small<E>(
    mut data: Bytes,
    settings: &ImportSettings,
    meta: Metadata,
    emit: &mut dyn FnMut(Block) -> Result<(), E>,
) -> Result<FileRoot, BuildError<E>> {
    let mut chunker = settings.chunker.build();
    let mut builder = FileBuilder::new(settings).with_metadata(meta);
    let mut err: Option<E> = None;
    let mut put = |b: Block, err: &mut Option<E>| {
        if err.is_none() {
            *err = emit(b).err();
        }
    };
    while !data.is_empty() {
        let n = chunker.cut(&data);
        builder.push(Leaf::new(settings, data.split_to(n)), &mut |b| put(b, &mut err));
    }
    let root = builder.finish(&mut |b| put(b, &mut err));
    match err {
        Some(e) => Err(BuildError::Emit(e)),
        None => Ok(root),
    }
}

/// Read `reader` to the end, cutting chunks; zero-copy slices of one growing buffer. The
/// window is filled completely before a cut: readers such as request bodies deliver small
/// pieces, and zeroing a fresh window per piece would cost more than the hashing.
fn read_chunks(
    mut reader: impl Read,
    settings: &ImportSettings,
    tx: crossbeam_channel::Sender<(u64, Bytes)>,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<()> {
    let mut chunker = settings.chunker.build();
    let max = chunker.max_size();
    let read_size = max.max(256 * 1024);
    let mut buf = BytesMut::new();
    let mut eof = false;
    let mut seq = 0u64;
    let mut total = 0u64;
    loop {
        while !eof && buf.len() < max {
            let mut filled = buf.len();
            buf.resize(filled + read_size, 0);
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        filled += n;
                        total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            progress(total);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let window = buf.len().min(max);
        let n = chunker.cut(&buf[..window]);
        if tx.send((seq, buf.split_to(n).freeze())).is_err() {
            return Ok(());
        }
        seq += 1;
    }
}
