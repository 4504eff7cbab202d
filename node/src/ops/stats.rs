//! `bitswap/stat|wantlist`, `stats/bw`, `provide/stat`, `shutdown`: the running node's state.
//!
//! `stats/bw` reports Bitswap's block byte counters (`TotalIn`/`TotalOut`): there are no
//! transport-level counters yet, and rates are not measured (always 0).

use serde::{Deserialize, Serialize};

use super::repo::no_options;
use super::swarm::parse_peer;
use super::{json_reply, Args, Command, Ctx, Op, OpError};

/// `bitswap/stat`: Bitswap's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitswapStat;
no_options!(BitswapStat, "bitswap/stat");

/// A CID as a dag-json link, `{"/": cid}`.
pub use super::dag::CidLink;

/// kubo's fields (`Wantlist`, `Peers`, `BlocksReceived`, `DataReceived`, `BlocksSent`,
/// `DataSent`, `DupBlksReceived`, `DupDataReceived`) plus cairn's own counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BitswapStats {
    /// 0 (announcements have their own queue: `provide/stat`).
    pub provide_buf_len: u64,
    /// Blocks this node is fetching.
    pub wantlist: Vec<CidLink>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Wanted blocks received and verified.
    pub blocks_received: u64,
    /// Their bytes.
    pub data_received: u64,
    /// Blocks sent to peers.
    pub blocks_sent: u64,
    /// Their bytes.
    pub data_sent: u64,
    /// Blocks received again after they were delivered.
    pub dup_blks_received: u64,
    /// Their bytes.
    pub dup_data_received: u64,
    /// Messages received and decoded.
    pub messages_received: u64,
    /// Blocks nobody here asked for.
    pub unwanted_blocks: u64,
    /// Inbound streams reset for a protocol violation.
    pub protocol_violations: u64,
    /// Peers banned since start.
    pub peers_banned: u64,
    /// Peers banned now.
    pub banned_now: u64,
    /// Peers whose wants we hold.
    pub ledger_peers: u64,
    /// Wants held across every ledger.
    pub ledger_wants: u64,
}
json_reply!(BitswapStats);

fn links(cids: &[cairn_protocol::Cid]) -> Vec<CidLink> {
    cids.iter().map(|c| CidLink { cid: c.to_string() }).collect()
}

impl Op for BitswapStat {
    type Output = BitswapStats;

    async fn run(self, ctx: Ctx) -> Result<BitswapStats, OpError> {
        let node = ctx.node(Self::NAME)?;
        let s = node.bitswap().stats().await?;
        let wantlist = links(&node.bitswap().wantlist().await?);
        let peers = node.net().peers().await?.into_iter().map(|p| p.peer).collect();
        Ok(BitswapStats {
            provide_buf_len: 0,
            wantlist,
            peers,
            blocks_received: s.blocks_received,
            data_received: s.bytes_received,
            blocks_sent: s.blocks_sent,
            data_sent: s.bytes_sent,
            dup_blks_received: s.dup_blocks,
            dup_data_received: s.dup_bytes,
            messages_received: s.messages_received,
            unwanted_blocks: s.unwanted_blocks,
            protocol_violations: s.protocol_violations,
            peers_banned: s.peers_banned,
            banned_now: s.banned_now,
            ledger_peers: s.ledger_peers,
            ledger_wants: s.ledger_wants,
        })
    }
}

/// `bitswap/wantlist`: what this node is fetching, or what a peer wants from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitswapWantlist {
    /// A peer ID.
    pub peer: Option<String>,
}

/// kubo's `{"Keys":[{"/":cid}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Wantlist {
    /// The wanted CIDs.
    pub keys: Vec<CidLink>,
}
json_reply!(Wantlist);

impl Command for BitswapWantlist {
    const NAME: &'static str = "bitswap/wantlist";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.peer.iter().map(|p| ("peer", p.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(BitswapWantlist { peer: args.get("peer").map(String::from) })
    }
}

impl Op for BitswapWantlist {
    type Output = Wantlist;

    async fn run(self, ctx: Ctx) -> Result<Wantlist, OpError> {
        let node = ctx.node(Self::NAME)?;
        let list = match &self.peer {
            Some(p) => node.bitswap().peer_wantlist(parse_peer(p)?).await?,
            None => node.bitswap().wantlist().await?,
        };
        Ok(Wantlist { keys: links(&list) })
    }
}

/// `stats/bw`: Bitswap block bytes in and out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsBw;
no_options!(StatsBw, "stats/bw");

/// kubo's `{"TotalIn","TotalOut","RateIn","RateOut"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Bandwidth {
    /// Bytes received.
    pub total_in: u64,
    /// Bytes sent.
    pub total_out: u64,
    /// 0 (not measured).
    pub rate_in: f64,
    /// 0 (not measured).
    pub rate_out: f64,
}
json_reply!(Bandwidth);

impl Op for StatsBw {
    type Output = Bandwidth;

    async fn run(self, ctx: Ctx) -> Result<Bandwidth, OpError> {
        let s = ctx.node(Self::NAME)?.bitswap().stats().await?;
        Ok(Bandwidth { total_in: s.bytes_received, total_out: s.bytes_sent, rate_in: 0.0, rate_out: 0.0 })
    }
}

/// `provide/stat`: the DHT announcement schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvideStat;
no_options!(ProvideStat, "provide/stat");

/// The schedule's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvideInfo {
    /// Keys waiting for an announcement.
    pub queued: u64,
    /// Keys announced since the node started.
    pub provided: u64,
    /// Announcements that failed since the node started.
    pub failed: u64,
    /// Keys in the schedule.
    pub total_keys: u64,
    /// Unix time of the last completed announcement, 0 if none.
    pub last_provide: u64,
    /// Seconds the oldest due key is overdue.
    pub lag_seconds: u64,
    /// DHT walks made by sweeps since the node started.
    pub walks: u64,
}
json_reply!(ProvideInfo);

impl Op for ProvideStat {
    type Output = ProvideInfo;

    async fn run(self, ctx: Ctx) -> Result<ProvideInfo, OpError> {
        let s = ctx.node(Self::NAME)?.provider().stat().await;
        Ok(ProvideInfo {
            queued: s.queued,
            provided: s.provided,
            failed: s.failed,
            total_keys: s.total_keys,
            last_provide: s.last_provide,
            lag_seconds: s.lag_secs,
            walks: s.walks,
        })
    }
}

/// `shutdown`: stop the node (the daemon then stops the API, flushes the store and exits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shutdown;
no_options!(Shutdown, "shutdown");

impl Op for Shutdown {
    type Output = ();

    async fn run(self, ctx: Ctx) -> Result<(), OpError> {
        let node = ctx.node(Self::NAME)?;
        tracing::info!("shutdown requested");
        node.shutdown_token().cancel();
        Ok(())
    }
}
