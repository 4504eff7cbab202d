//! `add` of a large random file, durable, against the disk ceiling (`dd … conv=fdatasync`)
//! and the hashing ceiling (`sha256sum`), all on the same file in the same run. Helia's and
//! kubo's importers are measured by the fetch figure's runs of their own benchmarks.

use std::process::Command;

use anyhow::Result;

use super::{random_file, Ctx};
use crate::measure::{self, Sample};
use crate::report::Row;

/// cairn's median add MB/s (and the size label) once measured, for the peers' importer rows
/// the fetch figure adds (it runs Helia's and kubo's benchmarks, which also time their adds).
pub static ADD_MBPS: std::sync::OnceLock<(String, (f64, f64, f64))> = std::sync::OnceLock::new();

/// Measure and return the rows.
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let size: u64 = if ctx.quick { 64 << 20 } else { 1 << 30 };
    let label = if ctx.quick { "64 MiB" } else { "1 GiB" };
    let file = ctx.work.join("add-input.bin");
    random_file(&file, size)?;
    let mut cairn = Vec::new();
    let mut dd = Vec::new();
    let mut sha = Vec::new();
    for run in 0..ctx.runs {
        // Interleave contenders so drift on a noisy machine hits all of them alike.
        let out = ctx.work.join("dd-out.bin");
        dd.push(measure::run(Command::new("dd").args([
            format!("if={}", file.display()),
            format!("of={}", out.display()),
            "bs=1M".into(),
            "conv=fdatasync".into(),
        ]))?);
        let _ = std::fs::remove_file(&out);
        sha.push(measure::run(Command::new("sha256sum").arg(&file))?);
        let repo = ctx.work.join(format!("add-repo-{run}"));
        measure::run(Command::new(&ctx.cairn).env("CAIRN_PATH", &repo).args(["init", "--profile", "local"]))?;
        cairn.push(measure::run(
            Command::new(&ctx.cairn).env("CAIRN_PATH", &repo).args(["add", "-Q", "--progress=false"]).arg(&file),
        )?);
        let _ = std::fs::remove_dir_all(&repo);
    }
    let mbps = |s: &Sample| size as f64 / 1e6 / s.wall_s;
    let gib = size as f64 / (1u64 << 30) as f64;
    let med = |v: &[Sample], f: &dyn Fn(&Sample) -> f64| measure::stats(&v.iter().map(f).collect::<Vec<_>>());
    let (c_mbps, c_min, c_max) = med(&cairn, &mbps);
    let _ = ADD_MBPS.set((label.to_string(), (c_mbps, c_min, c_max)));
    let (dd_mbps, _, _) = med(&dd, &mbps);
    let (sha_mbps, _, _) = med(&sha, &mbps);
    let (c_cpu, cpu_min, cpu_max) = med(&cairn, &|s| s.cpu_s / gib);
    let (sha_cpu, _, _) = med(&sha, &|s| s.cpu_s / gib);
    let (dd_cpu, _, _) = med(&dd, &|s| s.cpu_s / gib);
    let (c_rss, rss_min, rss_max) = med(&cairn, &|s| s.peak_rss_mib);
    let row = |figure: String, unit: &str, c: (f64, f64, f64), name: &str, anchor: Option<f64>| {
        Row::of(figure, unit, c, name, anchor, ctx.runs)
    };
    Ok(vec![
        row(format!("add {label} durable"), "MB/s", (c_mbps, c_min, c_max), "dd conv=fdatasync", Some(dd_mbps)),
        row(format!("add {label} durable"), "MB/s", (c_mbps, c_min, c_max), "sha256sum", Some(sha_mbps)),
        row(format!("add {label} CPU"), "CPU-s/GiB", (c_cpu, cpu_min, cpu_max), "sha256sum CPU-s/GiB", Some(sha_cpu)),
        row(format!("add {label} CPU"), "CPU-s/GiB", (c_cpu, cpu_min, cpu_max), "dd fdatasync CPU-s/GiB", Some(dd_cpu)),
        row(format!("add {label} peak RSS"), "MiB", (c_rss, rss_min, rss_max), "goal < 64", Some(64.0)),
    ])
}
