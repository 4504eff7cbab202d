//! The read cache: blocks read from disk and verified since the process started, kept so hot
//! content (a site's assets behind the gateway) is neither read nor hashed again.
//!
//! Bounded by bytes (`store.read_cache_bytes`), least recently used out first. A block enters
//! on its second read within the last [`SEEN_KEYS`] distinct reads, so one pass over a large
//! file (`cat`, an export) does not flush what is hot, nor grow the process by the cache's
//! size. Only verified bytes enter, and removal (GC, `block rm`, eviction) drops a key before
//! the disk does: a read that raced a removal is not cached (the generation moved on).

use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;

/// Distinct keys remembered as read once, for admission on the second read.
pub(crate) const SEEN_KEYS: usize = 8192;

/// Blocks larger than this share of the capacity are never cached: one must not evict many.
const MAX_SHARE: usize = 8;

/// Verified blocks by store key.
pub(crate) struct ReadCache {
    blocks: LruCache<Vec<u8>, Bytes>,
    seen: LruCache<Vec<u8>, ()>,
    bytes: usize,
    capacity: usize,
    generation: u64,
}

impl ReadCache {
    /// A cache of at most `capacity` bytes of blocks (0: off).
    pub(crate) fn new(capacity: usize) -> ReadCache {
        ReadCache {
            blocks: LruCache::unbounded(),
            seen: LruCache::new(NonZeroUsize::new(SEEN_KEYS).expect("non-zero")),
            bytes: 0,
            capacity,
            generation: 0,
        }
    }

    /// Change the capacity, dropping what no longer fits.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.shrink();
    }

    /// The block under `key`, if cached (now the most recently used).
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<Bytes> {
        self.blocks.get(key).cloned()
    }

    /// Whether `key` is cached (without touching its recency).
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.blocks.contains(key)
    }

    /// The generation a read starts in; pass it to [`ReadCache::offer`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// A block just read and verified, read since `generation`: cached if it was read before
    /// and no removal happened meanwhile.
    pub(crate) fn offer(&mut self, key: &[u8], bytes: &Bytes, generation: u64) {
        if generation != self.generation || self.capacity == 0 || bytes.len() > self.capacity / MAX_SHARE {
            return;
        }
        if self.seen.pop(key).is_none() {
            self.seen.put(key.to_vec(), ());
            return;
        }
        if let Some(old) = self.blocks.put(key.to_vec(), bytes.clone()) {
            self.bytes -= old.len();
        }
        self.bytes += bytes.len();
        self.shrink();
    }

    /// Forget `keys` (they are being removed from the store).
    pub(crate) fn remove<'a>(&mut self, keys: impl IntoIterator<Item = &'a Vec<u8>>) {
        self.generation += 1;
        for k in keys {
            if let Some(old) = self.blocks.pop(k) {
                self.bytes -= old.len();
            }
            self.seen.pop(k);
        }
    }

    /// Bytes of blocks held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn shrink(&mut self) {
        while self.bytes > self.capacity {
            match self.blocks.pop_lru() {
                Some((_, b)) => self.bytes -= b.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn a_block_enters_on_its_second_read_and_the_bytes_stay_bounded() {
        let mut c = ReadCache::new(1000);
        let g = c.generation();
        c.offer(b"a", &block(100), g);
        assert!(c.get(b"a").is_none(), "a first read is only remembered");
        c.offer(b"a", &block(100), g);
        assert_eq!(c.get(b"a").map(|b| b.len()), Some(100));
        for k in 0..30u8 {
            c.offer(&[k], &block(100), g);
            c.offer(&[k], &block(100), g);
        }
        assert!(c.bytes() <= 1000);
        assert!(c.get(b"a").is_none(), "the least recently used went first");
        assert!(c.get(&[29]).is_some());
    }

    #[test]
    fn a_read_that_raced_a_removal_is_not_cached_and_removed_keys_go() {
        let mut c = ReadCache::new(1000);
        let g = c.generation();
        c.offer(b"a", &block(10), g);
        c.offer(b"a", &block(10), g);
        let before = c.generation();
        c.remove([&b"a".to_vec()]);
        assert!(c.get(b"a").is_none());
        c.offer(b"b", &block(10), before);
        c.offer(b"b", &block(10), before);
        assert!(c.get(b"b").is_none(), "read before the removal: not cached");
    }

    #[test]
    fn large_blocks_and_a_zero_capacity_are_not_cached() {
        let mut c = ReadCache::new(800);
        let g = c.generation();
        c.offer(b"big", &block(101), g);
        c.offer(b"big", &block(101), g);
        assert!(c.get(b"big").is_none());
        let mut off = ReadCache::new(0);
        off.offer(b"a", &block(1), g);
        off.offer(b"a", &block(1), g);
        assert!(off.get(b"a").is_none());
    }
}
