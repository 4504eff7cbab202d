//! The result table and its JSON form.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

/// One line of the table: a cairn figure next to its anchor.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// Unit of `cairn` and `anchor`.
    pub unit: String,
    /// cairn's median.
    pub cairn: f64,
    /// cairn's min and max over the runs.
    pub cairn_range: (f64, f64),
    /// The anchor's name.
    pub anchor_name: String,
    /// The anchor's median (None when the figure has no anchor).
    pub anchor: Option<f64>,
    /// cairn / anchor.
    pub ratio: Option<f64>,
    /// Runs behind the medians.
    pub runs: usize,
}

impl Row {
    /// A row from cairn's (median, min, max) and an optional anchor value; the ratio is
    /// cairn / anchor.
    pub fn of(
        figure: String,
        unit: &str,
        v: (f64, f64, f64),
        anchor_name: &str,
        anchor: Option<f64>,
        runs: usize,
    ) -> Row {
        Row {
            figure,
            unit: unit.into(),
            cairn: v.0,
            cairn_range: (v.1, v.2),
            anchor_name: anchor_name.into(),
            anchor,
            ratio: anchor.map(|a| v.0 / a),
            runs,
        }
    }
}

/// Print the table to stdout.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>12} {:>22} {:>12} {:>7}  cairn min-max (runs)",
        "figure", "cairn", "anchor", "anchor val", "ratio"
    );
    for r in rows {
        let anchor = r.anchor.map_or("-".to_string(), |a| format!("{a:.2}"));
        let ratio = r.ratio.map_or("-".to_string(), |x| format!("{x:.2}x"));
        println!(
            "{:<44} {:>12} {:>22} {:>12} {:>7}  {:.2}-{:.2} ({})",
            format!("{} [{}]", r.figure, r.unit),
            format!("{:.2}", r.cairn),
            r.anchor_name,
            anchor,
            ratio,
            r.cairn_range.0,
            r.cairn_range.1,
            r.runs
        );
    }
}

/// Write rows and run facts as JSON.
pub fn write_json(path: &Path, rows: &[Row], quick: bool, runs: usize) -> Result<()> {
    let machine = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    let doc = serde_json::json!({
        "quick": quick,
        "runs": runs,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": machine,
        "rows": rows,
    });
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
