//! CID prefixes: how a `payload` block names its CID without the digest.

use super::*;

/// The CID prefix a `payload` block carries: `varint(version) ‖ varint(codec) ‖
/// varint(hash code) ‖ varint(digest length)`, i.e. the CID without its digest.
pub fn prefix_of(cid: &Cid) -> Vec<u8> {
    let version = match cid.version() {
        cid::Version::V0 => 0,
        cid::Version::V1 => 1,
    };
    let mh = cid.hash();
    let mut out = Vec::with_capacity(8);
    for v in [version, cid.codec(), mh.code(), u64::from(mh.size())] {
        crate::varint::put(v, &mut out);
    }
    out
}

/// Rebuild a block's CID from its prefix by hashing `data` with the prefix's hash function.
/// The result is by construction the CID of `data`. Supported: version 0 (dag-pb, sha2-256,
/// 32 bytes), version 1 with any codec and sha2-256 or blake3 (32 bytes) or identity (the
/// digest length is ignored, as go-cid does, and the data must fit in a CID).
pub fn cid_from_prefix(prefix: &[u8], data: &[u8]) -> Result<Cid, PrefixError> {
    let [version, codec, code, len] = parse_prefix(prefix)?;
    match version {
        0 if codec == cids::DAG_PB && code == cids::SHA2_256 && len == 32 => {
            Ok(cids::cid_for(cid::Version::V0, codec, HashFn::Sha2_256, data))
        }
        0 => Err(PrefixError::InvalidV0),
        1 => {
            let hash = match code {
                cids::IDENTITY => {
                    let mh = Multihash::wrap(cids::IDENTITY, data)
                        .map_err(|_| PrefixError::IdentityTooLong { len: data.len() })?;
                    return Ok(Cid::new_v1(codec, mh));
                }
                cids::SHA2_256 => HashFn::Sha2_256,
                cids::BLAKE3 => HashFn::Blake3,
                other => return Err(PrefixError::UnsupportedHash(other)),
            };
            if len != 32 {
                return Err(PrefixError::UnsupportedDigestLength { code, len });
            }
            Ok(cids::cid_for(cid::Version::V1, codec, hash, data))
        }
        other => Err(PrefixError::UnsupportedVersion(other)),
    }
}

fn parse_prefix(prefix: &[u8]) -> Result<[u64; 4], PrefixError> {
    let mut rest = prefix;
    let mut out = [0u64; 4];
    for slot in &mut out {
        let (value, tail) =
            unsigned_varint::decode::u64(rest).map_err(|_| PrefixError::Malformed("expected four varints"))?;
        *slot = value;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(PrefixError::Malformed("trailing bytes"));
    }
    Ok(out)
}
