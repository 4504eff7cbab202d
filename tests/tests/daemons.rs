//! Real `cairn daemon` processes on 127.0.0.1: three nodes chained by their bootstrap lists
//! (C knows only B, B knows only A); `cairn get` on C returns the file added on A.

use anyhow::{Context, Result};
use cairn_tests::{bootstrap_to, finds_provider, peer_id, set_config, swarm_addr, Daemon, TestRepo};
use std::fs;

#[test]
fn a_file_added_on_a_is_fetched_on_c_through_b() -> Result<()> {
    let (a, b, c) = (TestRepo::new()?, TestRepo::new()?, TestRepo::new()?);
    let _da = Daemon::start(&a)?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let _db = Daemon::start(&b)?;
    bootstrap_to(&c, &[swarm_addr(&b)?])?;
    let _dc = Daemon::start(&c)?;

    let src = a.scratch("file.bin");
    let data = cairn_tests::prng(5 << 20);
    fs::write(&src, &data)?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();

    let out = c.scratch("got.bin");
    c.ok(&["get", &cid, "-o", out.to_str().unwrap()]).context("get on C")?;
    assert_eq!(fs::read(&out)?, data, "C got A's bytes");
    Ok(())
}

/// A number field of `cairn provide stat --json`.
fn provide_stat(repo: &TestRepo, field: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&repo.ok(&["provide", "stat", "--json"])?)?;
    v[field].as_u64().with_context(|| format!("{field} in {v}"))
}

#[test]
fn a_restarted_daemon_keeps_its_identity_pins_and_provider_records() -> Result<()> {
    let a = TestRepo::new()?;
    let mut da = Daemon::start(&a)?;
    let id = a.ok(&["id"])?;
    let src = a.scratch("file.bin");
    fs::write(&src, cairn_tests::prng(3 << 20))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    let keys = cairn_tests::wait_for(std::time::Duration::from_secs(30), || {
        provide_stat(&a, "TotalKeys").ok().filter(|n| *n >= 4)
    })?;
    a.ok(&["shutdown"])?;
    da.wait_exit(std::time::Duration::from_secs(30))?;

    let _da = Daemon::start(&a)?;
    assert_eq!(a.ok(&["id"])?, id, "same identity");
    assert!(a.ok(&["pin", "ls", "--type", "recursive"])?.contains(&cid), "the pin survived");
    let after = cairn_tests::wait_for(std::time::Duration::from_secs(30), || {
        provide_stat(&a, "TotalKeys").ok().filter(|n| *n == keys)
    });
    assert!(after.is_ok(), "the announcement schedule survived: {keys} keys before");

    // A newcomer that knows only A finds A as the provider: A answers for its keys at once.
    let b = TestRepo::new()?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let _db = Daemon::start(&b)?;
    assert!(finds_provider(&b, &cid, &peer_id(&a)?), "B found A as provider of {cid} after A's restart");
    Ok(())
}

#[test]
fn unpinned_content_leaves_the_announcement_schedule() -> Result<()> {
    let repo = TestRepo::new()?;
    let _d = Daemon::start(&repo)?;
    // Two files sharing nothing, each several blocks: both pinned, both announced.
    let (f1, f2) = (repo.scratch("one.bin"), repo.scratch("two.bin"));
    fs::write(&f1, cairn_tests::prng(3 << 20))?;
    fs::write(&f2, cairn_tests::prng(5 << 20).split_off(4 << 20).repeat(2))?;
    let one = repo.ok(&["add", "-Q", f1.to_str().unwrap()])?.trim().to_string();
    let two = repo.ok(&["add", "-Q", f2.to_str().unwrap()])?.trim().to_string();
    let both = cairn_tests::wait_for(std::time::Duration::from_secs(20), || {
        provide_stat(&repo, "TotalKeys").ok().filter(|n| *n >= 6)
    })?;
    repo.ok(&["pin", "rm", &one])?;
    let after = provide_stat(&repo, "TotalKeys")?;
    // `one` had a root and three leaves; `two` keeps its blocks (its two leaves are equal).
    assert_eq!(both - after, 4, "the unpinned file's four blocks left the schedule ({both} -> {after})");
    repo.ok(&["pin", "rm", &two])?;
    assert_eq!(provide_stat(&repo, "TotalKeys")?, 0, "nothing pinned, nothing announced");
    Ok(())
}

#[test]
fn fetched_blocks_are_announced_under_strategy_all() -> Result<()> {
    let a = TestRepo::new()?;
    let _da = Daemon::start(&a)?;
    let src = a.scratch("file.bin");
    fs::write(&src, cairn_tests::prng(3 << 20))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();

    // B announces whatever it fetches, pinned or not.
    let b = TestRepo::new()?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    set_config(&b, "strategy = \"pinned\"", "strategy = \"all\"")?;
    let _db = Daemon::start(&b)?;
    assert_eq!(provide_stat(&b, "TotalKeys")?, 0);
    let out = b.cmd(&["cat", &cid]).output()?;
    assert!(out.status.success() && out.stdout == fs::read(&src)?, "B fetched the file");
    let keys = cairn_tests::wait_for(std::time::Duration::from_secs(20), || {
        provide_stat(&b, "TotalKeys").ok().filter(|n| *n >= 4)
    })?;
    assert_eq!(keys, 4, "a root and three leaves entered B's schedule");
    assert!(b.ok(&["pin", "ls"])?.trim().is_empty(), "without a pin");

    // C, which knows only B, finds B as a provider of the file.
    let c = TestRepo::new()?;
    bootstrap_to(&c, &[swarm_addr(&b)?])?;
    let _dc = Daemon::start(&c)?;
    assert!(finds_provider(&c, &cid, &peer_id(&b)?), "C found B as a provider of fetched content");
    Ok(())
}
