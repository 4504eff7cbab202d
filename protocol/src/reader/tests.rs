//! The reader against real imports: every layout and range, lying DAGs, sharded directories.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::dagpb::PbLink;
use crate::dir::{DirBuilder, DirEntry};
use crate::file::import_bytes;
use crate::profile::{ImportSettings, Layout};
use crate::unixfs::DataType;
use crate::unixfs::Metadata;
use crate::Block;

type Blocks = HashMap<Cid, Bytes>;

fn fetcher(blocks: &Blocks) -> impl FnMut(&Cid) -> Result<Bytes, SourceError> + '_ {
    move |cid: &Cid| blocks.get(cid).cloned().ok_or_else(|| format!("missing {cid}").into())
}

fn small(layout: Layout, raw_leaves: bool) -> ImportSettings {
    let mut s = ImportSettings::v1_2025();
    s.chunker = crate::chunker::ChunkerSpec::parse("size-16").unwrap();
    s.max_links = 3;
    s.layout = layout;
    s.raw_leaves = raw_leaves;
    s
}

fn import(settings: &ImportSettings, data: &[u8]) -> (Blocks, Cid) {
    let (blocks, root) = import_bytes(settings, data);
    (blocks.into_iter().map(|b| (b.cid, b.data)).collect(), root.cid)
}

fn read_all(blocks: &Blocks, root: Cid, off: u64, len: Option<u64>) -> Result<Vec<u8>, ReadError> {
    let mut cur = FileCursor::new(root, off, len);
    let mut fetch = fetcher(blocks);
    let mut out = Vec::new();
    while let Some(p) = cur.next_piece(&mut fetch) {
        out.extend_from_slice(&p?);
    }
    Ok(out)
}

#[test]
fn ranges_read_only_the_blocks_they_need() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let settings = small(Layout::Balanced, true);
    let (blocks, root) = import(&settings, &data);
    let mut asked = Vec::new();
    let mut fetch = |cid: &Cid| {
        asked.push(*cid);
        blocks.get(cid).cloned().ok_or_else(|| SourceError::from("missing"))
    };
    let mut cur = FileCursor::new(root, 500, Some(20));
    let mut out = Vec::new();
    while let Some(p) = cur.next_piece(&mut fetch) {
        out.extend_from_slice(&p.unwrap());
    }
    assert_eq!(out, &data[500..520]);
    let leaves = asked.iter().filter(|c| c.codec() == RAW).count();
    assert_eq!(leaves, 2, "bytes 500..520 span two 16-byte chunks");
    assert!(asked.len() < 12, "a range read walks one path, asked {}", asked.len());
}

#[test]
fn the_cursor_asks_for_one_block_at_a_time_and_repeats_until_given() {
    let data: Vec<u8> = (0..100u8).collect();
    let (blocks, root) = import(&small(Layout::Balanced, true), &data);
    let mut cur = FileCursor::new(root, 0, None);
    assert_eq!(cur.next_step(), Read::Need(root));
    assert_eq!(cur.next_step(), Read::Need(root), "asking again repeats the need");
    assert_eq!(cur.file_size(), None, "unknown until the root is given");
    cur.give(&blocks[&root]).unwrap();
    assert_eq!(cur.file_size(), Some(100));
    let mut out = Vec::new();
    let mut needs = 1;
    loop {
        match cur.next_step() {
            Read::Need(cid) => {
                needs += 1;
                cur.give(&blocks[&cid]).unwrap();
            }
            Read::Piece(p) => out.extend_from_slice(&p),
            Read::End => break,
        }
    }
    assert_eq!((out, needs), (data, blocks.len()), "every block asked for once");

    // A source that fails stops the cursor.
    let mut cur = FileCursor::new(root, 0, None);
    assert!(matches!(cur.next_step(), Read::Need(_)));
    cur.fail();
    assert_eq!(cur.next_step(), Read::End);
    // Bytes that do not decode fail it too.
    let mut cur = FileCursor::new(root, 0, None);
    cur.next_step();
    assert!(cur.give(&Bytes::from_static(b"not dag-pb")).is_err());
    assert_eq!(cur.next_step(), Read::End);
}

proptest! {
    #[test]
    fn every_layout_reads_every_range(
        len in 0usize..600,
        off in 0u64..700,
        take in proptest::option::of(0u64..700),
        trickle in any::<bool>(),
        raw in any::<bool>(),
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let layout = if trickle { Layout::Trickle } else { Layout::Balanced };
        let (blocks, root) = import(&small(layout, raw), &data);
        let got = read_all(&blocks, root, off, take).unwrap();
        let from = (off as usize).min(len);
        let to = take.map_or(len, |t| (off as usize).saturating_add(t as usize).min(len)).max(from);
        prop_assert_eq!(got, &data[from..to]);
    }
}

#[test]
fn a_lying_blocksize_is_refused() {
    let data = vec![7u8; 100];
    let settings = small(Layout::Balanced, true);
    let (mut blocks, root) = import(&settings, &data);
    // Replace one leaf with a longer block under a new CID and relink the root to it.
    let root_bytes = blocks[&root].clone();
    let (mut node, mut d) = decode_pb(&root, &root_bytes).unwrap();
    let long = Bytes::from(vec![1u8; 40]);
    let long_cid = settings.raw_cid(&long);
    blocks.insert(long_cid, long);
    node.links[0].hash = long_cid;
    d.blocksizes[0] = 16; // still claims 16 bytes
    node.data = Some(d.to_bytes());
    let bytes = Bytes::from(node.encode());
    let bad_root = settings.node_cid(&bytes);
    blocks.insert(bad_root, bytes);
    let err = read_all(&blocks, bad_root, 0, None).unwrap_err();
    assert!(matches!(err.kind(), ReadErrorKind::Malformed { .. }), "{err}");
}

fn dir_of(settings: &ImportSettings, files: &[(&str, &[u8])]) -> (Blocks, Cid) {
    let mut blocks = Blocks::new();
    let mut dir = DirBuilder::new(settings);
    for (name, content) in files {
        let (bs, root) = import_bytes(settings, content);
        for b in bs {
            blocks.insert(b.cid, b.data);
        }
        dir.add(DirEntry { name: name.to_string(), cid: root.cid, tsize: root.tsize }).unwrap();
    }
    let (root, _) = dir
        .finish(&mut |b: Block| {
            blocks.insert(b.cid, b.data);
        })
        .unwrap();
    (blocks, root)
}

#[test]
fn paths_resolve_through_plain_and_sharded_directories() {
    let names: Vec<String> = (0..6000).map(|i| format!("file-{i:05}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    let settings = ImportSettings::v1_2025();
    let (blocks, root) = dir_of(&settings, &files);
    let mut fetch = fetcher(&blocks);
    let node = load(&root, &mut fetch).unwrap();
    assert!(matches!(node, Node::Shard { .. }), "6000 entries shard");
    let cid = resolve(root, &["file-01234.txt".into()], &mut fetch).unwrap();
    assert_eq!(read_all(&blocks, cid, 0, None).unwrap(), b"file-01234.txt");
    let listed = list(&root, &node, &mut fetch).unwrap();
    assert_eq!(listed.len(), 6000);
    let err = resolve(root, &["nope".into()], &mut fetch).unwrap_err();
    assert!(matches!(err.kind(), ReadErrorKind::NotFound { .. }));
    let err = resolve(root, &["file-00001.txt".into(), "x".into()], &mut fetch).unwrap_err();
    assert!(matches!(err.kind(), ReadErrorKind::NotDirectory { kind: Kind::File, .. }), "{err}");
}

#[test]
fn unsafe_names_fail_a_listing() {
    let settings = ImportSettings::v1_2025();
    let (mut blocks, _) = dir_of(&settings, &[("a", b"x")]);
    let leaf = settings.raw_cid(b"x");
    for bad in ["..", "a/b", "", "/etc"] {
        let node = PbNode {
            links: vec![PbLink { hash: leaf, name: Some(bad.into()), tsize: Some(1) }],
            data: Some(Data::new(DataType::Directory).to_bytes()),
        };
        let bytes = Bytes::from(node.encode());
        let cid = settings.node_cid(&bytes);
        blocks.insert(cid, bytes);
        let mut fetch = fetcher(&blocks);
        let n = load(&cid, &mut fetch).unwrap();
        let err = list(&cid, &n, &mut fetch).unwrap_err();
        assert!(matches!(err.kind(), ReadErrorKind::UnsafeName { .. }), "{bad:?}: {err}");
    }
}

#[test]
fn path_segments_are_checked() {
    assert_eq!(split_path("a//b/").unwrap(), vec!["a", "b"]);
    assert!(split_path("a/../b").is_err());
    assert!(split_path("./a").is_err());
    assert!(split_path("").unwrap().is_empty());
}

#[test]
fn symlinks_and_directories_are_not_files() {
    let settings = ImportSettings::v1_2025();
    let link = crate::dir::symlink(&settings, "target", Metadata::default());
    let blocks: Blocks = [(link.cid, link.data.clone())].into_iter().collect();
    let mut fetch = fetcher(&blocks);
    assert_eq!(load(&link.cid, &mut fetch).unwrap(), Node::Symlink { target: "target".into() });
    let err = read_all(&blocks, link.cid, 0, None).unwrap_err();
    assert!(matches!(err.kind(), ReadErrorKind::NotFile { kind: Kind::Symlink, .. }));
}
