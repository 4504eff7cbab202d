//! `dag/import` and `dag/export`: CAR files into and out of the store (format in
//! `specs/car.md`).
//!
//! Import reads every CAR first and pins the roots only after all of them imported, as kubo
//! does, so a root whose blocks are spread over several CARs still gets pinned and a failed
//! file pins nothing. Export first makes the whole DAG local (fetching it when the node runs),
//! so a CAR is never cut short by a missing block after its header went out.

use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};

use super::work::{self, blocking, ensure_local};
use super::{Args, Command, Ctx, Lines, OpError, Parts, PieceSender, UploadOp, WriteOp};
use crate::car_io::{self, ImportOptions};

/// `dag/export`: a CARv1 of the DAG under a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DagExport {
    /// Root `CID[/path]`.
    pub path: String,
    /// Only the store.
    pub offline: bool,
}

impl Command for DagExport {
    const NAME: &'static str = "dag/export";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.path.clone()), ("offline", self.offline.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(DagExport { path: args.arg()?.to_string(), offline: args.flag("offline", false)? })
    }
}

impl WriteOp for DagExport {
    const CONTENT_TYPE: &'static str = "application/vnd.ipld.car";

    /// The DAG is made local (fetched asynchronously), then written from the store on a
    /// blocking thread.
    async fn write(self, ctx: Ctx, out: PieceSender) -> Result<(), OpError> {
        let path = self.path;
        let (root, segments) = super::name::content_path(&ctx, &path).await?;
        let mut blocks = work::blocks(&ctx, self.offline, out.token());
        let root =
            blocks.resolve(root, &segments).await.map_err(|e| OpError::context(format!("resolving {path}"), &e))?;
        let store = ctx.store().clone();
        let fetched = ensure_local(&store, &root, &mut blocks).await?;
        work::blocking_write(out, move |out, _| {
            let _fetched = fetched;
            car_io::export(&store, &root, out).map_err(|e| OpError::context(format!("exporting {root}"), &e))?;
            Ok(())
        })
        .await
    }
}

/// `dag/import`: CAR files (v1 or v2), one per part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DagImport {
    /// Pin the roots named in the CAR headers (default true).
    pub pin_roots: bool,
    /// End with the block and byte counts.
    pub stats: bool,
}

impl Default for DagImport {
    fn default() -> Self {
        DagImport { pin_roots: true, stats: false }
    }
}

/// One `dag/import` row: a root (`{"Root":{"Cid":{"/"},"PinErrorMsg"}}`) or the totals
/// (`{"Stats":{"BlockCount","BlockBytesCount"}}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportRow {
    /// A root and why it was not pinned (empty: pinned).
    Root(ImportRoot),
    /// What was imported.
    Stats(ImportStats),
}

/// A root of an import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportRoot {
    /// `{"/": cid}`.
    pub cid: CidLink,
    /// Empty when the root was pinned.
    pub pin_error_msg: String,
}

/// A CID as a dag-json link, `{"/": cid}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidLink {
    /// The CID.
    #[serde(rename = "/")]
    pub cid: String,
}

/// The totals of an import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportStats {
    /// Blocks read.
    pub block_count: u64,
    /// Block bytes read.
    pub block_bytes_count: u64,
}

impl Command for DagImport {
    const NAME: &'static str = "dag/import";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("pin-roots", self.pin_roots.to_string()), ("stats", self.stats.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(DagImport { pin_roots: args.flag("pin-roots", true)?, stats: args.flag("stats", false)? })
    }
}

impl UploadOp for DagImport {
    type Output = Lines<ImportRow>;

    async fn run(self, ctx: Ctx, parts: Parts) -> Result<Self::Output, OpError> {
        let c = ctx.clone();
        let pin_roots = self.pin_roots;
        let (blocks, bytes, pinned, missing) = blocking(move |_| {
            let store = c.store();
            let mut roots: Vec<Cid> = Vec::new();
            let (mut blocks, mut bytes) = (0u64, 0u64);
            for part in parts {
                let part = super::file_part(part, "a CAR file")?;
                let report = car_io::import(store, part.data, &ImportOptions { pin_roots: false }, &|_| {})
                    .map_err(|e| OpError::context(format!("importing {} (nothing was pinned)", part.name), &e))?;
                blocks += report.blocks;
                bytes += report.bytes;
                roots.extend(report.header.roots);
            }
            let (pinned, missing) = if pin_roots {
                car_io::pin_roots(store, &roots)
                    .map_err(|e| OpError::context("blocks were imported, but pinning failed", &e))?
            } else {
                (Vec::new(), Vec::new())
            };
            Ok((blocks, bytes, pinned, missing))
        })
        .await?;
        let mut rows = Vec::new();
        for cid in &pinned {
            let cid = CidLink { cid: cid.to_string() };
            rows.push(ImportRow::Root(ImportRoot { cid, pin_error_msg: String::new() }));
        }
        ctx.announce(pinned).await;
        for m in missing {
            let msg = format!("its DAG is incomplete: block {} is not in the store", m.missing);
            rows.push(ImportRow::Root(ImportRoot { cid: CidLink { cid: m.root.to_string() }, pin_error_msg: msg }));
        }
        if self.stats {
            rows.push(ImportRow::Stats(ImportStats { block_count: blocks, block_bytes_count: bytes }));
        }
        Ok(Lines(rows))
    }
}
