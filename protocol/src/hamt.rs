//! HAMT-sharded UnixFS directories: building the shard nodes of a large directory, and the two
//! reader steps (find one name, list every entry) that a caller drives by fetching blocks itself.
//!
//! The layout is the one boxo (`ipld/unixfs/hamt/hamt.go`, `util.go`) and the JS importer
//! (`ipfs-unixfs-importer/src/dir-sharded.ts` with the `hamt-sharding` package) both write, so the
//! same entries give byte-identical blocks:
//!
//! - **Hash**: murmur3-x64-128 with seed 0 over the UTF-8 name; only the first 64-bit half `h1`
//!   is used, as its 8 big-endian bytes (Go `murmur3.New64().Sum(nil)`; JS
//!   `murmur3128(name).slice(0, 8)`). Bits are consumed from byte 0, most significant bit first;
//!   depth `d` uses bits `[d·w, (d+1)·w)` where `w = log2(fanout)` (8 for fanout 256, so depth `d`
//!   is simply byte `d` of the hash). Past 64 bits boxo gives up ("sharded directory too deep")
//!   while hamt-sharding keeps going with `h1(name ‖ [1])`, `h1(name ‖ [2])`, …; we follow the
//!   latter, capped at [`MAX_DEPTH`] levels.
//! - **Canonical shape**: a slot holds the entry itself when exactly one name lands there, else a
//!   sub-shard built from the names that landed there, one level deeper. Insertion order does not
//!   matter.
//! - **Links**, in slot order: a value is named `%0*X` of the slot (uppercase hex, width = hex
//!   digits of `fanout - 1`: 2 for 256) followed by the entry name, with the entry's Tsize; a
//!   sub-shard is named by the prefix alone, with Tsize = its cumulative size. Fixed-width
//!   uppercase hex makes slot order equal to name-byte order, so dag-pb's sort rule holds.
//! - **UnixFS Data** (prost, tag order): `Type = HAMTShard (5)`, `Data` = the occupancy bitfield,
//!   `hashType = 0x22`, `fanout`, and on the root shard only the directory's `mode`/`mtime`;
//!   no `filesize`. The bitfield is go-bitfield's `Bytes()`: `fanout/8` bytes big-endian (slot `i`
//!   is bit `i % 8` of byte `len - 1 - i/8`) with leading zero bytes dropped (JS: the
//!   sparse-array bitfield reversed, trailing zeros trimmed). An empty shard has no `Data`.
//! - **Cumulative size** of a shard = its block length + the Tsize of every link.
//!
//! Readers are stricter than Go or JS so that one block has one meaning: `hashType` must be
//! murmur3, `fanout` a power of two in 8..=1024, the bitfield no longer than `fanout/8` bytes, and
//! the k-th link's hex prefix must be the k-th set bit (Go reads slots from the bitfield, JS from
//! the names; requiring both to agree means both readers see the same directory).

use std::collections::BTreeMap;

use bytes::Bytes;
use cid::Cid;

use crate::block::Block;
use crate::dagpb::{PbLink, PbNode};
use crate::profile::ImportSettings;
use crate::unixfs::DirEntry;
use crate::unixfs::{Data, DataType, Metadata};

/// Multicodec of murmur3-x64-64, the only hash UnixFS HAMTs use (`hashType`).
pub const HASH_MURMUR3: u64 = 0x22;

/// Deepest shard level built or followed. Random names need about `log_fanout(n)` levels; only
/// names crafted to collide in murmur3 go deeper, and a chain of sub-shards longer than this is
/// refused rather than followed.
pub const MAX_DEPTH: usize = 64;

/// Why a HAMT could not be built or a shard node was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HamtError {
    /// The node's UnixFS type is not HAMTShard.
    #[error("hamt: node is not a HAMT shard")]
    NotShard,
    /// A `hashType` other than murmur3 (0x22).
    #[error("hamt: unsupported hash type {0:?} (only murmur3-x64-64, 0x22)")]
    UnsupportedHash(Option<u64>),
    /// A fanout that is not a power of two in 8..=1024.
    #[error("hamt: invalid fanout {0:?} (must be a power of two from 8 to 1024)")]
    BadFanout(Option<u64>),
    /// The bitfield is too long or disagrees with the links.
    #[error("hamt: bad bitfield: {0}")]
    BadBitfield(String),
    /// A link without a name, or whose name does not start with its slot's hex prefix.
    #[error("hamt: bad link name {0:?}")]
    BadLinkName(Option<String>),
    /// Deeper than [`MAX_DEPTH`]: names that collide in every hash bit we use.
    #[error("hamt: sharded directory deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// One step of a name lookup in a sharded directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupStep {
    /// The entry, with the slot prefix stripped from its name.
    Found(PbLink),
    /// The name can only be in this sub-shard: fetch it and call [`lookup`] with `depth`.
    Descend {
        /// The sub-shard's CID.
        cid: Cid,
        /// The depth to pass for the sub-shard.
        depth: usize,
    },
    /// The directory has no entry of that name.
    NotFound,
}

/// One link of a shard node, as a listing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardItem {
    /// A directory entry; `link.name` is the entry name without the slot prefix.
    Entry {
        /// The entry name (not validated: check it with [`crate::dir::validate_entry_name`]
        /// before using it as a path).
        name: String,
        /// The link to the entry, named `name`.
        link: PbLink,
    },
    /// A sub-shard whose entries also belong to the directory.
    Shard(Cid),
}

/// log2 of a valid fanout.
fn fanout_bits(fanout: Option<u64>) -> Result<u32, HamtError> {
    match fanout {
        Some(f) if f.is_power_of_two() && (8..=1024).contains(&f) => Ok(f.trailing_zeros()),
        other => Err(HamtError::BadFanout(other)),
    }
}

/// Hex digits of a slot prefix: those of `fanout - 1` (boxo `maxpadlen`, JS `padLength`).
fn prefix_width(bits: u32) -> usize {
    (bits as usize).div_ceil(4)
}

fn slot_prefix(slot: usize, width: usize) -> String {
    format!("{slot:0width$X}")
}

/// The first 64-bit half of murmur3-x64-128 (seed 0).
fn murmur_h1(data: &[u8]) -> u64 {
    let mut reader = data;
    // The murmur3 crate returns (h2 << 64) | h1; reading a slice cannot fail.
    murmur3::murmur3_x64_128(&mut reader, 0).expect("reading from a slice") as u64
}

/// The bit stream a name hashes to, computed 64 bits at a time as levels need them.
#[derive(Default)]
struct HashBits {
    words: Vec<u64>,
}

impl HashBits {
    fn word(&mut self, name: &[u8], k: usize) -> u64 {
        while self.words.len() <= k {
            let n = self.words.len();
            let h = if n == 0 {
                murmur_h1(name)
            } else {
                let mut extended = Vec::with_capacity(name.len() + 1);
                extended.extend_from_slice(name);
                // n < 256: MAX_DEPTH levels of at most 10 bits need 10 words.
                extended.push(n as u8);
                murmur_h1(&extended)
            };
            self.words.push(h);
        }
        self.words[k]
    }

    /// The slot of `name` at `depth` for a fanout of `2^bits`.
    fn index(&mut self, name: &[u8], depth: usize, bits: u32) -> usize {
        let start = depth * bits as usize;
        let mut out = 0usize;
        for p in start..start + bits as usize {
            let bit = (self.word(name, p / 64) >> (63 - p % 64)) & 1;
            out = (out << 1) | bit as usize;
        }
        out
    }
}

/// The slot of `name` at `depth` in a HAMT of fanout `2^bits`.
fn slot_of(name: &str, depth: usize, bits: u32) -> usize {
    HashBits::default().index(name.as_bytes(), depth, bits)
}

/// go-bitfield `Bytes()` of the occupied slots: big-endian, leading zero bytes dropped.
fn bitfield_bytes(slots: impl Iterator<Item = usize>, fanout: usize) -> Option<Bytes> {
    let mut bf = vec![0u8; fanout / 8];
    let len = bf.len();
    for s in slots {
        bf[len - 1 - s / 8] |= 1 << (s % 8);
    }
    let first = bf.iter().position(|&b| b != 0)?;
    Some(Bytes::from(bf.split_off(first)))
}

/// An entry waiting to be placed, with its hash bits cached across levels.
struct Item {
    entry: DirEntry,
    hash: HashBits,
}

/// Build the shards of a directory holding `entries` (a later duplicate name replaces an earlier
/// one, as in boxo and hamt-sharding). Emits every shard block, sub-shards before their parent
/// and the root last; returns the root CID and its cumulative size. `meta` goes on the root only.
pub fn build(
    settings: &ImportSettings,
    entries: Vec<DirEntry>,
    meta: Metadata,
    emit: &mut dyn FnMut(Block),
) -> Result<(Cid, u64), HamtError> {
    let bits = fanout_bits(Some(settings.hamt_fanout as u64))?;
    let mut unique = BTreeMap::new();
    for e in entries {
        unique.insert(e.name.clone(), e);
    }
    let items = unique.into_values().map(|entry| Item { entry, hash: HashBits::default() }).collect();
    build_shard(settings, bits, items, 0, Some(meta), emit)
}

/// Build one shard at `depth` from the items that reached it (recursion bounded by MAX_DEPTH).
fn build_shard(
    settings: &ImportSettings,
    bits: u32,
    items: Vec<Item>,
    depth: usize,
    meta: Option<Metadata>,
    emit: &mut dyn FnMut(Block),
) -> Result<(Cid, u64), HamtError> {
    let width = prefix_width(bits);
    let mut slotted: Vec<(usize, Item)> =
        items.into_iter().map(|mut it| (it.hash.index(it.entry.name.as_bytes(), depth, bits), it)).collect();
    slotted.sort_by_key(|(slot, _)| *slot);

    let mut links = Vec::new();
    let mut slots = Vec::new();
    let mut iter = slotted.into_iter().peekable();
    while let Some((slot, first)) = iter.next() {
        let mut group = vec![first];
        while let Some((_, it)) = iter.next_if(|(s, _)| *s == slot) {
            group.push(it);
        }
        let prefix = slot_prefix(slot, width);
        let link = if group.len() == 1 {
            let e = group.pop().expect("one item").entry;
            PbLink { hash: e.cid, name: Some(prefix + &e.name), tsize: Some(e.tsize) }
        } else {
            if depth + 1 >= MAX_DEPTH {
                return Err(HamtError::TooDeep);
            }
            let (cid, size) = build_shard(settings, bits, group, depth + 1, None, emit)?;
            PbLink { hash: cid, name: Some(prefix), tsize: Some(size) }
        };
        slots.push(slot);
        links.push(link);
    }

    let mut data = Data::new(DataType::HamtShard);
    data.data = bitfield_bytes(slots.into_iter(), 1 << bits);
    data.hash_type = Some(HASH_MURMUR3);
    data.fanout = Some(1 << bits);
    if let Some(meta) = meta {
        meta.apply(&mut data);
    }
    let node = PbNode { links, data: Some(data.to_bytes()) };
    let bytes = node.encode();
    let size = node.links.iter().fold(bytes.len() as u64, |acc, l| acc.saturating_add(l.tsize.unwrap_or(0)));
    let cid = settings.node_cid(&bytes);
    emit(Block::new_unchecked(cid, Bytes::from(bytes)));
    Ok((cid, size))
}

/// A validated shard node: its hash width and the slot of each link.
struct Shape {
    bits: u32,
    width: usize,
    slots: Vec<usize>,
}

/// Check a shard node (see the module docs) and read its slots.
fn shape(node: &PbNode, data: &Data) -> Result<Shape, HamtError> {
    if !matches!(data.kind(), Ok(DataType::HamtShard)) {
        return Err(HamtError::NotShard);
    }
    if data.hash_type != Some(HASH_MURMUR3) {
        return Err(HamtError::UnsupportedHash(data.hash_type));
    }
    let bits = fanout_bits(data.fanout)?;
    let fanout = 1usize << bits;
    let bf = data.data.as_deref().unwrap_or_default();
    if bf.len() > fanout / 8 {
        return Err(HamtError::BadBitfield(format!("{} bytes for fanout {fanout}", bf.len())));
    }
    let slots: Vec<usize> = (0..bf.len() * 8).filter(|i| bf[bf.len() - 1 - i / 8] & (1 << (i % 8)) != 0).collect();
    if slots.len() != node.links.len() {
        return Err(HamtError::BadBitfield(format!("{} slots set but {} links", slots.len(), node.links.len())));
    }
    let width = prefix_width(bits);
    for (link, &slot) in node.links.iter().zip(&slots) {
        let prefix = link.name.as_deref().and_then(|n| n.get(..width));
        let parsed =
            prefix.filter(|p| p.bytes().all(|b| b.is_ascii_hexdigit())).and_then(|p| usize::from_str_radix(p, 16).ok());
        if parsed != Some(slot) {
            return Err(HamtError::BadLinkName(link.name.clone()));
        }
    }
    Ok(Shape { bits, width, slots })
}

/// One lookup step: where `name` is, given the shard node at `depth` (0 for the directory root).
/// The caller fetches and decodes the sub-shard on [`LookupStep::Descend`] and calls again.
pub fn lookup(node: &PbNode, data: &Data, name: &str, depth: usize) -> Result<LookupStep, HamtError> {
    if depth >= MAX_DEPTH {
        return Err(HamtError::TooDeep);
    }
    let shape = shape(node, data)?;
    let slot = slot_of(name, depth, shape.bits);
    let Ok(k) = shape.slots.binary_search(&slot) else {
        return Ok(LookupStep::NotFound);
    };
    let link = &node.links[k];
    let rest = &link.name.as_deref().unwrap_or_default()[shape.width..];
    Ok(if rest.is_empty() {
        LookupStep::Descend { cid: link.hash, depth: depth + 1 }
    } else if rest == name {
        LookupStep::Found(PbLink { name: Some(name.to_string()), ..link.clone() })
    } else {
        LookupStep::NotFound
    })
}

/// Every link of one shard node, in slot order: entries (prefix stripped) and sub-shards, whose
/// items the caller lists in turn to enumerate the whole directory.
pub fn items(node: &PbNode, data: &Data) -> Result<Vec<ShardItem>, HamtError> {
    let shape = shape(node, data)?;
    Ok(node
        .links
        .iter()
        .map(|link| {
            let rest = &link.name.as_deref().unwrap_or_default()[shape.width..];
            if rest.is_empty() {
                ShardItem::Shard(link.hash)
            } else {
                ShardItem::Entry {
                    name: rest.to_string(),
                    link: PbLink { name: Some(rest.to_string()), ..link.clone() },
                }
            }
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::cids;
    use crate::dir::DirBuilder;

    /// A raw-leaf or dag-pb-leaf file holding `content`, as a directory entry plus its block.
    pub(crate) fn small_file(settings: &ImportSettings, name: &str, content: &[u8]) -> (DirEntry, Block) {
        let block = if settings.raw_leaves {
            Block::new_unchecked(settings.raw_cid(content), Bytes::copy_from_slice(content))
        } else {
            let mut data = Data::new(DataType::File);
            data.data = (!content.is_empty()).then(|| Bytes::copy_from_slice(content));
            data.filesize = Some(content.len() as u64);
            let bytes = PbNode { links: vec![], data: Some(data.to_bytes()) }.encode();
            Block::new_unchecked(settings.node_cid(&bytes), Bytes::from(bytes))
        };
        let entry = DirEntry { name: name.to_string(), cid: block.cid, tsize: block.data.len() as u64 };
        (entry, block)
    }

    /// Build a directory of `files` and return its root and every block by CID.
    pub(crate) fn build_dir(
        settings: &ImportSettings,
        files: &[(String, Vec<u8>)],
        meta: Metadata,
    ) -> (Cid, u64, HashMap<Cid, Bytes>) {
        let mut blocks = HashMap::new();
        let mut dir = DirBuilder::new(settings).with_metadata(meta);
        for (name, content) in files {
            let (entry, block) = small_file(settings, name, content);
            blocks.insert(block.cid, block.data);
            dir.add(entry).unwrap();
        }
        let (cid, size) = dir
            .finish(&mut |b| {
                blocks.insert(b.cid, b.data);
            })
            .unwrap();
        (cid, size, blocks)
    }

    fn hamt_6000_files() -> Vec<(String, Vec<u8>)> {
        (0..6000).map(|i| (format!("file-{i:05}.txt"), format!("{i}\n").into_bytes())).collect()
    }

    fn cidv1_raw() -> ImportSettings {
        let mut s = ImportSettings::v0_2015();
        s.set_cid_version(cid::Version::V1, false);
        s
    }

    fn decode(blocks: &HashMap<Cid, Bytes>, cid: &Cid) -> (PbNode, Data) {
        let node = PbNode::decode(&blocks[cid]).unwrap();
        let data = Data::from_bytes(node.data.as_ref().unwrap()).unwrap();
        (node, data)
    }

    fn resolve(blocks: &HashMap<Cid, Bytes>, root: &Cid, name: &str) -> Option<PbLink> {
        let (mut cid, mut depth) = (*root, 0);
        loop {
            let (node, data) = decode(blocks, &cid);
            match lookup(&node, &data, name, depth).unwrap() {
                LookupStep::Found(link) => return Some(link),
                LookupStep::NotFound => return None,
                LookupStep::Descend { cid: c, depth: d } => (cid, depth) = (c, d),
            }
        }
    }

    fn list(blocks: &HashMap<Cid, Bytes>, root: &Cid) -> Vec<(String, PbLink)> {
        let mut out = Vec::new();
        let mut todo = vec![*root];
        while let Some(cid) = todo.pop() {
            let (node, data) = decode(blocks, &cid);
            for item in items(&node, &data).unwrap() {
                match item {
                    ShardItem::Entry { name, link } => out.push((name, link)),
                    ShardItem::Shard(c) => todo.push(c),
                }
            }
        }
        out
    }

    #[test]
    fn hash_bits_match_go_and_js() {
        // murmur3-x64-128("hello", 0) = cbd8a7b341bd9b02 5b1e906a48ae1d19 (h1 ‖ h2, as
        // @multiformats/murmur3 prints it); "file-00000.txt" = 19698b1c0fa73e79 ….
        assert_eq!(murmur_h1(b"hello"), 0xcbd8a7b341bd9b02);
        assert_eq!(murmur_h1(b""), 0);
        assert_eq!(slot_of("hello", 0, 8), 0xcb);
        assert_eq!(slot_of("hello", 1, 8), 0xd8);
        assert_eq!(slot_of("hello", 7, 8), 0x02);
        assert_eq!(slot_of("file-00000.txt", 0, 8), 0x19);
        // 4 bits per level: nibbles in order; 10 bits: 0xcbd8 >> 6.
        assert_eq!(slot_of("hello", 0, 4), 0xc);
        assert_eq!(slot_of("hello", 1, 4), 0xb);
        assert_eq!(slot_of("hello", 0, 10), 0xcbd8 >> 6);
        // Past 64 bits the stream continues with h1(name ‖ [1]) (hamt-sharding InfiniteHash).
        let next = murmur_h1(b"hello\x01");
        assert_eq!(slot_of("hello", 8, 8), (next >> 56) as usize);
        // A 10-bit level straddling the two words: 4 low bits of h1, 6 high bits of the next.
        let straddle = ((0xcbd8a7b341bd9b02u64 & 0xf) << 6) | (next >> 58);
        assert_eq!(slot_of("hello", 6, 10), straddle as usize);
        // hamt-sharding 3.0.8 `take()` sequences for "hello" (bits 10 and 8), printed by node.
        let js10 = [815, 394, 492, 833, 758, 432, 174, 234];
        let js8 = [0xcb, 0xd8, 0xa7, 0xb3, 0x41, 0xbd, 0x9b, 0x02, 0xb8, 0xea];
        assert!((0..8).all(|d| slot_of("hello", d, 10) == js10[d]));
        assert!((0..10).all(|d| slot_of("hello", d, 8) == js8[d]));
    }

    #[test]
    fn bitfield_is_big_endian_and_trimmed() {
        assert_eq!(bitfield_bytes([0usize].into_iter(), 256).unwrap().as_ref(), [1]);
        assert_eq!(bitfield_bytes([1usize, 9].into_iter(), 256).unwrap().as_ref(), [2, 2]);
        assert_eq!(bitfield_bytes([255usize].into_iter(), 256).unwrap().len(), 32);
        assert_eq!(bitfield_bytes(std::iter::empty(), 256), None);
    }

    #[test]
    fn hamt_6000_matches_kubo_and_helia() {
        let files = hamt_6000_files();
        for (settings, expected) in [
            (ImportSettings::v0_2015(), "QmVBV5RMW4AbY9yff8EYVG5AGcwLGQFAmsyktQCyJwabGZ"),
            (cidv1_raw(), "bafybeic33aabhtls2h5cpnf4ibvxtvt6jhfrgl3faeuimlxl6kffm5lquy"),
        ] {
            let (root, size, blocks) = build_dir(&settings, &files, Metadata::default());
            assert_eq!(cids::to_text(&root), expected);
            let total: u64 = blocks.values().map(|b| b.len() as u64).sum();
            assert_eq!(size, total, "cumulative size counts every block once");
        }
    }

    #[test]
    fn hamt_6000_lookup_and_list() {
        let files = hamt_6000_files();
        let (root, _, blocks) = build_dir(&cidv1_raw(), &files, Metadata::default());
        for (name, content) in &files {
            let link = resolve(&blocks, &root, name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(link.name.as_deref(), Some(name.as_str()));
            assert_eq!(blocks[&link.hash].as_ref(), content.as_slice());
            assert_eq!(link.tsize, Some(content.len() as u64));
        }
        for missing in ["file-06000.txt", "", "file-00001.tx", "FILE-00001.txt"] {
            assert_eq!(resolve(&blocks, &root, missing), None, "{missing}");
        }
        let listed = list(&blocks, &root);
        assert_eq!(listed.len(), files.len());
        let names: HashSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        let expected: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, expected);
        assert!(listed.iter().all(|(n, l)| l.name.as_deref() == Some(n)));
    }

    /// `n0` … `n99` holding `"{i}\n"`; the CIDs come from ipfs-unixfs-importer 17.1.1
    /// (`shardSplitThresholdBytes: 1`, `shardFanoutBits` 4 or 10, directory `mode: 0o700`,
    /// `mtime: {secs: 1700000000, nsecs: 5}` where noted).
    #[test]
    fn other_fanouts_and_root_metadata_match_helia() {
        let files: Vec<_> = (0..100).map(|i| (format!("n{i}"), format!("{i}\n").into_bytes())).collect();
        let meta = Metadata { mode: Some(0o700), mtime: Some((1_700_000_000, 5)) };
        let with = |fanout: usize, v0: bool| {
            let mut s = if v0 { ImportSettings::v0_2015() } else { ImportSettings::v1_2025() };
            s.hamt_threshold = 1;
            s.hamt_fanout = fanout;
            s
        };
        for (settings, meta, cid, size) in [
            (with(16, false), Metadata::default(), "bafybeigb55pewzrjan7oi4z5csb6wryur6qwpita2hifd3k4dwyifmr72y", 7331),
            (with(16, false), meta, "bafybeid3zagcmkedde76dnmvegajbl3nn3dhv2n4b5husaqua3ftbmh25m", 7347),
            (
                with(1024, false),
                Metadata::default(),
                "bafybeibhdw53b74pzhqlaeiu2nwozmpqejcog7hftu2jrpt3lzt2fwiy7y",
                6493,
            ),
            (with(256, true), Metadata::default(), "QmPMYcKcbJ69XZu219EGHzG44MZYqFsjFuSCxQ6NfURtEn", 7283),
        ] {
            let (root, got_size, blocks) = build_dir(&settings, &files, meta);
            assert_eq!(cids::to_text(&root), cid);
            assert_eq!(got_size, size);
            for (name, _) in &files {
                assert!(resolve(&blocks, &root, name).is_some(), "{name}");
            }
            assert_eq!(list(&blocks, &root).len(), files.len());
        }
    }

    fn shard_node() -> (PbNode, Data) {
        let settings = ImportSettings::v1_2025();
        let files: Vec<_> = ["a", "b", "c"].iter().map(|n| (n.to_string(), n.as_bytes().to_vec())).collect();
        let mut root = None;
        let entries = files.iter().map(|(n, c)| small_file(&settings, n, c).0).collect();
        build(&settings, entries, Metadata::default(), &mut |b| root = Some(b)).unwrap();
        let node = PbNode::decode(&root.unwrap().data).unwrap();
        let data = Data::from_bytes(node.data.as_ref().unwrap()).unwrap();
        (node, data)
    }

    #[test]
    fn shard_node_fields() {
        let (node, data) = shard_node();
        assert_eq!(data.kind().unwrap(), DataType::HamtShard);
        assert_eq!(data.hash_type, Some(0x22));
        assert_eq!(data.fanout, Some(256));
        assert_eq!(data.filesize, None);
        assert_eq!((data.mode, data.mtime), (None, None));
        let names: Vec<_> = node.links.iter().map(|l| l.name.clone().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(node.links.len(), 3);
        for link in &node.links {
            let name = link.name.as_deref().unwrap();
            let (prefix, entry) = name.split_at(2);
            assert_eq!(prefix, format!("{:02X}", slot_of(entry, 0, 8)));
        }
    }

    #[test]
    fn reader_refuses_inconsistent_shards() {
        let (node, data) = shard_node();
        assert!(items(&node, &data).is_ok());

        let mut d = data.clone();
        d.hash_type = Some(0x12);
        assert_eq!(lookup(&node, &d, "a", 0), Err(HamtError::UnsupportedHash(Some(0x12))));
        for bad in [None, Some(0), Some(4), Some(100), Some(2048)] {
            let mut d = data.clone();
            d.fanout = bad;
            assert_eq!(items(&node, &d), Err(HamtError::BadFanout(bad)));
        }
        let mut d = data.clone();
        d.r#type = DataType::Directory as i32;
        assert_eq!(items(&node, &d), Err(HamtError::NotShard));

        // Bitfield longer than fanout/8, or with a bit missing.
        let mut d = data.clone();
        d.data = Some(Bytes::from(vec![1u8; 33]));
        assert!(matches!(items(&node, &d), Err(HamtError::BadBitfield(_))));
        let mut d = data.clone();
        d.data = None;
        assert!(matches!(items(&node, &d), Err(HamtError::BadBitfield(_))));

        // A prefix that is not the link's slot, not hex, or a name too short for a prefix.
        for bad in ["ZZa", "+1a", "", "é"] {
            let mut n = node.clone();
            n.links[0].name = Some(bad.to_string());
            assert!(matches!(items(&n, &data), Err(HamtError::BadLinkName(_))), "{bad}");
        }
        let mut n = node.clone();
        let first = n.links[0].name.clone().unwrap();
        let other = format!("{:02X}{}", (slot_of(&first[2..], 0, 8) + 1) % 256, &first[2..]);
        n.links[0].name = Some(other);
        assert!(matches!(items(&n, &data), Err(HamtError::BadLinkName(_))));

        assert_eq!(lookup(&node, &data, "a", MAX_DEPTH), Err(HamtError::TooDeep));
    }

    #[test]
    fn lowercase_prefixes_are_read() {
        let (mut node, data) = shard_node();
        for link in &mut node.links {
            link.name = link.name.as_ref().map(|n| {
                let (p, rest) = n.split_at(2);
                p.to_ascii_lowercase() + rest
            });
        }
        let listed = items(&node, &data).unwrap();
        assert_eq!(listed.len(), 3);
        assert!(matches!(lookup(&node, &data, "b", 0), Ok(LookupStep::Found(_))));
    }

    #[test]
    fn later_duplicate_replaces_earlier() {
        let settings = ImportSettings::v1_2025();
        let (a1, _) = small_file(&settings, "a", b"1");
        let (a2, _) = small_file(&settings, "a", b"2");
        let mut root = None;
        build(&settings, vec![a1, a2.clone()], Metadata::default(), &mut |b| root = Some(b)).unwrap();
        let node = PbNode::decode(&root.unwrap().data).unwrap();
        assert_eq!(node.links.len(), 1);
        assert_eq!(node.links[0].hash, a2.cid);
    }
}
