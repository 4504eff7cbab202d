//! What a home-node operator relies on, through real daemons on 127.0.0.1:
//! - two daemons that only speak QUIC transfer a file;
//! - the storage budget evicts fetched, unpinned blocks and never pinned ones;
//! - a remote `pin add` cut by `kill -9` resumes after the restart and completes;
//! - provider records learned from other peers survive a restart and are still served.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_tests::{bootstrap_to, finds_provider, peer_id, set_config, swarm_addr, wait_for, Daemon, TestRepo};

/// A number field of a `--json` command's output.
fn json_u64(repo: &TestRepo, args: &[&str], field: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&repo.ok(args)?)?;
    v[field].as_u64().with_context(|| format!("{field} in {v}"))
}

#[test]
fn daemons_speaking_only_quic_transfer_a_file() -> Result<()> {
    let quic = r#"listen = ["/ip4/127.0.0.1/udp/0/quic-v1"]"#;
    let (a, b) = (TestRepo::new()?, TestRepo::new()?);
    set_config(&a, r#"listen = ["/ip4/127.0.0.1/tcp/0"]"#, quic)?;
    set_config(&b, r#"listen = ["/ip4/127.0.0.1/tcp/0"]"#, quic)?;
    let da = Daemon::start(&a)?;
    let _db = Daemon::start(&b)?;
    let addr = da.swarm_addrs().into_iter().find(|a| a.contains("/quic-v1")).context("a QUIC address")?;
    let src = a.scratch("file.bin");
    fs::write(&src, cairn_tests::prng(3 << 20))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    b.ok(&["swarm", "connect", &addr])?;
    assert!(b.ok(&["swarm", "peers"])?.contains("/quic-v1/"), "connected over QUIC");
    let out = b.cmd(&["cat", &cid]).output()?;
    assert!(out.status.success(), "cat: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == fs::read(&src)?, "bytes differ");
    Ok(())
}

#[test]
fn the_storage_budget_evicts_fetched_blocks_and_keeps_pinned_ones() -> Result<()> {
    let a = TestRepo::new()?;
    let _da = Daemon::start(&a)?;
    let big = a.scratch("big.bin");
    fs::write(&big, cairn_tests::prng(6 << 20))?;
    let fetched = a.ok(&["add", "-Q", big.to_str().unwrap()])?.trim().to_string();

    let b = TestRepo::new()?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    set_config(&b, "max_size_bytes = 0", "max_size_bytes = 3145728")?;
    set_config(&b, "gc_period_secs = 60", "gc_period_secs = 1")?;
    let mut db = Daemon::start(&b)?;
    let own = b.scratch("own.bin");
    fs::write(&own, cairn_tests::prng(2 << 20).split_off(1 << 20).repeat(2))?;
    let pinned = b.ok(&["add", "-Q", own.to_str().unwrap()])?.trim().to_string();
    let out = b.cmd(&["cat", &fetched]).output()?;
    assert!(out.status.success() && out.stdout == fs::read(&big)?, "B read A's file");

    // Over the 3 MiB budget: the cached 6 MiB go, the pinned file stays.
    let left = wait_for(Duration::from_secs(30), || {
        json_u64(&b, &["repo", "stat", "--json"], "BlockBytes").ok().filter(|n| *n <= 3 << 20)
    })?;
    assert!(left >= 1 << 20, "the pinned file's blocks were kept ({left} bytes left)");
    // Without the daemon, `cat` reads only the local store.
    b.ok(&["shutdown"])?;
    db.wait_exit(Duration::from_secs(30))?;
    let out = b.cmd(&["cat", &pinned]).output()?;
    assert!(out.status.success() && out.stdout == fs::read(&own)?, "the pinned file reads back whole");
    let offline = b.cmd(&["cat", &fetched]).output()?;
    assert!(!offline.status.success(), "the fetched file was evicted");
    Ok(())
}

#[test]
fn a_remote_pin_cut_by_kill_resumes_after_restart() -> Result<()> {
    let a = TestRepo::new()?;
    let _da = Daemon::start(&a)?;
    let src = a.scratch("big.bin");
    fs::write(&src, cairn_tests::prng(96 << 20))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();

    let b = TestRepo::new()?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let db = Daemon::start(&b)?;
    let mut pin =
        b.cmd(&["pin", "add", &cid]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn()?;
    // Kill B once some blocks, not all, have arrived.
    wait_for(Duration::from_secs(60), || {
        json_u64(&b, &["repo", "stat", "--json"], "NumObjects").ok().filter(|n| *n >= 3)
    })?;
    db.signal("KILL")?;
    let _ = pin.wait();
    drop(db);

    let mut db = Daemon::start(&b)?;
    let partial = json_u64(&b, &["repo", "stat", "--json"], "NumObjects")?;
    let listed = wait_for(Duration::from_secs(120), || {
        b.ok(&["pin", "ls", "--type", "recursive"]).ok().filter(|out| out.contains(&cid))
    });
    assert!(listed.is_ok(), "the interrupted pin completed after the restart ({partial} blocks at restart)");
    assert!(partial < 98, "the kill came before the pin finished ({partial} blocks)");
    b.ok(&["shutdown"])?;
    db.wait_exit(Duration::from_secs(30))?;
    let out = b.cmd(&["cat", &cid]).output()?;
    assert!(out.status.success() && out.stdout == fs::read(&src)?, "the pinned file reads back whole");
    Ok(())
}

#[test]
fn provider_records_from_peers_survive_a_restart() -> Result<()> {
    // B is a DHT server that A announces to; after B restarts and A is gone, C asks B.
    let b = TestRepo::new()?;
    let mut db = Daemon::start(&b)?;
    let a = TestRepo::new()?;
    bootstrap_to(&a, &[swarm_addr(&b)?])?;
    let mut da = Daemon::start(&a)?;
    let src = a.scratch("file.bin");
    fs::write(&src, cairn_tests::prng(1 << 20))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    let a_peer = peer_id(&a)?;
    wait_for(Duration::from_secs(30), || {
        (json_u64(&a, &["provide", "stat", "--json"], "Provided").ok()? > 0).then_some(())
    })?;

    a.ok(&["shutdown"])?;
    da.wait_exit(Duration::from_secs(30))?;
    b.ok(&["shutdown"])?;
    db.wait_exit(Duration::from_secs(30))?;
    let _db = Daemon::start(&b)?;

    let c = TestRepo::new()?;
    bootstrap_to(&c, &[swarm_addr(&b)?])?;
    let _dc = Daemon::start(&c)?;
    assert!(finds_provider(&c, &cid, &a_peer), "B still knew A as the provider of {cid} after its restart");
    Ok(())
}
