//! `cairn block …`: the `block/*` operations (through a daemon, `block get` and `block stat`
//! fetch a missing block from the network).

use std::io::{self, Read, Write};

use anyhow::{bail, Context, Result};
use cairn_node::ops::block::{BlockGet, BlockPut, BlockRm, BlockStat, MAX_BLOCK};
use cairn_node::ops::Part;
use serde_json::json;

use crate::args::BlockCommand;
use crate::backend::Backend;
use crate::output::Printer;

/// Run a block subcommand.
pub fn run(b: &Backend, cmd: BlockCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        BlockCommand::Get { cid } => {
            let mut data = Vec::new();
            let mut body = b.open(BlockGet { cid, offline: false })?;
            body.read_to_end(&mut data).with_context(|| b.stream_broke())?;
            io::stdout().lock().write_all(&data)?;
        }
        BlockCommand::Put { file, cid_codec, mhtype, pin } => {
            let data = read_input(&file)?;
            let part = Part::file(input_name(&file), io::Cursor::new(data));
            let parts = Box::new(std::iter::once(Ok(part)));
            for r in b.upload(BlockPut { codec: cid_codec, mhtype, pin }, parts)?.0 {
                let c = r.key.clone();
                out.emit(json!({ "Key": r.key, "Size": r.size }), || c)?;
            }
        }
        BlockCommand::Stat { cid } => {
            let s = b.call(BlockStat { cid, offline: false })?;
            let (c, size) = (s.key, s.size);
            out.emit(json!({ "Key": c, "Size": size }), || format!("Key: {c}\nSize: {size}"))?;
        }
        BlockCommand::Rm { cids, force } => {
            for r in b.call(BlockRm { cids, force })?.0 {
                if let Some(e) = r.error {
                    bail!("{e}");
                }
                let c = r.hash;
                out.emit(json!({ "Hash": c }), || format!("removed {c}"))?;
            }
        }
    }
    Ok(())
}

fn input_name(file: &Option<std::path::PathBuf>) -> String {
    match file {
        Some(f) if f.as_os_str() != "-" => f.display().to_string(),
        _ => "standard input".into(),
    }
}

/// Read `block put`'s input, refusing more than a block before anything is sent.
fn read_input(file: &Option<std::path::PathBuf>) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    match file {
        Some(f) if f.as_os_str() != "-" => {
            data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        }
        _ => {
            io::stdin().lock().read_to_end(&mut data)?;
        }
    }
    if data.len() > MAX_BLOCK {
        bail!("block of {} bytes is larger than the {MAX_BLOCK}-byte limit peers accept", data.len());
    }
    Ok(data)
}
