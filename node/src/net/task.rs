//! The swarm task: the only code that touches the `Swarm`. It serves [`Command`]s from
//! [`Network`] handles, completes them from swarm events through `pending_*` maps keyed by
//! connection or query ID, and publishes peer events. It never touches disk and never hashes
//! block bytes; Bitswap runs over raw streams outside it.

mod dht;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::kad::store::RecordStore as _;
use libp2p::kad::{self, GetClosestPeersOk, GetProvidersOk, QueryId, QueryResult, RecordKey};
use libp2p::metrics::{Metrics, Recorder, Registry};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{gossipsub, identify, ping, Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use cairn_protocol::records;

use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::now_nanos;
use super::peerbook::Peerbook;
use super::{
    peer_of, transport, Command, NetConfig, NetError, NetEvent, Network, PeerInfo, COMMAND_QUEUE, EVENT_QUEUE,
};

/// Where a peer search answers.
type AddrsReply = oneshot::Sender<Result<Vec<Multiaddr>, NetError>>;

/// Where a closest-peers walk answers.
type ClosestReply = oneshot::Sender<Result<Vec<super::PeerAddrs>, NetError>>;

/// A provider search in flight.
struct ProviderSearch {
    key: RecordKey,
    found: mpsc::Sender<PeerId>,
    limit: usize,
    seen: HashSet<PeerId>,
    asked: Option<Arc<AtomicU32>>,
}

/// Providers' addresses remembered for later dials (`connect` after a search ended), at most.
const PROVIDER_ADDRS: usize = 1024;

/// DHT walks towards address-less providers running at once.
const MAX_PROVIDER_WALKS: usize = 16;

/// The swarm and everything waiting on it.
struct Task {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<NetEvent>,
    /// Connected peers: connections open, and the remote address of one (a direct connection
    /// before a relayed one, then one this node dialled: its address is where the peer is
    /// reachable).
    connected: HashMap<PeerId, Link>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    provider_searches: HashMap<QueryId, ProviderSearch>,
    peer_searches: HashMap<QueryId, (PeerId, AddrsReply)>,
    /// Walks towards providers found without addresses: the walk itself reaches and dials
    /// them; when it ends, a provider still not connected is dialled at what it found.
    provider_walks: HashMap<QueryId, PeerId>,
    closest: HashMap<QueryId, ClosestReply>,
    listen_addrs: Vec<Multiaddr>,
    provides: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
    bootstraps: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
    value_puts: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
    value_searches: HashMap<QueryId, mpsc::Sender<super::FoundValue>>,
    pubsub_listener: Option<mpsc::Sender<super::PubsubEvent>>,
    /// Addresses of providers from this node's record store, for dials after a search.
    provider_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    /// Circuit relay reservations and their candidates.
    relays: super::relays::Relays,
    /// How connections came about (counters for `cairn id`), reachability and port mapping.
    reach: super::Reach,
    /// What AutoNAT's probes said.
    probes: super::reachability::Probes,
    /// Private addresses may be confirmed as external (test networks).
    private_addrs: bool,
    /// Addresses the configuration announces (kept as external whatever they are).
    announce: Vec<Multiaddr>,
    /// Known peers (persisted through this when there is a store) and redialling.
    peerbook: Peerbook,
    persister: Option<super::persist::Persister>,
    /// libp2p's Prometheus metrics, fed every swarm event.
    metrics: Metrics,
}

/// A connected peer's connections as the task tracks them.
struct Link {
    connections: u32,
    addr: Multiaddr,
    /// `addr` is the address of a connection this node dialled.
    dialed: bool,
}

/// How often the task looks whether it is alone and should dial again.
const REDIAL_CHECK: Duration = Duration::from_secs(1);

/// How telling a connection's address is: direct before relayed, then dialled by this node.
fn rank(addr: &Multiaddr, dialed: bool) -> u8 {
    let relayed = addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit));
    u8::from(!relayed) * 2 + u8::from(dialed)
}

/// `addr` without a trailing `/p2p/<id>`.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    let mut a = addr.clone();
    if matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
        a.pop();
    }
    a
}

/// Dial a known peer at its remembered addresses (also given to the DHT's address book).
fn dial_known(swarm: &mut Swarm<Behaviour>, peer: PeerId, addrs: Vec<Multiaddr>) {
    for a in &addrs {
        swarm.behaviour_mut().kad.add_address(&peer, a.clone());
    }
    let opts = DialOpts::peer_id(peer).addresses(addrs).condition(PeerCondition::DisconnectedAndNotDialing).build();
    if let Err(e) = swarm.dial(opts) {
        tracing::debug!(%peer, "known peer not dialled: {e}");
    }
}

/// Build the swarm, bind its listen addresses, dial the bootstrap peers and spawn the task.
/// The task ends when `shutdown` is cancelled.
pub fn spawn(
    key: Keypair,
    cfg: &NetConfig,
    shutdown: CancellationToken,
) -> Result<(Network, JoinHandle<()>), NetError> {
    spawn_with_store(key, cfg, None, &mut Registry::default(), shutdown)
}

/// [`spawn`], keeping other peers' provider records in `store` across restarts and
/// registering libp2p's metrics (connections, protocols, DHT queries, bandwidth) in `registry`.
pub(crate) fn spawn_with_store(
    key: Keypair,
    cfg: &NetConfig,
    store: Option<crate::store::Store>,
    registry: &mut Registry,
    shutdown: CancellationToken,
) -> Result<(Network, JoinHandle<()>), NetError> {
    let peer_id = key.public().to_peer_id();
    let mut swarm = transport::build(key, cfg, registry)?;
    let metrics = Metrics::new(registry);
    let mut persist_thread = None;
    let mut known = Vec::new();
    let mut peer_persister = None;
    if let Some(store) = store {
        let records = super::persist::load(&store);
        let values = super::persist::load_values(&store);
        known = super::persist::load_peers(&store);
        tracing::debug!(records = records.len(), values = values.len(), peers = known.len(), "DHT records restored");
        let (persister, thread) = super::persist::Persister::start(store);
        persist_thread = Some(thread);
        peer_persister = Some(persister.clone());
        swarm.behaviour_mut().kad.store_mut().restore(records, values, persister);
    }
    let peerbook = Peerbook::new(cfg.bootstrap.clone(), known);
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    }
    for addr in &cfg.announce {
        swarm.add_external_address(addr.clone());
    }
    for addr in &cfg.bootstrap {
        if let Some(peer) = peer_of(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, "bootstrap dial failed: {e}");
        }
    }
    // Peers known from earlier runs: the node rejoins through them if the bootstrap peers
    // are gone.
    for (peer, addrs) in peerbook.at_start() {
        dial_known(&mut swarm, peer, addrs);
    }
    let control = swarm.behaviour().stream.new_control();
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let net = Network::new(tx, peer_id, control, events.clone());
    let task = Task {
        swarm,
        commands,
        events,
        connected: HashMap::new(),
        pending_dials: HashMap::new(),
        provider_searches: HashMap::new(),
        peer_searches: HashMap::new(),
        provider_walks: HashMap::new(),
        closest: HashMap::new(),
        listen_addrs: Vec::new(),
        provides: HashMap::new(),
        bootstraps: HashMap::new(),
        value_puts: HashMap::new(),
        value_searches: HashMap::new(),
        pubsub_listener: None,
        provider_addrs: HashMap::new(),
        relays: super::relays::Relays::new(cfg.relay_reservations),
        reach: super::Reach {
            port_mapping: if cfg.upnp { super::PortMapping::Searching } else { super::PortMapping::Off },
            ..super::Reach::default()
        },
        probes: Default::default(),
        private_addrs: cfg.autonat_private_addrs,
        announce: cfg.announce.clone(),
        peerbook,
        persister: peer_persister,
        metrics,
    };
    // The task ends by dropping the swarm, and with it the record store's persister: then
    // the persistence thread makes its last changes durable and ends, and is joined here.
    let handle = tokio::spawn(async move {
        task.run(shutdown).await;
        if let Some(t) = persist_thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    });
    Ok((net, handle))
}

impl Task {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut redial = tokio::time::interval(REDIAL_CHECK);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The swarm can be ready for a long run of events (a storm of failing dials, say):
            // give the worker back now and then, or timers and the other tasks on it starve.
            tokio::task::consume_budget().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = redial.tick() => self.redial(),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
            }
        }
        tracing::debug!("swarm task stopped");
    }

    /// Take the relay reservations wanted now (a listener each).
    fn reserve(&mut self) {
        let now = std::time::Instant::now();
        for (relay, addr) in self.relays.wanted(now) {
            match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    tracing::debug!(%relay, %addr, "asking a relay for a reservation");
                    self.relays.listening(id, relay);
                }
                Err(e) => {
                    tracing::debug!(%relay, "cannot listen through the relay: {e}");
                    self.relays.failed(relay, now);
                }
            }
        }
    }

    /// Alone: dial the bootstrap and known peers again when the backoff says so.
    fn redial(&mut self) {
        self.reserve();
        let Some(r) = self.peerbook.due(!self.connected.is_empty(), std::time::Instant::now()) else { return };
        tracing::warn!(
            bootstrap = r.bootstrap.len(),
            known = r.known.len(),
            "no peer connected: dialling the bootstrap and known peers again (next try in {:?} if this fails)",
            r.next_in
        );
        for addr in r.bootstrap {
            let _ = self.swarm.dial(addr);
        }
        for (peer, addrs) in r.known {
            dial_known(&mut self.swarm, peer, addrs);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::Connect { peer, addrs, reply } => self.connect(peer, addrs, reply),
            Command::Disconnect { peer, reply } => {
                let _ = reply.send(self.swarm.disconnect_peer_id(peer).is_ok());
            }
            Command::Peers { reply } => {
                let peers = self
                    .connected
                    .iter()
                    .map(|(p, l)| PeerInfo {
                        peer: p.to_string(),
                        // Without a trailing `/p2p/<id>` (a dialled address may carry one), as kubo.
                        addr: without_peer(&l.addr).to_string(),
                        connections: l.connections,
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::IsConnected { peer, reply } => {
                let _ = reply.send(self.connected.contains_key(&peer));
            }
            Command::Reach { reply } => {
                let _ = reply.send(super::Reach { relay_reservations: self.relays.active() as u64, ..self.reach });
            }
            Command::Addrs { reply } => {
                let mut addrs = self.listen_addrs.clone();
                addrs.extend(self.swarm.external_addresses().cloned());
                let _ = reply.send(addrs);
            }
            Command::ClosestPeers { key, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(key);
                self.closest.insert(id, reply);
            }
            Command::AddLocalProviders { keys, addrs } => {
                let local = *self.swarm.local_peer_id();
                let store = self.swarm.behaviour_mut().kad.store_mut();
                for k in keys {
                    let record = kad::ProviderRecord::new(RecordKey::new(&k), local, addrs.clone());
                    let _ = store.add_provider(record);
                }
            }
            Command::RemoveLocalProviders { keys } => {
                let local = *self.swarm.local_peer_id();
                let store = self.swarm.behaviour_mut().kad.store_mut();
                for k in keys {
                    store.remove_provider(&RecordKey::new(&k), &local);
                }
            }
            Command::FindProviders { cid, limit, found, asked } => {
                let key = RecordKey::new(&cid.hash().to_bytes());
                let id = self.swarm.behaviour_mut().kad.get_providers(key.clone());
                let search =
                    ProviderSearch { key: key.clone(), found, limit: limit.max(1), seen: HashSet::new(), asked };
                self.provider_searches.insert(id, search);
            }
            Command::FindPeer { peer, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.peer_searches.insert(id, (peer, reply));
            }
            Command::Provide { cid, reply } => {
                let key = RecordKey::new(&cid.hash().to_bytes());
                match self.swarm.behaviour_mut().kad.start_providing(key) {
                    Ok(id) => {
                        self.provides.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dht(e.to_string())));
                    }
                }
            }
            Command::Bootstrap { reply } => match self.swarm.behaviour_mut().kad.bootstrap() {
                Ok(id) => {
                    self.bootstraps.insert(id, reply);
                }
                Err(_) => {
                    let _ = reply.send(Err(NetError::Dht("no known peers to bootstrap from".into())));
                }
            },
            #[cfg(feature = "test-utils")]
            Command::KnowPeer { peer, addr, reply } => {
                let update = self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                let _ = reply.send(matches!(update, kad::RoutingUpdate::Success));
            }
            Command::RoutingTable { reply } => {
                let mut peers = Vec::new();
                for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
                    peers.extend(bucket.iter().map(|e| *e.node.key.preimage()));
                }
                let _ = reply.send(peers);
            }
            Command::PutValue { key, value, reply } => self.put_value(key, value, reply),
            Command::SearchValue { key, found } => {
                let id = self.swarm.behaviour_mut().kad.get_record(RecordKey::new(&key));
                self.value_searches.insert(id, found);
            }
            Command::Subscribe { topic, reply } => {
                let r = match self.swarm.behaviour_mut().pubsub.as_mut() {
                    Some(p) => {
                        p.subscribe(&gossipsub::IdentTopic::new(topic)).map_err(|e| NetError::Pubsub(e.to_string()))
                    }
                    None => Err(NetError::Pubsub("PubSub is off (ipns.pubsub = false)".into())),
                };
                let _ = reply.send(r);
            }
            Command::Publish { topic, data, reply } => {
                let r = match self.swarm.behaviour_mut().pubsub.as_mut() {
                    Some(p) => p
                        .publish(gossipsub::IdentTopic::new(topic), data)
                        .map(|_| ())
                        .map_err(|e| NetError::Pubsub(e.to_string())),
                    None => Err(NetError::Pubsub("PubSub is off (ipns.pubsub = false)".into())),
                };
                let _ = reply.send(r);
            }
            Command::Validate { id, source, accept } => {
                if let Some(p) = self.swarm.behaviour_mut().pubsub.as_mut() {
                    let verdict = match accept {
                        Some(true) => gossipsub::MessageAcceptance::Accept,
                        Some(false) => gossipsub::MessageAcceptance::Reject,
                        None => gossipsub::MessageAcceptance::Ignore,
                    };
                    p.report_message_validation_result(&id, &source, verdict);
                }
            }
            Command::TopicPeers { topic, reply } => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let peers = match self.swarm.behaviour().pubsub.as_ref() {
                    Some(p) => p.all_peers().filter(|(_, t)| t.contains(&&hash)).map(|(p, _)| *p).collect(),
                    None => Vec::new(),
                };
                let _ = reply.send(peers);
            }
            Command::PubsubListen { tx } => self.pubsub_listener = Some(tx),
            Command::OfferValue { key, value, reply } => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                let kept = kad.store_mut().offer(kad::Record::new(key, value), now_nanos());
                let _ = reply.send(kept.map(|r| r.is_some()).map_err(NetError::from));
            }
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        if let Some(peer) = peer_of(&addr) {
            if self.connected.contains_key(&peer) {
                let _ = reply.send(Ok(peer));
                return;
            }
            self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        self.start_dial(DialOpts::unknown_peer_id().address(addr).build(), reply);
    }

    /// Dial; `reply` gets the peer once connected, or the failure.
    fn start_dial(&mut self, opts: DialOpts, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dial(e.to_string())));
            }
        }
    }

    fn connect(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        // Connected only through connections the peer opened: dial it too, so its address is
        // one it is reachable at (a dial that fails still answers: the peer is connected).
        if self.connected.get(&peer).is_some_and(|l| l.dialed) {
            let _ = reply.send(Ok(peer));
            return;
        }
        let mut addrs = addrs;
        addrs.extend(self.provider_addrs.get(&peer).into_iter().flatten().cloned());
        // `Always`: a dial already under way for the peer must not fail this one.
        self.start_dial(DialOpts::peer_id(peer).addresses(addrs).condition(PeerCondition::Always).build(), reply);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Pubsub(e)) => self.on_pubsub(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(failure) }))
                if !matches!(failure, ping::Failure::Unsupported) =>
            {
                // A link that stopped answering (a network split, a dead route): close the
                // connection rather than leave requests to wait on TCP's backed-off
                // retransmissions; the peer is dialled afresh when needed. libp2p's ping no
                // longer closes connections itself; go-libp2p's yamux keep-alive does the same.
                tracing::debug!(%peer, "ping failed ({failure}): closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                // Peers on the LAN: dial each at the addresses it announced.
                let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, addr) in found {
                    by_peer.entry(peer).or_default().push(addr);
                }
                for (peer, addrs) in by_peer {
                    tracing::debug!(%peer, "found on the local network");
                    if !self.connected.contains_key(&peer) {
                        dial_known(&mut self.swarm, peer, addrs);
                    }
                }
            }
            // rust-libp2p's Kademlia does not learn addresses by itself: feed it the listen
            // addresses of peers that serve the DHT.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let dht = info.protocols.contains(&KAD_PROTOCOL);
                if info.protocols.contains(&super::relays::HOP) {
                    self.relays.learned(peer_id, &info.listen_addrs);
                }
                tracing::debug!(%peer_id, dht, agent = %info.agent_version, "identified");
                if dht {
                    for addr in &info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                    }
                    self.peerbook.learned(peer_id, info.listen_addrs.clone());
                    if let Some(p) = &self.persister {
                        p.send(super::persist::Change::PutPeer(peer_id, info.listen_addrs));
                    }
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                let (addr, dialed) = (endpoint.get_remote_address().clone(), endpoint.is_dialer());
                match addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit)) {
                    true => self.reach.relayed += 1,
                    false => self.reach.direct += 1,
                }
                let link = self.connected.entry(peer_id).or_insert(Link { connections: 0, addr: addr.clone(), dialed });
                link.connections = num_established.get();
                // The address shown is the best connection's: direct before relayed, then one
                // this node dialled.
                if rank(&addr, dialed) > rank(&link.addr, link.dialed) {
                    (link.addr, link.dialed) = (addr, dialed);
                }
                if num_established.get() == 1 {
                    let _ = self.events.send(NetEvent::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    let _ = self.events.send(NetEvent::Disconnected(peer_id));
                } else if let Some(l) = self.connected.get_mut(&peer_id) {
                    l.connections = num_established;
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, peer_id } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    // A peer connected another way (it dialled us meanwhile) is reached.
                    let _ = match peer_id.filter(|p| self.connected.contains_key(p)) {
                        Some(p) => reply.send(Ok(p)),
                        None => reply.send(Err(NetError::Dial(error.to_string()))),
                    };
                }
                tracing::debug!(?peer_id, "outgoing connection failed: {error}");
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                tracing::debug!(?listener_id, ?reason, "listener closed");
                self.relays.closed(listener_id, std::time::Instant::now());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(libp2p::autonat::Event::StatusChanged { new, .. })) => {
                tracing::debug!(status = ?new, "AutoNAT v1");
                // v1's verdict replaces an earlier one (a port forwarded since, say).
                self.probes.failed = new == libp2p::autonat::NatStatus::Private;
                self.update_reachability();
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatV2(libp2p::autonat::v2::client::Event {
                tested_addr,
                server,
                result,
                ..
            })) => {
                match result {
                    Ok(()) => tracing::debug!(addr = %tested_addr, %server, "AutoNAT v2: dialled back"),
                    Err(e) => {
                        tracing::debug!(addr = %tested_addr, %server, "AutoNAT v2: not reachable ({e})");
                        self.probes.failed = true;
                    }
                }
                self.update_reachability();
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatV2Server(e)) => {
                tracing::debug!(client = %e.client, addr = %e.tested_addr, result = ?e.result, "AutoNAT v2: probed a peer");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Upnp(e)) => self.on_upnp(e),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
                libp2p::relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal: false, .. },
            )) => {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted: reachable through it");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(libp2p::dcutr::Event { remote_peer_id, result })) => {
                match result {
                    Ok(_) => {
                        self.reach.hole_punched += 1;
                        tracing::info!(peer = %remote_peer_id, "hole punched: direct connection");
                    }
                    Err(e) => {
                        self.reach.hole_punch_failed += 1;
                        tracing::info!(peer = %remote_peer_id, "hole punching failed: {e}");
                    }
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                let relayed = super::reachability::is_relayed(&address);
                if !relayed
                    && !self.private_addrs
                    && !super::reachability::is_global(&address)
                    && !self.announce.contains(&address)
                {
                    // A LAN peer could dial it back; the internet cannot.
                    tracing::debug!(%address, "private address confirmed by a probe: not announced");
                    self.swarm.remove_external_address(&address);
                } else {
                    tracing::info!(%address, "external address confirmed");
                }
                self.update_reachability();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "external address expired");
                self.update_reachability();
            }
            _ => {}
        }
    }

    /// Count `event` in libp2p's metrics: connections and dial errors, and the events of the
    /// protocols it knows (DHT queries, identify, ping, relay service, hole punching, gossipsub).
    fn record(&self, event: &SwarmEvent<BehaviourEvent>) {
        self.metrics.record(event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Pubsub(e)) => self.metrics.record(e),
            _ => {}
        }
    }

    /// Fold the probes and the confirmed addresses into the node's reachability; relay
    /// reservations are wanted while it is not public.
    fn update_reachability(&mut self) {
        let now = self.probes.reachability(self.swarm.external_addresses());
        if now != self.reach.reachability {
            tracing::info!(reachability = ?now, "reachability changed");
            self.reach.reachability = now;
        }
        self.relays.set_public(now == super::Reachability::Public);
    }

    /// UPnP port mapping on the router: a mapped port is a confirmed external address (libp2p
    /// adds it); the reasons it cannot be are said once.
    fn on_upnp(&mut self, event: libp2p::upnp::Event) {
        use super::PortMapping;
        use libp2p::upnp::Event;
        self.reach.port_mapping = match event {
            Event::NewExternalAddr { local_addr, external_addr } => {
                tracing::info!(local = %local_addr, external = %external_addr, "port mapped on the router (UPnP)");
                PortMapping::Mapped
            }
            Event::ExpiredExternalAddr { external_addr, .. } => {
                tracing::warn!(external = %external_addr, "the router dropped or refused to renew a port mapping");
                PortMapping::Failed
            }
            Event::GatewayNotFound => {
                tracing::info!("no UPnP router answered on the LAN: no port mapping");
                PortMapping::NoRouter
            }
            Event::NonRoutableGateway => {
                tracing::warn!(
                    "the router's own external address is private (NAT behind NAT): port mapping would not help"
                );
                PortMapping::NotRoutable
            }
        };
        self.update_reachability();
    }

    /// Gossipsub events go to the listener. A message nobody can take now is dropped quietly
    /// (not forwarded, its sender not punished).
    fn on_pubsub(&mut self, event: gossipsub::Event) {
        let out = match event {
            gossipsub::Event::Message { propagation_source, message_id, message } => super::PubsubEvent::Message {
                topic: message.topic.into_string(),
                data: message.data,
                id: message_id,
                source: propagation_source,
            },
            gossipsub::Event::Subscribed { peer_id, topic } => {
                super::PubsubEvent::Subscribed { peer: peer_id, topic: topic.into_string() }
            }
            _ => return,
        };
        let refused = match &self.pubsub_listener {
            Some(tx) => tx.try_send(out).err().map(|e| e.into_inner()),
            None => Some(out),
        };
        if let Some(super::PubsubEvent::Message { id, source, .. }) = refused {
            if let Some(p) = self.swarm.behaviour_mut().pubsub.as_mut() {
                p.report_message_validation_result(&id, &source, gossipsub::MessageAcceptance::Ignore);
            }
        }
    }
}
