//! The provide schedule: which keys this node announces to the DHT and when each was last
//! announced. The store owns both of its trees and keeps them in step here:
//!
//! - `provide`: multihash → Unix time of the last announcement (8 bytes, big-endian; 0: never);
//! - `provide_due`: that time (8 bytes, big-endian) followed by the multihash → nothing.
//!
//! The second is ordered by last announcement, so the keys due now are the front of the tree,
//! read until the first key announced recently enough: the cost follows the keys due, not the
//! size of the schedule. Only the provider task writes it.

use std::io;

use super::{Store, StoreError, Tree};

/// The keys due for an announcement, from the front of the schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Up to the asked limit: (multihash, last announcement; 0 never), oldest first.
    pub keys: Vec<(Vec<u8>, u64)>,
    /// Every key due, counted past the limit.
    pub total: u64,
    /// The earliest last announcement among the keys due that were ever announced.
    pub oldest: Option<u64>,
}

fn due_key(last: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&last.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn stamp_of(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl Store {
    /// Add keys (multihash bytes) to the schedule as never announced; keys already there keep
    /// their time. Durable before it returns; the count of keys added.
    pub(crate) fn schedule_provides(&self, keys: &[Vec<u8>]) -> Result<u64, StoreError> {
        let meta = &*self.inner.meta;
        let mut added = 0;
        for key in keys {
            if meta.get(Tree::Provide, key)?.is_none() {
                meta.put(Tree::ProvideDue, &due_key(0, key), &[])?;
                meta.put(Tree::Provide, key, &0u64.to_be_bytes())?;
                added += 1;
            }
        }
        if added > 0 {
            meta.flush()?;
        }
        Ok(added)
    }

    /// Remove keys from the schedule. Durable before it returns; the count removed.
    pub(crate) fn unschedule_provides(&self, keys: &[Vec<u8>]) -> Result<u64, StoreError> {
        let meta = &*self.inner.meta;
        let mut removed = 0;
        for key in keys {
            if let Some(v) = meta.get(Tree::Provide, key)? {
                meta.remove(Tree::ProvideDue, &due_key(stamp_of(&v), key))?;
                meta.remove(Tree::Provide, key)?;
                removed += 1;
            }
        }
        if removed > 0 {
            meta.flush()?;
        }
        Ok(removed)
    }

    /// Record that keys were announced at `now` (keys no longer scheduled are left out).
    pub(crate) fn stamp_provides(&self, keys: &[Vec<u8>], now: u64) -> Result<(), StoreError> {
        let meta = &*self.inner.meta;
        for key in keys {
            if let Some(v) = meta.get(Tree::Provide, key)? {
                meta.remove(Tree::ProvideDue, &due_key(stamp_of(&v), key))?;
                meta.put(Tree::ProvideDue, &due_key(now, key), &[])?;
                meta.put(Tree::Provide, key, &now.to_be_bytes())?;
            }
        }
        Ok(meta.flush()?)
    }

    /// Keys never announced or last announced at or before `before`, oldest first: at most
    /// `limit` of them, and the count of all.
    pub fn provides_due(&self, before: u64, limit: usize) -> Result<Due, StoreError> {
        let mut due = Due::default();
        self.inner.meta.for_each(Tree::ProvideDue, &mut |k, _| {
            let (last, key) = k.split_at(8.min(k.len()));
            let last = stamp_of(last);
            if last > before {
                return false;
            }
            due.total += 1;
            if last != 0 && due.oldest.is_none() {
                due.oldest = Some(last);
            }
            if due.keys.len() < limit {
                due.keys.push((key.to_vec(), last));
            }
            true
        })?;
        Ok(due)
    }

    /// Call `f` with every scheduled key; stop early when it returns false.
    pub fn for_each_scheduled(&self, f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), StoreError> {
        Ok(self.inner.meta.for_each(Tree::Provide, &mut |k, _| f(k))?)
    }

    /// Whether a key is scheduled, and when it was last announced (0: never).
    #[cfg(test)]
    pub(crate) fn scheduled(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.inner.meta.get(Tree::Provide, key)?.map(|v| stamp_of(&v)))
    }

    /// Format 1 → 2: `provide` keys that are CIDv1 bytes become the CID's multihash, keeping the
    /// latest announcement time when two CIDs of one block meet. CIDv0 keys already are
    /// multihashes, and multihash keys never parse as CIDv1, so a second run changes nothing.
    pub(crate) fn rekey_provides_by_multihash(&self) -> io::Result<()> {
        let meta = &*self.inner.meta;
        let mut moved: Vec<(Vec<u8>, Vec<u8>, u64)> = Vec::new();
        meta.for_each(Tree::Provide, &mut |k, v| {
            if let Ok(cid) = cairn_protocol::Cid::try_from(k) {
                if cid.version() == cid::Version::V1 {
                    let stamp = v.try_into().map(u64::from_be_bytes).unwrap_or(0);
                    moved.push((k.to_vec(), cid.hash().to_bytes(), stamp));
                }
            }
            true
        })?;
        for (old, mh, stamp) in moved {
            let existing = meta.get(Tree::Provide, &mh)?.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes);
            let stamp = existing.map_or(stamp, |e| e.max(stamp));
            meta.put(Tree::Provide, &mh, &stamp.to_be_bytes())?;
            meta.remove(Tree::Provide, &old)?;
        }
        meta.flush()
    }

    /// Rebuild the due index from the schedule (repo format 3). Safe to run again.
    pub(crate) fn index_provides_due(&self) -> io::Result<()> {
        let meta = &*self.inner.meta;
        let mut entries = Vec::new();
        meta.for_each(Tree::Provide, &mut |k, v| {
            entries.push(due_key(stamp_of(v), k));
            true
        })?;
        for k in entries {
            meta.put(Tree::ProvideDue, &k, &[])?;
        }
        meta.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        crate::repo::Repo::init(dir.path(), "local").unwrap();
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        (dir, repo.store().clone())
    }

    #[test]
    fn due_keys_are_read_from_the_front_and_stamps_move_them_back() {
        let (_dir, s) = store();
        let keys: Vec<Vec<u8>> = (0u8..5).map(|i| vec![0x12, 0x20, i]).collect();
        assert_eq!(s.schedule_provides(&keys).unwrap(), 5);
        assert_eq!(s.schedule_provides(&keys[..2]).unwrap(), 0, "already scheduled");
        s.stamp_provides(&keys[..2], 100).unwrap();
        s.stamp_provides(&keys[2..3], 200).unwrap();

        let due = s.provides_due(50, 10).unwrap();
        assert_eq!((due.keys.len(), due.total, due.oldest), (2, 2, None), "the two never announced");
        let due = s.provides_due(150, 10).unwrap();
        assert_eq!((due.total, due.oldest), (4, Some(100)));
        assert_eq!(due.keys[2..].iter().map(|k| k.1).collect::<Vec<_>>(), vec![100, 100], "oldest first");
        let due = s.provides_due(1000, 1).unwrap();
        assert_eq!((due.keys, due.total, due.oldest), (vec![(keys[3].clone(), 0)], 5, Some(100)), "all counted");

        assert_eq!(s.unschedule_provides(&keys[..3]).unwrap(), 3);
        s.stamp_provides(&keys[..1], 300).unwrap();
        assert_eq!(s.scheduled(&keys[0]).unwrap(), None, "an unscheduled key is not stamped back in");
        assert_eq!(s.provides_due(u64::MAX, 10).unwrap().total, 2, "no index entries left behind");
    }
}
