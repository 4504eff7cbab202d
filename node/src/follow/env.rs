//! What every follow's task shares: the node's handles and the `[follow]` settings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bitswap::Bitswap;
use crate::names::Names;
use crate::net::Network;
use crate::pinning::InProgress;
use crate::provider::{Provider, Strategy};
use crate::store::Store;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a follow's task needs, shared by every follow.
pub(crate) struct Env {
    pub(crate) store: Store,
    pub(crate) bitswap: Bitswap,
    pub(crate) names: Names,
    pub(crate) net: Network,
    pub(crate) provider: Provider,
    pub(crate) strategy: Strategy,
    pub(crate) pinning: InProgress,
    /// `follow.check_interval_secs`.
    pub(crate) interval: Duration,
    /// `follow.grace_secs`.
    pub(crate) grace: Duration,
    /// `ipns.republish_interval_secs`: how often kept records are put again.
    pub(crate) republish_every: Duration,
    /// `follow.block_timeout_secs`: how long a check waits for any one block.
    pub(crate) block_timeout: Duration,
}

impl Env {
    /// A fetch session whose blocks give up after `follow.block_timeout_secs`.
    pub(super) fn session(&self) -> crate::bitswap::Session {
        self.bitswap.session_with_timeout(self.block_timeout)
    }
}
