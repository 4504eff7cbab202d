//! The block store: blocks keyed by multihash (CIDv0 and CIDv1 of one block share an entry).
//! Large blocks live as files ([`files`]), small ones in the metadata engine ([`meta`]).
//!
//! Reads happen on the caller's thread and verify every block against the CID asked for, so a
//! block corrupted on disk is an error, never wrong bytes. Writes go through one writer thread
//! (the store actor) fed by bounded channels: callers open a [`BatchWriter`], stream blocks into
//! it, and `commit` it, which syncs the files once and flushes the metadata once; only then is
//! anything that refers to the blocks (a pin) written. Keys written by an open batch are
//! protected from garbage collection until the batch is dropped.
//!
//! Async code reaches it through [`AsyncStore`] ([`Store::handle`]), which runs every call
//! that may touch the disk on the blocking pool.
//!
//! The store is the only owner of the metadata trees: other modules read and write through
//! typed calls, the provide schedule ([`schedule`]) and the records kept beside the blocks
//! (pins, pending pins, DHT records: [`records`]), each returning an error or done (and, for
//! writes, durable) when it returns.

pub(crate) mod cache;
pub mod files;
pub mod handle;
pub mod meta;
pub mod records;
pub mod schedule;
#[cfg(any(test, feature = "test-utils"))]
pub mod sim;
pub mod space;

use std::collections::{hash_map, HashMap};
use std::io;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;

use bytes::Bytes;
use cairn_protocol::cids::{self, IDENTITY};
use cairn_protocol::{Block, Cid};
use crossbeam_channel::{bounded, Receiver, Sender};

pub use files::{DiskFiles, FileLayer};
pub use handle::AsyncStore;
pub use meta::{MetaLayer, SledMeta, Tree};
pub use records::{RecordChange, Records};
pub use schedule::Due;

/// Blocks up to this size are stored in the metadata engine: for such values sled is several
/// times faster than one file per block.
pub(crate) const SMALL_BLOCK_MAX: usize = 8 * 1024;

/// Blocks a writer may queue before `write` waits: bounds memory to a few MiB of blocks.
const WRITE_QUEUE: usize = 16;

/// Errors from the block store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk or database failed.
    #[error("block store I/O error: {0}")]
    Io(#[from] io::Error),
    /// Stored bytes do not hash to the CID: the block is corrupt on disk.
    #[error("block {0} is corrupt on disk (its bytes do not match its hash); run `cairn repo verify`")]
    Corrupt(Cid),
    /// The CID's hash function is not supported, so the block cannot be verified.
    #[error("cannot verify block {cid}: {source}")]
    Unverifiable {
        /// The block.
        cid: Cid,
        /// Why.
        source: cids::CidError,
    },
    /// The writer thread is gone (the store was shut down).
    #[error("block store is shut down")]
    Shutdown,
}

struct Inner {
    files: Box<dyn FileLayer>,
    meta: Box<dyn MetaLayer>,
    /// Keys held by open batches, with a count of holders.
    protected: Mutex<HashMap<Vec<u8>, usize>>,
    /// Blocks staged or handed to the writer thread and not yet written: the store's one
    /// notion of "have, not yet on disk". They are readable at once, and their bytes are
    /// released as soon as they reach the disk, not at the commit.
    queued: Mutex<HashMap<Vec<u8>, Bytes>>,
    /// Pin changes hold it shared, a GC run exclusively: a pin written while GC runs would
    /// otherwise be missed by its mark phase once the batch protecting its blocks is dropped.
    pin_gate: RwLock<()>,
    /// Free space the writer leaves on the disk (none for stores in tests).
    floor: Option<space::Floor>,
    /// Batches whose writes failed, so that their writers stop at the next block instead of
    /// reading and hashing the rest of their input first (the error itself comes at commit).
    failed: Mutex<HashMap<u64, String>>,
    /// Blocks read and verified since the process started, for hot reads (off until
    /// [`Store::set_read_cache`]).
    cache: Mutex<cache::ReadCache>,
}

enum Request {
    Put(Block),
    Commit(Sender<Result<(), String>>),
}

/// Handle to the block store. Cheap to clone; the writer thread stops when the last handle
/// and every batch writer are dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    tx: Sender<(u64, Request)>,
    next_batch: Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Open a store over the given layers and start its writer thread.
    pub fn new(files: Box<dyn FileLayer>, meta: Box<dyn MetaLayer>) -> Store {
        Store::with_floor(files, meta, None)
    }

    /// As [`Store::new`], refusing block writes that would leave less free space than `floor`.
    pub(crate) fn with_floor(
        files: Box<dyn FileLayer>,
        meta: Box<dyn MetaLayer>,
        floor: Option<space::Floor>,
    ) -> Store {
        let inner = Arc::new(Inner {
            files,
            meta,
            protected: Mutex::new(HashMap::new()),
            queued: Mutex::new(HashMap::new()),
            pin_gate: RwLock::new(()),
            floor,
            failed: Mutex::new(Default::default()),
            cache: Mutex::new(cache::ReadCache::new(0)),
        });
        let (tx, rx) = bounded(WRITE_QUEUE);
        let writer_inner = inner.clone();
        thread::Builder::new()
            .name("cairn-store-writer".into())
            .spawn(move || writer_loop(writer_inner, rx))
            .expect("spawn the store writer thread");
        Store { inner, tx, next_batch: Arc::new(Default::default()) }
    }

    /// The async handle on this store, for code on the runtime's workers.
    pub(crate) fn handle(&self) -> AsyncStore {
        AsyncStore::new(self.clone())
    }

    /// Whether a write may start: an error naming the free-space floor when the disk is below
    /// it (commands check this first, so they fail before reading their input).
    pub(crate) fn check_space(&self) -> Result<(), StoreError> {
        match &self.inner.floor {
            Some(f) => f.check_now().map_err(StoreError::Io),
            None => Ok(()),
        }
    }

    /// The metadata engine, raw (tests that write what older formats wrote).
    #[cfg(test)]
    pub(crate) fn meta(&self) -> &dyn MetaLayer {
        &*self.inner.meta
    }

    /// Make a verified block readable at once, before a batch writer takes it (Bitswap's
    /// write-behind hands blocks to its writer through a short queue). A batch that writes the
    /// block takes it over; [`Store::unstage`] drops one that will not be written.
    pub(crate) fn stage(&self, block: &Block) {
        if block.cid.hash().code() != IDENTITY {
            self.inner.queued.lock().expect("queued blocks lock").insert(key_of(&block.cid), block.data.clone());
        }
    }

    /// Drop a staged block that will not be written after all.
    pub(crate) fn unstage(&self, cid: &Cid) {
        self.inner.queued.lock().expect("queued blocks lock").remove(&key_of(cid));
    }

    /// The bytes of a block staged or queued and not yet on disk, without re-hashing them
    /// (they were verified, or made here, before they were staged or written).
    pub fn pending(&self, cid: &Cid) -> Option<Bytes> {
        self.inner.queued.lock().expect("queued blocks lock").get(&key_of(cid)).cloned()
    }

    /// Keep up to `bytes` of blocks read and verified, so hot blocks are neither read nor
    /// hashed again (`store.read_cache_bytes`; 0: off).
    pub fn set_read_cache(&self, bytes: u64) {
        self.cache().set_capacity(usize::try_from(bytes).unwrap_or(usize::MAX));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, cache::ReadCache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of blocks in the read cache now.
    pub(crate) fn read_cache_size(&self) -> usize {
        self.cache().bytes()
    }

    /// The block, if the read cache holds it (verified when it was read): no disk, no hash.
    pub(crate) fn cached(&self, cid: &Cid) -> Option<Bytes> {
        self.cache().get(&key_of(cid))
    }

    /// Read and verify the block named by `cid`. Identity CIDs return their inline bytes.
    /// A block read again soon comes from the read cache, verified once per process.
    pub fn get(&self, cid: &Cid) -> Result<Option<Bytes>, StoreError> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(Bytes::copy_from_slice(cid.hash().digest())));
        }
        let key = key_of(cid);
        let generation = {
            let mut cache = self.cache();
            if let Some(b) = cache.get(&key) {
                return Ok(Some(b));
            }
            cache.generation()
        };
        let Some(bytes) = self.get_raw(&key)? else {
            return Ok(None);
        };
        match cids::verify(cid, &bytes) {
            Ok(()) => {
                self.cache().offer(&key, &bytes, generation);
                Ok(Some(bytes))
            }
            Err(cids::CidError::Mismatch(_)) => Err(StoreError::Corrupt(*cid)),
            Err(source) => Err(StoreError::Unverifiable { cid: *cid, source }),
        }
    }

    /// Read the block named by `cid` without re-hashing it. For answering Bitswap peers, which
    /// verify every block they receive (kubo's default, `Datastore.HashOnRead = false`): hashing
    /// on both ends cost the sender a fifth of its CPU time. Local readers use [`Store::get`].
    pub(crate) fn get_unverified(&self, cid: &Cid) -> Result<Option<Bytes>, StoreError> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(Bytes::copy_from_slice(cid.hash().digest())));
        }
        self.get_raw(&key_of(cid))
    }

    /// Read the bytes under a multihash key without verifying them.
    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        if let Some(v) = self.inner.queued.lock().expect("queued blocks lock").get(key) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.inner.meta.get(Tree::Blocks, key)? {
            return Ok(Some(Bytes::from(v)));
        }
        Ok(self.inner.files.read(key)?.map(Bytes::from))
    }

    /// Whether the block is stored (identity CIDs always are).
    pub fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        if self.cache().contains(&key_of(cid)) {
            return Ok(true);
        }
        Ok(self.size(cid)?.is_some())
    }

    /// The stored size of the block, if present.
    pub fn size(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(cid.hash().digest().len() as u64));
        }
        self.size_of_key(&key_of(cid))
    }

    fn size_of_key(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        if let Some(v) = self.inner.queued.lock().expect("queued blocks lock").get(key) {
            return Ok(Some(v.len() as u64));
        }
        if let Some(v) = self.inner.meta.get(Tree::Blocks, key)? {
            return Ok(Some(v.len() as u64));
        }
        Ok(self.inner.files.size(key)?)
    }

    /// Held while changing pins: waits for a running GC to finish.
    pub(crate) fn pin_guard(&self) -> RwLockReadGuard<'_, ()> {
        self.inner.pin_gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held for a whole GC run: no pin changes meanwhile.
    pub(crate) fn gc_guard(&self) -> RwLockWriteGuard<'_, ()> {
        self.inner.pin_gate.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Start a batch of writes.
    pub(crate) fn writer(&self) -> BatchWriter {
        let id = self.next_batch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BatchWriter { store: self.clone(), id, keys: Vec::new() }
    }

    /// Put blocks and commit them durably (convenience for small batches).
    pub fn put_many(&self, blocks: impl IntoIterator<Item = Block>) -> Result<(), StoreError> {
        let mut w = self.writer();
        for b in blocks {
            w.write(b)?;
        }
        w.commit()
    }

    /// Remove blocks by multihash key and make the removal durable. Used by GC and `block rm`.
    pub(crate) fn remove_keys(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        // Out of the read cache first: a read racing the removal is then not cached either.
        self.cache().remove(keys);
        for key in keys {
            self.inner.meta.remove(Tree::Blocks, key)?;
            self.inner.files.remove(key)?;
        }
        self.inner.files.sync()?;
        self.inner.meta.flush()?;
        Ok(())
    }

    /// Remove the keys that no open batch holds, durably, and return those removed. The
    /// protected set stays locked meanwhile, so a batch that starts using one of these keys
    /// either protects it first (and it is kept) or writes it again afterwards.
    pub(crate) fn remove_unprotected(&self, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, StoreError> {
        let protected = self.inner.protected.lock().expect("protected set lock");
        let doomed: Vec<Vec<u8>> = keys.iter().filter(|k| !protected.contains_key(*k)).cloned().collect();
        self.remove_keys(&doomed)?;
        drop(protected);
        Ok(doomed)
    }

    /// Call `f` with every stored key and its size.
    pub(crate) fn for_each_key(&self, f: &mut dyn FnMut(Vec<u8>, u64) -> bool) -> Result<(), StoreError> {
        let mut go_on = true;
        self.inner.meta.for_each(Tree::Blocks, &mut |k, v| {
            go_on = f(k.to_vec(), v.len() as u64);
            go_on
        })?;
        if !go_on {
            return Ok(());
        }
        let mut err = None;
        self.inner.files.for_each_key(&mut |k| match self.inner.files.size(&k) {
            Ok(Some(n)) => f(k, n),
            Ok(None) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Bytes on disk used by the metadata engine.
    pub(crate) fn meta_disk_size(&self) -> Result<u64, StoreError> {
        Ok(self.inner.meta.disk_size()?)
    }

    /// Make every completed write durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.inner.files.sync()?;
        self.inner.meta.flush()?;
        Ok(())
    }

    fn protect(&self, key: &[u8]) {
        *self.inner.protected.lock().expect("protected set lock").entry(key.to_vec()).or_default() += 1;
    }

    fn unprotect(&self, keys: &[Vec<u8>]) {
        let mut set = self.inner.protected.lock().expect("protected set lock");
        for k in keys {
            if let Some(n) = set.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    set.remove(k);
                }
            }
        }
        // A large batch grew the set; give the memory back once it is done.
        if set.capacity() > 4 * set.len().max(1024) {
            let want = set.len() * 2;
            set.shrink_to(want);
        }
    }
}

/// The store key of a CID: its multihash bytes.
pub fn key_of(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

/// A batch of block writes, committed together. Blocks written are protected from GC until
/// the batch is dropped (after the caller has pinned what it needs).
pub(crate) struct BatchWriter {
    store: Store,
    id: u64,
    keys: Vec<Vec<u8>>,
}

impl BatchWriter {
    /// Queue one block; waits when the writer is behind. The block is readable from the
    /// store from now on, durable after [`BatchWriter::commit`]. Write errors surface at
    /// `commit`; once one happened, `write` fails at once with the same error, so the caller
    /// stops feeding a batch that cannot succeed (instead of reading all of its input first).
    pub(crate) fn write(&mut self, block: Block) -> Result<(), StoreError> {
        if block.cid.hash().code() == IDENTITY {
            return Ok(());
        }
        if let Some(msg) = self.store.inner.failed.lock().expect("failed batches lock").get(&self.id) {
            return Err(StoreError::Io(io::Error::other(msg.clone())));
        }
        let key = key_of(&block.cid);
        self.store.protect(&key);
        self.store.inner.queued.lock().expect("queued blocks lock").insert(key.clone(), block.data.clone());
        self.keys.push(key.clone());
        if self.store.tx.send((self.id, Request::Put(block))).is_err() {
            self.store.inner.queued.lock().expect("queued blocks lock").remove(&key);
            return Err(StoreError::Shutdown);
        }
        Ok(())
    }

    /// Wait until every queued block is written, then make them durable (one file-system
    /// sync, one metadata flush). Returns the first write error of this batch.
    pub(crate) fn commit(&mut self) -> Result<(), StoreError> {
        let (reply_tx, reply_rx) = bounded(1);
        self.store.tx.send((self.id, Request::Commit(reply_tx))).map_err(|_| StoreError::Shutdown)?;
        match reply_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StoreError::Io(io::Error::other(msg))),
            Err(_) => Err(StoreError::Shutdown),
        }
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        self.store.unprotect(&self.keys);
        self.store.inner.failed.lock().expect("failed batches lock").remove(&self.id);
    }
}

fn writer_loop(inner: Arc<Inner>, rx: Receiver<(u64, Request)>) {
    // First error per batch, reported at its commit.
    let mut errors: HashMap<u64, String> = HashMap::new();
    while let Ok((batch, req)) = rx.recv() {
        match req {
            Request::Put(block) => {
                if let hash_map::Entry::Vacant(slot) = errors.entry(batch) {
                    if let Err(e) = put_one(&inner, &block) {
                        let msg = describe_io(&e);
                        inner.failed.lock().expect("failed batches lock").insert(batch, msg.clone());
                        slot.insert(msg);
                    }
                }
                inner.queued.lock().expect("queued blocks lock").remove(&key_of(&block.cid));
            }
            Request::Commit(reply) => {
                inner.failed.lock().expect("failed batches lock").remove(&batch);
                let result = match errors.remove(&batch) {
                    Some(e) => Err(e),
                    None => inner.files.sync().and_then(|_| inner.meta.flush()).map_err(|e| describe_io(&e)),
                };
                let _ = reply.send(result);
            }
        }
    }
}

fn put_one(inner: &Inner, block: &Block) -> io::Result<()> {
    let key = key_of(&block.cid);
    if let Some(floor) = &inner.floor {
        floor.check(block.data.len() as u64)?;
    }
    if block.data.len() <= SMALL_BLOCK_MAX {
        if inner.meta.get(Tree::Blocks, &key)?.is_none() {
            inner.meta.put(Tree::Blocks, &key, &block.data)?;
        }
        return Ok(());
    }
    if inner.files.size(&key)? == Some(block.data.len() as u64) {
        return Ok(());
    }
    inner.files.write(&key, &block.data)
}

fn describe_io(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::StorageFull && e.raw_os_error().is_none() {
        // The floor's own message says what to do.
        e.to_string()
    } else if space::is_out_of_space(e) {
        format!("disk full while writing blocks ({e}); free space or lower the repo size, then retry")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_protocol::cids::{cid_for, HashFn, RAW};

    fn block(data: &[u8]) -> Block {
        Block::new_unchecked(cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, data), Bytes::copy_from_slice(data))
    }

    fn open(dir: &std::path::Path) -> Store {
        Store::new(
            Box::new(DiskFiles::open(&dir.join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.join("meta"), 1 << 20).unwrap()),
        )
    }

    #[test]
    fn small_and_large_blocks_round_trip_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let small = block(b"small");
        let large = block(&vec![9u8; SMALL_BLOCK_MAX + 1]);
        store.put_many([small.clone(), large.clone()]).unwrap();
        assert_eq!(store.get(&small.cid).unwrap().unwrap(), small.data);
        assert_eq!(store.get(&large.cid).unwrap().unwrap(), large.data);
        // CIDv0/v1 of the same bytes share the entry.
        let other = Cid::new_v1(0x70, *large.cid.hash());
        assert!(store.has(&other).unwrap());
        // Corrupt the large block on disk: reads must refuse it.
        store.inner.files.write(&key_of(&large.cid), b"evil").unwrap();
        assert!(matches!(store.get(&large.cid), Err(StoreError::Corrupt(_))));
    }

    /// Disk files whose writes first run a hook: one that waits for the test, or one that
    /// fails as a full disk does.
    struct Hooked(DiskFiles, Box<dyn Fn() -> io::Result<()> + Send + Sync>);

    impl FileLayer for Hooked {
        fn write(&self, key: &[u8], data: &[u8]) -> io::Result<()> {
            (self.1)()?;
            self.0.write(key, data)
        }
        fn read(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
            self.0.read(key)
        }
        fn size(&self, key: &[u8]) -> io::Result<Option<u64>> {
            self.0.size(key)
        }
        fn remove(&self, key: &[u8]) -> io::Result<()> {
            self.0.remove(key)
        }
        fn sync(&self) -> io::Result<()> {
            self.0.sync()
        }
        fn for_each_key(&self, f: &mut dyn FnMut(Vec<u8>) -> bool) -> io::Result<()> {
            self.0.for_each_key(f)
        }
    }

    #[test]
    fn a_failed_batch_refuses_further_writes_and_its_commit_reports_why() {
        let dir = tempfile::tempdir().unwrap();
        let full = || Err(io::Error::from_raw_os_error(libc::ENOSPC));
        let files = Hooked(DiskFiles::open(&dir.path().join("blocks")).unwrap(), Box::new(full));
        let store = Store::new(Box::new(files), Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()));
        let mut w = store.writer();
        w.write(block(&vec![1u8; SMALL_BLOCK_MAX + 1])).unwrap();
        // The writer thread fails the first block; the batch's writer learns it soon after.
        let start = std::time::Instant::now();
        let err = loop {
            match w.write(block(&vec![2u8; SMALL_BLOCK_MAX + 1])) {
                Err(e) => break e,
                Ok(()) => assert!(start.elapsed() < std::time::Duration::from_secs(5), "writes never failed"),
            }
        };
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(w.commit().unwrap_err().to_string().contains("disk full"));
        drop(w);
        assert!(store.inner.failed.lock().unwrap().is_empty(), "the failed batch is forgotten");
    }

    #[test]
    fn queued_blocks_are_readable_before_the_disk_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let (open_gate, gate) = bounded(0);
        let gate = Mutex::new(gate);
        let wait = move || gate.lock().expect("gate lock").recv().map_err(io::Error::other);
        let files = Hooked(DiskFiles::open(&dir.path().join("blocks")).unwrap(), Box::new(wait));
        let store = Store::new(Box::new(files), Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()));
        let large = block(&vec![7u8; SMALL_BLOCK_MAX + 1]);
        let mut w = store.writer();
        w.write(large.clone()).unwrap();
        // The writer thread is stuck in the file write: the block is served from the queue.
        assert_eq!(store.get(&large.cid).unwrap().unwrap(), large.data);
        assert_eq!(store.size(&large.cid).unwrap(), Some(large.data.len() as u64));
        assert!(store.inner.files.read(&key_of(&large.cid)).unwrap().is_none());
        open_gate.send(()).unwrap();
        w.commit().unwrap();
        // Written: the queue let go of the bytes and the disk serves them.
        assert!(store.inner.queued.lock().unwrap().is_empty());
        assert_eq!(store.get(&large.cid).unwrap().unwrap(), large.data);
    }

    #[test]
    fn staged_blocks_are_readable_until_written_or_unstaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Box::new(DiskFiles::open(&dir.path().join("blocks")).unwrap()),
            Box::new(SledMeta::open(&dir.path().join("meta"), 1 << 20).unwrap()),
        );
        let (kept, dropped) = (block(b"staged and written"), block(b"staged, never written"));
        store.stage(&kept);
        store.stage(&dropped);
        assert_eq!(store.pending(&kept.cid), Some(kept.data.clone()));
        assert!(store.has(&kept.cid).unwrap());
        assert_eq!(store.get(&dropped.cid).unwrap(), Some(dropped.data.clone()));
        store.unstage(&dropped.cid);
        assert!(!store.has(&dropped.cid).unwrap(), "an unstaged block is gone");
        let mut w = store.writer();
        w.write(kept.clone()).unwrap();
        w.commit().unwrap();
        assert_eq!(store.pending(&kept.cid), None, "written: no longer pending");
        assert_eq!(store.get(&kept.cid).unwrap(), Some(kept.data));
    }
}
