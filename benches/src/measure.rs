//! Running a command and measuring it: wall time, CPU seconds (user + system, children
//! included) and peak RSS, from `wait4`'s resource usage.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// One measured run.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Sample {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident set size, MiB.
    pub peak_rss_mib: f64,
}

/// Run `cmd` to completion (stdout and stderr discarded unless it fails) and measure it.
pub fn run(cmd: &mut Command) -> Result<Sample> {
    Ok(run_capturing(cmd.stdout(std::process::Stdio::null()))?.0)
}

/// [`run`], also returning what the command printed on stdout.
pub fn run_capturing(cmd: &mut Command) -> Result<(Sample, String)> {
    let start = Instant::now();
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            text
        })
    });
    let (status, usage) = reap(child.id()).with_context(|| format!("waiting for {cmd:?}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{cmd:?} failed (status {status}): {err}");
    }
    let stdout = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    Ok((sample_of(&usage, wall_s), stdout))
}

/// Wait for child `pid` to end: its wait status and resource usage.
fn reap(pid: u32) -> Result<(libc::c_int, libc::rusage)> {
    let pid = pid as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid pointers.
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        bail!("wait4 failed for child {pid}");
    }
    Ok((status, usage))
}

/// A sample from a child's resource usage.
fn sample_of(usage: &libc::rusage, wall_s: f64) -> Sample {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Sample { wall_s, cpu_s: tv(usage.ru_utime) + tv(usage.ru_stime), peak_rss_mib: usage.ru_maxrss as f64 / 1024.0 }
}

/// Kill a long-running child (a server) and measure its whole life from `wait4`.
pub fn kill_and_reap(mut child: std::process::Child) -> Result<Sample> {
    let _ = child.kill();
    let (_, usage) = reap(child.id())?;
    Ok(sample_of(&usage, f64::NAN))
}

/// Median, min and max of a list of numbers.
pub fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (median, v[0], v[n - 1])
}
