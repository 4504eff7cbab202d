//! The survival check (`cairn health`): does every block of a DAG live on enough independent,
//! live hosts that losing any one of them loses nothing?
//!
//! 1. The DAG's blocks are enumerated from the root: blocks with links are read from the
//!    store or fetched; raw leaves are known from their parents and never fetched.
//! 2. Candidate holders are gathered: DHT providers of the root and, for a name, the nodes
//!    that announce themselves as its followers ([`crate::names::followers_key`]) and its
//!    PubSub topic's peers. This node never counts itself.
//! 3. Each candidate is connected and asked, live, with Bitswap want-haves (sendDontHave,
//!    cancelled once answered): first the root, then, if it has the root, every block in
//!    batches of at most [`BATCH`]. A candidate that cannot be reached, or does not answer in
//!    time, holds nothing.
//! 4. Hosts are independent only when their IP addresses differ too: peers behind one
//!    address count as one host. A candidate's address is that of a connection this node
//!    dialled (where the peer is reachable; a peer connected only inbound is dialled for it),
//!    else the one it connected from. Per block, the independent live hosts that hold it are
//!    counted; the fewest over all blocks decides the verdict.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cairn_protocol::names::Name;
use cairn_protocol::Cid;
use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::bitswap::{FetchError, Session};
use crate::dag;
use crate::node::Node;
use crate::store::{key_of, StoreError};

/// Want-haves per Bitswap message of a probe.
pub const BATCH: usize = 1024;

/// How long a candidate may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a candidate may take to answer one batch.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the provider searches may take.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Candidates asked at most (DHT provider searches return up to 20 per key anyway).
const MAX_CANDIDATES: usize = 64;

/// Candidates asked at once.
const PARALLEL: usize = 16;

/// Blocks fetched at once while enumerating the DAG.
const WALK_WINDOW: usize = 64;

/// Blocks listed as the weakest in a report.
const WEAKEST: usize = 10;

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A block of the DAG could not be fetched.
    #[error("enumerating the DAG: {0}")]
    Fetch(#[from] FetchError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block could not be parsed for links.
    #[error(transparent)]
    Dag(#[from] dag::DagError),
}

/// One independent host: the peers seen at one IP address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Host {
    /// The IP address (or, without one, the peer ID).
    pub address: String,
    /// Its peers that hold the root.
    pub peers: Vec<String>,
    /// Blocks of the DAG that one of them holds.
    pub blocks: u64,
}

/// A block and its independent live holders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockHolders {
    /// The block.
    pub cid: String,
    /// Independent live hosts holding it.
    pub holders: u32,
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    /// The DAG's root.
    pub root: String,
    /// Blocks in the DAG.
    pub blocks: u64,
    /// Independent hosts holding the whole DAG.
    pub holders: u32,
    /// The fewest independent live hosts holding any one block.
    pub min_holders: u32,
    /// Whether losing any single host loses no block (`MinHolders` ≥ 2).
    pub survives_single_loss: bool,
    /// Candidate holders found (providers, followers, topic peers), this node left out.
    pub candidates: u32,
    /// Candidates that could not be reached or did not answer.
    pub unreachable: u32,
    /// Why each unreachable candidate was: `{peer}: {reason}`.
    #[serde(default)]
    pub unreachable_peers: Vec<String>,
    /// Candidates reached that do not hold the root.
    pub without_root: u32,
    /// The hosts holding the root, most blocks first.
    pub hosts: Vec<Host>,
    /// The blocks with the fewest holders (up to 10), fewest first.
    pub weakest: Vec<BlockHolders>,
    /// How long the check took, in milliseconds.
    pub millis: u64,
    /// Problems to act on besides the count (a name's record about to expire).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Every block of the DAG under `root`, root first; blocks with links come from the store
/// or the network, raw leaves are not fetched.
pub(crate) async fn enumerate(node: &Node, session: &Session, root: Cid) -> Result<Vec<Cid>, HealthError> {
    let store = node.store().handle();
    let mut seen: HashSet<Vec<u8>> = HashSet::from([key_of(&root)]);
    let mut order = vec![root];
    let mut todo = vec![root];
    let mut inflight = FuturesUnordered::new();
    loop {
        while inflight.len() < WALK_WINDOW {
            let Some(cid) = todo.pop() else { break };
            if cid.codec() == cairn_protocol::cids::RAW {
                continue;
            }
            let (store, session) = (store.clone(), session.clone());
            inflight.push(async move {
                let data = match store.get(cid).await? {
                    Some(b) => b,
                    None => session.get(cid).await?,
                };
                Ok::<_, HealthError>((cid, data))
            });
        }
        let Some(next) = inflight.next().await else { break };
        let (cid, data) = next?;
        for child in dag::links(&cid, &data)? {
            if seen.insert(key_of(&child)) {
                order.push(child);
                todo.push(child);
            }
        }
    }
    Ok(order)
}

/// The peers that may hold `root`: its providers and, for a name, its followers and topic
/// peers; never this node.
pub(crate) async fn candidates(node: &Node, root: Cid, name: Option<Name>) -> Vec<PeerId> {
    let net = node.net();
    let mut keys = vec![root];
    if let Some(n) = &name {
        keys.push(crate::names::followers_key(n));
    }
    let mut found: Vec<PeerId> = Vec::new();
    let searches = keys.into_iter().map(|k| async move {
        let mut peers = Vec::new();
        if let Ok(mut rx) = net.find_providers(k, MAX_CANDIDATES).await {
            let _ = tokio::time::timeout(SEARCH_TIMEOUT, async {
                while let Some(p) = rx.recv().await {
                    peers.push(p);
                }
            })
            .await;
        }
        peers
    });
    for peers in futures::future::join_all(searches).await {
        found.extend(peers);
    }
    if let Some(n) = &name {
        found.extend(net.pubsub_peers(n.pubsub_topic()).await.unwrap_or_default());
    }
    let me = net.local_peer_id();
    let mut seen = HashSet::new();
    found.retain(|p| *p != me && seen.insert(*p));
    found.truncate(MAX_CANDIDATES);
    found
}

/// What one candidate said.
enum Answer {
    /// Not reachable, or silent about the root: why.
    Unreachable(String),
    /// Reached; does not hold the root.
    NoRoot,
    /// Holds the root: the indices of the blocks it holds, and its address.
    Holds(Vec<usize>, Option<Multiaddr>),
}

/// Ask `peer` which of `blocks` it holds, live.
async fn ask(node: &Node, peer: PeerId, blocks: &[Cid], index: &HashMap<Vec<u8>, usize>) -> Answer {
    let net = node.net();
    let connect = |addrs: Vec<Multiaddr>| async move {
        match tokio::time::timeout(CONNECT_TIMEOUT, net.connect(peer, addrs)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        }
    };
    if let Err(first) = connect(Vec::new()).await {
        // No address that works is known here: ask the DHT where the peer is now.
        let found = tokio::time::timeout(CONNECT_TIMEOUT, net.find_peer(peer)).await;
        let addrs = found.ok().and_then(Result::ok).unwrap_or_default();
        if addrs.is_empty() {
            return Answer::Unreachable(first);
        }
        if let Err(e) = connect(addrs).await {
            return Answer::Unreachable(e);
        }
    }
    let bitswap = node.bitswap();
    let root = match bitswap.probe(peer, vec![blocks[0]], ANSWER_TIMEOUT).await {
        Ok(a) => a,
        Err(e) => return Answer::Unreachable(e.to_string()),
    };
    match root.first() {
        None => return Answer::Unreachable(format!("no answer about the root within {ANSWER_TIMEOUT:?}")),
        Some((_, false)) => return Answer::NoRoot,
        Some((_, true)) => {}
    }
    let mut held = vec![0];
    for batch in blocks[1..].chunks(BATCH) {
        let Ok(answers) = bitswap.probe(peer, batch.to_vec(), ANSWER_TIMEOUT).await else { break };
        held.extend(answers.iter().filter(|(_, have)| *have).filter_map(|(c, _)| index.get(&c.hash().to_bytes())));
    }
    let addr = net
        .peers()
        .await
        .ok()
        .and_then(|ps| ps.into_iter().find(|p| p.peer == peer.to_string()))
        .and_then(|p| p.addr.parse().ok());
    Answer::Holds(held, addr)
}

/// The independent host a peer reached at `addr` belongs to: its IP address, else its ID.
fn host_of(peer: &PeerId, addr: Option<&Multiaddr>) -> String {
    let ip = addr.and_then(|a| {
        a.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })
    });
    ip.map_or_else(|| peer.to_string(), |ip| ip.to_string())
}

/// Run the check on the DAG under `root` (`name`: the name it was resolved from).
pub(crate) async fn check(node: &Node, root: Cid, name: Option<Name>) -> Result<Report, HealthError> {
    let started = Instant::now();
    let session = node.bitswap().session();
    let (blocks, peers) = tokio::join!(enumerate(node, &session, root), candidates(node, root, name));
    let blocks = blocks?;
    // Answers name blocks by multihash (a peer may use the other CID version).
    let index: HashMap<Vec<u8>, usize> = blocks.iter().enumerate().map(|(i, c)| (c.hash().to_bytes(), i)).collect();
    let mut answers: FuturesUnordered<_> = FuturesUnordered::new();
    let mut queue = peers.iter().copied();
    let (mut unreachable, mut without_root) = (Vec::new(), 0u32);
    // host → (peers, per-block holding)
    let mut hosts: BTreeMap<String, (Vec<String>, Vec<bool>)> = BTreeMap::new();
    loop {
        while answers.len() < PARALLEL {
            let Some(peer) = queue.next() else { break };
            let blocks = &blocks;
            let index = &index;
            answers.push(async move { (peer, ask(node, peer, blocks, index).await) });
        }
        let Some((peer, answer)) = answers.next().await else { break };
        match answer {
            Answer::Unreachable(why) => unreachable.push(format!("{peer}: {why}")),
            Answer::NoRoot => without_root += 1,
            Answer::Holds(held, addr) => {
                let host = hosts
                    .entry(host_of(&peer, addr.as_ref()))
                    .or_insert_with(|| (Vec::new(), vec![false; blocks.len()]));
                host.0.push(peer.to_string());
                for i in held {
                    host.1[i] = true;
                }
            }
        }
    }
    let mut per_block = vec![0u32; blocks.len()];
    for (_, holding) in hosts.values() {
        for (i, h) in holding.iter().enumerate() {
            per_block[i] += u32::from(*h);
        }
    }
    let min_holders = per_block.iter().copied().min().unwrap_or(0);
    let mut weakest: Vec<(u32, usize)> = per_block.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    weakest.sort();
    weakest.truncate(WEAKEST);
    let mut host_rows: Vec<Host> = hosts
        .into_iter()
        .map(|(address, (peers, holding))| Host {
            address,
            peers,
            blocks: holding.iter().filter(|h| **h).count() as u64,
        })
        .collect();
    host_rows.sort_by(|a, b| b.blocks.cmp(&a.blocks).then_with(|| a.address.cmp(&b.address)));
    let whole = blocks.len() as u64;
    Ok(Report {
        root: root.to_string(),
        blocks: whole,
        holders: host_rows.iter().filter(|h| h.blocks == whole).count() as u32,
        min_holders,
        survives_single_loss: min_holders >= 2,
        candidates: peers.len() as u32,
        unreachable: unreachable.len() as u32,
        unreachable_peers: unreachable,
        without_root,
        hosts: host_rows,
        weakest: weakest.into_iter().map(|(n, i)| BlockHolders { cid: blocks[i].to_string(), holders: n }).collect(),
        millis: started.elapsed().as_millis() as u64,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_at_one_ip_address_are_one_host() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let at = |s: &str| s.parse::<Multiaddr>().unwrap();
        assert_eq!(
            host_of(&a, Some(&at("/ip4/127.0.0.3/tcp/4001"))),
            host_of(&b, Some(&at("/ip4/127.0.0.3/udp/9/quic-v1")))
        );
        assert_ne!(
            host_of(&a, Some(&at("/ip4/127.0.0.3/tcp/4001"))),
            host_of(&b, Some(&at("/ip4/127.0.0.4/tcp/4001")))
        );
        assert_eq!(host_of(&a, Some(&at("/ip6/::1/tcp/1"))), "::1");
        // No IP (the memory transport): the peer is its own host.
        assert_ne!(host_of(&a, Some(&at("/memory/5"))), host_of(&b, Some(&at("/memory/5"))));
        assert_eq!(host_of(&a, None), a.to_string());
    }
}
