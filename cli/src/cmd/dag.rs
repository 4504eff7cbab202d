//! `cairn dag import|export`: CAR files into and out of the repo (format in `specs/car.md`).
//!
//! Import reads every file first and pins the roots only after all of them imported, as kubo
//! does, so a root whose blocks are spread over several CARs still gets pinned and a failed
//! file pins nothing. Export to `-o` goes through a temporary file renamed on success, so a
//! failed export never leaves a partial CAR under the asked name.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_node::car_io::{self, ExportReport, ImportOptions};
use cairn_node::exporter;
use cairn_node::repo::Repo;
use cairn_node::store::Store;
use cairn_protocol::Cid;
use serde_json::json;

use crate::args::DagCommand;
use crate::output::{byte_bar, Printer};

/// Run a dag subcommand.
pub fn run(repo: &Repo, cmd: DagCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        DagCommand::Import { files, pin_roots } => import(repo.store(), &files, pin_roots, out),
        DagCommand::Export { path, output } => export(repo.store(), &path, output.as_deref(), out),
    }
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
            out.emit(json!({ "Root": { "Cid": { "/": cid.to_string() }, "PinErrorMsg": "" } }), || {
                format!("Pinned root\t{cid}\tsuccess")
            })?;
        }
        incomplete = missing.len();
        for m in missing {
            let msg = format!("its DAG is incomplete: block {} is not in the store", m.missing);
            out.emit(json!({ "Root": { "Cid": { "/": m.root.to_string() }, "PinErrorMsg": msg } }), || {
                format!("Root\t{}\tnot pinned: {msg}", m.root)
            })?;
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
