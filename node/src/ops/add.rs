//! `add`: files, directories and symlinks into UnixFS, through [`crate::importer`] whether
//! they come from the CLI's own process or a request body (same CIDs, same answer).
//!
//! The answer lists each entry (`{"Name","Hash","Size"}`, children before parents, kubo's
//! order; `Size` is file bytes for files) once every part has been read and the blocks and
//! pins are durable: a blocking client writes its whole body before reading, so answering
//! earlier could fill the socket both ways. With `progress`, each file's row is preceded by a
//! `{"Name","Bytes"}` row, as kubo's clients expect.

use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::cids::HashFn;
use cairn_protocol::profile::{ImportSettings, Layout};
use serde::{Deserialize, Serialize};

use super::work::blocking;
use super::{Args, Command, Ctx, Lines, OpError, Parts, UploadOp};
use crate::importer::{self, AddOptions, Event, ImportError};
use crate::repo::Repo;
use crate::upload::PartKind;

/// `add`: import settings (a profile, then single-setting overrides, as kubo's flags), what
/// to do with the result, and the entries as parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Add {
    /// Import profile (`unixfs-v1-2025`, `unixfs-v0-2015`); default: the repo's.
    pub profile: Option<String>,
    /// CID version of dag-pb nodes (1 implies raw leaves unless told).
    pub cid_version: Option<u8>,
    /// Raw leaves.
    pub raw_leaves: Option<bool>,
    /// Chunker: `size-N`, `buzhash`, `rabin…`.
    pub chunker: Option<String>,
    /// The trickle layout.
    pub trickle: bool,
    /// Hash function: `sha2-256` or `blake3`.
    pub hash: Option<String>,
    /// Most links per file node.
    pub max_links: Option<u64>,
    /// Pin the roots (the CLI's default is true).
    pub pin: bool,
    /// Compute CIDs only; write nothing.
    pub only_hash: bool,
    /// Wrap the roots in a directory.
    pub wrap: bool,
    /// Add a `{"Name","Bytes"}` row after each file.
    pub progress: bool,
}

/// One `add` row: an entry (`Name`, `Hash`, `Size`) or a file's byte count (`Name`, `Bytes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddRow {
    /// The entry's path (a nameless file is named by its CID, as kubo does; the wrapping
    /// directory has an empty name).
    pub name: String,
    /// Its CID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hash: Option<String>,
    /// File bytes, symlink target length or DAG size, as a string (kubo's type).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<String>,
    /// Bytes of the file just added (progress rows).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes: Option<u64>,
}

impl Command for Add {
    const NAME: &'static str = "add";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("pin", self.pin.to_string()),
            ("only-hash", self.only_hash.to_string()),
            ("wrap-with-directory", self.wrap.to_string()),
            ("progress", self.progress.to_string()),
            ("trickle", self.trickle.to_string()),
        ];
        q.extend(self.profile.clone().map(|v| ("profile", v)));
        q.extend(self.cid_version.map(|v| ("cid-version", v.to_string())));
        q.extend(self.raw_leaves.map(|v| ("raw-leaves", v.to_string())));
        q.extend(self.chunker.clone().map(|v| ("chunker", v)));
        q.extend(self.hash.clone().map(|v| ("hash", v)));
        q.extend(self.max_links.map(|v| ("max-links", v.to_string())));
        q
    }

    /// kubo's options; `quiet`, `quieter` and the like only change what a client prints.
    fn from_args(args: &Args) -> Result<Self, OpError> {
        let cid_version = args
            .u64("cid-version")?
            .map(|v| u8::try_from(v).map_err(|_| OpError::bad(format!("cid-version {v} is not supported: use 0 or 1"))))
            .transpose()?;
        Ok(Add {
            profile: args.get("profile").map(String::from),
            cid_version,
            raw_leaves: args.opt_flag("raw-leaves")?,
            chunker: args.get("chunker").map(String::from),
            trickle: args.flag("trickle", false)?,
            hash: args.get("hash").map(String::from),
            max_links: args.u64("max-links")?.or(args.u64("max-file-links")?),
            pin: args.flag("pin", true)?,
            only_hash: args.flag("only-hash", false)?,
            wrap: args.flag("wrap-with-directory", false)?,
            progress: args.flag("progress", false)?,
        })
    }
}

impl Add {
    /// The import settings asked for: the profile (else the repo's), then single settings.
    pub fn settings(&self, repo: &Repo) -> Result<ImportSettings, OpError> {
        let profile = self.profile.clone().unwrap_or_else(|| repo.config().import.profile.clone());
        let bad = |e: &dyn std::fmt::Display| OpError::bad(e.to_string());
        let mut s = ImportSettings::profile(&profile).map_err(|e| bad(&e))?;
        if let Some(v) = self.cid_version {
            let version = match v {
                0 => cid::Version::V0,
                1 => cid::Version::V1,
                other => return Err(OpError::bad(format!("--cid-version {other} is not supported: use 0 or 1"))),
            };
            s.set_cid_version(version, self.raw_leaves.is_some());
        }
        if let Some(r) = self.raw_leaves {
            s.raw_leaves = r;
        }
        if let Some(c) = &self.chunker {
            s.chunker = ChunkerSpec::parse(c).map_err(|e| bad(&e))?;
        }
        if self.trickle {
            s.layout = Layout::Trickle;
        }
        if let Some(h) = &self.hash {
            s.hash = HashFn::from_name(h)
                .ok_or_else(|| OpError::bad(format!("unknown hash {h:?}: use sha2-256 or blake3")))?;
        }
        if let Some(m) = self.max_links {
            s.max_links = usize::try_from(m).map_err(|_| OpError::bad("max-links is too large"))?;
        }
        s.validate().map_err(|e| bad(&e))
    }
}

impl UploadOp for Add {
    type Output = Lines<AddRow>;

    async fn run(self, ctx: Ctx, parts: Parts) -> Result<Self::Output, OpError> {
        let opts = AddOptions {
            settings: self.settings(ctx.repo())?,
            wrap: self.wrap,
            only_hash: self.only_hash,
            pin: self.pin,
            ..AddOptions::default()
        };
        let progress = self.progress;
        let c = ctx.clone();
        let (rows, roots) = blocking(move |_| {
            let mut rows = Vec::new();
            let mut on_added = |e: Event<'_>| {
                if let Event::Added(a) = e {
                    let hash = a.cid.to_string();
                    let name =
                        if a.path.is_empty() && a.kind == PartKind::File { hash.clone() } else { a.path.clone() };
                    if progress && a.kind == PartKind::File {
                        rows.push(AddRow { name: name.clone(), hash: None, size: None, bytes: Some(a.size) });
                    }
                    rows.push(AddRow { name, hash: Some(hash), size: Some(a.size.to_string()), bytes: None });
                }
            };
            let roots = importer::import(c.store(), &opts, parts, &mut on_added, &|_| {}).map_err(|e| match e {
                ImportError::Shape(m) => OpError::BadRequest(m),
                e => OpError::from(e),
            })?;
            Ok((rows, roots))
        })
        .await?;
        if !self.only_hash {
            // Announce what was stored (the provider keeps re-announcing it).
            ctx.announce(roots.iter().map(|r| r.cid).collect()).await;
        }
        Ok(Lines(rows))
    }
}
