//! The store for async code: every call that may touch the disk runs on the runtime's
//! blocking pool, so a slow disk never stalls a worker thread; what is in memory (blocks
//! staged or queued for the writer) is answered on the caller's task.

use bytes::Bytes;
use cairn_protocol::Cid;

use super::{Store, StoreError};

/// Async access to a [`Store`]. Cheap to clone; made with [`Store::handle`].
#[derive(Clone)]
pub struct AsyncStore {
    store: Store,
}

impl AsyncStore {
    pub(super) fn new(store: Store) -> AsyncStore {
        AsyncStore { store }
    }

    /// The synchronous store under this handle, for code already on a blocking thread.
    pub fn sync(&self) -> &Store {
        &self.store
    }

    /// Run `f` on the blocking pool with the store. A runtime shutting down answers
    /// [`StoreError::Shutdown`]; a panic in `f` goes on unwinding in the caller.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Shutdown),
        }
    }

    /// Read and verify a block ([`Store::get`]); a block not yet on disk comes from memory.
    pub async fn get(&self, cid: Cid) -> Result<Option<Bytes>, StoreError> {
        if let Some(data) = self.store.pending(&cid) {
            return Ok(Some(data));
        }
        // A hot block: no trip to the blocking pool.
        if let Some(data) = self.store.cached(&cid) {
            return Ok(Some(data));
        }
        self.call(move |s| s.get(&cid)).await
    }

    /// Whether the block is stored ([`Store::has`]).
    pub async fn has(&self, cid: Cid) -> Result<bool, StoreError> {
        if self.store.pending(&cid).is_some() || self.store.cached(&cid).is_some() {
            return Ok(true);
        }
        self.call(move |s| s.has(&cid)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sim::{Journal, SimFiles, SimMeta};
    use cairn_protocol::cids::{cid_for, HashFn, RAW};
    use cairn_protocol::Block;

    fn store() -> Store {
        let journal = Journal::default();
        Store::new(Box::new(SimFiles::new(journal.clone())), Box::new(SimMeta::new(journal)))
    }

    fn block(data: &'static [u8]) -> Block {
        Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, data), Bytes::from_static(data))
    }

    #[tokio::test]
    async fn answers_staged_written_and_missing_blocks() {
        let s = store();
        let h = s.handle();
        let staged = block(b"staged");
        let written = block(b"written");
        let missing = block(b"missing");
        s.stage(&staged);
        s.put_many([written.clone()]).unwrap();
        assert_eq!(h.get(staged.cid).await.unwrap().as_deref(), Some(&b"staged"[..]));
        assert_eq!(h.get(written.cid).await.unwrap().as_deref(), Some(&b"written"[..]));
        assert!(h.has(written.cid).await.unwrap());
        assert!(h.has(staged.cid).await.unwrap());
        assert!(!h.has(missing.cid).await.unwrap());
        assert_eq!(h.get(missing.cid).await.unwrap(), None);
    }

    #[tokio::test]
    async fn call_runs_off_the_worker_and_returns_its_error() {
        let h = store().handle();
        let name = h.call(|_| Ok(std::thread::current().name().map(str::to_owned))).await.unwrap();
        assert_ne!(name.as_deref(), Some("main"));
        let e = h.call(|_| -> Result<(), _> { Err(StoreError::Shutdown) }).await.unwrap_err();
        assert!(matches!(e, StoreError::Shutdown));
    }
}
