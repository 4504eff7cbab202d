//! Adding files and directories from the file system (or any reader) into the store.
//!
//! A file flows through a small pipeline: one thread reads and cuts chunks, hashing workers
//! (one per core) turn chunks into leaves, and the calling thread orders the leaves, builds the
//! DAG and hands blocks to the store's writer thread. Every channel is bounded, so memory stays
//! at a few chunks per stage whatever the file size. Nothing is visible until the batch is
//! committed (one sync), and the pin is written only after that.

use std::collections::BTreeMap;
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

/// One added file or directory, reported as it completes (children before parents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// Path relative to what was added (the root has its own name, or "" for stdin).
    pub path: String,
    /// Its CID.
    pub cid: Cid,
    /// File bytes (files) or cumulative DAG size (directories).
    pub size: u64,
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
pub enum EntryKind {
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
pub fn entry_kind(path: &Path, top_level: bool) -> io::Result<EntryKind> {
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
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The store failed (disk full, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A name that cannot be stored in UnixFS.
    #[error("cannot add {path}: {reason}")]
    Name {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A directory-building problem.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// Pinning the result failed.
    #[error(transparent)]
    Pin(#[from] PinError),
}

/// Where blocks go: the store, or nowhere (`--only-hash`).
struct Sink {
    writer: Option<BatchWriter>,
}

impl Sink {
    fn put(&mut self, block: Block) -> Result<(), StoreError> {
        match &mut self.writer {
            Some(w) => w.write(block),
            None => Ok(()),
        }
    }
}

/// Add files or directory trees. `on_added` sees every entry as it completes and every
/// special file skipped; `progress` gets the running count of file bytes read. Returns the
/// roots (one per path, or the wrapping directory with `wrap`), each pinned when `opts.pin`.
pub fn add_paths(
    store: &Store,
    paths: &[PathBuf],
    opts: &AddOptions,
    on_added: &mut dyn FnMut(Event<'_>),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Added>, ImportError> {
    run(store, opts, on_added, |sink, on_added| {
        let mut done = 0u64;
        let mut roots = Vec::new();
        for path in paths {
            let name = match path.file_name() {
                Some(n) => n.to_str().ok_or_else(|| not_utf8(path))?.to_string(),
                None => String::new(),
            };
            if let EntryKind::Special(kind) = entry_kind(path, true).map_err(|source| read_error(path, source))? {
                return Err(ImportError::Name { path: path.clone(), reason: format!("it is {kind}") });
            }
            let entry = add_entry(sink, path, &name, true, opts, on_added, &mut done, progress)?;
            roots.push(entry.expect("top-level entries are never skipped"));
        }
        Ok(roots)
    })
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
    run(store, opts, on_added, |sink, on_added| {
        let root = import_file(reader, &opts.settings, Metadata::default(), sink, progress)
            .map_err(|e| with_path(e, Path::new("<stdin>")))?;
        let added = Added { path: name.to_string(), cid: root.cid, size: root.size };
        on_added(Event::Added(&added));
        Ok(vec![(added, root.tsize)])
    })
}

/// Shared frame: open the batch, build, wrap if asked, commit, pin.
fn run(
    store: &Store,
    opts: &AddOptions,
    on_added: &mut dyn FnMut(Event<'_>),
    build: impl FnOnce(&mut Sink, &mut dyn FnMut(Event<'_>)) -> Result<Vec<(Added, u64)>, ImportError>,
) -> Result<Vec<Added>, ImportError> {
    if !opts.only_hash {
        store.check_space()?;
    }
    let mut sink = Sink { writer: (!opts.only_hash).then(|| store.writer()) };
    let built = build(&mut sink, on_added)?;
    let roots = if opts.wrap {
        let mut d = DirBuilder::new(&opts.settings);
        for (root, tsize) in &built {
            d.add(DirEntry { name: root.path.clone(), cid: root.cid, tsize: *tsize })?;
        }
        let mut err = None;
        let (cid, size) = d.finish(&mut |b| {
            if let Err(e) = sink.put(b) {
                err.get_or_insert(e);
            }
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        let wrapper = Added { path: String::new(), cid, size };
        on_added(Event::Added(&wrapper));
        vec![wrapper]
    } else {
        built.into_iter().map(|(a, _)| a).collect()
    };
    if let Some(writer) = &mut sink.writer {
        // Blocks durable first; only then the pins that refer to them.
        writer.commit()?;
        if opts.pin {
            for root in &roots {
                pins::add(store, &root.cid, PinKind::Recursive, None)?;
            }
        }
    }
    Ok(roots)
}

fn not_utf8(path: &Path) -> ImportError {
    ImportError::Name { path: path.to_path_buf(), reason: "the name is not valid UTF-8".into() }
}

fn with_path(e: ImportError, path: &Path) -> ImportError {
    match e {
        ImportError::Read { source, .. } => ImportError::Read { path: path.to_path_buf(), source },
        other => other,
    }
}

fn metadata_of(md: &fs::Metadata, opts: &AddOptions) -> Metadata {
    Metadata {
        mode: opts.preserve_mode.then(|| md.mode() & 0o7777),
        mtime: opts.preserve_mtime.then(|| (md.mtime(), md.mtime_nsec() as u32)),
    }
}

fn read_error(path: &Path, source: io::Error) -> ImportError {
    ImportError::Read { path: path.to_path_buf(), source }
}

/// Add one entry (file, directory or symlink); returns it and its cumulative size, or `None`
/// for a special file inside a directory, which is skipped (and reported).
#[allow(clippy::too_many_arguments)]
fn add_entry(
    sink: &mut Sink,
    path: &Path,
    rel: &str,
    top_level: bool,
    opts: &AddOptions,
    on_added: &mut dyn FnMut(Event<'_>),
    done: &mut u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<(Added, u64)>, ImportError> {
    let read_err = |source| read_error(path, source);
    let kind = entry_kind(path, top_level).map_err(read_err)?;
    if let EntryKind::Special(kind) = kind {
        on_added(Event::Skipped { path, kind });
        return Ok(None);
    }
    let md = if kind == EntryKind::File { fs::metadata(path) } else { fs::symlink_metadata(path) }.map_err(read_err)?;
    let meta = metadata_of(&md, opts);
    let (cid, size, tsize) = if kind == EntryKind::Symlink {
        let target = fs::read_link(path).map_err(read_err)?;
        let target = target.to_str().ok_or_else(|| not_utf8(path))?;
        let block = dir::symlink(&opts.settings, target, meta);
        let (cid, n) = (block.cid, block.data.len() as u64);
        sink.put(block)?;
        (cid, target.len() as u64, n)
    } else if kind == EntryKind::Dir {
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| not_utf8(&entry.path()))?.to_string();
            if opts.hidden || !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        let mut d = DirBuilder::new(&opts.settings).with_metadata(meta);
        for name in names {
            let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let child = add_entry(sink, &path.join(&name), &child_rel, false, opts, on_added, done, progress)?;
            if let Some((child, tsize)) = child {
                d.add(DirEntry { name, cid: child.cid, tsize })?;
            }
        }
        let mut err = None;
        let (cid, tsize) = d.finish(&mut |b| {
            if let Err(e) = sink.put(b) {
                err.get_or_insert(e);
            }
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        (cid, tsize, tsize)
    } else {
        let file = fs::File::open(path).map_err(read_err)?;
        let base = *done;
        let root =
            import_file(file, &opts.settings, meta, sink, &|n| progress(base + n)).map_err(|e| with_path(e, path))?;
        *done += root.size;
        (root.cid, root.size, root.tsize)
    };
    let added = Added { path: rel.to_string(), cid, size };
    on_added(Event::Added(&added));
    Ok(Some((added, tsize)))
}

/// Chunk, hash and build one file from `reader`, sending blocks to `sink`.
fn import_file(
    reader: impl Read + Send,
    settings: &ImportSettings,
    meta: Metadata,
    sink: &mut Sink,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FileRoot, ImportError> {
    build_file(reader, settings, meta, progress, &mut |b| sink.put(b)).map_err(|e| match e {
        BuildError::Read(source) => ImportError::Read { path: PathBuf::new(), source },
        BuildError::Emit(e) => e.into(),
    })
}

/// Why [`build_file`] stopped.
#[derive(Debug)]
pub enum BuildError<E> {
    /// Reading the input failed.
    Read(io::Error),
    /// The block consumer failed.
    Emit(E),
}

/// The import pipeline for one file, over any reader: one thread reads and cuts chunks,
/// hashing workers (one per core) turn them into leaves, and the calling thread puts them back
/// in order and builds the DAG, handing every block to `emit`. The first error of `emit` stops
/// it. Every channel is bounded, so memory stays at a few chunks per stage.
pub fn build_file<E>(
    reader: impl Read + Send,
    settings: &ImportSettings,
    meta: Metadata,
    progress: &(dyn Fn(u64) + Sync),
    emit: &mut dyn FnMut(Block) -> Result<(), E>,
) -> Result<FileRoot, BuildError<E>> {
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
