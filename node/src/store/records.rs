//! Records other modules keep beside the blocks: pins, pins being fetched, other peers'
//! provider records and validated DHT value records. The owning module defines what the bytes
//! mean; the store owns the trees, and every call here either returns an error or is done
//! (and, for writes, durable) when it returns.

use super::{Store, StoreError, Tree};

/// A collection of records, each kept in its own keyspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// Pins, keyed by CID bytes (`pins`).
    Pins,
    /// Roots whose pin was interrupted while fetching, keyed by CID bytes.
    PendingPins,
    /// Other peers' provider records (`providers`).
    Providers,
    /// Validated DHT value records (`/ipns/`, `/pk/`), keyed by record key (`values`).
    Values,
    /// The IPNS records this node signs for its own names, keyed by routing key (`names`).
    Published,
    /// Names and CIDs this node follows, keyed by what was followed (`follow`).
    Follows,
    /// DHT peers this node knew and their addresses, keyed by peer ID bytes.
    Peers,
}

/// Pending pins share the `meta` tree under this prefix (their place since format 1).
const PENDING: &[u8] = b"pending-pin/";

/// So do this node's own IPNS records (a handful of keys: no tree of their own).
const PUBLISHED: &[u8] = b"ipns-own/";

/// And the follows (a handful too).
const FOLLOWS: &[u8] = b"follow/";

/// And the known peers (a few hundred at most).
const PEERS: &[u8] = b"peer/";

impl Records {
    fn place(self, key: &[u8]) -> (Tree, Vec<u8>) {
        match self {
            Records::Pins => (Tree::Pins, key.to_vec()),
            Records::PendingPins => (Tree::Meta, [PENDING, key].concat()),
            Records::Providers => (Tree::Providers, key.to_vec()),
            Records::Values => (Tree::Values, key.to_vec()),
            Records::Published => (Tree::Meta, [PUBLISHED, key].concat()),
            Records::Follows => (Tree::Meta, [FOLLOWS, key].concat()),
            Records::Peers => (Tree::Meta, [PEERS, key].concat()),
        }
    }
}

/// One change to a collection, for [`Store::apply_records`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordChange {
    /// Insert or replace.
    Put(Records, Vec<u8>, Vec<u8>),
    /// Remove (absent is fine).
    Remove(Records, Vec<u8>),
}

impl Store {
    /// One record.
    pub fn record(&self, records: Records, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (tree, key) = records.place(key);
        Ok(self.inner.meta.get(tree, &key)?)
    }

    /// Insert or replace one record; durable before it returns.
    pub(crate) fn put_record(&self, records: Records, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.apply_records(&[RecordChange::Put(records, key.to_vec(), value.to_vec())], true)
    }

    /// Remove records; durable before it returns.
    pub(crate) fn remove_records(&self, records: Records, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let changes: Vec<RecordChange> = keys.iter().map(|k| RecordChange::Remove(records, k.clone())).collect();
        self.apply_records(&changes, true)
    }

    /// Apply changes in order; with `durable`, flush once at the end. The first error stops
    /// the batch and is returned.
    pub(crate) fn apply_records(&self, changes: &[RecordChange], durable: bool) -> Result<(), StoreError> {
        let meta = &*self.inner.meta;
        for change in changes {
            match change {
                RecordChange::Put(r, k, v) => {
                    let (tree, key) = r.place(k);
                    meta.put(tree, &key, v)?;
                }
                RecordChange::Remove(r, k) => {
                    let (tree, key) = r.place(k);
                    meta.remove(tree, &key)?;
                }
            }
        }
        if durable && !changes.is_empty() {
            meta.flush()?;
        }
        Ok(())
    }

    /// Make every change applied so far durable.
    pub(crate) fn flush_records(&self) -> Result<(), StoreError> {
        Ok(self.inner.meta.flush()?)
    }

    /// Call `f` with every record of a collection in key order; stop early when it returns
    /// false.
    pub(crate) fn for_each_record(
        &self,
        records: Records,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let (tree, prefix) = records.place(&[]);
        Ok(self.inner.meta.for_each(tree, &mut |k, v| match k.strip_prefix(prefix.as_slice()) {
            Some(k) => f(k, v),
            None => true,
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_apart_and_changes_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        crate::repo::Repo::init(dir.path(), "local").unwrap();
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        let s = repo.store();
        s.put_record(Records::Pins, b"a", b"pin").unwrap();
        s.put_record(Records::PendingPins, b"a", b"recursive").unwrap();
        s.apply_records(
            &[
                RecordChange::Put(Records::Values, b"k".to_vec(), b"1".to_vec()),
                RecordChange::Put(Records::Values, b"k".to_vec(), b"2".to_vec()),
                RecordChange::Put(Records::Values, b"gone".to_vec(), b"x".to_vec()),
                RecordChange::Remove(Records::Values, b"gone".to_vec()),
            ],
            true,
        )
        .unwrap();
        let all = |r| {
            let mut out = Vec::new();
            s.for_each_record(r, &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
            out
        };
        assert_eq!(all(Records::Pins), vec![(b"a".to_vec(), b"pin".to_vec())]);
        assert_eq!(all(Records::PendingPins), vec![(b"a".to_vec(), b"recursive".to_vec())], "prefix stripped");
        assert_eq!(all(Records::Values), vec![(b"k".to_vec(), b"2".to_vec())]);
        assert!(all(Records::Providers).is_empty());
        s.remove_records(Records::PendingPins, &[b"a".to_vec()]).unwrap();
        assert_eq!(s.record(Records::PendingPins, b"a").unwrap(), None);
        assert_eq!(s.record(Records::Pins, b"a").unwrap(), Some(b"pin".to_vec()));
    }
}
