//! Building the swarm: TCP with TLS or noise and yamux, plus QUIC v1, for the real network; the
//! memory transport with noise and yamux for in-process tests. Nothing here resolves DNS, maps
//! ports or multicasts: the node only talks to addresses it is given or learns from peers.

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::{noise, tcp, tls, yamux, Swarm, SwarmBuilder, Transport};

use super::behaviour::Behaviour;
use super::{NetConfig, NetError, TransportKind};

/// A swarm over the configured transports.
pub fn build(key: Keypair, cfg: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let err = |e: &dyn std::fmt::Display| NetError::Dial(format!("building the swarm: {e}"));
    let idle = cfg.idle_timeout;
    let swarm = match cfg.transport {
        TransportKind::Real => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                (tls::Config::new, noise::Config::new),
                yamux::Config::default,
            )
            .map_err(|e| err(&e))?
            .with_quic()
            .with_behaviour(|key| Behaviour::new(key, cfg))
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
        TransportKind::Memory => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    MemoryTransport::default()
                        .upgrade(upgrade::Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default())
                        .boxed(),
                )
            })
            .map_err(|e| err(&e))?
            .with_behaviour(|key| Behaviour::new(key, cfg))
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
    };
    Ok(swarm)
}
