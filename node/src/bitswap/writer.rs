//! Write-behind for fetched blocks: one thread on the blocking pool takes verified blocks from
//! the client task through a bounded queue, writes them through a store [`BatchWriter`] and
//! commits once per batch (whatever has queued up while the previous commit ran, up to
//! [`WRITE_BATCH`] blocks or [`WRITE_BATCH_BYTES`]). After each commit it tells the server,
//! which answers peers that wanted those blocks. It exits, after a last commit, when the
//! client task drops the queue.
//!
//! A `get` returns as soon as its block is verified, before it is durable; the queue bound
//! ([`WRITE_QUEUE`]) keeps the blocks not yet written to a few dozen. Until a block is
//! committed it is readable from [`Unwritten`], so a `get` that follows a prefetch finds it
//! instead of fetching it again.
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
pub(crate) const WRITE_QUEUE: usize = 32;

/// Most blocks committed together.
const WRITE_BATCH: usize = 256;

/// Most bytes committed together.
const WRITE_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Verified blocks handed out but not yet committed, by multihash. The client adds a block
/// before queueing it for the writer, the writer removes it after the commit; so it holds at
/// most the write queue and one batch, and shares their bytes rather than copying them.
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
) -> (mpsc::Sender<Block>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let handle = tokio::task::spawn_blocking(move || run(store, rx, unwritten, server));
    (tx, handle)
}

fn run(store: Store, mut rx: mpsc::Receiver<Block>, unwritten: Unwritten, server: mpsc::Sender<server::Command>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        let mut bytes = batch[0].data.len();
        while batch.len() < WRITE_BATCH && bytes < WRITE_BATCH_BYTES {
            match rx.try_recv() {
                Ok(b) => {
                    bytes += b.data.len();
                    batch.push(b);
                }
                Err(_) => break,
            }
        }
        let cids: Vec<Cid> = batch.iter().map(|b| b.cid).collect();
        let result = commit(&store, batch);
        // Committed (or failed: a later get then fetches the block again).
        unwritten.remove(&cids);
        match result {
            Ok(()) => {
                // The server only needs this to answer wants that arrived before the block;
                // if it has stopped, there is nobody to answer.
                let _ = server.blocking_send(server::Command::NewBlocks(cids));
            }
            Err(e) => tracing::warn!(blocks = cids.len(), "storing fetched blocks failed: {e}"),
        }
    }
    tracing::debug!("bitswap store writer stopped");
}

fn commit(store: &Store, batch: Vec<Block>) -> Result<(), crate::store::StoreError> {
    let mut w = store.writer();
    for b in batch {
        w.write(b)?;
    }
    w.commit()
}
