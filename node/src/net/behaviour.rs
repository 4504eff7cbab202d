//! The composed `NetworkBehaviour` and the IPFS settings of each part.
//!
//! Kademlia speaks `/ipfs/kad/1.0.0` with go-libp2p's packet limit (4 MiB) and parallelism (10).
//! Its own provider republishing is off: the node announces what it holds itself. Inbound
//! records are filtered (`FilterBoth`) so that the swarm task decides what enters the store.
//! Gossipsub carries IPNS records (IPNS over PubSub) when `pubsub` is on.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns, ping, relay, upnp, StreamProtocol};

use super::records::RecordStore;
use super::NetConfig;

/// The IPFS Amino DHT protocol.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");

/// go-libp2p's message limit for DHT RPCs (rust-libp2p defaults to 16 KiB, too small for the
/// provider lists and closer-peer lists go peers send).
pub(crate) const KAD_MAX_PACKET: usize = 4 * 1024 * 1024;

/// In-flight requests per DHT lookup (go's `DefaultConcurrency`).
pub(crate) const KAD_PARALLELISM: usize = 10;

/// What identify announces as our agent.
pub(crate) const AGENT: &str = concat!("cairn/", env!("CARGO_PKG_VERSION"));

/// The protocol version identify announces (the IPFS one).
pub(crate) const IDENTIFY_PROTOCOL: &str = "ipfs/0.1.0";

/// Every protocol the node speaks besides raw streams.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Refuses connections over the configured limits.
    pub limits: connection_limits::Behaviour,
    /// Refuses new outbound connections past the configured rate.
    pub dials: super::budget::DialBudget,
    /// `/ipfs/id/1.0.0`: learn peers' listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// `/ipfs/ping/1.0.0`: liveness.
    pub ping: ping::Behaviour,
    /// The DHT.
    pub kad: kad::Behaviour<RecordStore>,
    /// AutoNAT v1 (`/libp2p/autonat/1.0.0`), client and server: reachability probes that
    /// decide DHT server mode in `auto`; the server answers older peers such as kubo v0.22.
    pub autonat: Toggle<autonat::Behaviour>,
    /// AutoNAT v2 client: each candidate address tested by a server's dial-back.
    pub autonat_v2: Toggle<autonat::v2::client::Behaviour>,
    /// AutoNAT v2 server: dials back the address a peer asks about (a different IP than the
    /// one it connected from costs that peer 30–100 kB first).
    pub autonat_v2_server: Toggle<autonat::v2::server::Behaviour>,
    /// UPnP IGD: the listen ports mapped on the router (`network.discovery`).
    pub upnp: Toggle<upnp::tokio::Behaviour>,
    /// Raw protocol streams (Bitswap, batched providing), handled outside the swarm task.
    pub stream: libp2p_stream::Behaviour,
    /// Gossipsub (`/meshsub/1.0.0`–`1.3.0`) for IPNS over PubSub: signed messages only,
    /// each validated by the name service before it is forwarded.
    pub pubsub: libp2p::swarm::behaviour::toggle::Toggle<gossipsub::Behaviour>,
    /// Peers on the local network (`network.discovery`), found by multicast DNS.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Circuit relay v2 client: reservations on relays, relayed connections.
    pub relay_client: Toggle<relay::client::Behaviour>,
    /// Circuit relay v2 service for others (`network.relay_service`).
    pub relay: Toggle<relay::Behaviour>,
    /// Hole punching: a relayed connection upgraded to a direct one (DCUtR).
    pub dcutr: Toggle<dcutr::Behaviour>,
}

/// Gossipsub as IPNS over PubSub wants it, interoperable with go's and JavaScript's: every
/// message signed by its author and checked (`Strict`), and held back from forwarding until
/// the application validated it; floodsub peers too (Helia's documented setup); go's message
/// IDs (author's peer-ID bytes ‖ big-endian sequence number), so gossip about a message means
/// the same to kubo; the first heartbeat after 100 ms as in go and JavaScript (rust-libp2p
/// waits 5 s); up to 1,000 topics per peer (busy kubo nodes pass rust-libp2p's default 100).
fn pubsub(key: &Keypair) -> Option<gossipsub::Behaviour> {
    let cfg = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .support_floodsub()
        .message_id_fn(|m: &gossipsub::Message| {
            let mut id = m.source.map(|p| p.to_bytes()).unwrap_or_default();
            id.extend_from_slice(&m.sequence_number.unwrap_or(0).to_be_bytes());
            gossipsub::MessageId::from(id)
        })
        .heartbeat_initial_delay(Duration::from_millis(100))
        .max_transmit_size(64 * 1024)
        .build()
        .map_err(|e| tracing::warn!("gossipsub config refused ({e}); PubSub is off"))
        .ok()?;
    let filter = gossipsub::MaxCountSubscriptionFilter {
        filter: gossipsub::AllowAllSubscriptionFilter {},
        max_subscribed_topics: 1000,
        max_subscriptions_per_request: 1000,
    };
    gossipsub::Behaviour::new_with_subscription_filter(gossipsub::MessageAuthenticity::Signed(key.clone()), cfg, filter)
        .map_err(|e| tracing::warn!("gossipsub refused ({e}); PubSub is off"))
        .ok()
}

impl Behaviour {
    /// Build with the node's key and network settings (`relay_client`: the transport's relay
    /// client, when the transport has one).
    pub fn new(key: &Keypair, cfg: &NetConfig, relay_client: Option<relay::client::Behaviour>) -> Self {
        let peer_id = key.public().to_peer_id();
        let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
        kad_cfg
            .set_max_packet_size(KAD_MAX_PACKET)
            .set_parallelism(NonZeroUsize::new(KAD_PARALLELISM).expect("non-zero"))
            .set_provider_publication_interval(None)
            .set_provider_record_ttl(Some(Duration::from_secs(48 * 3600)))
            .set_record_filtering(kad::StoreInserts::FilterBoth)
            .set_query_timeout(Duration::from_secs(60));
        if !cfg.dht_auto_bootstrap {
            kad_cfg.set_periodic_bootstrap_interval(None).set_automatic_bootstrap_throttle(None);
        }
        if !cfg.dht_table_inserts {
            kad_cfg.set_kbucket_inserts(kad::BucketInserts::Manual);
        }
        let mut kad = kad::Behaviour::with_config(peer_id, RecordStore::new(peer_id), kad_cfg);
        kad.set_mode(match cfg.dht_mode {
            super::DhtMode::Server => Some(kad::Mode::Server),
            super::DhtMode::Client => Some(kad::Mode::Client),
            super::DhtMode::Auto => None,
        });
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public()).with_agent_version(AGENT.into()),
        );
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(cfg.max_connections))
                .with_max_established_per_peer(Some(4))
                .with_max_pending_incoming(Some(cfg.max_pending))
                .with_max_pending_outgoing(Some(cfg.max_pending)),
        );
        let autonat = cfg.autonat.then(|| {
            let config = autonat::Config { only_global_ips: !cfg.autonat_private_addrs, ..autonat::Config::default() };
            autonat::Behaviour::new(peer_id, config)
        });
        Behaviour {
            limits,
            dials: super::budget::DialBudget::new(cfg.max_dials_per_sec),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            autonat: autonat.into(),
            autonat_v2: cfg.autonat.then(autonat::v2::client::Behaviour::default).into(),
            autonat_v2_server: cfg.autonat.then(autonat::v2::server::Behaviour::default).into(),
            upnp: cfg.upnp.then(upnp::tokio::Behaviour::default).into(),
            stream: libp2p_stream::Behaviour::new(),
            pubsub: cfg.pubsub.then(|| pubsub(key)).flatten().into(),
            mdns: cfg
                .mdns
                .then(|| {
                    mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                        .map_err(|e| tracing::warn!("mDNS cannot start ({e}); peers on the LAN are not discovered"))
                        .ok()
                })
                .flatten()
                .into(),
            relay_client: relay_client.filter(|_| cfg.relay_reservations > 0).into(),
            relay: cfg
                .relay_service
                .map(|l| {
                    let config = relay::Config {
                        max_circuit_bytes: if l.max_circuit_bytes == 0 { u64::MAX } else { l.max_circuit_bytes },
                        max_circuit_duration: l.max_circuit_duration,
                        ..relay::Config::default()
                    };
                    relay::Behaviour::new(peer_id, config)
                })
                .into(),
            dcutr: cfg.hole_punching.then(|| dcutr::Behaviour::new(peer_id)).into(),
        }
    }
}
