//! `dht/findprovs`, `dht/findpeer`, `dht/provide`: the DHT, answered as kubo's routing
//! events. All need the running node.

use serde::{Deserialize, Serialize};

use super::args::cid_arg;
use super::swarm::parse_peer;
use super::work::blocking;
use super::{Args, Command, Ctx, Lines, Op, OpError};
use crate::dag::{self, WalkMode};

/// kubo's routing event types.
const FINAL_PEER: u8 = 2;
const PROVIDER: u8 = 4;

/// Providers `dht/findprovs` looks for unless told, as kubo.
pub(crate) const DEFAULT_PROVIDERS: usize = 20;

/// Most providers one `dht/findprovs` may ask for.
pub(crate) const MAX_PROVIDERS: usize = 1000;

/// One kubo routing event: `{"Extra","ID","Responses":[{"ID","Addrs"}],"Type"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingEvent {
    /// For `dht/provide`, the key announced.
    pub extra: String,
    /// Empty.
    #[serde(rename = "ID")]
    pub id: String,
    /// The peers the event is about.
    pub responses: Vec<RoutingPeer>,
    /// 2: a peer's addresses; 4: a provider.
    #[serde(rename = "Type")]
    pub kind: u8,
}

/// A peer in a routing event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPeer {
    /// The peer ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its addresses, when known.
    #[serde(rename = "Addrs", default)]
    pub addrs: Vec<String>,
}

fn event(kind: u8, peer: String, addrs: Vec<String>, extra: String) -> RoutingEvent {
    RoutingEvent { extra, id: String::new(), responses: vec![RoutingPeer { id: peer, addrs }], kind }
}

/// `dht/findprovs`: peers that provide a CID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtFindprovs {
    /// The CID.
    pub cid: String,
    /// Most providers to find.
    pub num_providers: usize,
}

impl Command for DhtFindprovs {
    const NAME: &'static str = "dht/findprovs";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.cid.clone()), ("num-providers", self.num_providers.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        let n = args.u64("num-providers")?.map_or(DEFAULT_PROVIDERS, |n| n as usize);
        if n == 0 || n > MAX_PROVIDERS {
            return Err(OpError::bad(format!("num-providers must be between 1 and {MAX_PROVIDERS}")));
        }
        Ok(DhtFindprovs { cid: args.arg()?.to_string(), num_providers: n })
    }
}

impl Op for DhtFindprovs {
    type Output = Lines<RoutingEvent>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let cid = cid_arg(&self.cid)?;
        let mut rx = ctx.node(Self::NAME)?.net().find_providers(cid, self.num_providers).await?;
        let mut rows = Vec::new();
        while let Some(peer) = rx.recv().await {
            rows.push(event(PROVIDER, peer.to_string(), Vec::new(), String::new()));
        }
        Ok(Lines(rows))
    }
}

/// `dht/findpeer`: a peer's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtFindpeer {
    /// The peer ID.
    pub peer: String,
}

impl Command for DhtFindpeer {
    const NAME: &'static str = "dht/findpeer";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.peer.clone())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(DhtFindpeer { peer: args.arg()?.to_string() })
    }
}

impl Op for DhtFindpeer {
    type Output = Lines<RoutingEvent>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let peer = parse_peer(&self.peer)?;
        let addrs = ctx.node(Self::NAME)?.net().find_peer(peer).await?;
        if addrs.is_empty() {
            return Err(OpError::failed(format!("routing: peer {peer} not found")));
        }
        let addrs = addrs.into_iter().map(|a| a.to_string()).collect();
        Ok(Lines(vec![event(FINAL_PEER, peer.to_string(), addrs, String::new())]))
    }
}

/// `dht/provide`: announce CIDs held here, or every block of their DAGs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtProvide {
    /// CIDs.
    pub cids: Vec<String>,
    /// Every block of their DAGs.
    pub recursive: bool,
}

impl Command for DhtProvide {
    const NAME: &'static str = "dht/provide";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.cids.iter().map(|c| ("arg", c.clone())).collect();
        a.push(("recursive", self.recursive.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(DhtProvide {
            cids: args.some()?.into_iter().map(String::from).collect(),
            recursive: args.flag("recursive", false)?,
        })
    }
}

impl Op for DhtProvide {
    type Output = Lines<RoutingEvent>;

    /// Announces each key with one DHT walk and answers one event per key, `Extra` naming it.
    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let node = ctx.node(Self::NAME)?.clone();
        let roots = self.cids.iter().map(|c| cid_arg(c)).collect::<Result<Vec<_>, _>>()?;
        let recursive = self.recursive;
        let c = ctx.clone();
        let keys = blocking(move |_| {
            let store = c.store();
            let mut keys = Vec::new();
            for root in roots {
                if !store.has(&root)? {
                    return Err(OpError::failed(format!(
                        "block {root} is not in the local store: only held blocks can be provided"
                    )));
                }
                if recursive {
                    dag::walk(store, &root, WalkMode::LinksOnly, true, &mut |c, _| {
                        keys.push(*c);
                        Ok(())
                    })?;
                } else {
                    keys.push(root);
                }
            }
            Ok(keys)
        })
        .await?;
        let me = node.net().local_peer_id().to_string();
        let mut rows = Vec::new();
        for key in keys {
            node.net().provide(key).await.map_err(|e| OpError::failed(format!("providing {key}: {e}")))?;
            rows.push(event(PROVIDER, me.clone(), Vec::new(), key.to_string()));
        }
        Ok(Lines(rows))
    }
}
