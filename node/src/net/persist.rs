//! Keeping other peers' provider records and validated value records across restarts, without
//! the swarm task touching disk.
//!
//! The record store hands each change to a [`Persister`] through a bounded queue (`try_send`:
//! when the queue is full the change is dropped and counted; the record still lives in memory
//! and its provider re-announces it within 22 h). One thread applies the changes to the store's
//! `providers` tree and flushes every [`FLUSH_EVERY`]. At start, [`load`] reads the records
//! back, skipping expired ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::{ProviderRecord, RecordKey};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::store::{Store, Tree};

/// Changes queued for the persistence thread.
const QUEUE: usize = 4096;

/// How often the thread makes its changes durable.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// One change to the persisted provider records.
#[derive(Debug)]
pub enum Change {
    /// A record was added or refreshed.
    Put(ProviderRecord),
    /// A record was removed.
    Remove(RecordKey, PeerId),
    /// A validated value record was stored or replaced.
    PutValue(RecordKey, Vec<u8>),
    /// A value record was removed.
    RemoveValue(RecordKey),
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
pub struct Persister {
    tx: SyncSender<Change>,
    dropped: Arc<AtomicU64>,
}

impl Persister {
    /// Start the persistence thread over `store`. It ends, after a last flush, once every
    /// `Persister` is dropped; join the handle to know its changes are durable.
    pub fn start(store: Store) -> (Persister, std::thread::JoinHandle<()>) {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("cairn-provider-records".into())
            .spawn(move || apply(store, rx))
            .expect("spawn the provider-record thread");
        (Persister { tx, dropped: Arc::new(AtomicU64::new(0)) }, thread)
    }

    /// Queue a change without waiting.
    pub fn send(&self, change: Change) {
        if self.tx.try_send(change).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Changes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn apply(store: Store, rx: Receiver<Change>) {
    let mut dirty = false;
    let mut last_flush = Instant::now();
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(Change::Put(r)) => {
                let remaining = r.expires.map_or(48 * 3600, |e| e.saturating_duration_since(Instant::now()).as_secs());
                let value =
                    Stored { expires: unix_now() + remaining, addrs: r.addresses.iter().map(|a| a.to_vec()).collect() };
                let bytes = serde_json::to_vec(&value).expect("record serializes");
                let _ = store.meta().put(Tree::Providers, &db_key(&r.key, &r.provider), &bytes);
                dirty = true;
            }
            Ok(Change::Remove(key, peer)) => {
                let _ = store.meta().remove(Tree::Providers, &db_key(&key, &peer));
                dirty = true;
            }
            Ok(Change::PutValue(key, value)) => {
                let _ = store.meta().put(Tree::Values, key.as_ref(), &value);
                dirty = true;
            }
            Ok(Change::RemoveValue(key)) => {
                let _ = store.meta().remove(Tree::Values, key.as_ref());
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if dirty {
                    let _ = store.meta().flush();
                }
                return;
            }
        }
        if dirty && last_flush.elapsed() >= FLUSH_EVERY {
            let _ = store.meta().flush();
            dirty = false;
            last_flush = Instant::now();
        }
    }
}

/// The persisted records that have not expired (expired ones are deleted).
pub fn load(store: &Store) -> Vec<ProviderRecord> {
    let now = unix_now();
    let mut out = Vec::new();
    let mut expired = Vec::new();
    let _ = store.meta().for_each(Tree::Providers, &mut |k, v| {
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
    for k in expired {
        let _ = store.meta().remove(Tree::Providers, &k);
    }
    out
}

/// The persisted value records that are still valid (the rest are deleted).
pub fn load_values(store: &Store) -> Vec<(RecordKey, Vec<u8>)> {
    let now = super::now_nanos();
    let mut out = Vec::new();
    let mut stale = Vec::new();
    let _ = store.meta().for_each(Tree::Values, &mut |k, v| {
        match cairn_protocol::records::validate(k, v, now) {
            Ok(_) => out.push((RecordKey::new(&k), v.to_vec())),
            Err(_) => stale.push(k.to_vec()),
        }
        true
    });
    for k in stale {
        let _ = store.meta().remove(Tree::Values, &k);
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
        store.meta().put(Tree::Values, &key, &valid.clone().unwrap()).unwrap();
        store.meta().put(Tree::Values, &other, &expired.unwrap()).unwrap();
        let got = load_values(&store);
        assert_eq!(got, vec![(RecordKey::new(&key), valid.unwrap())]);
        let mut left = 0;
        store
            .meta()
            .for_each(Tree::Values, &mut |_, _| {
                left += 1;
                true
            })
            .unwrap();
        assert_eq!(left, 1, "the invalid record was deleted");
    }
}
