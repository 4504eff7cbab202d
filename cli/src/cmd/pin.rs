//! `cairn pin …`.

use anyhow::{bail, Result};
use cairn_node::exporter;
use cairn_node::pins::{self, PinKind};
use cairn_node::repo::Repo;
use serde_json::json;

use crate::args::{PinCommand, PinType};
use crate::output::Printer;

/// Run a pin subcommand.
pub fn run(repo: &Repo, cmd: PinCommand, out: &mut Printer) -> Result<()> {
    let store = repo.store();
    match cmd {
        PinCommand::Add { paths, recursive, name } => {
            let kind = if recursive { PinKind::Recursive } else { PinKind::Direct };
            for p in paths {
                let cid = exporter::resolve(store, &p)?;
                pins::add(store, &cid, kind, name.clone())?;
                out.emit(json!({ "Pins": [cid.to_string()] }), || format!("pinned {cid} {}", kind.as_str()))?;
            }
        }
        PinCommand::Rm { paths } => {
            for p in paths {
                let cid = exporter::resolve(store, &p)?;
                pins::rm(store, &cid)?;
                out.emit(json!({ "Pins": [cid.to_string()] }), || format!("unpinned {cid}"))?;
            }
        }
        PinCommand::Ls { kind, paths } => {
            let kinds = match kind {
                PinType::All => vec![PinKind::Recursive, PinKind::Direct, PinKind::Indirect],
                PinType::Recursive => vec![PinKind::Recursive],
                PinType::Direct => vec![PinKind::Direct],
                PinType::Indirect => vec![PinKind::Indirect],
            };
            let mut list = pins::list(store, &kinds)?;
            if !paths.is_empty() {
                let wanted = paths.iter().map(|p| exporter::resolve(store, p)).collect::<Result<Vec<_>, _>>()?;
                list.retain(|p| wanted.iter().any(|w| w.hash() == p.cid.hash()));
                if list.is_empty() {
                    bail!("not pinned: {}", paths.join(", "));
                }
            }
            for p in list {
                let cid = p.cid.to_string();
                out.emit(json!({ "Cid": cid, "Type": p.kind.as_str(), "Name": p.name }), || {
                    format!("{cid} {}", p.kind.as_str())
                })?;
            }
        }
        PinCommand::Verify => {
            let mut bad = 0;
            for check in pins::verify(store)? {
                let ok = check.problem.is_none();
                bad += usize::from(!ok);
                let cid = check.cid.to_string();
                out.emit(json!({ "Cid": cid, "Ok": ok, "Problem": check.problem }), || match &check.problem {
                    None => format!("{cid} ok"),
                    Some(p) => format!("{cid} BAD: {p}"),
                })?;
            }
            if bad > 0 {
                bail!("{bad} pin(s) are incomplete or corrupt");
            }
        }
    }
    Ok(())
}
