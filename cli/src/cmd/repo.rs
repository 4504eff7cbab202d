//! `cairn repo …`: on the repo, or through a daemon (which runs the same code on its side).

use anyhow::{bail, Result};
use cairn_node::repo::Repo;
use cairn_node::{gc, maintenance};
use serde_json::{json, Value};

use super::Target;
use crate::args::RepoCommand;
use crate::client::{self, Api};
use crate::output::{byte_bar, Printer};

/// Run a repo subcommand.
pub fn run(t: &Target, cmd: RepoCommand, out: &mut Printer) -> Result<()> {
    match t {
        Target::Local(repo) => local(repo, cmd, out),
        Target::Daemon(api) => remote(api, cmd, out),
    }
}

fn print_gc(out: &mut Printer, removed: u64, freed: u64, kept: u64) -> Result<()> {
    out.emit(json!({ "Removed": removed, "FreedBytes": freed, "Kept": kept }), || {
        format!("removed {removed} blocks ({freed} bytes); {kept} blocks kept")
    })?;
    Ok(())
}

/// The `repo stat` numbers.
struct Stat {
    blocks: u64,
    block_bytes: u64,
    meta_bytes: u64,
    pins: u64,
    path: String,
    max: u64,
}

fn print_stat(out: &mut Printer, s: &Stat) -> Result<()> {
    let size = s.block_bytes + s.meta_bytes;
    out.emit(
        json!({ "NumObjects": s.blocks, "RepoSize": size, "BlockBytes": s.block_bytes,
                "MetaBytes": s.meta_bytes, "Pins": s.pins, "RepoPath": s.path, "StorageMax": s.max }),
        || {
            format!(
                "NumObjects: {}\nRepoSize:   {size}\nBlockBytes: {}\nMetaBytes:  {}\nPins:       {}\nRepoPath:   {}",
                s.blocks, s.block_bytes, s.meta_bytes, s.pins, s.path
            )
        },
    )?;
    Ok(())
}

/// Print `verify`'s bad blocks and totals; fails when blocks are corrupt.
fn print_verify(out: &mut Printer, corrupt: &[String], unverifiable: &[String], checked: u64) -> Result<()> {
    for s in corrupt {
        out.emit(json!({ "Cid": s, "Status": "corrupt" }), || format!("block {s} is corrupt"))?;
    }
    for s in unverifiable {
        out.emit(json!({ "Cid": s, "Status": "unverifiable" }), || format!("block {s} uses an unsupported hash"))?;
    }
    let ok = corrupt.is_empty();
    out.emit(json!({ "Checked": checked, "Corrupt": corrupt.len(), "Ok": ok }), || {
        format!("verified {checked} blocks: {} corrupt", corrupt.len())
    })?;
    if !ok {
        bail!(
            "{} corrupt block(s) found; remove them with `cairn block rm` and fetch or re-add the content",
            corrupt.len()
        );
    }
    Ok(())
}

fn local(repo: &Repo, cmd: RepoCommand, out: &mut Printer) -> Result<()> {
    let store = repo.store();
    match cmd {
        RepoCommand::Gc => {
            let r = gc::run(store)?;
            print_gc(out, r.removed, r.freed_bytes, r.marked)?;
        }
        RepoCommand::Stat => {
            let s = maintenance::stat(store)?;
            let stat = Stat {
                blocks: s.blocks,
                block_bytes: s.block_bytes,
                meta_bytes: s.meta_disk_bytes,
                pins: s.pins,
                path: repo.path().display().to_string(),
                max: repo.config().store.max_size_bytes,
            };
            print_stat(out, &stat)?;
        }
        RepoCommand::Verify => {
            let bar = byte_bar(None, None, "verifying blocks");
            let r = maintenance::verify(store, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            let corrupt: Vec<String> = r.corrupt.iter().map(|c| c.to_string()).collect();
            let unverifiable: Vec<String> = r.unverifiable.iter().map(|c| c.to_string()).collect();
            print_verify(out, &corrupt, &unverifiable, r.checked)?;
        }
    }
    Ok(())
}

fn remote(api: &Api, cmd: RepoCommand, out: &mut Printer) -> Result<()> {
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    match cmd {
        RepoCommand::Gc => {
            for row in client::ndjson(api.call("repo/gc", &[])?) {
                let r = row?;
                print_gc(out, num(&r, "Removed"), num(&r, "FreedBytes"), num(&r, "Kept"))?;
            }
        }
        RepoCommand::Stat => {
            let v = api.json("repo/stat", &[])?;
            let stat = Stat {
                blocks: num(&v, "NumObjects"),
                block_bytes: num(&v, "BlockBytes"),
                meta_bytes: num(&v, "MetaBytes"),
                pins: num(&v, "Pins"),
                path: v["RepoPath"].as_str().unwrap_or_default().to_string(),
                max: num(&v, "StorageMax"),
            };
            print_stat(out, &stat)?;
        }
        RepoCommand::Verify => {
            let (mut corrupt, mut unverifiable, mut checked) = (Vec::new(), Vec::new(), 0);
            for row in client::ndjson(api.call("repo/verify", &[])?) {
                let r = row?;
                match (r["Cid"].as_str(), r["Status"].as_str()) {
                    (Some(c), Some("corrupt")) => corrupt.push(c.to_string()),
                    (Some(c), Some(_)) => unverifiable.push(c.to_string()),
                    _ => checked = num(&r, "Checked"),
                }
            }
            print_verify(out, &corrupt, &unverifiable, checked)?;
        }
    }
    Ok(())
}
