//! The name service's actor: it alone owns the resolver's cache, the lookups in flight and
//! the PubSub topics followed; the [`super::Names`] handle and the tasks it starts talk to it
//! through [`Command`]s.

use std::collections::HashMap;
use std::time::Instant;

use cairn_protocol::names::Name;
use cairn_protocol::records::{self, IpnsRecord};
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lookup::{self, Rule};
use super::{published, pubsub, NameError, Resolved, Source, FETCH_PEERS, MAX_CACHED, MAX_LOOKUPS, MAX_TOPICS};
use crate::net::{now_nanos, Network};

/// What the actor is asked.
pub(super) enum Command {
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

struct Cached {
    record: IpnsRecord,
    bytes: Vec<u8>,
    fetched: Instant,
}

/// A lookup in flight: who waits for its answer (nobody once it answered, or for a refresh).
struct Lookup {
    waiters: Vec<oneshot::Sender<Result<Resolved, NameError>>>,
    /// The rule answered already: the walk only listens for newer records now.
    settled: bool,
}

pub(super) struct Actor {
    net: Network,
    tx: mpsc::Sender<Command>,
    rule: Rule,
    cache: HashMap<Name, Cached>,
    lookups: HashMap<Name, Lookup>,
    /// Name topics joined, by topic.
    topics: HashMap<String, Name>,
    pubsub: bool,
    /// Where newer records are announced ([`super::Names::updates`]).
    updates: broadcast::Sender<(Name, u64)>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Actor {
    pub(super) fn new(
        net: Network,
        tx: mpsc::Sender<Command>,
        rule: Rule,
        pubsub: bool,
        updates: broadcast::Sender<(Name, u64)>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Actor {
        Actor {
            net,
            tx,
            rule,
            cache: HashMap::new(),
            lookups: HashMap::new(),
            topics: HashMap::new(),
            pubsub,
            updates,
            tasks: tasks.clone(),
            shutdown,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
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
                    if age >= ttl / 2 && self.lookups.len() < MAX_LOOKUPS {
                        self.start_lookup(name);
                    }
                    return;
                }
            }
        }
        if !self.lookups.contains_key(&name) && self.lookups.len() >= MAX_LOOKUPS {
            let _ = reply.send(Err(NameError::Busy));
            return;
        }
        self.start_lookup(name);
        let answer = self.cached(&name, Source::Network);
        if let Some(l) = self.lookups.get_mut(&name) {
            match (l.settled, answer) {
                // A lookup that answered moments ago and still listens: its answer is as fresh
                // as a new walk's would be, and waiting for the walk's end could take long.
                (true, Some(a)) => {
                    let _ = reply.send(Ok(a));
                }
                _ => l.waiters.push(reply),
            }
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
        self.lookups.insert(name, Lookup { waiters: Vec::new(), settled: false });
        let (net, tx, rule, stop) = (self.net.clone(), self.tx.clone(), self.rule.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = lookup::run(&net, name, &rule, |record, bytes, settled| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(Command::Learned { name, record, bytes, settled }).await;
                    }
                }) => {}
            }
            let _ = tx.send(Command::LookupEnded { name }).await;
        });
    }

    fn learned(&mut self, name: Name, record: IpnsRecord, bytes: Vec<u8>, settled: bool) {
        // Names are followed once a valid record is known: a name nobody publishes (anyone
        // can make up names) takes no topic.
        self.follow(name);
        let now = Instant::now();
        if self.cache.get(&name).is_none_or(|c| published::newer(&c.record, &record)) {
            let _ = self.updates.send((name, record.sequence));
        }
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
                l.settled = true;
                let waiters = std::mem::take(&mut l.waiters);
                let answer = self.cached(&name, Source::Network);
                for w in waiters {
                    let _ = w.send(answer.clone().ok_or(NameError::NotFound(name)));
                }
            }
        }
    }
}
