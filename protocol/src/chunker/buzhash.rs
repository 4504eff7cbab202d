//! Buzhash content-defined chunker (placeholder until implemented).

use super::Chunker;

/// kubo's buzhash chunker.
#[derive(Clone, Debug, Default)]
pub struct Buzhash {}

impl Buzhash {
    /// A buzhash chunker with kubo's parameters.
    pub fn new() -> Self {
        Buzhash {}
    }
}

impl Chunker for Buzhash {
    fn cut(&mut self, data: &[u8]) -> usize {
        data.len().min(self.max_size())
    }
    fn max_size(&self) -> usize {
        512 * 1024
    }
}
