//! One module per command group. Each command builds the typed request of its operation
//! (`cairn_node::ops`), runs it on a [`Backend`] (the repo in this process when no daemon
//! runs, the daemon's RPC API when one does) and prints the typed answer, with the same human
//! and `--json` output either way. [`OPERATIONS`] names the operation of every subcommand.

mod add;
mod block;
mod config;
mod content;
mod daemon;
mod dag;
mod follow;
mod names;
mod net;
mod pin;
mod repo;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::net::{PortMapping, Reachability};
use cairn_node::ops::info::{Id, VersionInfo};
use cairn_node::repo::{self as node_repo, Holder, Repo, RepoError};
use serde_json::json;

use crate::args::{Cli, Command, KeyCommand};
use crate::backend::{Backend, Local};
use crate::client::{self, Api, Found};
use crate::output::Printer;

/// The operation each subcommand runs (`cairn pin add` runs `pin/add`), and `None` for the
/// commands that are not operations on a node: `init` makes a repo, `daemon` runs the node,
/// `version` needs no repo (it prints the `version` operation's answer, computed locally),
/// `key export` reads the keystore itself (private keys never cross the API), `config` edits
/// the repo's file, and `completions` prints a shell script.
pub const OPERATIONS: &[(&str, Option<&str>)] = &[
    ("init", None),
    ("daemon", None),
    ("version", None),
    ("id", Some("id")),
    ("add", Some("add")),
    ("cat", Some("cat")),
    ("get", Some("get")),
    ("ls", Some("ls")),
    ("pin add", Some("pin/add")),
    ("pin rm", Some("pin/rm")),
    ("pin ls", Some("pin/ls")),
    ("pin verify", Some("pin/verify")),
    ("block get", Some("block/get")),
    ("block put", Some("block/put")),
    ("block stat", Some("block/stat")),
    ("block rm", Some("block/rm")),
    ("dag import", Some("dag/import")),
    ("dag export", Some("dag/export")),
    ("repo gc", Some("repo/gc")),
    ("repo stat", Some("repo/stat")),
    ("repo verify", Some("repo/verify")),
    ("swarm peers", Some("swarm/peers")),
    ("swarm connect", Some("swarm/connect")),
    ("swarm disconnect", Some("swarm/disconnect")),
    ("swarm addrs", Some("swarm/addrs/local")),
    ("dht findprovs", Some("dht/findprovs")),
    ("dht findpeer", Some("dht/findpeer")),
    ("dht provide", Some("dht/provide")),
    ("bitswap stat", Some("bitswap/stat")),
    ("bitswap wantlist", Some("bitswap/wantlist")),
    ("stats bw", Some("stats/bw")),
    ("provide stat", Some("provide/stat")),
    ("shutdown", Some("shutdown")),
    ("key gen", Some("key/gen")),
    ("key list", Some("key/list")),
    ("key rm", Some("key/rm")),
    ("key rename", Some("key/rename")),
    ("key export", None),
    ("key import", Some("key/import")),
    ("name publish", Some("name/publish")),
    ("name resolve", Some("name/resolve")),
    ("follow add", Some("follow/add")),
    ("follow ls", Some("follow/ls")),
    ("follow rm", Some("follow/rm")),
    ("follow status", Some("follow/status")),
    ("health", Some("health")),
    ("doctor", Some("doctor")),
    ("config show", None),
    ("config get", None),
    ("config set", None),
    ("completions", None),
];

/// Run the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let path = cli.repo.clone().unwrap_or_else(node_repo::default_path);
    let mut out = Printer::new(cli.json);
    match cli.command {
        Command::Init { profile } => init(&path, &profile, &mut out),
        Command::Version => {
            let v = VersionInfo::current();
            let text = format!("cairn version {}", v.version);
            out.emit(serde_json::to_value(&v)?, || text)?;
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
        Command::Key(KeyCommand::Export { name, output }) => names::export(&path, &name, output, &mut out),
        Command::Key(c) => names::key(&connect(&path)?, c, &mut out),
        Command::Name(c) => names::name(&connect(&path)?, c, &mut out),
        Command::Follow(c) => follow::run(&connect(&path)?, c, &mut out),
        Command::Health { path: p, min } => follow::health(&connect(&path)?, p, min, &mut out),
        Command::Config(c) => config::run(&path, c, &mut out),
        Command::Doctor => doctor(&connect(&path)?, &mut out),
        Command::Completions { shell } => {
            let mut cmd = <crate::args::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cairn", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// How long a command waits for a daemon that holds the repo but has not yet written its
/// `api` file (it is starting: opening the store, binding its ports).
const DAEMON_START_WAIT: Duration = Duration::from_secs(60);

/// The daemon's API if one answers, else the repo opened directly. A stale `api` file (a
/// killed daemon) is ignored, and removed, only when this process can take the repo lock.
/// A daemon that holds the lock but does not answer yet is starting (or stopping): the command
/// waits for its API, or for the lock to be released, instead of racing it for the repo.
pub fn connect(path: &Path) -> Result<Backend> {
    let stale = match client::discover(path)? {
        Found::Running(api) => return Ok(Backend::Daemon(api)),
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
            Ok(Backend::Local(Local::new(repo)?))
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
fn wait_for_daemon(path: &Path, pid: &str) -> Result<Backend> {
    let start = Instant::now();
    let mut said = false;
    loop {
        if let Found::Running(api) = client::discover(path)? {
            return Ok(Backend::Daemon(api));
        }
        if node_repo::starting_daemon(path).is_none() {
            match Repo::open(path) {
                Ok(repo) => return Ok(Backend::Local(Local::new(repo)?)),
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

/// The daemon, for commands that need the network (they would only fail in-process). A
/// daemon that is still starting is waited for.
fn daemon_api(path: &Path) -> Result<Backend> {
    daemon(path).map(Backend::Daemon)
}

fn daemon(path: &Path) -> Result<Api> {
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
                if let Backend::Daemon(api) = wait_for_daemon(path, &format!(" (pid {pid})"))? {
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

/// `cairn doctor`: every check with its verdict and what to do; exit 1 when one failed.
fn doctor(b: &Backend, out: &mut Printer) -> Result<()> {
    use cairn_node::ops::doctor::{Doctor, Status};
    let report = b.call(Doctor)?;
    out.emit(serde_json::to_value(&report)?, || {
        let mut t = String::new();
        for c in &report.checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            t.push_str(&format!("{tag}  {}: {}\n", c.name, c.detail));
            if !c.fix.is_empty() {
                t.push_str(&format!("      → {}\n", c.fix));
            }
        }
        t.push_str(if report.healthy { "healthy" } else { "something is wrong: see FAIL above" });
        t
    })?;
    if !report.healthy {
        std::process::exit(1);
    }
    Ok(())
}

/// How a reachability reads in `cairn id` (the relay part aside).
fn reach_text(r: Reachability) -> &'static str {
    match r {
        Reachability::Public => "public",
        Reachability::Private => "behind NAT or a firewall (AutoNAT's dial-backs failed)",
        Reachability::Unknown => "not yet known (no AutoNAT server has probed this node)",
    }
}

/// How a port mapping state reads in `cairn id`.
fn mapping_text(m: PortMapping) -> &'static str {
    match m {
        PortMapping::Off => "off",
        PortMapping::Searching => "looking for a UPnP router",
        PortMapping::Mapped => "mapped on the router",
        PortMapping::NoRouter => "no UPnP router on the LAN",
        PortMapping::NotRoutable => "the router is itself behind NAT",
        PortMapping::Failed => "refused or lapsed",
    }
}

/// `cairn id`: the peer ID, the repo's node profile, and (from a running daemon) the
/// addresses peers can reach it on, each ending in `/p2p/<id>` (none offline).
fn id(path: &Path, out: &mut Printer) -> Result<()> {
    let v = connect(path)?.call(Id { peer: None })?;
    let mut text = v.id.clone();
    if let Some(c) = &v.connections {
        let reach = match (c.reachability, c.relay_reservations) {
            (Reachability::Public, _) => "public: peers can dial this node".to_string(),
            (r, n) if n > 0 => format!("{}; reachable through {n} relay(s)", reach_text(r)),
            (r, _) => reach_text(r).to_string(),
        };
        text.push_str(&format!("\nreachability: {reach}; port mapping: {}", mapping_text(c.port_mapping)));
        text.push_str(&format!(
            "\nconnections since start: {} direct, {} relayed; hole punches: {} succeeded, {} failed; relay reservations: {}",
            c.direct, c.relayed, c.hole_punched, c.hole_punch_failed, c.relay_reservations
        ));
    }
    let value = json!({ "ID": v.id, "profile": v.profile, "Addresses": v.addresses, "Connections": v.connections });
    out.emit(value, || text)?;
    Ok(())
}
