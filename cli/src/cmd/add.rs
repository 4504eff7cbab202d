//! `cairn add`: offline through the importer, or through a daemon as a multipart upload of
//! the same entries in the same order (so the output is the same either way).

use std::fs;
use std::io::{self, IsTerminal};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_node::importer::{self, AddOptions, Added, EntryKind, Event};
use cairn_node::repo::Repo;
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::cids::HashFn;
use cairn_protocol::profile::{ImportSettings, Layout};
use indicatif::ProgressBar;
use serde_json::{json, Value};

use crate::args::{AddArgs, ImportArgs};
use crate::backend::Backend;
use crate::client::{self, Api};
use crate::multipart::{self, Named, Part, Parts};
use crate::output::{byte_bar, warn, Printer};

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

/// Run `cairn add`.
pub fn run(t: &Backend, a: AddArgs, out: &mut Printer) -> Result<()> {
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
    match t {
        Backend::Local(l) => local(l.repo(), a, stdin, bar, out),
        Backend::Daemon(api) => remote(api, a, stdin, bar, out),
    }
}

fn local(repo: &Repo, a: AddArgs, stdin: bool, bar: ProgressBar, out: &mut Printer) -> Result<()> {
    let opts = AddOptions {
        settings: settings(repo, &a.import)?,
        wrap: a.wrap_with_directory,
        hidden: a.hidden,
        only_hash: a.only_hash,
        pin: a.pin,
        preserve_mode: a.import.preserve_mode,
        preserve_mtime: a.import.preserve_mtime,
    };
    // Entries are printed only once the add returned: then the blocks and the pin are durable.
    let mut added: Vec<Added> = Vec::new();
    let mut report = |event: Event<'_>| match event {
        Event::Added(a) => added.push(a.clone()),
        Event::Skipped { path, kind } => {
            bar.suspend(|| warn(&format!("skipping {}: it is {kind}", path.display())));
        }
    };
    let progress = |n: u64| bar.set_position(n);
    let roots = if stdin {
        importer::add_reader(repo.store(), io::stdin(), &a.stdin_name, &opts, &mut report, &progress)
    } else {
        let paths: Vec<PathBuf> = a.paths.clone();
        importer::add_paths(repo.store(), &paths, &opts, &mut report, &progress)
    };
    bar.finish_and_clear();
    let roots = roots?;
    if !a.quieter {
        for e in &added {
            print_added(out, &e.path, &e.cid.to_string(), &e.size.to_string(), a.quiet)?;
        }
    } else {
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

/// The import options as the daemon's `add` takes them.
fn add_query(a: &AddArgs) -> Vec<(&'static str, String)> {
    let i = &a.import;
    let mut q = vec![
        ("pin", a.pin.to_string()),
        ("only-hash", a.only_hash.to_string()),
        ("wrap-with-directory", a.wrap_with_directory.to_string()),
    ];
    let opt = |name, v: Option<String>| v.map(|v| (name, v));
    q.extend(opt("profile", i.profile.clone()));
    q.extend(opt("cid-version", i.cid_version.map(|v| v.to_string())));
    q.extend(opt("raw-leaves", i.raw_leaves.map(|v| v.to_string())));
    q.extend(opt("chunker", i.chunker.clone()));
    q.extend(opt("hash", i.hash.clone()));
    q.extend(opt("max-links", i.max_links.map(|v| v.to_string())));
    if i.trickle {
        q.push(("trickle", "true".into()));
    }
    q
}

/// Upload the entries to the daemon and print what it added, as `local` would.
fn remote(api: &Api, a: AddArgs, stdin: bool, bar: ProgressBar, out: &mut Printer) -> Result<()> {
    let parts: Parts = if stdin {
        let part = Part {
            path: a.stdin_name.clone(),
            field: "file".into(),
            content_type: "application/octet-stream",
            body: Some(Box::new(io::stdin())),
        };
        Box::new(std::iter::once(Ok(part)))
    } else {
        let mut roots = Vec::new();
        for p in &a.paths {
            roots.push((p.clone(), root_name(p)?));
        }
        Box::new(Walker::new(roots, &a))
    };
    let body = multipart::Body::new(parts, Some(bar.clone()));
    let content_type = body.content_type();
    let resp = api.call_with("add", &add_query(&a), &content_type, body);
    bar.finish_and_clear();
    let rows: Vec<Value> = client::ndjson(resp?).collect::<Result<_>>()?;
    let rows: Vec<(String, String, String)> = rows
        .into_iter()
        .filter(|r| r.get("Hash").is_some())
        .map(|r| {
            let s = |k: &str| r[k].as_str().map(String::from).unwrap_or_else(|| r[k].to_string());
            let (mut name, hash) = (s("Name"), s("Hash"));
            // The daemon names a nameless file by its CID, as kubo does; offline it has no name.
            if stdin && a.stdin_name.is_empty() && name == hash {
                name.clear();
            }
            (name, hash, s("Size"))
        })
        .collect();
    if a.quieter {
        let roots: Vec<&(String, String, String)> = if a.wrap_with_directory {
            rows.last().into_iter().collect()
        } else {
            rows.iter().filter(|(name, _, _)| !name.contains('/')).collect()
        };
        for (name, cid, size) in roots {
            out.emit(json!({ "Name": name, "Hash": cid, "Size": size }), || cid.clone())?;
        }
        return Ok(());
    }
    for (name, cid, size) in &rows {
        print_added(out, name, cid, size, a.quiet)?;
    }
    Ok(())
}

/// The name a top-level path is added under: its last component (of the absolute path for
/// `.` and the like).
fn root_name(p: &Path) -> Result<String> {
    let name = match p.file_name() {
        Some(n) => n.to_os_string(),
        None => fs::canonicalize(p)
            .with_context(|| format!("cannot add {}", p.display()))?
            .file_name()
            .map(|n| n.to_os_string())
            .with_context(|| format!("cannot add {} through the daemon: it has no name", p.display()))?,
    };
    name.into_string().map_err(|_| anyhow::anyhow!("cannot add {}: the name is not valid UTF-8", p.display()))
}

/// The entries under the given roots, depth first, each directory's entries sorted by name
/// and dot-files skipped unless `--hidden`: the offline importer's order.
struct Walker {
    /// Entries still to visit: path on disk, path in the upload, named on the command line.
    stack: Vec<(PathBuf, String, bool)>,
    hidden: bool,
    mode: bool,
    mtime: bool,
}

impl Walker {
    fn new(roots: Vec<(PathBuf, String)>, a: &AddArgs) -> Walker {
        let stack = roots.into_iter().rev().map(|(p, r)| (p, r, true)).collect();
        Walker { stack, hidden: a.hidden, mode: a.import.preserve_mode, mtime: a.import.preserve_mtime }
    }

    fn field(&self, md: &fs::Metadata) -> String {
        let mut q = Vec::new();
        if self.mode {
            q.push(format!("mode={:04o}", md.mode() & 0o7777));
        }
        if self.mtime {
            q.push(format!("mtime={}&mtime-nsecs={}", md.mtime(), md.mtime_nsec()));
        }
        if q.is_empty() {
            "file".into()
        } else {
            format!("file?{}", q.join("&"))
        }
    }

    /// The part for one entry, or `None` for a special file skipped inside a folder.
    fn visit(&mut self, path: PathBuf, rel: String, top_level: bool) -> io::Result<Option<Part>> {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("reading {}: {e}", path.display()));
        let not_utf8 = |p: &Path| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot add {}: the name is not valid UTF-8", p.display()),
            )
        };
        let kind = importer::entry_kind(&path, top_level).map_err(ctx)?;
        let md = match kind {
            EntryKind::File => fs::metadata(&path),
            _ => fs::symlink_metadata(&path),
        }
        .map_err(ctx)?;
        let field = self.field(&md);
        if let EntryKind::Special(what) = kind {
            if top_level {
                return Err(io::Error::other(format!("cannot add {}: it is {what}", path.display())));
            }
            warn(&format!("skipping {}: it is {what}", path.display()));
            return Ok(None);
        }
        if kind == EntryKind::Symlink {
            let target = fs::read_link(&path).map_err(ctx)?;
            let target = target.into_os_string().into_string().map_err(|_| not_utf8(&path))?;
            let body: Box<dyn io::Read> = Box::new(io::Cursor::new(target.into_bytes()));
            return Ok(Some(Part { path: rel, field, content_type: "application/symlink", body: Some(body) }));
        }
        if kind == EntryKind::Dir {
            let mut names = Vec::new();
            for entry in fs::read_dir(&path).map_err(ctx)? {
                let entry = entry.map_err(ctx)?;
                let name = entry.file_name().into_string().map_err(|_| not_utf8(&entry.path()))?;
                if self.hidden || !name.starts_with('.') {
                    names.push(name);
                }
            }
            names.sort();
            for name in names.into_iter().rev() {
                self.stack.push((path.join(&name), format!("{rel}/{name}"), false));
            }
            return Ok(Some(Part { path: rel, field, content_type: "application/x-directory", body: None }));
        }
        let file = fs::File::open(&path).map_err(ctx)?;
        let body: Box<dyn io::Read> = Box::new(Named { name: path.display().to_string(), inner: file });
        Ok(Some(Part { path: rel, field, content_type: "application/octet-stream", body: Some(body) }))
    }
}

impl Iterator for Walker {
    type Item = io::Result<Part>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (path, rel, top_level) = self.stack.pop()?;
            match self.visit(path, rel, top_level) {
                Ok(None) => continue,
                Ok(Some(part)) => return Some(Ok(part)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
