//! `cairn repo …`.

use anyhow::{bail, Result};
use cairn_node::repo::Repo;
use cairn_node::{gc, maintenance};
use serde_json::json;

use crate::args::RepoCommand;
use crate::output::{byte_bar, Printer};

/// Run a repo subcommand.
pub fn run(repo: &Repo, cmd: RepoCommand, out: &mut Printer) -> Result<()> {
    let store = repo.store();
    match cmd {
        RepoCommand::Gc => {
            let r = gc::run(store)?;
            out.emit(json!({ "Removed": r.removed, "FreedBytes": r.freed_bytes, "Kept": r.marked }), || {
                format!("removed {} blocks ({} bytes); {} blocks kept", r.removed, r.freed_bytes, r.marked)
            })?;
        }
        RepoCommand::Stat => {
            let s = maintenance::stat(store)?;
            let path = repo.path().display().to_string();
            out.emit(
                json!({ "NumObjects": s.blocks, "RepoSize": s.block_bytes + s.meta_disk_bytes, "BlockBytes": s.block_bytes,
                        "MetaBytes": s.meta_disk_bytes, "Pins": s.pins, "RepoPath": path,
                        "StorageMax": repo.config().store.max_size_bytes }),
                || {
                    format!(
                        "NumObjects: {}\nRepoSize:   {}\nBlockBytes: {}\nMetaBytes:  {}\nPins:       {}\nRepoPath:   {path}",
                        s.blocks,
                        s.block_bytes + s.meta_disk_bytes,
                        s.block_bytes,
                        s.meta_disk_bytes,
                        s.pins
                    )
                },
            )?;
        }
        RepoCommand::Verify => {
            let bar = byte_bar(None, None, "verifying blocks");
            let r = maintenance::verify(store, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            for c in &r.corrupt {
                let s = c.to_string();
                out.emit(json!({ "Cid": s, "Status": "corrupt" }), || format!("block {s} is corrupt"))?;
            }
            for c in &r.unverifiable {
                let s = c.to_string();
                out.emit(json!({ "Cid": s, "Status": "unverifiable" }), || {
                    format!("block {s} uses an unsupported hash")
                })?;
            }
            let ok = r.corrupt.is_empty();
            out.emit(json!({ "Checked": r.checked, "Corrupt": r.corrupt.len(), "Ok": ok }), || {
                format!("verified {} blocks: {} corrupt", r.checked, r.corrupt.len())
            })?;
            if !ok {
                bail!(
                    "{} corrupt block(s) found; remove them with `cairn block rm` and fetch or re-add the content",
                    r.corrupt.len()
                );
            }
        }
    }
    Ok(())
}
