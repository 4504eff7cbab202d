//! Volunteers follow a site's name, between real `cairn daemon` processes, each on its own
//! loopback address: a publisher adds a site and publishes its name; three volunteers follow
//! it; an update reaches every volunteer within seconds (PubSub) or within the check interval
//! (PubSub off); with the publisher gone, a fresh node resolves the name and fetches the site
//! from the volunteers, and `cairn health` there counts the live holders as volunteers die.
//! Also: a follower killed mid-fetch resumes and never pins a partial version; a version
//! nobody serves, or one over `--max-bytes`, leaves the previous version pinned and says why.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cairn_tests::{bootstrap_to, prng, set_config, swarm_addr, wait_for, Daemon, TestRepo};
use serde_json::Value;

/// A repo whose daemon listens on `ip` only, with follow checks every `interval` seconds and
/// blocks given up after 5 s.
fn repo_on(ip: &str, pubsub: bool, interval: u64) -> Result<TestRepo> {
    let r = TestRepo::new()?;
    set_config(&r, "/ip4/127.0.0.1/tcp/0", &format!("/ip4/{ip}/tcp/0"))?;
    if !pubsub {
        set_config(&r, "pubsub = true", "pubsub = false")?;
    }
    set_config(&r, "check_interval_secs = 300", &format!("check_interval_secs = {interval}"))?;
    set_config(&r, "block_timeout_secs = 60", "block_timeout_secs = 5")?;
    set_config(&r, "grace_secs = 3600", "grace_secs = 2")?;
    Ok(r)
}

fn json(text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text:?}"))
}

/// Write the site's files for `version` (an index page and a 2.5 MiB picture, several blocks).
fn write_site(dir: &Path, version: u32) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join("index.html"), format!("<h1>version {version}</h1>\n"))?;
    let mut picture = prng(2560 * 1024);
    picture[0] = version as u8;
    fs::write(dir.join("picture.bin"), picture)?;
    Ok(())
}

fn add_dir(repo: &TestRepo, dir: &Path) -> Result<String> {
    Ok(repo.ok(&["add", "-r", "-Q", dir.to_str().unwrap()])?.trim().to_string())
}

/// The follow's status row.
fn status(repo: &TestRepo, label: &str) -> Result<Value> {
    json(&repo.ok(&["follow", "status", "--json", label])?)
}

/// Wait until the follow holds `root`; the time it took.
fn wait_held(repo: &TestRepo, label: &str, root: &str, limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    wait_for(limit, || {
        let s = status(repo, label).ok()?;
        (s["Held"]["Cid"] == root).then(|| t.elapsed())
    })
    .with_context(|| format!("the follow never held {root}: {:?}", status(repo, label).ok()))
}

fn pins(repo: &TestRepo) -> Result<String> {
    repo.ok(&["pin", "ls", "--type", "recursive"])
}

/// `cairn health --json` on `repo`: the report and whether it exited 0.
fn health(repo: &TestRepo, name: &str) -> Result<(Value, bool)> {
    let out = repo.run(&["health", "--json", name])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    Ok((json(&text).with_context(|| String::from_utf8_lossy(&out.stderr).to_string())?, out.status.success()))
}

#[test]
fn volunteers_follow_a_site_keep_it_after_its_publisher_goes_and_health_counts_them() -> Result<()> {
    let publisher = repo_on("127.0.0.2", true, 300)?;
    let mut dp = Daemon::start(&publisher)?;
    let p_addr = swarm_addr(&publisher)?;
    let volunteers: Vec<TestRepo> =
        ["127.0.0.3", "127.0.0.4", "127.0.0.5"].iter().map(|ip| repo_on(ip, true, 300)).collect::<Result<_>>()?;
    let mut daemons = Vec::new();
    for v in &volunteers {
        bootstrap_to(v, std::slice::from_ref(&p_addr))?;
        daemons.push(Daemon::start(v)?);
    }

    let name = json(&publisher.ok(&["key", "gen", "site", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    let site = publisher.scratch("site");
    write_site(&site, 1)?;
    let v1 = add_dir(&publisher, &site)?;
    publisher.ok(&["name", "publish", "--key", "site", &v1])?;
    for v in &volunteers {
        let added = json(&v.ok(&["follow", "add", &name, "--as", "site", "--json"])?)?;
        assert_eq!((added["Target"].as_str(), added["Label"].as_str()), (Some(name.as_str()), Some("site")));
    }
    for v in &volunteers {
        wait_held(v, "site", &v1, Duration::from_secs(60))?;
    }

    // An update: every volunteer holds, pins and serves it within seconds (PubSub; the check
    // interval is 5 minutes).
    write_site(&site, 2)?;
    let v2 = add_dir(&publisher, &site)?;
    publisher.ok(&["name", "publish", "--key", "site", &v2])?;
    let mut delays = Vec::new();
    for v in &volunteers {
        delays.push(wait_held(v, "site", &v2, Duration::from_secs(30))?);
    }
    println!("publish to held on each volunteer (PubSub): {delays:?}");
    assert!(delays.iter().all(|d| *d < Duration::from_secs(10)), "{delays:?}");
    for v in &volunteers {
        let pinned = pins(v)?;
        assert!(pinned.contains(&v2), "v2 pinned: {pinned}");
        let s = status(v, "site")?;
        assert_eq!(s["Held"]["Sequence"], 1);
        assert!(s["LastError"].is_null(), "{s}");
        let expires = s["RecordExpires"].as_u64().context("RecordExpires")?;
        assert!(expires > 20 * 86_400 + cairn_tests_now(), "30-day record: {expires}");
        assert!(s["Warnings"].as_array().is_some_and(|w| w.is_empty()), "{s}");
    }
    // The superseded version goes after the grace period (2 s here).
    let v0 = &volunteers[0];
    wait_for(Duration::from_secs(30), || (!pins(v0).ok()?.contains(&v1)).then_some(())).context("v1 never unpinned")?;

    // The publisher goes. A fresh node that follows nothing resolves the name through the
    // DHT and fetches the site from the volunteers.
    dp.signal("KILL")?;
    dp.wait_exit(Duration::from_secs(10))?;
    let fresh = repo_on("127.0.0.6", true, 300)?;
    bootstrap_to(&fresh, &[swarm_addr(&volunteers[0])?])?;
    let _df = Daemon::start(&fresh)?;
    let path = wait_for(Duration::from_secs(30), || fresh.ok(&["name", "resolve", &name]).ok())?;
    assert_eq!(path.trim(), format!("/ipfs/{v2}"));
    assert_eq!(fresh.ok(&["cat", &format!("/ipns/{name}/index.html")])?, "<h1>version 2</h1>\n");
    let picture = fresh.run(&["cat", &format!("/ipns/{name}/picture.bin")])?.stdout;
    assert_eq!((picture.len(), picture[0]), (2560 * 1024, 2));

    // Health there: three holders; then two; then one, and a failing exit code.
    let (r, ok) = health(&fresh, &name)?;
    println!("health with 3 volunteers: {r}");
    assert_eq!(
        (r["Holders"].as_u64(), r["MinHolders"].as_u64(), r["SurvivesSingleLoss"].as_bool()),
        (Some(3), Some(3), Some(true)),
        "{r}"
    );
    assert!(ok);
    assert!(r["Blocks"].as_u64().unwrap_or(0) >= 5, "{r}");
    for (killed, (holders, survives)) in [(2, (2, true)), (1, (1, false))] {
        daemons[killed].signal("KILL")?;
        daemons[killed].wait_exit(Duration::from_secs(10))?;
        let (r, ok) = health(&fresh, &name)?;
        println!("health after killing volunteer {killed}: {r}");
        assert_eq!(
            (r["Holders"].as_u64(), r["MinHolders"].as_u64(), r["SurvivesSingleLoss"].as_bool()),
            (Some(holders), Some(holders), Some(survives)),
            "{r}"
        );
        assert_eq!(ok, survives, "exit code 0 exactly when every block has 2 holders");
    }
    Ok(())
}

fn cairn_tests_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
