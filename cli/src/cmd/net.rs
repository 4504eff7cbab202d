//! The commands that need a running daemon: `swarm`, `dht`, `bitswap`, `stats`, `provide`,
//! `shutdown`, each one operation of `cairn_node::ops`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::ops::routing::{DhtFindpeer, DhtFindprovs, DhtProvide};
use cairn_node::ops::stats::{BitswapStat, BitswapWantlist, ProvideStat, Shutdown, StatsBw};
use cairn_node::ops::swarm::{SwarmAddrsLocal, SwarmConnect, SwarmDisconnect, SwarmPeers};
use serde_json::json;

use crate::args::{BitswapCommand, DhtCommand, ProvideCommand, StatsCommand, SwarmCommand};
use crate::backend::Backend;
use crate::client;
use crate::output::Printer;

/// How long `cairn shutdown` waits for the daemon to finish stopping.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// `cairn swarm …`.
pub fn swarm(b: &Backend, cmd: SwarmCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        SwarmCommand::Peers => {
            for p in b.call(SwarmPeers)?.peers {
                let text = format!("{}/p2p/{}", p.addr, p.peer);
                out.emit(json!({ "Addr": p.addr, "Peer": p.peer, "Connections": p.connections }), || text)?;
            }
        }
        SwarmCommand::Connect { addrs } => {
            for a in addrs {
                for s in b.call(SwarmConnect { addrs: vec![a] })?.strings {
                    out.emit(json!({ "Result": s }), || s.clone())?;
                }
            }
        }
        SwarmCommand::Disconnect { peers } => {
            for p in peers {
                for s in b.call(SwarmDisconnect { peers: vec![p] })?.strings {
                    out.emit(json!({ "Result": s }), || s.clone())?;
                }
            }
        }
        SwarmCommand::Addrs => {
            for a in b.call(SwarmAddrsLocal { id: false })?.strings {
                out.emit(json!({ "Addr": a }), || a.clone())?;
            }
        }
    }
    Ok(())
}

/// `cairn dht …`.
pub fn dht(b: &Backend, cmd: DhtCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        DhtCommand::Findprovs { cid, num_providers } => {
            let req = DhtFindprovs { cid, num_providers: num_providers as usize };
            for event in b.call(req)?.0 {
                for r in event.responses {
                    let id = r.id;
                    out.emit(json!({ "ID": id }), || id.clone())?;
                }
            }
        }
        DhtCommand::Findpeer { peer } => {
            for event in b.call(DhtFindpeer { peer })?.0 {
                for a in event.responses.into_iter().flat_map(|r| r.addrs) {
                    out.emit(json!({ "Addr": a }), || a.clone())?;
                }
            }
        }
        DhtCommand::Provide { cids, recursive } => {
            for event in b.call(DhtProvide { cids, recursive })?.0 {
                let cid = event.extra;
                out.emit(json!({ "Provided": cid }), || format!("provided {cid}"))?;
            }
        }
    }
    Ok(())
}

/// `cairn bitswap …`.
pub fn bitswap(b: &Backend, cmd: BitswapCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        BitswapCommand::Stat => {
            let s = b.call(BitswapStat)?;
            let text = format!(
                "bitswap status\n\tblocks received: {}\n\tblocks sent: {}\n\tdata received: {}\n\tdata sent: {}\n\t\
                 dup blocks received: {}\n\tdup data received: {}\n\tunwanted blocks: {}\n\t\
                 protocol violations: {}\n\tpeers banned: {} ({} now)\n\twantlist [{} keys]\n\tpartners [{}]",
                s.blocks_received,
                s.blocks_sent,
                s.data_received,
                s.data_sent,
                s.dup_blks_received,
                s.dup_data_received,
                s.unwanted_blocks,
                s.protocol_violations,
                s.peers_banned,
                s.banned_now,
                s.wantlist.len(),
                s.peers.len(),
            );
            out.emit(serde_json::to_value(&s)?, || text)?;
        }
        BitswapCommand::Wantlist { peer } => {
            for k in b.call(BitswapWantlist { peer })?.keys {
                let cid = k.cid;
                out.emit(json!({ "Cid": cid }), || cid.clone())?;
            }
        }
    }
    Ok(())
}

/// `cairn stats …`.
pub fn stats(b: &Backend, cmd: StatsCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        StatsCommand::Bw => {
            let s = b.call(StatsBw)?;
            let text = format!(
                "Bandwidth (Bitswap blocks)\nTotalIn: {}\nTotalOut: {}\nRateIn: {}/s\nRateOut: {}/s",
                s.total_in, s.total_out, s.rate_in, s.rate_out
            );
            out.emit(serde_json::to_value(&s)?, || text)?;
        }
    }
    Ok(())
}

/// `cairn provide …`.
pub fn provide(b: &Backend, cmd: ProvideCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        ProvideCommand::Stat => {
            let s = b.call(ProvideStat)?;
            let text = format!(
                "Queued:      {}\nProvided:    {}\nFailed:      {}\nTotalKeys:   {}\nLastProvide: {}\nLagSeconds:  {}\nWalks:       {}",
                s.queued, s.provided, s.failed, s.total_keys, s.last_provide, s.lag_seconds, s.walks
            );
            out.emit(serde_json::to_value(&s)?, || text)?;
        }
    }
    Ok(())
}

/// `cairn shutdown`: ask the daemon to stop, then wait until it has: its `api` file is gone
/// and the repo lock is free (the store is flushed), so the next command can open the repo.
pub fn shutdown(repo: &Path, b: &Backend, out: &mut Printer) -> Result<()> {
    b.call(Shutdown).context("asking the daemon to shut down")?;
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
