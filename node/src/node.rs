//! A running node: the repo, the swarm task, Bitswap, all started together and stopped together.
//!
//! `Node::start` turns the repo's config into per-subsystem options, starts every task under one
//! cancellation token and one [`TaskTracker`], and `Node::shutdown` cancels the token, waits for
//! every tracked task (the swarm task, which joins its record-persistence thread; Bitswap; the
//! provider and its sweeps; the storage budget; pin resumption; memory trimming) and flushes the
//! store last. Reads that may need the network go through [`Node::blocks`] (async) or
//! [`Node::fetcher`] (blocking), which serve blocks from the store and fetch missing ones over
//! Bitswap, with a read-ahead window in file order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_protocol::reader::SourceError;
use cairn_protocol::Cid;
use libp2p::identity::Keypair;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bitswap::{Bitswap, BitswapConfig, Session};
use crate::dag_read::Blocks;
use crate::follow::{self, Follows};
use crate::metrics::Metrics;
use crate::names::{lookup::Rule, Names, NamesConfig};
use crate::net::{self, NetConfig, NetError, Network, TransportKind};
use crate::pinning::{self, InProgress, PinRemoteError};
use crate::pins::PinKind;
use crate::provider::{Provider, Strategy};
use crate::repo::Repo;
use crate::store::Store;

/// Batches of fetched blocks waiting to enter the provide schedule (`provide.strategy = all`).
const STORED_QUEUE: usize = 64;

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
pub(crate) fn net_config(repo: &Repo) -> Result<NetConfig, NodeError> {
    let c = &repo.config().network;
    Ok(NetConfig {
        listen: net::parse_addrs(&c.listen)?,
        bootstrap: net::parse_addrs(&c.bootstrap)?,
        announce: net::parse_addrs(&c.announce)?,
        dht_mode: c.dht_mode,
        transport: TransportKind::Real,
        max_connections: c.max_connections,
        max_pending: c.max_pending_connections,
        max_dials_per_sec: c.max_dials_per_sec,
        idle_timeout: Duration::from_secs(60),
        autonat: c.autonat,
        autonat_private_addrs: c.autonat_private_addrs,
        upnp: c.discovery,
        pubsub: repo.config().ipns.pubsub,
        dns_servers: c.dns_servers.iter().filter_map(|s| s.parse().ok()).collect(),
        mdns: c.discovery,
        relay_reservations: c.relay_reservations as usize,
        relay_service: c.relay_service.then(|| net::RelayLimits {
            max_circuit_bytes: c.relay_max_circuit_bytes,
            max_circuit_duration: Duration::from_secs(c.relay_max_circuit_secs),
        }),
        hole_punching: c.hole_punching,
        dht_auto_bootstrap: true,
        dht_table_inserts: true,
    })
}

/// The name service's settings from the repo's `[ipns]` section.
fn names_config(repo: &Repo) -> NamesConfig {
    let c = &repo.config().ipns;
    NamesConfig {
        rule: Rule {
            enough: c.resolve_answers.max(1),
            settle: Duration::from_millis(c.resolve_settle_ms),
            ..Rule::default()
        },
        republish_every: Duration::from_secs(c.republish_interval_secs.max(60)),
        pubsub: c.pubsub,
    }
}

/// A started node. Dropping it without `shutdown` cancels its tasks but does not wait for them.
pub struct Node {
    repo: Arc<Repo>,
    net: Network,
    bitswap: Bitswap,
    provider: Provider,
    names: Names,
    follows: Follows,
    upload: Option<crate::throttle::Throttle>,
    pinning: InProgress,
    metrics: Arc<Metrics>,
    gateway_url: std::sync::OnceLock<String>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
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
        let tasks = TaskTracker::new();
        let mut registry = prometheus_client::registry::Registry::default();
        let (net, swarm_task) =
            net::task::spawn_with_store(key, &cfg, Some(repo.store().clone()), &mut registry, shutdown.child_token())?;
        let metrics = Arc::new(Metrics::new(registry));
        let mut bitswap_cfg = opts.bitswap;
        let upload = crate::throttle::Throttle::new(repo.config().network.max_upload_bytes_per_sec);
        bitswap_cfg.upload = upload.clone();
        let (stored_tx, mut stored_rx) = mpsc::channel::<Vec<Cid>>(STORED_QUEUE);
        if repo.config().provide.strategy == Strategy::All {
            bitswap_cfg.stored = Some(stored_tx);
        }
        let bitswap = Bitswap::start(net.clone(), repo.store().clone(), bitswap_cfg, shutdown.child_token());
        tasks.spawn(async move {
            let _ = swarm_task.await;
        });
        let provider = Provider::start(net.clone(), repo.store().clone(), shutdown.child_token(), &tasks);
        let announcer = provider.clone();
        let stop = shutdown.child_token();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    batch = stored_rx.recv() => match batch {
                        Some(cids) => announcer.enqueue(cids).await,
                        None => break,
                    },
                }
            }
        });
        tasks.spawn(crate::cache::run(
            repo.store().clone(),
            repo.config().store.max_size_bytes,
            Duration::from_secs(repo.config().store.gc_period_secs),
            shutdown.child_token(),
        ));
        tasks.spawn(crate::memory::run(shutdown.child_token()));
        let names = Names::start(
            net.clone(),
            repo.store().handle(),
            repo.keystore(),
            names_config(&repo),
            shutdown.child_token(),
            &tasks,
        );
        let pinning = InProgress::default();
        let c = repo.config();
        let env = follow::Env {
            store: repo.store().clone(),
            bitswap: bitswap.clone(),
            names: names.clone(),
            net: net.clone(),
            provider: provider.clone(),
            strategy: c.provide.strategy,
            pinning: pinning.clone(),
            interval: Duration::from_secs(c.follow.check_interval_secs.max(1)),
            grace: Duration::from_secs(c.follow.grace_secs),
            republish_every: Duration::from_secs(c.ipns.republish_interval_secs.max(60)),
            block_timeout: Duration::from_secs(c.follow.block_timeout_secs.max(1)),
        };
        let follows = Follows::start(env, shutdown.child_token(), &tasks);
        let node = Node {
            repo: Arc::new(repo),
            net,
            bitswap,
            provider,
            names,
            follows,
            upload,
            pinning,
            metrics,
            gateway_url: std::sync::OnceLock::new(),
            shutdown,
            tasks,
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

    /// The Prometheus metrics (`/debug/metrics/prometheus`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Record where this node's gateway serves (`http://IP:PORT`), once it is bound, so the
    /// API can tell clients (the dashboard's links).
    pub fn set_gateway_url(&self, url: String) {
        let _ = self.gateway_url.set(url);
    }

    /// The gateway's URL, if one is serving.
    pub fn gateway_url(&self) -> Option<&str> {
        self.gateway_url.get().map(String::as_str)
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

    /// The IPNS name service.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The follows (names and CIDs kept at their latest version).
    pub fn follows(&self) -> &Follows {
        &self.follows
    }

    /// The serving budget (`network.max_upload_bytes_per_sec`), if there is one.
    pub(crate) fn upload(&self) -> Option<&crate::throttle::Throttle> {
        self.upload.as_ref()
    }

    /// A cancellation token that fires when the node shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A blocking block source for the DAG reader: the store first, then the network through
    /// one Bitswap session, asking for the next [`crate::read_ahead::READ_AHEAD`] blocks in
    /// file order as soon as their parent is known. Call it from a blocking thread; async code
    /// reads through [`Node::blocks`].
    pub fn fetcher(&self) -> impl FnMut(&Cid) -> Result<Bytes, SourceError> + Send + 'static {
        let mut blocks = self.blocks(CancellationToken::new());
        move |cid: &Cid| (blocks.sync())(cid)
    }

    /// An async block source for one read: the store, then the network with read-ahead.
    pub fn blocks(&self, token: CancellationToken) -> Blocks {
        Blocks::new(self.store().clone(), Some(self.bitswap.session()), token)
    }

    /// A Bitswap session whose blocks give up after `timeout` (the gateway's retrieval
    /// timeout).
    pub(crate) fn session_with_timeout(&self, timeout: Duration) -> Session {
        self.bitswap.session_with_timeout(timeout)
    }

    /// Announce newly added or pinned roots to the DHT as `provide.strategy` says: the roots
    /// only, or every block of their DAGs. Returns once the keys are in the durable schedule.
    pub async fn announce(&self, roots: Vec<Cid>) {
        crate::provider::announce(self.store(), &self.provider, self.repo.config().provide.strategy, roots).await;
    }

    /// Fetch (from the network if needed) and pin the DAG under `root`; resumes after a restart
    /// if interrupted. Its progress shows in [`Node::pinning`] meanwhile.
    pub(crate) async fn pin_remote(
        &self,
        root: Cid,
        kind: PinKind,
        name: Option<String>,
    ) -> Result<(), PinRemoteError> {
        pinning::pin_remote(self.store(), &self.bitswap.session(), root, kind, name, &self.pinning).await
    }

    /// The DAGs being fetched for pins now (`pin add`, resumed pins, follows).
    pub(crate) fn pinning(&self) -> &InProgress {
        &self.pinning
    }

    /// Restart pins that were interrupted, in the background.
    fn resume_pins(&self) {
        let (store, session, token) = (self.store().clone(), self.bitswap.session(), self.shutdown.child_token());
        let progress = self.pinning.clone();
        self.tasks.spawn(async move {
            let Ok(pending) = pinning::pending(&store).await else { return };
            for (root, kind) in pending {
                tracing::info!(%root, "resuming an interrupted pin");
                tokio::select! {
                    _ = token.cancelled() => return,
                    r = pinning::pin_remote(&store, &session, root, kind, None, &progress) => {
                        if let Err(e) = r {
                            tracing::warn!(%root, "resumed pin failed: {e}");
                        }
                    }
                }
            }
        });
    }

    /// Stop every task and wait for it, then flush the store. Callers that still hold the
    /// node (requests being answered) see its handles fail from then on.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.bitswap.stopped().await;
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.repo.store().sync() {
            tracing::warn!("flushing the store at shutdown: {e}");
        }
    }

    /// Tasks still running (0 once [`Node::shutdown`] returned).
    pub fn running_tasks(&self) -> usize {
        self.tasks.len()
    }
}
