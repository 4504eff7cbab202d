//! One peer's ledger: the wants it sent us and which of them still need an answer. Pure data,
//! owned by the server task (one ledger per peer), no I/O.
//!
//! Invariants: at most [`MAX_WANTLIST_ENTRIES`] wants; an entry is in the work queue at most
//! once (`queued`), so the queue holds at most one live item per want plus stale items left by
//! cancels, which are skipped and trimmed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use cairn_protocol::bitswap::{WantEntry, WantType, MAX_WANTLIST_ENTRIES};
use cairn_protocol::Cid;

/// One want a peer holds with us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Want {
    /// Block or presence.
    pub(crate) want: WantType,
    /// Whether the peer asked for DONT_HAVE answers.
    pub(crate) send_dont_have: bool,
    /// Higher is answered first.
    pub(crate) priority: i32,
    /// Waiting in the work queue.
    queued: bool,
}

/// A want taken from the queue to be answered (a snapshot: the ledger may change meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    /// The block.
    pub(crate) cid: Cid,
    /// What was asked when the job was taken.
    pub(crate) want: WantType,
    /// Whether a DONT_HAVE should be sent if we lack it.
    pub(crate) send_dont_have: bool,
}

/// A peer's wants and the queue of those still to answer.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    wants: HashMap<Cid, Want>,
    /// (priority, arrival order, CID): highest priority first, then oldest.
    queue: BinaryHeap<(i32, Reverse<u64>, Cid)>,
    /// Wants with `queued` set.
    queued: usize,
    seq: u64,
}

impl Ledger {
    /// Apply a received wantlist (or replace it, if `full`). Wants beyond the cap are ignored;
    /// returns how many were.
    pub(crate) fn apply(&mut self, full: bool, entries: Vec<WantEntry>) -> usize {
        if full {
            self.wants.clear();
            self.queue.clear();
            self.queued = 0;
        }
        let mut refused = 0;
        for e in entries {
            if e.cancel {
                self.remove(&e.cid);
                continue;
            }
            let n = self.wants.len();
            match self.wants.get_mut(&e.cid) {
                Some(w) => {
                    // A want-block supersedes a want-have, never the other way round.
                    if w.want == WantType::Have && e.want == WantType::Block {
                        w.want = WantType::Block;
                    }
                    w.send_dont_have |= e.send_dont_have;
                    w.priority = e.priority;
                    self.requeue(&e.cid);
                }
                None if n >= MAX_WANTLIST_ENTRIES => refused += 1,
                None => {
                    let w = Want { want: e.want, send_dont_have: e.send_dont_have, priority: e.priority, queued: true };
                    self.wants.insert(e.cid, w);
                    self.queued += 1;
                    self.seq += 1;
                    self.queue.push((e.priority, Reverse(self.seq), e.cid));
                }
            }
        }
        self.trim();
        refused
    }

    /// Take up to `max` wants to answer, best first.
    pub(crate) fn take(&mut self, max: usize) -> Vec<Job> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((_, _, cid)) = self.queue.pop() else { break };
            let Some(w) = self.wants.get_mut(&cid) else { continue };
            if !w.queued {
                continue;
            }
            w.queued = false;
            self.queued -= 1;
            out.push(Job { cid, want: w.want, send_dont_have: w.send_dont_have });
        }
        out
    }

    /// Put a want back in the queue (it was taken but not answered yet).
    pub(crate) fn requeue(&mut self, cid: &Cid) {
        if let Some(w) = self.wants.get_mut(cid) {
            if !w.queued {
                w.queued = true;
                self.queued += 1;
                self.seq += 1;
                self.queue.push((w.priority, Reverse(self.seq), *cid));
            }
        }
    }

    /// The current want for `cid`, if the peer still has one.
    pub(crate) fn get(&self, cid: &Cid) -> Option<Want> {
        self.wants.get(cid).copied()
    }

    /// Forget a want (it was answered with its block or a HAVE).
    pub(crate) fn remove(&mut self, cid: &Cid) {
        if self.wants.remove(cid).is_some_and(|w| w.queued) {
            self.queued -= 1;
        }
    }

    /// We now have `cid`: queue the want again if the peer still holds one that is not
    /// queued (it was answered with DONT_HAVE, or not at all). True when queued.
    pub(crate) fn on_new_block(&mut self, cid: &Cid) -> bool {
        match self.wants.get(cid) {
            Some(w) if !w.queued => {
                self.requeue(cid);
                true
            }
            _ => false,
        }
    }

    /// Whether some want waits for an answer.
    pub(crate) fn has_work(&self) -> bool {
        self.queued > 0
    }

    /// Wants held.
    pub(crate) fn len(&self) -> usize {
        self.wants.len()
    }

    /// The CIDs wanted, best first.
    pub(crate) fn cids(&self) -> Vec<Cid> {
        let mut v: Vec<(&Cid, &Want)> = self.wants.iter().collect();
        v.sort_by_key(|(_, w)| Reverse(w.priority));
        v.into_iter().map(|(c, _)| *c).collect()
    }

    /// Rebuild the queue when cancels left it mostly stale.
    fn trim(&mut self) {
        if self.queue.len() <= 2 * MAX_WANTLIST_ENTRIES {
            return;
        }
        let mut items: Vec<(i32, Reverse<u64>, Cid)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (p, s, cid) in std::mem::take(&mut self.queue).into_sorted_vec().into_iter().rev() {
            if self.wants.get(&cid).is_some_and(|w| w.queued) && seen.insert(cid) {
                items.push((p, s, cid));
            }
        }
        self.queue = items.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_protocol::cids::{cid_for, HashFn, RAW};

    fn cid(i: u32) -> Cid {
        cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &i.to_be_bytes())
    }

    fn want(i: u32, want: WantType, priority: i32) -> WantEntry {
        WantEntry { cid: cid(i), priority, cancel: false, want, send_dont_have: true }
    }

    fn cancel(i: u32) -> WantEntry {
        WantEntry { cid: cid(i), priority: 0, cancel: true, want: WantType::Block, send_dont_have: false }
    }

    #[test]
    fn priority_then_arrival_order_and_cancels_are_skipped() {
        let mut l = Ledger::default();
        l.apply(false, vec![want(1, WantType::Block, 1), want(2, WantType::Block, 5), want(3, WantType::Have, 1)]);
        l.apply(false, vec![cancel(3)]);
        let jobs: Vec<Cid> = l.take(10).into_iter().map(|j| j.cid).collect();
        assert_eq!(jobs, vec![cid(2), cid(1)]);
        assert!(!l.has_work());
        assert_eq!(l.len(), 2, "taken wants stay until answered");
    }

    #[test]
    fn the_wantlist_is_capped_and_full_replaces_it() {
        let mut l = Ledger::default();
        let many: Vec<WantEntry> = (0..MAX_WANTLIST_ENTRIES as u32 + 10).map(|i| want(i, WantType::Have, 1)).collect();
        assert_eq!(l.apply(false, many), 10);
        assert_eq!(l.len(), MAX_WANTLIST_ENTRIES);
        l.apply(true, vec![want(7, WantType::Block, 1)]);
        assert_eq!(l.len(), 1);
        assert_eq!(l.take(10).len(), 1);
    }

    #[test]
    fn want_block_upgrades_want_have_and_new_blocks_requeue() {
        let mut l = Ledger::default();
        l.apply(false, vec![want(1, WantType::Have, 1)]);
        l.apply(false, vec![want(1, WantType::Block, 1)]);
        let jobs = l.take(10);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].want, WantType::Block);
        // Answered DONT_HAVE: stays, not queued; a new block queues it again, once.
        assert!(l.on_new_block(&cid(1)));
        assert!(!l.on_new_block(&cid(1)));
        assert_eq!(l.take(10).len(), 1);
    }

    #[test]
    fn churn_does_not_grow_the_queue_without_bound() {
        let mut l = Ledger::default();
        for round in 0..10 {
            let _ = round;
            l.apply(false, (0..1000).map(|i| want(i, WantType::Block, 1)).collect());
            l.apply(false, (0..1000).map(cancel).collect());
        }
        assert!(l.queue.len() <= 2 * MAX_WANTLIST_ENTRIES + 1000);
        assert!(!l.has_work());
    }
}
