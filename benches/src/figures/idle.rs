//! Resident memory of an idle daemon (no peers, nothing to do) after it settled: 60 s, or 5 s
//! with `--quick`. Its anchor is the goal for a small home box.

use std::time::Duration;

use anyhow::Result;

use super::daemon::Daemon;
use super::Ctx;
use crate::measure;
use crate::report::Row;

/// The memory goal for an idle daemon, MiB.
const GOAL_MIB: f64 = 32.0;

/// Measure and return the row.
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let wait = Duration::from_secs(if ctx.quick { 5 } else { 60 });
    let mut rss = Vec::new();
    for run in 0..ctx.runs {
        let d = Daemon::start(&ctx.cairn, &ctx.work.join(format!("idle-{run}")))?;
        std::thread::sleep(wait);
        rss.push(d.rss_now()?);
    }
    let (m, lo, hi) = measure::stats(&rss);
    Ok(vec![Row {
        figure: format!("idle daemon RSS after {} s", wait.as_secs()),
        unit: "MiB".into(),
        cairn: m,
        cairn_range: (lo, hi),
        anchor_name: format!("goal < {GOAL_MIB}"),
        anchor: Some(GOAL_MIB),
        ratio: Some(m / GOAL_MIB),
        runs: ctx.runs,
    }])
}
