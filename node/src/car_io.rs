//! `dag import` / `dag export`: CAR files into and out of the block store.
//!
//! Import reads the CAR in [`READ_CHUNK`] pieces through the sans-IO [`CarDecoder`], so
//! memory stays at one piece plus one section whatever the file size. Every block is hashed
//! against its CID before it is written; a mismatch stops the import with the CID and the
//! byte offset. Blocks go through one [`BatchWriter`] committed once at the end, and only
//! then are roots pinned, each only if its whole DAG is in the store: a failed import pins
//! nothing, and a pin never names blocks that are not durable.
//!
//! Export writes a CARv1 with one root and every block of its DAG once, depth-first
//! pre-order (parent before children, children in link order), the order kubo and Helia use.
//! Runs on the caller's thread; both directions are blocking.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use cairn_protocol::car::{self, CarDecoder, CarError, Header, Item};
use cairn_protocol::Cid;

use crate::dag::{self, DagError};
use crate::pins::{self, PinError, PinKind};
use crate::store::{BatchWriter, Store, StoreError};

/// Bytes read from the CAR at a time (and the most the decoder buffers beyond one section).
pub const READ_CHUNK: usize = 1 << 20;

/// Errors of CAR import and export.
#[derive(Debug, thiserror::Error)]
pub enum CarIoError {
    /// Reading the input failed.
    #[error("reading the CAR at byte {offset}")]
    Read {
        /// Bytes read successfully before the failure.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The CAR is malformed, truncated, or holds a block that does not match its CID.
    #[error(transparent)]
    Car(#[from] CarError),
    /// The store failed (disk full, I/O, a corrupt stored block). Boxed, as are the other
    /// large errors, to keep `Result`s small.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// Export needs a block the store does not hold.
    #[error("block {0} is not in the local store; the export needs the whole DAG, so fetch or import it first")]
    Missing(Box<Cid>),
    /// A block of the exported DAG cannot be parsed for links.
    #[error(transparent)]
    Dag(Box<DagError>),
    /// Pinning a root failed for a reason other than missing blocks.
    #[error("pinning root {cid}")]
    Pin {
        /// The root.
        cid: Cid,
        /// Why.
        #[source]
        source: Box<PinError>,
    },
    /// Writing the CAR failed (including a closed pipe).
    #[error("writing the CAR")]
    Write(#[source] io::Error),
}

impl From<StoreError> for CarIoError {
    fn from(e: StoreError) -> Self {
        CarIoError::Store(Box::new(e))
    }
}

impl From<DagError> for CarIoError {
    fn from(e: DagError) -> Self {
        CarIoError::Dag(Box::new(e))
    }
}

/// How to import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Pin each root of the header recursively (when its DAG is complete).
    pub pin_roots: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { pin_roots: true }
    }
}

/// A root that was not pinned because part of its DAG is missing from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteRoot {
    /// The root.
    pub root: Cid,
    /// The first missing block found under it.
    pub missing: Cid,
}

/// What one import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The CAR's header (roots, CARv2 fields).
    pub header: Header,
    /// Sections read (duplicates included), all verified and written.
    pub blocks: u64,
    /// Block bytes in those sections.
    pub bytes: u64,
    /// Roots pinned (empty unless asked).
    pub pinned: Vec<Cid>,
    /// Roots not pinned because their DAG is incomplete.
    pub incomplete: Vec<IncompleteRoot>,
}

/// What one export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// The root named in the header.
    pub root: Cid,
    /// Blocks written.
    pub blocks: u64,
    /// Total CAR bytes written (header and sections).
    pub bytes: u64,
}

/// Import one CAR (v1 or v2) from `reader`: verify and store every block, commit, then pin
/// the roots if `opts.pin_roots`. `progress` gets the bytes read so far.
pub fn import(
    store: &Store,
    reader: impl Read,
    opts: &ImportOptions,
    progress: &dyn Fn(u64),
) -> Result<ImportReport, CarIoError> {
    // The writer protects its blocks from GC until dropped, i.e. until the pins are written.
    let mut writer = store.writer();
    let mut report = read_blocks(&mut writer, reader, progress)?;
    writer.commit()?;
    if opts.pin_roots {
        let (pinned, incomplete) = pin_roots(store, &report.header.roots)?;
        report.pinned = pinned;
        report.incomplete = incomplete;
    }
    Ok(report)
}

/// Pin each root recursively if its DAG is complete in the store. Returns the roots pinned
/// and those left unpinned because a block is missing; other failures are errors.
pub fn pin_roots(store: &Store, roots: &[Cid]) -> Result<(Vec<Cid>, Vec<IncompleteRoot>), CarIoError> {
    let mut pinned = Vec::new();
    let mut incomplete = Vec::new();
    let mut done = HashSet::new();
    for root in roots {
        if !done.insert(*root) {
            continue;
        }
        match pins::add(store, root, PinKind::Recursive, None) {
            Ok(()) => pinned.push(*root),
            Err(PinError::Dag(DagError::Missing(missing))) => incomplete.push(IncompleteRoot { root: *root, missing }),
            Err(source) => return Err(CarIoError::Pin { cid: *root, source: Box::new(source) }),
        }
    }
    Ok((pinned, incomplete))
}

/// Stream sections from `reader` into `writer`, verifying each; stops at the end of input
/// (or of a CARv2 payload) and checks that no section was cut short.
fn read_blocks(
    writer: &mut BatchWriter,
    mut reader: impl Read,
    progress: &dyn Fn(u64),
) -> Result<ImportReport, CarIoError> {
    let mut dec = CarDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut header = None;
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while !dec.is_done() {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(CarIoError::Read { offset: dec.pushed(), source }),
        };
        dec.push(&buf[..n]);
        while let Some(item) = dec.next()? {
            match item {
                Item::Header(h) => header = Some(h),
                Item::Section(section) => {
                    blocks += 1;
                    bytes += section.data.len() as u64;
                    writer.write(section.into_verified_block()?)?;
                }
            }
        }
        progress(dec.pushed());
    }
    dec.finish()?;
    // `finish` succeeds only once the header has been read.
    let header = header.ok_or(CarError::Truncated { offset: 0, end: dec.pushed(), what: "CAR header".into() })?;
    Ok(ImportReport { header, blocks, bytes, pinned: Vec::new(), incomplete: Vec::new() })
}

/// Write a CARv1 of the DAG under `root` to `out`: the header naming `root`, then every block
/// once in depth-first pre-order. A missing block is an error naming it; `out` is flushed.
pub fn export(store: &Store, root: &Cid, mut out: impl Write) -> Result<ExportReport, CarIoError> {
    let mut head = Vec::new();
    car::encode_header(std::slice::from_ref(root), &mut head);
    out.write_all(&head).map_err(CarIoError::Write)?;
    let mut report = ExportReport { root: *root, blocks: 0, bytes: head.len() as u64 };
    let mut seen: HashSet<Cid> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = store.get(&cid)?.ok_or_else(|| CarIoError::Missing(Box::new(cid)))?;
        head.clear();
        car::encode_section_head(&cid, data.len(), &mut head);
        out.write_all(&head).and_then(|()| out.write_all(&data)).map_err(CarIoError::Write)?;
        report.blocks += 1;
        report.bytes += (head.len() + data.len()) as u64;
        // Reversed onto the stack so the first link is written next.
        stack.extend(dag::links(&cid, &data)?.into_iter().rev());
    }
    out.flush().map_err(CarIoError::Write)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DiskFiles, SledMeta};
    use bytes::Bytes;
    use cairn_protocol::car::read_all;
    use cairn_protocol::cids::{cid_for, HashFn, DAG_PB, RAW};
    use cairn_protocol::dagpb::{PbLink, PbNode};
    use cairn_protocol::Block;

    fn open(dir: &std::path::Path) -> Store {
        Store::new(
            Box::new(DiskFiles::open(&dir.join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.join("meta"), 1 << 20).unwrap()),
        )
    }

    fn raw(data: &[u8]) -> Block {
        Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, data), Bytes::copy_from_slice(data))
    }

    fn node(children: &[&Block]) -> Block {
        let links = children
            .iter()
            .map(|c| PbLink { hash: c.cid, name: Some(String::new()), tsize: Some(c.data.len() as u64) })
            .collect();
        let data = Bytes::from(PbNode { links, data: None }.encode());
        Block::new_unchecked(cid_for(cid::Version::V1, DAG_PB, HashFn::Sha2_256, &data), data)
    }

    /// root -> [a, mid -> [b, a], b]: a shared child and a repeated link.
    fn dag() -> (Block, Vec<Block>) {
        let (a, b) = (raw(b"a"), raw(&[7u8; 20_000]));
        let mid = node(&[&b, &a]);
        let root = node(&[&a, &mid, &b]);
        (root.clone(), vec![root, a, mid, b])
    }

    #[test]
    fn export_is_preorder_each_block_once_and_imports_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("one"));
        let (root, blocks) = dag();
        store.put_many(blocks.clone()).unwrap();
        let mut car_bytes = Vec::new();
        let report = export(&store, &root.cid, &mut car_bytes).unwrap();
        assert_eq!((report.blocks, report.bytes), (4, car_bytes.len() as u64));
        let (header, sections) = read_all(&car_bytes).unwrap();
        assert_eq!(header.roots, vec![root.cid]);
        let order: Vec<Cid> = sections.iter().map(|s| s.cid).collect();
        assert_eq!(order, blocks.iter().map(|b| b.cid).collect::<Vec<_>>());

        let other = open(&dir.path().join("two"));
        let r = import(&other, &car_bytes[..], &ImportOptions::default(), &|_| {}).unwrap();
        assert_eq!((r.blocks, r.pinned.clone(), r.incomplete.len()), (4, vec![root.cid], 0));
        assert_eq!(pins::get(&other, &root.cid).unwrap().unwrap().kind, PinKind::Recursive);
        for b in &blocks {
            assert_eq!(other.get(&b.cid).unwrap().unwrap(), b.data);
        }
    }

    #[test]
    fn export_of_incomplete_dag_names_the_missing_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (root, blocks) = dag();
        store.put_many(blocks.iter().filter(|b| b.cid.codec() == DAG_PB).cloned()).unwrap();
        let err = export(&store, &root.cid, Vec::new()).unwrap_err();
        assert!(matches!(&err, CarIoError::Missing(c) if **c == blocks[1].cid), "{err}");
    }

    #[test]
    fn bad_block_or_truncation_imports_nothing_pinned_and_incomplete_roots_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (root, blocks) = dag();
        let mut car_bytes = Vec::new();
        car::encode_header(&[root.cid], &mut car_bytes);
        for b in &blocks {
            car::encode_section(&b.cid, &b.data, &mut car_bytes);
        }
        let mut corrupt = car_bytes.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let err = import(&store, &corrupt[..], &ImportOptions::default(), &|_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&blocks[3].cid.to_string()) && msg.contains("at byte"), "{msg}");
        assert!(pins::get(&store, &root.cid).unwrap().is_none());

        let cut = &car_bytes[..car_bytes.len() - 10];
        let err = import(&store, cut, &ImportOptions::default(), &|_| {}).unwrap_err();
        assert!(matches!(err, CarIoError::Car(CarError::Truncated { .. })), "{err}");
        assert!(pins::get(&store, &root.cid).unwrap().is_none());

        // Only the root block: imported, but the root is reported incomplete, not pinned.
        let mut partial = Vec::new();
        car::encode_header(&[root.cid], &mut partial);
        car::encode_section(&root.cid, &root.data, &mut partial);
        let other = open(&dir.path().join("other"));
        let r = import(&other, &partial[..], &ImportOptions::default(), &|_| {}).unwrap();
        assert_eq!(r.incomplete, vec![IncompleteRoot { root: root.cid, missing: blocks[1].cid }]);
        assert!(r.pinned.is_empty() && pins::get(&other, &root.cid).unwrap().is_none());
        assert!(other.has(&root.cid).unwrap());
    }
}
