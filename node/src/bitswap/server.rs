//! The server task: answers the wants peers send us.
//!
//! It owns one [`Ledger`] per peer that sent wants, and serves them round-robin: a peer with
//! work gets one read job (up to [`READ_BATCH`] wants, stopping at about 2 MiB of blocks) and
//! goes to the back of the line. Jobs run on the blocking pool, at most
//! [`BitswapConfig::max_store_reads`] at once. A peer whose answer queue holds
//! [`BitswapConfig::max_queued_bytes_per_peer`] or more (a slow reader) waits until its sender
//! task writes something; other peers are not held up. The task never awaits a peer or the
//! store: it only `try_send`s into queues whose room it checked.
//!
//! Answers (boxo's rules): want-have → HAVE, or the block itself if it is at most
//! [`SMALL_BLOCK`] bytes, or DONT_HAVE if asked for; want-block → the block, or DONT_HAVE if
//! asked for. Blocks over [`MAX_BLOCK_SIZE`] are never sent (answered as missing). A want is
//! forgotten once answered with its block or a HAVE; one answered DONT_HAVE (or not at all) is
//! kept, and answered again if the block arrives later. A cancel that arrives while a read is
//! running drops that answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use cairn_protocol::bitswap::{Message, Presence, WantEntry, WantType, MAX_BLOCK_SIZE, TARGET_MESSAGE_SIZE};
use cairn_protocol::{Block, Cid};
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::ledger::{Job, Ledger};
use super::wire::{self, PeerSender, PeerWants, Role, SenderCtx};
use super::{BitswapConfig, Counters};
use crate::net::{NetEvent, Network};
use crate::store::Store;

/// Blocks this small are sent in answer to a want-have instead of a HAVE (boxo's default).
pub(crate) const SMALL_BLOCK: u64 = 1024;

/// Wants taken for one read job.
const READ_BATCH: usize = 64;

/// Requests to the server task.
#[derive(Debug)]
pub(crate) enum Command {
    /// These blocks were just stored (by the write-behind writer).
    NewBlocks(Vec<Cid>),
    /// Drop the peer's ledger and ignore it for a while (it was banned).
    Ban(PeerId),
    /// Peers with ledgers and wants held across them.
    Stats(oneshot::Sender<(usize, usize)>),
    /// One peer's wants.
    PeerWantlist {
        /// Who.
        peer: PeerId,
        /// The answer.
        reply: oneshot::Sender<Vec<Cid>>,
    },
}

/// One peer's ledger and the state of serving it.
struct Peer {
    ledger: Ledger,
    out: Option<PeerSender>,
    /// A read job for this peer is running (at most one, which keeps answers in order).
    reading: bool,
    /// In the round-robin line.
    ready: bool,
    /// An answer that did not fit in the queue (sent before anything else).
    held: Option<Message>,
}

/// What a read job found.
enum Answer {
    Block(Block),
    Presence(Cid, Presence),
}

/// The result of one read job.
struct ReadDone {
    peer: PeerId,
    answers: Vec<(Job, Answer)>,
    /// Wants taken but not reached (the batch was full).
    rest: Vec<Job>,
}

/// The server task's state.
pub(crate) struct Server {
    store: Store,
    cfg: BitswapConfig,
    commands: mpsc::Receiver<Command>,
    /// Peers' wants, from the wire's reader tasks.
    wants: mpsc::Receiver<PeerWants>,
    events: broadcast::Receiver<NetEvent>,
    shutdown: CancellationToken,
    sender_ctx: SenderCtx,
    room: Arc<Notify>,
    peers: HashMap<PeerId, Peer>,
    line: VecDeque<PeerId>,
    /// Peers skipped because their answer queue was full; back in line when a sender writes.
    blocked: HashSet<PeerId>,
    reads: JoinSet<ReadDone>,
    reading: HashMap<tokio::task::Id, PeerId>,
    banned: HashMap<PeerId, Instant>,
}

impl Server {
    /// Set up the server over the network and store.
    pub(crate) fn new(
        net: &Network,
        store: Store,
        cfg: &BitswapConfig,
        counters: Arc<Counters>,
        commands: mpsc::Receiver<Command>,
        wants: mpsc::Receiver<PeerWants>,
        shutdown: CancellationToken,
    ) -> Self {
        let room = Arc::new(Notify::new());
        let sender_ctx = SenderCtx {
            control: net.stream_control(),
            role: Role::Server,
            counters,
            room: Some(room.clone()),
            failures: None,
            shutdown: shutdown.clone(),
            upload: cfg.upload.clone(),
        };
        Server {
            store,
            cfg: cfg.clone(),
            commands,
            wants,
            events: net.subscribe(),
            shutdown,
            sender_ctx,
            room,
            peers: HashMap::new(),
            line: VecDeque::new(),
            blocked: HashSet::new(),
            reads: JoinSet::new(),
            reading: HashMap::new(),
            banned: HashMap::new(),
        }
    }
}

/// Spawn the server task.
pub(crate) fn spawn(server: Server) -> JoinHandle<()> {
    tokio::spawn(server.run())
}

impl Server {
    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                done = self.reads.join_next_with_id(), if !self.reads.is_empty() => self.on_read_done(done),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                Some(w) = self.wants.recv() => self.on_wants(w.peer, w.full, w.wants),
                _ = self.room.notified() => self.unblock(),
                ev = self.events.recv() => self.on_net_event(ev),
            }
            self.pump();
        }
        self.reads.shutdown().await;
        tracing::debug!("bitswap server stopped");
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::NewBlocks(cids) => self.on_new_blocks(&cids),
            Command::Ban(peer) => {
                self.peers.remove(&peer);
                self.banned.insert(peer, Instant::now() + super::BAN_DURATION);
            }
            Command::Stats(reply) => {
                let wants = self.peers.values().map(|p| p.ledger.len()).sum();
                let peers = self.peers.values().filter(|p| p.ledger.len() > 0).count();
                let _ = reply.send((peers, wants));
            }
            Command::PeerWantlist { peer, reply } => {
                let _ = reply.send(self.peers.get(&peer).map(|p| p.ledger.cids()).unwrap_or_default());
            }
        }
    }

    fn on_wants(&mut self, peer: PeerId, full: bool, wants: Vec<WantEntry>) {
        if let Some(until) = self.banned.get(&peer) {
            if Instant::now() < *until {
                return;
            }
            self.banned.remove(&peer);
        }
        let p = self.peers.entry(peer).or_insert_with(|| Peer {
            ledger: Ledger::default(),
            out: None,
            reading: false,
            ready: false,
            held: None,
        });
        let refused = p.ledger.apply(full, wants);
        if refused > 0 {
            tracing::debug!(%peer, refused, "wantlist full; wants ignored");
        }
        self.enqueue(peer);
    }

    fn on_new_blocks(&mut self, cids: &[Cid]) {
        let mut woken = Vec::new();
        for (peer, p) in &mut self.peers {
            let mut any = false;
            for cid in cids {
                any |= p.ledger.on_new_block(cid);
            }
            if any {
                woken.push(*peer);
            }
        }
        for peer in woken {
            self.enqueue(peer);
        }
    }

    fn on_net_event(&mut self, ev: Result<NetEvent, broadcast::error::RecvError>) {
        match ev {
            Ok(NetEvent::Disconnected(peer)) => {
                self.peers.remove(&peer);
                self.blocked.remove(&peer);
            }
            Ok(NetEvent::Connected(_)) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Missed disconnects only delay freeing ledgers: senders to gone peers fail
                // and wants of gone peers are answered into the void once.
                tracing::debug!(missed = n, "bitswap server lagged behind peer events");
            }
            Err(broadcast::error::RecvError::Closed) => {}
        }
        let now = Instant::now();
        self.banned.retain(|_, until| *until > now);
    }

    /// Put a peer with work at the back of the line.
    fn enqueue(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if !p.ready && !p.reading && (p.ledger.has_work() || p.held.is_some()) {
                p.ready = true;
                self.line.push_back(peer);
            }
        }
    }

    /// A sender wrote something: give blocked peers another turn.
    fn unblock(&mut self) {
        for peer in std::mem::take(&mut self.blocked) {
            self.enqueue(peer);
        }
    }

    /// Start read jobs, one peer at a time in line order, while read slots are free.
    fn pump(&mut self) {
        let mut turns = self.line.len();
        while self.reads.len() < self.cfg.max_store_reads && turns > 0 {
            turns -= 1;
            let Some(peer) = self.line.pop_front() else { break };
            let Some(p) = self.peers.get_mut(&peer) else { continue };
            p.ready = false;
            if p.reading {
                continue;
            }
            if let Some(msg) = p.held.take() {
                if let Err(msg) = send(p, &self.sender_ctx, peer, msg) {
                    p.held = Some(msg);
                    self.blocked.insert(peer);
                    continue;
                }
            }
            if !p.ledger.has_work() {
                continue;
            }
            if !has_room(p, self.cfg.max_queued_bytes_per_peer) {
                self.blocked.insert(peer);
                continue;
            }
            let jobs = p.ledger.take(READ_BATCH);
            p.reading = true;
            let store = self.store.clone();
            let handle = self.reads.spawn_blocking(move || read_jobs(&store, peer, jobs));
            self.reading.insert(handle.id(), peer);
        }
    }

    fn on_read_done(&mut self, done: Option<Result<(tokio::task::Id, ReadDone), tokio::task::JoinError>>) {
        let done = match done {
            Some(Ok((id, done))) => {
                self.reading.remove(&id);
                done
            }
            Some(Err(e)) => {
                tracing::warn!("bitswap store read failed: {e}");
                if let Some(peer) = self.reading.remove(&e.id()) {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.reading = false;
                    }
                    self.enqueue(peer);
                }
                return;
            }
            None => return,
        };
        let peer = done.peer;
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.reading = false;
        for job in &done.rest {
            p.ledger.requeue(&job.cid);
        }
        let mut msg = Message::default();
        for (job, answer) in done.answers {
            // The ledger may have changed while the read ran.
            let Some(now) = p.ledger.get(&job.cid) else { continue };
            match answer {
                Answer::Block(b) => {
                    p.ledger.remove(&job.cid);
                    msg.blocks.push(b);
                }
                Answer::Presence(cid, Presence::Have) => {
                    if now.want == WantType::Have {
                        p.ledger.remove(&job.cid);
                    } else {
                        p.ledger.requeue(&job.cid); // upgraded to want-block meanwhile
                    }
                    msg.presences.push((cid, Presence::Have));
                }
                Answer::Presence(cid, Presence::DontHave) => {
                    if now.want != job.want {
                        p.ledger.requeue(&job.cid);
                    }
                    msg.presences.push((cid, Presence::DontHave));
                }
            }
        }
        if !msg.is_empty() {
            if let Err(msg) = send(p, &self.sender_ctx, peer, msg) {
                p.held = Some(msg);
            }
        }
        self.enqueue(peer);
    }
}

/// Whether a peer's answer queue has room for another job's answers.
fn has_room(p: &Peer, max_bytes: usize) -> bool {
    match &p.out {
        Some(out) if !out.is_closed() => out.has_capacity() && out.queued_bytes() < max_bytes,
        _ => true,
    }
}

/// Queue a message to a peer, starting its sender if needed; gives it back if the queue is
/// full.
fn send(p: &mut Peer, ctx: &SenderCtx, peer: PeerId, msg: Message) -> Result<(), Message> {
    if p.out.as_ref().is_none_or(|o| o.is_closed()) {
        p.out = Some(wire::spawn_sender(peer, ctx.clone()));
    }
    let out = p.out.as_ref().expect("just set");
    match out.try_send(msg) {
        Ok(()) => Ok(()),
        Err(msg) if out.is_closed() => {
            // The sender exited between the check and the send: start a fresh one.
            let fresh = wire::spawn_sender(peer, ctx.clone());
            let r = fresh.try_send(msg);
            p.out = Some(fresh);
            r
        }
        Err(msg) => Err(msg),
    }
}

/// Answer `jobs` from the store (runs on the blocking pool). Stops taking blocks once about
/// one message's worth has been read; the rest go back to the ledger.
fn read_jobs(store: &Store, peer: PeerId, jobs: Vec<Job>) -> ReadDone {
    let mut answers = Vec::new();
    let mut rest = Vec::new();
    let mut bytes = 0usize;
    for job in jobs {
        if bytes >= TARGET_MESSAGE_SIZE {
            rest.push(job);
            continue;
        }
        if let Some(a) = answer(store, &job) {
            if let Answer::Block(b) = &a {
                bytes += b.data.len();
            }
            answers.push((job, a));
        }
    }
    ReadDone { peer, answers, rest }
}

fn answer(store: &Store, job: &Job) -> Option<Answer> {
    let missing = || job.send_dont_have.then_some(Answer::Presence(job.cid, Presence::DontHave));
    let size = match store.size(&job.cid) {
        Ok(Some(n)) if n <= MAX_BLOCK_SIZE as u64 => n,
        Ok(_) => return missing(),
        Err(e) => {
            tracing::warn!(cid = %job.cid, "reading the store for a peer: {e}");
            return missing();
        }
    };
    if job.want == WantType::Have && size > SMALL_BLOCK {
        return Some(Answer::Presence(job.cid, Presence::Have));
    }
    // Not re-hashed here: the receiver verifies every block (and drops a peer that sends wrong
    // bytes); `cairn repo verify` finds blocks corrupted on disk.
    match store.get_unverified(&job.cid) {
        Ok(Some(data)) => Some(Answer::Block(Block::new_unchecked(job.cid, data))),
        Ok(None) => missing(),
        Err(e) => {
            tracing::warn!(cid = %job.cid, "reading a block for a peer: {e}");
            missing()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DiskFiles, SledMeta};
    use bytes::Bytes;
    use cairn_protocol::cids::{cid_for, HashFn, RAW};

    fn block(data: Vec<u8>) -> Block {
        Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &data), Bytes::from(data))
    }

    fn job(cid: Cid, want: WantType, send_dont_have: bool) -> Job {
        Job { cid, want, send_dont_have }
    }

    #[test]
    fn answers_follow_the_want_type_and_the_size_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Box::new(DiskFiles::open(&dir.path().join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()),
        );
        let small = block(vec![1; SMALL_BLOCK as usize]);
        let large = block(vec![2; 4096]);
        let huge = block(vec![3; MAX_BLOCK_SIZE + 1]);
        store.put_many([small.clone(), large.clone(), huge.clone()]).unwrap();
        let absent = block(b"absent".to_vec()).cid;

        let is_block = |a: Option<Answer>, b: &Block| matches!(a, Some(Answer::Block(x)) if x == *b);
        let is_presence = |a: Option<Answer>, p: Presence| matches!(a, Some(Answer::Presence(_, x)) if x == p);
        // want-have: a small block comes itself, a larger one as HAVE.
        assert!(is_block(answer(&store, &job(small.cid, WantType::Have, false)), &small));
        assert!(is_presence(answer(&store, &job(large.cid, WantType::Have, false)), Presence::Have));
        // want-block: the block.
        assert!(is_block(answer(&store, &job(large.cid, WantType::Block, false)), &large));
        // Missing: DONT_HAVE only when asked for.
        assert!(is_presence(answer(&store, &job(absent, WantType::Have, true)), Presence::DontHave));
        assert!(answer(&store, &job(absent, WantType::Block, false)).is_none());
        // Over 2 MiB: never sent, answered as missing.
        assert!(is_presence(answer(&store, &job(huge.cid, WantType::Block, true)), Presence::DontHave));
        assert!(answer(&store, &job(huge.cid, WantType::Have, false)).is_none());
    }

    #[test]
    fn a_read_job_stops_after_about_one_message_of_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Box::new(DiskFiles::open(&dir.path().join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()),
        );
        let blocks: Vec<Block> = (0..5u8).map(|i| block(vec![i; 1024 * 1024])).collect();
        store.put_many(blocks.clone()).unwrap();
        let jobs = blocks.iter().map(|b| job(b.cid, WantType::Block, true)).collect();
        let done = read_jobs(&store, PeerId::random(), jobs);
        assert_eq!(done.answers.len(), 2, "2 MiB read, the rest left for the next turn");
        assert_eq!(done.rest.len(), 3);
    }

    #[test]
    fn fetch_errors_cross_thread_boundaries() {
        fn is_send_sync<T: Send + Sync + 'static>() {}
        is_send_sync::<crate::bitswap::FetchError>();
        is_send_sync::<crate::bitswap::Stats>();
    }
}
