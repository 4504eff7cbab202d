//! The Kademlia record store the swarm task reads and writes: provider records others announce
//! to us (bounded per key and in total), the keys we provide ourselves (no cap: a node may hold
//! millions of blocks), and value records (`/ipns/`, `/pk/`) that passed validation.
//!
//! It lives in memory because the swarm task must never wait on disk.

use std::borrow::Cow;
use std::collections::{hash_map, HashMap};
use std::time::{Duration, Instant};

use cairn_protocol::records::{self, RecordError, ValidRecord};
use libp2p::kad::store::{Error, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

use super::persist::{Change, Persister};

/// Providers kept per key: the replication factor, as go-libp2p-kad-dht keeps.
pub(crate) const MAX_PROVIDERS_PER_KEY: usize = 20;

/// Keys with remote provider records kept (about 200 bytes each: ~40 MiB at most).
pub(crate) const MAX_PROVIDER_KEYS: usize = 200_000;

/// Value records kept (IPNS and public keys; each ≤ [`MAX_VALUE_BYTES`]).
pub(crate) const MAX_RECORDS: usize = 16 * 1024;

/// The IPNS record size limit, the largest value we accept.
pub(crate) const MAX_VALUE_BYTES: usize = 10 * 1024;

/// Longest a value record is kept without being stored again (go-libp2p-kad-dht's 48 h).
pub(crate) const MAX_RECORD_AGE: Duration = Duration::from_secs(48 * 3600);

/// In-memory record store; see the module docs.
pub struct RecordStore {
    local: PeerId,
    /// Where changes to remote provider records go to be kept across restarts.
    persist: Option<Persister>,
    records: HashMap<RecordKey, Record>,
    providers: HashMap<RecordKey, Vec<ProviderRecord>>,
    provided: HashMap<RecordKey, ProviderRecord>,
}

impl RecordStore {
    /// An empty store for the node `local`.
    pub fn new(local: PeerId) -> Self {
        RecordStore {
            local,
            persist: None,
            records: HashMap::new(),
            providers: HashMap::new(),
            provided: HashMap::new(),
        }
    }

    /// Load persisted records, then send every later change to `persist`.
    pub(crate) fn restore(
        &mut self,
        records: Vec<ProviderRecord>,
        values: Vec<(RecordKey, Vec<u8>)>,
        persist: Persister,
    ) {
        for r in records {
            let _ = libp2p::kad::store::RecordStore::add_provider(self, r);
        }
        for (key, value) in values {
            let _ = self.offer(Record::new(key, value), super::now_nanos());
        }
        self.persist = Some(persist);
    }

    /// Store a value record if it is valid (IPNS signature and EOL, or a public key matching
    /// its peer ID) and replaces what is held under its key (a higher IPNS sequence, or a
    /// later EOL). Returns the record as stored, with its expiry set (the held one when the
    /// same record comes again), or `None` when the held one is kept.
    pub(crate) fn offer(&mut self, mut record: Record, now: i128) -> std::result::Result<Option<Record>, RecordError> {
        let valid = records::validate(record.key.as_ref(), &record.value, now)?;
        if let Some(held) = self.records.get(&record.key) {
            if held.value == record.value {
                // The same record again (a republish): nothing changes, and it may travel on.
                return Ok(Some(held.clone()));
            }
            let keep = records::validate(held.key.as_ref(), &held.value, now)
                .is_ok_and(|held| !records::replaces(&held, &valid));
            if keep {
                return Ok(None);
            }
        }
        let mut ttl = MAX_RECORD_AGE;
        if let ValidRecord::Ipns(r) = &valid {
            ttl = ttl.min(Duration::from_nanos(u64::try_from(r.eol_nanos - now).unwrap_or(u64::MAX)));
        }
        record.expires = Some(Instant::now() + ttl);
        libp2p::kad::store::RecordStore::put(self, record.clone())
            .map_err(|e| RecordError::Malformed(e.to_string()))?;
        if let Some(p) = &self.persist {
            p.send(Change::PutValue(record.key.clone(), record.value.clone()));
        }
        Ok(Some(record))
    }

    /// A stored value record, if any and not expired.
    pub fn value(&self, key: &RecordKey) -> Option<&Record> {
        self.records.get(key).filter(|r| !r.is_expired(Instant::now()))
    }

    /// Number of keys we provide ourselves.
    #[cfg(test)]
    fn provided_len(&self) -> usize {
        self.provided.len()
    }
}

impl libp2p::kad::store::RecordStore for RecordStore {
    type RecordsIter<'a> = std::iter::Map<hash_map::Values<'a, RecordKey, Record>, fn(&'a Record) -> Cow<'a, Record>>;
    type ProvidedIter<'a> = std::iter::Map<
        hash_map::Values<'a, RecordKey, ProviderRecord>,
        fn(&'a ProviderRecord) -> Cow<'a, ProviderRecord>,
    >;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.records.get(k).map(Cow::Borrowed)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        if r.value.len() > MAX_VALUE_BYTES {
            return Err(Error::ValueTooLarge);
        }
        if self.records.len() >= MAX_RECORDS && !self.records.contains_key(&r.key) {
            return Err(Error::MaxRecords);
        }
        self.records.insert(r.key.clone(), r);
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        if self.records.remove(k).is_some() {
            if let Some(p) = &self.persist {
                p.send(Change::RemoveValue(k.clone()));
            }
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.records.values().map(Cow::Borrowed)
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        if record.provider == self.local {
            self.provided.insert(record.key.clone(), record);
            return Ok(());
        }
        let len = self.providers.len();
        let list = match self.providers.entry(record.key.clone()) {
            hash_map::Entry::Occupied(e) => e.into_mut(),
            hash_map::Entry::Vacant(_) if len >= MAX_PROVIDER_KEYS => return Err(Error::MaxProvidedKeys),
            hash_map::Entry::Vacant(e) => e.insert(Vec::new()),
        };
        let kept = if let Some(existing) = list.iter_mut().find(|p| p.provider == record.provider) {
            // A re-announcement refreshes expiry and addresses.
            *existing = record.clone();
            true
        } else if list.len() < MAX_PROVIDERS_PER_KEY {
            // Keep the oldest providers when full: a flood of fresh peer IDs cannot push out
            // the ones that have served the key for long.
            list.push(record.clone());
            true
        } else {
            false
        };
        if let (true, Some(p)) = (kept, &self.persist) {
            p.send(Change::Put(record));
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out: Vec<ProviderRecord> = self.providers.get(key).cloned().unwrap_or_default();
        if let Some(own) = self.provided.get(key) {
            out.insert(0, own.clone());
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.provided.values().map(Cow::Borrowed)
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        if *p == self.local {
            self.provided.remove(k);
            return;
        }
        if let Some(persist) = &self.persist {
            persist.send(Change::Remove(k.clone(), *p));
        }
        if let hash_map::Entry::Occupied(mut e) = self.providers.entry(k.clone()) {
            e.get_mut().retain(|r| &r.provider != p);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::kad::store::RecordStore as _;

    use super::*;

    fn rec(key: &[u8], provider: PeerId) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&key), provider, Vec::new())
    }

    #[test]
    fn provider_lists_are_bounded_and_keep_the_oldest() {
        let local = PeerId::random();
        let mut s = RecordStore::new(local);
        let first: Vec<PeerId> = (0..MAX_PROVIDERS_PER_KEY).map(|_| PeerId::random()).collect();
        for p in &first {
            s.add_provider(rec(b"k", *p)).unwrap();
        }
        s.add_provider(rec(b"k", PeerId::random())).unwrap();
        let got: Vec<PeerId> = s.providers(&RecordKey::new(&b"k")).iter().map(|r| r.provider).collect();
        assert_eq!(got, first);
        s.add_provider(rec(b"k", local)).unwrap();
        assert_eq!(s.providers(&RecordKey::new(&b"k"))[0].provider, local, "our own record first");
        assert_eq!(s.provided().count(), 1);
        s.remove_provider(&RecordKey::new(&b"k"), &first[0]);
        assert_eq!(s.providers(&RecordKey::new(&b"k")).len(), MAX_PROVIDERS_PER_KEY);
    }

    #[test]
    fn local_keys_have_no_cap() {
        let local = PeerId::random();
        let mut s = RecordStore::new(local);
        for i in 0..5000u32 {
            s.add_provider(rec(&i.to_be_bytes(), local)).unwrap();
        }
        assert_eq!(s.provided_len(), 5000);
    }

    #[test]
    fn value_records_are_validated_and_only_newer_ones_replace() {
        let name_key = libp2p::identity::Keypair::generate_ed25519();
        let key = RecordKey::new(&records::ipns_key(&name_key.public().to_peer_id()));
        let now = crate::net::now_nanos();
        let hour = 3_600_000_000_000i128;
        let make = |seq, eol| {
            Record::new(key.clone(), records::create_ipns(&name_key, b"/ipfs/bafkqaaa", seq, eol, 0).unwrap())
        };
        let mut s = RecordStore::new(PeerId::random());
        assert!(matches!(s.offer(make(5, now - 1), now), Err(RecordError::Expired(_))));
        assert!(s.value(&key).is_none(), "nothing stored");
        let stored = s.offer(make(5, now + hour), now).unwrap().unwrap();
        let expires = stored.expires.unwrap();
        assert!(expires <= Instant::now() + Duration::from_secs(3600), "expiry bounded by the EOL");
        let again = s.offer(stored.clone(), now).unwrap().unwrap();
        assert_eq!((again.value, again.expires), (stored.value.clone(), stored.expires), "a republish is a no-op");
        assert_eq!(s.offer(make(4, now + 2 * hour), now), Ok(None), "an older sequence is ignored");
        assert!(s.offer(make(5, now + 2 * hour), now).unwrap().is_some(), "a later EOL replaces");
        assert!(s.offer(make(6, now + hour), now).unwrap().is_some(), "a newer sequence replaces");
        let held = s.value(&key).unwrap().value.clone();
        assert_eq!(held, make(6, now + hour).value);
        let mut bad = make(7, now + hour);
        bad.value[10] ^= 0xff;
        assert!(s.offer(bad, now).is_err());
        assert_eq!(s.value(&key).unwrap().value, held, "a bad record never replaces a good one");
    }
}
