//! `cairn follow …` and `cairn health`: following names, and the survival check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use cairn_node::health::Report;
use cairn_node::ops::follow::{FollowAdd, FollowLs, FollowRm, FollowRow, FollowStatus};
use cairn_node::ops::health::Health;

use crate::args::FollowCommand;
use crate::backend::Backend;
use crate::output::{self, size, Printer};

/// `--max-bytes`: `500MB`, `2GiB` or a number of bytes.
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    t.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| anyhow!("--max-bytes {text:?}: {e} (write 500MB, 2GiB or a number of bytes)"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// "3m ago" for a Unix time in the past.
fn ago(secs: u64) -> String {
    let d = Duration::from_secs(unix_now().saturating_sub(secs));
    format!("{} ago", humantime::format_duration(d))
}

/// The text form of one follow: a heading line and indented details.
fn describe(r: &FollowRow) -> String {
    let mut lines = vec![if r.label == r.target { r.target.clone() } else { format!("{} ({})", r.label, r.target) }];
    match &r.held {
        Some(h) => lines.push(format!(
            "  holding   {} (sequence {}, {} blocks, {})",
            h.cid,
            h.sequence,
            h.blocks,
            size(h.bytes)
        )),
        None => lines.push("  holding   nothing yet".into()),
    }
    if let Some(f) = &r.fetching {
        lines.push(format!(
            "  fetching  {} (sequence {}): {} blocks, {} so far",
            f.cid,
            f.sequence,
            f.blocks,
            size(f.bytes)
        ));
    }
    lines.push(match r.last_check {
        0 => "  checked   not yet".into(),
        t => format!("  checked   {}", ago(t)),
    });
    if let Some(eol) = r.record_expires {
        let left = Duration::from_secs(eol.saturating_sub(unix_now()) / 3600 * 3600);
        lines.push(format!("  record    expires in {}", humantime::format_duration(left)));
    }
    for s in &r.superseded {
        let left = Duration::from_secs(s.unpin_at.saturating_sub(unix_now()));
        lines.push(format!("  previous  {} (unpinned in {})", s.cid, humantime::format_duration(left)));
    }
    if let Some(e) = &r.last_error {
        lines.push(format!("  error     {e}"));
    }
    for w in &r.warnings {
        lines.push(format!("  warning   {w}"));
    }
    lines.join("\n")
}

/// Run a follow subcommand.
pub fn run(b: &Backend, cmd: FollowCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        FollowCommand::Add { target, label, max_bytes } => {
            let max_bytes = max_bytes.as_deref().map(parse_size).transpose()?;
            let r = b.call(FollowAdd { target, label, max_bytes })?;
            if matches!(b, Backend::Local(_)) {
                output::warn("no daemon running: the follow starts when `cairn daemon` does");
            }
            let text = format!("following {} as {:?} (versions up to {})", r.target, r.label, size(r.max_bytes));
            out.emit(serde_json::to_value(&r)?, || text)?;
        }
        FollowCommand::Ls => {
            for r in b.call(FollowLs)?.0 {
                let held = r.held.as_ref().map_or("-".to_string(), |h| h.cid.clone());
                let state = match (&r.fetching, &r.last_error) {
                    (_, Some(_)) => "error",
                    (Some(_), None) => "fetching",
                    (None, None) if r.held.is_some() => "ok",
                    _ => "waiting",
                };
                let text = format!("{} {} {} {}", r.target, r.label, held, state);
                out.emit(serde_json::to_value(&r)?, || text)?;
            }
        }
        FollowCommand::Rm { which, keep } => {
            for r in b.call(FollowRm { which, keep })?.0 {
                let text = format!("stopped following {}", r.target);
                out.emit(serde_json::to_value(&r)?, || text)?;
            }
        }
        FollowCommand::Status { which } => {
            let rows = b.call(FollowStatus { which })?.0;
            for r in &rows {
                out.emit(serde_json::to_value(r)?, || describe(r))?;
            }
            for r in &rows {
                for w in &r.warnings {
                    output::warn(w);
                }
            }
        }
    }
    Ok(())
}

/// The text form of a survival check.
fn verdict(r: &Report) -> String {
    let mut lines = vec![format!(
        "{}: {} blocks; {} independent hosts hold all of them; the weakest block has {}",
        r.root, r.blocks, r.holders, r.min_holders
    )];
    lines.push(format!("survives the loss of any single host: {}", if r.survives_single_loss { "yes" } else { "no" }));
    lines.push(format!(
        "candidates asked: {} ({} unreachable, {} without the root)",
        r.candidates, r.unreachable, r.without_root
    ));
    for h in &r.hosts {
        lines.push(format!("  {}  {} of {} blocks  {}", h.address, h.blocks, r.blocks, h.peers.join(" ")));
    }
    if r.min_holders < r.holders || !r.survives_single_loss {
        lines.push("weakest blocks:".into());
        for w in r.weakest.iter().take(5) {
            lines.push(format!("  {} held by {}", w.cid, w.holders));
        }
    }
    lines.join("\n")
}

/// `cairn health`.
pub fn health(b: &Backend, path: String, min: u32, out: &mut Printer) -> Result<()> {
    let Backend::Daemon(_) = b else {
        bail!("no daemon running: start one with `cairn daemon` (`health` asks live peers)");
    };
    let _waiter = b.waiter(&path);
    let r = b.call(Health { path, min })?;
    out.emit(serde_json::to_value(&r)?, || verdict(&r))?;
    for w in &r.warnings {
        output::warn(w);
    }
    if r.min_holders < min {
        bail!(
            "the weakest block has {} independent live holder(s), fewer than --min {min}: losing {} could lose content",
            r.min_holders,
            if r.min_holders <= 1 { "one host" } else { "a few hosts" }
        );
    }
    Ok(())
}
