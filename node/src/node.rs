//! A running node: the repo, the swarm task, Bitswap, all started together and stopped together.
//!
//! `Node::start` turns the repo's config into per-subsystem options, starts every task under one
//! cancellation token, and `Node::shutdown` cancels it, joins every task and flushes the store
//! last. Reads that may need the network go through [`Node::fetcher`], which serves blocks from
//! the store and fetches missing ones over Bitswap, with a read-ahead window in file order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_protocol::cids::DAG_PB;
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::reader::FetchError;
use cairn_protocol::Cid;
use libp2p::identity::Keypair;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bitswap::{Bitswap, BitswapConfig, Session};
use crate::net::{self, NetConfig, NetError, Network, TransportKind};
use crate::pinning::{self, PinRemoteError};
use crate::pins::PinKind;
use crate::provider::{Provider, Strategy};
use crate::repo::Repo;
use crate::store::Store;

/// Batches of fetched blocks waiting to enter the provide schedule (`provide.strategy = all`).
const STORED_QUEUE: usize = 64;

/// Blocks requested ahead of the reader, in file order: enough to keep every peer busy on a
/// fast link (1 MiB chunks: 16 MiB in flight; 32 was no faster on loopback), small enough to
/// keep a fetching daemon under 64 MiB.
pub const READ_AHEAD: usize = 16;

/// Errors starting or running a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The network could not start (bad address, port in use).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The identity key could not be used.
    #[error("identity key: {0}")]
    Identity(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Options beyond the repo's config (tests use the memory transport, for instance).
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Replace the network settings derived from the config.
    pub net: Option<NetConfig>,
    /// Bitswap settings.
    pub bitswap: BitswapConfig,
}

/// The network settings a repo's config asks for.
pub fn net_config(repo: &Repo) -> Result<NetConfig, NodeError> {
    let c = &repo.config().network;
    Ok(NetConfig {
        listen: net::parse_addrs(&c.listen)?,
        bootstrap: net::parse_addrs(&c.bootstrap)?,
        dht_mode: c.dht_mode,
        transport: TransportKind::Real,
        max_connections: c.max_connections,
        idle_timeout: Duration::from_secs(60),
        autonat: c.autonat,
    })
}

/// A started node. Dropping it without `shutdown` cancels its tasks but does not wait for them.
pub struct Node {
    repo: Arc<Repo>,
    net: Network,
    bitswap: Bitswap,
    provider: Provider,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Start the swarm and Bitswap over an open repo.
    pub async fn start(repo: Repo, opts: NodeOptions) -> Result<Node, NodeError> {
        let key = Keypair::ed25519_from_bytes(repo.identity().secret_bytes())
            .map_err(|e| NodeError::Identity(e.to_string()))?;
        let cfg = match opts.net {
            Some(c) => c,
            None => net_config(&repo)?,
        };
        let shutdown = CancellationToken::new();
        let (net, swarm_task) =
            net::task::spawn_with_store(key, &cfg, Some(repo.store().clone()), shutdown.child_token())?;
        let mut bitswap_cfg = opts.bitswap;
        let (stored_tx, mut stored_rx) = mpsc::channel::<Vec<Cid>>(STORED_QUEUE);
        if repo.config().provide.strategy == Strategy::All {
            bitswap_cfg.stored = Some(stored_tx);
        }
        let bitswap = Bitswap::start(net.clone(), repo.store().clone(), bitswap_cfg, shutdown.child_token());
        let provider = Provider::start(net.clone(), repo.store().clone(), shutdown.child_token());
        let announcer = provider.clone();
        let announce_fetched = tokio::spawn(async move {
            while let Some(cids) = stored_rx.recv().await {
                announcer.enqueue(cids).await;
            }
        });
        let budget = tokio::spawn(crate::cache::run(
            repo.store().clone(),
            repo.config().store.max_size_bytes,
            Duration::from_secs(repo.config().store.gc_period_secs),
            shutdown.child_token(),
        ));
        let node = Node {
            repo: Arc::new(repo),
            net,
            bitswap,
            provider,
            shutdown,
            tasks: vec![swarm_task, budget, announce_fetched],
        };
        node.resume_pins();
        Ok(node)
    }

    /// The repo (config, identity, store).
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The block store.
    pub fn store(&self) -> &Store {
        self.repo.store()
    }

    /// The network handle.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// The Bitswap handle.
    pub fn bitswap(&self) -> &Bitswap {
        &self.bitswap
    }

    /// The DHT announcement schedule.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// A cancellation token that fires when the node shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A blocking block source for the DAG reader: the store first, then the network through
    /// one Bitswap session, asking for the next [`READ_AHEAD`] blocks in file order as soon as
    /// their parent is known. Call it from a blocking thread (`spawn_blocking`).
    pub fn fetcher(&self) -> impl FnMut(&Cid) -> Result<Bytes, FetchError> + Send + 'static {
        self.fetcher_session(self.bitswap.session())
    }

    /// [`Node::fetcher`] that fails a block with [`crate::bitswap::FetchError::Timeout`] when
    /// no peer delivers it within `timeout`.
    pub fn fetcher_with_timeout(
        &self,
        timeout: Duration,
    ) -> impl FnMut(&Cid) -> Result<Bytes, FetchError> + Send + 'static {
        self.fetcher_session(self.bitswap.session_with_timeout(timeout))
    }

    fn fetcher_session(&self, session: Session) -> impl FnMut(&Cid) -> Result<Bytes, FetchError> + Send + 'static {
        let store = self.store().clone();
        let mut ahead = ReadAhead::new(session, tokio::runtime::Handle::current());
        move |cid: &Cid| {
            let b = match ahead.take(cid) {
                Some(b) => b,
                None => match store.get(cid)? {
                    Some(b) => b,
                    None => {
                        ahead.advance(cid, &store);
                        ahead.fetch(cid)?
                    }
                },
            };
            ahead.learn(cid, &b, &store);
            Ok(b)
        }
    }

    /// Announce newly added or pinned roots to the DHT as `provide.strategy` says: the roots
    /// only, or every block of their DAGs. Returns once the keys are in the durable schedule.
    pub async fn announce(&self, roots: Vec<Cid>) {
        let keys = match self.repo.config().provide.strategy {
            Strategy::Roots => roots,
            Strategy::Pinned | Strategy::All => {
                let store = self.store().clone();
                tokio::task::spawn_blocking(move || {
                    let mut keys = Vec::new();
                    for root in roots {
                        let _ = crate::dag::walk(&store, &root, crate::dag::WalkMode::LinksOnly, true, &mut |c, _| {
                            keys.push(*c);
                            Ok(())
                        });
                    }
                    keys
                })
                .await
                .unwrap_or_default()
            }
        };
        self.provider.enqueue(keys).await;
    }

    /// Fetch (from the network if needed) and pin the DAG under `root`; resumes after a restart
    /// if interrupted.
    pub async fn pin_remote(
        &self,
        root: Cid,
        kind: PinKind,
        name: Option<String>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), PinRemoteError> {
        pinning::pin_remote(self.store(), &self.bitswap.session(), root, kind, name, progress).await
    }

    /// Restart pins that were interrupted, in the background.
    fn resume_pins(&self) {
        let (store, session, token) = (self.store().clone(), self.bitswap.session(), self.shutdown.child_token());
        tokio::spawn(async move {
            let Ok(pending) = pinning::pending(&store).await else { return };
            for (root, kind) in pending {
                tracing::info!(%root, "resuming an interrupted pin");
                tokio::select! {
                    _ = token.cancelled() => return,
                    r = pinning::pin_remote(&store, &session, root, kind, None, &|_| {}) => {
                        if let Err(e) = r {
                            tracing::warn!(%root, "resumed pin failed: {e}");
                        }
                    }
                }
            }
        });
    }

    /// Stop every task, then flush the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.bitswap.stopped().await;
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.repo.store().sync() {
            tracing::warn!("flushing the store at shutdown: {e}");
        }
    }
}

/// The blocks a reader will want next, in file order, and those of them already being fetched.
///
/// Each block of the window is fetched by its own [`Session::get`] and kept, verified, until
/// the reader takes it: the reader neither hashes it a second time nor reads it back from disk
/// (block files are written past the page cache). At most [`READ_AHEAD`] blocks are in flight
/// or waiting; dropping the reader aborts them.
struct ReadAhead {
    session: Session,
    handle: tokio::runtime::Handle,
    upcoming: VecDeque<Cid>,
    inflight: HashMap<Cid, JoinHandle<Result<Bytes, crate::bitswap::FetchError>>>,
}

impl ReadAhead {
    fn new(session: Session, handle: tokio::runtime::Handle) -> Self {
        ReadAhead { session, handle, upcoming: VecDeque::new(), inflight: HashMap::new() }
    }

    /// The block, if it was fetched ahead (waiting for it if it is still on its way). A failed
    /// fetch ahead returns `None`: the caller asks again, with a fresh deadline.
    fn take(&mut self, cid: &Cid) -> Option<Bytes> {
        let task = self.inflight.remove(cid)?;
        self.handle.block_on(task).ok()?.ok()
    }

    /// Fetch one block the reader needs now.
    fn fetch(&self, cid: &Cid) -> Result<Bytes, FetchError> {
        Ok(self.handle.block_on(self.session.get(*cid))?)
    }

    /// The reader got `cid`: if it is a dag-pb node, its children come next, before whatever
    /// was queued after it.
    fn learn(&mut self, cid: &Cid, data: &Bytes, store: &Store) {
        if cid.codec() == DAG_PB {
            if let Ok(node) = PbNode::decode(data) {
                for link in node.links.iter().rev() {
                    self.upcoming.push_front(link.hash);
                }
            }
        }
        self.advance(cid, store);
    }

    /// The reader is at `cid`: drop it and what precedes it, and start fetching the blocks of
    /// the next window that are neither stored nor already on their way.
    fn advance(&mut self, cid: &Cid, store: &Store) {
        if let Some(i) = self.upcoming.iter().position(|c| c == cid) {
            for passed in self.upcoming.drain(..=i) {
                if let Some(task) = self.inflight.remove(&passed) {
                    task.abort();
                }
            }
        }
        for next in self.upcoming.iter().take(READ_AHEAD) {
            if self.inflight.contains_key(next) || store.has(next).unwrap_or(false) {
                continue;
            }
            let session = self.session.clone();
            let cid = *next;
            self.inflight.insert(cid, self.handle.spawn(async move { session.get(cid).await }));
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for task in self.inflight.values() {
            task.abort();
        }
    }
}
