//! The operations layer: every command of the CLI and the RPC API, written once.
//!
//! Each command is one typed request (a struct named for it, [`Command::NAME`] being kubo's
//! path: `pin/add`) with one typed answer in kubo's field names. A request travels as kubo's
//! query string ([`Command::to_args`] / [`Command::from_args`]) and its answer as kubo's JSON
//! body ([`Reply`]), so the RPC API ([`crate::api`]) is a route-to-operation adapter and the
//! CLI runs the same request either in its own process on the repo or through a daemon, with
//! equal answers.
//!
//! Three shapes of command:
//! - [`Op`]: arguments in, one [`Reply`] out (`pin/ls`, `repo/stat`, `swarm/peers`, …);
//! - [`WriteOp`]: arguments in, a byte stream out (`cat`, `get`'s tar, `block/get`, a CAR);
//! - [`UploadOp`]: arguments and a sequence of [`Part`]s in, a [`Reply`] out (`add`,
//!   `block/put`, `dag/import`).
//!
//! Every command runs over a [`Ctx`]: a repo opened by the calling process (no network:
//! reads are served from the store, network commands fail with [`OpError::Offline`]), or a
//! running [`Node`] (missing blocks are fetched, new content is announced).
//!
//! Module map:
//! - [`error`]: why an operation failed.
//! - [`args`]: kubo's query-string options.
//! - [`work`]: blocking work with cancellation, block sources, making a DAG local.
//! - [`info`]: `version`, `id`.
//! - [`add`]: `add`, over [`crate::importer`].
//! - [`content`]: `cat`, `get`, `ls`.
//! - [`pin`]: `pin/add`, `pin/rm`, `pin/ls`, `pin/verify`.
//! - [`block`]: `block/get`, `block/put`, `block/stat`, `block/rm`.
//! - [`dag`]: `dag/import`, `dag/export`.
//! - [`repo`]: `repo/gc`, `repo/stat`, `repo/verify`.
//! - [`swarm`]: `swarm/peers`, `swarm/connect`, `swarm/disconnect`, `swarm/addrs`, `swarm/addrs/local`.
//! - [`routing`]: `dht/findprovs`, `dht/findpeer`, `dht/provide`.
//! - [`stats`]: `bitswap/stat|wantlist`, `stats/bw`, `provide/stat`, `shutdown`.
//! - [`key`]: `key/gen`, `key/list`, `key/rm`, `key/rename`, `key/import`.
//! - [`name`]: `name/publish`, `name/resolve`.
//! - [`follow`]: `follow/add`, `follow/ls`, `follow/rm`, `follow/status`.
//! - [`health`]: `health`, the survival check.

pub mod add;
pub mod args;
pub mod block;
pub mod content;
pub mod dag;
pub mod doctor;
pub mod error;
pub mod follow;
pub mod health;
pub mod info;
pub mod key;
pub mod name;
pub mod pin;
pub mod repo;
pub mod routing;
pub mod stats;
pub mod swarm;
pub mod work;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use cairn_protocol::Cid;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::http_body::PieceSender;
pub use crate::upload::{Part, PartKind, Parts};
pub use args::Args;
pub use error::OpError;

use crate::node::Node;
use crate::repo::Repo;
use crate::store::Store;

/// Where an operation runs.
#[derive(Clone)]
pub enum Ctx {
    /// A repo opened (and locked) by this process, without the network.
    Offline(Arc<Repo>),
    /// A running node: the network is there.
    Online(Arc<Node>),
}

impl Ctx {
    /// The repo (config, identity, store).
    pub fn repo(&self) -> &Repo {
        match self {
            Ctx::Offline(r) => r,
            Ctx::Online(n) => n.repo(),
        }
    }

    /// The block store.
    pub fn store(&self) -> &Store {
        self.repo().store()
    }

    /// The running node, or [`OpError::Offline`] naming the command that needs it.
    pub fn node(&self, command: &str) -> Result<&Arc<Node>, OpError> {
        match self {
            Ctx::Online(n) => Ok(n),
            Ctx::Offline(_) => Err(OpError::Offline(format!(
                "no daemon running: start one with `cairn daemon` (`{command}` needs the network)"
            ))),
        }
    }

    /// Announce new roots as `provide.strategy` says (nothing without the network: the
    /// daemon's provider announces pinned content when it starts).
    pub async fn announce(&self, roots: Vec<Cid>) {
        if let Ctx::Online(n) = self {
            n.announce(roots).await;
        }
    }
}

/// A command's request: its name and its options, as kubo's clients send them.
pub trait Command: Sized + Send + 'static {
    /// kubo's command path (`pin/add`): the route `/api/v0/<NAME>`.
    const NAME: &'static str;

    /// The request as query-string pairs (`arg` repeated for positional arguments).
    fn to_args(&self) -> Vec<(&'static str, String)>;

    /// The request from a query string; a missing or malformed option is a bad request.
    fn from_args(args: &Args) -> Result<Self, OpError>;
}

/// A command answering one [`Reply`].
pub trait Op: Command {
    /// The answer.
    type Output: Reply;

    /// Run the command.
    fn run(self, ctx: Ctx) -> impl Future<Output = Result<Self::Output, OpError>> + Send;
}

/// A command answering a byte stream (file bytes, a tar, a CAR).
pub trait WriteOp: Command {
    /// The HTTP content type of the stream.
    const CONTENT_TYPE: &'static str;

    /// Send the answer's bytes through `out`. An error before the first byte is the
    /// command's answer; after it, the stream is cut short. `out.token()` is cancelled once
    /// the reader went away; long work checks it between blocks.
    fn write(self, ctx: Ctx, out: PieceSender) -> impl Future<Output = Result<(), OpError>> + Send;
}

/// A command reading a sequence of uploaded [`Part`]s (multipart parts over HTTP, files
/// in-process), each read to its end before the next.
pub trait UploadOp: Command {
    /// The answer.
    type Output: Reply;

    /// Largest upload accepted, in bytes (`None`: no limit; the data streams).
    const MAX_BODY: Option<usize> = None;

    /// Run the command over `parts`, read on a blocking thread. An `Err` part (a body cut
    /// short) fails the command before anything is pinned.
    fn run(self, ctx: Ctx, parts: Parts) -> impl Future<Output = Result<Self::Output, OpError>> + Send;
}

/// A part that must be a file (`block/put`, `dag/import`), as an operation's error otherwise.
fn file_part(part: std::io::Result<Part<'static>>, what: &str) -> Result<Part<'static>, OpError> {
    let part = part.map_err(|e| OpError::failed(error::error_chain(&e)))?;
    match part.kind {
        PartKind::File => Ok(part),
        _ => Err(OpError::bad(format!("{} is not a file: send {what} as a file part", part.name))),
    }
}

/// An answer and its kubo encoding: one JSON value, or one JSON value per line.
pub trait Reply: Debug + PartialEq + Send + Sized + 'static {
    /// Whether the body is newline-delimited JSON (kubo's lists and streams).
    fn is_lines(&self) -> bool {
        false
    }

    /// The HTTP body.
    fn to_body(&self) -> Vec<u8>;

    /// The answer from an HTTP body.
    fn from_body(body: &[u8]) -> Result<Self, serde_json::Error>;
}

/// A list answered one JSON value per line, as kubo streams it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lines<T>(pub Vec<T>);

impl<T: Serialize + DeserializeOwned + Debug + PartialEq + Send + 'static> Reply for Lines<T> {
    fn is_lines(&self) -> bool {
        true
    }

    fn to_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for row in &self.0 {
            serde_json::to_writer(&mut out, row).expect("answers serialize");
            out.push(b'\n');
        }
        out
    }

    fn from_body(body: &[u8]) -> Result<Self, serde_json::Error> {
        body.split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(serde_json::from_slice)
            .collect::<Result<_, _>>()
            .map(Lines)
    }
}

/// No answer (an empty body).
impl Reply for () {
    fn to_body(&self) -> Vec<u8> {
        Vec::new()
    }

    fn from_body(_: &[u8]) -> Result<Self, serde_json::Error> {
        Ok(())
    }
}

/// [`Reply`] as one JSON object for answer types that serialize.
macro_rules! json_reply {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::ops::Reply for $t {
            fn to_body(&self) -> Vec<u8> {
                serde_json::to_vec(self).expect("answers serialize")
            }

            fn from_body(body: &[u8]) -> Result<Self, serde_json::Error> {
                serde_json::from_slice(body)
            }
        }
    )*};
}
pub(crate) use json_reply;

/// Calls `$m!` with every command, by shape: the one list the API's routes, the CLI's
/// coverage test and [`NAMES`] are built from.
#[macro_export]
macro_rules! for_every_command {
    ($m:ident) => {
        $m! {
            op: [
                $crate::ops::info::Version,
                $crate::ops::info::Id,
                $crate::ops::content::Ls,
                $crate::ops::pin::PinAdd,
                $crate::ops::pin::PinRm,
                $crate::ops::pin::PinLs,
                $crate::ops::pin::PinVerify,
                $crate::ops::block::BlockStat,
                $crate::ops::block::BlockRm,
                $crate::ops::repo::RepoGc,
                $crate::ops::repo::RepoStat,
                $crate::ops::repo::RepoVerify,
                $crate::ops::swarm::SwarmPeers,
                $crate::ops::swarm::SwarmConnect,
                $crate::ops::swarm::SwarmDisconnect,
                $crate::ops::swarm::SwarmAddrs,
                $crate::ops::swarm::SwarmAddrsLocal,
                $crate::ops::routing::DhtFindprovs,
                $crate::ops::routing::DhtFindpeer,
                $crate::ops::routing::DhtProvide,
                $crate::ops::stats::BitswapStat,
                $crate::ops::stats::BitswapWantlist,
                $crate::ops::stats::StatsBw,
                $crate::ops::stats::ProvideStat,
                $crate::ops::stats::Shutdown,
                $crate::ops::key::KeyGen,
                $crate::ops::key::KeyLs,
                $crate::ops::key::KeyRm,
                $crate::ops::key::KeyRename,
                $crate::ops::name::NamePublish,
                $crate::ops::name::NameResolve,
                $crate::ops::health::Health,
                $crate::ops::doctor::Doctor,
                $crate::ops::follow::FollowAdd,
                $crate::ops::follow::FollowLs,
                $crate::ops::follow::FollowRm,
                $crate::ops::follow::FollowStatus,
            ],
            write: [
                $crate::ops::content::Cat,
                $crate::ops::content::Get,
                $crate::ops::block::BlockGet,
                $crate::ops::dag::DagExport,
            ],
            upload: [
                $crate::ops::add::Add,
                $crate::ops::block::BlockPut,
                $crate::ops::dag::DagImport,
                $crate::ops::key::KeyImport,
            ],
        }
    };
}

macro_rules! names {
    (op: [$($o:ty),* $(,)?], write: [$($w:ty),* $(,)?], upload: [$($u:ty),* $(,)?] $(,)?) => {
        /// Every command's name (kubo's path).
        pub const NAMES: &[&str] = &[
            $(<$o as Command>::NAME,)* $(<$w as Command>::NAME,)* $(<$u as Command>::NAME,)*
        ];
    };
}
for_every_command!(names);
