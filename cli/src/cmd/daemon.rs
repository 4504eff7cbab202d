//! `cairn daemon`: open the repo (holding its lock for the whole run), start the node, the
//! RPC API and the HTTP gateway, announce them in the repo's `api` and `gateway` files, and run
//! until Ctrl-C, SIGTERM or the API's `shutdown`.
//!
//! Shutdown order: stop accepting API and gateway requests and let running ones finish
//! (bounded), remove the `api` and `gateway` files (so clients stop trying the API while the lock is still held), stop every
//! node task and flush the store, then release the lock by exiting. A second Ctrl-C exits at
//! once.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cairn_node::api::{ApiOptions, Server};
use cairn_node::gateway::{self, GatewayOptions};
use cairn_node::node::{Node, NodeOptions};
use cairn_node::repo::{Holder, Repo, RepoError, Starting};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::client;

/// A line on stdout; a closed stdout (`cairn daemon | head -1`) must not stop the daemon.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// How long the daemon waits for the swarm to report its listen addresses at start.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

/// How long stopping the node may take before the store is flushed without the tasks that
/// did not stop.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// How long the runtime waits for blocking work at exit.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Run the daemon until it is told to stop.
pub fn run(path: &Path) -> Result<()> {
    cairn_node::memory::limit_arenas();
    // First of all, say a daemon is starting: commands started from now on wait for its API
    // instead of taking the repo (the marker goes when the API answers, or on any exit).
    let starting = Starting::mark(path);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let result = rt.block_on(daemon(path, starting));
    rt.shutdown_timeout(EXIT_WAIT);
    result
}

/// How long the daemon waits for a one-off command that holds the repo (`cairn daemon &`
/// right after `cairn add …`) before giving up.
const COMMAND_WAIT: Duration = Duration::from_secs(120);

/// Open the repo as the daemon. A command holding it is waited for, up to [`COMMAND_WAIT`];
/// another daemon holding it is an error at once.
async fn open_repo(path: &Path) -> Result<Repo> {
    let start = Instant::now();
    let mut said = false;
    loop {
        match Repo::open_as(path, Holder::Daemon) {
            Err(RepoError::Locked { holder, pid, .. })
                if holder != Some(Holder::Daemon) && start.elapsed() < COMMAND_WAIT =>
            {
                if !said {
                    crate::output::note(&format!("waiting for the cairn command{pid} that holds the repo to finish…"));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return Ok(other?),
        }
    }
}

async fn daemon(path: &Path, starting: Option<Starting>) -> Result<()> {
    let repo = open_repo(path).await?;
    // We hold the lock, so an `api` file here is a killed daemon's leftover.
    let api_path = client::api_file(path);
    let _ = fs::remove_file(&api_path);
    let api_opts = ApiOptions::from(&repo.config().network);
    let gateway_opts = GatewayOptions::from_repo(&repo);
    let gateway_path = path.join("gateway");
    let _ = fs::remove_file(&gateway_path);
    let node = Arc::new(Node::start(repo, NodeOptions::default()).await.context("starting the node")?);
    let token = node.shutdown_token();
    let server = match Server::bind(node.clone(), &api_opts).await {
        Ok(s) => s,
        Err(e) => {
            stop_node(node).await;
            return Err(e.into());
        }
    };
    let gateway = match &gateway_opts {
        None => None,
        Some(opts) => match gateway::Server::bind(node.clone(), opts).await {
            Ok(g) => Some(g),
            Err(e) => {
                stop_node(node).await;
                return Err(e.into());
            }
        },
    };
    if let Some(g) = &gateway {
        node.set_gateway_url(format!("http://{}", g.local_addr()));
    }
    let api_addr = server.multiaddr();
    let written = write_file_atomically(&api_path, &api_addr).and_then(|()| match &gateway {
        Some(g) => write_file_atomically(&gateway_path, &format!("http://{}", g.local_addr())),
        None => Ok(()),
    });
    if let Err(e) = written {
        stop_node(node).await;
        return Err(e);
    }
    say!("API server listening on {api_addr}");
    if let Some(g) = &gateway {
        say!("Gateway server listening on {}", g.multiaddr());
    }
    for a in listen_addrs(&node).await {
        say!("Swarm listening on {a}");
    }
    drop(starting);
    say!("Daemon is ready");
    let _ = std::io::stdout().flush();

    tokio::spawn(watch_signals(token.clone()));
    let gateway_task = gateway.map(|g| tokio::spawn(g.serve(token.clone())));
    let served = server.serve(token.clone()).await;
    token.cancel();
    say!("Shutting down");
    let _ = fs::remove_file(&api_path);
    let _ = fs::remove_file(&gateway_path);
    if let Some(t) = gateway_task {
        if let Ok(Err(e)) = t.await {
            tracing::warn!("the gateway stopped with an error: {e}");
        }
    }
    stop_node(node).await;
    say!("Daemon stopped");
    served.context("serving the RPC API")
}

/// Write `text` to `path` atomically (temporary file, rename): the `api` and `gateway` files
/// clients find the daemon through.
fn write_file_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("writing {} (clients find the daemon through it)", path.display()))
}

/// The swarm's listen addresses, once it has reported them (or whatever it has after
/// [`LISTEN_WAIT`]).
async fn listen_addrs(node: &Node) -> Vec<String> {
    let start = Instant::now();
    loop {
        let addrs = node.net().addrs().await.unwrap_or_default();
        if !addrs.is_empty() || start.elapsed() > LISTEN_WAIT {
            return addrs.iter().map(|a| a.to_string()).collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// First SIGINT or SIGTERM: cancel `token` (a graceful stop). Second: exit at once.
async fn watch_signals(token: CancellationToken) {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for signals; stop the daemon with `cairn shutdown`");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = token.cancelled() => {}
    }
    token.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    crate::output::note("second signal: exiting without a clean shutdown");
    std::process::exit(130);
}

/// Stop the node: every task joined, then the store flushed. Requests still running hold
/// clones of the node; they fail from then on, and the process exits. A task that does not
/// stop within [`STOP_WAIT`] is named in the log and the store is flushed without it.
async fn stop_node(node: Arc<Node>) {
    if tokio::time::timeout(STOP_WAIT, node.shutdown()).await.is_err() {
        tracing::warn!(tasks = node.running_tasks(), "tasks did not stop in time; flushing the store without them");
        if let Err(e) = node.store().sync() {
            tracing::warn!("flushing the store: {e}");
        }
    }
}
