//! kubo's `buzhash` content-defined chunker.
//!
//! This reproduces the splitter of boxo's `chunker/buzhash.go` (kubo v0.22, boxo v0.11; the
//! same code as go-ipfs-chunker v0.0.5), so the same bytes cut at the same places as in kubo.
//!
//! The hash is a 32-bit cyclic polynomial ("buzhash") over a rolling window of the last
//! 32 bytes: `h = rotl(h, 1) ^ T[incoming] ^ T[outgoing]`, where `T` is kubo's fixed 256-entry
//! table. Because the window is exactly as wide as the hash, the outgoing byte's table value has
//! been rotated 32 times (a full turn) when it leaves, so it is removed with a plain XOR.
//!
//! Boundary rule, for a chunk starting at offset 0 of the remaining data:
//! - with `n = min(remaining, 512 KiB)` bytes available and `n <= 128 KiB`, the chunk is all
//!   `n` bytes (this is also the last chunk of every stream);
//! - otherwise the hash is seeded with bytes `[128 KiB - 32, 128 KiB)` and the chunk ends at the
//!   first `L` in `128 KiB..n` whose window `[L - 32, L)` hashes to `h & (2^17 - 1) == 0`;
//! - if there is none, the chunk is `n` bytes: 512 KiB, or everything left at the end.
//!
//! The hash state is rebuilt from scratch for every chunk, so boundaries depend only on the bytes
//! from the chunk start.

use super::Chunker;

/// kubo's `buzMin`: no chunk is cut before 128 KiB (except the last one).
const MIN: usize = 128 << 10;
/// kubo's `buzMax`: chunks are cut at 512 KiB at the latest.
const MAX: usize = 512 << 10;
/// kubo's `buzMask`: a boundary is where the low 17 bits of the hash are zero.
const MASK: u32 = (1 << 17) - 1;
/// Width of the rolling window in bytes (equal to the hash width in bits).
const WINDOW: usize = 32;

/// kubo's buzhash chunker: boundaries where a 32-byte rolling buzhash has 17 zero low bits,
/// with chunks between 128 KiB and 512 KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Buzhash;

impl Buzhash {
    /// A buzhash chunker with kubo's fixed parameters (kubo has no tunable buzhash).
    pub const fn new() -> Self {
        Buzhash
    }
}

/// Hash of one full window, computed from scratch.
#[inline]
fn window_hash(window: &[u8]) -> u32 {
    window.iter().fold(0u32, |h, &b| h.rotate_left(1) ^ BYTEHASH[usize::from(b)])
}

impl Chunker for Buzhash {
    fn cut(&mut self, data: &[u8]) -> usize {
        let end = data.len().min(MAX);
        if end <= MIN {
            return end;
        }
        let data = &data[..end];
        let mut state = window_hash(&data[MIN - WINDOW..MIN]);
        // `state` is the hash of the window ending at `MIN + i`; sliding it forward takes
        // `outgoing[i]` out and `incoming[i]` in.
        let outgoing = &data[MIN - WINDOW..end - WINDOW];
        let incoming = &data[MIN..end];
        for (i, (&out, &inc)) in outgoing.iter().zip(incoming).enumerate() {
            if state & MASK == 0 {
                return MIN + i;
            }
            state = state.rotate_left(1) ^ BYTEHASH[usize::from(out)] ^ BYTEHASH[usize::from(inc)];
        }
        end
    }

    fn max_size(&self) -> usize {
        MAX
    }
}

/// kubo's `bytehash` table (boxo `chunker/buzhash.go`): each bit position is set in exactly
/// half of the entries.
#[rustfmt::skip]
static BYTEHASH: [u32; 256] = [
    0x6236e7d5, 0x10279b0b, 0x72818182, 0xdc526514, 0x2fd41e3d, 0x777ef8c8,
    0x83ee5285, 0x2c8f3637, 0x2f049c1a, 0x57df9791, 0x9207151f, 0x9b544818,
    0x74eef658, 0x2028ca60, 0x0271d91a, 0x27ae587e, 0xecf9fa5f, 0x236e71cd,
    0xf43a8a2e, 0x0bb13380, 0x9e57912c, 0x89a26cdb, 0x9fcf3d71, 0xa86da6f1,
    0x9c49f376, 0x346aecc7, 0xf094a9ee, 0xea99e9cb, 0xb01713c6, 0x088acffb,
    0x2960a0fb, 0x344a626c, 0x7ff22a46, 0x6d7a1aa5, 0x6a714916, 0x41d454ca,
    0x8325b830, 0x0b65f563, 0x447fecca, 0xf9d0ea5e, 0xc1d9d3d4, 0xcb5ec574,
    0x55aae902, 0x86edc0e7, 0x0d3a9e33, 0xe70dc1e1, 0xe3c5f639, 0x9b43140a,
    0xc6490ac5, 0x5e4030fb, 0x8e976dd5, 0xa87468ea, 0xf830ef6f, 0xcc1ed5a5,
    0x611f4e78, 0xddd11905, 0xf2613904, 0x566c67b9, 0x905a5ccc, 0x7b37b3a4,
    0x4b53898a, 0x6b8fd29d, 0xaad81575, 0x511be414, 0x3cfac1e7, 0x8029a179,
    0xd40efeda, 0x07380e02, 0xdc9beffd, 0x2d049082, 0x99bc7831, 0xff5002a8,
    0x21ce7646, 0x01cd049b, 0x0f43994f, 0xc3c6c5a5, 0xbbda5f50, 0x0ec15ec7,
    0x9adb19b6, 0x0c1e80b9, 0xb9b52968, 0xae162419, 0x2542b405, 0x91a42e9d,
    0x6be0f668, 0x6ed7a6b9, 0xbc2777b4, 0xe162ce56, 0x4266aad5, 0x60fdb704,
    0x66f832a5, 0x9595f6ca, 0xfee83ced, 0x55228d99, 0x12bf0e28, 0x66896459,
    0x0789afda, 0x0282baa8, 0x2367a343, 0x591491b0, 0x2ff1a4b1, 0x410739b6,
    0x9b7055a0, 0x2e0eb229, 0x24fc8252, 0x3327d3df, 0xb0782669, 0x1c62e069,
    0x7f503101, 0xf50593ae, 0xd9eb275d, 0xe00eb678, 0x5917ccde, 0x97b9660a,
    0xdd06202d, 0xed229e22, 0xa9c735bf, 0xd6316fe6, 0x6fc72e4c, 0x0206dfa2,
    0xd6b15c5a, 0x69d87b49, 0x09c97745, 0x13445d61, 0x35a975aa, 0x859aa9b9,
    0x65380013, 0xd1fb6391, 0xc29255fd, 0x784a3b91, 0xb9e74c26, 0x63ce4d40,
    0xc07cbe9e, 0xe6e4529e, 0x0fb3632f, 0x9438d9c9, 0x682f94a8, 0xf8fd4611,
    0x257ec1ed, 0x475ce3d6, 0x60ee2db1, 0x2afab002, 0x2b9e4878, 0x86b340de,
    0x1482fdca, 0xfe41b3bf, 0xd4a412b0, 0xe09db98c, 0xc1af5d53, 0x7e55e25f,
    0xd3346b38, 0xb7a12cbd, 0x9c6827ba, 0x71f78bee, 0x8c3a0f52, 0x150491b0,
    0xf26de912, 0x233e3a4e, 0xd309ebba, 0xa0a9e0ff, 0xca2b5921, 0xeeb9893c,
    0x33829e88, 0x9870cc2a, 0x23c4b9d0, 0xeba32ea3, 0xbdac4d22, 0x3bc8c44c,
    0x1e8d0397, 0xf9327735, 0x783b009f, 0x0eb83742, 0x2621dc71, 0xed017d03,
    0x5c760aa1, 0x5a69814b, 0x96e3047f, 0xa93c9cde, 0x615c86f5, 0xb4322aa5,
    0x4225534d, 0x0d2e2de3, 0xccfccc4b, 0x0bac2a57, 0xf0a06d04, 0xbc78d737,
    0xf2d1f766, 0xf5a7953c, 0xbcdfda85, 0x5213b7d5, 0xbce8a328, 0xd38f5f18,
    0xdb094244, 0xfe571253, 0x317fa7ee, 0x4a324f43, 0x3ffc39d9, 0x51b3fa8e,
    0x7a4bee9f, 0x78bbc682, 0x9f5c0350, 0x02fe286c, 0x245ab686, 0xed6bf7d7,
    0x0ac4988a, 0x3fe010fa, 0xc65fe369, 0xa45749cb, 0x2b84e537, 0xde9ff363,
    0x20540f9a, 0xaa8c9b34, 0x5bc476b3, 0x1d574bd7, 0x929100ad, 0x4721de4d,
    0x27df1b05, 0x58b18546, 0xb7e76764, 0xdf904e58, 0x97af57a1, 0xbd4dc433,
    0xa6256dfd, 0xf63998f3, 0xf1e05833, 0xe20acf26, 0xf57fd9d6, 0x90300b4d,
    0x89df4290, 0x68d01cbc, 0xcf893ee3, 0xcc42a046, 0x778e181b, 0x67265c76,
    0xe981a4c4, 0x82991da1, 0x708f7294, 0xe6e2ae62, 0xfc441870, 0x95e1b0b6,
    0x0445f825, 0x5a93b47f, 0x5e9cf4be, 0x84da71e7, 0x9d9582b0, 0x9bf835ef,
    0x591f61e2, 0x43325985, 0x5d2de32e, 0x8d8fbf0f, 0x95b30f38, 0x07ad5b6e,
    0x4e934edf, 0x3cd4990e, 0x9053e259, 0x5c41857d,
];

#[cfg(test)]
mod tests {
    use super::super::split_all;
    use super::*;

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

    /// The boundary rule written out directly: hash each candidate window from scratch.
    fn naive_cut(data: &[u8]) -> usize {
        let n = data.len().min(MAX);
        if n <= MIN {
            return n;
        }
        (MIN..n).find(|&l| window_hash(&data[l - WINDOW..l]) & MASK == 0).unwrap_or(n)
    }

    fn naive_split(mut data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = naive_cut(data);
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

    #[test]
    fn bytehash_bits_are_balanced() {
        // boxo's TestBuzhashBitsHashBias: a checksum on the transcription of the table.
        for bit in 0..32 {
            let ones = BYTEHASH.iter().filter(|&&h| h >> bit & 1 == 1).count();
            assert_eq!(ones, 128, "bit {bit}");
        }
    }

    #[test]
    fn matches_the_boundary_rule() {
        let data = pseudo_random(6 << 20, 1);
        let got = split_all(&mut Buzhash::new(), &data);
        assert_eq!(got, naive_split(&data));
        assert!(got.len() > 10);
    }

    #[test]
    fn deterministic_and_stateless() {
        let data = pseudo_random(3 << 20, 2);
        let mut reused = Buzhash::new();
        let first = split_all(&mut reused, &data);
        assert_eq!(split_all(&mut reused, &data), first);
        assert_eq!(split_all(&mut Buzhash::new(), &data), first);
        assert_eq!(first.iter().sum::<usize>(), data.len());
    }

    #[test]
    fn sizes_between_min_and_max() {
        let data = pseudo_random(16 << 20, 3);
        let sizes = split_all(&mut Buzhash::new(), &data);
        let (last, rest) = sizes.split_last().unwrap();
        for &s in rest {
            assert!((MIN..=MAX).contains(&s), "chunk of {s} bytes");
        }
        assert!(*last >= 1 && *last <= MAX);
        // Random data averages about MIN + 2^17 bytes per chunk.
        let avg = data.len() / sizes.len();
        assert!((200 << 10..=320 << 10).contains(&avg), "average {avg}");
    }

    #[test]
    fn short_and_exact_inputs() {
        let mut c = Buzhash::new();
        assert!(split_all(&mut c, &[]).is_empty());
        assert_eq!(split_all(&mut c, &[7]), vec![1]);
        let data = pseudo_random(MIN + 1, 4);
        assert_eq!(split_all(&mut c, &data[..MIN - 1]), vec![MIN - 1]);
        assert_eq!(split_all(&mut c, &data[..MIN]), vec![MIN]);
        // One byte past the minimum: the only candidate is L = MIN, which leaves 1 byte.
        let want = if window_hash(&data[MIN - WINDOW..MIN]) & MASK == 0 { vec![MIN, 1] } else { vec![MIN + 1] };
        assert_eq!(split_all(&mut c, &data), want);
    }

    #[test]
    fn uniform_inputs() {
        // A constant window hashes to the XOR of all 32 rotations of one table entry: 0 when
        // the entry has even popcount, all ones otherwise.
        let zeros = vec![0u8; 2 * MAX + 10];
        assert_eq!(BYTEHASH[0].count_ones() % 2, 0);
        assert_eq!(window_hash(&zeros[..WINDOW]), 0);
        let mut want = vec![MIN; (2 * MAX + 10) / MIN];
        want.push((2 * MAX + 10) % MIN);
        assert_eq!(split_all(&mut Buzhash::new(), &zeros), want);
        let odd = (0..=255u8).find(|&b| BYTEHASH[usize::from(b)].count_ones() % 2 == 1).unwrap();
        let same = vec![odd; 2 * MAX + 10];
        assert_eq!(window_hash(&same[..WINDOW]), u32::MAX);
        assert_eq!(split_all(&mut Buzhash::new(), &same), vec![MAX, MAX, 10]);
    }

    #[test]
    fn pieces_match_one_pass() {
        let data = pseudo_random(5 << 20, 5);
        let mut c = Buzhash::new();
        let whole = split_all(&mut c, &data);
        // Passing everything that remains (more than max_size) cuts the same way.
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
        let original = pseudo_random(4 << 20, 6);
        let mut edited = original.clone();
        edited.splice(1000..1000, *b"inserted!");
        let a = split_all(&mut Buzhash::new(), &original);
        let b = split_all(&mut Buzhash::new(), &edited);
        assert_resynced(&original, &a, &edited, &b);
    }

    /// All chunks of `a` after the first two reappear, identical, as the tail of `b`.
    fn assert_resynced(a_data: &[u8], a: &[usize], b_data: &[u8], b: &[usize]) {
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
        let (ca, cb) = (chunks(a_data, a), chunks(b_data, b));
        assert!(ca.len() > 8);
        let tail = &ca[2..];
        assert!(cb.len() >= tail.len());
        assert_eq!(&cb[cb.len() - tail.len()..], tail);
        assert!(cb.len() - tail.len() <= 3);
    }
}
