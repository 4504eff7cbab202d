//! Saying what a command waits for, and giving up after `--timeout`.
//!
//! A `cat`, `get` or `pin add` through the daemon can wait on the network for a block nobody
//! has sent yet. [`Waiter`] watches the bytes arriving; after [`QUIET`] without progress it
//! asks the daemon's `bitswap/stat` and prints on stderr what the node waits for (blocks
//! wanted, peers asked, blocks received so far), then again every [`REPEAT`]. The last such
//! line is also what `--timeout` reports when it ends the command.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cairn_node::ops::stats::BitswapStat;

use crate::client::Api;
use crate::output::note;

/// Silence after which the first "waiting for" line is printed.
const QUIET: Duration = Duration::from_secs(2);

/// Time between two "waiting for" lines.
const REPEAT: Duration = Duration::from_secs(5);

/// How often the watcher looks at the progress counter.
const TICK: Duration = Duration::from_millis(200);

/// What the command last said it waits for (for the `--timeout` message).
static STATUS: Mutex<String> = Mutex::new(String::new());

/// Watches one long call; stops watching when dropped.
pub struct Waiter {
    progress: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Waiter {
    /// Start watching a call to the daemon at `api` about `what` (`bafy…`, a path).
    pub fn start(api: &Api, what: &str) -> Waiter {
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s, what, api) = (progress.clone(), stop.clone(), what.to_string(), api.clone());
        let _ = thread::Builder::new().name("cairn-waiter".into()).spawn(move || watch(&api, &what, &p, &s));
        Waiter { progress, stop }
    }

    /// A counter to bump as bytes (or entries) arrive.
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(api: &Api, what: &str, progress: &AtomicU64, stop: &AtomicBool) {
    let start = Instant::now();
    let (mut seen, mut last_change, mut last_said) = (0u64, Instant::now(), None::<Instant>);
    // Blocks the node received, as last seen: new ones count as progress too (a `pin add`
    // answers only at the end, but its blocks arrive all along).
    let mut received = None::<u64>;
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(TICK);
        let now = progress.load(Ordering::Relaxed);
        if now != seen {
            (seen, last_change) = (now, Instant::now());
            continue;
        }
        let due = last_said.map_or(QUIET, |_| REPEAT);
        if last_change.elapsed() < due || last_said.is_some_and(|t| t.elapsed() < REPEAT) {
            continue;
        }
        let Some((line, now_received)) = describe(api, what, start.elapsed()) else { continue };
        if received.is_some_and(|r| r != now_received) {
            (received, last_change) = (Some(now_received), Instant::now());
            continue;
        }
        received = Some(now_received);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        note(&line);
        *STATUS.lock().expect("status lock") = line;
        last_said = Some(Instant::now());
    }
}

/// One line on what the node is waiting for, from its Bitswap counters, and the count of
/// blocks it has received.
fn describe(api: &Api, what: &str, waited: Duration) -> Option<(String, u64)> {
    let v = api.op(BitswapStat).ok()?;
    let (wanted, peers, received) = (v.wantlist.len(), v.peers.len(), v.blocks_received);
    // Name a wanted block when it is not the one the command was asked for.
    let first = v
        .wantlist
        .first()
        .map(|c| c.cid.as_str())
        .filter(|c| !what.contains(c))
        .map(|c| format!(" (such as {c})"))
        .unwrap_or_default();
    let asked = match peers {
        0 => "no peer connected to ask: check the node's peers (`cairn swarm peers`)".to_string(),
        1 => "asked the 1 connected peer and providers from the DHT".to_string(),
        n => format!("asked {n} connected peers and providers from the DHT"),
    };
    let line = format!(
        "waiting for {what}: {wanted} block(s) wanted{first}, {asked}; {received} block(s) received by the node so \
         far ({}s)",
        waited.as_secs()
    );
    Some((line, received))
}

/// End the process with a clear error once `limit` has passed (`--timeout`). A closed
/// connection makes the daemon stop the request's work; offline work stops with the process,
/// and the store recovers from that as from any interrupted command.
pub fn arm_timeout(limit: Duration, json: bool) {
    let _ = thread::Builder::new().name("cairn-timeout".into()).spawn(move || {
        thread::sleep(limit);
        let status = STATUS.lock().map(|s| s.clone()).unwrap_or_default();
        let msg = if status.is_empty() {
            format!("timed out after {}", humantime::format_duration(limit))
        } else {
            format!("timed out after {}; was {status}", humantime::format_duration(limit))
        };
        if json {
            note(&serde_json::json!({ "error": msg }).to_string());
        } else {
            note(&format!("Error: {msg}"));
        }
        std::process::exit(1);
    });
}
