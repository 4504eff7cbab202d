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

#[test]
fn a_killed_follower_resumes_and_versions_that_fail_or_are_too_large_never_replace_the_last() -> Result<()> {
    let publisher = repo_on("127.0.0.10", true, 300)?;
    let _dp = Daemon::start(&publisher)?;
    let p_addr = swarm_addr(&publisher)?;
    let (v, w) = (repo_on("127.0.0.11", true, 300)?, repo_on("127.0.0.12", true, 300)?);
    bootstrap_to(&v, std::slice::from_ref(&p_addr))?;
    bootstrap_to(&w, std::slice::from_ref(&p_addr))?;
    let mut dv = Daemon::start(&v)?;
    let _dw = Daemon::start(&w)?;

    let name = json(&publisher.ok(&["key", "gen", "site", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    let site = publisher.scratch("site");
    write_site(&site, 1)?;
    let v1 = add_dir(&publisher, &site)?;
    publisher.ok(&["name", "publish", "--key", "site", &v1])?;
    v.ok(&["follow", "add", &name, "--as", "site"])?;
    w.ok(&["follow", "add", &name, "--as", "site", "--max-bytes", "3MB"])?;
    wait_held(&v, "site", &v1, Duration::from_secs(60))?;
    wait_held(&w, "site", &v1, Duration::from_secs(60))?;

    // Version 2 is 4 MiB and one of its files is served by nobody yet: V fetches what it can
    // and waits for the rest; W refuses it as larger than its 3 MB.
    let big = publisher.scratch("v2");
    fs::create_dir_all(&big)?;
    fs::write(big.join("a.bin"), prng(4 << 20))?;
    fs::write(big.join("b.txt"), "the part nobody serves yet\n")?;
    let v2 = publisher.ok(&["add", "-r", "-Q", "--pin=false", big.to_str().unwrap()])?.trim().to_string();
    let b = publisher.ok(&["add", "-Q", "--pin=false", big.join("b.txt").to_str().unwrap()])?.trim().to_string();
    publisher.ok(&["block", "rm", &b])?;
    publisher.ok(&["name", "publish", "--key", "site", &v2])?;

    let refused = wait_for(Duration::from_secs(30), || {
        let s = status(&w, "site").ok()?;
        s["LastError"].as_str().filter(|e| e.contains("refused")).map(String::from)
    })?;
    println!("W: {refused}");
    assert!(refused.contains("larger than") && refused.contains(&v2), "{refused}");
    let s = status(&w, "site")?;
    assert_eq!((s["Held"]["Cid"].as_str(), s["Fetching"].is_null()), (Some(v1.as_str()), true), "{s}");
    assert!(!pins(&w)?.contains(&v2));

    let fetching = wait_for(Duration::from_secs(30), || {
        let s = status(&v, "site").ok()?;
        (s["Fetching"]["Cid"] == v2.as_str() && s["Fetching"]["Blocks"].as_u64()? >= 3).then_some(s)
    })?;
    println!("V mid-fetch: {}", fetching["Fetching"]);
    let pending = v.ok(&["pin", "ls", "--type", "pending"])?;
    assert!(pending.contains(&v2) && pending.contains("follow:site"), "pending pin shown: {pending}");
    dv.signal("KILL")?;
    dv.wait_exit(Duration::from_secs(10))?;
    // Offline, on the repo the killed daemon left: the partial version is not pinned, the
    // follow remembers it was fetching it.
    let pinned = pins(&v)?;
    assert!(pinned.contains(&v1) && !pinned.contains(&v2), "{pinned}");
    let s = status(&v, "site")?;
    assert_eq!(s["Fetching"]["Cid"], v2.as_str(), "{s}");

    // The missing file is back; V restarts and completes version 2 on its own.
    publisher.ok(&["add", "-Q", big.join("b.txt").to_str().unwrap()])?;
    let _dv = Daemon::start(&v)?;
    let took = wait_held(&v, "site", &v2, Duration::from_secs(60))?;
    println!("V resumed and completed version 2 in {took:?}");
    assert_eq!(v.ok(&["cat", &format!("{v2}/b.txt")])?, "the part nobody serves yet\n");

    // Version 3 is served by nobody at all: V keeps version 2 pinned and says why.
    let lost = publisher.scratch("lost.txt");
    fs::write(&lost, "gone before anyone fetched it\n")?;
    let v3 = publisher.ok(&["add", "-Q", "--pin=false", lost.to_str().unwrap()])?.trim().to_string();
    publisher.ok(&["block", "rm", &v3])?;
    publisher.ok(&["name", "publish", "--key", "site", "--resolve=false", &v3])?;
    let error = wait_for(Duration::from_secs(40), || {
        let s = status(&v, "site").ok()?;
        s["LastError"].as_str().filter(|e| e.contains(&v3)).map(String::from)
    })?;
    println!("V: {error}");
    assert!(error.contains("still holding") && error.contains(&v2), "{error}");
    let s = status(&v, "site")?;
    assert_eq!(s["Held"]["Cid"], v2.as_str(), "{s}");
    assert!(pins(&v)?.contains(&v2));
    Ok(())
}

#[test]
fn without_pubsub_a_follower_sees_a_new_version_within_its_check_interval() -> Result<()> {
    let publisher = repo_on("127.0.0.13", false, 300)?;
    let _dp = Daemon::start(&publisher)?;
    let v = repo_on("127.0.0.14", false, 2)?;
    bootstrap_to(&v, &[swarm_addr(&publisher)?])?;
    let _dv = Daemon::start(&v)?;

    let name = json(&publisher.ok(&["key", "gen", "site", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    let site = publisher.scratch("site");
    write_site(&site, 1)?;
    let v1 = add_dir(&publisher, &site)?;
    publisher.ok(&["name", "publish", "--key", "site", "--ttl", "1s", &v1])?;
    v.ok(&["follow", "add", &name])?;
    wait_held(&v, &name, &v1, Duration::from_secs(60))?;
    write_site(&site, 2)?;
    let v2 = add_dir(&publisher, &site)?;
    // A record valid for 3 days: the follower warns that only the publisher can extend it.
    publisher.ok(&["name", "publish", "--key", "site", "--ttl", "1s", "--lifetime", "72h", &v2])?;
    let took = wait_held(&v, &name, &v2, Duration::from_secs(30))?;
    println!("publish to held with PubSub off, checks every 2 s: {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let s = status(&v, &name)?;
    let warning = s["Warnings"][0].as_str().context("an expiry warning")?;
    assert!(warning.contains("expires in 2days") && warning.contains("republish"), "{warning}");
    let out = v.run(&["follow", "status", &name])?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: the newest record"), "{out:?}");

    // Unfollowing stops the task and unpins what the follow pinned; the follow stays gone
    // (its task, checking every 2 s, would have written it back).
    assert!(v.ok(&["follow", "rm", &name])?.contains("stopped following"));
    assert!(!pins(&v)?.contains(&v2), "the follow's pin went");
    std::thread::sleep(Duration::from_secs(3));
    assert!(v.ok(&["follow", "ls"])?.trim().is_empty());
    assert!(v.fails(&["follow", "status", &name])?.contains("is not followed"));
    Ok(())
}

/// Whether `repo`'s daemon is connected to the peer of `addr` (`…/p2p/<id>`).
fn connected_to(repo: &TestRepo, addr: &str) -> bool {
    let peer = addr.rsplit('/').next().unwrap_or_default();
    repo.ok(&["swarm", "peers"]).is_ok_and(|p| p.contains(peer))
}

#[test]
fn a_restarted_node_rejoins_through_peers_it_knew_and_failed_announcements_are_retried() -> Result<()> {
    let (a, b, c) =
        (repo_on("127.0.0.15", true, 300)?, repo_on("127.0.0.16", true, 300)?, repo_on("127.0.0.17", true, 300)?);
    let mut da = Daemon::start(&a)?;
    let a_addr = swarm_addr(&a)?;
    bootstrap_to(&b, std::slice::from_ref(&a_addr))?;
    bootstrap_to(&c, std::slice::from_ref(&a_addr))?;
    let mut db = Daemon::start(&b)?;
    let mut dc = Daemon::start(&c)?;
    let c_addr = swarm_addr(&c)?;
    // B meets C through the DHT (its bootstrap list names only A).
    wait_for(Duration::from_secs(30), || connected_to(&b, &c_addr).then_some(())).context("B never met C")?;

    // B stops; A, its only bootstrap peer, dies; B comes back and rejoins through C.
    db.signal("TERM")?;
    db.wait_exit(Duration::from_secs(30))?;
    da.signal("KILL")?;
    da.wait_exit(Duration::from_secs(10))?;
    let db = Daemon::start(&b)?;
    let t = Instant::now();
    wait_for(Duration::from_secs(20), || connected_to(&b, &c_addr).then_some(()))
        .context("B did not rejoin through C, a peer it knew")?;
    println!("B rejoined through C in {:?}", t.elapsed());

    // Alone (C gone too), B keeps trying with backoff and says so.
    dc.signal("KILL")?;
    dc.wait_exit(Duration::from_secs(10))?;
    wait_for(Duration::from_secs(20), || {
        let log = fs::read_to_string(b.scratch("daemon.log")).ok()?;
        log.contains("no peer connected: dialling the bootstrap and known peers again").then_some(())
    })
    .context("B never said it was retrying")?;
    drop(db);

    // A node with no peers adds content: the announcement fails, and is made soon after a
    // peer appears (not at the next 10-minute check). D dies before E looks, so E can only
    // find D through the record D put on it.
    let (d, e) = (repo_on("127.0.0.18", true, 300)?, repo_on("127.0.0.19", true, 300)?);
    let _de = Daemon::start(&e)?;
    let mut dd = Daemon::start(&d)?;
    let f = d.scratch("alone.txt");
    fs::write(&f, "announced once a peer came\n")?;
    let cid = d.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string();
    std::thread::sleep(Duration::from_secs(2));
    d.ok(&["swarm", "connect", &swarm_addr(&e)?])?;
    let d_peer = cairn_tests::peer_id(&d)?;
    std::thread::sleep(Duration::from_secs(4));
    dd.signal("KILL")?;
    dd.wait_exit(Duration::from_secs(10))?;
    assert!(cairn_tests::finds_provider(&e, &cid, &d_peer), "E never found D as the provider of {cid}");
    Ok(())
}
