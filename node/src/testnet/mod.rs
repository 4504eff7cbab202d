//! In-process testnets for tests and benchmarks (feature `test-utils`): nodes on the memory
//! transport, each with its own repo, DHT servers bootstrapped through the first one and
//! settled (every routing table holds a peer) before they are handed out.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use tokio_util::sync::CancellationToken;

use crate::net::{self, DhtMode, NetConfig, Network, TransportKind};
use crate::node::{Node, NodeOptions};
use crate::repo::Repo;

pub mod churn;

/// What a testnet could not do (a repo, a node or a swarm failed to start, or the routing
/// tables did not fill in time).
#[derive(Debug, thiserror::Error)]
#[error("testnet: {0}")]
pub struct TestnetError(String);

fn err(e: impl std::fmt::Display) -> TestnetError {
    TestnetError(e.to_string())
}

/// Longest wait for a testnet's routing tables to fill.
pub(crate) const SETTLE: Duration = Duration::from_secs(60);

/// Memory ports handed out so far in this process (the memory transport's ports are
/// process-wide, so parallel tests must not share them).
static NEXT_PORT: AtomicU64 = AtomicU64::new(1 << 20);

/// `n` memory ports no other testnet of this process uses; the first of them.
pub fn fresh_ports(n: u64) -> u64 {
    NEXT_PORT.fetch_add(n.max(1), Ordering::Relaxed)
}

/// A DHT server listening on `/memory/{port}`, no AutoNAT (there is no outside).
pub fn memory_config(port: u64, bootstrap: Vec<Multiaddr>) -> NetConfig {
    NetConfig {
        listen: vec![format!("/memory/{port}").parse().expect("a memory address")],
        // As a public node does (confirmed by AutoNAT or configured): provider records then
        // carry the address, so strangers can dial a provider at once.
        announce: vec![format!("/memory/{port}").parse().expect("a memory address")],
        bootstrap,
        dht_mode: DhtMode::Server,
        transport: TransportKind::Memory,
        autonat: false,
        ..NetConfig::default()
    }
}

/// The address of the node listening on `/memory/{port}`.
pub fn memory_addr(port: u64, peer: libp2p::PeerId) -> Multiaddr {
    format!("/memory/{port}/p2p/{peer}").parse().expect("a memory address")
}

/// `n` full nodes, each with a repo under `dir`, bootstrapped through the first and settled.
/// `tweak` adjusts each node's options (Bitswap timeouts, say) before it starts.
pub async fn nodes(dir: &Path, n: usize, tweak: impl Fn(&mut NodeOptions)) -> Result<Vec<Node>, TestnetError> {
    let base = fresh_ports(n as u64);
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    let mut hub = Vec::new();
    for i in 0..n as u64 {
        let path = dir.join(format!("node-{i}"));
        Repo::init(&path, "local").map_err(err)?;
        let mut opts = NodeOptions { net: Some(memory_config(base + i, hub.clone())), ..NodeOptions::default() };
        tweak(&mut opts);
        let node = Node::start(Repo::open(&path).map_err(err)?, opts).await.map_err(err)?;
        if i == 0 {
            hub = vec![memory_addr(base, node.net().local_peer_id())];
        }
        nodes.push(node);
    }
    let nets: Vec<Network> = nodes.iter().map(|n| n.net().clone()).collect();
    net::settle_testnet(&nets, SETTLE).await.map_err(err)?;
    Ok(nodes)
}

/// `n` bare swarms (no store, no Bitswap), each with its own token (a child of `shutdown`:
/// cancelling it takes that node off the network as a crash would), whose routing tables are
/// filled directly instead of by walks: each node learns, for every bucket, up to `k` (20) peers at that distance,
/// chosen at random, as a table converges to in a long-running network. No connection is made
/// until the nodes talk, so hundreds of nodes start in seconds (walks would take minutes: each
/// one opens dozens of connections, each with a Noise handshake). `tweak` adjusts each node's
/// network settings before it starts.
pub async fn networks_with_tables(
    n: usize,
    shutdown: &CancellationToken,
    tweak: impl Fn(&mut NetConfig),
) -> Result<Vec<(Network, CancellationToken)>, TestnetError> {
    use libp2p::kad::KBucketKey;
    use rand::seq::SliceRandom;
    const K: usize = 20;
    let base = fresh_ports(n as u64);
    let mut nets = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let token = shutdown.child_token();
        let mut cfg = memory_config(base + i, Vec::new());
        tweak(&mut cfg);
        let (net, _task) = net::task::spawn(Keypair::generate_ed25519(), &cfg, token.clone()).map_err(err)?;
        nets.push((net, token));
    }
    let keys: Vec<KBucketKey<libp2p::PeerId>> = nets.iter().map(|(n, _)| KBucketKey::from(n.local_peer_id())).collect();
    let mut rng = rand::thread_rng();
    let mut entries = Vec::new();
    for i in 0..n {
        let mut buckets: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for j in (0..n).filter(|j| *j != i) {
            let bucket = keys[i].distance(&keys[j]).ilog2().unwrap_or(0);
            buckets.entry(bucket).or_default().push(j);
        }
        for (_, mut peers) in buckets {
            peers.shuffle(&mut rng);
            entries.extend(peers.into_iter().take(K).map(|j| (i, j)));
        }
    }
    // All at once: swarms answer while others are still being filled.
    let fills = entries.into_iter().map(|(i, j)| {
        let addr = memory_addr(base + j as u64, nets[j].0.local_peer_id());
        nets[i].0.know_peer(nets[j].0.local_peer_id(), addr)
    });
    for r in futures::future::join_all(fills).await {
        r.map_err(err)?;
    }
    Ok(nets)
}

/// `n` bare swarms (no store, no Bitswap), bootstrapped through the first and settled; they
/// stop when `shutdown` is cancelled.
pub async fn networks(n: usize, shutdown: &CancellationToken) -> Result<Vec<Network>, TestnetError> {
    let base = fresh_ports(n as u64);
    let mut nets: Vec<Network> = Vec::with_capacity(n);
    let mut hub = Vec::new();
    for i in 0..n as u64 {
        let (net, _task) =
            net::task::spawn(Keypair::generate_ed25519(), &memory_config(base + i, hub.clone()), shutdown.clone())
                .map_err(err)?;
        if i == 0 {
            hub = vec![memory_addr(base, net.local_peer_id())];
        }
        nets.push(net);
    }
    net::settle_testnet(&nets, SETTLE).await.map_err(err)?;
    Ok(nets)
}
