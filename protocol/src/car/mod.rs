//! CAR (content archive) files: a CARv1 writer, and a streaming sans-IO reader for CARv1 and
//! CARv2. Layout, limits and the byte vector of the tests are in `specs/car.md`.
//!
//! A CARv1 is `varint(len) ‖ DAG-CBOR {roots, version: 1}` followed by sections
//! `varint(len) ‖ CID ‖ block bytes`. A CARv2 wraps a CARv1 payload: an 11-byte pragma, a
//! 40-byte header saying where the payload is, then (after optional padding) the payload and
//! an index we ignore.
//!
//! [`CarDecoder`] owns no I/O: the caller [`push`](CarDecoder::push)es bytes as they arrive and
//! drains [`next`](CarDecoder::next) until it returns `None`, so reading a file in 1 MiB pieces
//! keeps memory at one piece plus at most one section. Every [`CarError`] names the absolute
//! byte offset of the problem. The decoder does not hash blocks; [`Section::verify`] does.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cid::Cid;
use serde::{Deserialize, Serialize};
use unsigned_varint::decode as varint_decode;

use crate::block::Block;
use crate::cids::{self, CidError};

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::{read_all, CarDecoder};
pub use encode::{encode_header, encode_section, encode_section_head};

/// Largest CARv1 header (or CARv2 pragma) accepted: 1 MiB, room for about 28,000 roots; real
/// headers hold one root, so anything near this is garbage or an attack.
pub const MAX_HEADER: u64 = 1 << 20;
/// Largest block accepted: the 2 MiB every Bitswap peer must handle, so any block we import
/// can also be served.
pub const MAX_BLOCK: u64 = 2 * 1024 * 1024;
/// Longest CID allowed for in a section: boxo's 168 bytes (40 bytes of varints and prefix,
/// a 128-byte digest).
pub const MAX_CID_LEN: u64 = 168;
/// Largest section (CID plus block) accepted: [`MAX_BLOCK`] + [`MAX_CID_LEN`].
pub const MAX_SECTION: u64 = MAX_BLOCK + MAX_CID_LEN;

/// The 11 bytes opening every CARv2: `varint(10)` then DAG-CBOR `{"version": 2}`.
pub const V2_PRAGMA: [u8; 11] = [0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
/// Length of the fixed CARv2 header after the pragma.
pub const V2_HEADER_LEN: usize = 40;

/// Why a CAR was refused. Every variant names the absolute byte offset of the problem: the
/// start of the header, section or field that is wrong or incomplete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CarError {
    /// A length prefix is not a valid unsigned varint (too long, or not minimal).
    #[error("bad length varint at byte {offset}: {reason}")]
    Varint {
        /// Where the varint starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The header's length prefix exceeds the limit.
    #[error("CAR header at byte {offset} claims {len} bytes, over the {max}-byte limit")]
    HeaderTooLarge {
        /// Where the header starts.
        offset: u64,
        /// The claimed length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The header is not DAG-CBOR `{roots: [CID...], version: Int}`.
    #[error("invalid CAR header at byte {offset}: {reason}")]
    BadHeader {
        /// Where the header starts.
        offset: u64,
        /// Why it was refused.
        reason: String,
    },
    /// The header names a version other than 1 (or 2 for the outer pragma).
    #[error("unsupported CAR version {version} at byte {offset}: only CARv1 and CARv2 can be read")]
    UnsupportedVersion {
        /// Where the header starts.
        offset: u64,
        /// The version it names.
        version: u64,
    },
    /// The 40-byte CARv2 header is inconsistent.
    #[error("invalid CARv2 header at byte {offset}: {reason}")]
    BadV2Header {
        /// Where the v2 header starts (11).
        offset: u64,
        /// Why it was refused.
        reason: String,
    },
    /// A section's length prefix exceeds the limit.
    #[error("section at byte {offset} claims {len} bytes, over the {max}-byte limit")]
    SectionTooLarge {
        /// Where the section starts.
        offset: u64,
        /// The claimed length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A section of length zero (it cannot hold a CID).
    #[error("empty section at byte {offset}")]
    EmptySection {
        /// Where the section starts.
        offset: u64,
    },
    /// A section does not start with a valid CID.
    #[error("invalid CID in section at byte {offset}: {reason}")]
    BadCid {
        /// Where the section starts.
        offset: u64,
        /// Why the CID was refused.
        reason: String,
    },
    /// A header or section inside a CARv2 payload runs past the payload's end.
    #[error("data at byte {offset} runs past the end of the CARv2 data payload (byte {end})")]
    PastPayload {
        /// Where the item starts.
        offset: u64,
        /// Where the payload ends.
        end: u64,
    },
    /// The input ended inside the named item.
    #[error("CAR is truncated: {what} at byte {offset} is incomplete (input ends at byte {end})")]
    Truncated {
        /// Where the incomplete item starts.
        offset: u64,
        /// Where the input ends.
        end: u64,
        /// What was being read.
        what: String,
    },
    /// A block's bytes do not hash to its CID.
    #[error("block {cid} in section at byte {offset} does not match its CID (corrupt CAR)")]
    BadBlock {
        /// Where the section starts.
        offset: u64,
        /// The CID the section claims.
        cid: Cid,
    },
    /// A block's CID uses a hash function cairn cannot check.
    #[error(
        "block {cid} in section at byte {offset} uses hash function 0x{code:x}, which cairn cannot \
         verify (supported: sha2-256, blake3, identity)"
    )]
    UnsupportedHash {
        /// Where the section starts.
        offset: u64,
        /// The CID.
        cid: Cid,
        /// The multihash code.
        code: u64,
    },
}

impl CarError {
    /// The absolute byte offset the error is about.
    pub fn offset(&self) -> u64 {
        match self {
            CarError::Varint { offset, .. }
            | CarError::HeaderTooLarge { offset, .. }
            | CarError::BadHeader { offset, .. }
            | CarError::UnsupportedVersion { offset, .. }
            | CarError::BadV2Header { offset, .. }
            | CarError::SectionTooLarge { offset, .. }
            | CarError::EmptySection { offset }
            | CarError::BadCid { offset, .. }
            | CarError::PastPayload { offset, .. }
            | CarError::Truncated { offset, .. }
            | CarError::BadBlock { offset, .. }
            | CarError::UnsupportedHash { offset, .. } => *offset,
        }
    }
}

/// Size limits of a [`CarDecoder`]; the default is [`MAX_HEADER`] and [`MAX_SECTION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header body accepted, in bytes.
    pub max_header: u64,
    /// Largest section body (CID plus block) accepted, in bytes.
    pub max_section: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_header: MAX_HEADER, max_section: MAX_SECTION }
    }
}

/// The fields of the fixed CARv2 header that locate the CARv1 payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2Header {
    /// 128 feature bits (one marks a fully indexed CAR); read but not interpreted.
    pub characteristics: [u8; 16],
    /// Absolute offset of the CARv1 payload.
    pub data_offset: u64,
    /// Length of the CARv1 payload.
    pub data_size: u64,
    /// Absolute offset of the index, 0 if none; the index is skipped.
    pub index_offset: u64,
}

impl V2Header {
    /// Parse the 40 little-endian bytes that follow the pragma.
    pub fn decode(bytes: &[u8; V2_HEADER_LEN]) -> V2Header {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let mut characteristics = [0u8; 16];
        characteristics.copy_from_slice(&bytes[..16]);
        V2Header { characteristics, data_offset: word(16), data_size: word(24), index_offset: word(32) }
    }
}

/// A CAR's header: its roots, and the CARv2 header when the file is a CARv2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The roots of the (inner) CARv1 header; may be empty.
    pub roots: Vec<Cid>,
    /// The CARv2 header, if the file is a CARv2.
    pub v2: Option<V2Header>,
}

impl Header {
    /// The container version: 1 or 2.
    pub fn version(&self) -> u64 {
        if self.v2.is_some() {
            2
        } else {
            1
        }
    }
}

/// One section: a CID and the bytes it claims to name, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section's CID.
    pub cid: Cid,
    /// The block bytes (owned, so holding them never pins the decoder's buffer).
    pub data: Bytes,
    /// Absolute offset of the section's length prefix, for error messages.
    pub offset: u64,
}

impl Section {
    /// Check that the bytes hash to the CID; the error names the CID and the section offset.
    pub fn verify(&self) -> Result<(), CarError> {
        cids::verify(&self.cid, &self.data).map_err(|e| match e {
            CidError::Mismatch(cid) => CarError::BadBlock { offset: self.offset, cid },
            // `verify` fails only on a mismatch or an unknown hash function.
            _ => CarError::UnsupportedHash { offset: self.offset, cid: self.cid, code: self.cid.hash().code() },
        })
    }

    /// Verify the section and turn it into a [`Block`].
    pub fn into_verified_block(self) -> Result<Block, CarError> {
        self.verify()?;
        Ok(Block::new_unchecked(self.cid, self.data))
    }
}

/// What the decoder yields: the header once, then each section in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// The header (roots, and the v2 header for a CARv2).
    Header(Header),
    /// One section.
    Section(Section),
}

/// The DAG-CBOR header as stored. Unknown keys are ignored; `roots` is optional so the
/// CARv2 pragma `{version: 2}` parses with the same type.
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    roots: Option<Vec<Cid>>,
    version: u64,
}

/// The header as written: field order is DAG-CBOR's canonical key order.
#[derive(Serialize)]
struct RawHeaderOut<'a> {
    roots: &'a [Cid],
    version: u64,
}
