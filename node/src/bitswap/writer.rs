//! Write-behind for fetched blocks: one thread on the blocking pool takes verified blocks from
//! the client task through a bounded queue and hands each at once to a store [`BatchWriter`],
//! committing once per batch (whatever has queued up while the previous commit ran, up to
//! [`WRITE_BATCH`] blocks or [`WRITE_BATCH_BYTES`]). After each commit it tells the server,
//! which answers peers that wanted those blocks. It exits, after a last commit, when the
//! client task drops the queue.
//!
//! A `get` returns as soon as its block is verified, before it is durable. The client stages
//! the block in the store ([`Store::stage`]) before queueing it here, so it is readable at
//! once (and a `get` that follows a prefetch finds it instead of fetching it again); the
//! store's queue is the one place a block waits between arrival and the disk.
//! Memory stays bounded by the two queues ([`WRITE_QUEUE`] here and the store's), not by the
//! batch: a block's bytes are freed once written, the commit only makes them durable.
//!
//! [`BatchWriter`]: crate::store::BatchWriter
//! [`Store::stage`]: crate::store::Store::stage

use cairn_protocol::{Block, Cid};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::server;
use crate::store::Store;

/// Verified blocks waiting to be written; the client waits when it is full.
pub(crate) const WRITE_QUEUE: usize = 4;

/// Most blocks committed together.
const WRITE_BATCH: usize = 256;

/// Most bytes committed together.
const WRITE_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Start the writer; returns its queue and the thread's handle.
pub(crate) fn spawn(
    store: Store,
    server: mpsc::Sender<server::Command>,
    stored: Option<mpsc::Sender<Vec<Cid>>>,
) -> (mpsc::Sender<Block>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let handle = tokio::task::spawn_blocking(move || run(store, rx, server, stored));
    (tx, handle)
}

fn run(
    store: Store,
    mut rx: mpsc::Receiver<Block>,
    server: mpsc::Sender<server::Command>,
    stored: Option<mpsc::Sender<Vec<Cid>>>,
) {
    while let Some(first) = rx.blocking_recv() {
        // Each block goes to the store at once (readable there from then on, its bytes freed
        // once on disk); one commit covers whatever queued up meanwhile, within the limits.
        let mut w = store.writer();
        let mut cids = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(b) = next.take() {
            bytes += b.data.len();
            let cid = b.cid;
            let queued = w.write(b);
            cids.push(cid);
            if queued.is_err() {
                break; // the store is shut down; the commit below reports it
            }
            if cids.len() < WRITE_BATCH && bytes < WRITE_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        match w.commit() {
            Ok(()) => {
                if let Some(stored) = &stored {
                    // Announced under `provide.strategy = all`; waits if the schedule is behind.
                    let _ = stored.blocking_send(cids.clone());
                }
                // The server only needs this to answer wants that arrived before the block;
                // if it has stopped, there is nobody to answer.
                let _ = server.blocking_send(server::Command::NewBlocks(cids));
            }
            // A later get fetches the block again.
            Err(e) => tracing::warn!(blocks = cids.len(), "storing fetched blocks failed: {e}"),
        }
    }
    tracing::debug!("bitswap store writer stopped");
}
