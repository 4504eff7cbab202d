//! Follow and survival-check figures on in-process cairn nodes over TCP, each on its own
//! loopback address, all in one run:
//! - update propagation: from `name publish` of a new site version to every one of 5
//!   followers holding (fetched, pinned) it, with IPNS over PubSub and with polling every 2 s
//!   (PubSub off); anchored on the time until every follower's name service has the new
//!   record, the part of propagation that is not fetching and pinning;
//! - `health` of a 10,000-block DAG held by 5 nodes, asked from a sixth; anchored on one DHT
//!   provider lookup of the root (all that `dht findprovs` can tell, dead providers included).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::importer::{self, AddOptions};
use cairn_node::node::Node;
use cairn_node::ops::follow::{FollowAdd, FollowStatus};
use cairn_node::ops::health::Health;
use cairn_node::ops::{self, Op};
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::names::Name;
use cairn_protocol::Cid;

use super::Ctx;
use crate::measure;
use crate::report::Row;

const FOLLOWERS: usize = 5;
const HOLDERS: usize = 5;
const TTL: Duration = Duration::from_secs(3600);
const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Add `data` as one file on `node` (pinned); its root.
fn add_bytes(node: &Node, data: Vec<u8>, chunk: Option<usize>) -> Result<Cid> {
    let mut opts = AddOptions::default();
    if let Some(n) = chunk {
        opts.settings.chunker = ChunkerSpec::Fixed(n);
    }
    let added = importer::add_reader(node.store(), std::io::Cursor::new(data), "site", &opts, &mut |_| {}, &|_| {})?;
    Ok(added.last().context("a root")?.cid)
}

/// Run an operation on a node.
async fn op<O: Op>(o: O, node: &Arc<Node>) -> Result<O::Output> {
    o.run(ops::Ctx::Online(node.clone())).await.map_err(|e| anyhow::anyhow!("{}: {}", O::NAME, e.message()))
}

/// Whether every follower holds `root` (the label is the name).
async fn all_hold(followers: &[Arc<Node>], label: &str, root: &Cid) -> Result<bool> {
    for f in followers {
        let rows = op(FollowStatus { which: vec![label.to_string()] }, f).await?;
        if rows.0.first().and_then(|r| r.held.as_ref()).map(|h| h.cid.as_str()) != Some(root.to_string().as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Publish→held by every follower, and publish→record at every follower, per run.
async fn propagation(ctx: &Ctx, pubsub: bool, first_ip: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let dir = tempfile::tempdir_in(&ctx.work)?;
    let nodes: Vec<Arc<Node>> =
        super::loopback_testnet(dir.path(), 1 + FOLLOWERS, first_ip, pubsub).await?.into_iter().map(Arc::new).collect();
    let (publisher, followers) = (&nodes[0], &nodes[1..]);
    let name = Name::new(publisher.repo().keystore().generate("site")?.id.peer_id());
    let label = name.to_string();
    let mut version = 0u8;
    let mut next_version = |node: &Node| -> Result<Cid> {
        version += 1;
        let mut site = crate::figures::random_bytes(2 << 20);
        site[0] = version;
        add_bytes(node, site, None)
    };
    let v = next_version(publisher)?;
    publisher.names().publish("site", format!("/ipfs/{v}"), LIFETIME, TTL).await?;
    for f in followers {
        op(FollowAdd { target: label.clone(), label: None, max_bytes: None }, f).await?;
    }
    let start = Instant::now();
    while !all_hold(followers, &label, &v).await? {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the followers never held the first version");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut held, mut seen) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs.max(3) {
        let v = next_version(publisher)?;
        let value = format!("/ipfs/{v}");
        let (names, val) = (publisher.names().clone(), value.clone());
        let t = Instant::now();
        let publishing = tokio::spawn(async move { names.publish("site", val, LIFETIME, TTL).await });
        let mut record_at = None;
        loop {
            if record_at.is_none() {
                let mut all = true;
                for f in followers {
                    // The cache only: no lookup of ours may speed a follower up.
                    let now = f.names().resolve(name, false).await.map(|r| r.value).unwrap_or_default();
                    all &= now == value;
                }
                if all {
                    record_at = Some(t.elapsed());
                }
            }
            if all_hold(followers, &label, &v).await? {
                held.push(ms(t.elapsed()));
                seen.push(ms(record_at.unwrap_or_else(|| t.elapsed())));
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("the followers never held version {v}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        publishing.await??;
    }
    for n in &nodes {
        n.shutdown().await;
    }
    Ok((held, seen))
}

/// `health` of a 10,000-block DAG on 5 holders, asked from a sixth node; and one provider
/// lookup of its root from there.
async fn health(ctx: &Ctx, first_ip: usize) -> Result<(Vec<f64>, Vec<f64>, u64)> {
    let dir = tempfile::tempdir_in(&ctx.work)?;
    let nodes: Vec<Arc<Node>> =
        super::loopback_testnet(dir.path(), 1 + HOLDERS, first_ip, true).await?.into_iter().map(Arc::new).collect();
    let (checker, holders) = (&nodes[0], &nodes[1..]);
    // 10,000 leaves of 1 KiB (and 58 file nodes above them), added on every holder.
    let data = crate::figures::random_bytes(10_000 * 1024);
    let mut root = None;
    for h in holders {
        let r = add_bytes(h, data.clone(), Some(1024))?;
        h.announce(vec![r]).await;
        root = Some(r);
    }
    let root = root.context("a root")?;
    // The checker can find every holder before the clock starts.
    let start = Instant::now();
    loop {
        let mut found = checker.net().find_providers(root, 20).await?;
        let mut n = 0;
        while found.recv().await.is_some() {
            n += 1;
        }
        if n >= HOLDERS {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("only {n} of {HOLDERS} holders announced the DAG");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut checks, mut lookups) = (Vec::new(), Vec::new());
    let mut blocks = 0;
    for _ in 0..ctx.runs.max(3) {
        let t = Instant::now();
        let r = op(Health { path: root.to_string(), min: 2 }, checker).await?;
        checks.push(ms(t.elapsed()));
        if r.min_holders as usize != HOLDERS || r.blocks < 10_000 {
            bail!("health counted {} holders of {} blocks: {r:?}", r.min_holders, r.blocks);
        }
        blocks = r.blocks;
        let t = Instant::now();
        let mut found = checker.net().find_providers(root, 20).await?;
        while found.recv().await.is_some() {}
        lookups.push(ms(t.elapsed()));
    }
    for n in &nodes {
        n.shutdown().await;
    }
    Ok((checks, lookups, blocks))
}

/// The follow and health rows.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let (held, seen) = propagation(ctx, true, 40).await?;
    let (polled, polled_seen) = propagation(ctx, false, 50).await?;
    let (checks, lookups, blocks) = health(ctx, 60).await?;
    let row = |figure: String, v: &[f64], anchor: &str, a: &[f64]| {
        Row::of(figure, "ms", measure::stats(v), anchor, Some(measure::stats(a).0), v.len())
    };
    Ok(vec![
        row(format!("follow: publish→held by all {FOLLOWERS}, PubSub, 2 MiB"), &held, "record at all", &seen),
        row(format!("follow: publish→held by all {FOLLOWERS}, polling 2 s"), &polled, "record at all", &polled_seen),
        row(format!("health: {blocks} blocks, {HOLDERS} holders"), &checks, "one DHT provider lookup", &lookups),
    ])
}
