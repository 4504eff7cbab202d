//! Real clients on cairn's gateway, inside a fresh network namespace holding only loopback
//! (Chromium and Helia would otherwise reach for the network on their own):
//! - headless Chromium opens a site that node B pinned from node A, loads every image, seeks
//!   a 20 MB audio file through a Range request, and still loads the site with A stopped
//!   (`tests/gateway/browser.mjs`);
//! - `@helia/verified-fetch`, with cairn's gateway as its only source, fetches and verifies a
//!   file and a directory entry (`tests/gateway/verified_fetch.mjs`);
//! - headless Chromium drives the operator's dashboard on the API port: peer count, a
//!   bandwidth chart with a transfer in it, a file added through the page and pinned, a
//!   screenshot, and no change of state without the API token (`tests/gateway/webui.mjs`).

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use cairn_tests::{cairn_bin, js_clients_dir, run_with_deadline};

/// Run `script` from the setup directory in a loopback-only namespace; its report.
fn run_in_netns(script: &str, extra: &[&str]) -> Result<String> {
    let dir = js_clients_dir()?;
    let work = tempfile::tempdir()?;
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "netns", "node"])
        .arg(format!("{dir}/{script}"))
        .arg("--cairn")
        .arg(cairn_bin())
        .arg("--work")
        .arg(work.path())
        .args(extra)
        .current_dir(&dir);
    let out = run_with_deadline(cmd, Duration::from_secs(600))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{stdout}");
    if !out.status.success() {
        bail!("{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(stdout)
}

#[test]
fn chromium_loads_a_pinned_site_and_seeks_media_through_the_gateway() -> Result<()> {
    let report = run_in_netns("browser.mjs", &[])?;
    assert!(report.contains("7 passed, 0 failed"), "{report}");
    Ok(())
}

#[test]
fn helia_verified_fetch_verifies_content_from_the_gateway() -> Result<()> {
    let report = run_in_netns("verified_fetch.mjs", &[])?;
    assert!(report.contains("2 passed, 0 failed"), "{report}");
    Ok(())
}

#[test]
fn chromium_uses_the_dashboard_and_cannot_change_state_without_the_token() -> Result<()> {
    // The screenshot stays for people to look at.
    let dir = cairn_tests::workspace_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&dir)?;
    let shot = dir.join("webui.png");
    let _ = std::fs::remove_file(&shot);
    let report = run_in_netns("webui.mjs", &["--screenshot", shot.to_str().expect("UTF-8 path")])?;
    assert!(report.contains("19 passed, 0 failed"), "{report}");
    assert!(std::fs::metadata(&shot)?.len() > 10_000, "the screenshot was saved");
    Ok(())
}
