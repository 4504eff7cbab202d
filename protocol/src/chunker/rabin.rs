//! kubo's `rabin` content-defined chunker.
//!
//! This reproduces boxo's `chunker/rabin.go` (kubo v0.22, boxo v0.11), which wraps
//! `github.com/whyrusleeping/chunker` (kubo pins fe64bd25879f), a fork of restic's chunker.
//!
//! The fingerprint is a Rabin fingerprint over GF(2): the bytes of a sliding 16-byte window
//! (restic uses 64; the fork uses 16) read as a polynomial and reduced modulo kubo's irreducible
//! degree-53 polynomial `IpfsRabinPoly = 17437180132763653` (`0x3df305dfb2a805`). It rolls with
//! two precomputed tables: `out[b]` removes the byte leaving the window and `mod[b]` reduces
//! the 8 bits shifted past the degree.
//!
//! Boundary rule, as the fork implements it, for a chunk starting at offset 0:
//! - the split mask is `2^floor(log2(avg)) - 1` (so `avg` is rounded down to a power of two);
//! - the first `min - 16` bytes are skipped without hashing; hashing starts from the fork's reset
//!   state (a window primed with one `1` byte, which leaves the window after 16 bytes);
//! - the chunk ends at the first `L` in `min..=max` where the fingerprint of the window
//!   `[L - 16, L)` has `fp & mask == 0`, or at `max`, or at the end of the stream;
//! - the state is reset at every boundary, so boundaries depend only on the chunk's bytes.
//!
//! kubo's defaults (`rabin` with no size) are avg 256 KiB, min = avg / 3, max = avg + avg / 2.

use super::Chunker;

/// kubo's `DefaultBlockSize`, the average used by plain `rabin`.
pub const DEFAULT_AVG: usize = 256 * 1024;

/// kubo's `IpfsRabinPoly`, an irreducible polynomial of degree 53 over GF(2).
const POLYNOMIAL: u64 = 17_437_180_132_763_653;
/// The fork's `windowSize`.
const WINDOW: usize = 16;

/// Degree of a non-zero polynomial.
const fn degree(p: u64) -> u32 {
    63 - p.leading_zeros()
}

/// `x mod p` over GF(2), by long division.
const fn pol_mod(mut x: u64, p: u64) -> u64 {
    let dp = degree(p);
    while x != 0 && degree(x) >= dp {
        x ^= p << (degree(x) - dp);
    }
    x
}

/// Shift byte `b` into fingerprint `h` and reduce fully (the slow path, for table building).
const fn append_byte(h: u64, b: u8, p: u64) -> u64 {
    pol_mod((h << 8) | b as u64, p)
}

/// Precomputed tables for one polynomial (the fork's `tables`).
struct Tables {
    /// `out[b]` = fingerprint of `b` followed by 15 zero bytes: XOR it to drop `b` from the
    /// window.
    out: [u64; 256],
    /// `mod[b]` = `(b·x^53 mod P) | b·x^53`: one XOR both clears the 8 overflow bits and adds
    /// their residue.
    modulo: [u64; 256],
}

/// Right shift that brings the 8 bits above the degree down to a table index.
const SHIFT: u32 = degree(POLYNOMIAL) - 8;

impl Tables {
    const fn new(p: u64) -> Tables {
        let k = degree(p);
        let mut out = [0u64; 256];
        let mut modulo = [0u64; 256];
        let mut b = 0;
        while b < 256 {
            let mut h = append_byte(0, b as u8, p);
            let mut i = 0;
            while i < WINDOW - 1 {
                h = append_byte(h, 0, p);
                i += 1;
            }
            out[b] = h;
            let shifted = (b as u64) << k;
            modulo[b] = pol_mod(shifted, p) | shifted;
            b += 1;
        }
        Tables { out, modulo }
    }
}

/// The tables for kubo's polynomial, built at compile time.
static TABLES: Tables = Tables::new(POLYNOMIAL);

/// Shift one byte into a reduced fingerprint (the fork's inlined `append`).
#[inline(always)]
fn append(digest: u64, b: u8) -> u64 {
    // `digest` is always reduced (below 2^53), so the index is below 256.
    let index = (digest >> SHIFT) as usize & 0xff;
    ((digest << 8) | u64::from(b)) ^ TABLES.modulo[index]
}

/// kubo's rabin chunker: boundaries where a 16-byte Rabin fingerprint matches the mask derived
/// from `avg`, with chunks between `min` and `max` bytes.
#[derive(Clone, Debug)]
pub struct Rabin {
    min: usize,
    max: usize,
    mask: u64,
}

impl Rabin {
    /// A rabin chunker with kubo's `NewRabinMinMax(min, avg, max)` semantics; `avg` only sets
    /// the mask, as `2^floor(log2(avg)) - 1`.
    ///
    /// Callers are expected to validate as kubo does (`16 <= min < avg < max`). Out-of-range
    /// values are clamped so the chunker contract still holds: `max` to at least 1 and `min` to
    /// at most `max`. With `min < 16` kubo itself misbehaves (its skip count underflows); here
    /// hashing then simply starts at the chunk start.
    pub fn new(min: usize, avg: usize, max: usize) -> Self {
        let max = max.max(1);
        let min = min.min(max);
        let bits = avg.checked_ilog2().unwrap_or(0);
        let mask = (1u64 << bits) - 1;
        Rabin { min, max, mask }
    }
}

impl Chunker for Rabin {
    fn cut(&mut self, data: &[u8]) -> usize {
        let end = data.len().min(self.max);
        if end <= self.min {
            return end;
        }
        let (min, mask) = (self.min, self.mask);
        let start = min.saturating_sub(WINDOW);
        let warm_end = (start + WINDOW).min(end);

        // The fork's reset state: the window holds one `1` byte, so the fingerprint is 1. For
        // the first 15 bytes the outgoing window bytes are zeros (out[0] == 0); the 16th byte
        // pushes the primed `1` out.
        let mut digest: u64 = 1;
        for (k, &b) in data[start..warm_end].iter().enumerate() {
            if k == WINDOW - 1 {
                digest ^= TABLES.out[1];
            }
            digest = append(digest, b);
            let len = start + k + 1;
            if len >= min && digest & mask == 0 {
                return len;
            }
        }

        if warm_end == end {
            return end;
        }

        // Steady state (`warm_end == start + WINDOW`): every position here is past `min`, and
        // the window holds only data, so the outgoing byte is the one 16 positions back.
        let outgoing = &data[start..end - WINDOW];
        let incoming = &data[warm_end..end];
        for (i, (&out, &b)) in outgoing.iter().zip(incoming).enumerate() {
            digest = append(digest ^ TABLES.out[usize::from(out)], b);
            if digest & mask == 0 {
                return warm_end + i + 1;
            }
        }
        end
    }

    fn max_size(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::super::split_all;
    use super::*;
    use sha2::{Digest, Sha256};

    /// kubo's `rabin` default: avg 256 KiB, min = avg / 3, max = avg + avg / 2.
    fn kubo_default() -> Rabin {
        Rabin::new(DEFAULT_AVG / 3, DEFAULT_AVG, DEFAULT_AVG + DEFAULT_AVG / 2)
    }

    /// Deterministic pseudo-random bytes (splitmix64), so tests need no extra crates.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Fingerprint of a window computed from scratch, without the tables.
    fn naive_fingerprint(window: &[u8]) -> u64 {
        window.iter().fold(0, |h, &b| append_byte(h, b, POLYNOMIAL))
    }

    /// The boundary rule written out directly (valid for `min >= 16`).
    fn naive_cut(data: &[u8], min: usize, avg: usize, max: usize) -> usize {
        let n = data.len().min(max);
        let mask = (1u64 << avg.ilog2()) - 1;
        if n <= min {
            return n;
        }
        (min..=n).find(|&l| naive_fingerprint(&data[l - WINDOW..l]) & mask == 0).unwrap_or(n)
    }

    fn naive_split(mut data: &[u8], min: usize, avg: usize, max: usize) -> Vec<usize> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = naive_cut(data, min, avg, max);
            out.push(n);
            data = &data[n..];
        }
        out
    }

    /// A caller that reads its input in uneven pieces and calls `cut` as soon as it holds
    /// `max_size` bytes (or the input is exhausted), as the sans-IO contract allows.
    fn split_streamed(chunker: &mut dyn Chunker, data: &[u8], piece: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut read = 0;
        let mut step = 0;
        loop {
            while buf.len() < chunker.max_size() && read < data.len() {
                step += 1;
                let take = (piece + step * 7919 % piece).min(data.len() - read);
                buf.extend_from_slice(&data[read..read + take]);
                read += take;
            }
            if buf.is_empty() {
                return out;
            }
            let n = chunker.cut(&buf);
            assert!(n >= 1 && n <= buf.len());
            out.push(n);
            buf.drain(..n);
        }
    }

    /// A chain of SHA-256 digests starting from "hello world", concatenated.
    fn sha_chain(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut block = Sha256::digest(b"hello world");
        while out.len() < len {
            out.extend_from_slice(&block);
            block = Sha256::digest(block);
        }
        out.truncate(len);
        out
    }

    #[test]
    fn polynomial_and_tables_match_kubo() {
        assert_eq!(POLYNOMIAL, 0x003d_f305_dfb2_a805);
        assert_eq!(degree(POLYNOMIAL), 53);
        assert_eq!(SHIFT, 45);
        // Spot values of the fork's tables for IpfsRabinPoly and a 16-byte window, as
        // published in ipfs-shipyard/DAGger's rabin preset "GoIPFSv0".
        let t = &TABLES;
        assert_eq!(t.out[0], 0);
        assert_eq!(t.out[1], 0x17fa63217c2ad7);
        assert_eq!(t.out[2], 0x1207c39d4afdab);
        assert_eq!(t.out[255], 0x171e3aded86a75);
        assert_eq!(t.modulo[1], 0x3df305dfb2a805);
        assert_eq!(t.modulo[2], 0x46150e60d7f80f);
        assert_eq!(t.modulo[128], 0x10113dbd770e13e2);
        assert_eq!(t.modulo[255], 0x1fe1d6d65a0be2bc);
    }

    #[test]
    fn mask_from_avg() {
        assert_eq!(kubo_default().mask, (1 << 18) - 1);
        assert_eq!(Rabin::new(16, 300_000, 400_000).mask, (1 << 18) - 1);
        assert_eq!(Rabin::new(16, 262_143, 400_000).mask, (1 << 17) - 1);
        assert_eq!(kubo_default().min, 87381);
        assert_eq!(kubo_default().max_size(), 393216);
    }

    #[test]
    fn kubo_default_sha_chain_vector() {
        // Third-party vector (a Rust port of the fork checked against DAGger, which matches
        // go-ipfs): 512 KiB of chained SHA-256 digests under kubo's default rabin parameters.
        let data = sha_chain(524_288);
        assert_eq!(split_all(&mut kubo_default(), &data), vec![189_236, 177_457, 157_595]);
    }

    #[test]
    fn matches_the_boundary_rule() {
        let data = pseudo_random(3 << 20, 11);
        let got = split_all(&mut kubo_default(), &data);
        let (min, avg, max) = (DEFAULT_AVG / 3, DEFAULT_AVG, DEFAULT_AVG * 3 / 2);
        assert_eq!(got, naive_split(&data, min, avg, max));
        // Small parameters exercise many more boundaries.
        let small = split_all(&mut Rabin::new(16, 64, 256), &data[..200_000]);
        assert_eq!(small, naive_split(&data[..200_000], 16, 64, 256));
        assert!(small.len() > 1000);
    }

    #[test]
    fn deterministic_and_stateless() {
        let data = pseudo_random(3 << 20, 12);
        let mut reused = kubo_default();
        let first = split_all(&mut reused, &data);
        assert_eq!(split_all(&mut reused, &data), first);
        assert_eq!(split_all(&mut kubo_default(), &data), first);
        assert_eq!(first.iter().sum::<usize>(), data.len());
    }

    #[test]
    fn sizes_between_min_and_max() {
        let data = pseudo_random(16 << 20, 13);
        let mut c = kubo_default();
        let sizes = split_all(&mut c, &data);
        let (last, rest) = sizes.split_last().unwrap();
        for &s in rest {
            assert!((87381..=393216).contains(&s), "chunk of {s} bytes");
        }
        assert!(*last >= 1 && *last <= 393216);
        let avg = data.len() / sizes.len();
        assert!((200 << 10..=320 << 10).contains(&avg), "average {avg}");
    }

    #[test]
    fn uniform_inputs() {
        // Sixteen zero bytes fingerprint to 0, so zeros cut at every minimum.
        let zeros = vec![0u8; 300_000];
        assert_eq!(split_all(&mut kubo_default(), &zeros), vec![87381, 87381, 87381, 37857]);
        // A constant non-matching window never cuts before the maximum.
        let ones = vec![1u8; 1_000_000];
        assert_ne!(naive_fingerprint(&ones[..WINDOW]) & ((1 << 18) - 1), 0);
        assert_eq!(split_all(&mut kubo_default(), &ones), vec![393216, 393216, 213568]);
    }

    #[test]
    fn short_inputs_and_small_min() {
        let mut c = kubo_default();
        assert!(split_all(&mut c, &[]).is_empty());
        assert_eq!(split_all(&mut c, &[9]), vec![1]);
        assert_eq!(split_all(&mut c, &vec![5u8; 87381]), vec![87381]);
        // min below the window: hashing starts at the chunk start, from the primed state.
        let data = pseudo_random(10_000, 14);
        let sizes = split_all(&mut Rabin::new(1, 2, 8), &data);
        assert_eq!(sizes.iter().sum::<usize>(), data.len());
        assert!(sizes.iter().all(|&s| (1..=8).contains(&s)));
        assert_eq!(split_all(&mut Rabin::new(0, 0, 0), &data[..3]), vec![1, 1, 1]);
    }

    #[test]
    fn pieces_match_one_pass() {
        let data = pseudo_random(5 << 20, 15);
        let mut c = kubo_default();
        let whole = split_all(&mut c, &data);
        let mut rest = &data[..];
        let mut one_pass = Vec::new();
        while !rest.is_empty() {
            let n = c.cut(rest);
            one_pass.push(n);
            rest = &rest[n..];
        }
        assert_eq!(one_pass, whole);
        for piece in [1000, 65536, 300_001] {
            assert_eq!(split_streamed(&mut c, &data, piece), whole, "piece {piece}");
        }
    }

    #[test]
    fn insertion_only_changes_nearby_chunks() {
        let original = pseudo_random(4 << 20, 16);
        let mut edited = original.clone();
        edited.splice(1000..1000, *b"inserted!");
        let a = split_all(&mut kubo_default(), &original);
        let b = split_all(&mut kubo_default(), &edited);
        let chunks = |data: &[u8], sizes: &[usize]| -> Vec<Vec<u8>> {
            let mut at = 0;
            sizes
                .iter()
                .map(|&n| {
                    at += n;
                    data[at - n..at].to_vec()
                })
                .collect()
        };
        let (ca, cb) = (chunks(&original, &a), chunks(&edited, &b));
        assert!(ca.len() > 8);
        let tail = &ca[2..];
        assert!(cb.len() >= tail.len());
        assert_eq!(&cb[cb.len() - tail.len()..], tail);
        assert!(cb.len() - tail.len() <= 3);
    }
}
