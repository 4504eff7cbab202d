//! `cairn cat`, `cairn get`, `cairn ls`: the `cat`, `get` and `ls` operations (through a
//! daemon, missing blocks are fetched from the network). `get` unpacks the tar stream of the
//! `get` operation with one set of rules, in-process or not: nothing outside the destination,
//! no existing file or link followed or overwritten.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cairn_node::exporter::GetReport;
use cairn_node::ops::content::{Cat, Get, Ls};
use cairn_protocol::reader::Kind;
use indicatif::ProgressBar;
use serde_json::json;

use crate::backend::Backend;
use crate::output::{byte_bar, Printer};

/// A reader that counts the bytes read through it (the waiter's progress).
struct Counted<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Stream a file (or a byte range) to stdout.
pub fn cat(b: &Backend, path: &str, offset: u64, length: Option<u64>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let waiter = b.waiter(path);
    let mut body = b.open(Cat { path: path.to_string(), offset, length, offline: false })?;
    let progress = waiter.as_ref().map(|w| w.progress()).unwrap_or_default();
    copy(&mut body, &mut out, &b.stream_broke(), &progress)?;
    out.flush()?;
    Ok(())
}

/// Copy a stream, telling a broken source from a closed output pipe.
fn copy(from: &mut dyn Read, to: &mut dyn Write, broke: &str, progress: &AtomicU64) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context(broke.to_string()),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
    }
}

/// Write a file or tree to disk.
pub fn get(b: &Backend, path: &str, output: Option<PathBuf>, out: &mut Printer) -> Result<()> {
    let dest = output.unwrap_or_else(|| {
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
        PathBuf::from(last)
    });
    if dest.symlink_metadata().is_ok() {
        bail!("{} already exists: choose another output path with -o", dest.display());
    }
    let bar = byte_bar(None, None, "getting");
    let waiter = b.waiter(path);
    let progress = waiter.as_ref().map(|w| w.progress()).unwrap_or_default();
    let body = Counted { inner: b.open(Get { path: path.to_string(), offline: false })?, n: progress };
    let report = untar(body, &dest, &bar).with_context(|| format!("unpacking {path}"))?;
    bar.finish_and_clear();
    out.emit(
        json!({ "Path": dest, "Files": report.files, "Dirs": report.dirs, "Symlinks": report.symlinks, "Bytes": report.bytes }),
        || format!("saved {} to {} ({} files, {} bytes)", path, dest.display(), report.files, report.bytes),
    )?;
    Ok(())
}

/// Unpack the `get` tar: the first path component (the root's name) becomes `dest`; every
/// other component must be a plain name. Entries come parents first.
fn untar(body: impl Read, dest: &Path, bar: &ProgressBar) -> Result<GetReport> {
    let mut archive = tar::Archive::new(body);
    let mut report = GetReport::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let target = place(dest, &name)?;
        let kind = entry.header().entry_type();
        let werr = |e: io::Error| anyhow::Error::new(e).context(format!("writing {}", target.display()));
        if kind.is_dir() {
            fs::create_dir(&target).map_err(werr)?;
            report.dirs += 1;
        } else if kind.is_symlink() {
            let link = entry.link_name()?.context("a symlink entry without a target")?;
            std::os::unix::fs::symlink(&link, &target).map_err(werr)?;
            report.symlinks += 1;
        } else if kind.is_file() {
            let file = fs::OpenOptions::new().write(true).create_new(true).open(&target).map_err(werr)?;
            let mut w = io::BufWriter::with_capacity(1 << 20, file);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = entry.read(&mut buf).context("reading the tar stream")?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n]).map_err(werr)?;
                report.bytes += n as u64;
                bar.set_position(report.bytes);
            }
            w.flush().map_err(werr)?;
            report.files += 1;
        } else {
            bail!("unexpected tar entry {} of type {kind:?}", name.display());
        }
    }
    if report.files + report.dirs + report.symlinks == 0 {
        bail!("the archive is empty");
    }
    Ok(report)
}

/// Where a tar entry goes: `dest` joined with the entry's path minus its first component.
fn place(dest: &Path, name: &Path) -> Result<PathBuf> {
    let mut out = dest.to_path_buf();
    for (i, c) in name.components().enumerate() {
        match c {
            Component::Normal(part) if i > 0 => out.push(part),
            Component::Normal(_) => {}
            _ => bail!("refusing the unsafe path {} in the archive", name.display()),
        }
    }
    Ok(out)
}

/// List a directory.
pub fn ls(b: &Backend, path: &str, out: &mut Printer) -> Result<()> {
    let answer = b.call(Ls { paths: vec![path.to_string()], offline: false })?;
    for link in answer.objects.into_iter().flat_map(|o| o.links) {
        let kind = link.kind();
        let kind_name = match kind {
            Some(Kind::File) => "file",
            Some(Kind::Directory) => "directory",
            Some(Kind::Symlink) => "symlink",
            None => "unknown",
        };
        let suffix = if kind == Some(Kind::Directory) { "/" } else { "" };
        let (cid, size, name) = (link.hash, link.size, link.name);
        out.emit(json!({ "Name": name, "Hash": cid, "Size": size, "Type": kind_name }), || {
            format!("{cid} {size:>10} {name}{suffix}")
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_paths_stay_inside() {
        assert_eq!(place(Path::new("out"), Path::new("Qm/a/b")).unwrap(), PathBuf::from("out/a/b"));
        assert_eq!(place(Path::new("out"), Path::new("Qm")).unwrap(), PathBuf::from("out"));
        assert!(place(Path::new("out"), Path::new("Qm/../x")).is_err());
        assert!(place(Path::new("out"), Path::new("/etc/x")).is_err());
    }
}
