//! DHT figures over in-process testnets (the memory transport, one process):
//! - time to first byte of a 1 KiB file fetched by a node never connected to its provider,
//!   found through a 20-node DHT, against the DHT provider lookup alone in the same testnet;
//! - time until 100,000 keys announced by one node into a 50-node DHT are findable (our
//!   batched sweep), against libp2p-kad's one walk per key, extrapolated from a sample.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::exporter;
use cairn_node::importer::{self, AddOptions};
use cairn_node::net::Network;
use cairn_node::node::Node;
use cairn_node::provider::sweep;
use cairn_node::testnet;
use cairn_protocol::cids::{cid_for, HashFn, RAW};
use cairn_protocol::Cid;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::measure;
use crate::report::Row;

/// Time to first byte through a 20-node DHT, in milliseconds.
pub async fn ttfb(ctx: &Ctx) -> Result<Vec<Row>> {
    const NODES: usize = 20;
    let dir = tempfile::tempdir_in(&ctx.work)?;
    let nodes: Vec<Node> = testnet::nodes(dir.path(), NODES, |_| {}).await?;

    let runs = ctx.runs.max(3);
    let (mut ours, mut lookup) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // A fresh 1 KiB file on the adder each run; two strangers: one only looks the
        // provider up, the other fetches the file.
        let (adder, looker, fetcher) = (7 + run % 5, 12 + run % 3, 16 + run % 4);
        let data: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
        let store = nodes[adder].store().clone();
        let added = tokio::task::spawn_blocking(move || {
            importer::add_reader(&store, &data[..], "", &AddOptions::default(), &mut |_| {}, &|_| {})
        })
        .await??;
        let root = added.last().context("a root")?.cid;
        let adder_id = nodes[adder].net().local_peer_id();
        nodes[adder].net().provide(root).await.context("providing the root")?;
        // Make both strangers: DHT traffic may connect them to the adder again, so disconnect
        // until the connection stays down.
        for s in [looker, fetcher] {
            let mut stranger = false;
            for _ in 0..100 {
                nodes[s].net().disconnect(adder_id).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if !nodes[s].net().is_connected(adder_id).await? {
                    stranger = true;
                    break;
                }
            }
            if !stranger {
                bail!("node {s} stays connected to the adder");
            }
        }

        let t = Instant::now();
        let mut found = nodes[looker].net().find_providers(root, 1).await?;
        let first = tokio::time::timeout(Duration::from_secs(30), found.recv()).await.context("provider lookup")?;
        if first != Some(adder_id) {
            bail!("the lookup found {first:?}, not the adder");
        }
        lookup.push(t.elapsed().as_secs_f64() * 1000.0);

        if nodes[fetcher].net().is_connected(adder_id).await? {
            nodes[fetcher].net().disconnect(adder_id).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut fetch = nodes[fetcher].fetcher();
        let t = Instant::now();
        let got = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let mut out = Vec::new();
                exporter::cat_from(&mut fetch, &root.to_string(), 0, Some(1), &mut out)?;
                Ok(out)
            }),
        )
        .await
        .context("fetch timed out")???;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        if got.len() != 1 {
            bail!("the first byte did not arrive");
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(vec![Row::of(
        "TTFB 1 KiB, 20-node DHT, stranger".into(),
        "ms",
        measure::stats(&ours),
        "DHT provider lookup",
        Some(measure::stats(&lookup).0),
        runs,
    )])
}

/// Time until `keys` keys announced into a `nodes`-node DHT are findable, in seconds.
pub async fn provide(ctx: &Ctx) -> Result<Vec<Row>> {
    let (nodes, keys, sample) = if ctx.quick { (20usize, 5_000u32, 200u32) } else { (50, 100_000, 1_000) };
    let shutdown = CancellationToken::new();
    let nets: Vec<Network> = testnet::networks(nodes, &shutdown).await?;
    let salt: u64 = rand::random();
    let key = |i: u32| {
        cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &[salt.to_be_bytes(), u64::from(i).to_be_bytes()].concat())
    };

    // Ours: one sweep of every key, then a check that a spread of them is findable.
    let provider = &nets[3];
    let cids: Vec<Cid> = (0..keys).map(key).collect();
    let t = Instant::now();
    let report = sweep::sweep(provider, cids.clone()).await?;
    let sweep_secs = t.elapsed().as_secs_f64();
    if !report.failed.is_empty() {
        bail!("{} of {keys} keys were not announced", report.failed.len());
    }
    let asker = &nets[nodes - 3];
    let step = (keys / 100).max(1) as usize;
    for cid in cids.iter().step_by(step) {
        let mut found = asker.find_providers(*cid, 1).await?;
        let p = tokio::time::timeout(Duration::from_secs(20), found.recv()).await.context("provider search")?;
        if p != Some(provider.local_peer_id()) {
            bail!("key {cid} is not findable after the sweep");
        }
    }

    // The anchor: libp2p-kad's providing, one DHT walk per key (16 at a time), on a sample.
    let other = &nets[5];
    let sample_cids: Vec<Cid> = (keys..keys + sample).map(key).collect();
    let t = Instant::now();
    let results: Vec<_> =
        futures::stream::iter(sample_cids.iter().map(|c| other.provide(*c))).buffer_unordered(16).collect().await;
    let per_key = t.elapsed().as_secs_f64() / f64::from(sample);
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        bail!("per-key providing failed: {e}");
    }
    shutdown.cancel();
    Ok(vec![Row::of(
        format!("provide {keys} keys into {nodes} nodes, until findable"),
        "s",
        (sweep_secs, sweep_secs, sweep_secs),
        &format!("kad per-key walks (x{sample} extrapolated)"),
        Some(per_key * f64::from(keys)),
        1,
    )])
}
