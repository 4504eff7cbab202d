//! The Bitswap engine: trading blocks with any IPFS peer over `/ipfs/bitswap/1.2.0` (and
//! 1.1.0, 1.0.0, the legacy unversioned ID) on raw libp2p streams.
//!
//! [`Bitswap::start`] spawns the tasks below under the node's cancellation token; [`Bitswap`]
//! is the cloneable handle that talks to them through bounded channels. Nothing here runs on
//! the swarm task: streams come from a [`libp2p_stream::Control`], so block bytes are read,
//! decoded, hashed and written by Bitswap's own tasks.
//!
//! Tasks and what each one owns:
//! - the accept task (`wire::run_accept`): takes inbound streams of the four protocol IDs,
//!   bounded per peer and in total, and starts one reader task per stream;
//! - reader tasks (`wire::read_stream`): frame, size-check and decode one inbound stream
//!   (hashing every block), hand wants to the server and blocks/presences to the client; a
//!   protocol violation resets the stream and is reported as a strike against the peer;
//! - the server task (`server`): owns the per-peer ledgers, serves them round-robin with a
//!   bounded number of store reads on the blocking pool, and never waits on a peer;
//! - the client task (`client`): owns every want, the per-peer request state, the sessions
//!   and the penalty box; it decides which peer is asked for what;
//! - sender tasks (`wire::run_sender`): one per peer and role (server answers, client wants),
//!   each fed by a bounded queue; they negotiate the version, batch into messages of at most
//!   2 MiB and write them;
//! - the store writer (`writer`): one blocking thread writing fetched blocks behind the
//!   client, committing per batch, and telling the server which blocks it now has.
//!
//! Invariants: every queue is bounded; the server and client tasks never await a peer (they
//! only `try_send` into sender queues whose capacity they checked or they keep the entries);
//! a block is handed to a waiting `get` only if its bytes hash to a CID this node wants.
//!
//! The algorithm, limits and penalties are described in `specs/bitswap.md` ("Engine").

mod client;
mod ledger;
mod server;
mod session;
mod wire;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_protocol::Cid;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::net::Network;
use crate::store::{Store, StoreError};

pub use session::Session;

/// Commands queued for the client task before senders wait: sessions, readers and provider
/// searches all feed it, and it drains them in batches.
const CLIENT_QUEUE: usize = 256;

/// Commands queued for the server task before readers wait (backpressure on inbound wants).
const SERVER_QUEUE: usize = 256;

/// Local store reads that sessions may run at once (their own blocking-pool budget, separate
/// from the server's, so serving peers never delays local work).
const LOCAL_READS: usize = 32;

/// How long a banned peer is ignored, by both halves of the engine (here so that neither
/// imports the other for it).
pub(crate) const BAN_DURATION: Duration = Duration::from_secs(10 * 60);

/// How a node trades blocks. Every field has a documented default.
#[derive(Clone, Debug)]
pub struct BitswapConfig {
    /// How long a session waits for connected peers before asking the DHT for providers
    /// (boxo's `ProvSearchDelay`: 1 s).
    pub provider_search_delay: Duration,
    /// Least time between two provider searches of one session (10 s).
    pub provider_search_interval: Duration,
    /// How long a want may go unanswered by a peer (no HAVE/DONT_HAVE to a want-have, no
    /// block to a want-block while the peer sends nothing else) before another peer is
    /// asked (5 s). A want-block is also given up after four times this, whatever else the
    /// peer sends.
    pub request_timeout: Duration,
    /// Overall deadline of one [`Session::get`] (60 s).
    pub get_timeout: Duration,
    /// Want-blocks in flight to one peer (32): spreads a session over every peer that has
    /// the data and bounds what a slow peer can hold up.
    pub max_inflight_per_peer: usize,
    /// Store reads the server runs at once on the blocking pool (16).
    pub max_store_reads: usize,
    /// Answer bytes queued for one peer before its ledger waits for the stream (4 MiB).
    pub max_queued_bytes_per_peer: usize,
    /// Where the CIDs of fetched blocks go once durable, for `provide.strategy = all`.
    pub stored: Option<mpsc::Sender<Vec<Cid>>>,
    /// The serving budget blocks sent to peers spend (`network.max_upload_bytes_per_sec`).
    pub upload: Option<crate::throttle::Throttle>,
}

impl Default for BitswapConfig {
    fn default() -> Self {
        BitswapConfig {
            provider_search_delay: Duration::from_secs(1),
            provider_search_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            get_timeout: Duration::from_secs(60),
            max_inflight_per_peer: 32,
            max_store_reads: 16,
            max_queued_bytes_per_peer: 4 * 1024 * 1024,
            stored: None,
            upload: None,
        }
    }
}

/// Why a [`Session::get`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No peer delivered the block within [`BitswapConfig::get_timeout`].
    #[error("timed out fetching block {0}")]
    Timeout(Cid),
    /// The node already wants as many blocks as it tracks; retry later.
    #[error("too many blocks wanted at once; cannot fetch {0} now")]
    TooManyWants(Cid),
    /// Bitswap has stopped (the node is shutting down).
    #[error("bitswap is shut down")]
    Shutdown,
    /// The local store failed (reading the block before asking the network).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Bitswap's tasks have stopped (the node is shutting down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bitswap is shut down")]
pub struct Shutdown;

impl From<Shutdown> for FetchError {
    fn from(_: Shutdown) -> Self {
        FetchError::Shutdown
    }
}

/// What Bitswap has done since it started, and what it holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Wanted blocks received and verified.
    pub blocks_received: u64,
    /// Bytes of those blocks.
    pub bytes_received: u64,
    /// Blocks received again after they were already delivered (a race, not misbehaviour).
    pub dup_blocks: u64,
    /// Bytes of those duplicates.
    pub dup_bytes: u64,
    /// Blocks nobody here asked for (wrong bytes, or spam); each is a strike against the peer.
    pub unwanted_blocks: u64,
    /// Blocks sent to peers.
    pub blocks_sent: u64,
    /// Bytes of those blocks.
    pub bytes_sent: u64,
    /// Messages received and decoded.
    pub messages_received: u64,
    /// Inbound streams reset for a protocol violation (oversized or malformed message).
    pub protocol_violations: u64,
    /// Peers banned (disconnected and ignored) since start.
    pub peers_banned: u64,
    /// Prefetch hints dropped because the client queue was full (they cost latency only).
    pub hints_dropped: u64,
    /// Peers whose wants we hold (non-empty ledgers).
    pub ledger_peers: u64,
    /// Wants held across every ledger.
    pub ledger_wants: u64,
    /// Blocks this node wants now.
    pub wantlist_len: u64,
    /// Peers in the penalty box now.
    pub banned_now: u64,
}

/// Counters shared by every task (monotonic; relaxed atomics are enough for statistics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) blocks_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) dup_blocks: AtomicU64,
    pub(crate) dup_bytes: AtomicU64,
    pub(crate) unwanted_blocks: AtomicU64,
    pub(crate) blocks_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) protocol_violations: AtomicU64,
    pub(crate) peers_banned: AtomicU64,
    pub(crate) hints_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            blocks_received: get(&self.blocks_received),
            bytes_received: get(&self.bytes_received),
            dup_blocks: get(&self.dup_blocks),
            dup_bytes: get(&self.dup_bytes),
            unwanted_blocks: get(&self.unwanted_blocks),
            blocks_sent: get(&self.blocks_sent),
            bytes_sent: get(&self.bytes_sent),
            messages_received: get(&self.messages_received),
            protocol_violations: get(&self.protocol_violations),
            peers_banned: get(&self.peers_banned),
            hints_dropped: get(&self.hints_dropped),
            ..Stats::default()
        }
    }
}

/// Handle to the Bitswap engine. Cheap to clone.
#[derive(Clone)]
pub struct Bitswap {
    client: mpsc::Sender<client::Command>,
    server: mpsc::Sender<server::Command>,
    counters: Arc<Counters>,
    store: Store,
    local_reads: Arc<Semaphore>,
    get_timeout: Duration,
    next_session: Arc<AtomicU64>,
    tasks: Arc<tokio::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Bitswap {
    /// Start serving and fetching blocks over `net`, with `store` as the block source and
    /// sink. Every task stops when `shutdown` is cancelled; [`Bitswap::stopped`] waits for
    /// them. Must be called inside a tokio runtime.
    pub fn start(net: Network, store: Store, mut cfg: BitswapConfig, shutdown: CancellationToken) -> Bitswap {
        // Zero would stall every fetch or every answer.
        cfg.max_inflight_per_peer = cfg.max_inflight_per_peer.max(1);
        cfg.max_store_reads = cfg.max_store_reads.max(1);
        let counters = Arc::new(Counters::default());
        let (client_tx, client_rx) = mpsc::channel(CLIENT_QUEUE);
        let (server_tx, server_rx) = mpsc::channel(SERVER_QUEUE);
        let (wants_tx, wants_rx) = mpsc::channel(SERVER_QUEUE);
        let (peer_tx, peer_rx) = mpsc::channel(CLIENT_QUEUE);
        let (writer_tx, writer_task) = writer::spawn(store.clone(), server_tx.clone(), cfg.stored.take());
        let server_task = server::spawn(server::Server::new(
            &net,
            store.clone(),
            &cfg,
            counters.clone(),
            server_rx,
            wants_rx,
            shutdown.clone(),
        ));
        let client_task = client::spawn(client::Client::new(
            net.clone(),
            &cfg,
            counters.clone(),
            client_tx.clone(),
            client_rx,
            (peer_tx.clone(), peer_rx),
            server_tx.clone(),
            writer_tx,
            store.clone(),
            shutdown.clone(),
        ));
        let inbound =
            wire::Inbound { server: wants_tx, client: peer_tx, counters: counters.clone(), shutdown: shutdown.clone() };
        let accept_task = tokio::spawn(wire::run_accept(net.stream_control(), inbound));
        Bitswap {
            client: client_tx,
            server: server_tx,
            counters,
            store,
            local_reads: Arc::new(Semaphore::new(LOCAL_READS)),
            get_timeout: cfg.get_timeout,
            next_session: Arc::new(AtomicU64::new(1)),
            tasks: Arc::new(tokio::sync::Mutex::new(vec![accept_task, client_task, server_task, writer_task])),
        }
    }

    /// A new fetch session: the peers that serve one of its blocks are asked first for the
    /// next ones. Sessions are cheap; use one per file or DAG being read.
    pub fn session(&self) -> Session {
        self.session_with_timeout(self.get_timeout)
    }

    /// A session whose [`Session::get`] gives up on a block after `timeout` (the gateway's
    /// retrieval timeout) instead of [`BitswapConfig::get_timeout`].
    pub(crate) fn session_with_timeout(&self, timeout: Duration) -> Session {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        Session::new(
            id,
            self.client.clone(),
            self.store.clone(),
            self.local_reads.clone(),
            timeout,
            self.counters.clone(),
        )
    }

    /// Counters since start, plus the ledgers and wantlist as they are now.
    pub async fn stats(&self) -> Result<Stats, Shutdown> {
        let mut stats = self.counters.snapshot();
        let (tx, rx) = oneshot::channel();
        self.server.send(server::Command::Stats(tx)).await.map_err(|_| Shutdown)?;
        let (ledger_peers, ledger_wants) = rx.await.map_err(|_| Shutdown)?;
        let (tx, rx) = oneshot::channel();
        self.client.send(client::Command::Stats(tx)).await.map_err(|_| Shutdown)?;
        let (wantlist_len, banned_now) = rx.await.map_err(|_| Shutdown)?;
        stats.ledger_peers = ledger_peers as u64;
        stats.ledger_wants = ledger_wants as u64;
        stats.wantlist_len = wantlist_len as u64;
        stats.banned_now = banned_now as u64;
        Ok(stats)
    }

    /// The blocks this node is fetching now.
    pub async fn wantlist(&self) -> Result<Vec<Cid>, Shutdown> {
        let (tx, rx) = oneshot::channel();
        self.client.send(client::Command::Wantlist(tx)).await.map_err(|_| Shutdown)?;
        rx.await.map_err(|_| Shutdown)
    }

    /// The blocks `peer` wants from us (its ledger), empty when it has none.
    pub(crate) async fn peer_wantlist(&self, peer: PeerId) -> Result<Vec<Cid>, Shutdown> {
        let (tx, rx) = oneshot::channel();
        self.server.send(server::Command::PeerWantlist { peer, reply: tx }).await.map_err(|_| Shutdown)?;
        rx.await.map_err(|_| Shutdown)
    }

    /// Ask `peer` which of `cids` it holds (want-haves with sendDontHave, cancelled once
    /// answered): its answers within `wait`, whether it has each block. A CID it did not
    /// answer in time, or at all, is missing from the result.
    pub(crate) async fn probe(
        &self,
        peer: PeerId,
        cids: Vec<Cid>,
        wait: Duration,
    ) -> Result<Vec<(Cid, bool)>, Shutdown> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (answers, mut rx) = mpsc::channel(cids.len().max(1));
        let n = cids.len();
        self.client.send(client::Command::Probe { id, peer, cids, answers }).await.map_err(|_| Shutdown)?;
        let mut got = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + wait;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(a)) => got.push(a),
                // Every CID answered, or the peer went away, or the time is up.
                Ok(None) | Err(_) => break,
            }
        }
        self.client.send(client::Command::ProbeEnd { id, peer }).await.map_err(|_| Shutdown)?;
        Ok(got)
    }

    /// Whether `peer` is in the penalty box (it sent wrong blocks or broke the protocol).
    pub async fn is_banned(&self, peer: PeerId) -> Result<bool, Shutdown> {
        let (tx, rx) = oneshot::channel();
        self.client.send(client::Command::IsBanned { peer, reply: tx }).await.map_err(|_| Shutdown)?;
        rx.await.map_err(|_| Shutdown)
    }

    /// Wait until the accept, server, client and writer tasks have stopped (after the
    /// shutdown token was cancelled); fetched blocks still queued for the store are committed
    /// before this returns. Per-stream reader and sender tasks stop on the same token without
    /// being awaited (they hold no data that must survive).
    pub async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().await);
        for t in tasks {
            if let Err(e) = t.await {
                tracing::warn!("bitswap task ended abnormally: {e}");
            }
        }
    }
}
