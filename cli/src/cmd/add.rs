//! `cairn add`.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cairn_node::importer::{self, AddOptions, Added};
use cairn_node::repo::Repo;
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::cids::HashFn;
use cairn_protocol::profile::{ImportSettings, Layout};
use serde_json::json;

use crate::args::{AddArgs, ImportArgs};
use crate::output::{byte_bar, Printer};

/// Build import settings: the profile (flag, else config), then single-setting overrides.
pub fn settings(repo: &Repo, a: &ImportArgs) -> Result<ImportSettings> {
    let profile = a.profile.clone().unwrap_or_else(|| repo.config().import.profile.clone());
    let mut s = ImportSettings::profile(&profile)?;
    if let Some(v) = a.cid_version {
        let version = match v {
            0 => cid::Version::V0,
            1 => cid::Version::V1,
            other => bail!("--cid-version {other} is not supported: use 0 or 1"),
        };
        s.set_cid_version(version, a.raw_leaves.is_some());
    }
    if let Some(r) = a.raw_leaves {
        s.raw_leaves = r;
    }
    if let Some(c) = &a.chunker {
        s.chunker = ChunkerSpec::parse(c)?;
    }
    if a.trickle {
        s.layout = Layout::Trickle;
    }
    if let Some(h) = &a.hash {
        s.hash = HashFn::from_name(h).with_context(|| format!("unknown hash {h:?}: use sha2-256 or blake3"))?;
    }
    if let Some(m) = a.max_links {
        s.max_links = m;
    }
    Ok(s.validate()?)
}

/// Run `cairn add`.
pub fn run(repo: &Repo, a: AddArgs, out: &mut Printer) -> Result<()> {
    let opts = AddOptions {
        settings: settings(repo, &a.import)?,
        wrap: a.wrap_with_directory,
        hidden: a.hidden,
        only_hash: a.only_hash,
        pin: a.pin,
        preserve_mode: a.import.preserve_mode,
        preserve_mtime: a.import.preserve_mtime,
    };
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
    let mut print_err = None;
    let quiet = a.quiet;
    let quieter = a.quieter;
    let mut report = |added: &Added| {
        if quieter || print_err.is_some() {
            return;
        }
        let cid = added.cid.to_string();
        let r = out.emit(json!({ "Name": added.path, "Hash": cid, "Size": added.size.to_string() }), || {
            if quiet {
                cid.clone()
            } else if added.path.is_empty() {
                format!("added {cid}")
            } else {
                format!("added {cid} {}", added.path)
            }
        });
        if let Err(e) = r {
            print_err = Some(e);
        }
        bar.suspend(|| {});
    };
    let progress = |n: u64| bar.set_position(n);
    let roots = if stdin {
        importer::add_reader(repo.store(), io::stdin(), &a.stdin_name, &opts, &mut report, &progress)?
    } else {
        let paths: Vec<PathBuf> = a.paths.clone();
        importer::add_paths(repo.store(), &paths, &opts, &mut report, &progress)?
    };
    bar.finish_and_clear();
    if let Some(e) = print_err {
        return Err(e.into());
    }
    if quieter {
        for r in roots {
            let cid = r.cid.to_string();
            out.emit(json!({ "Name": r.path, "Hash": cid, "Size": r.size.to_string() }), || cid.clone())?;
        }
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
