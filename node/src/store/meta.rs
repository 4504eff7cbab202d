//! The metadata layer: small blocks, pins and bookkeeping in sled trees, behind a narrow trait
//! so the engine can be swapped (or simulated in crash tests) without touching the store.

use std::io;
use std::path::Path;

/// The keyspaces the store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Small block bytes, keyed by multihash.
    Blocks,
    /// Pins, keyed by CID bytes.
    Pins,
    /// Repo-wide values (format version, counters).
    Meta,
    /// Keys this node announces to the DHT, keyed by multihash, valued by the Unix time of
    /// their last announcement (0: never), so the schedule survives restarts.
    Provide,
    /// The same keys ordered by last announcement (time, then multihash), so the keys due are
    /// read from the front instead of found by a scan.
    ProvideDue,
    /// Other peers' provider records (the DHT record store's persistent copy).
    Providers,
    /// Validated DHT value records (`/ipns/`, `/pk/`), keyed by record key.
    Values,
}

impl Tree {
    fn name(self) -> &'static str {
        match self {
            Tree::Blocks => "blocks",
            Tree::Pins => "pins",
            Tree::Meta => "meta",
            Tree::Provide => "provide",
            Tree::ProvideDue => "provide_due",
            Tree::Providers => "providers",
            Tree::Values => "values",
        }
    }
}

/// Ordered key-value trees with an explicit durability barrier.
pub trait MetaLayer: Send + Sync + 'static {
    /// Read one value.
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Insert or replace one value.
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> io::Result<()>;
    /// Remove one value (absent is fine).
    fn remove(&self, tree: Tree, key: &[u8]) -> io::Result<()>;
    /// Call `f` with every entry in key order; stop early when it returns false.
    fn for_each(&self, tree: Tree, f: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> io::Result<()>;
    /// Make every change so far durable.
    fn flush(&self) -> io::Result<()>;
    /// Bytes the engine uses on disk.
    fn disk_size(&self) -> io::Result<u64>;
}

/// sled with a bounded page cache.
pub struct SledMeta {
    db: sled::Db,
}

fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl SledMeta {
    /// Open the database at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> io::Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            // Durability is explicit (flush per batch); no background flusher thread.
            .flush_every_ms(None)
            .open()
            .map_err(to_io)?;
        Ok(SledMeta { db })
    }

    fn tree(&self, tree: Tree) -> io::Result<sled::Tree> {
        self.db.open_tree(tree.name()).map_err(to_io)
    }
}

impl MetaLayer for SledMeta {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key).map_err(to_io)?.map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.tree(tree)?.insert(key, value).map_err(to_io)?;
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> io::Result<()> {
        self.tree(tree)?.remove(key).map_err(to_io)?;
        Ok(())
    }

    fn for_each(&self, tree: Tree, f: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> io::Result<()> {
        for item in self.tree(tree)?.iter() {
            let (k, v) = item.map_err(to_io)?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.db.flush().map_err(to_io)?;
        Ok(())
    }

    fn disk_size(&self) -> io::Result<u64> {
        self.db.size_on_disk().map_err(to_io)
    }
}
