//! `version` and `id`: what this program and this node are.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{json_reply, Args, Command, Ctx, Op, OpError};

/// `version`: this program's version, in kubo's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version;

/// `version`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    /// The cairn version.
    pub version: String,
    /// Empty (kubo: the git commit).
    pub commit: String,
    /// The repo format version this program reads and writes.
    pub repo: String,
    /// `arch/os`.
    pub system: String,
    /// Empty (kubo: its Go version).
    pub golang: String,
}
json_reply!(VersionInfo);

impl VersionInfo {
    /// This program's version; needs no repo.
    pub fn current() -> VersionInfo {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: String::new(),
            repo: crate::repo::REPO_VERSION.to_string(),
            system: format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
            golang: String::new(),
        }
    }
}

impl Command for Version {
    const NAME: &'static str = "version";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn from_args(_: &Args) -> Result<Self, OpError> {
        Ok(Version)
    }
}

impl Op for Version {
    type Output = VersionInfo;

    async fn run(self, _: Ctx) -> Result<VersionInfo, OpError> {
        Ok(VersionInfo::current())
    }
}

/// `id`: this node's identity and (when it runs) the addresses peers reach it on. Other
/// peers' records are not kept, so naming another peer is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Id {
    /// A peer ID; only this node's own is answered.
    pub peer: Option<String>,
}

/// `id`'s answer: kubo's fields and the repo's node profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdInfo {
    /// The peer ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The public key as a libp2p protobuf, base64.
    #[serde(rename = "PublicKey")]
    pub public_key: String,
    /// Listen and external addresses, each ending in `/p2p/<id>` (none without the network).
    #[serde(rename = "Addresses")]
    pub addresses: Vec<String>,
    /// `cairn/<version>`.
    #[serde(rename = "AgentVersion")]
    pub agent_version: String,
    /// `ipfs/0.1.0`, as kubo.
    #[serde(rename = "ProtocolVersion")]
    pub protocol_version: String,
    /// The repo's node profile (`home`, `server`, `local`); cairn's own field.
    #[serde(rename = "Profile", default)]
    pub profile: String,
    /// How the daemon's connections came about since it started: direct, relayed, hole
    /// punched (none without the network); cairn's own field.
    #[serde(rename = "Connections", default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<crate::net::Reach>,
    /// The daemon's HTTP gateway (`http://IP:PORT`), when it serves one; cairn's own field.
    #[serde(rename = "Gateway", default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}
json_reply!(IdInfo);

impl Command for Id {
    const NAME: &'static str = "id";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.peer.iter().map(|p| ("arg", p.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(Id { peer: args.all().first().map(|p| p.to_string()) })
    }
}

impl Op for Id {
    type Output = IdInfo;

    async fn run(self, ctx: Ctx) -> Result<IdInfo, OpError> {
        let repo = ctx.repo();
        let me = repo.identity().peer_id();
        if let Some(other) = &self.peer {
            if *other != me {
                return Err(OpError::bad(
                    "`id` of another peer is not supported: use `dht/findpeer` for its addresses",
                ));
            }
        }
        let mut proto = vec![0x08, 0x01, 0x12, 0x20];
        proto.extend_from_slice(&repo.identity().public_bytes());
        let (addresses, connections, gateway) = match &ctx {
            Ctx::Online(node) => (
                node.net().addrs().await?.into_iter().map(|a| format!("{a}/p2p/{me}")).collect(),
                Some(node.net().reach().await?),
                node.gateway_url().map(String::from),
            ),
            Ctx::Offline(_) => (Vec::new(), None, None),
        };
        Ok(IdInfo {
            id: me,
            public_key: base64::engine::general_purpose::STANDARD.encode(proto),
            addresses,
            agent_version: concat!("cairn/", env!("CARGO_PKG_VERSION")).into(),
            protocol_version: "ipfs/0.1.0".into(),
            profile: repo.config().profile.clone(),
            connections,
            gateway,
        })
    }
}
