//! The storage budget: blocks fetched for reads (`cat`, `get`, the gateway) without a pin are a
//! cache. When the repo's blocks pass `store.max_size_bytes`, a GC pass removes unpinned blocks
//! (never pinned ones, never those an add or fetch in progress holds), as kubo does with
//! `StorageMax`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::gc;
use crate::maintenance;
use crate::store::Store;

/// Check now: run a GC pass if the blocks take more than `max_bytes` (0: no budget). Returns
/// the bytes freed.
pub(crate) fn enforce(store: &Store, max_bytes: u64) -> Result<u64, crate::pins::PinError> {
    if max_bytes == 0 {
        return Ok(0);
    }
    let stat = maintenance::stat(store)?;
    if stat.block_bytes <= max_bytes {
        return Ok(0);
    }
    let report = gc::run(store)?;
    tracing::info!(
        freed = report.freed_bytes,
        removed = report.removed,
        "repo over its {max_bytes}-byte budget: evicted unpinned blocks"
    );
    Ok(report.freed_bytes)
}

/// Check every `period` (`store.gc_period_secs`) until `shutdown`.
pub(crate) async fn run(store: Store, max_bytes: u64, period: Duration, shutdown: CancellationToken) {
    if max_bytes == 0 {
        return;
    }
    let mut tick = tokio::time::interval(period.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let s = store.clone();
                match tokio::task::spawn_blocking(move || enforce(&s, max_bytes)).await {
                    Ok(Err(e)) => tracing::warn!("storage budget check failed: {e}"),
                    Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use cairn_protocol::cids::{cid_for, HashFn, RAW};
    use cairn_protocol::Block;

    use super::*;
    use crate::pins::{self, PinKind};
    use crate::store::{DiskFiles, SledMeta};

    #[test]
    fn over_budget_unpinned_blocks_go_and_pinned_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Box::new(DiskFiles::open(&dir.path().join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()),
        );
        let blocks: Vec<Block> = (0..8u8)
            .map(|i| {
                let data = Bytes::from(vec![i; 64 * 1024]);
                Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &data), data)
            })
            .collect();
        store.put_many(blocks.clone()).unwrap();
        pins::add(&store, &blocks[0].cid, PinKind::Direct, None).unwrap();
        assert_eq!(enforce(&store, 0).unwrap(), 0, "no budget: nothing evicted");
        assert_eq!(enforce(&store, 8 * 64 * 1024).unwrap(), 0, "within budget: nothing evicted");
        let freed = enforce(&store, 4 * 64 * 1024).unwrap();
        assert_eq!(freed, 7 * 64 * 1024, "every unpinned block evicted");
        assert!(store.has(&blocks[0].cid).unwrap(), "the pinned block stays");
        assert!(!store.has(&blocks[1].cid).unwrap());
    }
}
