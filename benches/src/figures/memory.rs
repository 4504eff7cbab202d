//! Resident memory of a daemon after a heavy sequence of requests: 100,000 small files added
//! through the API in one `add -r`, three 64 MiB files, then 4,000 `cat`s of those small
//! files (1,000 files, one 8 MiB file and 400 `cat`s with `--quick`). The daemon must give
//! the memory of finished work back: the figure is its RSS once the workload is over and it
//! has idled for a few seconds, against the goal for a small home box.

use std::time::Duration;

use anyhow::Result;

use super::daemon::Daemon;
use super::Ctx;
use crate::measure;
use crate::report::Row;

/// The goal for the daemon's RSS after the workload, MiB.
const GOAL_MIB: f64 = 128.0;

/// Measure and return the rows (RSS after the workload, and its peak during it).
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let (files, large, cats): (usize, usize, usize) = if ctx.quick { (1_000, 1, 400) } else { (100_000, 3, 4_000) };
    let tree = ctx.work.join("memory-tree");
    if !tree.exists() {
        // 100 folders of 1,000 files each, a few dozen bytes per file.
        for d in 0..files.div_ceil(1000) {
            let dir = tree.join(format!("d{d:03}"));
            std::fs::create_dir_all(&dir)?;
            for f in 0..1000.min(files - d * 1000) {
                std::fs::write(dir.join(format!("f{f:04}.txt")), format!("small file {d}/{f}\n"))?;
            }
        }
    }
    let big_mib: u64 = if ctx.quick { 8 } else { 64 };
    let big = ctx.work.join("memory-big.bin");
    super::random_file(&big, big_mib << 20)?;
    let (mut after, mut peak) = (Vec::new(), Vec::new());
    for run in 0..ctx.runs {
        let d = Daemon::start(&ctx.cairn, &ctx.work.join(format!("memory-{run}")))?;
        let rows = d.cli(&["add", "-r", "--json", tree.to_str().expect("utf-8 path")])?;
        let cids: Vec<String> = rows
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["Name"].as_str().is_some_and(|n| n.ends_with(".txt")))
            .filter_map(|v| v["Hash"].as_str().map(String::from))
            .collect();
        for i in 0..large {
            // Distinct files: the same bytes under another chunker.
            d.cli(&["add", "-Q", "--chunker", &format!("size-{}", 262_144 + i * 4096), big.to_str().expect("path")])?;
        }
        for cid in cids.iter().cycle().take(cats) {
            d.cli(&["cat", cid])?;
        }
        std::thread::sleep(Duration::from_secs(5));
        let (_, hwm) = d.usage()?;
        after.push(d.rss_now()?);
        peak.push(hwm);
    }
    let what = format!("{files} files + {large}x{big_mib} MiB + {cats} cats");
    Ok(vec![
        Row::of(
            format!("daemon RSS after {what}"),
            "MiB",
            measure::stats(&after),
            &format!("goal < {GOAL_MIB}"),
            Some(GOAL_MIB),
            ctx.runs,
        ),
        Row::of(
            format!("daemon peak RSS during {what}"),
            "MiB",
            measure::stats(&peak),
            "(no goal: the peak of the work itself)",
            None,
            ctx.runs,
        ),
    ])
}
