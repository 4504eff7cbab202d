//! Building the swarm: TCP with TLS or noise and yamux, plus QUIC v1, with DNS (`/dns4/`,
//! `/dns6/`, `/dns/` and `/dnsaddr/` addresses resolved when dialled) for the real network; the
//! memory transport with noise and yamux for in-process tests.

use hickory_resolver::config::NameServerConfig;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::dns::{ResolverConfig, ResolverOpts};
use libp2p::identity::Keypair;
use libp2p::metrics::Registry;
use libp2p::{noise, tcp, tls, yamux, Swarm, SwarmBuilder, Transport};

use super::behaviour::Behaviour;
use super::{NetConfig, NetError, TransportKind};

/// Longest a memory-transport connection may take to negotiate Noise and yamux (the TCP and
/// QUIC transports bound their handshakes themselves).
const MEMORY_UPGRADE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The name servers `/dns*` addresses are resolved with: those given, else the system's. A
/// system without a resolver configuration gets none (DNS addresses then fail to dial) rather
/// than a public default: the node never sends queries anywhere it was not told to.
fn resolver(servers: &[std::net::IpAddr]) -> (ResolverConfig, ResolverOpts) {
    if !servers.is_empty() {
        let servers = servers.iter().map(|ip| NameServerConfig::udp_and_tcp(*ip)).collect();
        return (ResolverConfig::from_parts(None, Vec::new(), servers), ResolverOpts::default());
    }
    match hickory_resolver::system_conf::read_system_conf() {
        Ok(conf) => conf,
        Err(e) => {
            tracing::warn!("no DNS resolver configuration ({e}): /dns and /dnsaddr addresses cannot be dialled");
            (ResolverConfig::from_parts(None, Vec::new(), Vec::new()), ResolverOpts::default())
        }
    }
}

/// A swarm over the configured transports, counting each connection's bytes in `registry`
/// (`libp2p_bandwidth_bytes_total`, by direction and transport).
pub fn build(key: Keypair, cfg: &NetConfig, registry: &mut Registry) -> Result<Swarm<Behaviour>, NetError> {
    let err = |e: &dyn std::fmt::Display| NetError::Dial(format!("building the swarm: {e}"));
    let idle = cfg.idle_timeout;
    let resolver = resolver(&cfg.dns_servers);
    let swarm = match cfg.transport {
        TransportKind::Real => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                // The kernel's accept queue is one more place connections wait: no longer than
                // the pending limit, so the caps hold as counted from outside the node.
                tcp::Config::default().nodelay(true).listen_backlog(cfg.max_pending),
                (tls::Config::new, noise::Config::new),
                yamux::Config::default,
            )
            .map_err(|e| err(&e))?
            .with_quic()
            .with_dns_config(resolver.0, resolver.1)
            .with_relay_client((tls::Config::new, noise::Config::new), yamux::Config::default)
            .map_err(|e| err(&e))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key, relay| Behaviour::new(key, cfg, Some(relay)))
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
                        .timeout(MEMORY_UPGRADE_TIMEOUT)
                        .boxed(),
                )
            })
            .map_err(|e| err(&e))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| Behaviour::new(key, cfg, None))
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
    };
    Ok(swarm)
}
