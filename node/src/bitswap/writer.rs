//! Write-behind for fetched blocks: one thread on the blocking pool takes verified blocks from
//! the client task through a bounded queue and hands each at once to a store [`BatchWriter`],
//! committing once per batch (whatever has queued up while the previous commit ran, up to
//! [`WRITE_BATCH`] blocks or [`WRITE_BATCH_BYTES`]). After each commit it tells the server,
//! which answers peers that wanted those blocks. It exits, after a last commit, when the
//! client task drops the queue.
//!
//! A `get` returns as soon as its block is verified, before it is durable. Until the store has
//! the block it is readable from [`Unwritten`], afterwards from the store (which serves blocks
//! it has queued), so a `get` that follows a prefetch finds it instead of fetching it again.
//! Memory stays bounded by the two queues ([`WRITE_QUEUE`] here and the store's), not by the
//! batch: a block's bytes are freed once written, the commit only makes them durable.
//!
//! [`BatchWriter`]: crate::store::BatchWriter

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_protocol::{Block, Cid};
use multihash::Multihash;
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

/// Verified blocks queued for the writer and not yet handed to the store, by multihash. The
/// client adds a block before queueing it, the writer removes it once the store has it; so it
/// holds at most the write queue, and shares the bytes rather than copying them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Unwritten(Arc<Mutex<HashMap<Multihash<64>, Bytes>>>);

impl Unwritten {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Multihash<64>, Bytes>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember a block about to be queued for writing.
    pub(crate) fn insert(&self, block: &Block) {
        self.lock().insert(*block.cid.hash(), block.data.clone());
    }

    /// The bytes of `cid`, if it is waiting to be written.
    pub(crate) fn get(&self, cid: &Cid) -> Option<Bytes> {
        self.lock().get(cid.hash()).cloned()
    }

    fn remove(&self, cids: &[Cid]) {
        let mut map = self.lock();
        for cid in cids {
            map.remove(cid.hash());
        }
    }
}

/// Start the writer; returns its queue and the thread's handle.
pub(crate) fn spawn(
    store: Store,
    unwritten: Unwritten,
    server: mpsc::Sender<server::Command>,
    stored: Option<mpsc::Sender<Vec<Cid>>>,
) -> (mpsc::Sender<Block>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let handle = tokio::task::spawn_blocking(move || run(store, rx, unwritten, server, stored));
    (tx, handle)
}

fn run(
    store: Store,
    mut rx: mpsc::Receiver<Block>,
    unwritten: Unwritten,
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
            unwritten.remove(&[cid]);
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
