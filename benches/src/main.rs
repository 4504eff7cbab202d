//! The end-to-end benchmark runner: every cairn figure measured beside its anchor (the physical
//! limit or a peer implementation) in the same run, reported as medians and ratios.
//!
//! `cargo run -p cairn-benches --release -- e2e [--quick] [--json out.json] [--only add,gateway]`

mod figures;
mod measure;
mod report;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// cairn benchmark runner.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the end-to-end figures and print the table.
    E2e {
        /// Small sizes and one run each: a smoke test that every figure is produced.
        #[arg(long)]
        quick: bool,
        /// Also write the results as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Only these figures (comma separated: add, fetch, multi, gateway, dht, ipns, follow, idle, nat, memory).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Runs per figure (default 3, or 1 with --quick).
        #[arg(long)]
        runs: Option<usize>,
        /// Scratch folder (default: a temporary folder under target/).
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Size of the fetch figure's file in MiB (default 1024, or 64 with --quick). With
        /// --quick the Helia, kubo and sendme anchors still run only if already installed.
        #[arg(long)]
        fetch_mib: Option<u64>,
    },
    /// (internal) Serve a file from memory over HTTP: the gateway's ceiling.
    #[command(hide = true)]
    HttpCeiling {
        /// The file.
        file: PathBuf,
    },
    /// (internal) The receiving side of the stream ceiling.
    #[command(hide = true)]
    CeilingServe,
    /// (internal) The pushing side of the stream ceiling.
    #[command(hide = true)]
    CeilingPush {
        /// The server's address.
        addr: String,
        /// Bytes to push.
        bytes: u64,
    },
    /// (internal) The serving side of the request-response (NetworkBehaviour) transfer.
    #[command(hide = true)]
    BehaviourServe,
    /// (internal) The fetching side of the request-response (NetworkBehaviour) transfer.
    #[command(hide = true)]
    BehaviourFetch {
        /// The server's address.
        addr: String,
        /// Bytes to fetch.
        bytes: u64,
    },
}

fn main() -> Result<()> {
    // RUST_LOG=cairn_node=debug shows what the in-process nodes do (the DHT figures).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
    let (quick, json, only, runs, workdir, fetch_mib) = match Cli::parse().command {
        Cmd::E2e { quick, json, only, runs, workdir, fetch_mib } => (quick, json, only, runs, workdir, fetch_mib),
        Cmd::HttpCeiling { file } => return runtime()?.block_on(figures::gateway::serve_ceiling(&file)),
        Cmd::CeilingServe => return runtime()?.block_on(figures::ceiling::serve()),
        Cmd::CeilingPush { addr, bytes } => return runtime()?.block_on(figures::ceiling::push(addr.parse()?, bytes)),
        Cmd::BehaviourServe => return runtime()?.block_on(figures::behaviour::serve()),
        Cmd::BehaviourFetch { addr, bytes } => {
            return runtime()?.block_on(figures::behaviour::fetch(addr.parse()?, bytes))
        }
    };
    let runs = runs.unwrap_or(if quick { 1 } else { 3 });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let base = workdir.unwrap_or_else(|| root.join("target").join("bench-work"));
    std::fs::create_dir_all(&base)?;
    let work = tempfile::tempdir_in(&base)?;
    let ctx = figures::Ctx {
        quick,
        runs,
        work: work.path().to_path_buf(),
        cairn: figures::cairn_bin()?,
        root: root.clone(),
        fetch_mib: fetch_mib.unwrap_or(if quick { 64 } else { 1024 }),
    };
    let mut rows = Vec::new();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if want("add") {
        rows.extend(figures::add::run(&ctx)?);
    }
    if want("fetch") {
        rows.extend(figures::fetch::run(&ctx)?);
    }
    if want("multi") {
        rows.extend(figures::multi::run(&ctx)?);
    }
    if want("gateway") {
        rows.extend(figures::gateway::run(&ctx)?);
    }
    if want("dht") {
        let rt = runtime()?;
        rows.extend(rt.block_on(figures::dht::ttfb(&ctx))?);
        rows.extend(rt.block_on(figures::dht::provide(&ctx))?);
    }
    if want("churn") {
        rows.extend(runtime()?.block_on(figures::churn::run(&ctx))?);
    }
    if want("ipns") {
        rows.extend(runtime()?.block_on(figures::ipns::run(&ctx))?);
    }
    if want("follow") {
        rows.extend(runtime()?.block_on(figures::follow::run(&ctx))?);
    }
    if want("idle") {
        rows.extend(figures::idle::run(&ctx)?);
    }
    if want("nat") {
        rows.extend(figures::nat::run(&ctx)?);
    }
    if want("memory") {
        rows.extend(figures::memory::run(&ctx)?);
    }
    report::print_table(&rows);
    if let Some(path) = json {
        report::write_json(&path, &rows, quick, runs)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
