//! Resilience scenarios: a DHT under churn, `kill -9` in the middle of a network fetch and of
//! GC, and a network split in two and healed. Each runs a short version here; set
//! `CAIRN_RESILIENCE_LONG=1` for the long one (see README "Resilience"):
//! `CAIRN_RESILIENCE_LONG=1 cargo test -p cairn-tests --test resilience -- --nocapture`.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::testnet::churn::{self, Plan};
use cairn_tests::netns::{self, Lab};
use cairn_tests::{bootstrap_to, peer_id, prng, set_config, sha256_file, swarm_addr, swarm_addr_on, Daemon, TestRepo};
use rand::{Rng, SeedableRng};

fn long() -> bool {
    std::env::var("CAIRN_RESILIENCE_LONG").is_ok_and(|v| v == "1")
}

/// Percentile `p` (0–100) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len().saturating_sub(1)) as f64 * p / 100.0).round() as usize).copied().unwrap_or(f64::NAN)
}

/// 30 % of the DHT gone at once after the keys were announced; the survivors still find the
/// provider of at least 99 % of the keys.
#[test]
fn lookups_route_around_a_third_of_the_dht_gone() -> Result<()> {
    let (nodes, keys) = if long() { (500, 1_000) } else { (60, 200) };
    let plan = Plan { nodes, keys, killed: 0.3, seed: 11 };
    // The testnet runs on a runtime of its own, watched from here: a testnet that stops making
    // progress fails the test with its last phase instead of holding the suite.
    let limit = Duration::from_secs(if long() { 3_600 } else { 300 });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        let _ = tx.send(runtime.map_err(anyhow::Error::from).and_then(|r| Ok(r.block_on(churn::run(plan))?)));
    });
    let report = match rx.recv_timeout(limit) {
        Ok(report) => report?,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            bail!("the churn testnet did not finish in {limit:?}; last phase: {}", churn::phase())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            bail!("the churn testnet's thread panicked; last phase: {}", churn::phase())
        }
    };
    let asked: Vec<f64> = report.asked.iter().map(|a| f64::from(*a)).collect();
    println!(
        "churn: {nodes} nodes, {} down: {}/{keys} found ({:.1} %), latency p50 {:.1} ms p95 {:.1} ms, \
         requests p50 {:.0} p95 {:.0}; set-up {:.1} s, announce {:.1} s, lookups {:.1} s",
        report.killed,
        report.found,
        report.success_rate() * 100.0,
        percentile(&report.latency_ms, 50.0),
        percentile(&report.latency_ms, 95.0),
        percentile(&asked, 50.0),
        percentile(&asked, 95.0),
        report.setup_secs,
        report.provide_secs,
        report.lookup_secs,
    );
    assert_eq!(report.killed, (nodes as f64 * 0.3).round() as usize);
    assert!(
        report.success_rate() >= 0.99,
        "only {}/{keys} lookups found the provider; missed: {:?}",
        report.found,
        report.misses
    );
    Ok(())
}

/// What must survive every kill: blocks added and pins made by commands that completed.
struct Kept {
    /// (CID, bytes) of completed adds.
    added: Vec<(String, Vec<u8>)>,
    /// (CID, sha256) of completed pins of fetched content.
    pinned: Vec<(String, String)>,
}

impl Kept {
    /// The repo verifies clean and every completed add and pin is intact (daemon stopped).
    fn check(&self, repo: &TestRepo, round: usize) -> Result<()> {
        let verify = repo.ok(&["repo", "verify", "--json"])?;
        if !verify.contains("\"Ok\":true") {
            bail!("round {round}: repo verify: {verify}");
        }
        repo.ok(&["pin", "verify"]).with_context(|| format!("round {round}: pin verify"))?;
        let pins = repo.ok(&["pin", "ls", "--type", "recursive"])?;
        for (cid, bytes) in &self.added {
            if !pins.contains(cid.as_str()) {
                bail!("round {round}: the pin of completed add {cid} is gone");
            }
            let out = repo.run(&["cat", cid])?;
            if !out.status.success() || &out.stdout != bytes {
                bail!("round {round}: completed add {cid} does not read back");
            }
        }
        for (cid, sum) in &self.pinned {
            if !pins.contains(cid.as_str()) {
                bail!("round {round}: completed pin {cid} is gone");
            }
            let out = repo.scratch("check.bin");
            let _ = fs::remove_file(&out);
            repo.ok(&["get", cid, "-o", out.to_str().unwrap()])?;
            if &sha256_file(&out)? != sum {
                bail!("round {round}: pinned {cid} reads back different bytes");
            }
        }
        Ok(())
    }
}

/// Kill the process `pid` with SIGKILL.
fn kill9(pid: u32) {
    // SAFETY: kill(2) on a child of this process.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// `kill -9` of a daemon while it fetches a fresh 8 MiB file from a peer (`pin add`), at a
/// random moment within the time a whole fetch takes, 20 times: every completed add and pin is
/// intact afterwards, the repo verifies, and the next daemon fetches again.
#[test]
fn kill_9_during_network_fetches_loses_nothing_completed() -> Result<()> {
    let rounds = if long() { 100 } else { 20 };
    let a = TestRepo::new()?;
    let _da = Daemon::start(&a)?;
    let a_addr = swarm_addr(&a)?;
    let b = TestRepo::new()?;
    bootstrap_to(&b, std::slice::from_ref(&a_addr))?;
    let mut kept = Kept { added: Vec::new(), pinned: Vec::new() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut full_fetch = None;
    let (mut cut, mut completed, mut midway) = (0, 0, 0);
    for round in 0..rounds {
        let mut db = Daemon::start(&b)?;
        // A completed add on the fetcher.
        let mine = format!("kept {round} {}", rng.gen::<u64>()).into_bytes();
        let p = b.scratch("mine.txt");
        fs::write(&p, &mine)?;
        let cid = b.ok(&["add", "-Q", p.to_str().unwrap()])?.trim().to_string();
        kept.added.push((cid, mine));
        // A fresh file on the provider.
        let data: Vec<u8> = (0..8 << 20).map(|_| rng.gen()).collect();
        let src = a.scratch("fresh.bin");
        fs::write(&src, &data)?;
        let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
        b.ok(&["swarm", "connect", &a_addr])?;
        let before = objects(&b)?;
        let started = Instant::now();
        let mut pin = b
            .cmd(&["pin", "add", &cid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let Some(whole) = full_fetch else {
            // First round: measure a whole fetch, then stop the daemon cleanly.
            if !pin.wait()?.success() {
                bail!("the calibration fetch failed");
            }
            full_fetch = Some(started.elapsed());
            kept.pinned.push((cid, sha256_file(&src)?));
            db.signal("TERM")?;
            db.wait_exit(Duration::from_secs(30))?;
            kept.check(&b, round)?;
            continue;
        };
        let at = whole.mul_f64(rng.gen_range(0.05..1.0));
        while started.elapsed() < at && pin.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        kill9(db.pid());
        let ok = pin.wait()?.success();
        drop(db);
        if ok {
            // The daemon answered before it died: the pin is durable.
            completed += 1;
            kept.pinned.push((cid, sha256_file(&src)?));
        } else {
            cut += 1;
        }
        kept.check(&b, round)?;
        // Killed with part of the file stored (8 MiB: 32 leaves and a root).
        let held = objects(&b)?;
        if held > before && held < before + 33 {
            midway += 1;
        }
    }
    println!(
        "{rounds} rounds: {cut} fetches cut by kill -9 ({midway} with part of the file stored), {completed} \
         completed first; whole fetch {full_fetch:?}"
    );
    assert!(cut >= rounds / 2, "only {cut} of {rounds} kills landed during a fetch");
    assert!(midway >= 1, "no kill landed while blocks were arriving");
    // The fetcher still fetches after all that.
    let _db = Daemon::start(&b)?;
    let data = prng(1 << 20);
    let src = a.scratch("last.bin");
    fs::write(&src, &data)?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    b.ok(&["swarm", "connect", &a_addr])?;
    b.ok(&["pin", "add", &cid])?;
    assert_eq!(b.run(&["cat", &cid])?.stdout, data);
    Ok(())
}

/// `kill -9` of `cairn repo gc` at a random moment while it removes thousands of unpinned
/// blocks, 20 times: every pinned add reads back, the repo verifies, and the next GC finishes
/// the job.
#[test]
fn kill_9_during_gc_loses_nothing_pinned() -> Result<()> {
    let rounds = if long() { 100 } else { 20 };
    let repo = TestRepo::new()?;
    let mut kept = Kept { added: Vec::new(), pinned: Vec::new() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let mut full_gc: Option<Duration> = None;
    let (mut cut, mut midway) = (0, 0);
    for round in 0..rounds {
        // Pinned content (with small chunks, so it shares the store with the garbage).
        let mine: Vec<u8> = (0..64 << 10).map(|_| rng.gen()).collect();
        let p = repo.scratch("mine.bin");
        fs::write(&p, &mine)?;
        let cid = repo.ok(&["add", "-Q", "--chunker", "size-1024", p.to_str().unwrap()])?.trim().to_string();
        kept.added.push((cid, mine));
        // Garbage: 4 MiB in 1 KiB blocks, not pinned.
        let junk: Vec<u8> = (0..4 << 20).map(|_| rng.gen()).collect();
        let j = repo.scratch("junk.bin");
        fs::write(&j, &junk)?;
        repo.ok(&["add", "-Q", "--pin=false", "--chunker", "size-1024", j.to_str().unwrap()])?;
        let before = objects(&repo)?;
        let started = Instant::now();
        let mut gc = repo
            .cmd(&["repo", "gc"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        match full_gc {
            None => {
                if !gc.wait()?.success() {
                    bail!("the calibration GC failed");
                }
                full_gc = Some(started.elapsed());
            }
            Some(whole) => {
                let at = whole.mul_f64(rng.gen_range(0.05..1.0));
                while started.elapsed() < at && gc.try_wait()?.is_none() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                if gc.try_wait()?.is_none() {
                    cut += 1;
                }
                kill9(gc.id());
                let _ = gc.wait();
            }
        }
        kept.check(&repo, round)?;
        // Killed halfway through its sweep: some garbage gone, some left.
        let left = objects(&repo)?;
        if left > 65 * (round as u64 + 1) && left < before {
            midway += 1;
        }
    }
    println!(
        "{rounds} rounds: {cut} GCs cut by kill -9, {midway} of them midway through the sweep; whole GC {full_gc:?}"
    );
    assert!(cut >= rounds / 2, "only {cut} of {rounds} kills landed during GC");
    assert!(midway >= 1, "no kill landed while GC was removing blocks");
    // A GC after all that removes the garbage and keeps every pin.
    repo.ok(&["repo", "gc"])?;
    kept.check(&repo, rounds)?;
    // 65 blocks per pinned add (64 leaves and a root), nothing else.
    assert_eq!(objects(&repo)?, 65 * rounds as u64);
    Ok(())
}

/// Blocks in a repo (`repo stat`).
fn objects(repo: &TestRepo) -> Result<u64> {
    let stat: serde_json::Value = serde_json::from_str(&repo.ok(&["repo", "stat", "--json"])?)?;
    stat["NumObjects"].as_u64().context("NumObjects")
}

/// Eight nodes on one switch (a bridge in a namespace of the test's own), split 4|4 by moving
/// one side's ports to a second bridge, then healed by moving them back. While split, each
/// side adds and serves its own file and cannot reach the other's; once healed, a node fetches
/// what only the other side held, without any restart.
#[test]
fn a_network_split_in_two_heals_without_restarts() -> Result<()> {
    if let Some(why) = netns::unavailable() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let cycles = if long() { 4 } else { 1 };
    // The long version keeps the network split for a minute: queries across the cut time out
    // and the DHT routes around the missing half before it comes back.
    let split_for = if long() { Duration::from_secs(60) } else { Duration::from_secs(5) };
    let mut lab = Lab::new("split");
    let switch = lab.ns("sw")?;
    lab.bridge(&switch, "br0")?;
    lab.bridge(&switch, "br1")?;
    let mut repos = Vec::new();
    for i in 0..8 {
        let ns = lab.ns(&format!("h{i}"))?;
        lab.wire(&ns, "eth0", &format!("10.60.0.{}/24", 10 + i), &switch, "br0")?;
        let listen = format!("/ip4/10.60.0.{}/tcp/4001", 10 + i);
        let r = TestRepo::new()?.in_netns(&ns);
        set_config(&r, "\"/ip4/127.0.0.1/tcp/0\"", &format!("{listen:?}"))?;
        set_config(&r, "announce = []", &format!("announce = [{listen:?}]"))?;
        repos.push(r);
    }
    // Ports port1..port8 on the switch are h0..h7's; side B is h4..h7.
    let side_b_to = |br: &str| -> Result<()> {
        for port in 5..=8 {
            let out = lab.exec(&switch, "ip").args(["link", "set", &format!("port{port}"), "master", br]).output()?;
            if !out.status.success() {
                bail!("moving port{port} to {br}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(())
    };
    // h0 and h4 first; everyone else bootstraps through both.
    let mut daemons = Vec::new();
    daemons.push(Daemon::start(&repos[0])?);
    daemons.push(Daemon::start(&repos[4])?);
    let hubs = [swarm_addr_on(&repos[0], "/ip4/10.60.")?, swarm_addr_on(&repos[4], "/ip4/10.60.")?];
    repos[0].ok(&["swarm", "connect", &hubs[1]])?;
    for i in [1, 2, 3, 5, 6, 7] {
        bootstrap_to(&repos[i], &hubs)?;
        daemons.push(Daemon::start(&repos[i])?);
    }
    let ids: Vec<String> = repos.iter().map(peer_id).collect::<Result<_>>()?;
    for r in &repos {
        cairn_tests::wait_for(Duration::from_secs(60), || {
            let peers = r.ok(&["swarm", "peers"]).ok()?;
            (peers.lines().count() >= 2).then_some(())
        })?;
    }

    let mut seed = 0u64;
    let mut file = |r: &TestRepo, what: &str| -> Result<(String, Vec<u8>)> {
        seed += 1;
        let data: Vec<u8> = prng(300_000 + seed as usize).into_iter().rev().collect();
        let p = r.scratch(&format!("{what}.bin"));
        fs::write(&p, &data)?;
        Ok((r.ok(&["add", "-Q", p.to_str().unwrap()])?.trim().to_string(), data))
    };
    for cycle in 0..cycles {
        side_b_to("br1")?;
        let split_at = Instant::now();
        let (fa, da) = file(&repos[1], "a")?;
        let (fb, db) = file(&repos[5], "b")?;
        // Each side serves what it holds.
        assert_eq!(
            repos[2].run(&["--timeout", "60s", "cat", &fa])?.stdout,
            da,
            "cycle {cycle}: side A fetches A's file"
        );
        assert_eq!(
            repos[6].run(&["--timeout", "60s", "cat", &fb])?.stdout,
            db,
            "cycle {cycle}: side B fetches B's file"
        );
        // Nothing crosses the cut.
        let out = repos[3].run(&["--timeout", "5s", "cat", &fb])?;
        assert!(!out.status.success() && out.stdout.is_empty(), "cycle {cycle}: B's file reached side A while split");
        let out = repos[7].run(&["--timeout", "5s", "cat", &fa])?;
        assert!(!out.status.success() && out.stdout.is_empty(), "cycle {cycle}: A's file reached side B while split");
        if let Some(rest) = split_for.checked_sub(split_at.elapsed()) {
            std::thread::sleep(rest);
        }
        side_b_to("br0")?;
        // Healed: each side fetches what only the other held, from nodes that were never
        // restarted (found through the DHT or a reconnected neighbour).
        let t = Instant::now();
        assert_eq!(repos[3].run(&["--timeout", "90s", "cat", &fb])?.stdout, db, "cycle {cycle}: A fetches B's file");
        assert_eq!(repos[7].run(&["--timeout", "90s", "cat", &fa])?.stdout, da, "cycle {cycle}: B fetches A's file");
        println!("cycle {cycle}: split {:?}, healed fetches took {:?}", split_at.elapsed() - t.elapsed(), t.elapsed());
        // Connections that went dead during the split are closed when their pings fail, so the
        // fetches do not wait behind TCP's backed-off retransmissions (47 s per cycle before).
        assert!(t.elapsed() < Duration::from_secs(30), "cycle {cycle}: healing took {:?}", t.elapsed());
    }
    // Every daemon is the one started at the beginning.
    for d in &mut daemons {
        assert!(d.wait_exit(Duration::from_millis(1)).is_err(), "daemon {} exited during the test", d.pid());
    }
    // And they still know each other.
    for (r, id) in repos.iter().zip(&ids) {
        let peers = r.ok(&["swarm", "peers"])?;
        assert!(peers.lines().count() >= 2, "{id} lost its peers: {peers}");
    }
    drop(daemons);
    Ok(())
}
