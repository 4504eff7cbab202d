//! Circuit relay v2 reservations, which rust-libp2p leaves to the application: which relays
//! to reserve a slot on, and replacing a reservation that ended.
//!
//! Relays are learned from identify (peers that speak the hop protocol, bootstrap peers
//! included). While the node is not known to be publicly reachable (AutoNAT has not said
//! "public"), it keeps up to `max` reservations, each a listener on
//! `{relay address}/p2p/{relay}/p2p-circuit`; libp2p's relay client renews each while it
//! listens. A reservation that ends (the relay went away or refused) frees its place, and that
//! relay is not asked again for [`RETRY_AFTER`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// The circuit relay v2 hop protocol: a peer announcing it serves as a relay.
pub(crate) const HOP: StreamProtocol = StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");

/// How long a relay whose reservation failed or ended is left alone.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Relays remembered as candidates.
const CANDIDATES: usize = 32;

/// The reservations and the candidates.
pub(crate) struct Relays {
    max: usize,
    candidates: VecDeque<(PeerId, Multiaddr)>,
    active: HashMap<ListenerId, PeerId>,
    resting: HashMap<PeerId, Instant>,
    /// The node is publicly reachable: no reservations wanted.
    public: bool,
}

impl Relays {
    /// Keep up to `max` reservations (0: none).
    pub(crate) fn new(max: usize) -> Relays {
        Relays { max, candidates: VecDeque::new(), active: HashMap::new(), resting: HashMap::new(), public: false }
    }

    /// A peer said it is a relay, reachable at `addrs` (its listen addresses).
    pub(crate) fn learned(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        if self.max == 0 {
            return;
        }
        let Some(addr) = addrs.iter().find(|a| !a.iter().any(|p| matches!(p, Protocol::P2pCircuit))) else { return };
        self.candidates.retain(|(p, _)| *p != peer);
        self.candidates.push_back((peer, addr.clone()));
        if self.candidates.len() > CANDIDATES {
            self.candidates.pop_front();
        }
    }

    /// Whether the node is public (then reservations are not wanted).
    pub(crate) fn set_public(&mut self, public: bool) {
        self.public = public;
    }

    /// The circuit addresses to listen on now, one per reservation wanted.
    pub(crate) fn wanted(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        if self.public || self.active.len() >= self.max {
            return Vec::new();
        }
        self.resting.retain(|_, until| *until > now);
        let busy: Vec<PeerId> = self.active.values().copied().collect();
        let mut out = Vec::new();
        for (peer, addr) in &self.candidates {
            if self.active.len() + out.len() >= self.max {
                break;
            }
            if busy.contains(peer) || self.resting.contains_key(peer) {
                continue;
            }
            out.push((*peer, addr.clone().with(Protocol::P2p(*peer)).with(Protocol::P2pCircuit)));
        }
        out
    }

    /// Listening through `relay` failed at once: leave it alone for a while.
    pub(crate) fn failed(&mut self, relay: PeerId, now: Instant) {
        self.resting.insert(relay, now + RETRY_AFTER);
    }

    /// Reservations held (or being asked for) now.
    pub(crate) fn active(&self) -> usize {
        self.active.len()
    }

    /// A listener was opened for a reservation on `relay`.
    pub(crate) fn listening(&mut self, id: ListenerId, relay: PeerId) {
        self.active.insert(id, relay);
    }

    /// A listener closed: if it was a reservation, its relay rests and the place is free.
    pub(crate) fn closed(&mut self, id: ListenerId, now: Instant) {
        if let Some(relay) = self.active.remove(&id) {
            self.resting.insert(relay, now + RETRY_AFTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_max_reservations_on_distinct_relays_and_none_when_public() {
        let mut r = Relays::new(2);
        let addr: Multiaddr = "/ip4/10.50.0.10/tcp/4001".parse().unwrap();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        for p in [a, b, c] {
            r.learned(p, std::slice::from_ref(&addr));
        }
        let now = Instant::now();
        let wanted = r.wanted(now);
        assert_eq!(wanted.len(), 2);
        assert!(wanted[0].1.to_string().ends_with(&format!("/p2p/{a}/p2p-circuit")), "{}", wanted[0].1);
        let (l1, l2) = (ListenerId::next(), ListenerId::next());
        r.listening(l1, wanted[0].0);
        r.listening(l2, wanted[1].0);
        assert!(r.wanted(now).is_empty(), "two held");
        r.closed(l1, now);
        let next = r.wanted(now);
        assert_eq!(next.iter().map(|w| w.0).collect::<Vec<_>>(), vec![c], "the relay that ended rests");
        r.set_public(true);
        assert!(r.wanted(now).is_empty());
        assert!(Relays::new(0).wanted(now).is_empty());
    }
}
