//! Fetching from four seeders at once against fetching from one, over links limited with `tc`:
//! each seeder runs in its own network namespace, joined to this one by a veth pair whose
//! seeder side sends at most [`LINK_RATE`] (token bucket). The fetcher (in this namespace)
//! connects to the seeders directly and `cairn cat`s the file; the figure is the aggregate
//! MB/s with four seeders, its anchor the same fetch from one seeder in the same run.
//! Needs root (namespaces, veth, tc); the namespaces and links are removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::daemon::Daemon;
use super::{random_file, Ctx};
use crate::measure;
use crate::report::Row;

/// Egress limit of each seeder's link.
const LINK_RATE: &str = "400mbit";

/// Seeders in the multi-source run.
const SEEDERS: usize = 4;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One seeder's namespace and link; removed on drop.
struct Link {
    ns: String,
    host_if: String,
}

impl Link {
    fn create(i: usize) -> Result<Link> {
        let tag = std::process::id() % 10_000;
        let ns = format!("cairn-bench-{tag}-{i}");
        let (host_if, ns_if) = (format!("cb{tag}h{i}"), format!("cb{tag}s{i}"));
        let _ = ip(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns])?;
        let link = Link { ns: ns.clone(), host_if: host_if.clone() };
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &ns])?;
        ip(&["addr", "add", &format!("10.77.{i}.1/24"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&["-n", &ns, "addr", "add", &format!("10.77.{i}.2/24"), "dev", &ns_if])?;
        ip(&["-n", &ns, "link", "set", &ns_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let tc = Command::new("ip")
            .args(["netns", "exec", &ns, "tc", "qdisc", "add", "dev", &ns_if, "root", "tbf", "rate", LINK_RATE])
            .args(["burst", "256kb", "latency", "50ms"])
            .output()
            .context("running tc")?;
        if !tc.status.success() {
            bail!("tc on {ns_if}: {}", String::from_utf8_lossy(&tc.stderr));
        }
        Ok(link)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

/// A seeder daemon inside its namespace, listening on its veth address.
struct Seeder {
    child: Child,
    ns: String,
    repo: PathBuf,
    cairn: PathBuf,
    addr: String,
}

impl Seeder {
    fn start(cairn: &Path, link: &Link, i: usize, repo: &Path) -> Result<Seeder> {
        let ns = link.ns.clone();
        let run = |args: &[&str]| -> Result<String> {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns])
                .arg(cairn)
                .arg("--repo")
                .arg(repo)
                .args(args)
                .output()?;
            if !out.status.success() {
                bail!("cairn {args:?} in {ns}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(String::from_utf8(out.stdout)?)
        };
        run(&["init", "--profile", "local"])?;
        let config = repo.join("config.toml");
        let text = std::fs::read_to_string(&config)?;
        std::fs::write(&config, text.replace("/ip4/127.0.0.1/tcp/0", &format!("/ip4/10.77.{i}.2/tcp/4001")))?;
        let log = std::fs::File::create(repo.with_extension("log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(cairn)
            .arg("--repo")
            .arg(repo)
            .arg("daemon")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let start = Instant::now();
        while !std::fs::read_to_string(repo.with_extension("log"))?.contains("Daemon is ready") {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("seeder {i} did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let id: serde_json::Value = serde_json::from_str(&run(&["id", "--json"])?)?;
        let peer = id["ID"].as_str().context("ID")?;
        Ok(Seeder {
            child,
            ns,
            repo: repo.to_path_buf(),
            cairn: cairn.to_path_buf(),
            addr: format!("/ip4/10.77.{i}.2/tcp/4001/p2p/{peer}"),
        })
    }

    fn add(&self, file: &Path) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.cairn)
            .arg("--repo")
            .arg(&self.repo)
            .args(["add", "-Q", "--progress=false"])
            .arg(file)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("add on a seeder failed");
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// One fetch of `cid` from the first `n` seeders into a fresh fetcher: MB/s.
fn fetch_from(ctx: &Ctx, seeders: &[Seeder], n: usize, cid: &str, bytes: u64, run: usize) -> Result<f64> {
    let dir = ctx.work.join(format!("multi-fetcher-{n}-{run}"));
    let fetcher = Daemon::start(&ctx.cairn, &dir)?;
    for s in &seeders[..n] {
        fetcher.cli(&["swarm", "connect", &s.addr])?;
    }
    let t = Instant::now();
    measure::run(Command::new(&ctx.cairn).arg("--repo").arg(&fetcher.repo).args(["cat", cid]))?;
    let mbps = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
    drop(fetcher);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(mbps)
}

/// Measure and return the rows (none, with a note, where namespaces are not available).
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let bytes: u64 = if ctx.quick { 32 << 20 } else { 256 << 20 };
    let label = if ctx.quick { "32 MiB" } else { "256 MiB" };
    let links = match (1..=SEEDERS).map(Link::create).collect::<Result<Vec<_>>>() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("multi-seeder figure skipped: cannot build network namespaces here ({e:#})");
            return Ok(Vec::new());
        }
    };
    let file = ctx.work.join("multi-input.bin");
    random_file(&file, bytes)?;
    let mut seeders = Vec::new();
    for (i, link) in links.iter().enumerate() {
        seeders.push(Seeder::start(&ctx.cairn, link, i + 1, &ctx.work.join(format!("multi-seeder-{}", i + 1)))?);
    }
    let mut cid = String::new();
    for s in &seeders {
        cid = s.add(&file)?;
    }
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for run in 0..ctx.runs {
        one.push(fetch_from(ctx, &seeders, 1, &cid, bytes, run)?);
        many.push(fetch_from(ctx, &seeders, SEEDERS, &cid, bytes, run)?);
    }
    drop(seeders);
    drop(links);
    let v = measure::stats(&many);
    let anchor = measure::stats(&one).0;
    Ok(vec![Row {
        figure: format!("fetch {label} from {SEEDERS} seeders ({LINK_RATE} each)"),
        unit: "MB/s".into(),
        cairn: v.0,
        cairn_range: (v.1, v.2),
        anchor_name: "from 1 seeder".into(),
        anchor: Some(anchor),
        ratio: Some(v.0 / anchor),
        runs: ctx.runs,
    }])
}
