use super::*;
use proptest::prelude::*;

/// sha2-256 CIDv0 of some dag-pb node (34 bytes).
const CID_V0: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
/// CIDv1 raw sha2-256 of `hello world\n` (36 bytes).
const CID_HELLO: &str = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
/// CIDv1 raw sha2-256 of the empty block (36 bytes).
const CID_EMPTY: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

fn cid(text: &str) -> Cid {
    cids::parse(text).unwrap()
}

/// The CID of `data` in one of the four supported shapes (`kind` picks the shape).
fn make_cid(kind: u8, codec: u64, data: &[u8]) -> Cid {
    match kind % 4 {
        0 => cids::cid_for(cid::Version::V0, cids::DAG_PB, HashFn::Sha2_256, data),
        1 => cids::cid_for(cid::Version::V1, codec, HashFn::Sha2_256, data),
        2 => cids::cid_for(cid::Version::V1, codec, HashFn::Blake3, data),
        _ => Cid::new_v1(codec, Multihash::wrap(cids::IDENTITY, data).unwrap()),
    }
}

fn arb_codec() -> impl Strategy<Value = u64> {
    prop_oneof![Just(cids::RAW), Just(cids::DAG_PB), Just(cids::DAG_CBOR), 0u64..(1 << 40),]
}

fn arb_cid() -> impl Strategy<Value = Cid> {
    (any::<u8>(), arb_codec(), proptest::collection::vec(any::<u8>(), 0..40))
        .prop_map(|(kind, codec, data)| make_cid(kind, codec, &data))
}

fn arb_block() -> impl Strategy<Value = Block> {
    (any::<u8>(), arb_codec(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(kind, codec, mut data)| {
        if kind % 4 == 3 {
            data.truncate(64);
        }
        Block::new_unchecked(make_cid(kind, codec, &data), Bytes::from(data))
    })
}

fn arb_want() -> impl Strategy<Value = WantEntry> {
    (arb_cid(), any::<i32>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(cid, priority, cancel, have, send_dont_have)| WantEntry {
            cid,
            priority,
            cancel,
            want: if have { WantType::Have } else { WantType::Block },
            send_dont_have,
        },
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    let presence =
        (arb_cid(), any::<bool>()).prop_map(|(c, have)| (c, if have { Presence::Have } else { Presence::DontHave }));
    (
        any::<bool>(),
        proptest::collection::vec(arb_want(), 0..6),
        proptest::collection::vec(arb_block(), 0..4),
        proptest::collection::vec(presence, 0..6),
        any::<i32>(),
    )
        .prop_map(|(full, wants, blocks, presences, pending_bytes)| Message {
            full,
            wants,
            blocks,
            presences,
            pending_bytes,
        })
}

fn entries(m: &Message) -> usize {
    m.wants.len() + m.blocks.len() + m.presences.len()
}

fn want(cid: Cid, want: WantType, cancel: bool) -> WantEntry {
    WantEntry { cid, priority: 1, cancel, want, send_dont_have: true }
}

/// The message annotated in `specs/bitswap.md`: one of each 1.2.0 item.
fn snapshot_message() -> Message {
    Message {
        full: false,
        wants: vec![want(cid(CID_V0), WantType::Have, false)],
        blocks: vec![Block::new_unchecked(cid(CID_HELLO), Bytes::from_static(b"hello world\n"))],
        presences: vec![(cid(CID_EMPTY), Presence::DontHave)],
        pending_bytes: 1024,
    }
}

#[test]
fn snapshot_1_2_0() {
    let expected = [
        "0a2c", // 1 wantlist, 44 bytes
        "0a2a", //   1 entry, 42 bytes
        "0a22", //     1 block (CID), 34 bytes: CIDv0
        "122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e",
        "1001",                     //     2 priority = 1
        "2001",                     //     4 wantType = Have
        "2801",                     //     5 sendDontHave = true
        "1a14",                     // 3 payload block, 20 bytes
        "0a04",                     //   1 prefix, 4 bytes
        "01551220",                 //     CIDv1, raw, sha2-256, 32 bytes
        "120c",                     //   2 data, 12 bytes
        "68656c6c6f20776f726c640a", // "hello world\n"
        "2228",                     // 4 blockPresence, 40 bytes
        "0a24",                     //   1 cid, 36 bytes
        "01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "1001",   //   2 type = DontHave
        "288008", // 5 pendingBytes = 1024
    ]
    .concat();
    let msg = snapshot_message();
    let bytes = msg.encode(Version::V1_2_0);
    assert_eq!(hex::encode(&bytes), expected);
    assert_eq!(bytes.len(), 113);
    assert_eq!(Message::decode(&bytes).unwrap(), msg);
    let framed = msg.encode_framed(Version::V1_2_0).unwrap();
    assert_eq!(framed, frame(&bytes));
    assert_eq!(framed[0], 0x71);
}

#[test]
fn downgrades_drop_what_older_versions_cannot_carry() {
    let v1_block = Block::new_unchecked(cid(CID_HELLO), Bytes::from_static(b"hello world\n"));
    let v0_data = Bytes::from_static(b"\x0a\x02\x08\x01");
    let v0_cid = cids::cid_for(cid::Version::V0, cids::DAG_PB, HashFn::Sha2_256, &v0_data);
    let v0_block = Block::new_unchecked(v0_cid, v0_data);
    let msg = Message {
        full: true,
        wants: vec![
            want(cid(CID_V0), WantType::Have, false),
            want(cid(CID_EMPTY), WantType::Have, true),
            want(cid(CID_HELLO), WantType::Block, false),
        ],
        blocks: vec![v1_block.clone(), v0_block.clone()],
        presences: vec![(cid(CID_EMPTY), Presence::Have)],
        pending_bytes: 7,
    };
    let plain = |c: &str, cancel| WantEntry { send_dont_have: false, ..want(cid(c), WantType::Block, cancel) };
    let v11 = Message {
        full: true,
        wants: vec![plain(CID_EMPTY, true), plain(CID_HELLO, false)],
        blocks: vec![v1_block, v0_block.clone()],
        presences: vec![],
        pending_bytes: 0,
    };
    assert_eq!(msg.for_version(Version::V1_1_0), v11);
    assert_eq!(msg.for_version(Version::V1_2_0), msg);
    let v10 = Message { blocks: vec![v0_block], ..v11.clone() };
    assert_eq!(msg.for_version(Version::V1_0_0), v10);

    // 1.0.0 writes bare bytes in `blocks`, 1.1.0 writes `payload`; neither writes 4 or 5.
    let pb = proto::Message::decode(&msg.encode(Version::V1_0_0)[..]).unwrap();
    assert_eq!((pb.blocks.len(), pb.payload.len()), (1, 0));
    let pb = proto::Message::decode(&msg.encode(Version::V1_1_0)[..]).unwrap();
    assert_eq!((pb.blocks.len(), pb.payload.len()), (0, 2));
    assert!(pb.block_presences.is_empty() && pb.pending_bytes == 0);
}

#[test]
fn legacy_blocks_field_decodes_as_cidv0() {
    let pb = proto::Message { blocks: vec![Bytes::from_static(b"hello world\n")], ..Default::default() };
    let msg = Message::decode(&pb.encode_to_vec()).unwrap();
    let block = &msg.blocks[0];
    assert_eq!(block.cid.version(), cid::Version::V0);
    assert_eq!(block.cid.codec(), cids::DAG_PB);
    // Same sha2-256 digest as the CIDv1 raw name of these bytes.
    assert_eq!(block.cid.hash(), cid(CID_HELLO).hash());
    cids::verify(&block.cid, &block.data).unwrap();
}

#[test]
fn unknown_hash_in_prefix_is_a_typed_error() {
    let pb = proto::Message {
        payload: vec![
            block_to_proto(&snapshot_message().blocks[0]),
            proto::Block {
                prefix: vec![0x01, 0x55, 0x13, 0x40], // sha2-512, 64 bytes
                data: Bytes::from_static(b"x"),
            },
        ],
        ..Default::default()
    };
    match Message::decode(&pb.encode_to_vec()) {
        Err(BitswapError::Prefix { index, source }) => {
            assert_eq!(index, 1);
            assert_eq!(source, PrefixError::UnsupportedHash(0x13));
        }
        other => panic!("expected a prefix error, got {other:?}"),
    }
}

#[test]
fn prefix_errors() {
    let cases: [(&[u8], PrefixError); 7] = [
        (&[], PrefixError::Malformed("expected four varints")),
        (&[0x01, 0x55, 0x12], PrefixError::Malformed("expected four varints")),
        (&[0x01, 0x55, 0x12, 0x20, 0x00], PrefixError::Malformed("trailing bytes")),
        (&[0x02, 0x55, 0x12, 0x20], PrefixError::UnsupportedVersion(2)),
        (&[0x00, 0x55, 0x12, 0x20], PrefixError::InvalidV0),
        (&[0x01, 0x55, 0x12, 0x14], PrefixError::UnsupportedDigestLength { code: 0x12, len: 20 }),
        (&[0x01, 0x55, 0x00, 0x41], PrefixError::IdentityTooLong { len: 65 }),
    ];
    for (prefix, err) in cases {
        assert_eq!(cid_from_prefix(prefix, &[7; 65]), Err(err), "{prefix:02x?}");
    }
    assert_eq!(prefix_of(&cid(CID_V0)), [0x00, 0x70, 0x12, 0x20]);
    assert_eq!(prefix_of(&cid(CID_HELLO)), [0x01, 0x55, 0x12, 0x20]);
}

#[test]
fn limits_are_enforced_on_decode() {
    let entry = |block: Vec<u8>, want_type: i32| proto::Entry {
        block,
        priority: 0,
        cancel: false,
        want_type,
        send_dont_have: false,
    };
    let with_entry =
        |e| proto::Message { wantlist: Some(proto::Wantlist { entries: vec![e], full: false }), ..Default::default() };
    // A 169-byte "CID" is refused before parsing.
    let big = with_entry(entry(vec![0x01; MAX_CID_SIZE + 1], 0)).encode_to_vec();
    assert!(matches!(Message::decode(&big), Err(BitswapError::CidTooLarge { len: 169 })));
    let bad_type = with_entry(entry(cid(CID_V0).to_bytes(), 7)).encode_to_vec();
    assert!(matches!(Message::decode(&bad_type), Err(BitswapError::UnknownWantType(7))));
    let presence = proto::Message {
        block_presences: vec![proto::BlockPresence { cid: cid(CID_V0).to_bytes(), r#type: 5 }],
        ..Default::default()
    };
    assert!(matches!(Message::decode(&presence.encode_to_vec()), Err(BitswapError::UnknownPresenceType(5))));

    let block = proto::Message {
        payload: vec![proto::Block {
            prefix: vec![0x01, 0x55, 0x12, 0x20],
            data: Bytes::from(vec![0; MAX_BLOCK_SIZE + 1]),
        }],
        ..Default::default()
    };
    assert!(matches!(
        Message::decode(&block.encode_to_vec()),
        Err(BitswapError::BlockTooLarge { len }) if len == MAX_BLOCK_SIZE + 1
    ));
    let body = vec![0; MAX_MESSAGE_SIZE + 1];
    assert!(matches!(Message::decode(&body), Err(BitswapError::TooLarge { .. })));

    // 65 537 empty legacy blocks: two bytes each on the wire, refused before decoding.
    let many = proto::Message { blocks: vec![Bytes::new(); MAX_ENTRIES_PER_MESSAGE + 1], ..Default::default() };
    assert!(matches!(
        Message::decode(&many.encode_to_vec()),
        Err(BitswapError::TooManyEntries { count }) if count == MAX_ENTRIES_PER_MESSAGE + 1
    ));
    // Groups (wire types 3 and 4) do not exist in proto3 and are refused.
    assert!(matches!(Message::decode(&[0x0b, 0x0c]), Err(BitswapError::Malformed(_))));
}

#[test]
fn entry_count_sees_every_wantlist_occurrence() {
    // protobuf merges repeated occurrences of a message field; the count must too.
    let one = proto::Message {
        wantlist: Some(proto::Wantlist {
            entries: vec![entry_to_proto(&want(cid(CID_V0), WantType::Block, false)); 3],
            full: false,
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let twice = [one.clone(), one].concat();
    assert_eq!(count_entries(&twice).unwrap(), 6);
    assert_eq!(Message::decode(&twice).unwrap().wants.len(), 6);
}

#[test]
fn frame_prefix_over_limit_fails_before_the_body() {
    let mut buf = unsigned_varint::encode::usize_buffer();
    let over = unsigned_varint::encode::usize(MAX_MESSAGE_SIZE + 1, &mut buf).to_vec();
    let mut dec = FrameDecoder::new();
    for (i, byte) in over.iter().enumerate() {
        dec.feed(&[*byte]);
        let got = dec.next_frame();
        if i + 1 < over.len() {
            assert!(matches!(got, Ok(None)));
        } else {
            assert!(matches!(got, Err(BitswapError::TooLarge { len }) if len == MAX_MESSAGE_SIZE as u64 + 1));
        }
    }
    // The decoder stays failed and holds nothing.
    dec.feed(&[0; 100]);
    assert!(matches!(dec.next_frame(), Err(BitswapError::TooLarge { .. })));
    assert!(dec.finish().is_err());
    assert_eq!(dec.buffered(), 0);

    // Exactly 4 MiB is allowed: the prefix is consumed and the body awaited.
    let mut buf = unsigned_varint::encode::usize_buffer();
    let max = unsigned_varint::encode::usize(MAX_MESSAGE_SIZE, &mut buf);
    let mut dec = FrameDecoder::new();
    assert_eq!(max, [0x80, 0x80, 0x80, 0x02]);
    dec.feed(max);
    assert!(matches!(dec.next_frame(), Ok(None)));
    assert_eq!(dec.buffered(), 0);
    assert!(matches!(dec.finish(), Err(BitswapError::Truncated { buffered: 4 })));
}

#[test]
fn frame_errors() {
    let mut dec = FrameDecoder::new();
    dec.feed(&[0xff; 11]);
    assert!(matches!(dec.next_frame(), Err(BitswapError::BadLengthPrefix)));
    let mut dec = FrameDecoder::new();
    dec.feed(&[0x80, 0x00]); // non-minimal zero
    assert!(matches!(dec.next_frame(), Err(BitswapError::BadLengthPrefix)));
    let mut dec = FrameDecoder::new();
    let framed = frame(b"abc");
    dec.feed(&framed[..3]);
    assert!(matches!(dec.next_frame(), Ok(None)));
    assert!(matches!(dec.finish(), Err(BitswapError::Truncated { buffered: 3 })));
    dec.feed(&framed[3..]);
    assert_eq!(dec.next_frame().unwrap().unwrap(), &b"abc"[..]);
    dec.finish().unwrap();
    // An empty frame is an empty message.
    let mut dec = FrameDecoder::new();
    dec.feed(&[0x00]);
    let body = dec.next_frame().unwrap().unwrap();
    assert_eq!(Message::decode(&body).unwrap(), Message::default());
}

#[test]
fn each_frame_owns_its_allocation() {
    // Two frames and half a third arrive in one read: the first body handed out must not share
    // a buffer with what the decoder still holds, or a queued block would pin it.
    let (a, b, c) = (vec![1u8; 70_000], vec![2u8; 10], vec![3u8; 5000]);
    let mut stream = [frame(&a), frame(&b), frame(&c)].concat();
    stream.truncate(stream.len() - 2500);
    let mut dec = FrameDecoder::new();
    dec.feed(&stream[..40_000]);
    assert!(dec.next_frame().unwrap().is_none());
    dec.feed(&stream[40_000..]);
    let first = dec.next_frame().unwrap().unwrap();
    let second = dec.next_frame().unwrap().unwrap();
    assert!(dec.next_frame().unwrap().is_none());
    assert_eq!((&first[..], &second[..]), (&a[..], &b[..]));
    assert!(first.is_unique() && second.is_unique());
    assert_eq!(dec.buffered(), 2500);
}

#[test]
fn encode_framed_refuses_oversize_bodies() {
    let data = Bytes::from(vec![1; MAX_BLOCK_SIZE]);
    let block = Block::new_unchecked(make_cid(1, cids::RAW, &data), data);
    let msg = Message { blocks: vec![block.clone(), block.clone(), block], ..Default::default() };
    assert!(matches!(msg.encode_framed(Version::V1_2_0), Err(BitswapError::TooLarge { .. })));
}

#[test]
fn split_packs_blocks_under_the_target() {
    let blocks: Vec<Block> = (0..7u8)
        .map(|i| {
            let data = Bytes::from(vec![i; 600 * 1024]);
            Block::new_unchecked(make_cid(1, cids::RAW, &data), data)
        })
        .collect();
    let msg = Message {
        full: true,
        wants: vec![want(cid(CID_V0), WantType::Have, false)],
        blocks,
        presences: vec![(cid(CID_EMPTY), Presence::DontHave)],
        pending_bytes: 5,
    };
    let parts = split_into_messages(&msg, Version::V1_2_0, TARGET_MESSAGE_SIZE);
    let shape: Vec<_> = parts.iter().map(|m| (m.wants.len(), m.presences.len(), m.blocks.len())).collect();
    assert_eq!(shape, [(1, 1, 3), (0, 0, 3), (0, 0, 1)]);
    let pending: Vec<_> = parts.iter().map(|m| m.pending_bytes).collect();
    assert_eq!(pending, [5 + 4 * 600 * 1024, 5 + 600 * 1024, 5]);
    assert!(parts[0].full && !parts[1].full && !parts[2].full);
    for part in &parts {
        assert!(part.encode(Version::V1_2_0).len() <= TARGET_MESSAGE_SIZE);
    }
}

#[test]
fn split_edge_cases() {
    // An empty message still goes out once (an empty full wantlist means "want nothing").
    let empty = Message { full: true, ..Default::default() };
    assert_eq!(split_into_messages(&empty, Version::V1_2_0, 100), vec![empty]);
    // A block bigger than the target travels alone, unsplit.
    let data = Bytes::from(vec![9; 5000]);
    let block = Block::new_unchecked(make_cid(1, cids::RAW, &data), data);
    let msg = Message {
        wants: vec![want(cid(CID_V0), WantType::Block, false)],
        blocks: vec![block.clone()],
        ..Default::default()
    };
    let parts = split_into_messages(&msg, Version::V1_1_0, 1000);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].blocks, [block]);
    // The entry cap applies even when the bytes would fit.
    let many = Message {
        wants: vec![want(cid(CID_V0), WantType::Block, false); MAX_ENTRIES_PER_MESSAGE + 1],
        ..Default::default()
    };
    let parts = split_into_messages(&many, Version::V1_2_0, usize::MAX / 2);
    let sizes: Vec<_> = parts.iter().map(|m| m.wants.len()).collect();
    assert_eq!(sizes, [MAX_ENTRIES_PER_MESSAGE, 1]);
}

#[test]
fn protocol_names() {
    for v in Version::ALL {
        assert_eq!(Version::from_protocol_name(v.protocol_name()), Some(v));
    }
    assert_eq!(Version::from_protocol_name(PROTOCOL_LEGACY), Some(Version::V1_0_0));
    assert_eq!(Version::from_protocol_name("/ipfs/bitswap/1.3.0"), None);
    assert_eq!(PROTOCOLS[0], "/ipfs/bitswap/1.2.0");
    assert!(Version::V1_2_0.supports_have() && !Version::V1_1_0.supports_have());
}

proptest! {
    #[test]
    fn round_trips_every_version(msg in arb_message()) {
        prop_assert_eq!(msg.for_version(Version::V1_2_0), msg.clone());
        for v in Version::ALL {
            let bytes = msg.encode(v);
            let expected = msg.for_version(v);
            prop_assert_eq!(Message::decode(&bytes).unwrap(), expected.clone());
            prop_assert_eq!(Message::decode_bytes(Bytes::from(bytes.clone())).unwrap(), expected.clone());
            // Encoding what survives gives the same bytes: the drops are exactly for_version.
            prop_assert_eq!(expected.encode(v), bytes.clone());
            let mut dec = FrameDecoder::new();
            dec.feed(&msg.encode_framed(v).unwrap());
            prop_assert_eq!(dec.next_frame().unwrap().unwrap(), Bytes::from(bytes));
            dec.finish().unwrap();
        }
    }

    #[test]
    fn prefix_round_trips(block in arb_block()) {
        prop_assert_eq!(cid_from_prefix(&prefix_of(&block.cid), &block.data), Ok(block.cid));
    }

    #[test]
    fn frames_survive_any_chunking(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5),
        chunk in 1usize..64,
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            dec.feed(piece);
            while let Some(f) = dec.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        dec.finish().unwrap();
        prop_assert_eq!(got, bodies);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Message::decode(&bytes);
        let mut dec = FrameDecoder::new();
        dec.feed(&bytes);
        while let Ok(Some(f)) = dec.next_frame() {
            let _ = Message::decode_bytes(f);
        }
        let _ = dec.finish();
    }

    #[test]
    fn mutated_messages_never_panic(
        msg in arb_message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = msg.encode(Version::V1_2_0);
        if !bytes.is_empty() {
            for (at, byte) in edits {
                let i = at % bytes.len();
                bytes[i] = byte;
            }
        }
        if let Ok(back) = Message::decode(&bytes) {
            // Whatever decodes names its blocks by their bytes.
            for b in &back.blocks {
                prop_assert!(cids::verify(&b.cid, &b.data).is_ok());
            }
        }
    }

    #[test]
    fn split_keeps_order_and_bounds(
        msg in arb_message(),
        target in 64usize..1500,
        v in prop_oneof![Just(Version::V1_0_0), Just(Version::V1_1_0), Just(Version::V1_2_0)],
    ) {
        let parts = split_into_messages(&msg, v, target);
        let want = msg.for_version(v);
        prop_assert!(!parts.is_empty());
        for (i, part) in parts.iter().enumerate() {
            let len = part.encode(v).len();
            prop_assert!(len <= target || entries(part) == 1, "part {} is {} bytes", i, len);
            prop_assert_eq!(part.full, i == 0 && msg.full);
            prop_assert_eq!(&part.for_version(v), part);
            prop_assert!(i == 0 || !part.is_empty());
        }
        let wants: Vec<_> = parts.iter().flat_map(|m| m.wants.clone()).collect();
        let blocks: Vec<_> = parts.iter().flat_map(|m| m.blocks.clone()).collect();
        let presences: Vec<_> = parts.iter().flat_map(|m| m.presences.clone()).collect();
        prop_assert_eq!(wants, want.wants);
        prop_assert_eq!(blocks, want.blocks);
        prop_assert_eq!(presences, want.presences);
        prop_assert_eq!(parts.last().unwrap().pending_bytes, want.pending_bytes);
    }
}
