//! `swarm/peers|connect|disconnect|addrs|addrs/local`: connections to other peers. Each is
//! one request to the swarm task; all need the running node.

use std::collections::BTreeMap;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::repo::no_options;
use super::{json_reply, Args, Command, Ctx, Op, OpError};
use crate::net;

/// `swarm/peers`: connected peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmPeers;
no_options!(SwarmPeers, "swarm/peers");

/// `swarm/peers`'s answer: kubo's `{"Peers":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerList {
    /// One row per peer.
    pub peers: Vec<PeerRow>,
}
json_reply!(PeerList);

/// A connected peer, in kubo's fields (latency, muxer, direction and streams not tracked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerRow {
    /// The remote address of one connection.
    pub addr: String,
    /// The peer ID.
    pub peer: String,
    /// Empty.
    #[serde(default)]
    pub latency: String,
    /// Empty.
    #[serde(default)]
    pub muxer: String,
    /// 0 (not tracked).
    #[serde(default)]
    pub direction: u8,
    /// null.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// Established connections (cairn's own field).
    pub connections: u32,
}

impl Op for SwarmPeers {
    type Output = PeerList;

    async fn run(self, ctx: Ctx) -> Result<PeerList, OpError> {
        let peers = ctx.node(Self::NAME)?.net().peers().await?;
        Ok(PeerList {
            peers: peers
                .into_iter()
                .map(|p| PeerRow {
                    addr: p.addr,
                    peer: p.peer,
                    latency: String::new(),
                    muxer: String::new(),
                    direction: 0,
                    streams: None,
                    connections: p.connections,
                })
                .collect(),
        })
    }
}

/// Lines of text: kubo's `{"Strings":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Strings {
    /// The lines.
    pub strings: Vec<String>,
}
json_reply!(Strings);

fn parse_addr(text: &str) -> Result<Multiaddr, OpError> {
    text.parse().map_err(|_| OpError::bad(format!("invalid multiaddr {text:?}")))
}

/// A peer ID, or a multiaddr ending in `/p2p/<id>`.
pub(crate) fn parse_peer(text: &str) -> Result<PeerId, OpError> {
    if text.starts_with('/') {
        let addr = parse_addr(text)?;
        return net::peer_of(&addr).ok_or_else(|| OpError::bad(format!("{text} does not end in /p2p/<peer ID>")));
    }
    text.parse().map_err(|_| OpError::bad(format!("invalid peer ID {text:?}")))
}

/// `swarm/connect`: dial multiaddrs ending in `/p2p/<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmConnect {
    /// The addresses.
    pub addrs: Vec<String>,
}

impl Command for SwarmConnect {
    const NAME: &'static str = "swarm/connect";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.addrs.iter().map(|a| ("arg", a.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(SwarmConnect { addrs: args.some()?.into_iter().map(String::from).collect() })
    }
}

impl Op for SwarmConnect {
    type Output = Strings;

    async fn run(self, ctx: Ctx) -> Result<Strings, OpError> {
        let node = ctx.node(Self::NAME)?;
        let mut lines = Vec::new();
        for text in &self.addrs {
            let addr = parse_addr(text)?;
            let peer =
                node.net().dial(addr).await.map_err(|e| OpError::failed(format!("connect {text} failure: {e}")))?;
            lines.push(format!("connect {peer} success"));
        }
        Ok(Strings { strings: lines })
    }
}

/// `swarm/disconnect`: close every connection to peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmDisconnect {
    /// Peer IDs or multiaddrs ending in `/p2p/<id>`.
    pub peers: Vec<String>,
}

impl Command for SwarmDisconnect {
    const NAME: &'static str = "swarm/disconnect";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.peers.iter().map(|a| ("arg", a.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(SwarmDisconnect { peers: args.some()?.into_iter().map(String::from).collect() })
    }
}

impl Op for SwarmDisconnect {
    type Output = Strings;

    async fn run(self, ctx: Ctx) -> Result<Strings, OpError> {
        let node = ctx.node(Self::NAME)?;
        let mut lines = Vec::new();
        for text in &self.peers {
            let peer = parse_peer(text)?;
            if !node.net().disconnect(peer).await? {
                return Err(OpError::failed(format!("disconnect {peer} failure: not connected")));
            }
            lines.push(format!("disconnect {peer} success"));
        }
        Ok(Strings { strings: lines })
    }
}

/// `swarm/addrs`: the addresses of connected peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmAddrs;
no_options!(SwarmAddrs, "swarm/addrs");

/// kubo's `{"Addrs":{peer:[addr…]}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerAddrs {
    /// Addresses by peer ID.
    pub addrs: BTreeMap<String, Vec<String>>,
}
json_reply!(PeerAddrs);

impl Op for SwarmAddrs {
    type Output = PeerAddrs;

    async fn run(self, ctx: Ctx) -> Result<PeerAddrs, OpError> {
        let peers = ctx.node(Self::NAME)?.net().peers().await?;
        Ok(PeerAddrs { addrs: peers.into_iter().map(|p| (p.peer, vec![p.addr])).collect() })
    }
}

/// `swarm/addrs/local`: this node's listen and external addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmAddrsLocal {
    /// Append `/p2p/<id>` to each.
    pub id: bool,
}

impl Command for SwarmAddrsLocal {
    const NAME: &'static str = "swarm/addrs/local";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("id", self.id.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(SwarmAddrsLocal { id: args.flag("id", false)? })
    }
}

impl Op for SwarmAddrsLocal {
    type Output = Strings;

    async fn run(self, ctx: Ctx) -> Result<Strings, OpError> {
        let node = ctx.node(Self::NAME)?;
        let me = node.net().local_peer_id();
        let addrs = node.net().addrs().await?;
        let strings =
            addrs.into_iter().map(|a| if self.id { format!("{a}/p2p/{me}") } else { a.to_string() }).collect();
        Ok(Strings { strings })
    }
}
