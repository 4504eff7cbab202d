//! Pinning content that may not be local yet: fetch the whole DAG (store first, then the
//! network), make it durable, then pin it. The pin is recorded as pending in the store
//! ([`Records::PendingPins`]) before anything is fetched, so a pin interrupted by a crash or a restart resumes
//! when the node starts again. While a DAG is being fetched, its progress is in the node's
//! [`InProgress`] list, which `pin ls` shows.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

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
    /// The DAG is larger than the limit: counted from the blocks fetched, not from sizes the
    /// DAG declares.
    #[error("larger than the limit of {limit} bytes (stopped after fetching {seen} bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
        /// Bytes counted when the fetch stopped.
        seen: u64,
    },
}

/// How far a DAG being fetched for a pin has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The pin's label, if any.
    pub(crate) name: Option<String>,
    /// Blocks walked so far (local or fetched).
    pub(crate) blocks: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
}

/// The DAGs being fetched for pins now, by root: shared by `pin add`, resumed pins and
/// follows, read by `pin ls` and `follow status`.
#[derive(Clone, Default)]
pub(crate) struct InProgress(Arc<Mutex<BTreeMap<Cid, Progress>>>);

impl InProgress {
    /// The DAGs being fetched now.
    pub(crate) fn list(&self) -> Vec<(Cid, Progress)> {
        self.0.lock().expect("progress lock").iter().map(|(c, p)| (*c, p.clone())).collect()
    }

    /// The progress of one root, if it is being fetched.
    pub(crate) fn get(&self, root: &Cid) -> Option<Progress> {
        self.0.lock().expect("progress lock").get(root).cloned()
    }

    fn update(&self, root: Cid, f: impl FnOnce(&mut Progress)) {
        f(self.0.lock().expect("progress lock").entry(root).or_default());
    }

    fn done(&self, root: &Cid) {
        self.0.lock().expect("progress lock").remove(root);
    }
}

/// Ends a root's entry in [`InProgress`] however its fetch ends.
struct Tracked<'a>(&'a InProgress, Cid);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.0.done(&self.1);
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PinRemoteError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| PinRemoteError::Interrupted)
}

/// Roots whose pin is pending (being fetched, or interrupted), from the store.
pub(crate) fn pending_roots(store: &Store) -> Result<Vec<Cid>, StoreError> {
    let mut out = Vec::new();
    store.for_each_record(Records::PendingPins, &mut |k, _| {
        out.extend(Cid::try_from(k).ok());
        true
    })?;
    Ok(out)
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

/// What to fetch under a root, and how to report it.
pub(crate) struct Fetch<'a> {
    /// The whole DAG (false: the root block only).
    pub(crate) recursive: bool,
    /// Stop with [`PinRemoteError::TooLarge`] once the blocks walked pass this many bytes.
    pub(crate) max_bytes: Option<u64>,
    /// The pin's label, shown with the progress.
    pub(crate) name: Option<String>,
    /// Where the progress shows.
    pub(crate) progress: &'a InProgress,
}

/// Fetch every block of the DAG under `root` (or the root only) that is not local and make
/// the fetched blocks durable; nothing is pinned. Returns the blocks and bytes walked.
pub(crate) async fn fetch_dag(
    store: &Store,
    session: &Session,
    root: Cid,
    how: Fetch<'_>,
) -> Result<(u64, u64), PinRemoteError> {
    let _tracked = Tracked(how.progress, root);
    how.progress.update(root, |p| p.name = how.name.clone());
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
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut failed = None;
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
        let (cid, data, fetched) = match next {
            Ok(n) => n,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        count += 1;
        bytes += data.len() as u64;
        how.progress.update(root, |p| (p.blocks, p.bytes) = (count, bytes));
        if let Some(limit) = how.max_bytes.filter(|l| bytes > *l) {
            failed = Some(PinRemoteError::TooLarge { limit, seen: bytes });
            break;
        }
        if how.recursive {
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
    // What was fetched is kept (durable) even when the walk failed: a retry starts from it.
    blocking(move || writer.commit()).await??;
    match failed {
        Some(e) => Err(e),
        None => Ok((count, bytes)),
    }
}

/// Fetch every block of the DAG under `root` that is not local, then pin it (recursively or
/// only the root block).
pub(crate) async fn pin_remote(
    store: &Store,
    session: &Session,
    root: Cid,
    kind: PinKind,
    name: Option<String>,
    progress: &InProgress,
) -> Result<(), PinRemoteError> {
    store
        .handle()
        .call(move |s| s.put_record(Records::PendingPins, &root.to_bytes(), kind.as_str().as_bytes()))
        .await
        .map_err(PinRemoteError::Store)?;
    let how = Fetch { recursive: kind == PinKind::Recursive, max_bytes: None, name: name.clone(), progress };
    fetch_dag(store, session, root, how).await?;
    // Fetched blocks durable first, then the pin, then the pending mark goes.
    let s = store.clone();
    blocking(move || -> Result<(), PinRemoteError> {
        pins::add(&s, &root, kind, name)?;
        s.remove_records(Records::PendingPins, &[root.to_bytes()])?;
        Ok(())
    })
    .await?
}
