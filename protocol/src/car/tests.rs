use super::*;
use crate::cids::{cid_for, HashFn, DAG_PB, RAW};
use crate::varint::put as put_varint;
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
    assert_eq!((sections[0].cid, &sections[0].data[..], sections[0].offset), (hello_raw(), &b"hello world\n"[..], 59));
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
    assert_eq!(read_all(&header_of(3, Some(&[]))).unwrap_err(), CarError::UnsupportedVersion { offset: 0, version: 3 });
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
