//! Peers this node knew, kept across restarts, and redialling when every connection is gone.
//!
//! DHT peers that identified themselves are persisted with their listen addresses (through
//! the record persister: the swarm task never touches disk). At start, the most recently seen
//! are added to the routing table's address book and dialled besides the bootstrap list, so a
//! restarted node rejoins through any peer it knew. While no peer is connected, the bootstrap
//! and known peers are dialled again with backoff (2 s doubling to 5 min), each time with a
//! warning that says so.

use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

/// Known peers dialled at start and on each retry, most recently seen first.
pub(crate) const DIAL_KNOWN: usize = 8;

/// Known peers kept in memory for retries.
const KEEP: usize = 64;

/// First wait before dialling again once nothing is connected.
const FIRST_RETRY: Duration = Duration::from_secs(2);

/// Longest wait between two retries.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What to dial again.
pub(crate) struct Redial {
    /// The bootstrap addresses.
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// Known peers and their addresses.
    pub(crate) known: Vec<(PeerId, Vec<Multiaddr>)>,
    /// When the next retry comes if this one fails.
    pub(crate) next_in: Duration,
}

/// The known peers and the retry schedule.
pub(crate) struct Peerbook {
    bootstrap: Vec<Multiaddr>,
    known: Vec<(PeerId, Vec<Multiaddr>)>,
    backoff: Duration,
    next: Option<Instant>,
}

impl Peerbook {
    /// A peerbook with the bootstrap list and the peers loaded from the store.
    pub(crate) fn new(bootstrap: Vec<Multiaddr>, mut known: Vec<(PeerId, Vec<Multiaddr>)>) -> Peerbook {
        known.truncate(KEEP);
        Peerbook { bootstrap, known, backoff: FIRST_RETRY, next: None }
    }

    /// The known peers to dial at start.
    pub(crate) fn at_start(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.known.iter().take(DIAL_KNOWN).cloned().collect()
    }

    /// A DHT peer identified itself with these listen addresses: first in line for retries.
    pub(crate) fn learned(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.known.retain(|(p, _)| *p != peer);
        self.known.insert(0, (peer, addrs));
        self.known.truncate(KEEP);
    }

    /// Called now and then: what to dial again, when nothing is connected and the retry is
    /// due. Connected peers reset the backoff.
    pub(crate) fn due(&mut self, connected: bool, now: Instant) -> Option<Redial> {
        if connected || (self.bootstrap.is_empty() && self.known.is_empty()) {
            self.backoff = FIRST_RETRY;
            self.next = None;
            return None;
        }
        let next = *self.next.get_or_insert(now + self.backoff);
        if now < next {
            return None;
        }
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        self.next = Some(now + self.backoff);
        Some(Redial {
            bootstrap: self.bootstrap.clone(),
            known: self.known.iter().take(DIAL_KNOWN).cloned().collect(),
            next_in: self.backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_while_alone_and_reset_once_connected() {
        let addr: Multiaddr = "/ip4/127.0.0.9/tcp/1".parse().unwrap();
        let mut book = Peerbook::new(vec![addr], Vec::new());
        let t0 = Instant::now();
        assert!(book.due(false, t0).is_none(), "the first retry waits 2 s");
        let r = book.due(false, t0 + Duration::from_secs(2)).expect("due after 2 s");
        assert_eq!((r.bootstrap.len(), r.next_in), (1, Duration::from_secs(4)));
        assert!(book.due(false, t0 + Duration::from_secs(5)).is_none());
        assert!(book.due(false, t0 + Duration::from_secs(6)).is_some());
        let mut at = t0 + Duration::from_secs(6);
        for _ in 0..20 {
            at += Duration::from_secs(301);
            assert!(book.due(false, at).is_some_and(|r| r.next_in <= MAX_RETRY));
        }
        assert!(book.due(true, at).is_none());
        assert!(book.due(false, at + Duration::from_secs(1)).is_none(), "backoff reset: 2 s from being alone");
        assert!(book.due(false, at + Duration::from_secs(2)).is_none());
        assert!(book.due(false, at + Duration::from_secs(3)).is_some());
    }

    #[test]
    fn the_latest_peer_seen_comes_first_once() {
        let mut book = Peerbook::new(Vec::new(), Vec::new());
        let (a, b) = (PeerId::random(), PeerId::random());
        book.learned(a, Vec::new());
        book.learned(b, Vec::new());
        book.learned(a, Vec::new());
        let order: Vec<PeerId> = book.at_start().into_iter().map(|(p, _)| p).collect();
        assert_eq!(order, vec![a, b]);
    }
}
