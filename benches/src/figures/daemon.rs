//! A `cairn daemon` run by a benchmark: started on a fresh `local` repo, driven through the
//! CLI, measured through /proc, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::measure;

/// A `cairn daemon` for a benchmark, stopped (SIGTERM) on drop.
pub struct Daemon {
    child: Child,
    /// The repo.
    pub repo: PathBuf,
    cairn: PathBuf,
    /// The network namespace it runs in (its CLI commands run there too).
    netns: Option<String>,
}

impl Daemon {
    /// Init a `local` repo at `repo` and start its daemon; waits until it is ready.
    pub fn start(cairn: &Path, repo: &Path) -> Result<Daemon> {
        Daemon::start_in(cairn, repo, "local", None, |c| c)
    }

    /// Init a `profile` repo at `repo`, rewrite its `config.toml` with `edit`, and start its
    /// daemon inside network namespace `netns` (if any); waits until it is ready.
    pub fn start_in(
        cairn: &Path,
        repo: &Path,
        profile: &str,
        netns: Option<&str>,
        edit: impl FnOnce(String) -> String,
    ) -> Result<Daemon> {
        measure::run(Command::new(cairn).arg("--repo").arg(repo).args(["init", "--profile", profile]))?;
        let cfg = repo.join("config.toml");
        std::fs::write(&cfg, edit(std::fs::read_to_string(&cfg)?))?;
        let log = std::fs::File::create(repo.with_extension("log"))?;
        let child =
            command(cairn, netns).arg("--repo").arg(repo).arg("daemon").stdout(log.try_clone()?).stderr(log).spawn()?;
        let d = Daemon { child, repo: repo.to_path_buf(), cairn: cairn.to_path_buf(), netns: netns.map(String::from) };
        let start = Instant::now();
        while !std::fs::read_to_string(repo.with_extension("log"))?.contains("Daemon is ready") {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("daemon on {} did not start", repo.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(d)
    }

    /// A `cairn --repo <repo>` command for this daemon (inside its namespace), for callers
    /// that handle the output themselves.
    pub fn command(&self) -> Command {
        let mut c = command(&self.cairn, self.netns.as_deref());
        c.arg("--repo").arg(&self.repo);
        c
    }

    /// Run a CLI command against the daemon; its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.command().args(args).output()?;
        if !out.status.success() {
            bail!("cairn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Its TCP swarm address with peer ID.
    pub fn addr(&self) -> Result<String> {
        let id: serde_json::Value = serde_json::from_str(&self.cli(&["id", "--json"])?)?;
        let peer = id["ID"].as_str().context("ID")?.to_string();
        let a = id["Addresses"].as_array().context("Addresses")?;
        let a = a.iter().filter_map(|a| a.as_str()).find(|a| a.contains("/tcp/")).context("a TCP address")?;
        Ok(if a.contains("/p2p/") { a.to_string() } else { format!("{a}/p2p/{peer}") })
    }

    /// The gateway's URL.
    pub fn gateway(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.repo.join("gateway"))?.trim().to_string())
    }

    /// Resident memory now, MiB (VmRSS).
    pub fn rss_now(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .context("VmRSS")?;
        Ok(kb / 1024.0)
    }

    /// CPU seconds used so far and peak RSS in MiB, from /proc.
    pub fn usage(&self) -> Result<(f64, f64)> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks = 100.0; // USER_HZ on Linux
        let cpu = (fields[11].parse::<f64>()? + fields[12].parse::<f64>()?) / ticks;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        Ok((cpu, hwm / 1024.0))
    }
}

/// `cairn`, run inside `netns` when given.
fn command(cairn: &Path, netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(cairn);
            c
        }
        None => Command::new(cairn),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}
