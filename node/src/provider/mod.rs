//! Announcing what this node holds to the DHT, and re-announcing it before records expire.
//!
//! The set of keys to announce and the time each was last announced live in the store's
//! `provide` tree, keyed by multihash (the DHT's key: CIDv0 and v1 of one block are one
//! entry), so the schedule survives restarts. One task owns the queue: new keys (an add,
//! a pin) go first, then keys whose last announcement is older than [`REPROVIDE_INTERVAL`].
//! Keys leave the queue in batches of up to [`SWEEP_BATCH`], each announced by one [`sweep`]:
//! a DHT walk per keyspace region rather than per key. Store reads and writes happen on
//! blocking threads, never on the swarm task.

pub mod sweep;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::Network;
use crate::store::{Store, Tree};

/// Provider records live 48 h on DHT servers; announce again after 22 h, as kubo does.
pub const REPROVIDE_INTERVAL: Duration = Duration::from_secs(22 * 3600);

/// How often the schedule is checked for keys that are due.
const CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// Keys announced by one sweep.
pub const SWEEP_BATCH: usize = 16 * 1024;

/// New keys queued before `enqueue` waits.
const QUEUE: usize = 1024;

/// Keys held in memory for announcement. More stay in the persisted schedule (stamped 0,
/// "never announced") and are read back once the queue has room, so a node with millions of
/// keys holds at most this many CIDs in memory.
pub const MAX_QUEUED: usize = 2 * SWEEP_BATCH;

/// Shortest time between two reads of the schedule made to refill the queue.
const REFILL_PERIOD: Duration = Duration::from_secs(30);

/// Which keys are announced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Every block added or fetched.
    All,
    /// Every block of pinned DAGs (kubo's `pinned`).
    #[default]
    Pinned,
    /// Only the roots of pins.
    Roots,
}

/// What `cairn provide stat` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProvideStat {
    /// Keys waiting for an announcement.
    pub queued: u64,
    /// Keys announced since the node started.
    pub provided: u64,
    /// Announcements that failed since the node started.
    pub failed: u64,
    /// Keys in the schedule.
    pub total_keys: u64,
    /// Unix time of the last completed announcement, 0 if none.
    pub last_provide: u64,
    /// Seconds the oldest due key is overdue (0: on schedule).
    pub lag_secs: u64,
    /// DHT walks made by sweeps since the node started.
    pub walks: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Cid>,
    queued: HashSet<Cid>,
    /// Keys due that the queue had no room for: they wait in the persisted schedule.
    backlog: u64,
    /// Keys of the sweep running now: not stamped yet, so a read of the schedule still finds
    /// them due; they must not be queued again.
    in_flight: HashSet<Cid>,
    stat: ProvideStat,
}

impl State {
    /// Queue `c` (at the front for new keys) if there is room; else count it as backlog.
    fn offer(&mut self, c: Cid, front: bool) {
        if self.queued.contains(&c) || self.in_flight.contains(&c) {
            return;
        }
        if self.queue.len() >= MAX_QUEUED {
            self.backlog += 1;
            return;
        }
        self.queued.insert(c);
        if front {
            self.queue.push_front(c);
        } else {
            self.queue.push_back(c);
        }
    }
}

/// Handle to the provider task.
#[derive(Clone)]
pub struct Provider {
    tx: mpsc::Sender<Vec<Cid>>,
    state: Arc<Mutex<State>>,
    store: Store,
    net: Network,
}

/// The schedule's key for a block: its multihash (CIDv0 and v1 of one block, and any codec,
/// are one DHT key).
pub fn schedule_key(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

/// The one CID the queue holds for a scheduled key (raw CIDv1: the DHT only sees the
/// multihash, and the store looks blocks up by it).
fn queued_cid(key: &[u8]) -> Option<Cid> {
    multihash::Multihash::<64>::from_bytes(key).ok().map(|mh| Cid::new_v1(cairn_protocol::cids::RAW, mh))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Provider {
    /// Start the task (tracked by `tasks`, as are its sweeps); keys that were never
    /// announced or are due are queued at once.
    pub fn start(net: Network, store: Store, shutdown: CancellationToken, tasks: &TaskTracker) -> Provider {
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = Arc::new(Mutex::new(State::default()));
        let provider = Provider { tx, state: state.clone(), store: store.clone(), net: net.clone() };
        tasks.spawn(run(net, store, state, rx, shutdown, tasks.clone()));
        provider
    }

    /// Add keys to the schedule and announce them soon. Durable before it returns.
    pub async fn enqueue(&self, cids: Vec<Cid>) {
        if cids.is_empty() {
            return;
        }
        let cids: Vec<Cid> = cids.iter().filter_map(|c| queued_cid(&schedule_key(c))).collect();
        let store = self.store.clone();
        let keys = cids.clone();
        let added = tokio::task::spawn_blocking(move || {
            let mut added = 0u64;
            for c in &keys {
                let key = schedule_key(c);
                if store.meta().get(Tree::Provide, &key).ok().flatten().is_none() {
                    let _ = store.meta().put(Tree::Provide, &key, &0u64.to_be_bytes());
                    added += 1;
                }
            }
            let _ = store.meta().flush();
            added
        })
        .await
        .unwrap_or(0);
        self.state.lock().expect("provider state").stat.total_keys += added;
        let _ = self.tx.send(cids).await;
    }

    /// Remove keys from the schedule and stop answering `GET_PROVIDERS` for them (unpinned
    /// or evicted content is no longer announced).
    pub async fn forget(&self, cids: Vec<Cid>) {
        unschedule(&self.store, &self.net, &self.state, cids).await;
    }

    /// Queue length, counters and lag.
    pub fn stat(&self) -> ProvideStat {
        let s = self.state.lock().expect("provider state");
        let mut stat = s.stat.clone();
        stat.queued = s.queue.len() as u64 + s.backlog;
        stat
    }
}

/// Scheduled keys due for an announcement, keys due whose blocks are gone (evicted by the
/// storage budget or collected), the schedule's size and its lag in seconds.
/// At most `limit` due keys are returned (the rest stay in the schedule for a later scan);
/// the count of all due keys is the fifth value.
fn due_keys(store: &Store, limit: usize) -> (Vec<Cid>, Vec<Cid>, u64, u64, u64) {
    let now = now_secs();
    let (mut due, mut gone) = (Vec::new(), Vec::new());
    let (mut total, mut lag, mut due_total) = (0u64, 0u64, 0u64);
    let _ = store.meta().for_each(Tree::Provide, &mut |k, v| {
        total += 1;
        let last = v.try_into().map(u64::from_be_bytes).unwrap_or(0);
        let due_at = last + REPROVIDE_INTERVAL.as_secs();
        if last == 0 || due_at <= now {
            due_total += 1;
            if due.len() < limit {
                if let Some(cid) = queued_cid(k) {
                    due.push(cid);
                }
            }
            if last != 0 {
                lag = lag.max(now - due_at);
            }
        }
        true
    });
    due.retain(|c| {
        let stored = store.has(c).unwrap_or(true);
        if !stored {
            gone.push(*c);
        }
        stored
    });
    (due, gone, total, lag, due_total)
}

/// Remove keys from the schedule and from the swarm's own provider records.
async fn unschedule(store: &Store, net: &Network, state: &Mutex<State>, cids: Vec<Cid>) {
    if cids.is_empty() {
        return;
    }
    let s = store.clone();
    let keys: Vec<Vec<u8>> = cids.iter().map(schedule_key).collect();
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0u64;
        for c in &cids {
            let key = schedule_key(c);
            if s.meta().get(Tree::Provide, &key).ok().flatten().is_some()
                && s.meta().remove(Tree::Provide, &key).is_ok()
            {
                removed += 1;
            }
        }
        let _ = s.meta().flush();
        removed
    })
    .await
    .unwrap_or(0);
    let _ = net.remove_local_providers(keys).await;
    let mut st = state.lock().expect("provider state");
    st.stat.total_keys = st.stat.total_keys.saturating_sub(removed);
}

async fn run(
    net: Network,
    store: Store,
    state: Arc<Mutex<State>>,
    mut rx: mpsc::Receiver<Vec<Cid>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        () = restore_local(&net, &store) => {}
    }
    let mut check = tokio::time::interval(CHECK_INTERVAL);
    let mut running: Option<tokio::task::JoinHandle<Option<sweep::SweepReport>>> = None;
    let mut last_refill = tokio::time::Instant::now();
    loop {
        // Keys wait in the schedule for room in the queue: read them back once it is half
        // empty, instead of at the next periodic check (at most every REFILL_PERIOD, so that
        // sweeps failing for lack of peers do not turn into a loop of scans).
        let refill = {
            let st = state.lock().expect("provider state");
            st.backlog > 0 && st.queue.len() <= MAX_QUEUED / 2 && last_refill.elapsed() >= REFILL_PERIOD
        };
        if refill {
            last_refill = tokio::time::Instant::now();
            check.reset_immediately();
        }
        if running.is_none() {
            let batch = take(&state, SWEEP_BATCH);
            if !batch.is_empty() {
                let net = net.clone();
                running = Some(tasks.spawn(async move {
                    match sweep::sweep(&net, batch).await {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::debug!("sweep failed: {e}");
                            None
                        }
                    }
                }));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                if let Some(t) = running.take() {
                    t.abort();
                }
                break;
            }
            _ = check.tick() => {
                let s = store.clone();
                // The scan also sees the keys queued and in flight (they are due, not stamped
                // yet): ask for those plus as many more as the queue has room for.
                let limit = {
                    let st = state.lock().expect("provider state");
                    MAX_QUEUED.max(st.queue.len()) + st.in_flight.len()
                };
                if let Ok((due, gone, total, lag, due_total)) =
                    tokio::task::spawn_blocking(move || due_keys(&s, limit)).await
                {
                    {
                        let mut st = state.lock().expect("provider state");
                        st.stat.total_keys = total;
                        st.stat.lag_secs = lag;
                        st.backlog = 0;
                        for c in due {
                            st.offer(c, false);
                        }
                        let held = (st.queue.len() + st.in_flight.len()) as u64;
                        st.backlog = due_total.saturating_sub(held);
                    }
                    if !gone.is_empty() {
                        tracing::debug!(keys = gone.len(), "blocks no longer stored: not announced any more");
                        unschedule(&store, &net, &state, gone).await;
                    }
                }
            }
            Some(cids) = rx.recv() => {
                let mut st = state.lock().expect("provider state");
                for c in cids.into_iter().rev() {
                    st.offer(c, true);
                }
            }
            done = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                running = None;
                let report = done.ok().flatten();
                record(&store, &state, report).await;
                // Stamped (or failed, and due again at the next check): no longer in flight.
                let mut st = state.lock().expect("provider state");
                st.in_flight.clear();
                st.in_flight.shrink_to(SWEEP_BATCH);
            }
        }
    }
}

/// After a restart, answer `GET_PROVIDERS` for every scheduled key at once instead of only
/// after the next sweep: the DHT still holds records pointing at us.
async fn restore_local(net: &Network, store: &Store) {
    let s = store.clone();
    let keys = tokio::task::spawn_blocking(move || {
        let mut keys = Vec::new();
        let _ = s.meta().for_each(Tree::Provide, &mut |k, _| {
            keys.push(k.to_vec());
            true
        });
        keys
    })
    .await
    .unwrap_or_default();
    if keys.is_empty() {
        return;
    }
    let mut addrs = Vec::new();
    for _ in 0..100 {
        addrs = net.addrs().await.unwrap_or_default().into_iter().filter(sweep::is_announceable).collect();
        if !addrs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for chunk in keys.chunks(4096) {
        if net.add_local_providers(chunk.to_vec(), addrs.clone()).await.is_err() {
            return;
        }
    }
}

/// Count a finished sweep and stamp the announced keys (those still scheduled).
async fn record(store: &Store, state: &Mutex<State>, report: Option<sweep::SweepReport>) {
    let Some(report) = report else {
        state.lock().expect("provider state").stat.failed += 1;
        return;
    };
    {
        let mut st = state.lock().expect("provider state");
        st.stat.provided += report.announced.len() as u64;
        st.stat.failed += report.failed.len() as u64;
        st.stat.last_provide = now_secs();
        st.stat.walks += report.walks as u64;
    }
    let s = store.clone();
    let stamp = now_secs().to_be_bytes();
    let _ = tokio::task::spawn_blocking(move || {
        for cid in report.announced {
            let key = schedule_key(&cid);
            if s.meta().get(Tree::Provide, &key).ok().flatten().is_some() {
                let _ = s.meta().put(Tree::Provide, &key, &stamp);
            }
        }
        s.meta().flush()
    })
    .await;
}

/// Up to `n` keys from the front of the queue.
fn take(state: &Mutex<State>, n: usize) -> Vec<Cid> {
    let mut st = state.lock().expect("provider state");
    let k = n.min(st.queue.len());
    let batch: Vec<Cid> = st.queue.drain(..k).collect();
    for c in &batch {
        st.queued.remove(c);
        st.in_flight.insert(*c);
    }
    // Give back what a burst of keys grew the queue to (a CID is ~100 bytes; 100,000 queued
    // keys left 25 MiB of capacity behind).
    if st.queue.capacity() > 4 * st.queue.len().max(1024) {
        let want = st.queue.len() * 2;
        st.queue.shrink_to(want);
        st.queued.shrink_to(want);
    }
    batch
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use cairn_protocol::cids::{cid_for, HashFn, RAW};
    use cairn_protocol::Block;

    use super::*;

    #[test]
    fn keys_whose_blocks_are_gone_are_not_announced() {
        let dir = tempfile::tempdir().unwrap();
        crate::repo::Repo::init(dir.path(), "local").unwrap();
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        let store = repo.store();
        let block = |d: &[u8]| {
            Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, d), Bytes::copy_from_slice(d))
        };
        let (kept, evicted) = (block(b"kept"), block(b"evicted"));
        store.put_many([kept.clone()]).unwrap();
        for c in [kept.cid, evicted.cid] {
            store.meta().put(Tree::Provide, &schedule_key(&c), &0u64.to_be_bytes()).unwrap();
        }
        let (due, gone, total, _, due_total) = due_keys(store, 10);
        assert_eq!((due, gone, total, due_total), (vec![kept.cid], vec![evicted.cid], 2, 2));
        let v0 = Cid::new_v0(*kept.cid.hash()).unwrap_or(kept.cid);
        assert_eq!(schedule_key(&v0), schedule_key(&kept.cid), "one key per block, whatever its CID");
        let (due, _, _, _, due_total) = due_keys(store, 0);
        assert!(due.is_empty() && due_total == 2, "the limit bounds what is returned, not what is counted");
    }

    #[test]
    fn the_queue_holds_at_most_max_queued_keys_and_counts_the_rest() {
        let mut st = State::default();
        for i in 0..(MAX_QUEUED + 10) as u64 {
            st.offer(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &i.to_le_bytes()), true);
        }
        assert_eq!((st.queue.len(), st.backlog), (MAX_QUEUED, 10));
        let state = Mutex::new(st);
        let batch = take(&state, SWEEP_BATCH);
        // The sweep's keys are still due in the schedule, but are never queued twice.
        let mut st = state.lock().unwrap();
        st.offer(batch[0], true);
        assert_eq!(st.queue.len(), MAX_QUEUED - SWEEP_BATCH);
        st.in_flight.clear();
        drop(st);
        while !take(&state, SWEEP_BATCH).is_empty() {}
        let st = state.lock().unwrap();
        assert!(st.queue.capacity() < 4096 && st.queued.capacity() < 4096, "capacity given back");
    }
}
