//! The DHT and Bitswap together, in one process over the memory transport: a file added on one
//! node is found through the DHT and fetched, byte for byte, by a node that was never connected
//! to the adder before it asked; IPNS records are validated, replaced by newer ones and
//! resolved by other nodes.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_node::exporter;
use cairn_node::importer::{self, AddOptions};
use cairn_node::net::NetError;
use cairn_node::node::Node;
use cairn_node::testnet;
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::records::{self, RecordError};
use libp2p::identity::Keypair;

/// Nodes in the testnet.
const NODES: usize = 20;

/// Wait (bounded) until `f` is true.
async fn eventually(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} not reached within {timeout:?}")
}

/// `n` DHT servers, bootstrapped through the first, routing tables filled; provider searches
/// start after 200 ms.
async fn testnet(dir: &tempfile::TempDir, n: usize) -> Result<Vec<Node>> {
    Ok(testnet::nodes(dir.path(), n, |o| o.bitswap.provider_search_delay = Duration::from_millis(200)).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_found_through_the_dht_and_fetched_by_a_stranger() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nodes = testnet(&dir, NODES).await?;

    // The adder: a multi-level DAG (4 KiB chunks, 8 links per node).
    let (adder, fetcher) = (7, NODES - 1);
    let data = cairn_tests::prng(300_000);
    let mut opts = AddOptions::default();
    opts.settings.chunker = ChunkerSpec::parse("size-4096")?;
    opts.settings.max_links = 8;
    let store = nodes[adder].store().clone();
    let bytes = data.clone();
    let added =
        tokio::task::spawn_blocking(move || importer::add_reader(&store, &bytes[..], "", &opts, &mut |_| {}, &|_| {}))
            .await??;
    let root = added.last().context("a root")?.cid;
    let adder_id = nodes[adder].net().local_peer_id();

    // A stranger: drop any connection DHT traffic made to the adder, then ask.
    nodes[fetcher].net().disconnect(adder_id).await?;
    eventually("fetcher disconnected from adder", Duration::from_secs(10), async || {
        !nodes[fetcher].net().is_connected(adder_id).await.unwrap_or(true)
    })
    .await?;
    nodes[adder].net().provide(root).await.context("providing the root")?;
    assert!(!nodes[fetcher].store().has(&root)?, "the fetcher starts without the file");

    let mut fetch = nodes[fetcher].fetcher();
    let path = root.to_string();
    let got = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let mut out = Vec::new();
            exporter::cat_from(&mut fetch, &path, 0, None, &mut out)?;
            Ok(out)
        }),
    )
    .await
    .context("fetch timed out")???;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "fetched bytes differ");
    assert!(nodes[fetcher].net().is_connected(adder_id).await?, "the fetch dialled the provider it found");
    assert!(nodes[fetcher].store().has(&root)?, "fetched blocks are stored");

    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipns_records_are_validated_replaced_and_resolved() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nodes = testnet(&dir, 6).await?;
    let name_key = Keypair::generate_ed25519();
    let name = name_key.public().to_peer_id();
    let key = records::ipns_key(&name);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i128;
    let hour = 3_600_000_000_000i128;
    let record = |seq, eol, value: &[u8]| records::create_ipns(&name_key, value, seq, eol, 60_000_000_000);

    // Published on one node, resolved on another.
    let first = record(1, now + hour, b"/ipfs/bafkqaaa")?;
    nodes[1].net().put_value(key.clone(), first.clone()).await.context("publishing")?;
    assert_eq!(nodes[4].net().get_value(key.clone()).await?, first);

    // A newer sequence replaces it everywhere it was stored; an older one is refused.
    let second = record(2, now + hour, b"/ipfs/bafkqaaa/second")?;
    nodes[2].net().put_value(key.clone(), second.clone()).await.context("republishing")?;
    assert_eq!(nodes[5].net().get_value(key.clone()).await?, second);
    assert!(nodes[2].net().put_value(key.clone(), first.clone()).await.is_err(), "older record accepted");

    // Invalid records are refused before they are stored or sent.
    let expired = record(3, now - hour, b"/ipfs/bafkqaaa")?;
    let err = nodes[3].net().put_value(key.clone(), expired).await.unwrap_err();
    assert!(matches!(err, NetError::InvalidRecord(RecordError::Expired(_))), "{err}");
    let impostor = Keypair::generate_ed25519();
    let forged = records::create_ipns(&impostor, b"/ipfs/bafkqaaa/evil", 9, now + hour, 0)?;
    let err = nodes[3].net().put_value(key.clone(), forged).await.unwrap_err();
    assert!(matches!(err, NetError::InvalidRecord(RecordError::BadSignature)), "{err}");
    assert_eq!(nodes[0].net().get_value(key.clone()).await?, second, "the forged record went nowhere");

    // A public-key record must hash to its peer ID.
    let pk_key = [records::PK_PREFIX, &name.to_bytes()].concat();
    let err = nodes[1].net().put_value(pk_key.clone(), impostor.public().encode_protobuf()).await.unwrap_err();
    assert!(matches!(err, NetError::InvalidRecord(RecordError::KeyMismatch)), "{err}");
    nodes[1].net().put_value(pk_key.clone(), name_key.public().encode_protobuf()).await?;
    assert_eq!(nodes[3].net().get_value(pk_key).await?, name_key.public().encode_protobuf());

    let unknown = records::ipns_key(&Keypair::generate_ed25519().public().to_peer_id());
    assert!(matches!(nodes[2].net().get_value(unknown).await, Err(NetError::NotFound)));
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
