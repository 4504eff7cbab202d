//! The records this node signs for its own names, kept in the store so that the daemon
//! republishes them after a restart: per name, the key that signs it, the lifetime asked for
//! and the last signed record. Blocking calls over the [`Store`].

use std::time::Duration;

use cairn_protocol::names::Name;
use cairn_protocol::records::{self, IpnsRecord, RecordError};
use libp2p::identity::Keypair;

use crate::net::now_nanos;
use crate::store::{Records, Store, StoreError};

/// One of this node's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Own {
    /// The name.
    pub name: Name,
    /// The keystore name of the key that signs it.
    pub key: String,
    /// How long each signed record stays valid.
    pub lifetime: Duration,
    /// The last signed record.
    pub bytes: Vec<u8>,
}

impl Own {
    /// `lifetime seconds (u64 BE) ‖ key name length (u8) ‖ key name ‖ record`.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.key.len() + self.bytes.len());
        out.extend_from_slice(&self.lifetime.as_secs().to_be_bytes());
        out.push(self.key.len() as u8);
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }

    fn decode(name: Name, v: &[u8]) -> Option<Own> {
        let secs = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
        let len = *v.get(8)? as usize;
        let key = String::from_utf8(v.get(9..9 + len)?.to_vec()).ok()?;
        Some(Own { name, key, lifetime: Duration::from_secs(secs), bytes: v.get(9 + len..)?.to_vec() })
    }
}

/// Sign a record for `key` pointing at `value`.
pub fn sign(
    key: &Keypair,
    value: &str,
    sequence: u64,
    lifetime: Duration,
    ttl: Duration,
) -> Result<Vec<u8>, RecordError> {
    let eol = now_nanos().saturating_add(lifetime.as_nanos().min(i128::MAX as u128) as i128);
    records::create_ipns(key, value.as_bytes(), sequence, eol, ttl.as_nanos().min(u64::MAX as u128) as u64)
}

/// This node's record for `name`, if it signs one.
pub fn own(store: &Store, name: &Name) -> Result<Option<Own>, StoreError> {
    Ok(store.record(Records::Published, &name.routing_key())?.and_then(|v| Own::decode(*name, &v)))
}

/// Every name this node signs for.
pub fn all(store: &Store) -> Result<Vec<Own>, StoreError> {
    let mut out = Vec::new();
    store.for_each_record(Records::Published, &mut |k, v| {
        if let Some(own) = Name::from_routing_key(k).and_then(|n| Own::decode(n, v)) {
            out.push(own);
        }
        true
    })?;
    Ok(out)
}

/// Keep a newly signed record; durable when it returns.
pub fn save(store: &Store, own: &Own) -> Result<(), StoreError> {
    store.put_record(Records::Published, &own.name.routing_key(), &own.encode())
}

/// The best valid record for `name` this node holds without asking the network: its own,
/// or one it stored for the DHT.
pub fn best_local(store: &Store, name: &Name) -> Result<Option<(IpnsRecord, Vec<u8>)>, StoreError> {
    let key = name.routing_key();
    let mut best: Option<(IpnsRecord, Vec<u8>)> = None;
    let own = own(store, name)?.map(|o| o.bytes);
    let held = store.record(Records::Values, &key)?;
    for bytes in [own, held].into_iter().flatten() {
        if let Ok(r) = records::validate_ipns(&name.peer_id(), &bytes, now_nanos()) {
            if best.as_ref().is_none_or(|(b, _)| newer(b, &r)) {
                best = Some((r, bytes));
            }
        }
    }
    Ok(best)
}

/// Whether `new` replaces `held`: a higher sequence, or the same with a later end of life.
pub fn newer(held: &IpnsRecord, new: &IpnsRecord) -> bool {
    (new.sequence, new.eol_nanos) > (held.sequence, held.eol_nanos)
}

/// The sequence number the next record for `name` takes: one past the highest this node
/// knows of (its own records, records it holds for the DHT, and `seen`).
pub fn next_sequence(store: &Store, name: &Name, seen: Option<u64>) -> Result<u64, StoreError> {
    let mut high = seen;
    if let Some(own) = own(store, name)? {
        if let Ok(r) = records::validate_ipns(&name.peer_id(), &own.bytes, i128::MIN) {
            high = high.max(Some(r.sequence));
        }
    }
    if let Some((r, _)) = best_local(store, name)? {
        high = high.max(Some(r.sequence));
    }
    Ok(high.map_or(0, |s| s.saturating_add(1)))
}

/// A key was renamed: the own records it signs now name it by `to`, so that republishing
/// finds it.
pub fn rename_key(store: &Store, from: &str, to: &str) -> Result<(), StoreError> {
    for mut own in all(store)? {
        if own.key == from {
            own.key = to.to_string();
            save(store, &own)?;
        }
    }
    Ok(())
}

/// A key was removed: the own records it signed are dropped (nothing can re-sign them; the
/// records already in the DHT live out their lifetime).
pub fn remove_key(store: &Store, key: &str) -> Result<(), StoreError> {
    let gone: Vec<Vec<u8>> = all(store)?.into_iter().filter(|o| o.key == key).map(|o| o.name.routing_key()).collect();
    store.remove_records(Records::Published, &gone)
}
