//! Whether peers can dial this node: what AutoNAT (v1 and v2) and UPnP port mapping found,
//! folded into one answer for `cairn id`, the relay client and DHT server mode.
//!
//! An address counts as public once confirmed (an AutoNAT server dialled it back, the router
//! mapped it, or the configuration announces it). A confirmed private address is dropped
//! unless `autonat_private_addrs` is on: a LAN peer can dial it back, the internet cannot.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use super::Reachability;

/// What the probes said so far.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    /// A dial-back to one of this node's candidate addresses failed (AutoNAT v2), or AutoNAT
    /// v1 concluded "private".
    pub(crate) failed: bool,
}

impl Probes {
    /// The answer, given the confirmed external addresses.
    pub(crate) fn reachability<'a>(&self, external: impl IntoIterator<Item = &'a Multiaddr>) -> Reachability {
        if external.into_iter().any(|a| !is_relayed(a)) {
            Reachability::Public
        } else if self.failed {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }
}

/// Whether `addr` goes through a relay.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether `addr` could be dialled from the internet: its IP is global, or it is a DNS name.
pub(crate) fn is_global(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => global_v4(ip),
        Some(Protocol::Ip6(ip)) => global_v6(ip),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_)) => true,
        _ => false,
    }
}

fn global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || (a == 100 && (b & 0xc0) == 64) // shared address space (carrier-grade NAT)
        || a >= 240)
}

fn global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return global_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first == 0x2001 && ip.segments()[1] == 0xdb8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_shared_addresses_are_not_global() {
        for a in ["/ip4/10.1.2.3/tcp/1", "/ip4/192.168.1.2/tcp/1", "/ip4/127.0.0.1/tcp/1", "/ip4/100.64.0.1/tcp/1"] {
            assert!(!is_global(&a.parse().unwrap()), "{a}");
        }
        for a in ["/ip6/::1/tcp/1", "/ip6/fd00::1/tcp/1", "/ip6/fe80::1/tcp/1"] {
            assert!(!is_global(&a.parse().unwrap()), "{a}");
        }
        for a in ["/ip4/1.2.3.4/tcp/1", "/ip6/2a01::1/udp/1/quic-v1", "/dns4/example.net/tcp/4001"] {
            assert!(is_global(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn a_relayed_address_does_not_make_the_node_public() {
        let relayed: Multiaddr =
            "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE/p2p-circuit".parse().unwrap();
        let probes = Probes { failed: true };
        assert_eq!(probes.reachability([&relayed]), Reachability::Private);
        assert_eq!(Probes::default().reachability([]), Reachability::Unknown);
        let direct: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        assert_eq!(probes.reachability([&relayed, &direct]), Reachability::Public);
    }
}
