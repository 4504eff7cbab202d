//! Repo maintenance: `repo stat` (sizes and counts) and `repo verify` (re-hash every block).

use cairn_protocol::cids::{self, RAW};
use cairn_protocol::Cid;

use crate::pins::{self, PinError};
use crate::store::{Store, StoreError};

/// Repo size and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RepoStat {
    /// Blocks stored.
    pub blocks: u64,
    /// Bytes of block data.
    pub block_bytes: u64,
    /// Bytes the metadata database uses on disk.
    pub meta_disk_bytes: u64,
    /// Stored pins (recursive and direct).
    pub pins: u64,
}

/// Count blocks, bytes and pins.
pub(crate) fn stat(store: &Store) -> Result<RepoStat, PinError> {
    let mut s = RepoStat::default();
    store.for_each_key(&mut |_, size| {
        s.blocks += 1;
        s.block_bytes += size;
        true
    })?;
    s.meta_disk_bytes = store.meta_disk_size()?;
    s.pins = pins::list_stored(store)?.len() as u64;
    Ok(s)
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub(crate) struct VerifyReport {
    /// Blocks checked.
    pub checked: u64,
    /// Blocks whose bytes do not match their hash, as raw CIDv1 of the stored multihash.
    pub corrupt: Vec<Cid>,
    /// Blocks whose hash function cannot be checked.
    pub unverifiable: Vec<Cid>,
}

/// Re-hash every block in the store; `progress` gets the number checked so far.
pub(crate) fn verify(store: &Store, progress: &dyn Fn(u64)) -> Result<VerifyReport, StoreError> {
    let mut keys = Vec::new();
    store.for_each_key(&mut |k, _| {
        keys.push(k);
        true
    })?;
    let mut report = VerifyReport::default();
    for key in keys {
        let Ok(mh) = multihash::Multihash::<64>::from_bytes(&key) else {
            continue;
        };
        let cid = Cid::new_v1(RAW, mh);
        let Some(bytes) = store.get_raw(&key)? else {
            continue;
        };
        match cids::verify(&cid, &bytes) {
            Ok(()) => {}
            Err(cids::CidError::Mismatch(_)) => report.corrupt.push(cid),
            Err(_) => report.unverifiable.push(cid),
        }
        report.checked += 1;
        progress(report.checked);
    }
    Ok(report)
}
