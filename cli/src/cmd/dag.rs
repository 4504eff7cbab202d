//! `cairn dag import|export`: the `dag/import` and `dag/export` operations (format in
//! `specs/car.md`).
//!
//! Import hands the CARs over as parts read from disk as they go (in-process, or uploaded to
//! a daemon); the operation pins the roots once every file imported. Export to `-o` goes
//! through a temporary file renamed on success, so a failed export never leaves a partial CAR
//! under the asked name; the CAR is decoded on the way to count its blocks.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_node::car_io;
use cairn_node::ops::dag::{DagExport, DagImport, ImportRow};
use cairn_node::ops::Part;
use cairn_protocol::car::{CarDecoder, Item};
use cairn_protocol::Cid;
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::DagCommand;
use crate::backend::Backend;
use crate::output::{byte_bar, Printer};

/// Run a dag subcommand.
pub fn run(b: &Backend, cmd: DagCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        DagCommand::Import { files, pin_roots } => import(b, &files, pin_roots, out),
        DagCommand::Export { path, output } => export(b, &path, output.as_deref(), out),
    }
}

/// Print a `Root` row of an import, as kubo does; returns whether the root was pinned.
fn print_root(out: &mut Printer, root: &str, error: &str) -> Result<bool> {
    out.emit(json!({ "Root": { "Cid": { "/": root }, "PinErrorMsg": error } }), || {
        if error.is_empty() {
            format!("Pinned root\t{root}\tsuccess")
        } else {
            format!("Root\t{root}\tnot pinned: {error}")
        }
    })?;
    Ok(error.is_empty())
}

/// A reader that advances a progress bar.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Import each CAR (none or "-": stdin), then print the roots and the totals; fails if roots
/// were left unpinned.
fn import(b: &Backend, files: &[PathBuf], pin_roots: bool, out: &mut Printer) -> Result<()> {
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin_only[..] } else { files };
    let mut total = Some(0u64);
    let bar = byte_bar(None, None, "importing");
    let mut parts = Vec::new();
    for f in files {
        let (name, data): (String, Box<dyn Read + Send>) = if f.as_os_str() == "-" {
            total = None;
            ("standard input".into(), Box::new(io::stdin()))
        } else {
            let file = File::open(f).with_context(|| format!("opening {}", f.display()))?;
            total = total.zip(file.metadata().ok()).map(|(t, m)| t + m.len());
            (f.display().to_string(), Box::new(file))
        };
        parts.push(Ok(Part::file(name, Counted { inner: data, bar: bar.clone() })));
    }
    if let Some(t) = total {
        bar.set_length(t);
    }
    let rows = b.upload(DagImport { pin_roots, stats: true }, Box::new(parts.into_iter()));
    bar.finish_and_clear();
    let (mut blocks, mut bytes, mut incomplete) = (0, 0, 0);
    for row in rows?.0 {
        match row {
            ImportRow::Root(r) => {
                if !print_root(out, &r.cid.cid, &r.pin_error_msg)? {
                    incomplete += 1;
                }
            }
            ImportRow::Stats(s) => (blocks, bytes) = (s.block_count, s.block_bytes_count),
        }
    }
    out.emit(json!({ "Stats": { "BlockCount": blocks, "BlockBytesCount": bytes } }), || {
        format!("Imported {blocks} blocks ({bytes} bytes)")
    })?;
    if incomplete > 0 {
        bail!(
            "{incomplete} root(s) not pinned because their DAG is incomplete (the blocks that were present are \
             imported): import the missing blocks too, or use --pin-roots=false for a partial CAR"
        );
    }
    Ok(())
}

/// Export the CAR of `path` to stdout or to `output` (temporary file, then renamed),
/// counting blocks as they pass.
fn export(b: &Backend, path: &str, output: Option<&Path>, out: &mut Printer) -> Result<()> {
    let dest = output.filter(|p| p.as_os_str() != "-");
    if dest.is_none() && io::stdout().is_terminal() {
        bail!("refusing to write a binary CAR to the terminal: redirect standard output or use -o FILE");
    }
    if let Some(d) = dest {
        if d.is_dir() {
            bail!("{} is a directory: give -o a file name", d.display());
        }
    }
    let mut body = b.open(DagExport { path: path.to_string(), offline: false })?;
    let broke = b.stream_broke();
    let Some(dest) = dest else {
        let mut w = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        copy_car(&mut body, &mut w, &broke)?;
        w.flush()?;
        return Ok(());
    };
    let name = dest.file_name().with_context(|| format!("{} is not a file name", dest.display()))?;
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.car.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<CarCount> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {} (does the folder exist, and is it writable?)", tmp.display()))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        let count = copy_car(&mut body, &mut w, &broke)?;
        let file = w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        Ok(count)
    })();
    let count = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let root = count.root.map(|c| c.to_string()).unwrap_or_default();
    out.emit(json!({ "Root": root, "Path": dest, "Blocks": count.blocks, "Bytes": count.bytes }), || {
        format!("exported {root} to {} ({} blocks, {} bytes)", dest.display(), count.blocks, count.bytes)
    })?;
    Ok(())
}

/// What passed through [`copy_car`].
struct CarCount {
    root: Option<Cid>,
    blocks: u64,
    bytes: u64,
}

/// Copy a CAR stream, decoding it on the way to count its blocks and check its framing.
fn copy_car(from: &mut dyn Read, to: &mut dyn Write, broke: &str) -> Result<CarCount> {
    let mut dec = CarDecoder::new();
    let mut count = CarCount { root: None, blocks: 0, bytes: 0 };
    let mut buf = vec![0u8; car_io::READ_CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context(broke.to_string()),
        };
        to.write_all(&buf[..n])?;
        count.bytes += n as u64;
        dec.push(&buf[..n]);
        while let Some(item) = dec.next()? {
            match item {
                Item::Header(h) => count.root = h.roots.first().copied(),
                Item::Section(_) => count.blocks += 1,
            }
        }
    }
    dec.finish()?;
    Ok(count)
}
