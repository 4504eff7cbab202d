//! `cairn cat`, `cairn get`, `cairn ls`: from the repo, or through a daemon (which fetches
//! missing blocks from the network). `get` through a daemon unpacks the tar stream it sends,
//! with the same rules as offline: nothing outside the destination, no existing file or link
//! followed or overwritten.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cairn_node::exporter::{self, GetReport};
use cairn_protocol::reader::Kind;
use indicatif::ProgressBar;
use serde_json::{json, Value};

use super::Target;
use crate::client::{self, Api};
use crate::output::{byte_bar, Printer};
use crate::waiting::Waiter;

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
pub fn cat(t: &Target, path: &str, offset: u64, length: Option<u64>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match t {
        Target::Local(repo) => {
            exporter::cat(repo.store(), path, offset, length, &mut out)?;
        }
        Target::Daemon(api) => {
            let mut q = vec![("arg", path.to_string()), ("offset", offset.to_string())];
            q.extend(length.map(|l| ("length", l.to_string())));
            let waiter = Waiter::start(api, path);
            let mut body = client::bytes(api.call("cat", &q)?);
            copy(&mut body, &mut out, api, &waiter.progress())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Copy a streamed answer, telling a broken daemon stream from a closed output pipe.
fn copy(from: &mut dyn Read, to: &mut dyn Write, api: &Api, progress: &AtomicU64) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("the daemon at {} stopped sending (see its log)", api.addr()))
            }
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
    }
}

/// Write a file or tree to disk.
pub fn get(t: &Target, path: &str, output: Option<PathBuf>, out: &mut Printer) -> Result<()> {
    let dest = output.unwrap_or_else(|| {
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
        PathBuf::from(last)
    });
    if dest.symlink_metadata().is_ok() {
        bail!("{} already exists: choose another output path with -o", dest.display());
    }
    let bar = byte_bar(None, None, "getting");
    let report = match t {
        Target::Local(repo) => exporter::get(repo.store(), path, &dest, &|n| bar.set_position(n))?,
        Target::Daemon(api) => {
            let waiter = Waiter::start(api, path);
            let body =
                Counted { inner: client::bytes(api.call("get", &[("arg", path.to_string())])?), n: waiter.progress() };
            untar(body, &dest, &bar).with_context(|| format!("unpacking {path} from the daemon"))?
        }
    };
    bar.finish_and_clear();
    out.emit(
        json!({ "Path": dest, "Files": report.files, "Dirs": report.dirs, "Symlinks": report.symlinks, "Bytes": report.bytes }),
        || format!("saved {} to {} ({} files, {} bytes)", path, dest.display(), report.files, report.bytes),
    )?;
    Ok(())
}

/// Unpack the daemon's tar: the first path component (the root's name) becomes `dest`; every
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
                let n = entry.read(&mut buf).context("reading the daemon's tar stream")?;
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
        bail!("the daemon sent an empty archive");
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
            _ => bail!("refusing the unsafe path {} in the daemon's archive", name.display()),
        }
    }
    Ok(out)
}

/// List a directory.
pub fn ls(t: &Target, path: &str, out: &mut Printer) -> Result<()> {
    let rows: Vec<(String, String, u64, Option<Kind>)> = match t {
        Target::Local(repo) => {
            exporter::ls(repo.store(), path)?.into_iter().map(|e| (e.name, e.cid.to_string(), e.size, e.kind)).collect()
        }
        Target::Daemon(api) => {
            let v = api.json("ls", &[("arg", path.to_string())])?;
            let links = v["Objects"][0]["Links"].as_array().cloned().unwrap_or_default();
            links.iter().map(remote_row).collect::<Result<_>>()?
        }
    };
    for (name, cid, size, kind) in rows {
        let kind_name = match kind {
            Some(Kind::File) => "file",
            Some(Kind::Directory) => "directory",
            Some(Kind::Symlink) => "symlink",
            None => "unknown",
        };
        let suffix = if kind == Some(Kind::Directory) { "/" } else { "" };
        out.emit(json!({ "Name": name, "Hash": cid, "Size": size, "Type": kind_name }), || {
            format!("{cid} {size:>10} {name}{suffix}")
        })?;
    }
    Ok(())
}

fn remote_row(link: &Value) -> Result<(String, String, u64, Option<Kind>)> {
    let kind = match link["Type"].as_i64() {
        Some(1 | 5) => Some(Kind::Directory),
        Some(2) => Some(Kind::File),
        Some(4) => Some(Kind::Symlink),
        _ => None,
    };
    Ok((
        link["Name"].as_str().unwrap_or_default().to_string(),
        link["Hash"].as_str().context("an ls entry without Hash")?.to_string(),
        link["Size"].as_u64().unwrap_or(0),
        kind,
    ))
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
