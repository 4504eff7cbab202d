//! IPNS names between real `cairn daemon` processes, each on its own loopback address
//! (127.0.0.2, .3, …): A publishes a name; C, which knows only B and joined after the
//! publish, resolves it through a DHT walk; C's gateway serves the name's content and its
//! signed record. With PubSub off, a new version reaches C once the record's TTL has passed;
//! with PubSub on, within seconds although the TTL is an hour.
//! Also: keys through the CLI, and a record kept by `--allow-offline` published by the daemon
//! when it starts.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_protocol::names::Name;
use cairn_protocol::records;
use cairn_tests::{bootstrap_to, curl, set_config, swarm_addr, wait_for, Daemon, TestRepo};

/// A repo whose daemon listens on `ip` only.
fn repo_on(ip: &str) -> Result<TestRepo> {
    let r = TestRepo::new()?;
    set_config(&r, "/ip4/127.0.0.1/tcp/0", &format!("/ip4/{ip}/tcp/0"))?;
    Ok(r)
}

/// [`repo_on`] with IPNS over PubSub off.
fn repo_without_pubsub(ip: &str) -> Result<TestRepo> {
    let r = repo_on(ip)?;
    set_config(&r, "pubsub = true", "pubsub = false")?;
    Ok(r)
}

fn add(repo: &TestRepo, text: &str) -> Result<String> {
    let f = repo.scratch(&format!("{}.txt", text.len()));
    fs::write(&f, text)?;
    Ok(repo.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string())
}

fn json(text: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(text)?)
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as i128
}

#[test]
fn a_name_published_on_a_resolves_on_c_through_the_dht_and_its_gateway() -> Result<()> {
    let (a, b, c) =
        (repo_without_pubsub("127.0.0.2")?, repo_without_pubsub("127.0.0.3")?, repo_without_pubsub("127.0.0.4")?);
    let _da = Daemon::start(&a)?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let _db = Daemon::start(&b)?;
    assert!(swarm_addr(&a)?.starts_with("/ip4/127.0.0.2/"), "{}", swarm_addr(&a)?);

    let name = json(&a.ok(&["key", "gen", "site", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    assert!(name.starts_with("k51"), "{name}");
    let v1 = add(&a, "version one\n")?;
    let out = json(&a.ok(&["name", "publish", "--key", "site", "--ttl", "3s", "--json", &v1])?)?;
    assert_eq!(out["Name"], name.as_str());
    assert_eq!(out["Value"], format!("/ipfs/{v1}").as_str());

    // C joins later, knowing only B: the record is not on C; a DHT walk finds it.
    bootstrap_to(&c, &[swarm_addr(&b)?])?;
    let dc = Daemon::start(&c)?;
    let t = Instant::now();
    let got = json(&c.ok(&["name", "resolve", "--json", &name])?)?;
    println!("cold resolve on C through the CLI: {:?}", t.elapsed());
    assert_eq!(got["Path"], format!("/ipfs/{v1}").as_str());
    assert_eq!(c.ok(&["cat", &format!("/ipns/{name}")])?, "version one\n");

    // C's gateway: the content, cached for the record's TTL, and the record itself.
    let r = curl(&format!("{}/ipns/{name}", dc.gateway), &[])?;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"version one\n"[..]));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3"));
    assert_eq!(r.header("x-ipfs-path"), Some(format!("/ipns/{name}").as_str()));
    let r = curl(&format!("{}/ipns/{name}?format=ipns-record", dc.gateway), &[])?;
    assert_eq!(r.header("content-type"), Some("application/vnd.ipfs.ipns-record"));
    let peer = name.parse::<Name>()?.peer_id();
    let record = records::validate_ipns(&peer, &r.body, now_nanos()).context("the served record verifies")?;
    assert_eq!(record.value, format!("/ipfs/{v1}").into_bytes());
    let host = format!("{name}.ipns.localhost:{}", dc.gateway.rsplit(':').next().unwrap_or(""));
    let r = curl(&format!("{}/", dc.gateway), &["-H", &format!("Host: {host}")])?;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"version one\n"[..]), "subdomain origin");

    // A new version: C answers the cached one within the TTL, the new one after it.
    let v2 = add(&a, "version two\n")?;
    let seq = json(&a.ok(&["name", "publish", "--key", "site", "--ttl", "3s", "--json", &v2])?)?["Sequence"].clone();
    assert_eq!(seq, 1, "the second record's sequence (the first is 0, as kubo)");
    let published = Instant::now();
    let seen = wait_for(Duration::from_secs(20), || {
        let p = json(&c.ok(&["name", "resolve", "--json", &name]).ok()?).ok()?;
        (p["Path"] == format!("/ipfs/{v2}").as_str()).then(Instant::now)
    })?;
    let after = seen - published;
    println!("new version seen on C after {after:?} (TTL 3 s)");
    assert!(after < Duration::from_secs(10), "seen after {after:?}");
    let r = curl(&format!("{}/ipns/{name}/", dc.gateway), &[])?;
    assert_eq!(r.body, b"version two\n");
    Ok(())
}

#[test]
fn with_pubsub_a_new_version_reaches_a_follower_within_seconds_despite_a_long_ttl() -> Result<()> {
    let (a, b, c) = (repo_on("127.0.0.7")?, repo_on("127.0.0.8")?, repo_on("127.0.0.9")?);
    let _da = Daemon::start(&a)?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let _db = Daemon::start(&b)?;
    bootstrap_to(&c, &[swarm_addr(&b)?])?;
    let _dc = Daemon::start(&c)?;

    let name = json(&a.ok(&["key", "gen", "site", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    let v1 = add(&a, "pubsub one\n")?;
    a.ok(&["name", "publish", "--key", "site", "--ttl", "1h", &v1])?;
    // C resolves once (and so follows the name on its topic).
    let p = wait_for(Duration::from_secs(20), || c.ok(&["name", "resolve", &name]).ok())?;
    assert_eq!(p.trim(), format!("/ipfs/{v1}"));

    let mut delays = Vec::new();
    for round in 2..=4 {
        let v = add(&a, &format!("pubsub {round}\n"))?;
        let published = Instant::now();
        a.ok(&["name", "publish", "--key", "site", "--ttl", "1h", &v])?;
        let seen = wait_for(Duration::from_secs(10), || {
            let p = c.ok(&["name", "resolve", &name]).ok()?;
            (p.trim() == format!("/ipfs/{v}")).then(Instant::now)
        })
        .with_context(|| format!("round {round}: C never saw the new version"))?;
        delays.push(seen - published);
    }
    println!("publish to seen on C through PubSub: {delays:?}");
    assert!(delays.iter().all(|d| *d < Duration::from_secs(5)), "{delays:?}");
    Ok(())
}

#[test]
fn keys_are_managed_through_the_cli_and_offline_records_are_published_at_start() -> Result<()> {
    let (a, b) = (repo_on("127.0.0.5")?, repo_on("127.0.0.6")?);
    // Keys: gen, list, rename, export (0600, never over a file), import, rm; `self` is fixed.
    let id = json(&a.ok(&["key", "gen", "blog", "--json"])?)?["Id"].as_str().context("Id")?.to_string();
    let keys = json(&format!("[{}]", a.ok(&["key", "list", "--json"])?.trim().replace('\n', ",")))?;
    assert_eq!(keys[0]["Name"], "self");
    assert_eq!(keys[1]["Name"], "blog");
    assert!(a.fails(&["key", "gen", "blog"])?.contains("exists already"));
    assert!(a.fails(&["key", "rm", "self"])?.contains("identity"));
    a.ok(&["key", "rename", "blog", "site"])?;
    let file = a.scratch("site.key");
    a.ok(&["key", "export", "site", "-o", file.to_str().unwrap()])?;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&file)?.permissions().mode() & 0o777, 0o600);
    assert!(a.fails(&["key", "export", "site", "-o", file.to_str().unwrap()])?.contains("never overwritten"));
    let imported = json(&b.ok(&["key", "import", "copy", file.to_str().unwrap(), "--json"])?)?;
    assert_eq!(imported["Id"], id.as_str(), "the same key on another repo");

    // Without a daemon: refused unless --allow-offline; a short lifetime warns.
    let v = add(&a, "offline\n")?;
    assert!(a.fails(&["name", "publish", "--key", "site", &v])?.contains("--allow-offline"));
    let out = a.run(&["name", "publish", "--key", "site", "--allow-offline", "--lifetime", "2d", &v])?;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: this record stays valid for 2days"));
    assert_eq!(a.ok(&["name", "resolve", &id])?.trim(), format!("/ipfs/{v}"), "resolved offline");
    a.ok(&["name", "publish", "--key", "site", "--allow-offline", "--lifetime", "4w", &v])?;

    // The daemon puts the kept record into the DHT when it starts: B finds it.
    let da = Daemon::start(&a)?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let _db = Daemon::start(&b)?;
    let path = wait_for(Duration::from_secs(30), || b.ok(&["name", "resolve", &id]).ok())?;
    assert_eq!(path.trim(), format!("/ipfs/{v}"));
    drop(da);
    if b.ok(&["name", "resolve", "--nocache", "bafkqaaa"]).is_ok() {
        bail!("a content CID resolved as a name");
    }
    Ok(())
}
