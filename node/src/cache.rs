//! The storage budget: blocks fetched for reads (`cat`, `get`, the gateway) without a pin are a
//! cache. When the repo's blocks pass `store.max_size_bytes`, a GC pass removes unpinned blocks
//! (never pinned ones, never those an add or fetch in progress holds), as kubo does with
//! `StorageMax`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::gc;
use crate::maintenance;
use crate::store::Store;

/// How often the repo size is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Check now: run a GC pass if the blocks take more than `max_bytes` (0: no budget). Returns
/// the bytes freed.
pub fn enforce(store: &Store, max_bytes: u64) -> Result<u64, crate::pins::PinError> {
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

/// Check every [`CHECK_INTERVAL`] until `shutdown`.
pub async fn run(store: Store, max_bytes: u64, shutdown: CancellationToken) {
    if max_bytes == 0 {
        return;
    }
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
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
