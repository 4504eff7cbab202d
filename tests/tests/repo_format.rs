//! Repos written by earlier releases open with today's code, their content intact.

use std::process::Command;

use anyhow::{ensure, Result};
use cairn_tests::{cairn_bin, workspace_root};

/// The format-1 fixture (`tests/fixtures/README.md`) opens, lists its pins, reads its files
/// and verifies clean.
#[test]
fn a_format_1_repo_opens_and_reads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let fixture = workspace_root().join("tests/fixtures/repo-v1.tar.gz");
    let status = Command::new("tar").arg("xzf").arg(&fixture).arg("-C").arg(dir.path()).status()?;
    ensure!(status.success(), "unpacking {}", fixture.display());
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new(cairn_bin()).env("CAIRN_PATH", dir.path().join("repo")).args(args).output()?;
        ensure!(out.status.success(), "cairn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?)
    };
    let pins = run(&["pin", "ls", "--type", "recursive"])?;
    for cid in [
        "bafkreibjs32dyvfqs2xiw4mmptprsuais4djfzacnt4s5xmxaiktaxvsnm",
        "bafybeiahgiacysnibtnk5vlebgcggtgapdul2obzl36rcjclfwsrvg7hcm",
        "QmPcBX2p1zZhfVTdvGfDVY5YrUqpdHbpwzz6K6jHTVmm8m",
    ] {
        ensure!(pins.contains(&format!("{cid} recursive")), "{cid} missing from {pins}");
    }
    let note = run(&["cat", "bafkreibjs32dyvfqs2xiw4mmptprsuais4djfzacnt4s5xmxaiktaxvsnm"])?;
    ensure!(note == "written by cairn repo format 1\n", "{note:?}");
    let big = run(&["cat", "bafybeiahgiacysnibtnk5vlebgcggtgapdul2obzl36rcjclfwsrvg7hcm"])?;
    ensure!(big.len() == 2_000_000 && big.bytes().all(|b| b == b'x'), "the 2 MB file changed");
    run(&["repo", "verify"])?;
    run(&["pin", "verify"])?;
    let version = std::fs::read_to_string(dir.path().join("repo/version"))?;
    ensure!(version.trim() == "3", "the repo was not migrated to format 3: {version:?}");
    // Format 3 orders the provide schedule by due time: every scheduled key is in the index.
    {
        let repo = cairn_node::repo::Repo::open(&dir.path().join("repo"))?;
        let mut scheduled = 0u64;
        repo.store().for_each_scheduled(&mut |_| {
            scheduled += 1;
            true
        })?;
        let due = repo.store().provides_due(u64::MAX, 0)?;
        ensure!(scheduled > 0 && due.total == scheduled, "{scheduled} keys scheduled, {} in the index", due.total);
    }
    // Opened again, already migrated: the same pins.
    ensure!(run(&["pin", "ls", "--type", "recursive"])? == pins, "pins changed on the second open");
    Ok(())
}
