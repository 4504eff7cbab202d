//! The commands that need a running daemon: `swarm`, `dht`, `bitswap`, `stats`, `shutdown`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::args::{BitswapCommand, DhtCommand, ProvideCommand, StatsCommand, SwarmCommand};
use crate::client::{self, Api};
use crate::output::Printer;

/// How long `cairn shutdown` waits for the daemon to finish stopping.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// `cairn swarm …`.
pub fn swarm(api: &Api, cmd: SwarmCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        SwarmCommand::Peers => {
            let v = api.json("swarm/peers", &[])?;
            for p in v["Peers"].as_array().cloned().unwrap_or_default() {
                let (addr, peer) = (p["Addr"].as_str().unwrap_or_default(), p["Peer"].as_str().unwrap_or_default());
                out.emit(json!({ "Addr": addr, "Peer": peer, "Connections": p["Connections"] }), || {
                    format!("{addr}/p2p/{peer}")
                })?;
            }
        }
        SwarmCommand::Connect { addrs } => {
            for a in addrs {
                let v = api.json("swarm/connect", &[("arg", a)])?;
                for s in strings(&v, "Strings") {
                    out.emit(json!({ "Result": s }), || s.clone())?;
                }
            }
        }
        SwarmCommand::Disconnect { peers } => {
            for p in peers {
                let v = api.json("swarm/disconnect", &[("arg", p)])?;
                for s in strings(&v, "Strings") {
                    out.emit(json!({ "Result": s }), || s.clone())?;
                }
            }
        }
        SwarmCommand::Addrs => {
            let v = api.json("swarm/addrs/local", &[])?;
            for a in strings(&v, "Strings") {
                out.emit(json!({ "Addr": a }), || a.clone())?;
            }
        }
    }
    Ok(())
}

/// `cairn dht …`.
pub fn dht(api: &Api, cmd: DhtCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        DhtCommand::Findprovs { cid, num_providers } => {
            let q = [("arg", cid), ("num-providers", num_providers.to_string())];
            for row in client::ndjson(api.call("dht/findprovs", &q)?) {
                let row = row?;
                for r in row["Responses"].as_array().cloned().unwrap_or_default() {
                    let id = r["ID"].as_str().unwrap_or_default().to_string();
                    out.emit(json!({ "ID": id }), || id.clone())?;
                }
            }
        }
        DhtCommand::Findpeer { peer } => {
            for row in client::ndjson(api.call("dht/findpeer", &[("arg", peer)])?) {
                let row = row?;
                for r in row["Responses"].as_array().cloned().unwrap_or_default() {
                    for a in strings(&r, "Addrs") {
                        out.emit(json!({ "Addr": a }), || a.clone())?;
                    }
                }
            }
        }
        DhtCommand::Provide { cids, recursive } => {
            let mut q: Vec<(&str, String)> = cids.into_iter().map(|c| ("arg", c)).collect();
            q.push(("recursive", recursive.to_string()));
            for row in client::ndjson(api.call("dht/provide", &q)?) {
                let cid = row?["Extra"].as_str().unwrap_or_default().to_string();
                out.emit(json!({ "Provided": cid }), || format!("provided {cid}"))?;
            }
        }
    }
    Ok(())
}

/// `cairn bitswap …`.
pub fn bitswap(api: &Api, cmd: BitswapCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        BitswapCommand::Stat => {
            let v = api.json("bitswap/stat", &[])?;
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            let wants = v["Wantlist"].as_array().map_or(0, Vec::len);
            let peers = v["Peers"].as_array().map_or(0, Vec::len);
            out.emit(v.clone(), || {
                format!(
                    "bitswap status\n\tblocks received: {}\n\tblocks sent: {}\n\tdata received: {}\n\tdata sent: {}\n\t\
                     dup blocks received: {}\n\tdup data received: {}\n\tunwanted blocks: {}\n\t\
                     protocol violations: {}\n\tpeers banned: {} ({} now)\n\twantlist [{wants} keys]\n\t\
                     partners [{peers}]",
                    n("BlocksReceived"),
                    n("BlocksSent"),
                    n("DataReceived"),
                    n("DataSent"),
                    n("DupBlksReceived"),
                    n("DupDataReceived"),
                    n("UnwantedBlocks"),
                    n("ProtocolViolations"),
                    n("PeersBanned"),
                    n("BannedNow"),
                )
            })?;
        }
        BitswapCommand::Wantlist { peer } => {
            let q: Vec<(&str, String)> = peer.map(|p| ("peer", p)).into_iter().collect();
            let v = api.json("bitswap/wantlist", &q)?;
            for k in v["Keys"].as_array().cloned().unwrap_or_default() {
                let cid = k["/"].as_str().unwrap_or_default().to_string();
                out.emit(json!({ "Cid": cid }), || cid.clone())?;
            }
        }
    }
    Ok(())
}

/// `cairn stats …`.
pub fn stats(api: &Api, cmd: StatsCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        StatsCommand::Bw => {
            let v = api.json("stats/bw", &[])?;
            out.emit(v.clone(), || {
                format!(
                    "Bandwidth (Bitswap blocks)\nTotalIn: {}\nTotalOut: {}\nRateIn: {}/s\nRateOut: {}/s",
                    v["TotalIn"], v["TotalOut"], v["RateIn"], v["RateOut"]
                )
            })?;
        }
    }
    Ok(())
}

/// `cairn provide …`.
pub fn provide(api: &Api, cmd: ProvideCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        ProvideCommand::Stat => {
            let v = api.json("provide/stat", &[])?;
            out.emit(v.clone(), || {
                format!(
                    "Queued:      {}\nProvided:    {}\nFailed:      {}\nTotalKeys:   {}\nLastProvide: {}\nLagSeconds:  {}\nWalks:       {}",
                    v["Queued"], v["Provided"], v["Failed"], v["TotalKeys"], v["LastProvide"], v["LagSeconds"], v["Walks"]
                )
            })?;
        }
    }
    Ok(())
}

/// `cairn shutdown`: ask the daemon to stop, then wait until it has: its `api` file is gone
/// and the repo lock is free (the store is flushed), so the next command can open the repo.
pub fn shutdown(repo: &Path, api: &Api, out: &mut Printer) -> Result<()> {
    api.call("shutdown", &[]).context("asking the daemon to shut down")?;
    let start = Instant::now();
    while client::api_file(repo).exists() || lock_held(repo) {
        if start.elapsed() > SHUTDOWN_WAIT {
            bail!("the daemon was asked to stop but is still running after {SHUTDOWN_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    out.emit(json!({ "Stopped": true }), || "daemon stopped".to_string())?;
    Ok(())
}

/// Whether some process holds the repo lock (probed with a lock taken and dropped at once).
fn lock_held(repo: &Path) -> bool {
    use fs2::FileExt;
    match std::fs::File::open(repo.join("repo.lock")) {
        Ok(f) => f.try_lock_exclusive().is_err(),
        Err(_) => false,
    }
}
