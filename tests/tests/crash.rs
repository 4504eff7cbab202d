//! Crash safety: `kill -9` of `cairn add` of a 1 GiB file at a random moment leaves a repo that
//! verifies clean and keeps working; and a completed add survives a simulated power loss at any
//! moment, because blocks are synced before the pin that names them is flushed.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use cairn_node::importer::{self, AddOptions};
use cairn_node::store::sim::{Journal, SimFiles, SimMeta};
use cairn_node::store::{key_of, Store, Tree};
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::profile::ImportSettings;
use cairn_protocol::{cids, Cid};
use cairn_tests::TestRepo;
use rand::{Rng, RngCore, SeedableRng};

#[test]
fn kill_9_during_a_1gib_add_leaves_a_clean_usable_repo() -> Result<()> {
    let repo = TestRepo::new()?;
    let src = repo.scratch("big.bin");
    {
        let mut f = fs::File::create(&src)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            rng.fill_bytes(&mut buf);
            f.write_all(&buf)?;
        }
    }
    let mut rng = rand::thread_rng();
    for round in 0..3 {
        let delay = Duration::from_millis(rng.gen_range(100..1500));
        let mut child = repo.cmd(&["add", "-Q", src.to_str().unwrap()]).spawn()?;
        let start = Instant::now();
        while start.elapsed() < delay {
            if child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let out = repo.ok(&["repo", "verify", "--json"])?;
        assert!(out.contains("\"Ok\":true"), "round {round} (killed after {delay:?}): {out}");
        repo.ok(&["pin", "verify"])?;
        // Still usable: add and read back something new.
        let p = repo.scratch("small.txt");
        fs::write(&p, format!("after crash {round}"))?;
        let cid = repo.ok(&["add", "-Q", p.to_str().unwrap()])?.trim().to_string();
        assert_eq!(repo.ok(&["cat", &cid])?, format!("after crash {round}"));
    }
    // A complete add after the crashes works and round-trips.
    let cid = repo.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    let out = repo.scratch("back.bin");
    repo.ok(&["get", &cid, "-o", out.to_str().unwrap()])?;
    assert_eq!(cairn_tests::sha256_file(&out)?, cairn_tests::sha256_file(&src)?);
    Ok(())
}

/// Every block of the DAG under `root`, found in the durable state (files or small blocks).
fn dag_complete(durable: &cairn_node::store::sim::Durable, root: &Cid) -> bool {
    let empty = Default::default();
    let small = durable.meta.get(&Tree::Blocks).unwrap_or(&empty);
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        let key = key_of(&cid);
        let Some(bytes) = durable.files.get(&key).or_else(|| small.get(&key)) else {
            return false;
        };
        let bytes = Bytes::from(bytes.clone());
        if cids::verify(&cid, &bytes).is_err() {
            return false;
        }
        stack.extend(cairn_node::dag::links(&cid, &bytes).unwrap());
    }
    true
}

#[test]
fn a_pin_never_survives_a_power_loss_without_its_blocks() -> Result<()> {
    let journal = Journal::default();
    let store = Store::new(Box::new(SimFiles::new(journal.clone())), Box::new(SimMeta::new(journal.clone())));
    let opts = AddOptions {
        settings: ImportSettings { chunker: ChunkerSpec::Fixed(16 * 1024), max_links: 8, ..ImportSettings::v1_2025() },
        ..AddOptions::default()
    };
    let mut data = vec![0u8; 2_000_000];
    rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut data);
    let roots = importer::add_reader(&store, &data[..], "", &opts, &mut |_| {}, &|_| {})?;
    let root = roots[0].cid;
    let ops = journal.len();
    assert!(ops > 100, "expected many journaled operations, got {ops}");
    let mut pinned_points = 0;
    for n in 0..=ops {
        let durable = journal.durable_at(n);
        let pins = durable.meta.get(&Tree::Pins);
        if pins.is_some_and(|p| p.contains_key(&root.to_bytes())) {
            pinned_points += 1;
            assert!(dag_complete(&durable, &root), "power loss after op {n}/{ops}: pin durable, blocks not");
        }
    }
    // The add finished, so at the end the pin must be durable and complete.
    assert!(pinned_points >= 1, "the pin never became durable");
    assert!(dag_complete(&journal.durable_at(ops), &root));
    Ok(())
}
