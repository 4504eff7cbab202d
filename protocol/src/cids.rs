//! CIDs and multihashes: parsing any textual form, printing in the conventional base, hashing
//! block bytes and checking that bytes match a CID. Built on the `cid` and `multihash` crates.

use cid::Cid;
use multibase::Base;
use multihash::Multihash;
use multihash_codetable::{Code, MultihashDigest};

/// Multicodec of raw binary blocks (UnixFS raw leaves).
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb (UnixFS nodes).
pub const DAG_PB: u64 = 0x70;
/// Multicodec of dag-cbor (IPNS record data, CAR headers).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of libp2p public keys (IPNS names).
pub const LIBP2P_KEY: u64 = 0x72;

/// Multihash code of sha2-256, the IPFS default.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of blake3 (32-byte digest).
pub const BLAKE3: u64 = 0x1e;
/// Multihash code of the identity "hash" (inline data).
pub const IDENTITY: u64 = 0x00;

/// Largest identity multihash digest we accept when verifying (inline CIDs stay small).
pub const MAX_IDENTITY_DIGEST: usize = 128;

/// Errors from parsing CIDs or checking blocks against them.
#[derive(Debug, thiserror::Error)]
pub enum CidError {
    /// The text is not a CID in any supported form.
    #[error("invalid CID {text:?}: {reason}")]
    Parse {
        /// What the user gave.
        text: String,
        /// Why it was refused.
        reason: String,
    },
    /// The CID uses a hash function cairn does not implement.
    #[error("unsupported hash function 0x{0:x} (supported: sha2-256, blake3, identity)")]
    UnsupportedHash(u64),
    /// The CID uses a codec cairn does not know.
    #[error("unsupported codec 0x{0:x}")]
    UnsupportedCodec(u64),
    /// The bytes do not hash to the CID's digest.
    #[error("block does not match its CID {0}")]
    Mismatch(Cid),
}

/// A supported multihash function for new blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashFn {
    /// sha2-256 (default, required for CIDv0).
    Sha2_256,
    /// blake3 with a 32-byte digest.
    Blake3,
}

impl HashFn {
    /// The multihash code of this function.
    pub fn code(self) -> u64 {
        match self {
            HashFn::Sha2_256 => SHA2_256,
            HashFn::Blake3 => BLAKE3,
        }
    }

    /// Hash `data` into a multihash.
    pub fn digest(self, data: &[u8]) -> Multihash<64> {
        match self {
            HashFn::Sha2_256 => Code::Sha2_256.digest(data),
            HashFn::Blake3 => Code::Blake3_256.digest(data),
        }
    }

    /// Parse a user-facing name (`sha2-256`, `blake3`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha2-256" | "sha256" => Some(HashFn::Sha2_256),
            "blake3" => Some(HashFn::Blake3),
            _ => None,
        }
    }

    /// The user-facing name.
    pub fn name(self) -> &'static str {
        match self {
            HashFn::Sha2_256 => "sha2-256",
            HashFn::Blake3 => "blake3",
        }
    }
}

/// Parse a CID from text: CIDv0 (base58btc `Qm…`) or CIDv1 in any multibase (base32 `b…`,
/// base36 `k…`, base58btc `z…`, …).
pub fn parse(text: &str) -> Result<Cid, CidError> {
    let trimmed = text.trim();
    let err = |reason: String| CidError::Parse { text: text.to_string(), reason };
    let cid = Cid::try_from(trimmed).map_err(|e| err(e.to_string()))?;
    // The varint reader accepts overlong encodings (found by fuzzing): two texts for one CID,
    // or a text whose bytes name a different CID than they spell. Only the canonical form parses.
    let bytes = match cid.version() {
        cid::Version::V0 => multibase::Base::Base58Btc.decode(trimmed),
        cid::Version::V1 => multibase::decode(trimmed).map(|(_, b)| b),
    }
    .map_err(|e| err(e.to_string()))?;
    if bytes != cid.to_bytes() {
        return Err(err("not the canonical encoding (an overlong varint)".into()));
    }
    Ok(cid)
}

/// Read one CID from the front of `input`, advancing it, refusing encodings other than the
/// canonical one (overlong varints, which would give one CID two byte forms).
pub fn read_canonical(input: &mut &[u8]) -> Result<Cid, String> {
    let start = *input;
    let cid = Cid::read_bytes(&mut *input).map_err(|e| e.to_string())?;
    let used = &start[..start.len() - input.len()];
    if cid.to_bytes() != used {
        return Err("not the canonical encoding (an overlong varint)".into());
    }
    Ok(cid)
}

/// Decode a CID from its binary form, refusing trailing bytes. Never panics.
pub fn from_bytes(bytes: &[u8]) -> Result<Cid, CidError> {
    let mut reader = bytes;
    let cid = read_canonical(&mut reader)
        .map_err(|reason| CidError::Parse { text: format!("0x{}", hex_prefix(bytes)), reason })?;
    if !reader.is_empty() {
        return Err(CidError::Parse {
            text: format!("0x{}", hex_prefix(bytes)),
            reason: format!("{} trailing bytes", reader.len()),
        });
    }
    Ok(cid)
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Print a CID the way IPFS tools do: base58btc for v0, base32 for v1.
pub fn to_text(cid: &Cid) -> String {
    cid.to_string()
}

/// Print a CIDv1 in the given multibase (v0 is always base58btc).
pub fn to_text_in(cid: &Cid, base: Base) -> String {
    match cid.version() {
        cid::Version::V0 => cid.to_string(),
        cid::Version::V1 => cid.to_string_of_base(base).unwrap_or_else(|_| cid.to_string()),
    }
}

/// The same content named as a CIDv1 (same codec and multihash), whose text form is base32:
/// what subdomain gateways need, since DNS labels are case-insensitive.
pub fn to_v1(cid: &Cid) -> Cid {
    Cid::new_v1(cid.codec(), *cid.hash())
}

/// Build the CID of `data` with the given version, codec and hash. CIDv0 requires dag-pb and
/// sha2-256; callers pick settings that satisfy that (the profile validates it).
pub fn cid_for(version: cid::Version, codec: u64, hash: HashFn, data: &[u8]) -> Cid {
    let mh = hash.digest(data);
    match version {
        cid::Version::V0 if codec == DAG_PB && hash == HashFn::Sha2_256 => {
            Cid::new_v0(mh).expect("sha2-256 multihash is a valid CIDv0")
        }
        _ => Cid::new_v1(codec, mh),
    }
}

/// Check that `data` hashes to `cid`'s multihash. Identity CIDs compare the inline digest.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), CidError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => Code::Sha2_256.digest(data).digest() == mh.digest(),
        BLAKE3 => mh.size() == 32 && Code::Blake3_256.digest(data).digest() == mh.digest(),
        IDENTITY => mh.digest() == data,
        other => return Err(CidError::UnsupportedHash(other)),
    };
    if ok {
        Ok(())
    } else {
        Err(CidError::Mismatch(*cid))
    }
}

/// The multihash bytes of a CID: the block store key, shared by CIDv0 and CIDv1 of one block.
pub fn multihash_bytes(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlong_varints_are_refused() {
        let cid = cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"x");
        // Found by fuzzing: a codec varint of ten bytes whose last carries bits past 64, which
        // the varint reader drops, so the bytes name a CID that prints differently.
        let bytes = [1, 255, 140, 196, 148, 255, 255, 255, 132, 228, 96, 98, 8, 1, 255, 196, 148, 228, 98, 8, 0];
        let lax = Cid::read_bytes(&bytes[..]).expect("the cid crate alone accepts it");
        assert_ne!(lax.to_bytes(), bytes);
        assert!(from_bytes(&bytes).is_err());
        let text = multibase::encode(multibase::Base::Base32Lower, bytes);
        assert!(parse(&text).is_err(), "{text}");
        assert_eq!(parse(&cid.to_string()).unwrap(), cid);
    }

    use super::*;

    #[test]
    fn parses_v0_and_v1_and_base36() {
        let v0 = parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o").unwrap();
        assert_eq!(v0.version(), cid::Version::V0);
        let v1 = parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4").unwrap();
        assert_eq!(v1.codec(), RAW);
        let b36 = to_text_in(&v1, Base::Base36Lower);
        assert!(b36.starts_with('k'));
        assert_eq!(parse(&b36).unwrap(), v1);
    }

    #[test]
    fn hashes_match_vectors() {
        let cid = cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"hello world\n");
        assert_eq!(to_text(&cid), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");
        verify(&cid, b"hello world\n").unwrap();
        assert!(matches!(verify(&cid, b"hello world"), Err(CidError::Mismatch(_))));
        let b3 = cid_for(cid::Version::V1, RAW, HashFn::Blake3, b"x");
        verify(&b3, b"x").unwrap();
    }

    #[test]
    fn bad_text_and_bytes_are_errors() {
        assert!(parse("not-a-cid").is_err());
        assert!(parse("").is_err());
        assert!(from_bytes(&[0x01, 0x55]).is_err());
        assert!(from_bytes(&[]).is_err());
        let cid = parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4").unwrap();
        let mut bytes = cid.to_bytes();
        assert_eq!(from_bytes(&bytes).unwrap(), cid);
        bytes.push(0);
        assert!(from_bytes(&bytes).is_err());
    }
}
