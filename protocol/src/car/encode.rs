//! Writing a CARv1: the header and `varint(len) ‖ CID ‖ data` sections.

use super::*;

/// Write a CARv1 header naming `roots` (which may be empty): `varint(len) ‖ DAG-CBOR`.
pub fn encode_header(roots: &[Cid], out: &mut impl BufMut) {
    let cbor = serde_ipld_dagcbor::to_vec(&RawHeaderOut { roots, version: 1 })
        .expect("a list of CIDs and an integer always encode as DAG-CBOR");
    crate::varint::put(cbor.len() as u64, out);
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
    crate::varint::put((cid_bytes.len() + data_len) as u64, out);
    out.put_slice(&cid_bytes);
}
