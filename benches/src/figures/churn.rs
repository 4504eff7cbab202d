//! The DHT under churn: a testnet of 500 in-process nodes (the memory transport), 1,000 keys
//! announced by ten of them, then 0 %, 20 % and 30 % of the others taken down at once and
//! every key looked up by ten survivors. Rows: the share of lookups that found the provider
//! (goal ≥ 99 % at 30 %), the median lookup time against the same figure with nothing down,
//! and the DHT requests a lookup sent until it found the provider.

use anyhow::Result;
use cairn_node::testnet::churn::{self, Plan, Report};

use super::Ctx;
use crate::measure;
use crate::report::Row;

/// The churn table.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let (nodes, keys, shares): (usize, usize, &[f64]) =
        if ctx.quick { (60, 100, &[0.0, 0.3]) } else { (500, 1_000, &[0.0, 0.2, 0.3]) };
    let mut reports: Vec<Report> = Vec::new();
    for (i, killed) in shares.iter().enumerate() {
        let report = churn::run(Plan { nodes, keys, killed: *killed, seed: i as u64 }).await?;
        eprintln!(
            "churn: {nodes} nodes, {} down, {}/{keys} keys found, announced in {:.1} s",
            report.killed, report.found, report.provide_secs
        );
        reports.push(report);
    }
    let calm = measure::stats(&reports[0].latency_ms).0;
    let mut rows = Vec::new();
    for r in &reports {
        let pct = (r.plan.killed * 100.0).round();
        let ok = r.success_rate() * 100.0;
        rows.push(Row::of(
            format!("DHT lookups found, {nodes} nodes, {pct} % down ({keys} keys)"),
            "%",
            (ok, ok, ok),
            "goal",
            Some(99.0),
            1,
        ));
        if !r.latency_ms.is_empty() {
            rows.push(Row::of(
                format!("DHT lookup time, {pct} % down"),
                "ms",
                measure::stats(&r.latency_ms),
                "nothing down",
                Some(calm),
                r.latency_ms.len(),
            ));
            let asked: Vec<f64> = r.asked.iter().map(|a| f64::from(*a)).collect();
            rows.push(Row::of(
                format!("DHT requests per lookup, {pct} % down"),
                "requests",
                measure::stats(&asked),
                "",
                None,
                asked.len(),
            ));
        }
    }
    Ok(rows)
}
