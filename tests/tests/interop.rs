//! Interop with real Helia 7 and kubo v0.22 peers (`../shared/helia-peer`, `../shared/kubo-peer`):
//! files move both ways over Bitswap; Helia finds cairn, and cairn finds kubo, as a provider
//! through the DHT. Everything runs inside a fresh network namespace holding only loopback,
//! because kubo dials the public network by itself; `tests/interop/interop.py` drives the peers
//! there.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_tests::{cairn_bin, run_with_deadline, workspace_root};

fn setup(script: &str) -> Result<String> {
    let out = run_with_deadline(
        {
            let mut c = Command::new("bash");
            c.arg(workspace_root().join("scripts").join(script));
            c
        },
        Duration::from_secs(900),
    )?;
    if !out.status.success() {
        bail!("{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().lines().last().context("setup printed no path")?.to_string())
}

#[test]
fn helia_and_kubo_exchange_files_and_providers_are_found_through_the_dht() -> Result<()> {
    let helia = setup("helia-setup.sh")?;
    let kubo = setup("kubo-setup.sh")?;
    let work = tempfile::tempdir()?;
    let script = workspace_root().join("tests").join("interop").join("interop.py");
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "netns"])
        .arg("python3")
        .arg(&script)
        .arg("--cairn")
        .arg(cairn_bin())
        .args(["--helia", &helia, "--kubo", &kubo, "--mb", "64"])
        .arg("--work")
        .arg(work.path());
    let out = run_with_deadline(cmd, Duration::from_secs(900))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    if !out.status.success() {
        bail!("interop checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    // Helia: finds cairn, fetches from it, cairn fetches from Helia. kubo: fetches from cairn,
    // cairn fetches from kubo, cairn finds kubo (an RSA peer ID) as a provider through the DHT.
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    Ok(())
}
