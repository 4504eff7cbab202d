//! Home nodes behind NAT, in network namespaces this figure builds (root and iproute2,
//! nftables and Debian's miniupnpd needed; nothing leaves the namespaces):
//!
//! - the resident memory of an idle `home` daemon behind a UPnP router, with everything a
//!   home node runs on (relay client, AutoNAT, mDNS, UPnP, hole punching), bootstrapped
//!   through the lab's relay; its anchor is the goal for a small home box;
//! - one file fetched from home node A by home node B: both on the public bridge (no NAT,
//!   the anchor), behind NATs after they hole-punched a direct connection (TCP), and behind
//!   NATs through a volunteer relay without circuit limits.
//!
//! The public bridge uses a global-looking range (`11.60.0.0/24`, routed nowhere else):
//! miniupnpd maps nothing behind a private WAN address.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_tests::netns::{self, Lab};

use super::daemon::Daemon;
use super::Ctx;
use crate::measure;
use crate::report::Row;

/// The memory goal for an idle home daemon, MiB.
const GOAL_MIB: f64 = 40.0;

/// How B reaches A.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Path {
    /// Both on the public bridge.
    Direct,
    /// Behind NATs, hole-punched through a relay with kubo's limits.
    Punched,
    /// Behind NATs, through a relay without limits.
    Relayed,
}

/// Measure and return the rows (none, with a note, when namespaces are unavailable).
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    if let Some(why) = netns::unavailable() {
        eprintln!("nat: skipped: {why}");
        return Ok(Vec::new());
    }
    let mut rows = vec![idle(ctx)?];
    let size: usize = if ctx.quick { 8 << 20 } else { 64 << 20 };
    let direct = fetch(ctx, Path::Direct, size)?;
    let (dm, _, _) = direct;
    let mib = size >> 20;
    rows.push(Row::of(format!("fetch {mib} MiB home→home, no NAT"), "MB/s", direct, "", None, ctx.runs));
    for (path, what) in
        [(Path::Punched, "behind NATs, hole-punched (TCP)"), (Path::Relayed, "behind NATs, via unlimited relay")]
    {
        let v = fetch(ctx, path, size)?;
        rows.push(Row::of(format!("fetch {mib} MiB home→home, {what}"), "MB/s", v, "no NAT", Some(dm), ctx.runs));
    }
    Ok(rows)
}

/// A config rewrite: replace `from` with `to` (which must be there).
fn set(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the config");
    text.replacen(from, to, 1)
}

/// Start the lab's relay on the public bridge (`unlimited`: no circuit byte limit); returns it
/// and its address.
fn relay(ctx: &Ctx, lab: &mut Lab, public: &str, unlimited: bool, tag: &str) -> Result<(Daemon, String)> {
    let ns = lab.ns("relay")?;
    lab.wire(&ns, "eth0", "11.60.0.10/24", public, "br0")?;
    let listen = "/ip4/11.60.0.10/tcp/4001";
    let d = Daemon::start_in(&ctx.cairn, &ctx.work.join(format!("nat-relay-{tag}")), "local", Some(&ns), |c| {
        let c = set(c, "\"/ip4/127.0.0.1/tcp/0\"", &format!("{listen:?}"));
        let c = set(c, "announce = []", &format!("announce = [{listen:?}]"));
        let c = set(c, "relay_service = false", "relay_service = true");
        if unlimited {
            set(c, "relay_max_circuit_bytes = 131072", "relay_max_circuit_bytes = 0")
        } else {
            c
        }
    })?;
    let addr = format!("{listen}/p2p/{}", peer(&d)?);
    Ok((d, addr))
}

fn peer(d: &Daemon) -> Result<String> {
    let id: serde_json::Value = serde_json::from_str(&d.cli(&["id", "--json"])?)?;
    Ok(id["ID"].as_str().context("ID")?.to_string())
}

/// RSS of an idle `home` daemon behind a UPnP router, 60 s (5 s with `--quick`) after its
/// port was mapped.
fn idle(ctx: &Ctx) -> Result<Row> {
    let wait = Duration::from_secs(if ctx.quick { 5 } else { 60 });
    let mut rss = Vec::new();
    for run in 0..ctx.runs {
        let mut lab = Lab::new("bench-idle");
        let public = lab.ns("pub")?;
        lab.bridge(&public, "br0")?;
        let (_relay, raddr) = relay(ctx, &mut lab, &public, false, &format!("idle{run}"))?;
        let (router, host) = lab.home(&public, "a", "11.60.0.2", "192.168.10")?;
        let scratch = ctx.work.join(format!("nat-idle-{run}"));
        std::fs::create_dir_all(&scratch)?;
        let _igd = lab.upnp(&router, "wan", "lan", "192.168.10.0/24", &scratch)?;
        let boot = format!("bootstrap = [{raddr:?}]");
        let d = Daemon::start_in(&ctx.cairn, &scratch.join("repo"), "home", Some(&host), |c| {
            // Only the lab's relay: the public bootstrap list would go nowhere here anyway.
            let start = c.find("bootstrap = [").expect("bootstrap list");
            let end = start + c[start..].find(']').expect("list end") + 1;
            format!("{}{boot}{}", &c[..start], &c[end..])
        })?;
        let start = Instant::now();
        loop {
            let v: serde_json::Value = serde_json::from_str(&d.cli(&["id", "--json"])?)?;
            if v["Connections"]["PortMapping"] == "mapped" {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the home daemon never mapped its port: {}", v["Connections"]);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(wait);
        rss.push(d.rss_now()?);
    }
    let v = measure::stats(&rss);
    Ok(Row::of(
        format!("idle home daemon RSS (relay client, AutoNAT, mDNS, UPnP) after {} s", wait.as_secs()),
        "MiB",
        v,
        &format!("goal < {GOAL_MIB}"),
        Some(GOAL_MIB),
        ctx.runs,
    ))
}

/// Fetch a fresh `size`-byte file from A on B `ctx.runs` times over `path`; (median, min,
/// max) MB/s.
fn fetch(ctx: &Ctx, path: Path, size: usize) -> Result<(f64, f64, f64)> {
    let tag = format!("{path:?}").to_lowercase();
    let mut lab = Lab::new(&format!("bench-{tag}"));
    let public = lab.ns("pub")?;
    lab.bridge(&public, "br0")?;
    let (_relay, raddr) = relay(ctx, &mut lab, &public, path == Path::Relayed, &tag)?;
    let (na, nb, ia, ib) = match path {
        Path::Direct => {
            let (a, b) = (lab.ns("a")?, lab.ns("b")?);
            lab.wire(&a, "eth0", "11.60.0.2/24", &public, "br0")?;
            lab.wire(&b, "eth0", "11.60.0.3/24", &public, "br0")?;
            (a, b, "11.60.0.2", "11.60.0.3")
        }
        _ => {
            let (_, a) = lab.home(&public, "a", "11.60.0.2", "192.168.10")?;
            let (_, b) = lab.home(&public, "b", "11.60.0.3", "192.168.20")?;
            (a, b, "192.168.10.2", "192.168.20.2")
        }
    };
    let home = |ns: &str, ip: &str, who: &str| {
        let boot = format!("bootstrap = [{raddr:?}]");
        Daemon::start_in(&ctx.cairn, &ctx.work.join(format!("nat-{tag}-{who}")), "local", Some(ns), |c| {
            let c = set(c, "\"/ip4/127.0.0.1/tcp/0\"", &format!("\"/ip4/{ip}/tcp/4001\""));
            let c = set(c, "bootstrap = []", &boot);
            let c = set(c, "dht_mode = \"server\"", "dht_mode = \"client\"");
            let c = set(c, "relay_reservations = 0", "relay_reservations = 1");
            if path == Path::Punched {
                set(c, "hole_punching = false", "hole_punching = true")
            } else {
                c
            }
        })
    };
    let a = home(&na, ia, "a")?;
    if path != Path::Direct {
        wait(Duration::from_secs(30), "A's relay reservation", || {
            Ok(a.cli(&["swarm", "addrs"])?.contains("/p2p-circuit"))
        })?;
    }
    let b = home(&nb, ib, "b")?;
    let a_id = peer(&a)?;
    // Warm up: B finds A through the DHT and connects (and, for Punched, hole-punches).
    let warm = add(ctx, &a, &format!("{tag}-warm"), 256 << 10)?;
    fetch_once(&b, &warm)?;
    let want_direct = path != Path::Relayed;
    wait(Duration::from_secs(30), "B's connection to A", || {
        let peers = b.cli(&["swarm", "peers"])?;
        Ok(peers.lines().any(|l| l.contains(&a_id) && l.contains("/p2p-circuit") != want_direct))
    })?;
    let mut rates = Vec::new();
    for run in 0..ctx.runs {
        let cid = add(ctx, &a, &format!("{tag}-{run}"), size)?;
        let took = fetch_once(&b, &cid)?;
        rates.push(size as f64 / took.as_secs_f64() / 1e6);
    }
    Ok(measure::stats(&rates))
}

/// Add `size` random bytes on `d`; the CID.
fn add(ctx: &Ctx, d: &Daemon, name: &str, size: usize) -> Result<String> {
    let f = ctx.work.join(format!("nat-{name}.bin"));
    std::fs::write(&f, super::random_bytes(size))?;
    let cid = d.cli(&["add", "-Q", f.to_str().context("path")?])?.trim().to_string();
    std::fs::remove_file(&f)?;
    Ok(cid)
}

/// `cat` a CID on `d` into nothing; how long it took.
fn fetch_once(d: &Daemon, cid: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = d.command().args(["--timeout", "120s", "cat", cid]).stdout(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("cat {cid}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(start.elapsed())
}

/// Poll `ok` every 200 ms until it holds, for at most `limit`.
fn wait(limit: Duration, what: &str, mut ok: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !ok()? {
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
