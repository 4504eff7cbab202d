//! Batched providing over an in-process DHT (memory transport): many keys announced with a few
//! DHT walks, and every key then found through the DHT by another node.

use std::time::Duration;

use anyhow::{Context, Result};
use cairn_node::provider::sweep;
use cairn_node::testnet;
use cairn_protocol::cids::{cid_for, HashFn, RAW};
use tokio_util::sync::CancellationToken;

const NODES: usize = 20;
const KEYS: u32 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_keys_take_a_few_walks_and_are_all_findable() -> Result<()> {
    let shutdown = CancellationToken::new();
    let nets = testnet::networks(NODES, &shutdown).await?;

    let cids: Vec<_> = (0..KEYS).map(|i| cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &i.to_be_bytes())).collect();
    let provider = &nets[3];
    let report = tokio::time::timeout(Duration::from_secs(120), sweep::sweep(provider, cids.clone())).await??;
    assert_eq!(report.failed.len(), 0, "every key announced: {report:?}");
    assert_eq!(report.announced.len(), KEYS as usize);
    assert!(report.walks <= 8, "{} keys took {} walks", KEYS, report.walks);

    // Another node finds the provider of every 40th key through the DHT.
    let asker = &nets[17];
    for cid in cids.iter().step_by(40) {
        let mut found = asker.find_providers(*cid, 1).await?;
        let p = tokio::time::timeout(Duration::from_secs(20), found.recv()).await.context("provider search")?;
        assert_eq!(p, Some(provider.local_peer_id()), "provider of {cid}");
    }
    shutdown.cancel();
    Ok(())
}
