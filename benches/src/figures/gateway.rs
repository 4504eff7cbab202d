//! The gateway: requests per second for a cached 4 KiB and 1 MiB file under `wrk`, against
//! the same bytes served from memory by a bare axum/hyper server on the same machine (the
//! HTTP ceiling of this stack); and streaming a large file through the gateway against
//! `cairn cat` of the same file, in the same run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::daemon::Daemon;
use super::{random_file, Ctx};
use crate::measure;
use crate::report::Row;

/// Requests per second `wrk` measured on `url` (one thread, 16 connections).
fn wrk(url: &str, secs: u64) -> Result<f64> {
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{secs}s"), url])
        .output()
        .context("running wrk (install it with `apt-get install wrk`, or run scripts/install-deps.sh)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk on {url} failed or saw errors: {text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {text}"))
}

/// A bare HTTP server (this runner's hidden `http-ceiling` command) serving `file` from memory.
struct Ceiling {
    child: std::process::Child,
    url: String,
}

impl Ceiling {
    fn start(file: &Path) -> Result<Ceiling> {
        let me = std::env::current_exe()?;
        let mut child = Command::new(me).arg("http-ceiling").arg(file).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("ceiling stdout")?).read_line(&mut line)?;
        let addr = line.trim().strip_prefix("ready ").with_context(|| format!("unexpected ceiling line {line:?}"))?;
        Ok(Ceiling { url: format!("http://{addr}/"), child })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve `file`'s bytes from memory on 127.0.0.1 (any port) until killed; prints `ready ADDR`.
pub async fn serve_ceiling(file: &Path) -> Result<()> {
    let data = bytes::Bytes::from(std::fs::read(file)?);
    let app = axum::Router::new().fallback(move || {
        let data = data.clone();
        async move { data }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("ready {}", listener.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Measure and return the rows.
pub fn run(ctx: &Ctx) -> Result<Vec<Row>> {
    let d = Daemon::start(&ctx.cairn, &ctx.work.join("gateway-repo"))?;
    let gw = d.gateway()?;
    let secs = if ctx.quick { 2 } else { 10 };
    let mut rows = Vec::new();
    for (label, size) in [("4 KiB", 4096u64), ("1 MiB", 1 << 20)] {
        let file = ctx.work.join(format!("gateway-{size}.bin"));
        random_file(&file, size)?;
        let cid = d.cli(&["add", "-Q", file.to_str().context("path")?])?.trim().to_string();
        let url = format!("{gw}/ipfs/{cid}");
        let ceiling = Ceiling::start(&file)?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ctx.runs {
            ours.push(wrk(&url, secs)?);
            theirs.push(wrk(&ceiling.url, secs)?);
        }
        rows.push(Row::of(
            format!("gateway {label} cached file"),
            "req/s",
            measure::stats(&ours),
            "axum from memory",
            Some(measure::stats(&theirs).0),
            ctx.runs,
        ));
    }

    let bytes: u64 = if ctx.quick { 64 << 20 } else { 1 << 30 };
    let label = if ctx.quick { "64 MiB" } else { "1 GiB" };
    let file = ctx.work.join("gateway-stream.bin");
    random_file(&file, bytes)?;
    let cid = d.cli(&["add", "-Q", "--progress=false", file.to_str().context("path")?])?.trim().to_string();
    let (mut ours, mut cat) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let t = Instant::now();
        measure::run(Command::new("curl").args(["-sS", "--fail", "-o", "/dev/null", &format!("{gw}/ipfs/{cid}")]))?;
        ours.push(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        measure::run(Command::new(&ctx.cairn).arg("--repo").arg(&d.repo).args(["cat", &cid]))?;
        cat.push(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    rows.push(Row::of(
        format!("gateway stream {label}"),
        "MB/s",
        measure::stats(&ours),
        "cairn cat",
        Some(measure::stats(&cat).0),
        ctx.runs,
    ));
    Ok(rows)
}
