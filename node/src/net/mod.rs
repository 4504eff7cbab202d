//! The libp2p side of the node: one task owns the [`libp2p::Swarm`] ([`task`]); everything else
//! holds a cloneable [`Network`] handle and sends it typed [`Command`]s, each with a reply
//! channel. Bitswap and the provider open their own streams through a
//! [`libp2p_stream::Control`], so block bytes never pass through the swarm task.
//!
//! Module map:
//! - [`behaviour`]: the composed `NetworkBehaviour` (identify, ping, Kademlia, AutoNAT,
//!   connection limits, raw streams) and its IPFS settings.
//! - [`transport`]: building the swarm over TCP+noise/TLS+yamux and QUIC, or over the memory
//!   transport for in-process tests.
//! - [`records`]: the Kademlia record store (provider records with bounded lists per key).
//! - [`persist`]: other peers' provider records kept across restarts, written off the swarm task.
//! - [`task`]: the swarm event loop.

pub mod behaviour;
pub mod budget;
mod peerbook;
pub mod persist;
mod reachability;
pub mod records;
pub(crate) mod relays;
pub mod task;
pub mod transport;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use cairn_protocol::Cid;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Commands queued for the swarm task before senders wait: commands are small and the task
/// drains them between swarm events.
pub(crate) const COMMAND_QUEUE: usize = 256;

/// Peer events buffered per subscriber; a subscriber that falls further behind is told it
/// lagged and re-reads the connected set.
pub(crate) const EVENT_QUEUE: usize = 1024;

/// Errors from the network handle.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The swarm task has stopped (the node is shutting down).
    #[error("the network is shut down")]
    Shutdown,
    /// Dialling failed.
    #[error("dial failed: {0}")]
    Dial(String),
    /// A DHT operation failed.
    #[error("DHT: {0}")]
    Dht(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address from the config.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A malformed address or peer ID.
    #[error("invalid address {0:?}")]
    BadAddress(String),
    /// PubSub is off, or publishing found no peer on the topic.
    #[error("PubSub: {0}")]
    Pubsub(String),
    /// A value record failed validation.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] cairn_protocol::records::RecordError),
    /// No valid value record was found under the key.
    #[error("no valid record found")]
    NotFound,
}

/// Unix time now, nanoseconds: the clock value records are validated against (here so that
/// `records` and `persist` both reach it without importing each other).
pub fn now_nanos() -> i128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Whether this node answers DHT queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DhtMode {
    /// Server once AutoNAT confirms a public address, client before that (kubo's `auto`).
    Auto,
    /// Always answer DHT queries (servers and tests).
    Server,
    /// Never answer DHT queries (behind NAT, on battery).
    Client,
}

/// Which transports the swarm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// TCP (noise or TLS, yamux) and QUIC v1: the real network.
    Real,
    /// In-process memory transport (noise, yamux) for tests with many nodes.
    Memory,
}

/// Everything the swarm task needs to start.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers dialled at start (each `/…/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses announced as confirmed external addresses (`network.announce`).
    pub announce: Vec<Multiaddr>,
    /// DHT server or client.
    pub dht_mode: DhtMode,
    /// Transports.
    pub transport: TransportKind,
    /// Most established connections (in + out); more are refused.
    pub max_connections: u32,
    /// Most connections being set up, each way; more are refused.
    pub max_pending: u32,
    /// Most new outbound connections per second (bursts of twice that); 0: unlimited.
    pub max_dials_per_sec: u32,
    /// How long an idle connection stays open.
    pub idle_timeout: Duration,
    /// Whether AutoNAT (v1 and v2, client and server) probes reachability and confirms
    /// public addresses (off for loopback-only nodes).
    pub autonat: bool,
    /// Let AutoNAT test and confirm private addresses (test networks in namespaces only: on the
    /// internet a private address is never reachable from outside).
    pub autonat_private_addrs: bool,
    /// Map the listen ports on the router by UPnP IGD (`network.discovery`).
    pub upnp: bool,
    /// Whether gossipsub runs (IPNS over PubSub).
    pub pubsub: bool,
    /// Name servers for `/dns*` addresses (empty: the system's, from `/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::IpAddr>,
    /// Find peers on the local network with mDNS (multicast: off unless asked).
    pub mdns: bool,
    /// Circuit relay reservations kept while not publicly reachable (0: no relay client).
    pub relay_reservations: usize,
    /// Serve as a circuit relay for others, with these limits.
    pub relay_service: Option<RelayLimits>,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR).
    pub hole_punching: bool,
    /// Let Kademlia walk the DHT on its own: every five minutes, and whenever a peer joins a
    /// routing table of fewer than 20. Testnets whose tables are built directly turn it off.
    pub dht_auto_bootstrap: bool,
    /// Let connections add peers to the routing table (libp2p's default). Testnets whose tables
    /// are built directly turn it off: with a bucket full, each new connection makes libp2p-kad
    /// dial the bucket's least recent peer to check it, and with connections idling out within
    /// seconds those checks set off more connections, on and on.
    pub dht_table_inserts: bool,
}

/// What a relay this node runs allows one circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Bytes each way (0: no limit).
    pub max_circuit_bytes: u64,
    /// How long a circuit may stay open.
    pub max_circuit_duration: Duration,
}

impl Default for RelayLimits {
    /// kubo's: enough for signalling and the hole-punch set-up, not for transfers.
    fn default() -> Self {
        RelayLimits { max_circuit_bytes: 128 * 1024, max_circuit_duration: Duration::from_secs(120) }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            announce: Vec::new(),
            dht_mode: DhtMode::Auto,
            transport: TransportKind::Real,
            max_connections: 512,
            max_pending: 64,
            max_dials_per_sec: 0,
            idle_timeout: Duration::from_secs(60),
            autonat: true,
            autonat_private_addrs: false,
            upnp: false,
            pubsub: true,
            dns_servers: Vec::new(),
            mdns: false,
            relay_reservations: 0,
            relay_service: None,
            hole_punching: false,
            dht_auto_bootstrap: true,
            dht_table_inserts: true,
        }
    }
}

/// What gossipsub delivers to its listener (the name service).
#[derive(Debug)]
pub enum PubsubEvent {
    /// A message on a subscribed topic, waiting for [`Network::pubsub_validate`] before it is
    /// forwarded.
    Message {
        /// The topic.
        topic: String,
        /// The payload.
        data: Vec<u8>,
        /// Its ID, for the validation result.
        id: libp2p::gossipsub::MessageId,
        /// The peer that forwarded it.
        source: PeerId,
    },
    /// A peer subscribed to a topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
}

/// Gossipsub events waiting for the listener; past it, messages are ignored (not forwarded).
const PUBSUB_EVENTS: usize = 256;

/// A connected peer as `swarm peers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerInfo {
    /// The peer.
    pub peer: String,
    /// The remote address of one connection.
    pub addr: String,
    /// Established connections to it.
    pub connections: u32,
}

/// How this node's connections came about since it started (`cairn id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reach {
    /// Connections established directly (not through a relay), hole punches included.
    pub direct: u64,
    /// Connections established through a relay.
    pub relayed: u64,
    /// Relayed connections upgraded to direct ones by hole punching.
    pub hole_punched: u64,
    /// Hole punches that failed.
    pub hole_punch_failed: u64,
    /// Relay reservations held now.
    pub relay_reservations: u64,
    /// Whether peers can dial this node, as AutoNAT and port mapping found.
    pub reachability: Reachability,
    /// What UPnP port mapping on the router achieved.
    pub port_mapping: PortMapping,
}

/// Whether peers can open connections to this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    /// Not tested yet (no AutoNAT server answered, or AutoNAT is off).
    #[default]
    Unknown,
    /// An address of this node was dialled back by an AutoNAT server, mapped on the router,
    /// or announced in the configuration.
    Public,
    /// Dial-backs failed: peers reach this node only through a relay, if it holds a
    /// reservation.
    Private,
}

/// The state of UPnP port mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortMapping {
    /// Not asked for (`network.discovery` off).
    #[default]
    Off,
    /// Looking for the router, or waiting for its answer.
    Searching,
    /// A listen port is mapped on the router.
    Mapped,
    /// No UPnP router answered on the LAN.
    NoRouter,
    /// The router's own external address is private (a NAT behind another NAT): a mapping
    /// would not make the node reachable.
    NotRoutable,
    /// The router refused the mapping or let it lapse.
    Failed,
}

/// A peer and the addresses a DHT walk learned for it.
pub type PeerAddrs = (PeerId, Vec<Multiaddr>);

/// What happened to a peer, for subscribers such as Bitswap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetEvent {
    /// The first connection to the peer was established.
    Connected(PeerId),
    /// The last connection to the peer closed.
    Disconnected(PeerId),
}

/// Requests to the swarm task.
#[derive(Debug)]
pub enum Command {
    /// Dial an address (with or without `/p2p/<id>`); replies with the peer reached.
    Dial {
        /// Where.
        addr: Multiaddr,
        /// The result.
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    /// Connect to a peer by ID, through the addresses given and those the swarm knows
    /// (DHT walks, identify, provider records); replies once connected.
    Connect {
        /// Who.
        peer: PeerId,
        /// Addresses to try besides the known ones.
        addrs: Vec<Multiaddr>,
        /// The result.
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    /// Close every connection to a peer.
    Disconnect {
        /// Who.
        peer: PeerId,
        /// Whether the peer was connected.
        reply: oneshot::Sender<bool>,
    },
    /// The connected peers.
    Peers {
        /// The answer.
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// Whether a peer is connected.
    IsConnected {
        /// Who.
        peer: PeerId,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
    /// Our listen addresses (and confirmed external ones).
    Addrs {
        /// The answer.
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    /// How this node's connections came about since it started.
    Reach {
        /// The answer.
        reply: oneshot::Sender<Reach>,
    },
    /// Search the DHT for providers of a multihash; providers stream into `found` as they are
    /// discovered (and are dialled) until `limit` or the end of the query.
    FindProviders {
        /// The CID whose multihash is looked up.
        cid: Cid,
        /// Most providers wanted.
        limit: usize,
        /// Where providers go; dropped when the search ends.
        found: mpsc::Sender<PeerId>,
        /// Kept at the number of DHT requests the search has sent, when the caller counts.
        asked: Option<Arc<AtomicU32>>,
    },
    /// Find a peer's addresses through the DHT.
    FindPeer {
        /// Who.
        peer: PeerId,
        /// Its addresses (empty when not found).
        reply: oneshot::Sender<Result<Vec<Multiaddr>, NetError>>,
    },
    /// Announce that we provide `cid` (one DHT walk) and keep answering for it.
    Provide {
        /// The CID whose multihash is announced.
        cid: Cid,
        /// Done when the walk ended.
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// The closest peers to `key` (hashed with SHA-256 into the keyspace) and their addresses:
    /// one DHT walk, the first step of a batched announcement.
    ClosestPeers {
        /// The key's preimage (a multihash for provider keys).
        key: Vec<u8>,
        /// Peers with the addresses the walk learned.
        reply: oneshot::Sender<Result<Vec<PeerAddrs>, NetError>>,
    },
    /// Record that we provide these multihashes, so that we answer GET_PROVIDERS for them.
    AddLocalProviders {
        /// Multihash bytes.
        keys: Vec<Vec<u8>>,
        /// Our addresses to put in the records.
        addrs: Vec<Multiaddr>,
    },
    /// Stop answering GET_PROVIDERS for these multihashes.
    RemoveLocalProviders {
        /// Multihash bytes.
        keys: Vec<Vec<u8>>,
    },
    /// Walk the DHT towards our own ID to fill the routing table.
    Bootstrap {
        /// Done when the walk ended.
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Put a peer in the DHT routing table without dialling it (testnets build tables
    /// directly); answers whether it went in.
    #[cfg(feature = "test-utils")]
    KnowPeer {
        /// The peer.
        peer: PeerId,
        /// Where it listens.
        addr: Multiaddr,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
    /// Peers in the DHT routing table.
    RoutingTable {
        /// The answer.
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Validate a value record (`/ipns/`, `/pk/`), keep it and store it on the peers closest
    /// to its key.
    PutValue {
        /// Record key.
        key: Vec<u8>,
        /// Record value.
        value: Vec<u8>,
        /// Done when the DHT walk ended; an error when the record is invalid or older than
        /// the one held, or when no peer took it.
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Search the DHT for value records under a key: each valid record found (this node's
    /// own first, if it holds one) goes to `found` as it arrives; the channel closes when the
    /// walk ends, and dropping the receiver ends the walk.
    SearchValue {
        /// Record key.
        key: Vec<u8>,
        /// Valid records, with the peer that sent each (`None`: this node's record store).
        found: mpsc::Sender<FoundValue>,
    },
    /// Subscribe to a gossipsub topic; answers false when already subscribed.
    Subscribe {
        /// The topic.
        topic: String,
        /// Whether it is new, or why it failed.
        reply: oneshot::Sender<Result<bool, NetError>>,
    },
    /// Publish on a gossipsub topic.
    Publish {
        /// The topic.
        topic: String,
        /// The payload.
        data: Vec<u8>,
        /// Done, or why not (no peer on the topic, PubSub off).
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// The listener's verdict on a message: forward it (`Some(true)`), punish its sender
    /// (`Some(false)`) or drop it quietly (`None`).
    Validate {
        /// The message.
        id: libp2p::gossipsub::MessageId,
        /// Who forwarded it.
        source: PeerId,
        /// The verdict.
        accept: Option<bool>,
    },
    /// The peers known to be subscribed to a topic.
    TopicPeers {
        /// The topic.
        topic: String,
        /// The peers.
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Deliver gossipsub events to `tx` from now on (one listener).
    PubsubListen {
        /// Where events go.
        tx: mpsc::Sender<PubsubEvent>,
    },
    /// Offer a value record received another way (PubSub): validated and kept (and
    /// persisted) if it replaces the one held; no DHT walk.
    OfferValue {
        /// Record key.
        key: Vec<u8>,
        /// Record value.
        value: Vec<u8>,
        /// Whether the record was kept.
        reply: oneshot::Sender<Result<bool, NetError>>,
    },
}

/// A valid value record found by a search.
#[derive(Clone, Debug)]
pub struct FoundValue {
    /// The peer that sent it (`None`: this node's own record store).
    pub peer: Option<PeerId>,
    /// What it says.
    pub record: cairn_protocol::records::ValidRecord,
    /// Its bytes.
    pub value: Vec<u8>,
}

/// Valid records a value search hands on before it waits for its reader (a search sees at most
/// a few dozen peers).
const FOUND_VALUES: usize = 32;

/// Handle to the swarm task. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    control: libp2p_stream::Control,
    events: broadcast::Sender<NetEvent>,
}

impl Network {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        peer_id: PeerId,
        control: libp2p_stream::Control,
        events: broadcast::Sender<NetEvent>,
    ) -> Self {
        Network { tx, peer_id, control, events }
    }

    /// This node's peer ID.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A control for opening and accepting raw protocol streams (Bitswap, providing).
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// Peer connect/disconnect events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NetEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// Dial an address; returns the peer reached.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Connect to `peer` (at once if it is connected), through `addrs` and every address the
    /// swarm knows for it.
    pub async fn connect(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<PeerId, NetError> {
        self.ask(|reply| Command::Connect { peer, addrs, reply }).await?
    }

    /// Close every connection to `peer`; false when it was not connected.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, NetError> {
        self.ask(|reply| Command::Disconnect { peer, reply }).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Whether `peer` is connected.
    pub async fn is_connected(&self, peer: PeerId) -> Result<bool, NetError> {
        self.ask(|reply| Command::IsConnected { peer, reply }).await
    }

    /// How this node's connections came about since it started.
    pub async fn reach(&self) -> Result<Reach, NetError> {
        self.ask(|reply| Command::Reach { reply }).await
    }

    /// Our listen and external addresses.
    pub async fn addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::Addrs { reply }).await
    }

    /// Start a provider search; providers arrive on the returned channel (already being
    /// dialled), which closes when the search ends.
    pub async fn find_providers(&self, cid: Cid, limit: usize) -> Result<mpsc::Receiver<PeerId>, NetError> {
        let (found, rx) = mpsc::channel(limit.clamp(1, 256));
        self.tx
            .send(Command::FindProviders { cid, limit, found, asked: None })
            .await
            .map_err(|_| NetError::Shutdown)?;
        Ok(rx)
    }

    /// [`Network::find_providers`], with the number of DHT requests the search has sent so
    /// far (updated before each batch of providers is handed over): the cost of a lookup.
    pub async fn find_providers_counted(
        &self,
        cid: Cid,
        limit: usize,
    ) -> Result<(mpsc::Receiver<PeerId>, Arc<AtomicU32>), NetError> {
        let (found, rx) = mpsc::channel(limit.clamp(1, 256));
        let asked = Arc::new(AtomicU32::new(0));
        let cmd = Command::FindProviders { cid, limit, found, asked: Some(asked.clone()) };
        self.tx.send(cmd).await.map_err(|_| NetError::Shutdown)?;
        Ok((rx, asked))
    }

    /// A peer's addresses, from the DHT.
    pub(crate) async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::FindPeer { peer, reply }).await?
    }

    /// Announce `cid` to the DHT.
    pub async fn provide(&self, cid: Cid) -> Result<(), NetError> {
        self.ask(|reply| Command::Provide { cid, reply }).await?
    }

    /// The closest peers to a key and their addresses (one DHT walk).
    pub(crate) async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerAddrs>, NetError> {
        self.ask(|reply| Command::ClosestPeers { key, reply }).await?
    }

    /// Answer GET_PROVIDERS for these multihashes from now on.
    pub(crate) async fn add_local_providers(&self, keys: Vec<Vec<u8>>, addrs: Vec<Multiaddr>) -> Result<(), NetError> {
        self.tx.send(Command::AddLocalProviders { keys, addrs }).await.map_err(|_| NetError::Shutdown)
    }

    /// Stop answering GET_PROVIDERS for these multihashes.
    pub(crate) async fn remove_local_providers(&self, keys: Vec<Vec<u8>>) -> Result<(), NetError> {
        self.tx.send(Command::RemoveLocalProviders { keys }).await.map_err(|_| NetError::Shutdown)
    }

    /// Walk the DHT towards our own ID.
    pub async fn bootstrap(&self) -> Result<(), NetError> {
        self.ask(|reply| Command::Bootstrap { reply }).await?
    }

    /// Put `peer` (listening at `addr`) in the DHT routing table without dialling it; whether
    /// its bucket took it.
    #[cfg(feature = "test-utils")]
    pub async fn know_peer(&self, peer: PeerId, addr: Multiaddr) -> Result<bool, NetError> {
        self.ask(|reply| Command::KnowPeer { peer, addr, reply }).await
    }

    /// Peers in the routing table.
    pub async fn routing_table(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::RoutingTable { reply }).await
    }

    /// Validate and publish a value record (`/ipns/<id>` or `/pk/<id>`).
    pub async fn put_value(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), NetError> {
        self.ask(|reply| Command::PutValue { key, value, reply }).await?
    }

    /// The best valid value record under `key`, after the whole DHT walk.
    pub async fn get_value(&self, key: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let mut found = self.search_value(key).await?;
        let mut best: Option<FoundValue> = None;
        while let Some(f) = found.recv().await {
            if best.as_ref().is_none_or(|b| cairn_protocol::records::replaces(&b.record, &f.record)) {
                best = Some(f);
            }
        }
        best.map(|b| b.value).ok_or(NetError::NotFound)
    }

    /// Start a value search: valid records under `key` arrive on the receiver as peers send
    /// them; it closes when the walk ends. Drop it to end the walk early.
    pub async fn search_value(&self, key: Vec<u8>) -> Result<mpsc::Receiver<FoundValue>, NetError> {
        let (found, rx) = mpsc::channel(FOUND_VALUES);
        self.tx.send(Command::SearchValue { key, found }).await.map_err(|_| NetError::Shutdown)?;
        Ok(rx)
    }

    /// Subscribe to a gossipsub topic (false: already subscribed).
    pub async fn pubsub_subscribe(&self, topic: String) -> Result<bool, NetError> {
        self.ask(|reply| Command::Subscribe { topic, reply }).await?
    }

    /// Publish `data` on a gossipsub topic.
    pub async fn pubsub_publish(&self, topic: String, data: Vec<u8>) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish { topic, data, reply }).await?
    }

    /// Tell gossipsub whether to forward a message ([`PubsubEvent::Message`]).
    pub async fn pubsub_validate(&self, id: libp2p::gossipsub::MessageId, source: PeerId, accept: Option<bool>) {
        let _ = self.tx.send(Command::Validate { id, source, accept }).await;
    }

    /// The peers known to be subscribed to `topic`.
    pub async fn pubsub_peers(&self, topic: String) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::TopicPeers { topic, reply }).await
    }

    /// Receive gossipsub's events from now on (the previous listener, if any, stops getting
    /// them).
    pub async fn pubsub_events(&self) -> Result<mpsc::Receiver<PubsubEvent>, NetError> {
        let (tx, rx) = mpsc::channel(PUBSUB_EVENTS);
        self.tx.send(Command::PubsubListen { tx }).await.map_err(|_| NetError::Shutdown)?;
        Ok(rx)
    }

    /// Keep a value record received outside the DHT (PubSub) if it is valid and replaces the
    /// one held under its key; answers whether it was kept.
    pub async fn offer_value(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, NetError> {
        self.ask(|reply| Command::OfferValue { key, value, reply }).await?
    }
}

/// Wait (each node at most `timeout`) until every node's routing table holds a peer, then let
/// all but the first walk the DHT: a fresh in-process testnet, ready for lookups.
#[cfg(feature = "test-utils")]
pub(crate) async fn settle_testnet(nets: &[Network], timeout: std::time::Duration) -> Result<(), NetError> {
    for n in nets {
        tokio::time::timeout(timeout, async {
            while n.routing_table().await.map(|t| t.is_empty()).unwrap_or(true) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .map_err(|_| NetError::Dht(format!("routing table of {} still empty after {timeout:?}", n.local_peer_id())))?;
    }
    for n in nets.iter().skip(1) {
        n.bootstrap().await?;
    }
    Ok(())
}

/// Parse config strings into multiaddresses, naming the bad one.
pub(crate) fn parse_addrs(texts: &[String]) -> Result<Vec<Multiaddr>, NetError> {
    texts.iter().map(|t| t.parse().map_err(|_| NetError::BadAddress(t.clone()))).collect()
}

/// The peer ID at the end of a `/p2p/<id>` address, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}
