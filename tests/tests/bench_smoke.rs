//! The benchmark runner's smoke run: `cairn-benches e2e --quick` on small sizes, as part of the
//! test command. It asserts only that every figure was produced with a finite value, never a
//! speed (speed goals live in the benchmark table, not in tests).

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_tests::{cairn_bin, run_with_deadline};

#[test]
fn every_benchmark_figure_is_produced() -> Result<()> {
    let runner = cairn_bin().with_file_name("cairn-benches");
    if !runner.exists() {
        bail!("{} is missing: build it with `cargo build --workspace --bins`", runner.display());
    }
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("quick.json");
    let mut cmd = Command::new(&runner);
    cmd.args(["e2e", "--quick", "--json"]).arg(&json).arg("--workdir").arg(dir.path());
    let out = run_with_deadline(cmd, Duration::from_secs(600))?;
    println!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("the quick benchmark run failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let rows = doc["rows"].as_array().context("rows")?;
    let mut families = vec![
        "add ",
        "fetch ",
        "libp2p stream push",
        "fetch 32 MiB from 4 seeders",
        "gateway 4 KiB",
        "gateway 1 MiB",
        "gateway stream",
        "TTFB 1 KiB",
        "provide ",
        "idle daemon RSS",
        "daemon RSS after",
    ];
    // The NAT figures run in network namespaces; without them the runner skips them.
    if cairn_tests::netns::unavailable().is_none() {
        families.extend(["idle home daemon RSS", "fetch 8 MiB home→home, no NAT", "fetch 8 MiB home→home, behind"]);
    }
    for family in families {
        let found: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["figure"].as_str().is_some_and(|f| f.starts_with(family))).collect();
        assert!(!found.is_empty(), "no {family:?} figure in {doc}");
        for r in found {
            let v = r["cairn"].as_f64().context("cairn value")?;
            assert!(v.is_finite() && v > 0.0, "figure {} has value {v}", r["figure"]);
        }
    }
    Ok(())
}
