//! The client task (want manager): owns every want of this node, what each peer said about
//! it, the sessions and the penalty box, and decides whom to ask for what.
//!
//! Per want: if a session has peers that served one of its blocks or said HAVE for one
//! ("proven"), the least-loaded one gets a want-block straight away and the other proven peers
//! a want-have, so a session spreads over every seeder; otherwise every
//! connected peer gets a want-have (with sendDontHave). A peer answering HAVE becomes a
//! candidate, and the want-block goes to the candidate with the fewest timeouts and fewest
//! requests in flight, never more than [`BitswapConfig::max_inflight_per_peer`], so a session
//! spreads over every peer that has its data. A want-block that goes unanswered
//! ([`BitswapConfig::request_timeout`] without the peer sending anything, or four times that
//! regardless) is cancelled and moved to another peer. When no peer is known to have a
//! block, the want-have is sent again (at most once per request timeout) to every peer not
//! asked yet and to those that stayed silent or failed: messages can be lost (libp2p-stream
//! resets inbound streams it cannot hand over at once), so silence is not an answer. After [`BitswapConfig::provider_search_delay`] without a request in flight, or as soon as
//! every peer asked said DONT_HAVE (the first search of a session, for its root, already after
//! [`FIRST_SEARCH_DELAY`]), the session asks the DHT for providers of its root (later of the
//! stuck block); the swarm dials
//! them, and each provider found becomes a proven peer of the session: once connected it gets
//! want-blocks straight away, with no want-have round first. Every other newly connected peer
//! is sent our wants as want-haves.
//!
//! A received block is looked up by its multihash, which the decoder computed from its bytes.
//! A wanted block goes to every waiting `get`, then to the write-behind queue, and the want is
//! cancelled with the other peers. A block we recently wanted is a duplicate (a race); any
//! other block is unwanted and a strike against the sender, as is a protocol violation
//! (two strikes). At [`MAX_STRIKES`] the peer is banned for [`super::BAN_DURATION`]: dropped from
//! every want and session, its ledger dropped by the server, and disconnected.
//!
//! The task never awaits a peer: wants go into per-peer outboxes (merged by CID) that are
//! moved into sender queues only when there is room. It awaits only the server's queue and
//! the write-behind queue, neither of which waits on it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_protocol::bitswap::{Message, Presence, WantEntry, WantType};
use cairn_protocol::{Block, Cid};
use libp2p::PeerId;
use multihash::Multihash;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

mod probe;
mod schedule;

use super::wire::{self, PeerEvent, PeerSender, Role, SenderCtx};
use super::{server, BitswapConfig, Counters, FetchError};
use crate::net::{NetEvent, Network};
use crate::store::Store;

/// Strikes that get a peer banned: an unwanted block is one, a protocol violation two.
pub(crate) const MAX_STRIKES: u32 = 4;

/// Peers whose strikes are remembered.
const MAX_TRACKED_STRIKES: usize = 4096;

/// Strikes for a malformed or oversized message.
const VIOLATION_STRIKES: u32 = 2;

/// Most blocks wanted at once, over every session.
const MAX_WANTS: usize = 16 * 1024;

/// Wants remembered after they ended, to tell late duplicates from unwanted blocks.
const RECENT_WANTS: usize = 8 * 1024;

/// Most peers one broadcast of want-haves goes to.
const MAX_BROADCAST: usize = 128;

/// Wants sent to a peer when it connects.
const CONNECT_WANTS: usize = 1024;

/// A session's first provider search (for its root) starts this soon when no connected peer
/// has said HAVE, instead of [`BitswapConfig::provider_search_delay`]: at once, beside the
/// want-haves to the neighbours. Content a neighbour does not have is usually with a
/// stranger, and waiting for every neighbour to say DONT_HAVE (some never answer) was most of
/// the time to first byte; the cost is one DHT lookup per session that needed the network.
/// Later searches, for blocks a session got stuck on, keep the full delay.
pub(crate) const FIRST_SEARCH_DELAY: Duration = Duration::ZERO;

/// While a session has fewer than [`SPREAD_PEERS`] peers, the want-blocks of its first this
/// many wants also go as want-haves to every connected peer: otherwise, once one peer has
/// served the root, every later want goes to it alone and other seeders are never found.
pub(crate) const SPREAD_WANTS: u32 = 8;

/// Session peers at which a session stops looking for more (see [`SPREAD_WANTS`]).
pub(crate) const SPREAD_PEERS: usize = 4;

/// Provider searches running at once.
const MAX_SEARCHES: usize = 8;

/// Providers asked for per search.
const PROVIDERS_PER_SEARCH: usize = 10;

/// Proven peers remembered per session.
const MAX_PROVEN: usize = 64;

/// Commands handled before the next scheduling pass.
const DRAIN: usize = 64;

/// A session as the client task sees it in commands.
#[derive(Clone, Debug)]
pub(crate) struct SessionRef {
    /// The session.
    pub(crate) id: u64,
    /// Cancelled when the caller dropped every handle to it.
    pub(crate) alive: CancellationToken,
}

/// Requests to the client task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Fetch a block for a session and reply with it.
    Want {
        /// The asking session.
        session: SessionRef,
        /// The block.
        cid: Cid,
        /// Where the block (or the reason there is none) goes.
        reply: oneshot::Sender<Result<Bytes, FetchError>>,
    },
    /// Start fetching blocks a session will want soon.
    WantAhead {
        /// The asking session.
        session: SessionRef,
        /// The blocks.
        cids: Vec<Cid>,
    },
    /// A provider search found a peer.
    Provider {
        /// The session that searched.
        session: u64,
        /// The provider (being dialled by the swarm task).
        peer: PeerId,
    },
    /// A provider search ended.
    SearchDone {
        /// The session that searched.
        session: u64,
    },
    /// The connected peers (at start, or after missing peer events).
    PeerSet(Vec<PeerId>),
    /// The CIDs wanted now.
    Wantlist(oneshot::Sender<Vec<Cid>>),
    /// Wants held and peers banned now.
    Stats(oneshot::Sender<(usize, usize)>),
    /// Whether a peer is banned.
    IsBanned {
        /// The peer.
        peer: PeerId,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
    /// Ask `peer` which of `cids` it holds, without wanting them ([`probe`]).
    Probe {
        /// The probe, for [`Command::ProbeEnd`].
        id: u64,
        /// The peer asked (dialled if not connected).
        peer: PeerId,
        /// The blocks asked about.
        cids: Vec<Cid>,
        /// One answer per CID: whether the peer has it. Room for every CID.
        answers: mpsc::Sender<(Cid, bool)>,
    },
    /// Stop a probe and cancel its unanswered want-haves.
    ProbeEnd {
        /// The probe.
        id: u64,
        /// Its peer.
        peer: PeerId,
    },
}

/// Wants are keyed by multihash: the store is, and CIDv0/v1 of one block are the same bytes.
type Key = Multihash<64>;

/// What a peer told us about one want.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// A want-have was sent at this time; no answer yet.
    Asked(Instant),
    /// It said HAVE (or is a proven peer we sent a want-block to).
    Has,
    /// It said DONT_HAVE.
    DontHave,
    /// It did not answer a want-have in time. Messages can be lost (a stream reset before it
    /// was read), so it is asked again on the next rebroadcast.
    Silent,
    /// A want-block to it timed out, or wants could not be sent to it. Asked again on the
    /// next rebroadcast, and chosen last while it has more timeouts than others.
    Failed,
}

impl Ask {
    /// Whether the peer may still hold a want of ours (so a cancel is due).
    fn pending(self) -> bool {
        matches!(self, Ask::Asked(_) | Ask::Has | Ask::Silent)
    }

    /// Whether a rebroadcast asks the peer again.
    fn retry(self) -> bool {
        matches!(self, Ask::Silent | Ask::Failed)
    }
}

/// A want-block in flight.
#[derive(Clone, Copy, Debug)]
struct Request {
    peer: PeerId,
    sent: Instant,
}

/// One block this node wants.
struct Want {
    /// The CID as asked (used on the wire).
    cid: Cid,
    /// On the wire: earlier wants are served first.
    priority: i32,
    waiters: Vec<oneshot::Sender<Result<Bytes, FetchError>>>,
    sessions: Vec<u64>,
    /// Kept without waiters until then (a prefetch hint).
    ahead_until: Option<Instant>,
    created: Instant,
    asks: HashMap<PeerId, Ask>,
    request: Option<Request>,
    broadcast_at: Option<Instant>,
}

/// A connected peer as the client sees it.
struct Peer {
    in_flight: usize,
    last_recv: Instant,
    timeouts: u32,
    /// It speaks no Bitswap version (until it reconnects).
    no_bitswap: bool,
    out: Option<PeerSender>,
    /// Wants and cancels not yet in the sender's queue, merged by CID.
    outbox: HashMap<Cid, WantEntry>,
}

impl Peer {
    fn new(now: Instant) -> Self {
        Peer { in_flight: 0, last_recv: now, timeouts: 0, no_bitswap: false, out: None, outbox: HashMap::new() }
    }
}

/// A session's state.
struct SessionState {
    root: Cid,
    alive: CancellationToken,
    /// Peers that delivered blocks to this session or said HAVE for one.
    proven: Vec<PeerId>,
    /// Wants of this session whose want-block also went out as want-haves to every
    /// connected peer, to find more seeders (see [`SPREAD_WANTS`]).
    spread: u32,
    searching: bool,
    searched_at: Option<Instant>,
    searches: u32,
}

/// The client task's state.
pub(crate) struct Client {
    net: Network,
    cfg: BitswapConfig,
    counters: Arc<Counters>,
    this: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    /// Blocks, presences and failures from the wire's reader and sender tasks.
    peer_events: mpsc::Receiver<PeerEvent>,
    server: mpsc::Sender<server::Command>,
    writer: mpsc::Sender<Block>,
    store: Store,
    events: broadcast::Receiver<NetEvent>,
    shutdown: CancellationToken,
    sender_ctx: SenderCtx,
    wants: HashMap<Key, Want>,
    peers: HashMap<PeerId, Peer>,
    sessions: HashMap<u64, SessionState>,
    banned: HashMap<PeerId, Instant>,
    /// Strikes per peer, kept across reconnections (cleared when it grows too large).
    strikes: HashMap<PeerId, u32>,
    /// Wants that ended lately, oldest first, and whether each was delivered (and so is in
    /// the store or on its way there).
    recent: VecDeque<Key>,
    recent_set: HashMap<Key, bool>,
    searches: usize,
    seq: u64,
    /// Peers whose outbox has entries.
    outgoing: HashSet<PeerId>,
    /// Something changed that may let a want be scheduled.
    dirty: bool,
    /// Want-haves asked only to learn what peers hold.
    probes: probe::Probes,
}

impl Client {
    /// Set up the client.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        net: Network,
        cfg: &BitswapConfig,
        counters: Arc<Counters>,
        this: mpsc::Sender<Command>,
        commands: mpsc::Receiver<Command>,
        (peer_tx, peer_events): (mpsc::Sender<PeerEvent>, mpsc::Receiver<PeerEvent>),
        server: mpsc::Sender<server::Command>,
        writer: mpsc::Sender<Block>,
        store: Store,
        shutdown: CancellationToken,
    ) -> Self {
        let sender_ctx = SenderCtx {
            control: net.stream_control(),
            role: Role::Client,
            counters: counters.clone(),
            room: None,
            failures: Some(peer_tx),
            shutdown: shutdown.clone(),
            upload: None,
        };
        Client {
            events: net.subscribe(),
            net,
            cfg: cfg.clone(),
            counters,
            this,
            commands,
            peer_events,
            server,
            writer,
            store,
            shutdown,
            sender_ctx,
            wants: HashMap::new(),
            peers: HashMap::new(),
            sessions: HashMap::new(),
            banned: HashMap::new(),
            strikes: HashMap::new(),
            recent: VecDeque::new(),
            recent_set: HashMap::new(),
            searches: 0,
            seq: 0,
            outgoing: HashSet::new(),
            dirty: false,
            probes: probe::Probes::default(),
        }
    }
}

/// Spawn the client task.
pub(crate) fn spawn(client: Client) -> JoinHandle<()> {
    tokio::spawn(client.run())
}

impl Client {
    async fn run(mut self) {
        self.refresh_peers();
        let period = (self.cfg.request_timeout.min(self.cfg.provider_search_delay).min(Duration::from_millis(100)) / 2)
            .clamp(Duration::from_millis(10), Duration::from_millis(250));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.on_command(cmd).await;
                    for _ in 1..DRAIN {
                        match self.commands.try_recv() {
                            Ok(cmd) => self.on_command(cmd).await,
                            Err(_) => break,
                        }
                    }
                }
                Some(ev) = self.peer_events.recv() => {
                    self.on_peer_event(ev).await;
                    for _ in 1..DRAIN {
                        match self.peer_events.try_recv() {
                            Ok(ev) => self.on_peer_event(ev).await,
                            Err(_) => break,
                        }
                    }
                }
                ev = self.events.recv() => self.on_net_event(ev),
                _ = tick.tick() => self.on_tick(),
            }
            if self.dirty {
                self.dirty = false;
                self.schedule();
            }
            self.flush();
        }
        tracing::debug!("bitswap client stopped");
        // Dropping the wants drops their reply channels: waiting `get`s see `Shutdown`.
    }

    async fn on_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Received { peer, blocks, presences } => self.on_received(peer, blocks, presences).await,
            PeerEvent::Violation { peer } => self.strike(peer, VIOLATION_STRIKES).await,
            PeerEvent::SendFailed { peer, unsupported } => self.on_send_failed(peer, unsupported),
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Want { session, cid, reply } => self.on_want(session, cid, Some(reply)),
            Command::WantAhead { session, cids } => {
                for cid in cids {
                    self.on_want(session.clone(), cid, None);
                }
            }
            Command::Provider { session, peer } => self.on_provider(session, peer),
            Command::SearchDone { session } => {
                self.searches = self.searches.saturating_sub(1);
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.searching = false;
                    s.searched_at = Some(Instant::now());
                }
            }
            Command::PeerSet(peers) => {
                for peer in peers {
                    if !self.peers.contains_key(&peer) {
                        self.on_connected(peer);
                    }
                }
            }
            Command::Wantlist(reply) => {
                let _ = reply.send(self.wants.values().map(|w| w.cid).collect());
            }
            Command::Stats(reply) => {
                let _ = reply.send((self.wants.len(), self.banned.len()));
            }
            Command::IsBanned { peer, reply } => {
                let _ = reply.send(self.is_banned(&peer));
            }
            Command::Probe { id, peer, cids, answers } => {
                if self.is_banned(&peer) {
                    return; // dropping `answers` ends the probe unanswered
                }
                // The caller connected it; the swarm's event may still be on its way.
                self.peers.entry(peer).or_insert_with(|| Peer::new(Instant::now()));
                for entry in self.probes.start(id, peer, cids, answers) {
                    self.queue(peer, entry);
                }
            }
            Command::ProbeEnd { id, peer } => {
                for cid in self.probes.end(id, &peer) {
                    if !self.wants.contains_key(cid.hash()) {
                        self.queue(peer, cancel(cid));
                    }
                }
            }
        }
    }

    fn on_want(&mut self, session: SessionRef, cid: Cid, reply: Option<oneshot::Sender<Result<Bytes, FetchError>>>) {
        let now = Instant::now();
        self.sessions.entry(session.id).or_insert_with(|| SessionState {
            root: cid,
            alive: session.alive.clone(),
            proven: Vec::new(),
            spread: 0,
            searching: false,
            searched_at: None,
            searches: 0,
        });
        let key = *cid.hash();
        if let Some(w) = self.wants.get_mut(&key) {
            if !w.sessions.contains(&session.id) {
                w.sessions.push(session.id);
                // Its peers become candidates for this want too.
                self.dirty = true;
            }
            match reply {
                Some(r) => w.waiters.push(r),
                None => w.ahead_until = Some(now + self.cfg.get_timeout),
            }
            return;
        }
        if let Some(data) = self.store.pending(&cid) {
            // Delivered to another want moments ago and not yet on disk.
            if let Some(r) = reply {
                let _ = r.send(Ok(data));
            }
            return;
        }
        let delivered = self.recent_set.get(&key) == Some(&true);
        let reply = match reply {
            Some(reply) if delivered => {
                // Delivered and written since the session looked in the store: read it there
                // (once; if it is gone after all, the want comes back and is fetched).
                self.recent_set.insert(key, false);
                self.read_late(session, cid, reply);
                return;
            }
            None if delivered => return, // a hint for a block we just stored
            other => other,
        };
        if self.wants.len() >= MAX_WANTS {
            match reply {
                Some(r) => {
                    let _ = r.send(Err(FetchError::TooManyWants(cid)));
                }
                None => Counters::add(&self.counters.hints_dropped, 1),
            }
            return;
        }
        self.seq += 1;
        let priority = i32::try_from(i64::from(i32::MAX) - (self.seq % i32::MAX as u64) as i64).unwrap_or(1).max(1);
        let want = Want {
            cid,
            priority,
            ahead_until: reply.is_none().then(|| now + self.cfg.get_timeout),
            waiters: reply.into_iter().collect(),
            sessions: vec![session.id],
            created: now,
            asks: HashMap::new(),
            request: None,
            broadcast_at: None,
        };
        self.wants.insert(key, want);
        self.dirty = true;
        // A session's first want: its provider search starts now, beside the want-haves.
        if self.sessions.get(&session.id).is_some_and(|s| s.searches == 0 && !s.searching) {
            self.search_providers(now);
        }
    }

    /// Answer a want from the store, off this task; if the block is not there after all,
    /// the want comes back as a new command.
    fn read_late(&self, session: SessionRef, cid: Cid, reply: oneshot::Sender<Result<Bytes, FetchError>>) {
        let store = self.store.handle();
        let this = self.this.clone();
        tokio::spawn(async move {
            match store.get(cid).await {
                Ok(Some(data)) => {
                    let _ = reply.send(Ok(data));
                }
                _ => {
                    let _ = this.send(Command::Want { session, cid, reply }).await;
                }
            }
        });
    }

    async fn on_received(&mut self, peer: PeerId, blocks: Vec<Block>, presences: Vec<(Cid, Presence)>) {
        if self.is_banned(&peer) {
            return;
        }
        let now = Instant::now();
        // Only connected peers are tracked: a message read after the peer's disconnect must
        // not bring it back (a sender to it would dial it).
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_recv = now;
        }
        let blocks = self.answer_probes(peer, &presences, blocks);
        let mut dont_have = false;
        for (cid, presence) in presences {
            let Some(w) = self.wants.get_mut(cid.hash()) else { continue };
            tracing::trace!(%peer, %cid, ?presence, "presence");
            self.dirty = true;
            match presence {
                Presence::Have => {
                    w.asks.insert(peer, Ask::Has);
                    // A peer with one block of a session likely has the rest (a file's
                    // leaves): it becomes a session peer, so later wants spread over every
                    // such peer instead of all going to the first one that served a block.
                    for s in &w.sessions {
                        if let Some(state) = self.sessions.get_mut(s) {
                            if !state.proven.contains(&peer) && state.proven.len() < MAX_PROVEN {
                                state.proven.push(peer);
                            }
                        }
                    }
                }
                Presence::DontHave => {
                    dont_have = true;
                    w.asks.insert(peer, Ask::DontHave);
                    if w.request.is_some_and(|r| r.peer == peer) {
                        w.request = None;
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.in_flight = p.in_flight.saturating_sub(1);
                        }
                    }
                }
            }
        }
        if dont_have {
            // The last DONT_HAVE may have exhausted the connected peers: search right away.
            self.search_providers(now);
        }
        for block in blocks {
            self.on_block(peer, block).await;
        }
    }

    /// Hand what `peer` said to the probes that asked it; returns the blocks that still need
    /// handling (those no probe asked for, or that a want also waits for).
    fn answer_probes(&mut self, peer: PeerId, presences: &[(Cid, Presence)], blocks: Vec<Block>) -> Vec<Block> {
        for (cid, presence) in presences {
            self.answer_probe(peer, cid.hash(), *presence == Presence::Have);
        }
        blocks
            .into_iter()
            .filter(|b| {
                let key = b.cid.hash();
                if !self.probes.asks(&peer, key) {
                    return true;
                }
                // A block sent instead of HAVE (peers do that for small blocks): an answer,
                // not an unwanted block.
                self.answer_probe(peer, key, true);
                self.wants.contains_key(key)
            })
            .collect()
    }

    fn answer_probe(&mut self, peer: PeerId, key: &Key, have: bool) {
        if let Some(cid) = self.probes.answer(&peer, key, have) {
            // Answered: the peer may drop the want-have (a want of our own keeps it).
            if !self.wants.contains_key(key) {
                self.queue(peer, cancel(cid));
            }
        }
    }

    async fn on_block(&mut self, peer: PeerId, block: Block) {
        let key = *block.cid.hash();
        let len = block.data.len() as u64;
        tracing::trace!(%peer, cid = %block.cid, "block");
        let Some(w) = self.wants.remove(&key) else {
            if self.recent_set.contains_key(&key) {
                Counters::add(&self.counters.dup_blocks, 1);
                Counters::add(&self.counters.dup_bytes, len);
            } else {
                tracing::debug!(%peer, cid = %block.cid, "unwanted block");
                Counters::add(&self.counters.unwanted_blocks, 1);
                self.strike(peer, 1).await;
            }
            return;
        };
        Counters::add(&self.counters.blocks_received, 1);
        Counters::add(&self.counters.bytes_received, len);
        self.dirty = true;
        self.end_want(&key, &w, Some(peer));
        for s in &w.sessions {
            if let Some(state) = self.sessions.get_mut(s) {
                if !state.proven.contains(&peer) && state.proven.len() < MAX_PROVEN {
                    state.proven.push(peer);
                }
            }
        }
        for waiter in w.waiters {
            let _ = waiter.send(Ok(block.data.clone()));
        }
        // Readable from the store at once; durable once the write-behind has committed it.
        self.store.stage(&block);
        let cid = block.cid;
        if self.writer.send(block).await.is_err() {
            self.store.unstage(&cid);
            tracing::warn!("bitswap store writer stopped; fetched block not stored");
        }
    }

    /// A want is over (delivered by `from`, or given up): free its request slot, cancel it
    /// with every peer asked (but the deliverer), and remember it for a while.
    fn end_want(&mut self, key: &Key, w: &Want, from: Option<PeerId>) {
        if let Some(r) = w.request {
            if let Some(p) = self.peers.get_mut(&r.peer) {
                p.in_flight = p.in_flight.saturating_sub(1);
            }
        }
        let asked: Vec<PeerId> = w.asks.iter().filter(|(_, a)| a.pending()).map(|(p, _)| *p).collect();
        for peer in asked {
            if Some(peer) != from {
                self.queue(peer, cancel(w.cid));
            }
        }
        if self.recent_set.insert(*key, from.is_some()).is_none() {
            self.recent.push_back(*key);
            if self.recent.len() > RECENT_WANTS {
                if let Some(old) = self.recent.pop_front() {
                    self.recent_set.remove(&old);
                }
            }
        }
    }

    fn on_send_failed(&mut self, peer: PeerId, unsupported: bool) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.no_bitswap |= unsupported;
        p.out = None;
        p.in_flight = 0;
        p.outbox.clear();
        for w in self.wants.values_mut() {
            if w.asks.contains_key(&peer) {
                w.asks.insert(peer, Ask::Failed);
            }
            if w.request.is_some_and(|r| r.peer == peer) {
                w.request = None;
            }
        }
        self.dirty = true;
    }

    /// A provider record names `peer` for the session's root: it is a candidate for the
    /// session's want-blocks from the moment it is connected (the swarm is dialling it), with
    /// no want-have round first. Dial and want go in parallel; a want-block carries
    /// sendDontHave, so a provider that lied costs one round trip.
    fn on_provider(&mut self, session: u64, peer: PeerId) {
        if peer == self.net.local_peer_id() || self.is_banned(&peer) {
            return;
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            if !state.proven.contains(&peer) && state.proven.len() < MAX_PROVEN {
                state.proven.push(peer);
            }
        }
        self.dirty = true;
    }

    fn on_net_event(&mut self, ev: Result<NetEvent, broadcast::error::RecvError>) {
        match ev {
            Ok(NetEvent::Connected(peer)) => {
                if self.is_banned(&peer) {
                    self.disconnect(peer);
                } else {
                    self.on_connected(peer);
                }
            }
            Ok(NetEvent::Disconnected(peer)) => self.on_disconnected(peer),
            Err(broadcast::error::RecvError::Lagged(_)) => self.refresh_peers(),
            Err(broadcast::error::RecvError::Closed) => {}
        }
    }

    /// A new peer: send it our wants (as want-haves), oldest first; wants of sessions it is
    /// proven for (a provider found for them) are left to the scheduler, which sends it
    /// want-blocks.
    fn on_connected(&mut self, peer: PeerId) {
        let now = Instant::now();
        self.peers.entry(peer).or_insert_with(|| Peer::new(now));
        let proven_for: Vec<u64> =
            self.sessions.iter().filter(|(_, s)| s.proven.contains(&peer)).map(|(id, _)| *id).collect();
        let mut keys: Vec<(i32, Key)> = self
            .wants
            .iter()
            .filter(|(_, w)| !w.asks.contains_key(&peer))
            .filter(|(_, w)| !w.sessions.iter().any(|s| proven_for.contains(s)))
            .map(|(k, w)| (w.priority, *k))
            .collect();
        keys.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        for (_, key) in keys.into_iter().take(CONNECT_WANTS) {
            self.ask_have(&key, peer, now);
        }
        self.dirty = true;
    }

    fn on_disconnected(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        self.probes.peer_gone(&peer);
        self.outgoing.remove(&peer);
        for w in self.wants.values_mut() {
            w.asks.remove(&peer);
            if w.request.is_some_and(|r| r.peer == peer) {
                w.request = None;
            }
        }
        self.dirty = true;
    }

    /// Ask the swarm for the connected peers (off this task: the swarm may be busy).
    fn refresh_peers(&self) {
        let net = self.net.clone();
        let this = self.this.clone();
        tokio::spawn(async move {
            if let Ok(list) = net.peers().await {
                let peers = list.iter().filter_map(|p| p.peer.parse().ok()).collect();
                let _ = this.send(Command::PeerSet(peers)).await;
            }
        });
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.get(peer).is_some_and(|until| Instant::now() < *until)
    }

    async fn strike(&mut self, peer: PeerId, n: u32) {
        if self.is_banned(&peer) {
            return;
        }
        let now = Instant::now();
        if self.strikes.len() >= MAX_TRACKED_STRIKES {
            self.strikes.clear();
        }
        let strikes = self.strikes.entry(peer).or_default();
        *strikes += n;
        if *strikes < MAX_STRIKES {
            return;
        }
        self.strikes.remove(&peer);
        tracing::info!(%peer, "banning bitswap peer: unwanted blocks or protocol violations");
        Counters::add(&self.counters.peers_banned, 1);
        self.banned.insert(peer, now + super::BAN_DURATION);
        self.on_disconnected(peer);
        for s in self.sessions.values_mut() {
            s.proven.retain(|p| *p != peer);
        }
        let _ = self.server.send(server::Command::Ban(peer)).await;
        self.disconnect(peer);
    }

    fn disconnect(&self, peer: PeerId) {
        let net = self.net.clone();
        tokio::spawn(async move {
            let _ = net.disconnect(peer).await;
        });
    }

    /// Whether wants may be sent to `peer`.
    fn usable(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| !p.no_bitswap) && !self.is_banned(peer)
    }

    /// Queue a want-have to `peer`.
    fn ask_have(&mut self, key: &Key, peer: PeerId, now: Instant) {
        if !self.usable(&peer) {
            return;
        }
        let Some(w) = self.wants.get_mut(key) else { return };
        w.asks.insert(peer, Ask::Asked(now));
        tracing::trace!(%peer, cid = %w.cid, "want-have");
        let entry = want_entry(w, WantType::Have);
        self.queue(peer, entry);
    }

    /// Put an entry in a peer's outbox.
    fn queue(&mut self, peer: PeerId, entry: WantEntry) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.outbox.insert(entry.cid, entry);
            self.outgoing.insert(peer);
        }
    }

    /// Move outboxes into sender queues that have room; the rest waits for the next pass.
    fn flush(&mut self) {
        let mut still = HashSet::new();
        for peer in std::mem::take(&mut self.outgoing) {
            let Some(p) = self.peers.get_mut(&peer) else { continue };
            if p.outbox.is_empty() {
                continue;
            }
            if p.out.as_ref().is_none_or(|o| o.is_closed()) {
                p.out = Some(wire::spawn_sender(peer, self.sender_ctx.clone()));
            }
            let out = p.out.as_ref().expect("just set");
            let mut wants: Vec<WantEntry> = p.outbox.drain().map(|(_, e)| e).collect();
            wants.sort_by_key(|e| std::cmp::Reverse(e.priority));
            if let Err(msg) = out.try_send(Message { wants, ..Message::default() }) {
                p.outbox.extend(msg.wants.into_iter().map(|e| (e.cid, e)));
                still.insert(peer);
            }
        }
        self.outgoing = still;
    }
}

fn want_entry(w: &Want, want: WantType) -> WantEntry {
    WantEntry { cid: w.cid, priority: w.priority, cancel: false, want, send_dont_have: true }
}

fn cancel(cid: Cid) -> WantEntry {
    WantEntry { cid, priority: 0, cancel: true, want: WantType::Block, send_dont_have: false }
}
