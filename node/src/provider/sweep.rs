//! One batched announcement ("sweep"): many keys, few DHT walks.
//!
//! Keys are sorted by their position in the keyspace (SHA-256 of the multihash). One walk
//! towards the first key finds the 20 closest peers. The farthest of them differs from the
//! target at bit `p`; every peer sharing the first `p + 1` bits with the target is nearer than
//! it, so the walk found all of them, and they are the closest peers of every key in that
//! region. For each key of the region the 20 closest of the found peers get an `ADD_PROVIDER`,
//! all of a peer's records written on one stream. Then the next region. A 20-node network is
//! two regions or a few more; the public network, about 2^13 servers, is about 2^10.

use std::collections::HashMap;

use cairn_protocol::dht;
use cairn_protocol::Cid;
use futures::stream::{self, StreamExt};
use futures::AsyncWriteExt;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use sha2::{Digest, Sha256};

use crate::net::behaviour::KAD_PROTOCOL;
use crate::net::{NetError, Network};

/// Peers that store each provider record (Kademlia's k).
pub(crate) const REPLICATION: usize = 20;

/// Peers written to at once during a sweep.
const PEER_CONCURRENCY: usize = 10;
/// Longest the records for one peer may take to write.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A position in the Kademlia keyspace.
type KadKey = [u8; 32];

fn kad_key(preimage: &[u8]) -> KadKey {
    Sha256::digest(preimage).into()
}

fn distance(a: &KadKey, b: &KadKey) -> KadKey {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// How many of `sorted_keys` (in keyspace order, the first being the walk's `target`) the
/// peers a walk towards `target` found are the closest peers of. The farthest found peer
/// differs from the target at bit `p`; every peer sharing `p + 1` bits with the target is
/// nearer, so the walk found them all. A key sharing only `p` bits can have closer peers the
/// walk did not return (a 60-node network lost a tenth of its keys after 30 % churn).
fn region_len<'a>(
    target: &KadKey,
    peers: impl Iterator<Item = &'a KadKey>,
    sorted_keys: impl Iterator<Item = &'a KadKey>,
) -> usize {
    let farthest = peers.map(|p| distance(p, target)).max().unwrap_or([0xff; 32]);
    let prefix = leading_zeros(&farthest) + 1;
    sorted_keys.take_while(|k| leading_zeros(&distance(k, target)) >= prefix).count().max(1)
}

fn leading_zeros(d: &KadKey) -> u32 {
    let mut n = 0;
    for byte in d {
        if *byte == 0 {
            n += 8;
        } else {
            return n + byte.leading_zeros();
        }
    }
    n
}

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys at least one DHT peer accepted a record for.
    pub announced: Vec<Cid>,
    /// Keys no peer took (no peers known, or every write failed).
    pub failed: Vec<Cid>,
    /// DHT walks made.
    pub walks: usize,
    /// Records written to peers.
    pub records: usize,
}

/// Announce `cids` in as few walks as the network's density allows.
pub async fn sweep(net: &Network, cids: Vec<Cid>) -> Result<SweepReport, NetError> {
    let mut keys: Vec<(KadKey, Vec<u8>, Cid)> = cids
        .into_iter()
        .map(|c| {
            let mh = c.hash().to_bytes();
            (kad_key(&mh), mh, c)
        })
        .collect();
    keys.sort_by_key(|k| k.0);
    keys.dedup_by(|a, b| a.0 == b.0);
    let addrs: Vec<Multiaddr> = net.addrs().await?.into_iter().filter(is_announceable).collect();
    net.add_local_providers(keys.iter().map(|k| k.1.clone()).collect(), addrs.clone()).await?;
    let me = net.local_peer_id().to_bytes();
    let my_addrs: Vec<Vec<u8>> = addrs.iter().map(|a| a.to_vec()).collect();

    let mut report = SweepReport::default();
    let mut i = 0;
    while i < keys.len() {
        let target = keys[i].0;
        let peers = net.closest_peers(keys[i].1.clone()).await?;
        report.walks += 1;
        if peers.is_empty() {
            report.failed.extend(keys[i..].iter().map(|k| k.2));
            break;
        }
        let peers: Vec<(PeerId, Vec<Multiaddr>, KadKey)> =
            peers.into_iter().map(|(p, a)| (p, a, kad_key(&p.to_bytes()))).collect();
        let end = i + region_len(&target, peers.iter().map(|p| &p.2), keys[i..].iter().map(|k| &k.0));

        // Per peer, the records it should hold.
        let mut per_peer: HashMap<usize, Vec<usize>> = HashMap::new();
        for (j, key) in keys.iter().enumerate().take(end).skip(i) {
            let mut order: Vec<usize> = (0..peers.len()).collect();
            order.sort_by_key(|&p| distance(&peers[p].2, &key.0));
            for p in order.into_iter().take(REPLICATION) {
                per_peer.entry(p).or_default().push(j);
            }
        }
        let results: Vec<(Vec<usize>, bool)> = stream::iter(per_peer)
            .map(|(p, js)| {
                let (peer, peer_addrs, _) = &peers[p];
                let frames: Vec<Vec<u8>> = js
                    .iter()
                    .filter_map(|&j| dht::add_provider(&keys[j].1, &me, &my_addrs).ok())
                    .map(|m| m.to_frame())
                    .collect();
                async move {
                    let ok = write_records(net, *peer, peer_addrs, &frames).await.is_ok();
                    (js, ok)
                }
            })
            .buffer_unordered(PEER_CONCURRENCY)
            .collect()
            .await;
        let mut accepted = vec![false; end - i];
        for (js, ok) in results {
            if ok {
                report.records += js.len();
                for j in js {
                    accepted[j - i] = true;
                }
            }
        }
        for (n, ok) in accepted.into_iter().enumerate() {
            let cid = keys[i + n].2;
            if ok {
                report.announced.push(cid)
            } else {
                report.failed.push(cid)
            }
        }
        i = end;
    }
    Ok(report)
}

/// Addresses worth giving to others: not unspecified (`0.0.0.0`) ones.
pub(crate) fn is_announceable(a: &Multiaddr) -> bool {
    !a.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// Connect (with the addresses the walk learned) and write every frame on one stream.
async fn write_records(net: &Network, peer: PeerId, addrs: &[Multiaddr], frames: &[Vec<u8>]) -> Result<(), NetError> {
    if !net.is_connected(peer).await? {
        let mut connected = false;
        for a in addrs {
            let with_peer = a.clone().with_p2p(peer).unwrap_or_else(|a| a);
            if net.dial(with_peer).await.is_ok() {
                connected = true;
                break;
            }
        }
        if !connected {
            return Err(NetError::Dial(format!("no reachable address for {peer}")));
        }
    }
    let mut control = net.stream_control();
    let write = async {
        let mut stream = control
            .open_stream(peer, KAD_PROTOCOL)
            .await
            .map_err(|e| NetError::Dht(format!("opening a DHT stream to {peer}: {e}")))?;
        for f in frames {
            stream.write_all(f).await.map_err(|e| NetError::Dht(format!("writing to {peer}: {e}")))?;
        }
        stream.close().await.map_err(|e| NetError::Dht(format!("closing the stream to {peer}: {e}")))
    };
    // A peer that stops reading must not hold the sweep.
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| NetError::Dht(format!("writing records to {peer}: no progress in {WRITE_TIMEOUT:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_holds_only_keys_nearer_than_the_farthest_peer_found() {
        let key = |first: u8, second: u8| {
            let mut k = [0u8; 32];
            (k[0], k[1]) = (first, second);
            k
        };
        let target = key(0, 0);
        // The farthest peer found shares 7 bits with the target (differs at bit 7).
        let peers = [key(0, 0x40), key(0b0000_0001, 0)];
        // Sorted: two keys sharing 8+ bits, then one sharing exactly 7 (the old rule took it:
        // a peer at 0b0000_0001_1... could be closer to it than any found), then one farther.
        let keys = [target, key(0, 0x80), key(0b0000_0001, 0xff), key(0b0000_0010, 0)];
        assert_eq!(region_len(&target, peers.iter(), keys.iter()), 2);
        // The walk's own target is always in its region.
        let far = [key(0, 0)];
        assert_eq!(region_len(&key(0x80, 0), far.iter(), [key(0x80, 0)].iter()), 1);
    }

    #[test]
    fn distances_and_prefixes() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        b[1] = 0b0001_0000;
        assert_eq!(leading_zeros(&distance(&a, &b)), 11);
        assert_eq!(leading_zeros(&distance(&a, &a)), 256);
        assert!(is_announceable(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()));
        assert!(!is_announceable(&"/ip4/0.0.0.0/tcp/1".parse().unwrap()));
    }
}
