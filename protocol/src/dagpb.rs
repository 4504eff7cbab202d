//! dag-pb nodes: the protobuf envelope of every UnixFS node.
//!
//! Encoding is canonical as the IPLD dag-pb spec requires: `Links` (field 2) are written before
//! `Data` (field 1), and each link writes `Hash`, `Name`, `Tsize` in that order. prost writes
//! fields in tag order (Data first), so the envelope is encoded here by hand; it is four fields.
//! Decoding is strict in the same way as the reference decoders: fields out of order, duplicate
//! `Data`, unknown fields, wrong wire types and links without a hash are errors, so that one
//! block has exactly one meaning.

use bytes::{BufMut, Bytes};
use cid::Cid;

use crate::{cids, varint};

/// Largest dag-pb block we decode: the Bitswap block limit.
pub const MAX_NODE_SIZE: usize = 2 * 1024 * 1024;

/// A link from a dag-pb node to a child block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    /// The child's CID.
    pub hash: Cid,
    /// The entry name (directories) or `Some("")` (file chunks, as kubo writes them).
    pub name: Option<String>,
    /// Cumulative size of the child: its block plus every block below it.
    pub tsize: Option<u64>,
}

/// A dag-pb node: ordered links and optional opaque data (UnixFS puts its `Data` message here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbNode {
    /// Links in encoding order (directories: sorted by name bytes).
    pub links: Vec<PbLink>,
    /// The payload, absent when the node has none.
    pub data: Option<Bytes>,
}

/// Why a dag-pb block was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DagPbError {
    /// The block ended inside a field.
    #[error("dag-pb: truncated at byte {0}")]
    Truncated(usize),
    /// A varint was malformed or too long.
    #[error("dag-pb: bad varint at byte {0}")]
    Varint(usize),
    /// A field other than the ones dag-pb defines, or with the wrong wire type.
    #[error("dag-pb: unexpected field {field} (wire type {wire}) at byte {offset}")]
    UnexpectedField {
        /// Field number.
        field: u64,
        /// Protobuf wire type.
        wire: u64,
        /// Offset of the field tag.
        offset: usize,
    },
    /// Links after Data, link fields out of order, or a repeated field.
    #[error("dag-pb: {0}")]
    Order(&'static str),
    /// A link without the mandatory hash, or with bytes that are not a CID.
    #[error("dag-pb: bad link hash: {0}")]
    BadHash(String),
    /// A link name that is not UTF-8.
    #[error("dag-pb: link name is not UTF-8")]
    BadName,
    /// The block is larger than [`MAX_NODE_SIZE`].
    #[error("dag-pb: block of {0} bytes exceeds the {MAX_NODE_SIZE}-byte limit")]
    TooLarge(usize),
}

impl PbLink {
    fn encoded_len(&self) -> usize {
        let hash = self.hash.encoded_len();
        let mut n = 1 + varint::len(hash as u64) + hash;
        if let Some(name) = &self.name {
            n += 1 + varint::len(name.len() as u64) + name.len();
        }
        if let Some(t) = self.tsize {
            n += 1 + varint::len(t);
        }
        n
    }

    fn encode(&self, out: &mut impl BufMut) {
        let hash = self.hash.to_bytes();
        out.put_u8(0x0a);
        varint::put(hash.len() as u64, out);
        out.put_slice(&hash);
        if let Some(name) = &self.name {
            out.put_u8(0x12);
            varint::put(name.len() as u64, out);
            out.put_slice(name.as_bytes());
        }
        if let Some(t) = self.tsize {
            out.put_u8(0x18);
            varint::put(t, out);
        }
    }
}

impl PbNode {
    /// Encode canonically (links, then data).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for link in &self.links {
            out.put_u8(0x12);
            varint::put(link.encoded_len() as u64, &mut out);
            link.encode(&mut out);
        }
        if let Some(data) = &self.data {
            out.put_u8(0x0a);
            varint::put(data.len() as u64, &mut out);
            out.put_slice(data);
        }
        out
    }

    /// Exact length of [`PbNode::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                let n = l.encoded_len();
                1 + varint::len(n as u64) + n
            })
            .sum();
        let data = self.data.as_ref().map_or(0, |d| 1 + varint::len(d.len() as u64) + d.len());
        links + data
    }

    /// Decode a block strictly (see the module docs). `Data` shares `block`'s buffer.
    pub fn decode(block: &Bytes) -> Result<PbNode, DagPbError> {
        if block.len() > MAX_NODE_SIZE {
            return Err(DagPbError::TooLarge(block.len()));
        }
        let mut r = Reader { buf: block, pos: 0 };
        let mut node = PbNode::default();
        while !r.done() {
            let offset = r.pos;
            let (field, wire) = r.tag()?;
            match (field, wire) {
                (2, 2) => {
                    if node.data.is_some() {
                        return Err(DagPbError::Order("Links after Data"));
                    }
                    let (start, end) = r.len_delimited()?;
                    node.links.push(decode_link(&block[start..end], start)?);
                }
                (1, 2) => {
                    if node.data.is_some() {
                        return Err(DagPbError::Order("duplicate Data"));
                    }
                    let (start, end) = r.len_delimited()?;
                    node.data = Some(block.slice(start..end));
                }
                _ => return Err(DagPbError::UnexpectedField { field, wire, offset }),
            }
        }
        Ok(node)
    }
}

fn decode_link(buf: &[u8], base: usize) -> Result<PbLink, DagPbError> {
    let mut r = Reader { buf, pos: 0 };
    let mut hash = None;
    let mut name = None;
    let mut tsize = None;
    let mut last = 0;
    while !r.done() {
        let offset = base + r.pos;
        let (field, wire) = r.tag().map_err(|e| shift(e, base))?;
        if field <= last {
            return Err(DagPbError::Order("link fields out of order or repeated"));
        }
        last = field;
        match (field, wire) {
            (1, 2) => {
                let (s, e) = r.len_delimited().map_err(|e| shift(e, base))?;
                hash = Some(cids::from_bytes(&buf[s..e]).map_err(|e| DagPbError::BadHash(e.to_string()))?);
            }
            (2, 2) => {
                let (s, e) = r.len_delimited().map_err(|e| shift(e, base))?;
                name = Some(String::from_utf8(buf[s..e].to_vec()).map_err(|_| DagPbError::BadName)?);
            }
            (3, 0) => tsize = Some(r.varint().map_err(|e| shift(e, base))?),
            _ => return Err(DagPbError::UnexpectedField { field, wire, offset }),
        }
    }
    let hash = hash.ok_or_else(|| DagPbError::BadHash("missing".into()))?;
    Ok(PbLink { hash, name, tsize })
}

fn shift(e: DagPbError, base: usize) -> DagPbError {
    match e {
        DagPbError::Truncated(o) => DagPbError::Truncated(o + base),
        DagPbError::Varint(o) => DagPbError::Varint(o + base),
        other => other,
    }
}

/// A minimal protobuf cursor over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DagPbError> {
        match unsigned_varint::decode::u64(&self.buf[self.pos..]) {
            Ok((v, rest)) => {
                self.pos = self.buf.len() - rest.len();
                Ok(v)
            }
            Err(unsigned_varint::decode::Error::Insufficient) => Err(DagPbError::Truncated(self.pos)),
            Err(_) => Err(DagPbError::Varint(self.pos)),
        }
    }

    fn tag(&mut self) -> Result<(u64, u64), DagPbError> {
        let t = self.varint()?;
        Ok((t >> 3, t & 7))
    }

    fn len_delimited(&mut self) -> Result<(usize, usize), DagPbError> {
        let len = self.varint()?;
        let start = self.pos;
        let end = start
            .checked_add(usize::try_from(len).map_err(|_| DagPbError::Truncated(start))?)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DagPbError::Truncated(start))?;
        self.pos = end;
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_directory_vector() {
        // QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn is the empty UnixFS directory.
        let node = PbNode { links: vec![], data: Some(Bytes::from_static(&[0x08, 0x01])) };
        let bytes = node.encode();
        assert_eq!(bytes, [0x0a, 0x02, 0x08, 0x01]);
        let cid = cids::cid_for(cid::Version::V0, cids::DAG_PB, cids::HashFn::Sha2_256, &bytes);
        assert_eq!(cid.to_string(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
        assert_eq!(PbNode::decode(&Bytes::from(bytes)).unwrap(), node);
    }

    #[test]
    fn links_come_first_and_round_trip() {
        let child = cids::parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4").unwrap();
        let node = PbNode {
            links: vec![PbLink { hash: child, name: Some("a".into()), tsize: Some(12) }],
            data: Some(Bytes::from_static(b"\x08\x01")),
        };
        let bytes = node.encode();
        assert_eq!(bytes[0], 0x12);
        assert_eq!(bytes.len(), node.encoded_len());
        assert_eq!(PbNode::decode(&Bytes::from(bytes)).unwrap(), node);
    }

    #[test]
    fn strictness() {
        // Data before Links.
        let bad = Bytes::from_static(&[0x0a, 0x00, 0x12, 0x00]);
        assert!(PbNode::decode(&bad).is_err());
        // Duplicate Data.
        assert!(PbNode::decode(&Bytes::from_static(&[0x0a, 0x00, 0x0a, 0x00])).is_err());
        // Unknown field 3.
        assert!(PbNode::decode(&Bytes::from_static(&[0x1a, 0x00])).is_err());
        // Link without hash.
        assert!(PbNode::decode(&Bytes::from_static(&[0x12, 0x00])).is_err());
        // Truncated length.
        assert!(matches!(PbNode::decode(&Bytes::from_static(&[0x0a, 0x05, 0x01])), Err(DagPbError::Truncated(_))));
        assert!(PbNode::decode(&Bytes::new()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let bytes = Bytes::from(data);
            if let Ok(node) = PbNode::decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes (canonical form).
                proptest::prop_assert_eq!(node.encode(), bytes.to_vec());
            }
        }
    }
}
