//! Fetch sessions: the caller's side of fetching. A [`Session`] is a cheap handle; its
//! state (the peers that served it, its root for provider searches) lives in the client
//! task, created on its first want and dropped once every clone of the handle is gone and
//! its wants are settled.
//!
//! `get` runs on the caller's task: blocks fetched but not yet written, then a local store
//! read on the blocking pool (bounded), then a want sent to the client task, then a wait for
//! the block with the overall deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_protocol::Cid;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::client::{Command, SessionRef};
use super::{Counters, FetchError};
use crate::store::Store;

/// CIDs per prefetch command (keeps each command small).
const HINT_CHUNK: usize = 256;

/// A fetch session. Clone it to share it between tasks: every clone is the same session, and
/// concurrent [`Session::get`]s on it pipeline.
#[derive(Clone)]
pub struct Session {
    id: u64,
    /// Cancelled when the last clone is dropped; the client task then forgets the session.
    alive: CancellationToken,
    _guard: Arc<DropGuard>,
    client: mpsc::Sender<Command>,
    store: Store,
    local_reads: Arc<Semaphore>,
    get_timeout: Duration,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        id: u64,
        client: mpsc::Sender<Command>,
        store: Store,
        local_reads: Arc<Semaphore>,
        get_timeout: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        let alive = CancellationToken::new();
        let guard = Arc::new(alive.clone().drop_guard());
        Session { id, alive, _guard: guard, client, store, local_reads, get_timeout, counters }
    }

    fn session_ref(&self) -> SessionRef {
        SessionRef { id: self.id, alive: self.alive.clone() }
    }

    /// The block named by `cid`: from the local store if it is there, otherwise fetched from
    /// peers and verified against `cid`. Fails with [`FetchError::Timeout`] after the
    /// configured deadline ([`super::BitswapConfig::get_timeout`]).
    pub async fn get(&self, cid: Cid) -> Result<Bytes, FetchError> {
        if let Some(data) = self.local(cid).await? {
            return Ok(data);
        }
        let (reply, rx) = oneshot::channel();
        let fetch = async {
            let cmd = Command::Want { session: self.session_ref(), cid, reply };
            self.client.send(cmd).await.map_err(|_| FetchError::Shutdown)?;
            rx.await.map_err(|_| FetchError::Shutdown)?
        };
        // On timeout the reply channel is dropped, and the client task forgets the want once
        // nobody else waits for it.
        tokio::time::timeout(self.get_timeout, fetch).await.map_err(|_| FetchError::Timeout(cid))?
    }

    /// Ask for these blocks too, without waiting: a hint that [`Session::get`] will want
    /// them soon (the next blocks of a file). Does not block; callers should leave out blocks
    /// they already have. A hint that does not fit in the client queue is dropped and
    /// counted (`Stats::hints_dropped`): it only costs latency, the later `get` asks anyway.
    pub fn want_ahead(&self, cids: &[Cid]) {
        for chunk in cids.chunks(HINT_CHUNK) {
            let cmd = Command::WantAhead { session: self.session_ref(), cids: chunk.to_vec() };
            if self.client.try_send(cmd).is_err() {
                self.counters.hints_dropped.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// The block from this node: fetched and not yet written, or in the store.
    async fn local(&self, cid: Cid) -> Result<Option<Bytes>, FetchError> {
        if let Some(data) = self.store.pending(&cid) {
            return Ok(Some(data));
        }
        let _permit = self.local_reads.acquire().await.map_err(|_| FetchError::Shutdown)?;
        Ok(self.store.handle().get(cid).await?)
    }
}
