//! `cairn repo …`: the `repo/*` operations.

use anyhow::{bail, Result};
use cairn_node::ops::repo::{RepoGc, RepoStat, RepoVerify, VerifyRow};
use serde_json::json;

use crate::args::RepoCommand;
use crate::backend::Backend;
use crate::output::{byte_bar, Printer};

/// Run a repo subcommand.
pub fn run(b: &Backend, cmd: RepoCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        RepoCommand::Gc => {
            for r in b.call(RepoGc)?.0 {
                let (removed, freed, kept) = (r.removed, r.freed_bytes, r.kept);
                out.emit(serde_json::to_value(&r)?, || {
                    format!("removed {removed} blocks ({freed} bytes); {kept} blocks kept")
                })?;
            }
        }
        RepoCommand::Stat => {
            let s = b.call(RepoStat)?;
            out.emit(
                json!({ "NumObjects": s.num_objects, "RepoSize": s.repo_size, "BlockBytes": s.block_bytes,
                        "MetaBytes": s.meta_bytes, "Pins": s.pins, "RepoPath": s.repo_path, "StorageMax": s.storage_max }),
                || {
                    format!(
                        "NumObjects: {}\nRepoSize:   {}\nBlockBytes: {}\nMetaBytes:  {}\nPins:       {}\nRepoPath:   {}",
                        s.num_objects, s.repo_size, s.block_bytes, s.meta_bytes, s.pins, s.repo_path
                    )
                },
            )?;
        }
        RepoCommand::Verify => {
            let bar = byte_bar(None, None, "verifying blocks");
            let rows = b.call(RepoVerify);
            bar.finish_and_clear();
            let mut corrupt = 0;
            for row in rows?.0 {
                let value = serde_json::to_value(&row)?;
                match row {
                    VerifyRow::Bad { cid, status } => {
                        corrupt += usize::from(status == "corrupt");
                        out.emit(value, || match status.as_str() {
                            "corrupt" => format!("block {cid} is corrupt"),
                            _ => format!("block {cid} uses an unsupported hash"),
                        })?;
                    }
                    VerifyRow::Totals { checked, corrupt: n, .. } => {
                        out.emit(value, || format!("verified {checked} blocks: {n} corrupt"))?;
                    }
                }
            }
            if corrupt > 0 {
                bail!(
                    "{corrupt} corrupt block(s) found; remove them with `cairn block rm` and fetch or re-add the content"
                );
            }
        }
    }
    Ok(())
}
