//! Rabin content-defined chunker (placeholder until implemented).

use super::Chunker;

/// kubo's default average rabin chunk size.
pub const DEFAULT_AVG: usize = 256 * 1024;

/// kubo's rabin chunker.
#[derive(Clone, Debug)]
pub struct Rabin {
    max: usize,
}

impl Rabin {
    /// A rabin chunker with the given bounds.
    pub fn new(_min: usize, _avg: usize, max: usize) -> Self {
        Rabin { max }
    }
}

impl Chunker for Rabin {
    fn cut(&mut self, data: &[u8]) -> usize {
        data.len().min(self.max)
    }
    fn max_size(&self) -> usize {
        self.max
    }
}
