//! Pinning content that may not be local yet: fetch the whole DAG (store first, then the
//! network), make it durable, then pin it. The pin is recorded as pending in the store
//! ([`Records::PendingPins`]) before anything is fetched, so a pin interrupted by a crash or a restart resumes
//! when the node starts again.

use std::collections::HashSet;

use bytes::Bytes;
use cairn_protocol::{Block, Cid};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::bitswap::{FetchError, Session};
use crate::dag;
use crate::pins::{self, PinError, PinKind};
use crate::store::{key_of, Records, Store, StoreError};

/// Blocks fetched at once while walking a DAG to pin it.
pub(crate) const PIN_FETCH_WINDOW: usize = 64;

/// Why a remote pin failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PinRemoteError {
    /// A block could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block could not be parsed for links.
    #[error(transparent)]
    Dag(#[from] dag::DagError),
    /// Pinning failed.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// A blocking task was cancelled (the node is shutting down).
    #[error("interrupted: the node is shutting down; the pin resumes at the next start")]
    Interrupted,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PinRemoteError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| PinRemoteError::Interrupted)
}

/// Roots whose pin was interrupted, with the kind of pin asked for.
pub(crate) async fn pending(store: &Store) -> Result<Vec<(Cid, PinKind)>, PinRemoteError> {
    store
        .handle()
        .call(move |store| {
            let mut out = Vec::new();
            store.for_each_record(Records::PendingPins, &mut |k, v| {
                let kind = if v == b"direct" { PinKind::Direct } else { PinKind::Recursive };
                if let Ok(c) = Cid::try_from(k) {
                    out.push((c, kind));
                }
                true
            })?;
            Ok(out)
        })
        .await
        .map_err(PinRemoteError::Store)
}

/// Fetch every block of the DAG under `root` that is not local, then pin it (recursively or
/// only the root block). `progress` gets the number of blocks seen so far.
pub(crate) async fn pin_remote(
    store: &Store,
    session: &Session,
    root: Cid,
    kind: PinKind,
    name: Option<String>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), PinRemoteError> {
    store
        .handle()
        .call(move |s| s.put_record(Records::PendingPins, &root.to_bytes(), kind.as_str().as_bytes()))
        .await
        .map_err(PinRemoteError::Store)?;

    // Fetched blocks go to the store's batch writer from a blocking thread: its `write` waits
    // when the writer is behind, which must not stall a runtime worker.
    let (blocks_tx, mut blocks_rx) = tokio::sync::mpsc::channel::<Block>(PIN_FETCH_WINDOW);
    let mut writer = store.writer();
    let writing = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        while let Some(block) = blocks_rx.blocking_recv() {
            writer.write(block)?;
        }
        Ok(writer)
    });
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut todo = vec![root];
    let mut inflight = FuturesUnordered::new();
    let mut count = 0u64;
    seen.insert(key_of(&root));
    loop {
        while inflight.len() < PIN_FETCH_WINDOW {
            let Some(cid) = todo.pop() else { break };
            let (store, session) = (store.handle(), session.clone());
            inflight.push(async move {
                let local = store.get(cid).await?;
                let (data, fetched) = match local {
                    Some(b) => (b, false),
                    None => (session.get(cid).await?, true),
                };
                Ok::<(Cid, Bytes, bool), PinRemoteError>((cid, data, fetched))
            });
        }
        let Some(next) = inflight.next().await else { break };
        let (cid, data, fetched) = next?;
        count += 1;
        progress(count);
        if kind == PinKind::Recursive {
            for child in dag::links(&cid, &data)?.into_iter().rev() {
                if seen.insert(key_of(&child)) {
                    todo.push(child);
                }
            }
        }
        if fetched && blocks_tx.send(Block::new_unchecked(cid, data)).await.is_err() {
            // The writer stopped: its error is reported below.
            break;
        }
    }
    drop(blocks_tx);
    let mut writer = writing.await.map_err(|e| PinRemoteError::Store(StoreError::Io(std::io::Error::other(e))))??;
    // Fetched blocks durable first, then the pin, then the pending mark goes.
    let s = store.clone();
    blocking(move || -> Result<(), PinRemoteError> {
        writer.commit()?;
        pins::add(&s, &root, kind, name)?;
        s.remove_records(Records::PendingPins, &[root.to_bytes()])?;
        Ok(())
    })
    .await?
}
