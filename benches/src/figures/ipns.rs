//! IPNS figures on a 20-node testnet of in-process cairn nodes over TCP on loopback, with a
//! real Helia 7 peer (`tests/helia-ipns`) joined to it, all in one run:
//! - `name resolve` of a freshly published name by a node that never resolved it (cold), and
//!   again (cached), against Helia resolving the same name the same ways;
//! - publish-to-seen through PubSub (a follower's answer changes), cairn to cairn, against
//!   cairn to Helia.
//!
//! Times are taken inside each process (cairn: around `Names::resolve`; Helia: its own
//! `resolve` timing), so neither side pays for process start or pipes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_protocol::names::Name;
use serde_json::{json, Value};

use super::Ctx;
use crate::measure;
use crate::report::Row;

const NODES: usize = 20;
const TTL: Duration = Duration::from_secs(3600);
const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The Helia IPNS peer, driven by JSON lines.
struct Helia {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<(Instant, Value)>,
    next: u64,
    peer: String,
}

impl Helia {
    fn start(ctx: &Ctx) -> Result<Helia> {
        let setup = ctx.root.join("scripts/helia-ipns-setup.sh");
        let out = Command::new("bash").arg(setup).stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            bail!("helia-ipns-setup.sh failed");
        }
        let dir = String::from_utf8(out.stdout)?.trim().lines().last().context("no path")?.to_string();
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("ipns-peer.mjs")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send((Instant::now(), v)).is_err() {
                        break;
                    }
                }
            }
        });
        let mut h = Helia { child, stdin, events, next: 0, peer: String::new() };
        let (_, ready) = h.wait(Duration::from_secs(60), |v| v["event"] == "ready")?;
        h.peer = ready["peerId"].as_str().unwrap_or_default().to_string();
        Ok(h)
    }

    /// The first event matching `f` within `timeout`; the others seen meanwhile are named in
    /// the error if none matches.
    fn wait(&mut self, timeout: Duration, f: impl Fn(&Value) -> bool) -> Result<(Instant, Value)> {
        let end = Instant::now() + timeout;
        let mut other = Vec::new();
        loop {
            let Ok((at, v)) = self.events.recv_timeout(end.saturating_duration_since(Instant::now())) else {
                bail!("no such event from Helia within {timeout:?}; it said {other:?}");
            };
            if f(&v) {
                return Ok((at, v));
            }
            other.push(v);
        }
    }

    fn ask(&mut self, mut cmd: Value) -> Result<Value> {
        self.next += 1;
        let id = self.next;
        cmd["id"] = json!(id);
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let (_, v) = self
            .wait(Duration::from_secs(60), |v| v["id"] == id)
            .with_context(|| format!("Helia's answer to {cmd}"))?;
        if v["event"] == "error" {
            bail!("Helia: {v}");
        }
        Ok(v)
    }
}

impl Drop for Helia {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The IPNS rows.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir_in(&ctx.work)?;
    let nodes = super::loopback_testnet(dir.path(), NODES, 10, true).await?;
    let mut helia = Helia::start(ctx)?;
    // Helia joins through the last node. It does no PubSub topic discovery (cairn and kubo
    // find a topic's peers through the DHT), so it is also connected to the publisher, as a
    // follower that knows the publisher's address would be.
    for entry in [nodes[NODES - 1].net(), nodes[0].net()] {
        let addr = entry.addrs().await?.into_iter().next().context("an address")?;
        helia.ask(json!({"op": "connect", "addr": format!("{addr}/p2p/{}", entry.local_peer_id())}))?;
    }

    let runs = ctx.runs.max(5);
    let publisher = &nodes[0];
    let ks = publisher.repo().keystore();
    let (mut cold, mut cached, mut h_cold, mut h_cached, mut seen, mut h_seen) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // A new name each run, resolved cold by a node that never saw it asked for.
        let key = format!("bench-{run}");
        let name = Name::new(ks.generate(&key)?.id.peer_id());
        publisher.names().publish(&key, format!("/ipfs/bafkqaaa/{run}"), LIFETIME, TTL).await?;
        let reader = &nodes[1 + run % (NODES - 2)];
        let t = Instant::now();
        let r = reader.names().resolve(name, true).await?;
        cold.push(ms(t.elapsed()));
        if r.value != format!("/ipfs/bafkqaaa/{run}") {
            bail!("cold resolve gave {}", r.value);
        }
        let t = Instant::now();
        reader.names().resolve(name, false).await?;
        cached.push(ms(t.elapsed()));

        let v = helia.ask(json!({"op": "resolve", "name": name.to_string(), "nocache": true}))?;
        h_cold.push(v["ms"].as_f64().context("Helia's resolve time")?);
        let v = helia.ask(json!({"op": "resolve", "name": name.to_string()}))?;
        h_cached.push(v["ms"].as_f64().context("Helia's resolve time")?);

        // A new version: how long until the follower (the reader, which resolved the name)
        // and Helia (watching it) have it.
        helia.ask(json!({"op": "watch", "name": name.to_string()}))?;
        // Wait until the publisher knows both followers' subscriptions.
        let topic = name.pubsub_topic();
        let mut known = Vec::new();
        for _ in 0..200 {
            known = publisher.net().pubsub_peers(topic.clone()).await?.iter().map(|p| p.to_string()).collect();
            if known.contains(&helia.peer) && known.contains(&reader.net().local_peer_id().to_string()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if !known.contains(&helia.peer) {
            bail!("the publisher never learnt Helia's subscription (topic peers {known:?})");
        }
        let value = format!("/ipfs/bafkqaaa/{run}/v2");
        // Publishing returns once the DHT walk storing the record ended; the followers are
        // watched meanwhile.
        let (names, k, v) = (publisher.names().clone(), key.clone(), value.clone());
        let t = Instant::now();
        let publishing = tokio::spawn(async move { names.publish(&k, v, LIFETIME, TTL).await });
        let mut reader_at = None;
        for _ in 0..5000 {
            if reader.names().resolve(name, false).await?.value == value {
                reader_at = Some(t.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen.push(ms(reader_at.context("the follower never saw the new version")?));
        publishing.await??;
        let (at, _) = helia
            .wait(Duration::from_secs(10), |v| v["event"] == "update" && v["value"] == value.as_str())
            .with_context(|| format!("Helia never saw the new version (run {run})"))?;
        h_seen.push(ms(at.saturating_duration_since(t)));
    }
    drop(helia);
    for n in nodes {
        n.shutdown().await;
    }
    let row = |figure: &str, unit: &str, v: &[f64], anchor: &str, a: &[f64]| {
        Row::of(figure.into(), unit, measure::stats(v), anchor, Some(measure::stats(a).0), runs)
    };
    let us = |v: &[f64]| v.iter().map(|x| x * 1000.0).collect::<Vec<_>>();
    Ok(vec![
        row("IPNS resolve cold, 20-node DHT", "ms", &cold, "Helia, same name", &h_cold),
        row("IPNS resolve cached", "µs", &us(&cached), "Helia, same name", &us(&h_cached)),
        row("IPNS publish→seen, PubSub, cairn→cairn", "ms", &seen, "cairn→Helia", &h_seen),
    ])
}
