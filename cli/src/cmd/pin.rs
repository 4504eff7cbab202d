//! `cairn pin …`: the `pin/*` operations (through a daemon, `pin add` fetches what is missing
//! from the network before pinning).

use anyhow::{bail, Result};
use cairn_node::ops::pin::{PinAdd, PinList, PinLs, PinRm, PinType as OpPinType, PinVerify};
use serde_json::json;

use crate::args::{PinCommand, PinType};
use crate::backend::Backend;
use crate::output::Printer;

/// Run a pin subcommand.
pub fn run(b: &Backend, cmd: PinCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        PinCommand::Add { paths, recursive, name } => {
            let kind = if recursive { "recursive" } else { "direct" };
            for p in paths {
                let _waiter = b.waiter(&p);
                let req = PinAdd { paths: vec![p], recursive, name: name.clone(), offline: false };
                for cid in b.call(req)?.pins {
                    out.emit(json!({ "Pins": [cid] }), || format!("pinned {cid} {kind}"))?;
                }
            }
        }
        PinCommand::Rm { paths } => {
            for p in paths {
                for cid in b.call(PinRm { paths: vec![p] })?.pins {
                    out.emit(json!({ "Pins": [cid] }), || format!("unpinned {cid}"))?;
                }
            }
        }
        PinCommand::Ls { kind, paths } => {
            let kind = match kind {
                PinType::All => OpPinType::All,
                PinType::Recursive => OpPinType::Recursive,
                PinType::Direct => OpPinType::Direct,
                PinType::Indirect => OpPinType::Indirect,
                PinType::Pending => OpPinType::Pending,
            };
            let rows = match b.call(PinLs { kind, paths, stream: true })? {
                PinList::Rows(rows) => rows,
                PinList::Keys(_) => bail!("the answer to pin/ls came as a map, though rows were asked for"),
            };
            for r in rows {
                let mut text = format!("{} {}", r.cid, r.kind);
                if let Some(p) = &r.progress {
                    text.push_str(&format!(" ({} blocks, {} fetched so far)", p.blocks, crate::output::size(p.bytes)));
                }
                if let (Some(n), "pending") = (&r.name, r.kind.as_str()) {
                    text.push_str(&format!(" {n}"));
                }
                let mut value = json!({ "Cid": r.cid, "Type": r.kind, "Name": r.name });
                if let Some(p) = r.progress {
                    value["Progress"] = json!({ "Blocks": p.blocks, "Bytes": p.bytes });
                }
                out.emit(value, || text)?;
            }
        }
        PinCommand::Verify => {
            let mut bad = 0;
            for c in b.call(PinVerify { verbose: true })?.0 {
                let problem = c.bad_nodes.first().map(|n| n.err.clone());
                bad += usize::from(!c.ok);
                let cid = c.cid;
                out.emit(json!({ "Cid": cid, "Ok": c.ok, "Problem": problem }), || match &problem {
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
