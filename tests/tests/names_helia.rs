//! IPNS between cairn and a real Helia 7 peer (`tests/helia-ipns`: `@helia/ipns` 10 with the
//! DHT and PubSub routers, `@libp2p/gossipsub`, `@libp2p/fetch`), both on 127.0.0.1: names
//! published by each resolve on the other through the DHT, and new versions reach the other
//! through PubSub within seconds although their TTL is an hour.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_tests::{run_with_deadline, swarm_addr, wait_for, workspace_root, Daemon, TestRepo};
use serde_json::{json, Value};

/// A running `ipns-peer.mjs`, driven by JSON lines.
struct HeliaPeer {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
    next_id: u64,
}

impl HeliaPeer {
    fn start(dir: &str, args: &[&str]) -> Result<(HeliaPeer, Value)> {
        let mut child = Command::new("node")
            .current_dir(dir)
            .arg("ipns-peer.mjs")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node ipns-peer.mjs")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut peer = HeliaPeer { child, stdin, events, next_id: 0 };
        let ready = peer.wait(Duration::from_secs(60), |v| v["event"] == "ready")?;
        Ok((peer, ready))
    }

    /// The first event matching `f` within `timeout` (other events are dropped).
    fn wait(&mut self, timeout: Duration, f: impl Fn(&Value) -> bool) -> Result<Value> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self.events.recv_timeout(left).context("the Helia peer went quiet")?;
            if v["event"] == "error" && v["op"] != "resolve" {
                bail!("Helia peer error: {v}");
            }
            if f(&v) {
                return Ok(v);
            }
        }
    }

    /// Send `cmd` and wait for its answer (an event echoing its id).
    fn request(&mut self, mut cmd: Value, timeout: Duration) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        self.wait(timeout, |v| v["id"] == id)
    }
}

impl Drop for HeliaPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "stop"}));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup() -> Result<String> {
    let mut c = Command::new("bash");
    c.arg(workspace_root().join("scripts").join("helia-ipns-setup.sh"));
    let out = run_with_deadline(c, Duration::from_secs(600))?;
    if !out.status.success() {
        bail!("helia-ipns-setup.sh: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().lines().last().context("no path printed")?.to_string())
}

fn add(repo: &TestRepo, text: &str) -> Result<String> {
    let f = repo.scratch(&format!("{}.txt", text.len()));
    std::fs::write(&f, text)?;
    Ok(repo.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string())
}

const HOUR_MS: u64 = 3_600_000;

#[test]
fn cairn_and_helia_resolve_each_others_names_through_the_dht_and_see_updates_through_pubsub() -> Result<()> {
    let dir = setup()?;
    let a = TestRepo::new()?;
    let _da = Daemon::start(&a)?;
    let (mut h, ready) = HeliaPeer::start(&dir, &["--key-seed", "cairn interop site"])?;
    let helia_name = ready["name"].as_str().context("name")?.to_string();
    h.request(json!({"op": "connect", "addr": swarm_addr(&a)?}), Duration::from_secs(60))?;

    // cairn → Helia through the DHT.
    let cairn_name = serde_json::from_str::<Value>(&a.ok(&["key", "gen", "site", "--json"])?)?["Id"]
        .as_str()
        .context("Id")?
        .to_string();
    let v1 = add(&a, "cairn v1\n")?;
    a.ok(&["name", "publish", "--key", "site", "--ttl", "1h", &v1])?;
    let r = h.request(json!({"op": "resolve", "name": cairn_name, "nocache": true}), Duration::from_secs(60))?;
    assert_eq!(r["event"], "resolved", "{r}");
    assert_eq!(r["value"], format!("/ipfs/{v1}").as_str(), "Helia resolved cairn's name: {r}");

    // Helia → cairn through the DHT (cairn then follows the name on its topic).
    let hv1 = format!("/ipfs/{}", add(&a, "helia v1\n")?);
    h.request(json!({"op": "publish", "value": hv1, "ttlMs": HOUR_MS}), Duration::from_secs(60))?;
    let got = wait_for(Duration::from_secs(30), || a.ok(&["name", "resolve", "--nocache", &helia_name]).ok())?;
    assert_eq!(got.trim(), hv1, "cairn resolved Helia's name");

    // cairn → Helia through PubSub: Helia watches the name; cairn publishes a new version.
    h.request(json!({"op": "watch", "name": cairn_name}), Duration::from_secs(30))?;
    let v2 = add(&a, "cairn v2\n")?;
    let t = Instant::now();
    a.ok(&["name", "publish", "--key", "site", "--ttl", "1h", &v2])?;
    let want = format!("/ipfs/{v2}");
    let up = h.wait(Duration::from_secs(5), |v| v["event"] == "update" && v["value"] == want.as_str())?;
    println!("cairn → Helia through PubSub: {:?} ({up})", t.elapsed());

    // Helia → cairn through PubSub: cairn's cached record has an hour to live, so only
    // PubSub can bring the new one this fast.
    let hv2 = format!("/ipfs/{}", add(&a, "helia v2\n")?);
    let t = Instant::now();
    h.request(json!({"op": "publish", "value": hv2, "ttlMs": HOUR_MS}), Duration::from_secs(60))?;
    let seen = wait_for(Duration::from_secs(5), || {
        let p = a.ok(&["name", "resolve", &helia_name]).ok()?;
        (p.trim() == hv2).then(Instant::now)
    })
    .context("cairn never saw Helia's new version through PubSub")?;
    println!("Helia → cairn through PubSub: {:?}", seen - t);

    // Fetch, cairn serving: Helia joins a new name's topic and asks its peers (cairn, which
    // publishes the name) for the record over /libp2p/fetch/0.0.1.
    let other = serde_json::from_str::<Value>(&a.ok(&["key", "gen", "other", "--json"])?)?["Id"]
        .as_str()
        .context("Id")?
        .to_string();
    let v3 = add(&a, "fetched\n")?;
    a.ok(&["name", "publish", "--key", "other", "--ttl", "1h", &v3])?;
    let sub = h.request(json!({"op": "subscribe", "name": other}), Duration::from_secs(30))?;
    assert_eq!(sub["fetched"]["value"], format!("/ipfs/{v3}").as_str(), "Helia fetched from cairn: {sub}");

    // Fetch, cairn asking: a record Helia keeps to itself (not in the DHT) on a topic Helia
    // joined; cairn, resolving the name, finds nothing in the DHT but fetches it from Helia.
    let hv3 = format!("/ipfs/{}", add(&a, "helia offline\n")?);
    let own = h.request(
        json!({"op": "publish", "value": hv3, "ttlMs": HOUR_MS, "offline": true, "keySeed": "a second helia key"}),
        Duration::from_secs(30),
    )?;
    let second = own["name"].as_str().context("name")?.to_string();
    h.request(json!({"op": "subscribe", "name": second}), Duration::from_secs(30))?;
    let got = wait_for(Duration::from_secs(20), || {
        let p = a.ok(&["name", "resolve", &second]).ok()?;
        (p.trim() == hv3).then_some(p)
    })
    .context("cairn never fetched the record Helia kept")?;
    assert_eq!(got.trim(), hv3);
    Ok(())
}
