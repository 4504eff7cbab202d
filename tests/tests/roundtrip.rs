//! Round trips: bytes added come back identical through `cat` (whole and ranges) and `get`,
//! for the sizes around chunk and link boundaries, random sizes, and directory trees with
//! nesting, empty folders and unicode names.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cairn_node::exporter;
use cairn_node::importer::{self, AddOptions};
use cairn_node::repo::Repo;
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::profile::{ImportSettings, Layout};
use proptest::prelude::*;

const CHUNK: usize = 256;
const LINKS: usize = 4;

fn repo() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("repo");
    Repo::init(&p, "local").unwrap();
    let repo = Repo::open(&p).unwrap();
    (dir, repo)
}

fn small(layout: Layout, raw: bool) -> AddOptions {
    AddOptions {
        settings: ImportSettings {
            chunker: ChunkerSpec::Fixed(CHUNK),
            max_links: LINKS,
            layout,
            raw_leaves: raw,
            ..ImportSettings::v1_2025()
        },
        ..AddOptions::default()
    }
}

fn add_bytes(repo: &Repo, data: &[u8], opts: &AddOptions) -> String {
    let roots = importer::add_reader(repo.store(), data, "", opts, &mut |_| {}, &|_| {}).unwrap();
    roots[0].cid.to_string()
}

fn cat(repo: &Repo, path: &str, off: u64, len: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    exporter::cat(repo.store(), path, off, len, &mut out).unwrap();
    out
}

fn data_of(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(seed as u32).to_le_bytes()[1]).collect()
}

#[test]
fn boundary_sizes_round_trip_in_every_layout() {
    let (_d, repo) = repo();
    let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, LINKS * CHUNK, LINKS * CHUNK + 1, LINKS * LINKS * CHUNK * 2 + 3];
    for layout in [Layout::Balanced, Layout::Trickle] {
        for raw in [true, false] {
            for &n in &sizes {
                let data = data_of(n, n as u8);
                let cid = add_bytes(&repo, &data, &small(layout, raw));
                assert_eq!(cat(&repo, &cid, 0, None), data, "{layout:?} raw={raw} size={n}");
                let dest = repo.path().join(format!("out-{layout:?}-{raw}-{n}"));
                exporter::get(repo.store(), &cid, &dest, &|_| {}).unwrap();
                assert_eq!(fs::read(&dest).unwrap(), data);
            }
        }
    }
}

#[test]
fn real_profiles_round_trip_multi_level_files() {
    let (_d, repo) = repo();
    // 175 chunks of 256 KiB under the legacy profile: a two-level tree.
    let data = data_of(175 * 262144 + 17, 3);
    for opts in [AddOptions { settings: ImportSettings::v0_2015(), ..AddOptions::default() }, AddOptions::default()] {
        let cid = add_bytes(&repo, &data, &opts);
        assert_eq!(cat(&repo, &cid, 0, None), data);
        assert_eq!(cat(&repo, &cid, 262144 * 174 - 5, Some(10)), &data[262144 * 174 - 5..262144 * 174 + 5]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_and_ranges_round_trip(
        n in 0usize..20_000,
        seed in any::<u8>(),
        trickle in any::<bool>(),
        raw in any::<bool>(),
        off in 0u64..25_000,
        len in 0u64..5_000,
    ) {
        let (_d, repo) = repo();
        let layout = if trickle { Layout::Trickle } else { Layout::Balanced };
        let data = data_of(n, seed);
        let cid = add_bytes(&repo, &data, &small(layout, raw));
        prop_assert_eq!(&cat(&repo, &cid, 0, None), &data);
        let s = (off as usize).min(n);
        let e = (off as usize + len as usize).min(n);
        prop_assert_eq!(&cat(&repo, &cid, off, Some(len)), &data[s..e]);
    }
}

/// Read a tree into a map of relative path -> Some(bytes) for files, None for folders.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                stack.push(e.path());
            } else {
                out.insert(rel, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn directory_trees_round_trip_names_nesting_and_unicode() {
    let (d, repo) = repo();
    let src = d.path().join("src");
    cairn_tests::make_tree(&src).unwrap();
    fs::create_dir_all(src.join("sub").join("ñandú 🦤")).unwrap();
    fs::write(src.join("sub").join("ñandú 🦤").join("Ωmega.bin"), data_of(5000, 9)).unwrap();
    fs::write(src.join("spaces in name.txt"), b"x").unwrap();
    for opts in
        [AddOptions { settings: ImportSettings::v0_2015(), ..AddOptions::default() }, small(Layout::Balanced, true)]
    {
        let roots = importer::add_paths(repo.store(), std::slice::from_ref(&src), &opts, &mut |_| {}, &|_| {}).unwrap();
        let dest = d.path().join(format!("dest-{}", roots[0].cid));
        exporter::get(repo.store(), &roots[0].cid.to_string(), &dest, &|_| {}).unwrap();
        assert_eq!(snapshot(&src), snapshot(&dest));
        // Paths resolve through directories.
        let p = format!("{}/sub/ñandú 🦤/Ωmega.bin", roots[0].cid);
        assert_eq!(cat(&repo, &p, 0, None), data_of(5000, 9));
    }
}

#[test]
fn large_flat_directory_shards_and_round_trips() {
    let (d, repo) = repo();
    let src = d.path().join("hamt");
    cairn_tests::make_hamt_dir(&src).unwrap();
    let roots =
        importer::add_paths(repo.store(), std::slice::from_ref(&src), &AddOptions::default(), &mut |_| {}, &|_| {})
            .unwrap();
    let listing = exporter::ls(repo.store(), &roots[0].cid.to_string()).unwrap();
    assert_eq!(listing.len(), 6000);
    assert_eq!(cat(&repo, &format!("{}/file-04321.txt", roots[0].cid), 0, None), b"4321\n");
    let dest = d.path().join("out");
    exporter::get(repo.store(), &roots[0].cid.to_string(), &dest, &|_| {}).unwrap();
    assert_eq!(snapshot(&src), snapshot(&dest));
}
