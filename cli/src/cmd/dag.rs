//! `cairn dag import|export`: CAR files into and out of the repo (format in `specs/car.md`).
//!
//! Import reads every file first and pins the roots only after all of them imported, as kubo
//! does, so a root whose blocks are spread over several CARs still gets pinned and a failed
//! file pins nothing. Export to `-o` goes through a temporary file renamed on success, so a
//! failed export never leaves a partial CAR under the asked name.
//!
//! Through a daemon, import uploads the CARs as multipart parts (read from disk as they are
//! sent) and export receives the CAR stream, counting its blocks as they pass.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_node::car_io::{self, ExportReport, ImportOptions};
use cairn_node::exporter;
use cairn_node::store::Store;
use cairn_protocol::car::{CarDecoder, Item};
use cairn_protocol::Cid;
use serde_json::{json, Value};

use super::multipart::{self, Named, Part};
use super::Target;
use crate::args::DagCommand;
use crate::client::{self, Api};
use crate::output::{byte_bar, Printer};

/// Run a dag subcommand.
pub fn run(t: &Target, cmd: DagCommand, out: &mut Printer) -> Result<()> {
    match (t, cmd) {
        (Target::Local(repo), DagCommand::Import { files, pin_roots }) => import(repo.store(), &files, pin_roots, out),
        (Target::Local(repo), DagCommand::Export { path, output }) => {
            export(repo.store(), &path, output.as_deref(), out)
        }
        (Target::Daemon(api), DagCommand::Import { files, pin_roots }) => remote_import(api, &files, pin_roots, out),
        (Target::Daemon(api), DagCommand::Export { path, output }) => remote_export(api, &path, output.as_deref(), out),
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

/// Print the totals, then fail if roots were left unpinned.
fn finish_import(out: &mut Printer, blocks: u64, bytes: u64, incomplete: usize) -> Result<()> {
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

/// Import each CAR (none or "-": stdin), then pin the roots, then print the totals.
fn import(store: &Store, files: &[PathBuf], pin_roots: bool, out: &mut Printer) -> Result<()> {
    let inputs: Vec<Option<&Path>> = if files.is_empty() {
        vec![None]
    } else {
        files.iter().map(|f| (f.as_os_str() != "-").then_some(f.as_path())).collect()
    };
    let mut roots: Vec<Cid> = Vec::new();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    for input in inputs {
        let name = input.map_or_else(|| "standard input".to_string(), |p| p.display().to_string());
        let report =
            import_one(store, input, &name).with_context(|| format!("importing {name} (nothing was pinned)"))?;
        blocks += report.blocks;
        bytes += report.bytes;
        roots.extend(report.header.roots);
    }
    let mut incomplete = 0;
    if pin_roots {
        let (pinned, missing) = car_io::pin_roots(store, &roots).context("blocks were imported, but pinning failed")?;
        for cid in pinned {
            print_root(out, &cid.to_string(), "")?;
        }
        incomplete = missing.len();
        for m in missing {
            let msg = format!("its DAG is incomplete: block {} is not in the store", m.missing);
            print_root(out, &m.root.to_string(), &msg)?;
        }
    }
    finish_import(out, blocks, bytes, incomplete)
}

fn import_one(store: &Store, input: Option<&Path>, name: &str) -> Result<car_io::ImportReport> {
    let opts = ImportOptions { pin_roots: false };
    let (reader, total): (Box<dyn Read>, Option<u64>) = match input {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        }
        None => (Box::new(io::stdin().lock()), None),
    };
    let bar = byte_bar(total, None, &format!("importing {name}"));
    let report = car_io::import(store, reader, &opts, &|n| bar.set_position(n));
    bar.finish_and_clear();
    Ok(report?)
}

/// Export the DAG at `path` as a CARv1, to stdout or to `output`.
fn export(store: &Store, path: &str, output: Option<&Path>, out: &mut Printer) -> Result<()> {
    let root = exporter::resolve(store, path).with_context(|| format!("resolving {path}"))?;
    match output.filter(|p| p.as_os_str() != "-") {
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write a binary CAR to the terminal: redirect standard output or use -o FILE");
            }
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            car_io::export(store, &root, &mut w).with_context(|| format!("exporting {root}"))?;
        }
        Some(dest) => {
            let report = export_to_file(store, &root, dest)?;
            out.emit(
                json!({ "Root": root.to_string(), "Path": dest, "Blocks": report.blocks, "Bytes": report.bytes }),
                || format!("exported {root} to {} ({} blocks, {} bytes)", dest.display(), report.blocks, report.bytes),
            )?;
        }
    }
    Ok(())
}

/// Write the CAR to a temporary file beside `dest`, sync it, and rename it over `dest`; the
/// temporary file is removed on failure.
fn export_to_file(store: &Store, root: &Cid, dest: &Path) -> Result<ExportReport> {
    if dest.is_dir() {
        bail!("{} is a directory: give -o a file name", dest.display());
    }
    let name = dest.file_name().with_context(|| format!("{} is not a file name", dest.display()))?;
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.car.tmp", name.to_string_lossy(), std::process::id()));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("creating {} (does the folder exist, and is it writable?)", tmp.display()))?;
    let result = write_and_rename(store, root, file, &tmp, dest);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_and_rename(store: &Store, root: &Cid, file: File, tmp: &Path, dest: &Path) -> Result<ExportReport> {
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let report = car_io::export(store, root, &mut w).with_context(|| format!("exporting {root}"))?;
    let file = w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
    fs::rename(tmp, dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    Ok(report)
}

/// Upload the CARs to the daemon's `dag/import` and print its answer.
fn remote_import(api: &Api, files: &[PathBuf], pin_roots: bool, out: &mut Printer) -> Result<()> {
    let mut total = Some(0u64);
    let mut parts = Vec::new();
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin_only[..] } else { files };
    for f in files {
        let (name, body): (String, Box<dyn Read>) = if f.as_os_str() == "-" {
            total = None;
            (String::new(), Box::new(io::stdin()))
        } else {
            let file = File::open(f).with_context(|| format!("opening {}", f.display()))?;
            total = total.zip(file.metadata().ok()).map(|(t, m)| t + m.len());
            let name = f.display().to_string();
            (name.clone(), Box::new(Named { name, inner: file }))
        };
        parts.push(Part {
            path: name,
            field: "file".into(),
            content_type: "application/octet-stream",
            body: Some(body),
        });
    }
    let bar = byte_bar(total, None, "importing");
    let body = multipart::Body::new(Box::new(parts.into_iter().map(Ok)), Some(bar.clone()));
    let ct = body.content_type();
    let q = [("pin-roots", pin_roots.to_string()), ("stats", "true".to_string())];
    let resp = api.call_with("dag/import", &q, &ct, body);
    bar.finish_and_clear();
    let (mut blocks, mut bytes, mut incomplete) = (0, 0, 0);
    for row in client::ndjson(resp?) {
        let row: Value = row?;
        if let Some(root) = row.get("Root") {
            let cid = root["Cid"]["/"].as_str().context("a dag/import row without a root CID")?;
            if !print_root(out, cid, root["PinErrorMsg"].as_str().unwrap_or_default())? {
                incomplete += 1;
            }
        } else if let Some(stats) = row.get("Stats") {
            blocks = stats["BlockCount"].as_u64().unwrap_or(0);
            bytes = stats["BlockBytesCount"].as_u64().unwrap_or(0);
        }
    }
    finish_import(out, blocks, bytes, incomplete)
}

/// Receive the CAR of `path` from the daemon, to stdout or to `output` (temporary file, then
/// renamed), counting blocks as they pass.
fn remote_export(api: &Api, path: &str, output: Option<&Path>, out: &mut Printer) -> Result<()> {
    let dest = output.filter(|p| p.as_os_str() != "-");
    if dest.is_none() && io::stdout().is_terminal() {
        bail!("refusing to write a binary CAR to the terminal: redirect standard output or use -o FILE");
    }
    if let Some(d) = dest {
        if d.is_dir() {
            bail!("{} is a directory: give -o a file name", d.display());
        }
    }
    let mut body = client::bytes(api.call("dag/export", &[("arg", path.to_string())])?);
    let Some(dest) = dest else {
        let mut w = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        copy_car(&mut body, &mut w)?;
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
        let count = copy_car(&mut body, &mut w)?;
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
fn copy_car(from: &mut dyn Read, to: &mut dyn Write) -> Result<CarCount> {
    let mut dec = CarDecoder::new();
    let mut count = CarCount { root: None, blocks: 0, bytes: 0 };
    let mut buf = vec![0u8; car_io::READ_CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("the daemon stopped sending the CAR (see its log)"),
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
