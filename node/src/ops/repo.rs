//! `repo/gc`, `repo/stat`, `repo/verify`: maintenance, safe while the node runs (blocks of
//! in-flight adds and fetches sit in open write batches, which GC never sweeps).

use serde::{Deserialize, Serialize};

use super::work::blocking;
use super::{json_reply, Args, Command, Ctx, Lines, Op, OpError};
use crate::{gc, maintenance};

/// Commands without options.
macro_rules! no_options {
    ($t:ident, $name:literal) => {
        impl Command for $t {
            const NAME: &'static str = $name;

            fn to_args(&self) -> Vec<(&'static str, String)> {
                Vec::new()
            }

            fn from_args(_: &Args) -> Result<Self, OpError> {
                Ok($t)
            }
        }
    };
}
pub(crate) use no_options;

/// `repo/gc`: remove every block no pin reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoGc;
no_options!(RepoGc, "repo/gc");

/// What GC did, as one line (kubo lists each removed key; the collector counts them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GcSummary {
    /// Blocks removed.
    pub removed: u64,
    /// Bytes they held.
    pub freed_bytes: u64,
    /// Blocks kept (reached from a pin).
    pub kept: u64,
}

impl Op for RepoGc {
    type Output = Lines<GcSummary>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let r = blocking(move |_| Ok(gc::run(ctx.store())?)).await?;
        Ok(Lines(vec![GcSummary { removed: r.removed, freed_bytes: r.freed_bytes, kept: r.marked }]))
    }
}

/// `repo/stat`: sizes and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoStat;
no_options!(RepoStat, "repo/stat");

/// kubo's `{"NumObjects","RepoSize","StorageMax","RepoPath","Version"}` and cairn's
/// `BlockBytes`, `MetaBytes`, `Pins`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepoStatInfo {
    /// Blocks held.
    pub num_objects: u64,
    /// Block bytes plus metadata bytes on disk.
    pub repo_size: u64,
    /// `store.max_size_bytes` (0: no budget).
    pub storage_max: u64,
    /// The repo folder.
    pub repo_path: String,
    /// `fs-repo@<format>`.
    pub version: String,
    /// Block bytes.
    pub block_bytes: u64,
    /// Metadata bytes on disk.
    pub meta_bytes: u64,
    /// Recursive and direct pins.
    pub pins: u64,
}
json_reply!(RepoStatInfo);

impl Op for RepoStat {
    type Output = RepoStatInfo;

    async fn run(self, ctx: Ctx) -> Result<RepoStatInfo, OpError> {
        let c = ctx.clone();
        let s = blocking(move |_| Ok(maintenance::stat(c.store())?)).await?;
        let repo = ctx.repo();
        Ok(RepoStatInfo {
            num_objects: s.blocks,
            repo_size: s.block_bytes + s.meta_disk_bytes,
            storage_max: repo.config().store.max_size_bytes,
            repo_path: repo.path().display().to_string(),
            version: format!("fs-repo@{}", crate::repo::REPO_VERSION),
            block_bytes: s.block_bytes,
            meta_bytes: s.meta_disk_bytes,
            pins: s.pins,
        })
    }
}

/// `repo/verify`: re-hash every block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoVerify;
no_options!(RepoVerify, "repo/verify");

/// One `repo/verify` row: a bad block, or (last) the totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerifyRow {
    /// A block that is `corrupt` or `unverifiable` (a hash this node cannot compute).
    Bad {
        /// The block.
        #[serde(rename = "Cid")]
        cid: String,
        /// `corrupt` or `unverifiable`.
        #[serde(rename = "Status")]
        status: String,
    },
    /// The totals.
    Totals {
        /// Blocks checked.
        #[serde(rename = "Checked")]
        checked: u64,
        /// Corrupt blocks.
        #[serde(rename = "Corrupt")]
        corrupt: u64,
        /// No corrupt block.
        #[serde(rename = "Ok")]
        ok: bool,
    },
}

impl Op for RepoVerify {
    type Output = Lines<VerifyRow>;

    async fn run(self, ctx: Ctx) -> Result<Self::Output, OpError> {
        let r = blocking(move |_| Ok(maintenance::verify(ctx.store(), &|_| {})?)).await?;
        let bad = |c: &cairn_protocol::Cid, status: &str| VerifyRow::Bad { cid: c.to_string(), status: status.into() };
        let mut rows: Vec<VerifyRow> = r.corrupt.iter().map(|c| bad(c, "corrupt")).collect();
        rows.extend(r.unverifiable.iter().map(|c| bad(c, "unverifiable")));
        rows.push(VerifyRow::Totals { checked: r.checked, corrupt: r.corrupt.len() as u64, ok: r.corrupt.is_empty() });
        Ok(Lines(rows))
    }
}
