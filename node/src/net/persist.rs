//! Keeping other peers' provider records and validated value records across restarts, without
//! the swarm task touching disk.
//!
//! The record store hands each change to a [`Persister`] through a bounded queue (`try_send`:
//! when the queue is full the change is dropped, counted and logged; the record still lives in memory
//! and its provider re-announces it within 22 h). One thread applies the changes to the store's
//! [`Records::Providers`] and [`Records::Values`] in batches and makes them durable every
//! [`FLUSH_EVERY`]; a failed write is logged, the record still lives in memory. At start, [`load`] reads the records
//! back, skipping expired ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::{ProviderRecord, RecordKey};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::store::{RecordChange, Records, Store};

/// Changes queued for the persistence thread.
const QUEUE: usize = 4096;

/// How often the thread makes its changes durable.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// One change to the persisted provider records.
#[derive(Debug)]
pub(crate) enum Change {
    /// A record was added or refreshed.
    Put(ProviderRecord),
    /// A record was removed.
    Remove(RecordKey, PeerId),
    /// A validated value record was stored or replaced.
    PutValue(RecordKey, Vec<u8>),
    /// A value record was removed.
    RemoveValue(RecordKey),
    /// A DHT peer identified itself with these listen addresses.
    PutPeer(PeerId, Vec<Multiaddr>),
}

/// Known peers kept in the store; past it, the ones seen longest ago are deleted at start.
const MAX_PEERS: usize = 256;

/// Known peers unseen for longer than this are deleted at start.
const PEER_MAX_AGE: u64 = 30 * 24 * 3600;

/// A known peer as stored.
#[derive(Serialize, Deserialize)]
struct StoredPeer {
    /// Unix seconds when it was last seen.
    seen: u64,
    /// Binary multiaddresses.
    addrs: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Unix seconds when the record expires.
    expires: u64,
    /// Binary multiaddresses.
    addrs: Vec<Vec<u8>>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `key ‖ peer` with the key's length first, so records of one key sort together.
fn db_key(key: &RecordKey, peer: &PeerId) -> Vec<u8> {
    let k = key.as_ref();
    let mut out = Vec::with_capacity(2 + k.len() + 40);
    out.extend_from_slice(&(k.len() as u16).to_be_bytes());
    out.extend_from_slice(k);
    out.extend_from_slice(&peer.to_bytes());
    out
}

fn split_key(k: &[u8]) -> Option<(RecordKey, PeerId)> {
    let len = u16::from_be_bytes(k.get(..2)?.try_into().ok()?) as usize;
    let key = k.get(2..2 + len)?;
    let peer = PeerId::from_bytes(k.get(2 + len..)?).ok()?;
    Some((RecordKey::new(&key), peer))
}

/// The sending side, owned by the record store.
#[derive(Clone)]
pub(crate) struct Persister {
    tx: SyncSender<Change>,
    dropped: Arc<AtomicU64>,
}

impl Persister {
    /// Start the persistence thread over `store`. It ends, after a last flush, once every
    /// `Persister` is dropped; join the handle to know its changes are durable.
    pub(crate) fn start(store: Store) -> (Persister, std::thread::JoinHandle<()>) {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("cairn-provider-records".into())
            .spawn(move || apply(store, rx))
            .expect("spawn the provider-record thread");
        (Persister { tx, dropped: Arc::new(AtomicU64::new(0)) }, thread)
    }

    /// Queue a change without waiting.
    pub(crate) fn send(&self, change: Change) {
        if self.tx.try_send(change).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8, … drops: visible, but never a flood.
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "record persistence is behind: changes dropped (kept in memory until restart)"
                );
            }
        }
    }
}

/// Changes applied to the store at once.
const BATCH: usize = 256;

/// The store's form of a change.
fn to_record(change: Change) -> RecordChange {
    match change {
        Change::Put(r) => {
            let remaining = r.expires.map_or(48 * 3600, |e| e.saturating_duration_since(Instant::now()).as_secs());
            let value =
                Stored { expires: unix_now() + remaining, addrs: r.addresses.iter().map(|a| a.to_vec()).collect() };
            let bytes = serde_json::to_vec(&value).expect("record serializes");
            RecordChange::Put(Records::Providers, db_key(&r.key, &r.provider), bytes)
        }
        Change::Remove(key, peer) => RecordChange::Remove(Records::Providers, db_key(&key, &peer)),
        Change::PutValue(key, value) => RecordChange::Put(Records::Values, key.to_vec(), value),
        Change::RemoveValue(key) => RecordChange::Remove(Records::Values, key.to_vec()),
        Change::PutPeer(peer, addrs) => {
            let value = StoredPeer { seen: unix_now(), addrs: addrs.iter().map(|a| a.to_vec()).collect() };
            RecordChange::Put(Records::Peers, peer.to_bytes(), serde_json::to_vec(&value).expect("peer serializes"))
        }
    }
}

fn apply(store: Store, rx: Receiver<Change>) {
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(c) => {
                batch.push(to_record(c));
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(c) => batch.push(to_record(c)),
                        Err(_) => break,
                    }
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !batch.is_empty() {
            if let Err(e) = store.apply_records(&batch, false) {
                tracing::warn!("cannot persist {} DHT record change(s): {e}", batch.len());
            }
            batch.clear();
            dirty = true;
        }
        if dirty && (closed || last_flush.elapsed() >= FLUSH_EVERY) {
            if let Err(e) = store.flush_records() {
                tracing::warn!("cannot make DHT records durable: {e}");
            }
            dirty = false;
            last_flush = Instant::now();
        }
        if closed {
            return;
        }
    }
}

/// The persisted records that have not expired (expired ones are deleted).
pub fn load(store: &Store) -> Vec<ProviderRecord> {
    let now = unix_now();
    let mut out = Vec::new();
    let mut expired = Vec::new();
    let read = store.for_each_record(Records::Providers, &mut |k, v| {
        let (Some((key, provider)), Ok(s)) = (split_key(k), serde_json::from_slice::<Stored>(v)) else {
            expired.push(k.to_vec());
            return true;
        };
        if s.expires <= now {
            expired.push(k.to_vec());
            return true;
        }
        let addresses = s.addrs.into_iter().filter_map(|a| Multiaddr::try_from(a).ok()).collect();
        let expires = Some(Instant::now() + Duration::from_secs(s.expires - now));
        out.push(ProviderRecord { key, provider, expires, addresses });
        true
    });
    if let Err(e) = read.and_then(|()| store.remove_records(Records::Providers, &expired)) {
        tracing::warn!("cannot read back stored provider records: {e}");
    }
    out
}

/// The known peers, most recently seen first; old and surplus ones are deleted.
pub(crate) fn load_peers(store: &Store) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let now = unix_now();
    let mut found = Vec::new();
    let mut gone = Vec::new();
    let read = store.for_each_record(Records::Peers, &mut |k, v| {
        match (PeerId::from_bytes(k), serde_json::from_slice::<StoredPeer>(v)) {
            (Ok(peer), Ok(s)) if now.saturating_sub(s.seen) <= PEER_MAX_AGE => {
                let addrs: Vec<Multiaddr> = s.addrs.into_iter().filter_map(|a| Multiaddr::try_from(a).ok()).collect();
                found.push((s.seen, peer, addrs));
            }
            _ => gone.push(k.to_vec()),
        }
        true
    });
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    gone.extend(found.iter().skip(MAX_PEERS).map(|(_, p, _)| p.to_bytes()));
    found.truncate(MAX_PEERS);
    if let Err(e) = read.and_then(|()| store.remove_records(Records::Peers, &gone)) {
        tracing::warn!("cannot read back known peers: {e}");
    }
    found.into_iter().map(|(_, p, a)| (p, a)).collect()
}

/// The persisted value records that are still valid (the rest are deleted).
pub(crate) fn load_values(store: &Store) -> Vec<(RecordKey, Vec<u8>)> {
    let now = super::now_nanos();
    let mut out = Vec::new();
    let mut stale = Vec::new();
    let read = store.for_each_record(Records::Values, &mut |k, v| {
        match cairn_protocol::records::validate(k, v, now) {
            Ok(_) => out.push((RecordKey::new(&k), v.to_vec())),
            Err(_) => stale.push(k.to_vec()),
        }
        true
    });
    if let Err(e) = read.and_then(|()| store.remove_records(Records::Values, &stale)) {
        tracing::warn!("cannot read back stored value records: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let key = RecordKey::new(&b"\x12\x20abc");
        let peer = PeerId::random();
        assert_eq!(split_key(&db_key(&key, &peer)), Some((key, peer)));
        assert_eq!(split_key(b"\x00"), None);
    }

    #[test]
    fn only_valid_value_records_come_back() {
        let dir = tempfile::tempdir().unwrap();
        crate::repo::Repo::init(dir.path(), "local").unwrap();
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        let store = repo.store().clone();
        let name_key = libp2p::identity::Keypair::generate_ed25519();
        let key = cairn_protocol::records::ipns_key(&name_key.public().to_peer_id());
        let now = super::super::now_nanos();
        let valid = cairn_protocol::records::create_ipns(&name_key, b"/ipfs/bafkqaaa", 1, now + 3_600_000_000_000, 0);
        let expired = cairn_protocol::records::create_ipns(&name_key, b"/ipfs/bafkqaaa", 1, now - 1, 0);
        let other = cairn_protocol::records::ipns_key(&PeerId::random());
        store.put_record(Records::Values, &key, &valid.clone().unwrap()).unwrap();
        store.put_record(Records::Values, &other, &expired.unwrap()).unwrap();
        let got = load_values(&store);
        assert_eq!(got, vec![(RecordKey::new(&key), valid.unwrap())]);
        let mut left = 0;
        store
            .for_each_record(Records::Values, &mut |_, _| {
                left += 1;
                true
            })
            .unwrap();
        assert_eq!(left, 1, "the invalid record was deleted");
    }
}
