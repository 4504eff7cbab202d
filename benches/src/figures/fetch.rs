//! Fetching a large file from one peer on loopback, against the raw libp2p stream ceiling of the
//! same transport measured in the same run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::measure::{self, Sample};
use crate::report::Row;

/// One ceiling run: (MB/s seen by the receiver, the pushing process's sample).
pub fn ceiling_once(ctx: &Ctx, bytes: u64) -> Result<(f64, Sample)> {
    let me = std::env::current_exe()?;
    let mut server = Command::new(&me).arg("ceiling-serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut lines = BufReader::new(server.stdout.take().context("server stdout")?).lines();
    let ready = lines.next().context("server said nothing")??;
    let Some(addr) = ready.strip_prefix("ready ") else { bail!("unexpected server line {ready:?}") };
    let sample = measure::run(Command::new(&me).args(["ceiling-push", addr, &bytes.to_string()]))?;
    let report = lines.next().context("server gave no result")??;
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_str(&report)?;
    let got = v["bytes"].as_u64().unwrap_or(0);
    if got != bytes {
        bail!("the ceiling server received {got} of {bytes} bytes");
    }
    let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
    let _ = ctx;
    Ok((bytes as f64 / 1e6 / secs, sample))
}

/// Measure and return the rows.
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let bytes: u64 = if ctx.quick { 64 << 20 } else { 1 << 30 };
    let label = if ctx.quick { "64 MiB" } else { "1 GiB" };
    let mut ceiling = Vec::new();
    for _ in 0..ctx.runs {
        ceiling.push(ceiling_once(ctx, bytes)?);
    }
    let (c, cmin, cmax) = measure::stats(&ceiling.iter().map(|c| c.0).collect::<Vec<_>>());
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let (cpu, cpumin, cpumax) = measure::stats(&ceiling.iter().map(|c| c.1.cpu_s / gib).collect::<Vec<_>>());
    Ok(vec![
        Row {
            figure: format!("libp2p stream push {label} (ceiling)"),
            unit: "MB/s".into(),
            cairn: c,
            cairn_range: (cmin, cmax),
            anchor_name: "-".into(),
            anchor: None,
            ratio: None,
            runs: ctx.runs,
        },
        Row {
            figure: format!("libp2p stream push {label} sender CPU"),
            unit: "CPU-s/GiB".into(),
            cairn: cpu,
            cairn_range: (cpumin, cpumax),
            anchor_name: "-".into(),
            anchor: None,
            ratio: None,
            runs: ctx.runs,
        },
    ])
}
