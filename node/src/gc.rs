//! Garbage collection: mark every block reachable from a pin, then sweep the rest in batches.
//! Blocks held by open write batches (in-flight adds and fetches) are never swept, and the sweep
//! re-checks that protection for each batch so a block that became protected after marking is
//! kept. Each batch is one durable removal, so reads are never blocked for long.

use std::collections::HashSet;

use cairn_protocol::Cid;

use crate::dag::{self, WalkMode};
use crate::pins::{self, PinError, PinKind};
use crate::store::{key_of, Store};

/// Blocks removed per durable batch.
const SWEEP_BATCH: usize = 1024;

/// What a GC run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GcReport {
    /// Blocks kept because a pin reaches them.
    pub marked: u64,
    /// Blocks removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// The keys of every block a pin reaches (the mark phase). Callers that act on the result
/// hold [`Store::gc_guard`] or accept that pins may change meanwhile.
pub(crate) fn live_keys(store: &Store) -> Result<HashSet<Vec<u8>>, PinError> {
    let mut live: HashSet<Vec<u8>> = HashSet::new();
    for pin in pins::list_stored(store)? {
        match pin.kind {
            PinKind::Recursive => dag::walk(store, &pin.cid, WalkMode::LinksOnly, true, &mut |c, _| {
                live.insert(key_of(c));
                Ok(())
            })?,
            _ => {
                live.insert(key_of(&pin.cid));
            }
        }
    }
    Ok(live)
}

/// Run one mark-and-sweep pass.
pub(crate) fn run(store: &Store) -> Result<GcReport, PinError> {
    // No pin may change until the sweep is done: see `Store::gc_guard`.
    let _gate = store.gc_guard();
    let live = live_keys(store)?;
    let mut report = GcReport { marked: live.len() as u64, ..GcReport::default() };
    let mut doomed: Vec<(Vec<u8>, u64)> = Vec::new();
    store.for_each_key(&mut |k, size| {
        if !live.contains(&k) {
            doomed.push((k, size));
        }
        true
    })?;
    for batch in doomed.chunks(SWEEP_BATCH) {
        let keys: Vec<Vec<u8>> = batch.iter().map(|(k, _)| k.clone()).collect();
        let removed: HashSet<Vec<u8>> = store.remove_unprotected(&keys)?.into_iter().collect();
        report.removed += removed.len() as u64;
        report.freed_bytes += batch.iter().filter(|(k, _)| removed.contains(k)).map(|(_, s)| s).sum::<u64>();
    }
    Ok(report)
}

/// The blocks of these unpinned DAGs that no remaining pin reaches: no longer announced.
pub(crate) fn unreached(store: &Store, removed: &[Cid]) -> Result<Vec<Cid>, PinError> {
    let live = live_keys(store)?;
    let mut out = Vec::new();
    for root in removed {
        let _ = dag::walk(store, root, WalkMode::LinksOnly, true, &mut |c, _| {
            if !live.contains(&key_of(c)) {
                out.push(*c);
            }
            Ok(())
        });
    }
    Ok(out)
}
