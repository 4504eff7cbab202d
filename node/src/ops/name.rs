//! `name/publish` and `name/resolve`: IPNS names, in kubo's fields (`Name`, `Value`; `Path`).
//! Online they go through the node's name service ([`crate::names`]); on a repo without a
//! daemon, `resolve` reads the records this node holds and `publish` (with `allow-offline`)
//! signs and keeps a record that the daemon puts into the DHT when it starts.

use std::time::Duration;

use cairn_protocol::names::Name;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::work;
use super::{json_reply, Args, Command, Ctx, Op, OpError};
use crate::exporter;
use crate::names::{self, published, NameError, Resolved, Source};

/// Records valid for less than this draw a warning: a name whose publisher is away longer
/// stops resolving, and only the key's holder can extend it.
pub const SHORT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `name/publish`: point a key's name at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePublish {
    /// `/ipfs/{cid}[/path]`, `{cid}[/path]` or `/ipns/{name}[/path]`.
    pub path: String,
    /// The key that signs (default `self`).
    pub key: String,
    /// How long the record stays valid (`30d`, `4w`, `48h`; default `ipns.record_lifetime_secs`).
    pub lifetime: Option<String>,
    /// How long resolvers may cache it (default `ipns.record_ttl_secs`).
    pub ttl: Option<String>,
    /// Check that the path resolves before publishing it (default true).
    pub resolve: bool,
    /// Without a daemon: sign and keep the record; the daemon puts it into the DHT.
    pub allow_offline: bool,
}

/// `name/publish`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishedName {
    /// The name (`k51…`).
    pub name: String,
    /// The path it points at.
    pub value: String,
    /// The record's sequence number (cairn's field).
    #[serde(default)]
    pub sequence: u64,
    /// What the publisher should know (a short lifetime, a DHT that did not take the record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
json_reply!(PublishedName);

impl Command for NamePublish {
    const NAME: &'static str = "name/publish";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![("arg", self.path.clone()), ("key", self.key.clone())];
        a.extend(self.lifetime.clone().map(|l| ("lifetime", l)));
        a.extend(self.ttl.clone().map(|t| ("ttl", t)));
        a.push(("resolve", self.resolve.to_string()));
        a.push(("allow-offline", self.allow_offline.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(NamePublish {
            path: args.arg()?.to_string(),
            key: args.get("key").filter(|k| !k.is_empty()).unwrap_or("self").to_string(),
            lifetime: args.get("lifetime").filter(|v| !v.is_empty()).map(String::from),
            ttl: args.get("ttl").filter(|v| !v.is_empty()).map(String::from),
            resolve: args.flag("resolve", true)?,
            allow_offline: args.flag("allow-offline", false)?,
        })
    }
}

/// A duration option: humantime (`4w`, `30d`, `1h30m`) or Go's (`24h0m0s`).
pub fn parse_duration(option: &str, text: &str) -> Result<Duration, OpError> {
    humantime::parse_duration(text).map_err(|e| {
        OpError::bad(format!("option {option:?}: {text:?} is not a duration ({e}); write e.g. 4w, 30d, 48h or 5m"))
    })
}

/// `/ipfs/…` or `/ipns/…` for what the user wrote.
fn normalize(path: &str) -> Result<String, OpError> {
    let p = path.trim();
    if p.starts_with("/ipfs/") || p.starts_with("/ipns/") {
        return Ok(p.trim_end_matches('/').to_string());
    }
    let first = p.split('/').next().unwrap_or("");
    if cairn_protocol::cids::parse(first).is_ok() {
        return Ok(format!("/ipfs/{}", p.trim_end_matches('/')));
    }
    Err(OpError::bad(format!(
        "{path:?} is not a path to publish: give /ipfs/<cid>[/path], <cid>[/path] or /ipns/<name>"
    )))
}

fn name_error(e: NameError) -> OpError {
    match e {
        NameError::Key(k) => OpError::bad(k.to_string()),
        NameError::BadValue(m) => OpError::bad(m),
        NameError::Shutdown => OpError::ShuttingDown,
        NameError::Busy => OpError::failed(e.to_string()),
        other => OpError::chain(&other),
    }
}

impl Op for NamePublish {
    type Output = PublishedName;

    async fn run(self, ctx: Ctx) -> Result<PublishedName, OpError> {
        let cfg = ctx.repo().config().ipns.clone();
        let lifetime = match &self.lifetime {
            Some(t) => parse_duration("lifetime", t)?,
            None => Duration::from_secs(cfg.record_lifetime_secs),
        };
        let ttl = match &self.ttl {
            Some(t) => parse_duration("ttl", t)?,
            None => Duration::from_secs(cfg.record_ttl_secs),
        };
        if lifetime.is_zero() {
            return Err(OpError::bad("option \"lifetime\": a record must stay valid for some time"));
        }
        let value = normalize(&self.path)?;
        if self.resolve {
            check_resolves(&ctx, &value).await?;
        }
        let mut warnings = Vec::new();
        if lifetime < SHORT_LIFETIME {
            warnings.push(format!(
                "this record stays valid for {} only: if no node re-signs it by then (the publishing daemon \
                 does, every {}), the name stops resolving. A site that volunteers keep alive wants --lifetime 4w or more",
                humantime::format_duration(lifetime),
                humantime::format_duration(Duration::from_secs(cfg.republish_interval_secs)),
            ));
        }
        let published = match &ctx {
            Ctx::Online(node) => node.names().publish(&self.key, value, lifetime, ttl).await.map_err(name_error)?,
            Ctx::Offline(_) if !self.allow_offline => {
                return Err(OpError::Offline(
                    "no daemon running: start one with `cairn daemon` to publish to the network, or pass \
                     --allow-offline to sign the record now and let the daemon publish it when it starts"
                        .into(),
                ))
            }
            Ctx::Offline(repo) => {
                let (ks, store, key) = (repo.keystore(), repo.store().clone(), self.key.clone());
                work::blocking(move |_| {
                    let keypair = ks.get(&key).map_err(|e| OpError::bad(e.to_string()))?;
                    let name = Name::new(keypair.public().to_peer_id());
                    let sequence = published::next_sequence(&store, &name, None)?;
                    let bytes = published::sign(&keypair, &value, sequence, lifetime, ttl)?;
                    published::save(&store, &published::Own { name, key, lifetime, bytes })?;
                    Ok(names::Published { name, value, sequence, dht_error: None })
                })
                .await?
            }
        };
        warnings.extend(
            published
                .dht_error
                .map(|e| format!("the DHT did not take the record ({e}); it is kept here and republished")),
        );
        Ok(PublishedName {
            name: published.name.to_string(),
            value: published.value,
            sequence: published.sequence,
            warnings,
        })
    }
}

/// Fail unless `value` resolves: its names (online), then its IPFS path, from the store or the
/// network.
async fn check_resolves(ctx: &Ctx, value: &str) -> Result<(), OpError> {
    let path =
        if value.starts_with("/ipns/") { resolve_path(ctx, value, true, false).await?.0 } else { value.to_string() };
    let (root, segments) = exporter::parse_path(&path)?;
    let mut blocks = work::blocks(ctx, false, CancellationToken::new());
    blocks.resolve(root, &segments).await.map_err(|e| {
        OpError::failed(format!(
            "cannot publish {value}: it does not resolve ({}); add the content first, or pass --resolve=false",
            super::error::error_chain(&e)
        ))
    })?;
    Ok(())
}

/// Resolve `/ipns/…` (or a bare name) to a path: through the name service online, from the
/// records this node holds offline. Returns the path and how long it may be cached.
pub async fn resolve_path(ctx: &Ctx, path: &str, recursive: bool, fresh: bool) -> Result<(String, Duration), OpError> {
    match ctx {
        Ctx::Online(node) => {
            let names = node.names().clone();
            names::follow(path, recursive, |n| {
                let names = names.clone();
                async move { names.resolve(n, fresh).await }
            })
            .await
        }
        Ctx::Offline(repo) => {
            let store = repo.store().handle();
            names::follow(path, recursive, |n| {
                let store = store.clone();
                async move {
                    let best = store.call(move |s| published::best_local(s, &n)).await?;
                    let (r, bytes) = best.ok_or(NameError::NotFound(n))?;
                    Ok(Resolved::new(n, &r, bytes, Source::Local))
                }
            })
            .await
        }
    }
    .map_err(name_error)
}

/// The root and segments of a content path, following `/ipns/` names first (kubo's commands
/// take both): `/ipfs/{cid}/…`, `{cid}/…` or `/ipns/{name}/…`.
pub(crate) async fn content_path(ctx: &Ctx, text: &str) -> Result<(cairn_protocol::Cid, Vec<String>), OpError> {
    if text.starts_with("/ipns/") {
        let (path, _) = resolve_path(ctx, text, true, false).await?;
        return Ok(exporter::parse_path(&path)?);
    }
    Ok(exporter::parse_path(text)?)
}

/// `name/resolve`: what a name points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameResolve {
    /// `/ipns/{name}[/path]` or a name (default: this node's own, `self`).
    pub name: Option<String>,
    /// Follow names that point at names (default true, as kubo).
    pub recursive: bool,
    /// Skip the cache: ask the network.
    pub nocache: bool,
}

/// `name/resolve`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResolvedPath {
    /// The path.
    pub path: String,
}
json_reply!(ResolvedPath);

impl Command for NameResolve {
    const NAME: &'static str = "name/resolve";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.name.iter().map(|n| ("arg", n.clone())).collect();
        a.push(("recursive", self.recursive.to_string()));
        a.push(("nocache", self.nocache.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(NameResolve {
            name: args.all().first().map(|s| s.to_string()),
            recursive: args.flag("recursive", true)?,
            nocache: args.flag("nocache", false)?,
        })
    }
}

impl Op for NameResolve {
    type Output = ResolvedPath;

    async fn run(self, ctx: Ctx) -> Result<ResolvedPath, OpError> {
        let name = match self.name {
            Some(n) => n,
            None => ctx.repo().identity().peer_id(),
        };
        let (path, _) = resolve_path(&ctx, &name, self.recursive, self.nocache).await?;
        Ok(ResolvedPath { path })
    }
}
