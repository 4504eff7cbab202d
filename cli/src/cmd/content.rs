//! `cairn cat`, `cairn get`, `cairn ls`.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use cairn_node::exporter;
use cairn_node::repo::Repo;
use cairn_protocol::reader::Kind;
use serde_json::json;

use crate::output::{byte_bar, Printer};

/// Stream a file (or a byte range) to stdout.
pub fn cat(repo: &Repo, path: &str, offset: u64, length: Option<u64>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    exporter::cat(repo.store(), path, offset, length, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Write a file or tree to disk.
pub fn get(repo: &Repo, path: &str, output: Option<PathBuf>, out: &mut Printer) -> Result<()> {
    let dest = output.unwrap_or_else(|| {
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
        PathBuf::from(last)
    });
    if dest.symlink_metadata().is_ok() {
        bail!("{} already exists: choose another output path with -o", dest.display());
    }
    let bar = byte_bar(None, None, "getting");
    let report = exporter::get(repo.store(), path, &dest, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    out.emit(
        json!({ "Path": dest, "Files": report.files, "Dirs": report.dirs, "Symlinks": report.symlinks, "Bytes": report.bytes }),
        || format!("saved {} to {} ({} files, {} bytes)", path, dest.display(), report.files, report.bytes),
    )?;
    Ok(())
}

/// List a directory.
pub fn ls(repo: &Repo, path: &str, out: &mut Printer) -> Result<()> {
    for e in exporter::ls(repo.store(), path)? {
        let kind = match e.kind {
            Some(Kind::File) => "file",
            Some(Kind::Directory) => "directory",
            Some(Kind::Symlink) => "symlink",
            None => "unknown",
        };
        let cid = e.cid.to_string();
        let suffix = if e.kind == Some(Kind::Directory) { "/" } else { "" };
        out.emit(json!({ "Name": e.name, "Hash": cid, "Size": e.size, "Type": kind }), || {
            format!("{cid} {:>10} {}{suffix}", e.size, e.name)
        })?;
    }
    Ok(())
}
