//! One function per command; each opens the repo, calls `cairn-node`, and prints.

mod add;
mod block;
mod content;
mod dag;
mod pin;
mod repo;

use std::path::Path;

use anyhow::{Context, Result};
use cairn_node::repo::{self as node_repo, Repo};
use serde_json::json;

use crate::args::{Cli, Command};
use crate::output::Printer;

/// Run the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let path = cli.repo.clone().unwrap_or_else(node_repo::default_path);
    let mut out = Printer::new(cli.json);
    match cli.command {
        Command::Init { profile } => init(&path, &profile, &mut out),
        Command::Version => {
            let v = env!("CARGO_PKG_VERSION");
            out.emit(json!({ "version": v, "repo_format": node_repo::REPO_VERSION }), || format!("cairn version {v}"))?;
            Ok(())
        }
        Command::Id => {
            let repo = open(&path)?;
            let id = repo.identity().peer_id();
            out.emit(json!({ "ID": id, "profile": repo.config().profile }), || id.clone())?;
            Ok(())
        }
        Command::Add(args) => add::run(&open(&path)?, args, &mut out),
        Command::Cat { path: p, offset, length } => content::cat(&open(&path)?, &p, offset, length),
        Command::Get { path: p, output } => content::get(&open(&path)?, &p, output, &mut out),
        Command::Ls { path: p } => content::ls(&open(&path)?, &p, &mut out),
        Command::Pin(c) => pin::run(&open(&path)?, c, &mut out),
        Command::Block(c) => block::run(&open(&path)?, c, &mut out),
        Command::Dag(c) => dag::run(&open(&path)?, c, &mut out),
        Command::Repo(c) => repo::run(&open(&path)?, c, &mut out),
    }
}

fn open(path: &Path) -> Result<Repo> {
    Repo::open(path).map_err(anyhow::Error::from)
}

fn init(path: &Path, profile: &str, out: &mut Printer) -> Result<()> {
    let identity = Repo::init(path, profile).with_context(|| format!("initializing {}", path.display()))?;
    let id = identity.peer_id();
    out.emit(json!({ "ID": id, "repo": path, "profile": profile }), || {
        format!("initialized cairn repo at {}\npeer identity: {id}\nprofile: {profile}", path.display())
    })?;
    Ok(())
}
