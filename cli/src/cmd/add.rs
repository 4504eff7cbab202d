//! `cairn add`: the `add` operation over the entries [`importer::walk`] reads from disk (or
//! standard input), in this process or uploaded to a daemon: the same entries in the same
//! order, so the CIDs and the output are the same either way.

use std::io::{self, IsTerminal, Read};

use anyhow::{bail, Context, Result};
use cairn_node::importer::{self, AddOptions, Walked};
use cairn_node::ops::add::{Add, AddRow};
use cairn_node::ops::Part;
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::AddArgs;
use crate::backend::Backend;
use crate::output::{byte_bar, warn, Printer};

/// Print one added entry: its JSON, or `added <cid> <name>` (`-q`: the CID).
fn print_added(out: &mut Printer, name: &str, cid: &str, size: &str, quiet: bool) -> io::Result<()> {
    out.emit(json!({ "Name": name, "Hash": cid, "Size": size }), || {
        if quiet {
            cid.to_string()
        } else if name.is_empty() {
            format!("added {cid}")
        } else {
            format!("added {cid} {name}")
        }
    })
}

/// A file's bytes, advancing the progress bar as they are read.
struct Counted {
    inner: Box<dyn Read + Send>,
    bar: ProgressBar,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Run `cairn add`.
pub fn run(b: &Backend, a: AddArgs, out: &mut Printer) -> Result<()> {
    let stdin = a.paths.is_empty() || (a.paths.len() == 1 && a.paths[0].as_os_str() == "-");
    let mut total = 0u64;
    if !stdin {
        for p in &a.paths {
            let md = std::fs::metadata(p).with_context(|| format!("cannot add {}", p.display()))?;
            if md.is_dir() && !a.recursive {
                bail!("{} is a directory: add it with -r", p.display());
            }
            total += if md.is_dir() { dir_size(p) } else { md.len() };
        }
    } else if io::stdin().is_terminal() {
        bail!("nothing to add: give file paths, or pipe data into standard input");
    }
    let bar = byte_bar((!stdin).then_some(total), a.progress, "adding");
    let i = &a.import;
    let req = Add {
        profile: i.profile.clone(),
        cid_version: i.cid_version,
        raw_leaves: i.raw_leaves,
        chunker: i.chunker.clone(),
        trickle: i.trickle,
        hash: i.hash.clone(),
        max_links: i.max_links.map(|m| m as u64),
        pin: a.pin,
        only_hash: a.only_hash,
        wrap: a.wrap_with_directory,
        progress: false,
    };
    let counted = {
        let bar = bar.clone();
        move |mut p: Part<'static>| {
            p.data = Box::new(Counted { inner: p.data, bar: bar.clone() });
            p
        }
    };
    let parts: cairn_node::ops::Parts = if stdin {
        Box::new(std::iter::once(Ok(counted(Part::file(a.stdin_name.clone(), io::stdin())))))
    } else {
        let opts = AddOptions {
            hidden: a.hidden,
            preserve_mode: a.import.preserve_mode,
            preserve_mtime: a.import.preserve_mtime,
            ..AddOptions::default()
        };
        let warn_bar = bar.clone();
        Box::new(importer::walk(&a.paths, &opts).filter_map(move |w| match w {
            Ok(Walked::Part(p)) => Some(Ok(counted(p))),
            Ok(Walked::Skipped(path, kind)) => {
                warn_bar.suspend(|| warn(&format!("skipping {}: it is {kind}", path.display())));
                None
            }
            Err(e) => Some(Err(e)),
        }))
    };
    let rows = b.upload(req, parts);
    bar.finish_and_clear();
    // Entries are printed only once the add returned: then the blocks and the pin are durable.
    let rows: Vec<AddRow> = rows?.0.into_iter().filter(|r| r.hash.is_some()).collect();
    let row = |r: &AddRow| {
        let (hash, size) = (r.hash.clone().unwrap_or_default(), r.size.clone().unwrap_or_default());
        // A nameless file is named by its CID, as kubo does; the CLI prints no name for it.
        let name = if stdin && a.stdin_name.is_empty() && r.name == hash { String::new() } else { r.name.clone() };
        (name, hash, size)
    };
    if a.quieter {
        let roots: Vec<&AddRow> = if a.wrap_with_directory {
            rows.last().into_iter().collect()
        } else {
            rows.iter().filter(|r| !r.name.contains('/')).collect()
        };
        for r in roots {
            let (name, cid, size) = row(r);
            out.emit(json!({ "Name": name, "Hash": cid, "Size": size }), || cid.clone())?;
        }
        return Ok(());
    }
    for r in &rows {
        let (name, cid, size) = row(r);
        print_added(out, &name, &cid, &size, a.quiet)?;
    }
    Ok(())
}

/// Bytes of regular files under `p` (for the progress bar's total).
fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}
