//! Unsigned LEB128 varints as multiformats and protobuf write them: encoding and encoded
//! length, shared by every format here. Decoding stays with each format, which knows how
//! strict it must be (dag-pb and CAR refuse non-minimal forms, Bitswap accepts what prost does).

use bytes::BufMut;

/// Append `v` as a varint.
pub fn put(v: u64, out: &mut impl BufMut) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.put_slice(unsigned_varint::encode::u64(v, &mut buf));
}

/// Bytes `v` takes as a varint.
pub fn len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_encoding() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put(v, &mut out);
            assert_eq!(out.len(), len(v), "{v}");
        }
    }
}
