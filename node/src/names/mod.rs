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
//! - `pubsub`: the Fetch protocol, asking and answering.

pub mod lookup;
pub mod published;
mod pubsub;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_protocol::names::Name;
use cairn_protocol::records::{self, IpnsRecord, RecordError};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::{now_nanos, NetError, Network};
use crate::repo::keystore::{KeyError, Keystore};
use crate::store::{AsyncStore, StoreError};
use lookup::Rule;
use published::Own;

/// Names whose records the cache keeps; past it, the one fetched longest ago goes.
const MAX_CACHED: usize = 4096;

/// Commands queued for the actor.
const COMMANDS: usize = 256;

/// Name topics followed at most; names resolved past it are not followed (their records
/// still refresh from the DHT).
const MAX_TOPICS: usize = 256;

/// Topic peers asked for the latest record when a topic is joined.
const FETCH_PEERS: usize = 3;

/// How often a name is followed through other names (`/ipns/a` → `/ipns/b` → …) before
/// resolution gives up, as kubo.
pub const MAX_DEPTH: usize = 32;

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
    #[error("name {0} points through more than 32 other names (or in a circle)")]
    TooDeep(String),
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
    fn new(name: Name, r: &IpnsRecord, bytes: Vec<u8>, source: Source) -> Resolved {
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

enum Command {
    Resolve {
        name: Name,
        fresh: bool,
        reply: oneshot::Sender<Result<Resolved, NameError>>,
    },
    /// A valid record learnt: from a lookup (`settled` once the rule answered), a publish or
    /// another route.
    Learned {
        name: Name,
        record: IpnsRecord,
        bytes: Vec<u8>,
        settled: bool,
    },
    /// A lookup's walk ended.
    LookupEnded {
        name: Name,
    },
    /// The sequence number of the cached record, if any (no lookup).
    Peek {
        name: Name,
        reply: oneshot::Sender<Option<u64>>,
    },
    /// The cached record's bytes, if any (for Fetch requests).
    Record {
        name: Name,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// Follow a name on its PubSub topic.
    Follow {
        name: Name,
    },
    /// A record from a peer (Fetch), not yet validated.
    Fetched {
        name: Name,
        bytes: Vec<u8>,
    },
    /// Ask these peers of a followed name's topic for their record.
    FetchFrom {
        name: Name,
        peers: Vec<PeerId>,
    },
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
        let names = Names {
            tx: tx.clone(),
            net: net.clone(),
            store,
            keystore: Arc::new(keystore),
            publishing: Default::default(),
        };
        let actor = Actor {
            net: net.clone(),
            tx: tx.clone(),
            rule: cfg.rule,
            cache: HashMap::new(),
            lookups: HashMap::new(),
            topics: HashMap::new(),
            pubsub: cfg.pubsub,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(actor.run(rx));
        if cfg.pubsub {
            tasks.spawn(pubsub::serve(net.stream_control(), tx, shutdown.clone()));
        }
        tasks.spawn(names.clone().republish(cfg.republish_every, shutdown));
        names
    }

    /// Resolve `name` one step: from the cache within the record's TTL (unless `fresh`),
    /// else through the DHT.
    pub async fn resolve(&self, name: Name, fresh: bool) -> Result<Resolved, NameError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Resolve { name, fresh, reply }).await.map_err(|_| NameError::Shutdown)?;
        rx.await.map_err(|_| NameError::Shutdown)?
    }

    /// A record received another way (PubSub): kept in the DHT record store and the cache if
    /// it is valid and newer. Answers whether it was newer than what this node held.
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
        let _one = self.publishing.lock().await;
        let (ks, k) = (self.keystore.clone(), key.to_string());
        let keypair = tokio::task::spawn_blocking(move || ks.get(&k)).await.map_err(|_| NameError::Shutdown)??;
        let name = Name::new(keypair.public().to_peer_id());
        let seen = self.peek(name).await;
        let sequence = self.store.call(move |s| published::next_sequence(s, &name, seen)).await?;
        let bytes = published::sign(&keypair, &value, sequence, lifetime, ttl)?;
        let own = Own { name, key: key.to_string(), lifetime, bytes };
        let saved = own.clone();
        self.store.call(move |s| published::save(s, &saved)).await?;
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
        for _ in 0..60 {
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
        let _one = self.publishing.lock().await;
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
        for own in &renewed {
            self.announce(own).await;
        }
        if !renewed.is_empty() {
            tracing::info!(names = renewed.len(), "IPNS records republished");
        }
        Ok(())
    }
}

struct Cached {
    record: IpnsRecord,
    bytes: Vec<u8>,
    fetched: Instant,
}

/// A lookup in flight: who waits for its answer (nobody once it answered, or for a refresh).
struct Lookup {
    waiters: Vec<oneshot::Sender<Result<Resolved, NameError>>>,
}

struct Actor {
    net: Network,
    tx: mpsc::Sender<Command>,
    rule: Rule,
    cache: HashMap<Name, Cached>,
    lookups: HashMap<Name, Lookup>,
    /// Name topics joined, by topic.
    topics: HashMap<String, Name>,
    pubsub: bool,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut gossip = match self.pubsub {
            true => self.net.pubsub_events().await.ok(),
            false => None,
        };
        loop {
            let cmd = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                c = rx.recv() => match c { Some(c) => c, None => return },
                Some(ev) = async { match gossip.as_mut() { Some(g) => g.recv().await, None => None } } => {
                    self.on_gossip(ev);
                    continue;
                }
            };
            match cmd {
                Command::Record { name, reply } => {
                    let _ = reply.send(self.cached(&name, Source::Cache).map(|r| r.record));
                }
                Command::Follow { name } => self.follow(name),
                Command::FetchFrom { name, peers } => self.fetch_from(name, peers),
                Command::Fetched { name, bytes } => {
                    if let Ok(record) = records::validate_ipns(&name.peer_id(), &bytes, now_nanos()) {
                        self.keep(name, record, bytes);
                    }
                }
                Command::Resolve { name, fresh, reply } => self.resolve(name, fresh, reply),
                Command::Learned { name, record, bytes, settled } => self.learned(name, record, bytes, settled),
                Command::Peek { name, reply } => {
                    let _ = reply.send(self.cache.get(&name).map(|c| c.record.sequence));
                }
                Command::LookupEnded { name } => {
                    if let Some(l) = self.lookups.remove(&name) {
                        let answer = self.cached(&name, Source::Network).ok_or(NameError::NotFound(name));
                        for w in l.waiters {
                            let _ = w.send(answer.as_ref().map(Clone::clone).map_err(|_| NameError::NotFound(name)));
                        }
                    }
                }
            }
        }
    }

    /// The cached record, if still valid (end of life not passed).
    fn cached(&self, name: &Name, source: Source) -> Option<Resolved> {
        let c = self.cache.get(name)?;
        (c.record.eol_nanos > now_nanos()).then(|| Resolved::new(*name, &c.record, c.bytes.clone(), source))
    }

    fn resolve(&mut self, name: Name, fresh: bool, reply: oneshot::Sender<Result<Resolved, NameError>>) {
        if !fresh {
            if let (Some(c), Some(hit)) = (self.cache.get(&name), self.cached(&name, Source::Cache)) {
                let age = c.fetched.elapsed();
                let ttl = hit.ttl;
                if age < ttl {
                    let _ = reply.send(Ok(hit));
                    if age >= ttl / 2 {
                        self.start_lookup(name);
                    }
                    return;
                }
            }
        }
        self.follow(name);
        self.start_lookup(name);
        if let Some(l) = self.lookups.get_mut(&name) {
            l.waiters.push(reply);
        }
    }

    /// A gossipsub event: a record on a followed topic is checked before gossipsub may forward
    /// it (a bad one costs its sender), then kept if newer.
    fn on_gossip(&mut self, ev: crate::net::PubsubEvent) {
        let (topic, data, id, source) = match ev {
            crate::net::PubsubEvent::Message { topic, data, id, source } => (topic, data, id, source),
            crate::net::PubsubEvent::Subscribed { peer, topic } => {
                // A peer joined a topic followed here: ask it for its record (the spec's
                // persistence layer).
                if let Some(name) = self.topics.get(&topic).copied() {
                    self.fetch_from(name, vec![peer]);
                }
                return;
            }
        };
        let name = self.topics.get(&topic).copied().or_else(|| Name::from_pubsub_topic(&topic));
        // As go's router: a bad record costs its sender, a newer one is forwarded, the rest
        // (stale or already seen) is dropped quietly.
        let verdict = match name {
            None => None,
            Some(name) => match records::validate_ipns(&name.peer_id(), &data, now_nanos()) {
                Ok(record) => {
                    tracing::debug!(%name, sequence = record.sequence, %source, "IPNS record from PubSub");
                    let newer = self.cache.get(&name).is_none_or(|c| published::newer(&c.record, &record));
                    self.keep(name, record, data);
                    newer.then_some(true)
                }
                Err(e) => {
                    tracing::debug!(%name, %source, "bad IPNS record on PubSub refused: {e}");
                    Some(false)
                }
            },
        };
        let net = self.net.clone();
        self.tasks.spawn(async move { net.pubsub_validate(id, source, verdict).await });
    }

    /// A valid record from a peer (PubSub, Fetch): into the cache if newer, and offered to the
    /// DHT record store, so this node serves it to lookups too.
    fn keep(&mut self, name: Name, record: IpnsRecord, bytes: Vec<u8>) {
        let newer = self.cache.get(&name).is_none_or(|c| published::newer(&c.record, &record));
        if !newer {
            return;
        }
        let (net, key, value) = (self.net.clone(), name.routing_key(), bytes.clone());
        self.tasks.spawn(async move {
            let _ = net.offer_value(key, value).await;
        });
        self.learned(name, record, bytes, false);
    }

    /// Join a name's topic (once, up to [`MAX_TOPICS`]) and ask a few of its peers for their
    /// record.
    fn follow(&mut self, name: Name) {
        let topic = name.pubsub_topic();
        if !self.pubsub || self.topics.contains_key(&topic) || self.topics.len() >= MAX_TOPICS {
            return;
        }
        self.topics.insert(topic.clone(), name);
        let (net, tx, stop) = (self.net.clone(), self.tx.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            if let Err(e) = net.pubsub_subscribe(topic.clone()).await {
                tracing::debug!(%name, "cannot follow the name on PubSub: {e}");
                return;
            }
            let peers = net.pubsub_peers(topic.clone()).await.unwrap_or_default();
            let _ = tx.send(Command::FetchFrom { name, peers }).await;
            pubsub::rendezvous(&net, &topic, &stop).await;
        });
    }

    /// Ask up to [`FETCH_PEERS`] of `peers` for their record of `name`, in the background.
    fn fetch_from(&mut self, name: Name, peers: Vec<PeerId>) {
        if peers.is_empty() {
            return;
        }
        let (net, tx) = (self.net.clone(), self.tx.clone());
        self.tasks.spawn(async move {
            for peer in peers.into_iter().take(FETCH_PEERS) {
                match pubsub::fetch(net.stream_control(), peer, name).await {
                    Ok(Some(bytes)) => {
                        let _ = tx.send(Command::Fetched { name, bytes }).await;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(%name, %peer, "fetch failed: {e}"),
                }
            }
        });
    }

    fn start_lookup(&mut self, name: Name) {
        if self.lookups.contains_key(&name) {
            return;
        }
        self.lookups.insert(name, Lookup { waiters: Vec::new() });
        let (net, tx, rule, stop) = (self.net.clone(), self.tx.clone(), self.rule.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = lookup::run(&net, name, &rule, &tx) => {}
            }
            let _ = tx.send(Command::LookupEnded { name }).await;
        });
    }

    fn learned(&mut self, name: Name, record: IpnsRecord, bytes: Vec<u8>, settled: bool) {
        let now = Instant::now();
        match self.cache.get_mut(&name) {
            Some(c) => {
                if published::newer(&c.record, &record) {
                    c.record = record;
                    c.bytes = bytes;
                    c.fetched = now;
                } else if settled {
                    // The network confirmed nothing newer: the cached record is current.
                    c.fetched = now;
                }
            }
            None => {
                if self.cache.len() >= MAX_CACHED {
                    if let Some(oldest) = self.cache.iter().min_by_key(|(_, c)| c.fetched).map(|(n, _)| *n) {
                        self.cache.remove(&oldest);
                    }
                }
                self.cache.insert(name, Cached { record, bytes, fetched: now });
            }
        }
        if settled {
            if let Some(l) = self.lookups.get_mut(&name) {
                let waiters = std::mem::take(&mut l.waiters);
                let answer = self.cached(&name, Source::Network);
                for w in waiters {
                    let _ = w.send(answer.clone().ok_or(NameError::NotFound(name)));
                }
            }
        }
    }
}

/// Follow a path through names: `/ipns/{name}[/rest]` (or a bare name) becomes what the
/// name's record points at, with `rest` appended; with `recursive`, until the path no longer
/// starts with `/ipns/` (at most [`MAX_DEPTH`] names). `step` resolves one name. Returns the
/// path and the smallest TTL met on the way (how long the answer may be cached).
pub async fn follow<F, Fut>(path: &str, recursive: bool, mut step: F) -> Result<(String, Duration), NameError>
where
    F: FnMut(Name) -> Fut,
    Fut: std::future::Future<Output = Result<Resolved, NameError>>,
{
    let mut path = match path.strip_prefix("/ipns/") {
        Some(rest) => format!("/ipns/{rest}"),
        None if path.starts_with('/') => return Err(NameError::BadValue(format!("{path:?} is not an /ipns/ path"))),
        None => format!("/ipns/{path}"),
    };
    let mut ttl = Duration::MAX;
    for _ in 0..MAX_DEPTH {
        let Some(rest) = path.strip_prefix("/ipns/") else { return Ok((path, ttl)) };
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let name: Name =
            first.parse().map_err(|e: cairn_protocol::names::NameError| NameError::BadValue(e.to_string()))?;
        let r = step(name).await?;
        ttl = ttl.min(r.ttl);
        path = join(&r.value, tail);
        if !recursive {
            return Ok((path, ttl));
        }
    }
    if path.starts_with("/ipns/") {
        return Err(NameError::TooDeep(path));
    }
    Ok((path, ttl))
}

fn join(value: &str, tail: &str) -> String {
    let tail = tail.trim_matches('/');
    if tail.is_empty() {
        value.to_string()
    } else {
        format!("{}/{tail}", value.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn name() -> Name {
        Name::new(Keypair::generate_ed25519().public().to_peer_id())
    }

    fn resolved(name: Name, value: &str, ttl: u64) -> Resolved {
        Resolved {
            name,
            value: value.into(),
            sequence: 1,
            ttl: Duration::from_secs(ttl),
            eol_nanos: 0,
            record: Vec::new(),
            source: Source::Local,
        }
    }

    #[tokio::test]
    async fn follow_goes_through_names_and_keeps_the_rest_of_the_path() {
        let (a, b) = (name(), name());
        let table: HashMap<Name, Resolved> =
            [(a, resolved(a, &format!("/ipns/{b}/site"), 60)), (b, resolved(b, "/ipfs/bafkqaaa", 30))].into();
        let step = |n: Name| {
            let r = table.get(&n).cloned().ok_or(NameError::NotFound(n));
            async move { r }
        };
        let (p, ttl) = follow(&format!("/ipns/{a}/index.html"), true, step).await.unwrap();
        assert_eq!((p.as_str(), ttl), ("/ipfs/bafkqaaa/site/index.html", Duration::from_secs(30)));
        let (p, _) = follow(&a.to_string(), false, step).await.unwrap();
        assert_eq!(p, format!("/ipns/{b}/site"));
        assert!(matches!(follow("/ipfs/bafkqaaa", true, step).await, Err(NameError::BadValue(_))));
    }

    #[tokio::test]
    async fn a_circle_of_names_stops() {
        let a = name();
        let step = |n: Name| async move { Ok(resolved(n, &format!("/ipns/{n}"), 60)) };
        assert!(matches!(follow(&a.to_string(), true, step).await, Err(NameError::TooDeep(_))));
    }
}
