//! One module per command group. Each command runs against a [`Target`]: the repo opened
//! directly when no daemon runs, or the daemon's RPC API when one does, with the same human and
//! `--json` output either way.

mod add;
mod block;
mod content;
mod daemon;
mod dag;
mod multipart;
mod net;
mod pin;
mod repo;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::repo::{self as node_repo, Holder, Repo, RepoError};
use serde_json::json;

use crate::args::{Cli, Command};
use crate::client::{self, Api, Found};
use crate::output::Printer;

/// Where a command runs.
pub enum Target {
    /// No daemon: the repo, opened (and locked) by this process (boxed: it is large).
    Local(Box<Repo>),
    /// A daemon holds the repo: talk to its API.
    Daemon(Api),
}

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
        Command::Daemon => daemon::run(&path),
        Command::Id => id(&path, &mut out),
        Command::Add(args) => add::run(&connect(&path)?, args, &mut out),
        Command::Cat { path: p, offset, length } => content::cat(&connect(&path)?, &p, offset, length),
        Command::Get { path: p, output } => content::get(&connect(&path)?, &p, output, &mut out),
        Command::Ls { path: p } => content::ls(&connect(&path)?, &p, &mut out),
        Command::Pin(c) => pin::run(&connect(&path)?, c, &mut out),
        Command::Block(c) => block::run(&connect(&path)?, c, &mut out),
        Command::Dag(c) => dag::run(&connect(&path)?, c, &mut out),
        Command::Repo(c) => repo::run(&connect(&path)?, c, &mut out),
        Command::Swarm(c) => net::swarm(&daemon_api(&path)?, c, &mut out),
        Command::Dht(c) => net::dht(&daemon_api(&path)?, c, &mut out),
        Command::Bitswap(c) => net::bitswap(&daemon_api(&path)?, c, &mut out),
        Command::Stats(c) => net::stats(&daemon_api(&path)?, c, &mut out),
        Command::Provide(c) => net::provide(&daemon_api(&path)?, c, &mut out),
        Command::Shutdown => net::shutdown(&path, &daemon_api(&path)?, &mut out),
    }
}

/// How long a command waits for a daemon that holds the repo but has not yet written its
/// `api` file (it is starting: opening the store, binding its ports).
const DAEMON_START_WAIT: Duration = Duration::from_secs(60);

/// The daemon's API if one answers, else the repo opened directly. A stale `api` file (a
/// killed daemon) is ignored, and removed, only when this process can take the repo lock.
/// A daemon that holds the lock but does not answer yet is starting (or stopping): the command
/// waits for its API, or for the lock to be released, instead of racing it for the repo.
pub fn connect(path: &Path) -> Result<Target> {
    let stale = match client::discover(path)? {
        Found::Running(api) => return Ok(Target::Daemon(api)),
        Found::None => None,
        Found::Stale(addr) => Some(addr),
    };
    if let Some(pid) = node_repo::starting_daemon(path) {
        return wait_for_daemon(path, &format!(" (pid {pid})"));
    }
    match Repo::open(path) {
        Ok(repo) => {
            if stale.is_some() {
                let _ = fs::remove_file(client::api_file(path));
            }
            Ok(Target::Local(Box::new(repo)))
        }
        Err(RepoError::Locked { pid, .. }) if stale.is_some() => bail!(
            "a cairn process{pid} holds the repo at {}, but the daemon API it announced ({}) does not \
             answer: wait until it has finished starting or stopping, or stop it and retry",
            path.display(),
            stale.unwrap_or_default()
        ),
        // No `api` file yet: a daemon holding the lock is starting. It writes its role just
        // after taking the lock, so look again a moment later before calling it a command.
        Err(RepoError::Locked { holder: Some(Holder::Daemon), pid, .. }) => wait_for_daemon(path, &pid),
        Err(RepoError::Locked { pid, .. }) if daemon_took_it(path) => wait_for_daemon(path, &pid),
        Err(e) => Err(e.into()),
    }
}

/// Whether `repo.lock` names a daemon within a moment (it takes the lock, then writes its role).
fn daemon_took_it(path: &Path) -> bool {
    (0..4).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        matches!(node_repo::lock_holder(path), Some((_, Some(Holder::Daemon))))
    })
}

/// A daemon holds the repo but its API does not answer yet: wait until it does (then use
/// it), or until the lock is free (it stopped: open the repo), for [`DAEMON_START_WAIT`].
fn wait_for_daemon(path: &Path, pid: &str) -> Result<Target> {
    let start = Instant::now();
    let mut said = false;
    loop {
        if let Found::Running(api) = client::discover(path)? {
            return Ok(Target::Daemon(api));
        }
        if node_repo::starting_daemon(path).is_none() {
            match Repo::open(path) {
                Ok(repo) => return Ok(Target::Local(Box::new(repo))),
                Err(RepoError::Locked { holder: Some(Holder::Daemon), .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if start.elapsed() > DAEMON_START_WAIT {
            bail!(
                "the cairn daemon{pid} holds the repo at {} but its API has not answered for {}s: if it is \
                 stuck, stop it and retry",
                path.display(),
                DAEMON_START_WAIT.as_secs()
            );
        }
        if !said && start.elapsed() > Duration::from_secs(1) {
            crate::output::note(&format!("waiting for the cairn daemon{pid} to start…"));
            said = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon's API, for commands that need the network. A daemon that is still starting is
/// waited for.
fn daemon_api(path: &Path) -> Result<Api> {
    match client::discover(path)? {
        Found::Running(api) => Ok(api),
        Found::Stale(addr) => {
            bail!("no daemon running (nothing answers at {addr}, the repo's api file is stale): start one with `cairn daemon`")
        }
        Found::None => {
            let starting = node_repo::starting_daemon(path);
            let locked = matches!(node_repo::lock_holder(path), Some((_, Some(Holder::Daemon))));
            if starting.is_some() || locked {
                let pid = starting.or(node_repo::lock_holder(path).map(|(p, _)| p)).unwrap_or_default();
                if let Target::Daemon(api) = wait_for_daemon(path, &format!(" (pid {pid})"))? {
                    return Ok(api);
                }
            }
            bail!("no daemon running: start one with `cairn daemon`")
        }
    }
}

fn init(path: &Path, profile: &str, out: &mut Printer) -> Result<()> {
    let identity = Repo::init(path, profile).with_context(|| format!("initializing {}", path.display()))?;
    let id = identity.peer_id();
    out.emit(json!({ "ID": id, "repo": path, "profile": profile }), || {
        format!("initialized cairn repo at {}\npeer identity: {id}\nprofile: {profile}", path.display())
    })?;
    Ok(())
}

/// `cairn id`: the peer ID, the repo's node profile, and (from a running daemon) the
/// addresses peers can reach it on, each ending in `/p2p/<id>` (none offline).
fn id(path: &Path, out: &mut Printer) -> Result<()> {
    let (id, profile, addrs) = match connect(path)? {
        Target::Local(repo) => (repo.identity().peer_id(), repo.config().profile.clone(), Vec::new()),
        Target::Daemon(api) => {
            let v = api.json("id", &[])?;
            let id = v["ID"].as_str().context("the daemon's id answer has no ID")?.to_string();
            let addrs: Vec<String> = v["Addresses"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default();
            // The profile is a repo setting, readable without the lock.
            let text = fs::read_to_string(path.join("config.toml")).context("reading config.toml")?;
            let config = node_repo::Config::from_toml(&text).map_err(anyhow::Error::msg)?;
            (id, config.profile, addrs)
        }
    };
    out.emit(json!({ "ID": id, "profile": profile, "Addresses": addrs }), || id.clone())?;
    Ok(())
}
