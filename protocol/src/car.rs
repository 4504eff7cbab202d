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
use unsigned_varint::{decode as varint_decode, encode as varint_encode};

use crate::block::Block;
use crate::cids::{self, CidError};

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

#[derive(Clone, Debug)]
enum State {
    /// Expecting the CARv1 header or the CARv2 pragma.
    Start,
    /// Pragma read; expecting the 40-byte v2 header.
    V2Header,
    /// Discarding padding up to the payload.
    Skip(V2Header),
    /// Expecting the CARv1 header inside a CARv2 payload ending at `end`.
    InnerHeader { v2: V2Header, end: u64 },
    /// Reading sections, up to `end` for a CARv2 payload or to end of input.
    Sections { end: Option<u64> },
    /// The CARv2 payload is complete; further input (the index) is discarded.
    Done,
    /// An error was returned; it is returned again.
    Failed(CarError),
}

/// A length-prefixed frame found at the front of the buffer.
struct Frame {
    /// Absolute offset of the length prefix.
    start: u64,
    /// Bytes of the length prefix.
    prefix: usize,
    /// Bytes of the body.
    len: usize,
}

/// A streaming CARv1/CARv2 reader that does no I/O: push bytes, then drain items.
///
/// ```
/// # use cairn_protocol::car::{CarDecoder, Item};
/// # fn demo(pieces: &[&[u8]]) -> Result<(), cairn_protocol::car::CarError> {
/// let mut dec = CarDecoder::new();
/// for piece in pieces {
///     dec.push(piece);
///     while let Some(item) = dec.next()? {
///         if let Item::Section(s) = item { s.verify()?; }
///     }
/// }
/// dec.finish()?; // errors if the input stopped inside an item
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CarDecoder {
    /// Pushed bytes not yet consumed.
    buf: BytesMut,
    /// Absolute offset of `buf[0]`.
    offset: u64,
    state: State,
    limits: Limits,
}

impl Default for CarDecoder {
    fn default() -> Self {
        CarDecoder::new()
    }
}

impl CarDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> CarDecoder {
        CarDecoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> CarDecoder {
        CarDecoder { buf: BytesMut::new(), offset: 0, state: State::Start, limits }
    }

    /// Append input. Drain [`next`](Self::next) after each push to keep memory bounded.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Done | State::Failed(_)) {
            self.offset += bytes.len() as u64;
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Absolute offset of the first byte not yet consumed.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Total bytes pushed so far.
    pub fn pushed(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    /// Whether a CARv2 payload has been read completely (the rest of the file is index).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next complete item, or `None` when more input is needed (or the payload is done).
    /// After an error the decoder stays failed and returns the same error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, CarError> {
        let result = self.step();
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
            self.buf = BytesMut::new();
        }
        result
    }

    /// Call at end of input, after `next` returned `None`: an error names where the input
    /// stopped inside an incomplete header or section.
    pub fn finish(&self) -> Result<(), CarError> {
        let (what, start) = match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Done => return Ok(()),
            State::Sections { end: None } if self.buf.is_empty() => return Ok(()),
            State::Sections { end: None } => (self.describe_partial("section"), self.offset),
            State::Sections { end: Some(_) } if self.buf.is_empty() => ("CARv2 data payload".to_string(), self.offset),
            State::Sections { end: Some(_) } => (self.describe_partial("section"), self.offset),
            State::Start if self.pushed() == 0 => ("CAR header (the input is empty)".to_string(), 0),
            State::Start => (self.describe_partial("CAR header"), self.offset),
            State::V2Header => ("CARv2 header".to_string(), self.offset),
            State::Skip(_) => ("CARv2 padding before the data payload".to_string(), self.offset),
            State::InnerHeader { .. } => (self.describe_partial("CARv1 header of the CARv2 payload"), self.offset),
        };
        Err(CarError::Truncated { offset: start, end: self.pushed(), what })
    }

    fn describe_partial(&self, item: &str) -> String {
        match varint_decode::u64(&self.buf) {
            Ok((len, rest)) => format!("{item} of {len} bytes ({} present)", rest.len()),
            Err(_) => format!("length prefix of a {item}"),
        }
    }

    fn step(&mut self) -> Result<Option<Item>, CarError> {
        loop {
            match self.state.clone() {
                State::Failed(e) => return Err(e),
                State::Done => {
                    self.consume(self.buf.len());
                    return Ok(None);
                }
                State::Start => return self.read_first_header(),
                State::V2Header => {
                    if !self.read_v2_header()? {
                        return Ok(None);
                    }
                }
                State::Skip(v2) => {
                    let n = (v2.data_offset - self.offset).min(self.buf.len() as u64) as usize;
                    self.consume(n);
                    if self.offset < v2.data_offset {
                        return Ok(None);
                    }
                    self.state = State::InnerHeader { v2, end: v2.data_offset + v2.data_size };
                }
                State::InnerHeader { v2, end } => return self.read_inner_header(v2, end),
                State::Sections { end } => {
                    if end == Some(self.offset) {
                        self.state = State::Done;
                        continue;
                    }
                    return self.read_section(end);
                }
            }
        }
    }

    /// The first frame: a CARv1 header, or the CARv2 pragma (then go on with the v2 header).
    fn read_first_header(&mut self) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_header, None, true)? else {
            return Ok(None);
        };
        let raw = self.parse_header(&frame)?;
        match raw.version {
            1 => {
                let roots = raw.roots.ok_or_else(|| missing_roots(frame.start))?;
                self.state = State::Sections { end: None };
                Ok(Some(Item::Header(Header { roots, v2: None })))
            }
            2 => {
                self.state = State::V2Header;
                self.step()
            }
            version => Err(CarError::UnsupportedVersion { offset: frame.start, version }),
        }
    }

    /// The 40-byte v2 header; `false` when more input is needed.
    fn read_v2_header(&mut self) -> Result<bool, CarError> {
        let Some(bytes) = self.buf.get(..V2_HEADER_LEN) else {
            return Ok(false);
        };
        let bytes: &[u8; V2_HEADER_LEN] = bytes.try_into().expect("slice of V2_HEADER_LEN bytes");
        let v2 = V2Header::decode(bytes);
        let at = self.offset;
        let header_end = at + V2_HEADER_LEN as u64;
        if v2.data_offset < header_end {
            let reason = format!("data offset {} points inside the header (ends at byte {header_end})", v2.data_offset);
            return Err(CarError::BadV2Header { offset: at, reason });
        }
        if v2.data_offset.checked_add(v2.data_size).is_none() {
            let reason = format!("data offset {} + data size {} overflows", v2.data_offset, v2.data_size);
            return Err(CarError::BadV2Header { offset: at, reason });
        }
        self.consume(V2_HEADER_LEN);
        self.state = State::Skip(v2);
        Ok(true)
    }

    fn read_inner_header(&mut self, v2: V2Header, end: u64) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_header, Some(end), true)? else {
            return Ok(None);
        };
        let raw = self.parse_header(&frame)?;
        if raw.version != 1 {
            return Err(CarError::UnsupportedVersion { offset: frame.start, version: raw.version });
        }
        let roots = raw.roots.ok_or_else(|| missing_roots(frame.start))?;
        self.state = State::Sections { end: Some(end) };
        Ok(Some(Item::Header(Header { roots, v2: Some(v2) })))
    }

    fn read_section(&mut self, end: Option<u64>) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_section, end, false)? else {
            return Ok(None);
        };
        if frame.len == 0 {
            return Err(CarError::EmptySection { offset: frame.start });
        }
        let body = &self.buf[frame.prefix..frame.prefix + frame.len];
        let mut rest = body;
        let cid =
            Cid::read_bytes(&mut rest).map_err(|e| CarError::BadCid { offset: frame.start, reason: e.to_string() })?;
        let data = Bytes::copy_from_slice(rest);
        self.consume(frame.prefix + frame.len);
        Ok(Some(Item::Section(Section { cid, data, offset: frame.start })))
    }

    fn parse_header(&mut self, frame: &Frame) -> Result<RawHeader, CarError> {
        let body = &self.buf[frame.prefix..frame.prefix + frame.len];
        let raw: RawHeader = serde_ipld_dagcbor::from_slice(body)
            .map_err(|e| CarError::BadHeader { offset: frame.start, reason: e.to_string() })?;
        self.consume(frame.prefix + frame.len);
        Ok(raw)
    }

    /// Find a complete `varint(len) ‖ body` at the front of the buffer, checking the length
    /// against `max` and, inside a CARv2 payload, against the payload's `end`.
    fn frame(&self, max: u64, end: Option<u64>, header: bool) -> Result<Option<Frame>, CarError> {
        let start = self.offset;
        let visible = match end {
            Some(e) => &self.buf[..((e - start).min(self.buf.len() as u64) as usize)],
            None => &self.buf[..],
        };
        let (len, rest) = match varint_decode::u64(visible) {
            Ok(v) => v,
            Err(varint_decode::Error::Insufficient) if visible.len() < self.buf.len() => {
                return Err(CarError::PastPayload { offset: start, end: end.unwrap_or(start) });
            }
            Err(varint_decode::Error::Insufficient) => return Ok(None),
            Err(e) => return Err(CarError::Varint { offset: start, reason: e.to_string() }),
        };
        if len > max {
            return Err(if header {
                CarError::HeaderTooLarge { offset: start, len, max }
            } else {
                CarError::SectionTooLarge { offset: start, len, max }
            });
        }
        let prefix = visible.len() - rest.len();
        let total = prefix as u64 + len;
        if let Some(e) = end {
            if start + total > e {
                return Err(CarError::PastPayload { offset: start, end: e });
            }
        }
        if (self.buf.len() as u64) < total {
            return Ok(None);
        }
        Ok(Some(Frame { start, prefix, len: len as usize }))
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }
}

fn missing_roots(offset: u64) -> CarError {
    CarError::BadHeader { offset, reason: "missing field `roots`".to_string() }
}

/// Decode a whole CAR held in memory: its header and every section, unverified.
pub fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Section>), CarError> {
    let mut dec = CarDecoder::new();
    dec.push(bytes);
    let mut header = None;
    let mut sections = Vec::new();
    while let Some(item) = dec.next()? {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Section(s) => sections.push(s),
        }
    }
    dec.finish()?;
    let header = header.ok_or(CarError::Truncated { offset: 0, end: 0, what: "CAR header".into() })?;
    Ok((header, sections))
}

/// Write a CARv1 header naming `roots` (which may be empty): `varint(len) ‖ DAG-CBOR`.
pub fn encode_header(roots: &[Cid], out: &mut impl BufMut) {
    let cbor = serde_ipld_dagcbor::to_vec(&RawHeaderOut { roots, version: 1 })
        .expect("a list of CIDs and an integer always encode as DAG-CBOR");
    put_varint(cbor.len() as u64, out);
    out.put_slice(&cbor);
}

/// Write one section: `varint(len(cid) + len(data)) ‖ cid ‖ data`.
pub fn encode_section(cid: &Cid, data: &[u8], out: &mut impl BufMut) {
    encode_section_head(cid, data.len(), out);
    out.put_slice(data);
}

/// Write the part of a section before its data (`varint(len(cid) + data_len) ‖ cid`), so a
/// writer can send large blocks without copying them into a frame first.
pub fn encode_section_head(cid: &Cid, data_len: usize, out: &mut impl BufMut) {
    let cid_bytes = cid.to_bytes();
    put_varint((cid_bytes.len() + data_len) as u64, out);
    out.put_slice(&cid_bytes);
}

fn put_varint(n: u64, out: &mut impl BufMut) {
    let mut buf = varint_encode::u64_buffer();
    out.put_slice(varint_encode::u64(n, &mut buf));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cids::{cid_for, HashFn, DAG_PB, RAW};
    use proptest::prelude::*;

    /// sha2-256 of "hello world\n".
    const HELLO_SHA: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";
    /// sha2-256 of the dag-pb node below.
    const NODE_SHA: &str = "46d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e";
    /// dag-pb node of the UnixFS file "hello world\n": Data = {Type: File, Data, filesize 12}.
    const NODE: &str = "0a120802120c68656c6c6f20776f726c640a180c";

    /// The annotated vector of `specs/car.md`: one root (the raw block), two sections.
    fn vector() -> Vec<u8> {
        let parts = [
            "3a",                       // header length: 58
            "a2",                       // map(2)
            "65726f6f7473",             // "roots"
            "81",                       // array(1)
            "d82a",                     // tag 42 (CID)
            "5825",                     // bytes(37)
            "00",                       // multibase identity prefix
            "01551220",                 // CIDv1, raw, sha2-256, 32 bytes
            HELLO_SHA,                  //   digest
            "6776657273696f6e",         // "version"
            "01",                       // 1
            "30",                       // section length: 48 = 36 (CID) + 12 (data)
            "01551220",                 // CIDv1 raw sha2-256
            HELLO_SHA,                  //   digest
            "68656c6c6f20776f726c640a", // "hello world\n"
            "36",                       // section length: 54 = 34 (CID) + 20 (data)
            "1220",                     // CIDv0: sha2-256, 32 bytes (no version, no codec)
            NODE_SHA,                   //   digest
            NODE,                       // the dag-pb node
        ];
        hex::decode(parts.concat()).unwrap()
    }

    fn hello_raw() -> Cid {
        cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"hello world\n")
    }

    fn hello_node() -> (Cid, Vec<u8>) {
        let node = hex::decode(NODE).unwrap();
        (cid_for(cid::Version::V0, DAG_PB, HashFn::Sha2_256, &node), node)
    }

    /// Decode `bytes` pushed `piece` bytes at a time, then `finish`.
    fn decode_in_pieces(bytes: &[u8], piece: usize) -> Result<(Header, Vec<Section>), CarError> {
        let mut dec = CarDecoder::new();
        let mut header = None;
        let mut sections = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            dec.push(chunk);
            while let Some(item) = dec.next()? {
                match item {
                    Item::Header(h) => header = Some(h),
                    Item::Section(s) => sections.push(s),
                }
            }
        }
        dec.finish()?;
        Ok((header.expect("finish succeeded, so the header was read"), sections))
    }

    fn header_len(roots: &[Cid]) -> usize {
        let mut out = Vec::new();
        encode_header(roots, &mut out);
        out.len()
    }

    /// A hand-built CARv2: pragma, v2 header, `pad` zero bytes, the payload, a fake index.
    fn v2_file(payload: &[u8], pad: usize, data_size: u64) -> Vec<u8> {
        let data_offset = (V2_PRAGMA.len() + V2_HEADER_LEN + pad) as u64;
        let mut out = V2_PRAGMA.to_vec();
        out.extend_from_slice(&[0x80; 1]); // characteristics: one bit set, carried through as is
        out.extend_from_slice(&[0u8; 15]);
        out.extend_from_slice(&data_offset.to_le_bytes());
        out.extend_from_slice(&data_size.to_le_bytes());
        out.extend_from_slice(&(data_offset + payload.len() as u64).to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(payload);
        out.extend_from_slice(&[0xff; 9]); // "index": not a valid section, must be ignored
        out
    }

    #[test]
    fn vector_encodes_and_decodes() {
        let (node_cid, node) = hello_node();
        assert_eq!(node_cid.to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
        let mut out = Vec::new();
        encode_header(&[hello_raw()], &mut out);
        encode_section(&hello_raw(), b"hello world\n", &mut out);
        encode_section(&node_cid, &node, &mut out);
        assert_eq!(hex::encode(&out), hex::encode(vector()));

        let (header, sections) = read_all(&vector()).unwrap();
        assert_eq!(header, Header { roots: vec![hello_raw()], v2: None });
        assert_eq!(sections.len(), 2);
        assert_eq!(
            (sections[0].cid, &sections[0].data[..], sections[0].offset),
            (hello_raw(), &b"hello world\n"[..], 59)
        );
        assert_eq!(sections[1].cid, node_cid);
        assert_eq!(sections[1].cid.version(), cid::Version::V0);
        assert_eq!(sections[1].offset, 108);
        for s in &sections {
            s.verify().unwrap();
        }
    }

    #[test]
    fn round_trip_with_zero_one_and_many_roots() {
        let (node_cid, node) = hello_node();
        let blocks: Vec<(Cid, Vec<u8>)> = vec![
            (hello_raw(), b"hello world\n".to_vec()),
            (node_cid, node),
            (cid_for(cid::Version::V1, RAW, HashFn::Blake3, b""), vec![]),
        ];
        for roots in [vec![], vec![hello_raw()], vec![hello_raw(), node_cid]] {
            let mut out = Vec::new();
            encode_header(&roots, &mut out);
            for (cid, data) in &blocks {
                encode_section(cid, data, &mut out);
            }
            for piece in [1, 2, 3, 7, 64, out.len()] {
                let (header, sections) = decode_in_pieces(&out, piece).unwrap();
                assert_eq!(header.roots, roots);
                let got: Vec<(Cid, Vec<u8>)> = sections.iter().map(|s| (s.cid, s.data.to_vec())).collect();
                assert_eq!(got, blocks);
                sections.iter().for_each(|s| s.verify().unwrap());
            }
        }
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_or_a_shorter_valid_car() {
        let car = vector();
        let boundaries = [59, 108]; // after the header, after section 1
        for cut in 0..car.len() {
            for piece in [1, 5, car.len()] {
                match decode_in_pieces(&car[..cut], piece) {
                    Ok((_, sections)) => {
                        // CARv1 has no total length: a cut between sections is a valid CAR.
                        assert!(boundaries.contains(&cut), "cut at {cut} decoded without error");
                        assert_eq!(sections.len(), boundaries.iter().position(|b| *b == cut).unwrap());
                    }
                    Err(e) => {
                        assert!(e.offset() <= cut as u64, "cut {cut}: {e}");
                        assert!(matches!(e, CarError::Truncated { end, .. } if end == cut as u64), "cut {cut}: {e}");
                        assert!(e.to_string().contains(&format!("byte {}", e.offset())));
                    }
                }
            }
        }
    }

    #[test]
    fn carv2_payload_is_read_and_padding_and_index_skipped() {
        let v1 = vector();
        let file = v2_file(&v1, 5, v1.len() as u64);
        let data_offset = 11 + 40 + 5;
        for piece in [1, 3, 40, file.len()] {
            let (header, sections) = decode_in_pieces(&file, piece).unwrap();
            assert_eq!(header.roots, vec![hello_raw()]);
            assert_eq!(header.version(), 2);
            let v2 = header.v2.unwrap();
            assert_eq!((v2.data_offset, v2.data_size, v2.characteristics[0]), (data_offset, v1.len() as u64, 0x80));
            assert_eq!(sections.len(), 2);
            assert_eq!(sections[0].offset, data_offset + 59);
            sections.iter().for_each(|s| s.verify().unwrap());
        }
        // The payload's size is known, so every cut before its end is an error.
        let end = (data_offset as usize) + v1.len();
        for cut in 0..end {
            let e = decode_in_pieces(&file[..cut], 7).unwrap_err();
            assert!(e.offset() <= cut as u64, "cut {cut}: {e}");
        }
        for cut in end..=file.len() {
            decode_in_pieces(&file[..cut], 7).unwrap();
        }
    }

    #[test]
    fn carv2_inconsistent_headers_are_refused_with_offsets() {
        let v1 = vector();
        // A payload that ends inside the second section.
        let e = read_all(&v2_file(&v1, 0, v1.len() as u64 - 1)).unwrap_err();
        assert_eq!(e, CarError::PastPayload { offset: 51 + 108, end: 51 + v1.len() as u64 - 1 });
        // A data offset inside the v2 header.
        let mut file = v2_file(&v1, 0, v1.len() as u64);
        file[27..35].copy_from_slice(&20u64.to_le_bytes());
        assert!(matches!(read_all(&file), Err(CarError::BadV2Header { offset: 11, .. })));
        // An overflowing data size.
        let mut file = v2_file(&v1, 0, u64::MAX);
        file[27..35].copy_from_slice(&51u64.to_le_bytes());
        assert!(matches!(read_all(&file), Err(CarError::BadV2Header { offset: 11, .. })));
        // An inner header that is not version 1.
        let mut inner = Vec::new();
        inner.extend_from_slice(&V2_PRAGMA);
        let e = read_all(&v2_file(&inner, 0, inner.len() as u64)).unwrap_err();
        assert_eq!(e, CarError::UnsupportedVersion { offset: 51, version: 2 });
    }

    #[test]
    fn limits_refuse_one_byte_over() {
        let hl = header_len(&[hello_raw()]) as u64;
        let mut car = Vec::new();
        encode_header(&[hello_raw()], &mut car);
        let mut over = car.clone();
        put_varint(MAX_SECTION + 1, &mut over);
        assert_eq!(
            read_all(&over).unwrap_err(),
            CarError::SectionTooLarge { offset: hl, len: MAX_SECTION + 1, max: MAX_SECTION }
        );
        // Exactly at the limit: accepted.
        let data = vec![7u8; (MAX_SECTION - 36) as usize];
        let cid = cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &data);
        encode_section(&cid, &data, &mut car);
        let (_, sections) = read_all(&car).unwrap();
        sections[0].verify().unwrap();

        let mut header_over = Vec::new();
        put_varint(MAX_HEADER + 1, &mut header_over);
        assert_eq!(
            read_all(&header_over).unwrap_err(),
            CarError::HeaderTooLarge { offset: 0, len: MAX_HEADER + 1, max: MAX_HEADER }
        );
        let mut small = CarDecoder::with_limits(Limits { max_header: 57, max_section: 10 });
        small.push(&vector());
        assert!(matches!(small.next(), Err(CarError::HeaderTooLarge { offset: 0, len: 58, max: 57 })));
    }

    #[test]
    fn malformed_input_names_the_offset() {
        let hl = header_len(&[hello_raw()]) as u64;
        let with_header = |tail: &[u8]| {
            let mut car = Vec::new();
            encode_header(&[hello_raw()], &mut car);
            car.extend_from_slice(tail);
            car
        };
        let header_of = |version: u64, roots: Option<&[Cid]>| {
            let cbor = match roots {
                Some(roots) => serde_ipld_dagcbor::to_vec(&RawHeaderOut { roots, version }).unwrap(),
                None => serde_ipld_dagcbor::to_vec(&std::collections::BTreeMap::from([("version", version)])).unwrap(),
            };
            let mut out = Vec::new();
            put_varint(cbor.len() as u64, &mut out);
            out.extend_from_slice(&cbor);
            out
        };
        assert_eq!(
            read_all(&header_of(3, Some(&[]))).unwrap_err(),
            CarError::UnsupportedVersion { offset: 0, version: 3 }
        );
        assert!(matches!(read_all(&header_of(1, None)), Err(CarError::BadHeader { offset: 0, .. })));
        assert!(matches!(read_all(&[0x01, 0x01]), Err(CarError::BadHeader { offset: 0, .. })));
        assert!(matches!(read_all(&[0xff; 11]), Err(CarError::Varint { offset: 0, .. })));
        assert!(matches!(read_all(&[0x80, 0x00]), Err(CarError::Varint { offset: 0, .. })));
        assert!(matches!(read_all(&with_header(&[0xff; 11])), Err(CarError::Varint { offset, .. }) if offset == hl));
        assert_eq!(read_all(&with_header(&[0x00])).unwrap_err(), CarError::EmptySection { offset: hl });
        assert!(
            matches!(read_all(&with_header(&[0x03, 0x01, 0x55, 0x12])), Err(CarError::BadCid { offset, .. }) if offset == hl)
        );
        assert!(
            matches!(read_all(&with_header(&[0x02, 0x00, 0x55])), Err(CarError::BadCid { offset, .. }) if offset == hl)
        );
        assert_eq!(read_all(&[]).unwrap_err().offset(), 0);
        // A failed decoder keeps failing with the same error.
        let mut dec = CarDecoder::new();
        dec.push(&with_header(&[0x00]));
        assert!(matches!(dec.next(), Ok(Some(Item::Header(_)))));
        let first = dec.next().unwrap_err();
        dec.push(&vector());
        assert_eq!(dec.next().unwrap_err(), first);
        assert_eq!(dec.finish().unwrap_err(), first);
    }

    #[test]
    fn corrupt_block_fails_verification_naming_cid_and_offset() {
        let mut car = vector();
        car[100] ^= 1; // inside "hello world\n" (data starts at 59 + 1 + 36)
        let (_, sections) = read_all(&car).unwrap();
        assert_eq!(sections[0].verify().unwrap_err(), CarError::BadBlock { offset: 59, cid: hello_raw() });
        let msg = sections[0].clone().into_verified_block().unwrap_err().to_string();
        assert!(msg.contains("byte 59") && msg.contains(&hello_raw().to_string()), "{msg}");
        sections[1].clone().into_verified_block().unwrap();
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), prefix in 0usize..3, piece in 1usize..40) {
            let mut input = match prefix {
                0 => Vec::new(),
                1 => vector()[..59].to_vec(),
                _ => V2_PRAGMA.to_vec(),
            };
            input.extend_from_slice(&bytes);
            if let Err(e) = decode_in_pieces(&input, piece) {
                prop_assert!(e.offset() <= input.len() as u64);
            }
        }

        #[test]
        fn blocks_round_trip(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8), piece in 1usize..100) {
            let blocks: Vec<(Cid, Vec<u8>)> = blocks.into_iter().map(|d| (cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &d), d)).collect();
            let roots: Vec<Cid> = blocks.iter().take(2).map(|b| b.0).collect();
            let mut car = Vec::new();
            encode_header(&roots, &mut car);
            for (cid, data) in &blocks {
                encode_section(cid, data, &mut car);
            }
            let (header, sections) = decode_in_pieces(&car, piece).unwrap();
            prop_assert_eq!(header.roots, roots);
            let got: Vec<(Cid, Vec<u8>)> = sections.iter().map(|s| (s.cid, s.data.to_vec())).collect();
            prop_assert_eq!(got, blocks);
        }
    }
}
