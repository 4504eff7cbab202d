//! The client task's scheduling half: which peer gets a want-block, when want-haves are
//! broadcast again, when requests time out, which wants are abandoned, and when a session
//! searches the DHT. Runs on the client task (these are methods of [`Client`]); the policy is
//! described in the parent module and in `specs/bitswap.md`.

use std::time::Instant;

use cairn_protocol::bitswap::WantType;
use cairn_protocol::Cid;
use libp2p::PeerId;

use super::{
    cancel, want_entry, Ask, Client, Command, Key, Request, FIRST_SEARCH_DELAY, MAX_BROADCAST, MAX_SEARCHES,
    PROVIDERS_PER_SEARCH, SPREAD_PEERS, SPREAD_WANTS,
};

impl Client {
    /// Give every want without a request in flight a chance to get one.
    pub(super) fn schedule(&mut self) {
        let now = Instant::now();
        let mut keys: Vec<(i32, Key)> =
            self.wants.iter().filter(|(_, w)| w.request.is_none()).map(|(k, w)| (w.priority, *k)).collect();
        keys.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        for (_, key) in keys {
            self.schedule_want(&key, now);
        }
    }

    fn schedule_want(&mut self, key: &Key, now: Instant) {
        let Some(w) = self.wants.get(key) else { return };
        // Candidates: peers that said HAVE, and this want's sessions' proven peers we have
        // not asked about it yet.
        let mut candidates: Vec<PeerId> = w.asks.iter().filter(|(_, a)| **a == Ask::Has).map(|(p, _)| *p).collect();
        for s in &w.sessions {
            if let Some(state) = self.sessions.get(s) {
                for p in &state.proven {
                    if !w.asks.contains_key(p) && !candidates.contains(p) {
                        candidates.push(*p);
                    }
                }
            }
        }
        candidates.retain(|p| self.usable(p));
        let max = self.cfg.max_inflight_per_peer;
        let best = candidates
            .iter()
            .filter_map(|p| self.peers.get(p).map(|s| (p, s)))
            .filter(|(_, s)| s.in_flight < max)
            .min_by_key(|(_, s)| (s.timeouts, s.in_flight))
            .map(|(p, _)| *p);
        if let Some(peer) = best {
            self.request_block(key, peer, &candidates, now);
            return;
        }
        if !candidates.is_empty() {
            return; // every peer that has it is busy: wait for a slot
        }
        let waiting = w.asks.values().any(|a| matches!(a, Ask::Asked(_)));
        let recently = w.broadcast_at.is_some_and(|t| now.duration_since(t) < self.cfg.request_timeout);
        if waiting || recently {
            return;
        }
        // Nobody known to have it: ask every peer not asked yet, and again those whose answer
        // may have been lost or who failed (at most once per request timeout).
        let targets: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|p| w.asks.get(*p).is_none_or(|a| a.retry()))
            .filter(|p| self.usable(p))
            .take(MAX_BROADCAST)
            .copied()
            .collect();
        if let Some(w) = self.wants.get_mut(key) {
            w.broadcast_at = Some(now);
        }
        for peer in targets {
            self.ask_have(key, peer, now);
        }
    }

    /// Send a want-block to `peer`; on a want's first request, want-haves go to the other
    /// candidates so that a fallback is known if `peer` fails.
    fn request_block(&mut self, key: &Key, peer: PeerId, candidates: &[PeerId], now: Instant) {
        let Some(w) = self.wants.get_mut(key) else { return };
        let first = w.asks.is_empty();
        let sessions = w.sessions.clone();
        tracing::trace!(%peer, cid = %w.cid, "want-block");
        w.request = Some(Request { peer, sent: now });
        w.asks.insert(peer, Ask::Has);
        let entry = want_entry(w, WantType::Block);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight += 1;
        }
        self.queue(peer, entry);
        if first {
            for other in candidates.iter().filter(|p| **p != peer) {
                self.ask_have(key, *other, now);
            }
        }
        // Early in a session with few peers, ask every connected peer too: more seeders.
        let spread = sessions.iter().any(|s| {
            self.sessions.get_mut(s).is_some_and(|st| {
                let go = st.spread < SPREAD_WANTS && st.proven.len() < SPREAD_PEERS;
                st.spread += u32::from(go);
                go
            })
        });
        if spread {
            let others: Vec<PeerId> = self
                .peers
                .keys()
                .filter(|p| **p != peer && !candidates.contains(p))
                .filter(|p| self.wants.get(key).is_some_and(|w| !w.asks.contains_key(*p)))
                .filter(|p| self.usable(p))
                .take(MAX_BROADCAST)
                .copied()
                .collect();
            for other in others {
                self.ask_have(key, other, now);
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        self.banned.retain(|_, until| *until > now);
        self.expire_requests(now);
        self.drop_abandoned(now);
        self.sessions.retain(|_, s| !s.alive.is_cancelled());
        self.search_providers(now);
    }

    /// Time out silent want-haves and stalled want-blocks.
    fn expire_requests(&mut self, now: Instant) {
        let timeout = self.cfg.request_timeout;
        let mut cancels = Vec::new();
        for w in self.wants.values_mut() {
            for ask in w.asks.values_mut() {
                if matches!(ask, Ask::Asked(t) if now.duration_since(*t) > timeout) {
                    *ask = Ask::Silent;
                    self.dirty = true;
                }
            }
            let Some(r) = w.request else { continue };
            let last = self.peers.get(&r.peer).map_or(r.sent, |p| p.last_recv.max(r.sent));
            let stalled = now.duration_since(r.sent) > timeout && now.duration_since(last) > timeout;
            if stalled || now.duration_since(r.sent) > 4 * timeout {
                tracing::debug!(peer = %r.peer, cid = %w.cid, "want-block timed out; asking another peer");
                w.request = None;
                w.asks.insert(r.peer, Ask::Failed);
                cancels.push((r.peer, w.cid));
                if let Some(p) = self.peers.get_mut(&r.peer) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    p.timeouts += 1;
                }
                self.dirty = true;
            }
        }
        for (peer, cid) in cancels {
            self.queue(peer, cancel(cid));
        }
    }

    /// Forget wants nobody waits for any more (gets timed out, hints expired or their
    /// session dropped), cancelling them with the peers asked.
    fn drop_abandoned(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (key, w) in &mut self.wants {
            w.waiters.retain(|tx| !tx.is_closed());
            if !w.waiters.is_empty() {
                continue;
            }
            let alive = w.sessions.iter().any(|s| self.sessions.get(s).is_some_and(|s| !s.alive.is_cancelled()));
            if !(alive && w.ahead_until.is_some_and(|t| now < t)) {
                gone.push(*key);
            }
        }
        for key in gone {
            if let Some(w) = self.wants.remove(&key) {
                self.end_want(&key, &w, None);
            }
        }
    }

    /// Start provider searches for sessions whose wants have no request after the delay.
    pub(super) fn search_providers(&mut self, now: Instant) {
        let delay = self.cfg.provider_search_delay;
        let mut due: Vec<(u64, Cid)> = Vec::new();
        for w in self.wants.values() {
            // Stuck: nothing in flight, no connected peer said HAVE, and either old enough or
            // every peer asked already said DONT_HAVE (no point waiting for them: boxo's
            // "peers exhausted").
            let holder = w.asks.values().any(|a| *a == Ask::Has);
            let exhausted = !w.asks.is_empty() && w.asks.values().all(|a| *a == Ask::DontHave);
            if w.request.is_some() || holder {
                continue;
            }
            let age = now.duration_since(w.created);
            for s in &w.sessions {
                let Some(state) = self.sessions.get(s) else { continue };
                let wait = if state.searches == 0 { delay.min(FIRST_SEARCH_DELAY) } else { delay };
                if age < wait && !exhausted {
                    continue;
                }
                let rested =
                    state.searched_at.is_none_or(|t| now.duration_since(t) >= self.cfg.provider_search_interval);
                if !state.searching && rested && !due.iter().any(|(id, _)| id == s) {
                    let target = if state.searches == 0 { state.root } else { w.cid };
                    due.push((*s, target));
                }
            }
        }
        for (session, cid) in due {
            if self.searches >= MAX_SEARCHES {
                break;
            }
            let Some(state) = self.sessions.get_mut(&session) else { continue };
            state.searching = true;
            state.searches += 1;
            self.searches += 1;
            tracing::debug!(session, %cid, "searching the DHT for providers");
            let net = self.net.clone();
            let this = self.this.clone();
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                if let Ok(mut found) = net.find_providers(cid, PROVIDERS_PER_SEARCH).await {
                    loop {
                        let peer = tokio::select! {
                            _ = shutdown.cancelled() => break,
                            p = found.recv() => match p {
                                Some(p) => p,
                                None => break,
                            },
                        };
                        if this.send(Command::Provider { session, peer }).await.is_err() {
                            break;
                        }
                    }
                }
                let _ = this.send(Command::SearchDone { session }).await;
            });
        }
    }
}
