//! IPNS names: publishing this node's names and resolving anyone's, fast and without trading
//! away correctness (the rule is in `specs/ipns.md`).
//!
//! One actor owns the resolver's cache and the lookups in flight ([`Names`] is its handle):
//! - a cached record younger than its TTL answers at once; past half its TTL, a lookup
//!   refreshes it in the background;
//! - otherwise a DHT lookup runs ([`lookup`]): it answers with the best valid record once
//!   [`Rule::enough`] peers have sent one or [`Rule::settle`] after the first, whichever
//!   comes first, and keeps listening until the walk ends, so that a higher sequence found
//!   later replaces the answer in the cache;
//! - records published here, and records received another way, enter the cache directly.
//!
//! Publishing signs with a key of the keystore, keeps the record in the store
//! ([`published`]) and puts it into the DHT; a republish task re-signs every own record with a
//! fresh end of life on a schedule, so names stay resolvable while the daemon runs.
//!
//! With IPNS over PubSub on, each record published here also goes out on its name's gossipsub
//! topic, and a name resolved here is followed on its topic: a newer record arriving there
//! (validated before gossipsub forwards it) replaces the cached one at once. On subscribing,
//! the node asks the topic's peers for their record over the Fetch protocol, and it answers
//! such requests with what it holds.
//!
//! Module map:
//! - [`published`]: this node's own records in the store; signing; sequence numbers.
//! - [`lookup`]: one DHT lookup under the answer rule.
//! - `actor`: the cache, the lookups in flight and the topics followed.
//! - [`path`]: following `/ipns/` paths through names.
//! - `pubsub`: the Fetch protocol, asking and answering.

mod actor;
pub mod lookup;
pub mod path;
pub mod published;
mod pubsub;

use std::sync::Arc;
use std::time::Duration;

use cairn_protocol::names::Name;
use cairn_protocol::records::{self, IpnsRecord, RecordError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::{now_nanos, NetError, Network};
use crate::repo::keystore::{KeyError, Keystore};
use crate::store::{AsyncStore, StoreError};
use actor::{Actor, Command};
use lookup::Rule;
pub use path::follow;
use published::Own;

/// Names whose records the cache keeps; past it, the one fetched longest ago goes.
const MAX_CACHED: usize = 4096;

/// Commands queued for the actor.
const COMMANDS: usize = 256;

/// Name updates buffered for each listener (a listener that lags re-checks every name).
const UPDATES: usize = 64;

/// Name topics followed at most; names resolved past it are not followed (their records
/// still refresh from the DHT).
const MAX_TOPICS: usize = 256;

/// DHT lookups in flight at most; a resolve that needs one more is refused
/// ([`NameError::Busy`]) rather than queued, so a flood of made-up names cannot pile up walks.
const MAX_LOOKUPS: usize = 64;

/// Topic peers asked for the latest record when a topic is joined.
const FETCH_PEERS: usize = 3;

/// How often a name is followed through other names (`/ipns/a` → `/ipns/b` → …) before
/// resolution gives up, as kubo.
pub const MAX_DEPTH: usize = 32;

/// The DHT key under which the nodes that follow `name` announce themselves: its PubSub
/// topic's rendezvous key, so kubo's topic discovery finds them too. Followers provide it
/// whether PubSub is on or not; `cairn health` looks holders up there.
pub fn followers_key(name: &Name) -> cairn_protocol::Cid {
    pubsub::rendezvous_key(&name.pubsub_topic())
}

/// Why a name operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// No valid record was found.
    #[error("could not resolve name {0}: no valid record found (is its publisher's or a follower's node online?)")]
    NotFound(Name),
    /// The keystore refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A record could not be made or was refused.
    #[error("IPNS record: {0}")]
    Record(#[from] RecordError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The value is not a path names can point at.
    #[error("{0}")]
    BadValue(String),
    /// Names point at names more than [`MAX_DEPTH`] deep (or in a loop).
    #[error("still at {0} after following 32 names: they point too deep, or in a circle")]
    TooDeep(String),
    /// Too many lookups are in flight.
    #[error("too many name lookups in flight; try again shortly")]
    Busy,
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Shutdown,
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The cache, within the record's TTL.
    Cache,
    /// A lookup that just ran.
    Network,
    /// This node's store (no network).
    Local,
}

/// A name resolved one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The name.
    pub name: Name,
    /// What its record points at (`/ipfs/…` or `/ipns/…`).
    pub value: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// How long the answer may be cached.
    pub ttl: Duration,
    /// The record's end of life, Unix nanoseconds.
    pub eol_nanos: i128,
    /// The signed record.
    pub record: Vec<u8>,
    /// Where it came from.
    pub source: Source,
}

impl Resolved {
    /// The answer a verified record gives for `name`.
    pub(crate) fn new(name: Name, r: &IpnsRecord, bytes: Vec<u8>, source: Source) -> Resolved {
        Resolved {
            name,
            value: String::from_utf8_lossy(&r.value).into_owned(),
            sequence: r.sequence,
            ttl: Duration::from_nanos(r.ttl_nanos),
            eol_nanos: r.eol_nanos,
            record: bytes,
            source,
        }
    }
}

/// A record just published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The name.
    pub name: Name,
    /// The value it now points at.
    pub value: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// Why the DHT did not take the record, if it did not (it is kept and republished).
    pub dht_error: Option<String>,
}

/// Settings of the name service.
#[derive(Clone, Debug)]
pub struct NamesConfig {
    /// When lookups answer.
    pub rule: Rule,
    /// How often own records are re-signed and put again.
    pub republish_every: Duration,
    /// IPNS over PubSub (the network's gossipsub must be on too).
    pub pubsub: bool,
}

impl Default for NamesConfig {
    fn default() -> Self {
        NamesConfig { rule: Rule::default(), republish_every: Duration::from_secs(4 * 3600), pubsub: true }
    }
}
/// Handle to the name service. Cheap to clone.
#[derive(Clone)]
pub struct Names {
    tx: mpsc::Sender<Command>,
    net: Network,
    store: AsyncStore,
    keystore: Arc<Keystore>,
    /// One publish at a time: each reads the last sequence number, then writes the next.
    publishing: Arc<tokio::sync::Mutex<()>>,
    updates: broadcast::Sender<(Name, u64)>,
}

impl Names {
    /// Start the actor and the republish task under `tasks`.
    pub fn start(
        net: Network,
        store: AsyncStore,
        keystore: Keystore,
        cfg: NamesConfig,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Names {
        let (tx, rx) = mpsc::channel(COMMANDS);
        let (updates, _) = broadcast::channel(UPDATES);
        let names = Names {
            tx: tx.clone(),
            net: net.clone(),
            store,
            keystore: Arc::new(keystore),
            publishing: Default::default(),
            updates: updates.clone(),
        };
        let actor = Actor::new(net.clone(), tx.clone(), cfg.rule, cfg.pubsub, updates, tasks, shutdown.clone());
        tasks.spawn(actor.run(rx));
        if cfg.pubsub {
            let record_of = move |name: Name| {
                let tx = tx.clone();
                async move {
                    let (reply, rx) = oneshot::channel();
                    tx.send(Command::Record { name, reply }).await.ok()?;
                    rx.await.ok().flatten()
                }
            };
            tasks.spawn(pubsub::serve(net.stream_control(), record_of, shutdown.clone()));
        }
        tasks.spawn(names.clone().republish(cfg.republish_every, shutdown));
        names
    }

    /// Every newer record the service learns from now on (a lookup, PubSub, Fetch, a
    /// publish), as the name and its sequence number.
    pub fn updates(&self) -> broadcast::Receiver<(Name, u64)> {
        self.updates.subscribe()
    }

    /// Resolve `name` one step: from the cache within the record's TTL (unless `fresh`),
    /// else through the DHT.
    pub async fn resolve(&self, name: Name, fresh: bool) -> Result<Resolved, NameError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Resolve { name, fresh, reply }).await.map_err(|_| NameError::Shutdown)?;
        rx.await.map_err(|_| NameError::Shutdown)?
    }

    /// A record received another way (PubSub): kept in the DHT record store and the cache if
    /// it is valid and newer. Answers whether the DHT record store kept it (a newer record, or
    /// the same one again).
    pub async fn offer(&self, name: Name, bytes: Vec<u8>) -> Result<bool, NameError> {
        let record = records::validate_ipns(&name.peer_id(), &bytes, now_nanos())?;
        let kept = self.net.offer_value(name.routing_key(), bytes.clone()).await?;
        let _ = self.tx.send(Command::Learned { name, record, bytes, settled: false }).await;
        Ok(kept)
    }

    /// Sign a record pointing `key`'s name at `value`, keep it, put it into the DHT.
    pub async fn publish(
        &self,
        key: &str,
        value: String,
        lifetime: Duration,
        ttl: Duration,
    ) -> Result<Published, NameError> {
        let one = self.publishing.lock().await;
        let (ks, k) = (self.keystore.clone(), key.to_string());
        let keypair = tokio::task::spawn_blocking(move || ks.get(&k)).await.map_err(|_| NameError::Shutdown)??;
        let name = Name::new(keypair.public().to_peer_id());
        let seen = self.peek(name).await;
        let sequence = self.store.call(move |s| published::next_sequence(s, &name, seen)).await?;
        let bytes = published::sign(&keypair, &value, sequence, lifetime, ttl)?;
        let own = Own { name, key: key.to_string(), lifetime, bytes };
        let saved = own.clone();
        self.store.call(move |s| published::save(s, &saved)).await?;
        drop(one);
        let dht_error = self.announce(&own).await;
        Ok(Published { name, value, sequence, dht_error })
    }

    /// The sequence number of the record cached for `name`, without a lookup.
    async fn peek(&self, name: Name) -> Option<u64> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Peek { name, reply }).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Put an own record into the cache, its PubSub topic and the DHT; the DHT's refusal, if
    /// any, as text.
    async fn announce(&self, own: &Own) -> Option<String> {
        if let Ok(record) = records::validate_ipns(&own.name.peer_id(), &own.bytes, now_nanos()) {
            let learned = Command::Learned { name: own.name, record, bytes: own.bytes.clone(), settled: true };
            let _ = self.tx.send(learned).await;
        }
        let _ = self.tx.send(Command::Follow { name: own.name }).await;
        let topic = own.name.pubsub_topic();
        // Flood publishing reaches the topic's peers known now; followers that join later
        // fetch the record.
        let _ = self.net.pubsub_subscribe(topic.clone()).await;
        if let Err(e) = self.net.pubsub_publish(topic, own.bytes.clone()).await {
            tracing::debug!(name = %own.name, "not published on PubSub: {e}");
        }
        match self.net.put_value(own.name.routing_key(), own.bytes.clone()).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(name = %own.name, "IPNS record kept here but not stored in the DHT: {e}");
                Some(e.to_string())
            }
        }
    }

    /// Re-sign every own record with a fresh end of life (same value, same sequence) and put
    /// it again: once the node has peers, then every `every`.
    async fn republish(self, every: Duration, shutdown: CancellationToken) {
        // However long the node takes to find peers: a put before then reaches no one.
        loop {
            if shutdown.is_cancelled() || self.net.routing_table().await.map(|t| !t.is_empty()).unwrap_or(false) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = self.republish_all().await {
                tracing::warn!("republishing IPNS records: {e}");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn republish_all(&self) -> Result<(), NameError> {
        let one = self.publishing.lock().await;
        let ks = self.keystore.clone();
        let renewed = self
            .store
            .call(move |s| {
                let mut out = Vec::new();
                for mut own in published::all(s)? {
                    let Ok(old) = records::validate_ipns(&own.name.peer_id(), &own.bytes, i128::MIN) else { continue };
                    let Ok(key) = ks.get(&own.key) else {
                        tracing::warn!(name = %own.name, key = %own.key, "not republished: its key is gone");
                        continue;
                    };
                    if key.public().to_peer_id() != own.name.peer_id() {
                        // The key name now holds another key (renamed or imported over): the
                        // last good record stays as it is.
                        tracing::warn!(name = %own.name, key = %own.key, "not republished: that key signs another name now");
                        continue;
                    }
                    let value = String::from_utf8_lossy(&old.value).into_owned();
                    let ttl = Duration::from_nanos(old.ttl_nanos);
                    let Ok(bytes) = published::sign(&key, &value, old.sequence, own.lifetime, ttl) else { continue };
                    own.bytes = bytes;
                    published::save(s, &own)?;
                    out.push(own);
                }
                Ok(out)
            })
            .await?;
        // Signed and saved: the DHT walks need not hold up a publish.
        drop(one);
        for own in &renewed {
            self.announce(own).await;
        }
        if !renewed.is_empty() {
            tracing::info!(names = renewed.len(), "IPNS records republished");
        }
        Ok(())
    }
}
