//! Probes: asking one peer which of some blocks it holds (want-have with sendDontHave),
//! without wanting the blocks. `cairn health` counts a DAG's live holders this way.
//!
//! Each probe is one batch of CIDs for one peer. Every answer (HAVE, DONT_HAVE, or the block
//! itself, which a peer may send instead of HAVE for a small block) goes to the probe's
//! channel once and ends that CID's want-have, which the client then cancels with the peer.
//! Ending a probe cancels what is still unanswered; a peer that disconnects drops its probes,
//! which closes their channels.

use std::collections::HashMap;

use cairn_protocol::bitswap::{WantEntry, WantType};
use cairn_protocol::Cid;
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::Key;

/// Wire priority of probe want-haves: below every fetch's wants.
const PROBE_PRIORITY: i32 = 1;

/// One peer's answers being collected for one batch.
struct Probe {
    id: u64,
    /// Unanswered CIDs, by multihash (a peer may answer with the other CID version).
    keys: HashMap<Key, Cid>,
    answers: mpsc::Sender<(Cid, bool)>,
}

/// Every probe in flight, by peer.
#[derive(Default)]
pub(super) struct Probes {
    by_peer: HashMap<PeerId, Vec<Probe>>,
}

impl Probes {
    /// Start a probe; returns the want-haves to send. `answers` must have room for one answer
    /// per CID (each is sent once, with `try_send`).
    pub(super) fn start(
        &mut self,
        id: u64,
        peer: PeerId,
        cids: Vec<Cid>,
        answers: mpsc::Sender<(Cid, bool)>,
    ) -> Vec<WantEntry> {
        let wants = cids
            .iter()
            .map(|c| WantEntry {
                cid: *c,
                priority: PROBE_PRIORITY,
                cancel: false,
                want: WantType::Have,
                send_dont_have: true,
            })
            .collect();
        let keys = cids.into_iter().map(|c| (*c.hash(), c)).collect();
        self.by_peer.entry(peer).or_default().push(Probe { id, keys, answers });
        wants
    }

    /// Whether any probe of `peer` waits for an answer about `key`.
    pub(super) fn asks(&self, peer: &PeerId, key: &Key) -> bool {
        self.by_peer.get(peer).is_some_and(|ps| ps.iter().any(|p| p.keys.contains_key(key)))
    }

    /// `peer` said whether it has the block `key`: tell every probe that asked. Returns the
    /// CID as asked, for the cancel, if any probe asked.
    pub(super) fn answer(&mut self, peer: &PeerId, key: &Key, have: bool) -> Option<Cid> {
        let probes = self.by_peer.get_mut(peer)?;
        let mut asked = None;
        for p in probes.iter_mut() {
            if let Some(cid) = p.keys.remove(key) {
                let _ = p.answers.try_send((cid, have));
                asked = Some(cid);
            }
        }
        // A probe fully answered is over: dropping it closes its channel.
        probes.retain(|p| !p.keys.is_empty());
        if probes.is_empty() {
            self.by_peer.remove(peer);
        }
        asked
    }

    /// End a probe; returns its unanswered CIDs, to cancel with the peer.
    pub(super) fn end(&mut self, id: u64, peer: &PeerId) -> Vec<Cid> {
        let Some(probes) = self.by_peer.get_mut(peer) else { return Vec::new() };
        let mut left = Vec::new();
        probes.retain_mut(|p| {
            if p.id == id {
                left.extend(p.keys.drain().map(|(_, c)| c));
                false
            } else {
                true
            }
        });
        if probes.is_empty() {
            self.by_peer.remove(peer);
        }
        left
    }

    /// The peer went away: its probes end unanswered.
    pub(super) fn peer_gone(&mut self, peer: &PeerId) {
        self.by_peer.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use cairn_protocol::cids::{cid_for, HashFn, RAW};

    use super::*;

    fn cid(n: u8) -> Cid {
        cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &[n])
    }

    #[test]
    fn each_answer_reaches_its_probe_once_and_ending_returns_the_rest() {
        let mut probes = Probes::default();
        let peer = PeerId::random();
        let (tx, mut rx) = mpsc::channel(3);
        let wants = probes.start(7, peer, vec![cid(1), cid(2), cid(3)], tx);
        assert!(wants.iter().all(|w| w.want == WantType::Have && w.send_dont_have && !w.cancel));
        assert_eq!(probes.answer(&peer, cid(1).hash(), true), Some(cid(1)));
        assert_eq!(probes.answer(&peer, cid(1).hash(), true), None, "answered once");
        assert_eq!(probes.answer(&PeerId::random(), cid(2).hash(), true), None, "other peers do not count");
        assert_eq!(probes.answer(&peer, cid(2).hash(), false), Some(cid(2)));
        assert_eq!(rx.try_recv().unwrap(), (cid(1), true));
        assert_eq!(rx.try_recv().unwrap(), (cid(2), false));
        assert!(probes.asks(&peer, cid(3).hash()));
        assert_eq!(probes.end(7, &peer), vec![cid(3)]);
        assert!(!probes.asks(&peer, cid(3).hash()));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_fully_answered_probe_closes_its_channel() {
        let mut probes = Probes::default();
        let peer = PeerId::random();
        let (tx, mut rx) = mpsc::channel(1);
        probes.start(1, peer, vec![cid(9)], tx);
        probes.answer(&peer, cid(9).hash(), false);
        assert_eq!(rx.try_recv().unwrap(), (cid(9), false));
        assert!(matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
    }
}
