//! UnixFS directories and symlinks: the builder that turns a list of named children into a
//! basic directory node, or into a HAMT ([`crate::hamt`]) when the basic node would be too big,
//! plus entry-name validation shared with readers.
//!
//! Wire details (boxo `ipld/unixfs/io/directory.go`, `ipld/unixfs/unixfs.go`; JS
//! `ipfs-unixfs-importer/src/dir-flat.ts`, `flat-to-shard.ts`):
//!
//! - **Basic directory**: dag-pb node whose `Data` is UnixFS `{Type: Directory}` = `08 01`, plus
//!   `mode`/`mtime` when given; one link per entry `{Hash, Name, Tsize}` with Tsize the child's
//!   cumulative size, links sorted by name bytes. The empty directory is
//!   `QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn` (v0).
//! - **Cumulative size** (the Tsize a parent link records) = block length + every link's Tsize.
//! - **Basic or HAMT**: with [`HamtSizing::LinksBytes`] the estimate is Σ(name bytes + CID bytes)
//!   (boxo `productionLinkSize`, JS `links-bytes`); with [`HamtSizing::BlockBytes`] it is the exact
//!   serialized basic-directory block (boxo `SizeEstimationBlock`, JS `block-bytes`). The
//!   directory becomes a HAMT when the estimate is **strictly greater** than `hamt_threshold`
//!   (IPIP-499; kubo before boxo#1088 used `>=`). A directory with no entries is always basic,
//!   since boxo and the JS importer only check the threshold when a child is added.
//! - **Symlink**: dag-pb node without links whose `Data` is UnixFS `{Type: Symlink, Data: target}`
//!   (boxo `SymlinkData`); no `filesize`. An empty target leaves `Data` out, as ipfs-unixfs does.
//!
//! Entry names are refused when a path could not round-trip through them: empty, `.`, `..`, or
//! containing `/` or NUL. Readers call [`validate_entry_name`] before using a name from the
//! network as a path component.

use std::collections::BTreeMap;

use bytes::Bytes;
use cid::Cid;

use crate::block::Block;
use crate::dagpb::{PbLink, PbNode};
use crate::hamt::{self, HamtError};
use crate::profile::{HamtSizing, ImportSettings};
use crate::unixfs::{Data, DataType, Metadata};
use crate::varint;

pub use crate::unixfs::DirEntry;

/// Why an entry or directory was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirError {
    /// A name that is not a single safe path component.
    #[error("invalid directory entry name {name:?}: {reason}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A second entry with a name already added.
    #[error("duplicate directory entry name {0:?}")]
    Duplicate(String),
    /// The HAMT could not be built (names colliding in every hash bit).
    #[error(transparent)]
    Hamt(#[from] HamtError),
}

/// Check that `name` is one path component: not empty, `.` or `..`, without `/` or NUL.
pub fn validate_entry_name(name: &str) -> Result<(), DirError> {
    let reason = match name {
        "" => "empty",
        "." | ".." => "relative path component",
        _ if name.contains('/') => "contains '/'",
        _ if name.contains('\0') => "contains NUL",
        _ => return Ok(()),
    };
    Err(DirError::InvalidName { name: name.to_string(), reason })
}

/// Bytes a length-delimited field of `len` bytes takes with its one-byte tag.
/// Bytes a length-delimited field of `len` bytes takes with its one-byte tag.
fn field_len(len: u64) -> u64 {
    1 + varint::len(len) as u64 + len
}

/// Collects a directory's entries, then writes it as a basic directory or a HAMT.
pub struct DirBuilder {
    settings: ImportSettings,
    meta: Metadata,
    /// Entries by name; `String` orders by UTF-8 bytes, the dag-pb link order.
    entries: BTreeMap<String, (Cid, u64)>,
    /// Σ(name bytes + CID bytes), the `LinksBytes` estimate.
    links_bytes: u64,
    /// Σ serialized `Links` fields, the `BlockBytes` estimate without `Data`.
    block_links_bytes: u64,
}

impl DirBuilder {
    /// An empty directory under `settings` (CID version, hash, HAMT threshold and fanout).
    pub fn new(settings: &ImportSettings) -> Self {
        DirBuilder {
            settings: settings.clone(),
            meta: Metadata::default(),
            entries: BTreeMap::new(),
            links_bytes: 0,
            block_links_bytes: 0,
        }
    }

    /// Record `mode`/`mtime` on the directory node (the root shard of a HAMT).
    pub fn with_metadata(mut self, meta: Metadata) -> Self {
        self.meta = meta;
        self
    }

    /// Add a child; refuses invalid names (see [`validate_entry_name`]) and duplicates.
    pub fn add(&mut self, entry: DirEntry) -> Result<(), DirError> {
        validate_entry_name(&entry.name)?;
        if self.entries.contains_key(&entry.name) {
            return Err(DirError::Duplicate(entry.name));
        }
        let name = entry.name.len() as u64;
        let cid = entry.cid.encoded_len() as u64;
        self.links_bytes += name + cid;
        let link = field_len(cid) + field_len(name) + 1 + varint::len(entry.tsize) as u64;
        self.block_links_bytes += field_len(link);
        self.entries.insert(entry.name, (entry.cid, entry.tsize));
        Ok(())
    }

    /// Number of entries added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn data(&self) -> Bytes {
        let mut data = Data::new(DataType::Directory);
        self.meta.apply(&mut data);
        data.to_bytes()
    }

    /// The size estimate compared with `hamt_threshold`.
    fn estimated_size(&self) -> u64 {
        match self.settings.hamt_sizing {
            HamtSizing::LinksBytes => self.links_bytes,
            HamtSizing::BlockBytes => field_len(self.data().len() as u64) + self.block_links_bytes,
        }
    }

    /// Whether [`DirBuilder::finish`] will write a HAMT.
    pub fn will_shard(&self) -> bool {
        !self.entries.is_empty() && self.estimated_size() > self.settings.hamt_threshold as u64
    }

    /// Write the directory: emits every new block (HAMT sub-shards before their parent, the root
    /// last) and returns the root CID and cumulative size. Fails only when a HAMT cannot hold
    /// the names (crafted murmur3 collisions, see [`hamt::MAX_DEPTH`]).
    pub fn finish(self, emit: &mut dyn FnMut(Block)) -> Result<(Cid, u64), DirError> {
        if self.will_shard() {
            let entries = self.entries.into_iter().map(|(name, (cid, tsize))| DirEntry { name, cid, tsize }).collect();
            return Ok(hamt::build(&self.settings, entries, self.meta, emit)?);
        }
        let data = self.data();
        let links: Vec<PbLink> = self
            .entries
            .into_iter()
            .map(|(name, (cid, tsize))| PbLink { hash: cid, name: Some(name), tsize: Some(tsize) })
            .collect();
        let node = PbNode { links, data: Some(data) };
        let bytes = node.encode();
        let size = node.links.iter().fold(bytes.len() as u64, |acc, l| acc.saturating_add(l.tsize.unwrap_or(0)));
        let cid = self.settings.node_cid(&bytes);
        emit(Block::new_unchecked(cid, Bytes::from(bytes)));
        Ok((cid, size))
    }
}

/// The block of a symlink to `target`; a parent links it with Tsize = the block's length.
pub fn symlink(settings: &ImportSettings, target: &str, meta: Metadata) -> Block {
    let mut data = Data::new(DataType::Symlink);
    data.data = (!target.is_empty()).then(|| Bytes::copy_from_slice(target.as_bytes()));
    meta.apply(&mut data);
    let bytes = PbNode { links: vec![], data: Some(data.to_bytes()) }.encode();
    Block::new_unchecked(settings.node_cid(&bytes), Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cids;
    use crate::file;
    use crate::hamt::tests::{build_dir, small_file};

    fn entry(settings: &ImportSettings, name: &str) -> DirEntry {
        small_file(settings, name, name.as_bytes()).0
    }

    #[test]
    fn empty_directory_vectors() {
        for (settings, expected) in [
            (ImportSettings::v0_2015(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"),
            (ImportSettings::v1_2025(), "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"),
        ] {
            let mut blocks = Vec::new();
            let (cid, size) = DirBuilder::new(&settings).finish(&mut |b| blocks.push(b)).unwrap();
            assert_eq!(cids::to_text(&cid), expected);
            assert_eq!(size, 4);
            assert_eq!(blocks.len(), 1);
            assert_eq!(blocks[0].data.as_ref(), [0x0a, 0x02, 0x08, 0x01]);
        }
        // Even a zero threshold leaves an empty directory basic.
        let mut s = ImportSettings::v1_2025();
        s.hamt_threshold = 0;
        assert!(!DirBuilder::new(&s).will_shard());
    }

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "/abs", "a\0b", "dir/"] {
            assert!(matches!(validate_entry_name(bad), Err(DirError::InvalidName { .. })), "{bad:?}");
        }
        for good in ["a", "...", ".hidden", "a b", "ünïcödé-日本語.txt", "a\\b", "..a"] {
            assert_eq!(validate_entry_name(good), Ok(()), "{good:?}");
        }
        let s = ImportSettings::v1_2025();
        let mut dir = DirBuilder::new(&s);
        assert!(dir.add(entry(&s, "..")).is_err());
        dir.add(entry(&s, "a")).unwrap();
        assert_eq!(dir.add(entry(&s, "a")), Err(DirError::Duplicate("a".into())));
        assert_eq!(dir.len(), 1);
    }

    #[test]
    fn basic_directory_links_sorted_by_name_bytes() {
        let s = ImportSettings::v1_2025();
        let mut dir = DirBuilder::new(&s);
        // Byte order, not char or case-folded order: "B" < "a" < "b" < "é".
        for name in ["é", "b", "a", "B"] {
            dir.add(entry(&s, name)).unwrap();
        }
        let mut blocks = Vec::new();
        let (cid, size) = dir.finish(&mut |b| blocks.push(b)).unwrap();
        let root = blocks.pop().unwrap();
        assert_eq!(root.cid, cid);
        let node = PbNode::decode(&root.data).unwrap();
        let names: Vec<_> = node.links.iter().map(|l| l.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["B", "a", "b", "é"]);
        assert_eq!(node.data.as_deref(), Some(&[0x08, 0x01][..]));
        // Tsize of each raw leaf is its length; the root adds its own block.
        assert_eq!(size, root.data.len() as u64 + 1 + 1 + 1 + 2);
    }

    /// Three raw files `a`, `b`, `c` holding `"a\n"` …: link bytes 3 × (1 + 36) = 111, basic
    /// block 139 bytes. CIDs from ipfs-unixfs-importer 17.1.1 with `shardSplitThresholdBytes`
    /// and `shardSplitStrategy` set as below.
    #[test]
    fn threshold_switches_above_not_at() {
        const BASIC: &str = "bafybeigcgcmmsofcl3g45jxylka5advciii7dcvjpz52r3tylyhg5gnfsa";
        const HAMT: &str = "bafybeigeryg2xb65mlhpji55td33n7qbnjsijrl3dokmh5gibxqvjjzhxa";
        for (sizing, threshold, expected, size) in [
            (HamtSizing::LinksBytes, 111, BASIC, 145),
            (HamtSizing::LinksBytes, 110, HAMT, 176),
            (HamtSizing::BlockBytes, 139, BASIC, 145),
            (HamtSizing::BlockBytes, 138, HAMT, 176),
        ] {
            let mut s = ImportSettings::v1_2025();
            s.hamt_sizing = sizing;
            s.hamt_threshold = threshold;
            let files: Vec<_> =
                ["a", "b", "c"].iter().map(|n| (n.to_string(), format!("{n}\n").into_bytes())).collect();
            let (cid, got_size, _) = build_dir(&s, &files, Metadata::default());
            assert_eq!((cids::to_text(&cid).as_str(), got_size), (expected, size), "{sizing:?} {threshold}");
        }
    }

    #[test]
    fn block_bytes_estimate_is_the_block_length() {
        let s = ImportSettings::v1_2025();
        let meta = Metadata { mode: Some(0o755), mtime: Some((-5, 7)) };
        let mut dir = DirBuilder::new(&s).with_metadata(meta);
        for i in 0..300 {
            let name = format!("entry-{i}-{}", "x".repeat(i % 200));
            let mut e = entry(&s, &name);
            e.tsize = (i as u64) << (i % 40);
            dir.add(e).unwrap();
        }
        let estimate = dir.estimated_size();
        let mut blocks = Vec::new();
        dir.finish(&mut |b| blocks.push(b)).unwrap();
        assert_eq!(estimate, blocks[0].data.len() as u64);
    }

    #[test]
    fn basic_directory_metadata_matches_helia() {
        // ipfs-unixfs-importer: directory `d` with mode 0o700, mtime {1700000000 s, 5 ns}.
        let files: Vec<_> = ["a", "b", "c"].iter().map(|n| (n.to_string(), format!("{n}\n").into_bytes())).collect();
        let meta = Metadata { mode: Some(0o700), mtime: Some((1_700_000_000, 5)) };
        let (cid, size, _) = build_dir(&ImportSettings::v1_2025(), &files, meta);
        assert_eq!(cids::to_text(&cid), "bafybeiezwxrxm7qxqrmk33v7vpzuuow53pmckesoklo42tv2tmo77norgy");
        assert_eq!(size, 161);
    }

    /// The `tree` and `tree-wrapped` vectors (make-tree.mjs), built with file.rs.
    #[test]
    fn tree_vectors() {
        let mut data_bin = vec![0u8; 300_000];
        for (i, b) in data_bin.iter_mut().enumerate() {
            *b = ((i * 31 + 7) % 251) as u8;
        }
        let mut cidv1_raw = ImportSettings::v0_2015();
        cidv1_raw.set_cid_version(cid::Version::V1, false);
        for (settings, tree, wrapped) in [
            (
                ImportSettings::v0_2015(),
                "QmUoEZvJktnVgQBVbBizn3iyzmpZB6v4LUbpwPRs4Y7nKQ",
                "QmXM9UMHDXrfZsijvKZNuUWjTSr4n54ynHrQwtju5Gtz2P",
            ),
            (
                cidv1_raw,
                "bafybeiaytzq23qyrpu54yfi3klfrmpuwpid4jh5kzhpnzsokhtp6slv7pe",
                "bafybeie2iejkzkdoitikkoh7plv3cruckmieyucgk3quofunbeebfvemji",
            ),
        ] {
            let s = &settings;
            let f = |name: &str, bytes: &[u8]| {
                let (_, root) = file::import_bytes(s, bytes);
                DirEntry { name: name.to_string(), cid: root.cid, tsize: root.tsize }
            };
            let dir = |entries: Vec<DirEntry>| {
                let mut d = DirBuilder::new(s);
                for e in entries {
                    d.add(e).unwrap();
                }
                d.finish(&mut |_| {}).unwrap()
            };
            let as_entry = |name: &str, (cid, tsize): (Cid, u64)| DirEntry { name: name.to_string(), cid, tsize };
            let deeper = dir(vec![f("leaf.txt", b"deep leaf\n")]);
            let sub = dir(vec![f("nested.txt", b"nested file\n"), as_entry("deeper", deeper)]);
            let root = dir(vec![
                f("hello.txt", b"hello world\n"),
                f("empty.txt", b""),
                f("data.bin", &data_bin),
                f("ünïcödé-日本語.txt", b"unicode name\n"),
                as_entry("sub", sub),
                as_entry("empty-dir", dir(vec![])),
            ]);
            assert_eq!(cids::to_text(&root.0), tree);
            let outer = dir(vec![as_entry("tree", root)]);
            assert_eq!(cids::to_text(&outer.0), wrapped);
        }
    }

    #[test]
    fn symlink_bytes() {
        let s = ImportSettings::v0_2015();
        let block = symlink(&s, "../a b", Metadata::default());
        // PBNode{Data: UnixFS{Type: Symlink (4), Data: "../a b"}}, no links, no filesize.
        assert_eq!(block.data.as_ref(), b"\x0a\x0a\x08\x04\x12\x06../a b".as_slice());
        assert_eq!(block.cid, s.node_cid(&block.data));
        let data = Data::from_bytes(&PbNode::decode(&block.data).unwrap().data.unwrap()).unwrap();
        assert_eq!(data.kind().unwrap(), DataType::Symlink);
        assert_eq!(data.filesize, None);
        let empty = symlink(&s, "", Metadata::default());
        assert_eq!(empty.data.as_ref(), [0x0a, 0x02, 0x08, 0x04]);
    }
}
