//! Announcing what this node holds to the DHT, and re-announcing it before records expire.
//!
//! The store keeps the schedule (every key to announce, by multihash, and when it was last
//! announced), ordered so that the keys due are read from its front. One task, the provider
//! actor, owns everything else and is the schedule's only writer; [`Provider`] handles talk to
//! it through commands. It holds a bounded queue of keys to announce next, fed by new keys
//! (an add, a pin: first in line) and by the keys due, read from the schedule when the queue
//! runs low and every [`CHECK_INTERVAL`]. Keys leave the queue in batches of up to
//! [`SWEEP_BATCH`], each announced by one [`sweep`]: a DHT walk per keyspace region rather
//! than per key. Store reads and writes happen on blocking threads, never on the swarm task.

pub mod sweep;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::Network;
use crate::store::{Due, Store};

/// Provider records live 48 h on DHT servers; announce again after 22 h, as kubo does.
pub(crate) const REPROVIDE_INTERVAL: Duration = Duration::from_secs(22 * 3600);

/// How often the schedule is read for keys that are due.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// Keys announced by one sweep.
pub(crate) const SWEEP_BATCH: usize = 16 * 1024;

/// Commands queued for the actor before a caller waits.
const COMMANDS: usize = 64;

/// Keys held in memory for announcement. More stay in the schedule and are read back once
/// the queue has room, so a node with millions of keys holds at most this many in memory.
pub(crate) const MAX_QUEUED: usize = 2 * SWEEP_BATCH;

/// Shortest time between two reads of the schedule made to refill the queue, so that sweeps
/// failing for lack of peers do not turn into a loop of reads.
const REFILL_PERIOD: Duration = Duration::from_secs(30);

/// First wait before keys that no peer took are announced again; doubled per failed
/// attempt, up to [`CHECK_INTERVAL`]. A peer connecting brings the retry forward to
/// [`RETRY_ON_PEER`] from then.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// How soon after a peer connects keys waiting for a retry are announced.
const RETRY_ON_PEER: Duration = Duration::from_secs(1);

/// Scheduled keys handed to the swarm at a time when restoring its own provider records.
const RESTORE_CHUNK: usize = 4096;

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

/// Requests to the provider actor.
enum Command {
    /// Schedule keys and queue them first; answered once the schedule is durable.
    Enqueue(Vec<Cid>, oneshot::Sender<()>),
    /// Stop announcing keys; answered once they left the schedule.
    Forget(Vec<Cid>, oneshot::Sender<()>),
    /// Queue length, counters and lag.
    Stat(oneshot::Sender<ProvideStat>),
}

/// Handle to the provider actor.
#[derive(Clone)]
pub struct Provider {
    tx: mpsc::Sender<Command>,
}

/// The schedule's key for a block: its multihash (CIDv0 and v1 of one block, and any codec,
/// are one DHT key).
pub(crate) fn schedule_key(cid: &Cid) -> Vec<u8> {
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
    /// Start the actor (tracked by `tasks`, as are its sweeps); keys that were never
    /// announced or are due are queued at once.
    pub fn start(net: Network, store: Store, shutdown: CancellationToken, tasks: &TaskTracker) -> Provider {
        let (tx, rx) = mpsc::channel(COMMANDS);
        let actor = Actor {
            net,
            store,
            tasks: tasks.clone(),
            queue: Queue::default(),
            stat: ProvideStat::default(),
            retry: Retry::default(),
        };
        tasks.spawn(actor.run(rx, shutdown));
        Provider { tx }
    }

    /// Add keys to the schedule and announce them soon. Durable before it returns (unless
    /// the node is stopping).
    pub(crate) async fn enqueue(&self, cids: Vec<Cid>) {
        if !cids.is_empty() {
            self.ask(|done| Command::Enqueue(cids, done)).await;
        }
    }

    /// Remove keys from the schedule and stop answering `GET_PROVIDERS` for them (unpinned
    /// or evicted content is no longer announced).
    pub(crate) async fn forget(&self, cids: Vec<Cid>) {
        if !cids.is_empty() {
            self.ask(|done| Command::Forget(cids, done)).await;
        }
    }

    /// Queue length, counters and lag (zeros once the node is stopping).
    pub async fn stat(&self) -> ProvideStat {
        self.ask(Command::Stat).await.unwrap_or_default()
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(cmd(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// The actor's state: the queue in memory and the counters.
struct Actor {
    net: Network,
    store: Store,
    tasks: TaskTracker,
    queue: Queue,
    stat: ProvideStat,
    retry: Retry,
}

/// Keys no peer took (the node had no peers, or every write failed), waiting to be queued
/// again.
#[derive(Default)]
struct Retry {
    keys: Vec<Cid>,
    at: Option<tokio::time::Instant>,
    backoff: Option<Duration>,
}

impl Retry {
    /// Keys failed: try them again after the backoff.
    fn failed(&mut self, keys: Vec<Cid>) {
        if keys.is_empty() {
            return;
        }
        // The queue holds at most a sweep's worth; the rest is due at the next read.
        let room = SWEEP_BATCH.saturating_sub(self.keys.len());
        self.keys.extend(keys.into_iter().take(room));
        let backoff = self.backoff.map_or(FIRST_RETRY, |b| (b * 2).min(CHECK_INTERVAL));
        self.backoff = Some(backoff);
        self.at = Some(tokio::time::Instant::now() + backoff);
    }

    /// A sweep went through: the next failure starts the backoff afresh.
    fn succeeded(&mut self) {
        self.backoff = None;
    }

    /// A peer connected: retry soon.
    fn peer_came(&mut self) {
        if let Some(at) = self.at.as_mut() {
            *at = (*at).min(tokio::time::Instant::now() + RETRY_ON_PEER);
        }
    }
}

/// The keys to announce next, bounded by [`MAX_QUEUED`], and those being announced.
#[derive(Default)]
struct Queue {
    line: VecDeque<Cid>,
    queued: HashSet<Cid>,
    /// Keys of the sweep running now: not stamped yet, so a read of the schedule still finds
    /// them due; they must not be queued again.
    in_flight: HashSet<Cid>,
    /// Keys due that the queue had no room for: they wait in the schedule.
    backlog: u64,
}

impl Queue {
    /// Queue `c` (at the front for new keys) if there is room; else count it as backlog.
    fn offer(&mut self, c: Cid, front: bool) {
        if self.queued.contains(&c) || self.in_flight.contains(&c) {
            return;
        }
        if self.line.len() >= MAX_QUEUED {
            self.backlog += 1;
            return;
        }
        self.queued.insert(c);
        if front {
            self.line.push_front(c);
        } else {
            self.line.push_back(c);
        }
    }

    /// Up to `n` keys from the front of the queue, now in flight.
    fn take(&mut self, n: usize) -> Vec<Cid> {
        let k = n.min(self.line.len());
        let batch: Vec<Cid> = self.line.drain(..k).collect();
        for c in &batch {
            self.queued.remove(c);
            self.in_flight.insert(*c);
        }
        // Give back what a burst of keys grew the queue to (a CID is ~100 bytes; 100,000
        // queued keys left 25 MiB of capacity behind).
        if self.line.capacity() > 4 * self.line.len().max(1024) {
            let want = self.line.len() * 2;
            self.line.shrink_to(want);
            self.queued.shrink_to(want);
        }
        batch
    }

    /// The sweep in flight ended.
    fn settle(&mut self) {
        self.in_flight.clear();
        self.in_flight.shrink_to(SWEEP_BATCH);
    }

    /// Drop keys from the line.
    fn remove(&mut self, gone: &HashSet<Cid>) {
        if gone.iter().any(|c| self.queued.contains(c)) {
            self.line.retain(|c| !gone.contains(c));
            self.queued.retain(|c| !gone.contains(c));
        }
    }

    /// Keys in the line plus those waiting in the schedule for room.
    fn waiting(&self) -> u64 {
        self.line.len() as u64 + self.backlog
    }

    /// Keys in memory: queued or in flight.
    fn held(&self) -> usize {
        self.line.len() + self.in_flight.len()
    }
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        self.tasks.spawn(restore_local(self.net.clone(), self.store.clone(), shutdown.clone()));
        self.stat.total_keys = self
            .store
            .handle()
            .call(|s| {
                let mut n = 0u64;
                s.for_each_scheduled(&mut |_| {
                    n += 1;
                    true
                })?;
                Ok(n)
            })
            .await
            .unwrap_or(0);
        let mut check = tokio::time::interval(CHECK_INTERVAL);
        let mut running: Option<JoinHandle<Result<sweep::SweepReport, Vec<Cid>>>> = None;
        let mut peers = self.net.subscribe();
        let mut last_refill = tokio::time::Instant::now();
        loop {
            // Keys wait in the schedule for room in the queue: read them back once it is half
            // empty, instead of at the next periodic check.
            let q = &self.queue;
            if q.backlog > 0 && q.line.len() <= MAX_QUEUED / 2 && last_refill.elapsed() >= REFILL_PERIOD {
                last_refill = tokio::time::Instant::now();
                check.reset_immediately();
            }
            if running.is_none() {
                running = self.start_sweep();
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    if let Some(t) = running.take() {
                        t.abort();
                    }
                    break;
                }
                _ = check.tick() => self.read_due().await,
                _ = async { tokio::time::sleep_until(self.retry.at.expect("guarded")).await }, if self.retry.at.is_some() => {
                    self.retry.at = None;
                    for c in std::mem::take(&mut self.retry.keys) {
                        self.queue.offer(c, true);
                    }
                }
                ev = peers.recv() => match ev {
                    Ok(crate::net::NetEvent::Connected(_)) => self.retry.peer_came(),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    // The swarm task is gone: the node is stopping.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                Some(cmd) = rx.recv() => self.on_command(cmd).await,
                done = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                    running = None;
                    self.record(done.ok()).await;
                }
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Enqueue(cids, done) => {
                let cids: Vec<Cid> = cids.iter().filter_map(|c| queued_cid(&schedule_key(c))).collect();
                let keys: Vec<Vec<u8>> = cids.iter().map(schedule_key).collect();
                match self.store.handle().call(move |s| s.schedule_provides(&keys)).await {
                    Ok(added) => self.stat.total_keys += added,
                    Err(e) => tracing::warn!("cannot schedule {} key(s) for announcement: {e}", cids.len()),
                }
                for c in cids.into_iter().rev() {
                    self.queue.offer(c, true);
                }
                let _ = done.send(());
            }
            Command::Forget(cids, done) => {
                self.unschedule(cids).await;
                let _ = done.send(());
            }
            Command::Stat(reply) => {
                let mut stat = self.stat.clone();
                stat.queued = self.queue.waiting();
                let _ = reply.send(stat);
            }
        }
    }

    fn start_sweep(&mut self) -> Option<JoinHandle<Result<sweep::SweepReport, Vec<Cid>>>> {
        let batch = self.queue.take(SWEEP_BATCH);
        if batch.is_empty() {
            return None;
        }
        let net = self.net.clone();
        Some(self.tasks.spawn(async move {
            match sweep::sweep(&net, batch.clone()).await {
                Ok(r) => Ok(r),
                Err(e) => {
                    tracing::debug!("sweep failed: {e}");
                    Err(batch)
                }
            }
        }))
    }

    /// Read the keys due from the front of the schedule into the queue; keys whose blocks
    /// are gone (evicted by the storage budget or collected) leave the schedule.
    async fn read_due(&mut self) {
        let now = now_secs();
        let before = now.saturating_sub(REPROVIDE_INTERVAL.as_secs());
        // The front of the schedule also holds the keys queued and in flight (due, not
        // stamped yet): ask for those plus as many more as the queue has room for.
        let limit = MAX_QUEUED.max(self.queue.line.len()) + self.queue.in_flight.len();
        let read = self
            .store
            .handle()
            .call(move |s| {
                let due = s.provides_due(before, limit)?;
                let mut gone = Vec::new();
                let mut keys = Vec::with_capacity(due.keys.len());
                for (key, _) in &due.keys {
                    let Some(cid) = queued_cid(key) else { continue };
                    if s.has(&cid).unwrap_or(true) {
                        keys.push(cid);
                    } else {
                        gone.push(cid);
                    }
                }
                Ok((keys, gone, Due { keys: Vec::new(), ..due }))
            })
            .await;
        let (keys, gone, due) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read the provide schedule: {e}");
                return;
            }
        };
        self.stat.lag_secs = due.oldest.map_or(0, |last| now.saturating_sub(last + REPROVIDE_INTERVAL.as_secs()));
        self.queue.backlog = 0;
        for c in keys {
            self.queue.offer(c, false);
        }
        let held = (self.queue.held() + gone.len()) as u64;
        self.queue.backlog = due.total.saturating_sub(held);
        if !gone.is_empty() {
            tracing::debug!(keys = gone.len(), "blocks no longer stored: not announced any more");
            self.unschedule(gone).await;
        }
    }

    /// Remove keys from the schedule, the queue and the swarm's own provider records.
    async fn unschedule(&mut self, cids: Vec<Cid>) {
        let keys: Vec<Vec<u8>> = cids.iter().map(schedule_key).collect();
        let k = keys.clone();
        match self.store.handle().call(move |s| s.unschedule_provides(&k)).await {
            Ok(removed) => self.stat.total_keys = self.stat.total_keys.saturating_sub(removed),
            Err(e) => tracing::warn!("cannot unschedule {} key(s): {e}", keys.len()),
        }
        let gone: HashSet<Cid> = cids.iter().filter_map(|c| queued_cid(&schedule_key(c))).collect();
        self.queue.remove(&gone);
        let _ = self.net.remove_local_providers(keys).await;
    }

    /// Count a finished sweep and stamp the announced keys (those still scheduled); they
    /// are no longer in flight. Keys no peer took are tried again with backoff.
    async fn record(&mut self, report: Option<Result<sweep::SweepReport, Vec<Cid>>>) {
        self.queue.settle();
        let report = match report {
            Some(Ok(r)) => r,
            Some(Err(batch)) => {
                self.stat.failed += batch.len() as u64;
                self.retry.failed(batch);
                return;
            }
            None => return,
        };
        if report.failed.is_empty() {
            self.retry.succeeded();
        } else {
            self.retry.failed(report.failed.clone());
        }
        self.stat.provided += report.announced.len() as u64;
        self.stat.failed += report.failed.len() as u64;
        self.stat.last_provide = now_secs();
        self.stat.walks += report.walks as u64;
        let keys: Vec<Vec<u8>> = report.announced.iter().map(schedule_key).collect();
        let now = now_secs();
        if let Err(e) = self.store.handle().call(move |s| s.stamp_provides(&keys, now)).await {
            tracing::warn!("cannot record announced keys: {e}");
        }
    }
}

/// After a restart, answer `GET_PROVIDERS` for every scheduled key at once instead of only
/// after the next sweep: the DHT still holds records pointing at us. Keys are read and handed
/// over a chunk at a time, so a large schedule is never held in memory.
async fn restore_local(net: Network, store: Store, shutdown: CancellationToken) {
    let mut addrs = Vec::new();
    for _ in 0..100 {
        addrs = net.addrs().await.unwrap_or_default().into_iter().filter(sweep::is_announceable).collect();
        if !addrs.is_empty() || shutdown.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tx, mut rx) = mpsc::channel::<Vec<Vec<u8>>>(2);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK);
        let _ = store.for_each_scheduled(&mut |k| {
            chunk.push(k.to_vec());
            if chunk.len() == RESTORE_CHUNK {
                return tx.blocking_send(std::mem::take(&mut chunk)).is_ok();
            }
            true
        });
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    while let Some(chunk) = tokio::select! {
        _ = shutdown.cancelled() => None,
        c = rx.recv() => c,
    } {
        if net.add_local_providers(chunk, addrs.clone()).await.is_err() {
            return;
        }
    }
}

/// Announce roots as `strategy` says (the roots only, or every block of their DAGs); returns
/// once the keys are in the durable schedule.
pub(crate) async fn announce(store: &Store, provider: &Provider, strategy: Strategy, roots: Vec<Cid>) {
    let keys = match strategy {
        Strategy::Roots => roots,
        Strategy::Pinned | Strategy::All => {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let mut keys = Vec::new();
                for root in roots {
                    let _ = crate::dag::walk(&store, &root, crate::dag::WalkMode::LinksOnly, true, &mut |c, _| {
                        keys.push(*c);
                        Ok(())
                    });
                }
                keys
            })
            .await
            .unwrap_or_default()
        }
    };
    provider.enqueue(keys).await;
}

#[cfg(test)]
mod tests {
    use cairn_protocol::cids::{cid_for, HashFn, RAW};

    use super::*;

    #[test]
    fn one_key_per_block_whatever_its_cid() {
        let v1 = cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"kept");
        let v0 = Cid::new_v0(*v1.hash()).unwrap();
        assert_eq!(schedule_key(&v0), schedule_key(&v1));
        assert_eq!(queued_cid(&schedule_key(&v0)), Some(v1));
    }

    #[test]
    fn the_queue_holds_at_most_max_queued_keys_and_counts_the_rest() {
        let mut q = Queue::default();
        for i in 0..(MAX_QUEUED + 10) as u64 {
            q.offer(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &i.to_le_bytes()), true);
        }
        assert_eq!((q.line.len(), q.backlog, q.waiting()), (MAX_QUEUED, 10, MAX_QUEUED as u64 + 10));
        let batch = q.take(SWEEP_BATCH);
        // The sweep's keys are still due in the schedule, but are never queued twice.
        q.offer(batch[0], true);
        assert_eq!((q.line.len(), q.held()), (MAX_QUEUED - SWEEP_BATCH, MAX_QUEUED));
        q.remove(&[q.line[0]].into_iter().collect());
        assert_eq!(q.line.len(), MAX_QUEUED - SWEEP_BATCH - 1);
        q.settle();
        while !q.take(SWEEP_BATCH).is_empty() {}
        assert!(q.line.capacity() < 4096 && q.queued.capacity() < 4096, "capacity given back");
    }
}
