//! The dial budget (`network.max_dials_per_sec`): a `NetworkBehaviour` that refuses new
//! outbound connections past a rate, whoever asks for them (DHT walks, Bitswap, provider
//! searches, redials). A home router keeps an entry for every connection attempt, answered or
//! not, for minutes; a burst of dials fills its table and takes the household offline.

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::task::{Context, Poll};

use governor::{DefaultDirectRateLimiter, Quota};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Why a dial was refused.
#[derive(Debug, thiserror::Error)]
#[error("dial budget exhausted ({0} new connections per second, network.max_dials_per_sec)")]
pub struct OverBudget(u32);

/// Refuses outbound connections past `per_sec` per second (bursts of twice that).
pub struct DialBudget {
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
}

impl DialBudget {
    /// A budget of `per_sec` dials per second; 0 means unlimited.
    pub fn new(per_sec: u32) -> DialBudget {
        let limiter = NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(per_sec.saturating_mul(2)).unwrap_or(rate);
            (DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst)), per_sec)
        });
        DialBudget { limiter }
    }
}

impl NetworkBehaviour for DialBudget {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        match &self.limiter {
            Some((l, rate)) if l.check().is_err() => Err(ConnectionDenied::new(OverBudget(*rate))),
            _ => Ok(Vec::new()),
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_past_the_burst_are_refused_and_zero_means_unlimited() {
        let mut b = DialBudget::new(5);
        let dial = |b: &mut DialBudget| {
            b.handle_pending_outbound_connection(ConnectionId::new_unchecked(0), None, &[], Endpoint::Dialer).is_ok()
        };
        let allowed = (0..20).filter(|_| dial(&mut b)).count();
        assert_eq!(allowed, 10, "a burst of twice the rate");
        let mut free = DialBudget::new(0);
        assert!((0..1000).all(|_| dial(&mut free)));
    }
}
