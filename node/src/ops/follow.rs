//! `follow/add`, `follow/ls`, `follow/rm`, `follow/status`: keeping the latest version of a
//! name (or a CID) pinned ([`crate::follow`]). Without a daemon the follows are recorded in
//! the repo, and the daemon starts them when it starts.

use serde::{Deserialize, Serialize};

use super::work::blocking;
use super::{json_reply, Args, Command, Ctx, Lines, Op, OpError};
use crate::follow::{self, state, unix_now, Follow};

/// A record expiring sooner than this draws a warning.
pub const EXPIRY_WARNING_SECS: u64 = 7 * 24 * 3600;

/// A version: its root and the sequence number of the record that pointed at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionRow {
    /// The root.
    pub cid: String,
    /// The record's sequence number (0 for a CID followed).
    pub sequence: u64,
    /// Blocks (held: all of them; fetching: walked so far).
    pub blocks: u64,
    /// Bytes (held: all of them; fetching: walked so far).
    pub bytes: u64,
}

/// A superseded version waiting for its grace period to end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SupersededRow {
    /// The root.
    pub cid: String,
    /// Unix seconds when it is unpinned.
    pub unpin_at: u64,
}

/// One follow as `follow ls` and `follow status` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FollowRow {
    /// What is followed (a `k51…` name or a CID).
    pub target: String,
    /// The label; its pins are named `follow:{label}`.
    pub label: String,
    /// Largest version fetched, bytes.
    pub max_bytes: u64,
    /// The complete version held and pinned.
    pub held: Option<VersionRow>,
    /// The version being fetched, with its progress.
    pub fetching: Option<VersionRow>,
    /// Unix seconds of the last check (0: not checked yet).
    pub last_check: u64,
    /// What went wrong last, until a check succeeds.
    pub last_error: Option<String>,
    /// Unix seconds when the newest record of the name expires.
    pub record_expires: Option<u64>,
    /// Superseded versions still pinned.
    pub superseded: Vec<SupersededRow>,
    /// Problems to act on (a record about to expire).
    pub warnings: Vec<String>,
}
json_reply!(FollowRow);

/// The warning for a record that expires within [`EXPIRY_WARNING_SECS`], if it does.
pub fn expiry_warning(name: &str, eol_secs: u64, now: u64) -> Option<String> {
    if eol_secs > now + EXPIRY_WARNING_SECS {
        return None;
    }
    let left = eol_secs.saturating_sub(now);
    let when = if left == 0 {
        "has expired".to_string()
    } else {
        format!("expires in {}", humantime::format_duration(std::time::Duration::from_secs(left / 60 * 60)))
    };
    Some(format!(
        "the newest record of {name} {when}; only the holder of its key can extend it: ask the publisher to \
         republish (`cairn name publish`)"
    ))
}

fn row(f: &Follow, progress: Option<(u64, u64)>) -> FollowRow {
    let record_expires = f.record_eol.map(|n| (n.max(0) / 1_000_000_000) as u64);
    let warnings = match (f.name(), record_expires) {
        (Some(_), Some(eol)) => expiry_warning(&f.target, eol, unix_now()).into_iter().collect(),
        _ => Vec::new(),
    };
    FollowRow {
        target: f.target.clone(),
        label: f.label.clone(),
        max_bytes: f.max_bytes,
        held: f.held.as_ref().map(|h| VersionRow {
            cid: h.version.cid.0.to_string(),
            sequence: h.version.sequence,
            blocks: h.blocks,
            bytes: h.bytes,
        }),
        fetching: f.fetching.as_ref().map(|v| {
            let (blocks, bytes) = progress.unwrap_or_default();
            VersionRow { cid: v.cid.0.to_string(), sequence: v.sequence, blocks, bytes }
        }),
        last_check: f.last_check,
        last_error: f.last_error.clone(),
        record_expires,
        superseded: f.superseded.iter().map(|(c, at)| SupersededRow { cid: c.0.to_string(), unpin_at: *at }).collect(),
        warnings,
    }
}

/// The rows of `follows` with the daemon's fetch progress.
fn rows(ctx: &Ctx, follows: Vec<Follow>) -> Vec<FollowRow> {
    follows
        .iter()
        .map(|f| {
            let progress = match (ctx, &f.fetching) {
                (Ctx::Online(n), Some(v)) => n.follows().progress(&v.cid.0),
                _ => None,
            };
            row(f, progress)
        })
        .collect()
}

/// `follow/add`: follow a name or a CID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowAdd {
    /// `k51…`, `/ipns/k51…` or a CID.
    pub target: String,
    /// A label (default: the target).
    pub label: Option<String>,
    /// Largest version fetched, bytes (default `follow.max_bytes`).
    pub max_bytes: Option<u64>,
}

impl Command for FollowAdd {
    const NAME: &'static str = "follow/add";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![("arg", self.target.clone())];
        a.extend(self.label.clone().map(|l| ("as", l)));
        a.extend(self.max_bytes.map(|m| ("max-bytes", m.to_string())));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(FollowAdd {
            target: args.arg()?.to_string(),
            label: args.get("as").filter(|l| !l.is_empty()).map(String::from),
            max_bytes: args.u64("max-bytes")?,
        })
    }
}

impl Op for FollowAdd {
    type Output = FollowRow;

    async fn run(self, ctx: Ctx) -> Result<FollowRow, OpError> {
        let max_bytes = self.max_bytes.unwrap_or(ctx.repo().config().follow.max_bytes);
        if max_bytes == 0 {
            return Err(OpError::bad("--max-bytes must be at least 1"));
        }
        let f = match &ctx {
            Ctx::Online(node) => node.follows().add(self.target, self.label, max_bytes).await?,
            Ctx::Offline(_) => {
                let c = ctx.clone();
                blocking(move |_| Ok(follow::add(c.store(), &self.target, self.label, max_bytes)?)).await?
            }
        };
        Ok(row(&f, None))
    }
}

/// `follow/ls`: every follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowLs;

impl Command for FollowLs {
    const NAME: &'static str = "follow/ls";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn from_args(_: &Args) -> Result<Self, OpError> {
        Ok(FollowLs)
    }
}

impl Op for FollowLs {
    type Output = Lines<FollowRow>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let c = ctx.clone();
        let all = blocking(move |_| Ok(state::all(c.store())?)).await?;
        Ok(Lines(rows(&ctx, all)))
    }
}

/// `follow/status`: the state of some follows (by target or label), or of all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowStatus {
    /// Targets or labels (none: every follow).
    pub which: Vec<String>,
}

impl Command for FollowStatus {
    const NAME: &'static str = "follow/status";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.which.iter().map(|w| ("arg", w.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(FollowStatus { which: args.all().into_iter().map(String::from).collect() })
    }
}

impl Op for FollowStatus {
    type Output = Lines<FollowRow>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let c = ctx.clone();
        let found = blocking(move |_| {
            let store = c.store();
            if self.which.is_empty() {
                return Ok(state::all(store)?);
            }
            self.which.iter().map(|w| Ok(follow::find(store, w)?)).collect::<Result<Vec<_>, OpError>>()
        })
        .await?;
        Ok(Lines(rows(&ctx, found)))
    }
}

/// `follow/rm`: stop following; the follow's pins go unless `keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowRm {
    /// Targets or labels.
    pub which: Vec<String>,
    /// Keep the version held pinned.
    pub keep: bool,
}

impl Command for FollowRm {
    const NAME: &'static str = "follow/rm";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut a: Vec<_> = self.which.iter().map(|w| ("arg", w.clone())).collect();
        a.push(("keep", self.keep.to_string()));
        a
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(FollowRm { which: args.some()?.into_iter().map(String::from).collect(), keep: args.flag("keep", false)? })
    }
}

impl Op for FollowRm {
    type Output = Lines<FollowRow>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let mut removed = Vec::new();
        for w in self.which {
            let f = match &ctx {
                Ctx::Online(node) => node.follows().remove(w, self.keep).await?,
                Ctx::Offline(_) => {
                    let c = ctx.clone();
                    let keep = self.keep;
                    blocking(move |_| Ok(follow::remove(c.store(), &w, keep)?.0)).await?
                }
            };
            removed.push(row(&f, None));
        }
        Ok(Lines(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expiring_within_a_week_draw_a_warning() {
        let now = 1_000_000_000;
        assert!(expiry_warning("k51x", now + 8 * 86_400, now).is_none());
        let w = expiry_warning("k51x", now + 3 * 86_400, now).unwrap();
        assert!(w.contains("expires in 3days") && w.contains("republish"), "{w}");
        assert!(expiry_warning("k51x", now - 5, now).unwrap().contains("has expired"));
    }
}
