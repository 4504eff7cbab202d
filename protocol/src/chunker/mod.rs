//! Chunkers split a byte stream into the leaves of a file DAG. They are sans-IO: the caller keeps
//! a buffer that starts at the current chunk boundary and asks [`Chunker::cut`] where the next
//! chunk ends.
//!
//! Contract: the caller passes at least [`Chunker::max_size`] bytes, or every remaining byte of
//! the stream when fewer remain; `cut` returns the length of the next chunk, between 1 and
//! `data.len()` for non-empty `data`. A chunker may keep state between calls only if that state
//! is reset at each boundary, so the same bytes always cut the same way.

mod buzhash;
mod rabin;

pub use buzhash::Buzhash;
pub use rabin::Rabin;

/// The largest chunk any chunker may produce: kubo's limit, so that a leaf plus its dag-pb
/// wrapping always fits in Bitswap's 2 MiB block limit.
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// Finds chunk boundaries in a byte stream.
pub trait Chunker: Send {
    /// Length of the next chunk of `data` (see the module docs for the contract).
    fn cut(&mut self, data: &[u8]) -> usize;
    /// The longest chunk this chunker ever returns.
    fn max_size(&self) -> usize;
}

/// Fixed-size chunks (`size-N`): every chunk is N bytes except the last.
#[derive(Clone, Debug)]
pub struct Fixed {
    size: usize,
}

impl Fixed {
    /// A chunker cutting every `size` bytes; `size` must be in `1..=MAX_CHUNK_SIZE`.
    pub fn new(size: usize) -> Result<Self, ChunkerError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkerError::Size(size));
        }
        Ok(Fixed { size })
    }
}

impl Chunker for Fixed {
    fn cut(&mut self, data: &[u8]) -> usize {
        data.len().min(self.size)
    }
    fn max_size(&self) -> usize {
        self.size
    }
}

/// Errors in a chunker specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkerError {
    /// A chunk size outside `1..=MAX_CHUNK_SIZE`.
    #[error("chunk size {0} is out of range: it must be between 1 and {MAX_CHUNK_SIZE} bytes")]
    Size(usize),
    /// The specification string was not understood.
    #[error("invalid chunker {0:?}: use size-N, buzhash, rabin, rabin-AVG or rabin-MIN-AVG-MAX")]
    Spec(String),
    /// Rabin parameters not in increasing order.
    #[error("invalid rabin parameters: need min < avg < max (got {0}, {1}, {2})")]
    RabinOrder(usize, usize, usize),
}

/// A parsed chunker choice, as given by `--chunker` (kubo's syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkerSpec {
    /// `size-N`.
    Fixed(usize),
    /// `buzhash`.
    Buzhash,
    /// `rabin`, `rabin-AVG` or `rabin-MIN-AVG-MAX`.
    Rabin {
        /// Smallest chunk.
        min: usize,
        /// Target average chunk.
        avg: usize,
        /// Largest chunk.
        max: usize,
    },
}

impl ChunkerSpec {
    /// Parse kubo's chunker syntax.
    pub fn parse(text: &str) -> Result<Self, ChunkerError> {
        let bad = || ChunkerError::Spec(text.to_string());
        let num = |s: &str| s.parse::<usize>().map_err(|_| bad());
        if let Some(n) = text.strip_prefix("size-") {
            let size = num(n)?;
            Fixed::new(size)?;
            return Ok(ChunkerSpec::Fixed(size));
        }
        if text == "default" {
            return Ok(ChunkerSpec::Fixed(256 * 1024));
        }
        if text == "buzhash" {
            return Ok(ChunkerSpec::Buzhash);
        }
        if text == "rabin" {
            let avg = rabin::DEFAULT_AVG;
            return Ok(ChunkerSpec::Rabin { min: avg / 3, avg, max: avg + avg / 2 });
        }
        if let Some(rest) = text.strip_prefix("rabin-") {
            let parts: Vec<&str> = rest.split('-').collect();
            let (min, avg, max) = match parts.as_slice() {
                [avg] => {
                    let avg = num(avg)?;
                    (avg / 3, avg, avg + avg / 2)
                }
                [min, avg, max] => (num(min)?, num(avg)?, num(max)?),
                _ => return Err(bad()),
            };
            if !(min < avg && avg < max) || min == 0 {
                return Err(ChunkerError::RabinOrder(min, avg, max));
            }
            if max > MAX_CHUNK_SIZE {
                return Err(ChunkerError::Size(max));
            }
            return Ok(ChunkerSpec::Rabin { min, avg, max });
        }
        Err(bad())
    }

    /// Build the chunker this specification names.
    pub fn build(&self) -> Box<dyn Chunker> {
        match *self {
            ChunkerSpec::Fixed(size) => Box::new(Fixed { size }),
            ChunkerSpec::Buzhash => Box::new(Buzhash::new()),
            ChunkerSpec::Rabin { min, avg, max } => Box::new(Rabin::new(min, avg, max)),
        }
    }
}

impl std::fmt::Display for ChunkerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkerSpec::Fixed(n) => write!(f, "size-{n}"),
            ChunkerSpec::Buzhash => write!(f, "buzhash"),
            ChunkerSpec::Rabin { min, avg, max } => write!(f, "rabin-{min}-{avg}-{max}"),
        }
    }
}

/// Split a whole in-memory buffer into chunk lengths (tests and small inputs).
pub fn split_all(chunker: &mut dyn Chunker, mut data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let window = data.len().min(chunker.max_size());
        let n = chunker.cut(&data[..window]);
        assert!(n >= 1 && n <= data.len(), "chunker broke its contract");
        out.push(n);
        data = &data[n..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubo_syntax() {
        assert_eq!(ChunkerSpec::parse("size-262144").unwrap(), ChunkerSpec::Fixed(262144));
        assert_eq!(ChunkerSpec::parse("buzhash").unwrap(), ChunkerSpec::Buzhash);
        assert!(matches!(ChunkerSpec::parse("rabin").unwrap(), ChunkerSpec::Rabin { .. }));
        assert_eq!(
            ChunkerSpec::parse("rabin-100-200-300").unwrap(),
            ChunkerSpec::Rabin { min: 100, avg: 200, max: 300 }
        );
        assert!(ChunkerSpec::parse("size-0").is_err());
        assert!(ChunkerSpec::parse("size-2000000").is_err());
        assert!(ChunkerSpec::parse("rabin-300-200-100").is_err());
        assert!(ChunkerSpec::parse("zstd").is_err());
    }

    #[test]
    fn fixed_cuts_exact_sizes() {
        let mut c = Fixed::new(4).unwrap();
        assert_eq!(split_all(&mut c, b"0123456789"), vec![4, 4, 2]);
        assert!(split_all(&mut c, b"").is_empty());
    }
}
