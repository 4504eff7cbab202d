//! What every decoder of bytes from the network or disk must hold for any input. Each
//! function takes arbitrary bytes, runs one decoder as the node runs it, and panics only when
//! an invariant breaks: a decoded value that does not survive encode-decode, two readings of
//! the same bytes that disagree, a parse that accepts what it promises to refuse. Anything
//! else must come back as a typed error.
//!
//! The fuzz targets under `fuzz/` call these; `tests/replay.rs` runs them over the committed
//! seed corpora and every input a fuzzer ever crashed on (`fuzz/regressions/`).

use bytes::Bytes;
use cairn_node::fuzzing::{self, RangeOutcome, UploadPart};
use cairn_node::gateway::redirects;
use cairn_node::gateway::request::{self, Parts, Route, RouteConfig};
use cairn_protocol::bitswap::{FrameDecoder, Message, Version};
use cairn_protocol::car::{self, CarDecoder, Item};
use cairn_protocol::cids::{self, HashFn, DAG_PB};
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::names::Name;
use cairn_protocol::records;
use cairn_protocol::unixfs::Data;
use cairn_protocol::{dht, reader};
use prost::Message as _;

/// One target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every target, by the name its fuzz target and corpus directory carry.
pub const TARGETS: &[(&str, Check)] = &[
    ("bitswap_message", bitswap_message),
    ("dagpb_unixfs", dagpb_unixfs),
    ("cid_path", cid_path),
    ("car", car),
    ("ipns_record", ipns_record),
    ("dht_message", dht_message),
    ("gateway_request", gateway_request),
    ("api_multipart", api_multipart),
];

/// A Bitswap stream: frames split at an arbitrary point decode to the same bodies; a decoded
/// message survives encoding for every version as [`Message::for_version`] describes.
pub fn bitswap_message(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else { return };
    let mut frames = FrameDecoder::new();
    let cut = usize::from(cut).min(rest.len());
    frames.feed(&rest[..cut]);
    let mut bodies = Vec::new();
    let mut drain = |frames: &mut FrameDecoder| {
        while let Ok(Some(body)) = frames.next_frame() {
            bodies.push(body);
        }
    };
    drain(&mut frames);
    frames.feed(&rest[cut..]);
    drain(&mut frames);
    let _ = frames.finish();
    for body in bodies.iter().map(|b| &b[..]).chain([rest]) {
        let Ok(msg) = Message::decode(body) else { continue };
        assert_eq!(Message::decode_bytes(Bytes::copy_from_slice(body)).as_ref().ok(), Some(&msg), "decode_bytes");
        for v in Version::ALL {
            let again = Message::decode(&msg.encode(v)).expect("an encoded message decodes");
            assert_eq!(again, msg.for_version(v), "round trip at {v:?}");
            if let Ok(framed) = msg.encode_framed(v) {
                let mut f = FrameDecoder::new();
                f.feed(&framed);
                assert_eq!(f.next_frame().expect("own frame").as_deref(), Some(&msg.encode(v)[..]));
            }
        }
    }
}

/// dag-pb is decoded strictly, so a node that decodes re-encodes to the same bytes; its
/// UnixFS payload and the reader's view of the block are values or typed errors.
pub fn dagpb_unixfs(data: &[u8]) {
    let block = Bytes::copy_from_slice(data);
    if let Ok(node) = PbNode::decode(&block) {
        assert_eq!(node.encode(), data, "dag-pb re-encoding differs from the accepted bytes");
        assert_eq!(node.encoded_len(), data.len());
        if let Some(payload) = &node.data {
            if let Ok(unixfs) = Data::from_bytes(payload) {
                assert_eq!(Data::from_bytes(&unixfs.to_bytes()).expect("re-encoded UnixFS"), unixfs);
            }
        }
    }
    let cid = cids::cid_for(cid::Version::V1, DAG_PB, HashFn::Sha2_256, data);
    if let Ok(node) = reader::decode(&cid, &block) {
        let _ = format!("{node:?}");
    }
}

/// CIDs in text and binary, IPNS names and the path after a CID: what parses prints back to
/// itself, and paths never yield a segment that could climb or split.
pub fn cid_path(data: &[u8]) {
    if let Ok(cid) = cids::from_bytes(data) {
        assert_eq!(cid.to_bytes(), data, "binary CID round trip");
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(cid) = cids::parse(&text) {
        assert_eq!(cids::parse(&cid.to_string()).expect("printed CID parses"), cid);
        let v1 = cids::to_v1(&cid);
        assert_eq!(cids::parse(&v1.to_string()).expect("CIDv1 parses"), v1);
    }
    if let Ok(name) = text.parse::<Name>() {
        assert_eq!(name.to_string().parse::<Name>().expect("printed name parses"), name);
        assert_eq!(Name::from_routing_key(&name.routing_key()), Some(name));
    }
    if let Ok(segments) = reader::split_path(&text) {
        for s in segments {
            assert!(!s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0'), "segment {s:?}");
        }
    }
}

/// A CAR read whole and read in two pieces gives the same items (or the same error); a CARv1
/// that reads re-encodes to one with the same roots and sections.
pub fn car(data: &[u8]) {
    let Some((&cut, input)) = data.split_first() else { return };
    let whole = car::read_all(input);
    let mut dec = CarDecoder::new();
    let cut = (usize::from(cut) * input.len() / 255).min(input.len());
    let mut items = Vec::new();
    let mut pieces = |dec: &mut CarDecoder, piece: &[u8]| -> Result<(), car::CarError> {
        dec.push(piece);
        while let Some(item) = dec.next()? {
            items.push(item);
        }
        Ok(())
    };
    let pieced =
        pieces(&mut dec, &input[..cut]).and_then(|()| pieces(&mut dec, &input[cut..])).and_then(|()| dec.finish());
    match (&whole, pieced) {
        (Ok((header, sections)), Ok(())) => {
            let mut expect = vec![Item::Header(header.clone())];
            expect.extend(sections.iter().cloned().map(Item::Section));
            assert_eq!(items, expect, "whole and pieced reads differ");
            for s in sections {
                let _ = s.verify();
            }
            if header.v2.is_none() {
                let mut out = Vec::new();
                car::encode_header(&header.roots, &mut out);
                for s in sections {
                    car::encode_section(&s.cid, &s.data, &mut out);
                }
                let (h2, s2) = car::read_all(&out).expect("a re-encoded CARv1 reads");
                assert_eq!(h2.roots, header.roots);
                assert_eq!(
                    s2.iter().map(|s| (s.cid, s.data.clone())).collect::<Vec<_>>(),
                    sections.iter().map(|s| (s.cid, s.data.clone())).collect::<Vec<_>>()
                );
            }
        }
        (Err(_), Err(_)) => {}
        (w, p) => panic!("whole read {:?}, pieced read {p:?}", w.as_ref().map(|(h, s)| (h, s.len()))),
    }
}

/// The key the `ipns_record` corpus's records are signed with (ed25519, fixed for replay).
pub fn ipns_test_key() -> libp2p_identity::Keypair {
    libp2p_identity::Keypair::ed25519_from_bytes([7u8; 32]).expect("a 32-byte ed25519 secret")
}

/// The time the `ipns_record` target validates at (2026-01-01), so replays are deterministic.
pub const IPNS_NOW_NANOS: i128 = 1_767_225_600_000_000_000;

/// An IPNS record (first byte 0: for the test key's name; otherwise the first byte splits a
/// DHT key from a value) is valid, unexpired and self-consistent, or a typed error.
pub fn ipns_record(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if let Ok(entry) = records::IpnsEntry::decode(rest) {
        let again = records::IpnsEntry::decode(&entry.encode_to_vec()[..]).expect("re-encoded entry decodes");
        assert_eq!(again, entry);
    }
    let name = ipns_test_key().public().to_peer_id();
    let result = if mode == 0 {
        records::validate_ipns(&name, rest, IPNS_NOW_NANOS).map(records::ValidRecord::Ipns)
    } else {
        let split = usize::from(mode).min(rest.len());
        records::validate(&rest[..split], &rest[split..], IPNS_NOW_NANOS)
    };
    if let Ok(records::ValidRecord::Ipns(record)) = &result {
        assert!(record.eol_nanos > IPNS_NOW_NANOS, "an expired record was accepted");
        let held = result.clone().unwrap();
        assert!(!records::replaces(&held, &held), "a record replaces itself");
    }
}

/// A DHT message that decodes survives encode-decode, framed as on the stream.
pub fn dht_message(data: &[u8]) {
    if let Ok(msg) = dht::Message::from_body(data) {
        let frame = msg.to_frame();
        let mut f = FrameDecoder::new();
        f.feed(&frame);
        let body = f.next_frame().expect("own frame").expect("a whole frame");
        assert_eq!(dht::Message::from_body(&body).expect("re-encoded message decodes"), msg);
        let _ = msg.kind();
    }
}

/// The gateway's routing of a request (fields split by newlines: host, path, query, accept,
/// Range header, `_redirects` text): every answer is well formed, content paths carry only
/// checked segments, ranges stay inside the file.
pub fn gateway_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(6, '\n');
    let mut next = || fields.next().unwrap_or("");
    let (host, raw_path, query, accept, range, rules) = (next(), next(), next(), next(), next(), next());
    // As hyper hands it over: an origin-form path always starts with `/`.
    let path = &if raw_path.starts_with('/') { raw_path.to_string() } else { format!("/{raw_path}") };
    let hosts = vec!["localhost".to_string(), "dweb.link".to_string()];
    for redirect in [false, true] {
        let parts = Parts {
            host: (!host.is_empty()).then_some(host),
            path,
            query: (!query.is_empty()).then_some(query),
            accept: (!accept.is_empty()).then_some(accept),
        };
        match request::route(&parts, &RouteConfig { subdomain_hosts: &hosts, redirect_to_subdomain: redirect }) {
            Ok(Route::Content(t)) => {
                for s in &t.segments {
                    assert!(!s.is_empty() && s != "." && s != ".." && !s.contains('/'), "segment {s:?}");
                }
            }
            Ok(Route::Redirect(to)) => assert!(to.starts_with("http://") || to.starts_with('/'), "redirect to {to:?}"),
            Ok(Route::Name(n)) => assert!(n.rest.is_empty() || n.rest.starts_with('/'), "rest {:?}", n.rest),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    for size in [1u64, 100, 5_000_000, u64::MAX] {
        match fuzzing::byte_range(range, size) {
            RangeOutcome::Range(from, to) => assert!(from <= to && to < size, "{range:?} on {size}: {from}-{to}"),
            RangeOutcome::Whole | RangeOutcome::Unsatisfiable => {}
        }
    }
    if let Ok(rules) = redirects::parse(rules) {
        for p in [path, "/", "/a/b", "/missing.html"] {
            if let Some((status, _to)) = redirects::find(&rules, p) {
                assert!((200..600).contains(&status), "status {status}");
            }
        }
    }
}

/// An upload body: arbitrary bytes under a fixed boundary give parts or the API's error;
/// parts built from the input and encoded as a client would come back exactly, and their
/// import (hash only) gives roots or a typed error.
pub fn api_multipart(data: &[u8]) {
    const BOUNDARY: &str = "cairnfuzzboundary";
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    if let Ok(parts) = fuzzing::multipart(&content_type, data.to_vec()) {
        let _ = fuzzing::import(&parts);
    }
    // Structured: entries separated by 0xff, each `kind byte ‖ name ‖ 0x00 ‖ bytes`.
    let mut sent = Vec::new();
    for entry in data.split(|b| *b == 0xff).take(16) {
        let Some((&k, rest)) = entry.split_first() else { continue };
        let (name, bytes) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let kind = ["file", "dir", "symlink"][usize::from(k % 3)];
        let name: String = String::from_utf8_lossy(name).chars().filter(|c| !c.is_control() && *c != '"').collect();
        let bytes = if kind == "dir" { Vec::new() } else { bytes.to_vec() };
        if bytes.windows(BOUNDARY.len()).any(|w| w == BOUNDARY.as_bytes()) {
            return;
        }
        sent.push(UploadPart { name, kind, data: bytes });
    }
    let mut body = Vec::new();
    for p in &sent {
        let ct = match p.kind {
            "dir" => "application/x-directory",
            "symlink" => "application/symlink",
            _ => "application/octet-stream",
        };
        let encoded: String = percent_encode(&p.name);
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{encoded}\"\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let got = fuzzing::multipart(&content_type, body).expect("a well-formed upload reads");
    assert_eq!(got, sent, "parts changed on the way through the API's reader");
    let _ = fuzzing::import(&got);
}

/// Percent-encode every byte outside unreserved ASCII, as kubo's clients encode file names.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
