//! Write the fuzz targets' seed corpora from the real encoders: `cargo run -p
//! cairn-invariants --bin seeds -- fuzz/corpus`. Each seed is an input its target's decoder
//! accepts (plus a few it must refuse), so fuzzing starts from the formats' real shapes.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use cairn_node::importer::{self, AddOptions};
use cairn_node::store::sim::{Journal, SimFiles, SimMeta};
use cairn_node::store::Store;
use cairn_node::upload::{Part, PartKind};
use cairn_protocol::bitswap::{self, Message, Presence, Version, WantEntry, WantType};
use cairn_protocol::chunker::ChunkerSpec;
use cairn_protocol::cids::{self, HashFn, RAW};
use cairn_protocol::profile::ImportSettings;
use cairn_protocol::{car, dht, records, Block, Cid};
use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into());
    let mut seeds: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    let blocks = dag_blocks()?;

    // Bitswap: a cut byte, then a body or a stream of frames.
    let raw = Block::new_verified(
        cids::cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"hello"),
        Bytes::from_static(b"hello"),
    )?;
    let want = |cid: Cid, want, cancel| WantEntry { cid, priority: 1, cancel, want, send_dont_have: true };
    let msgs = [
        Message {
            wants: vec![want(raw.cid, WantType::Have, false), want(blocks[0].0, WantType::Block, false)],
            ..Message::default()
        },
        Message { full: true, wants: vec![want(raw.cid, WantType::Block, true)], ..Message::default() },
        Message {
            blocks: vec![raw.clone()],
            presences: vec![(blocks[0].0, Presence::Have), (blocks[1].0, Presence::DontHave)],
            pending_bytes: 10,
            ..Message::default()
        },
        Message { blocks: vec![Block::new_verified(blocks[1].0, blocks[1].1.clone())?], ..Message::default() },
    ];
    let b = seeds.entry("bitswap_message").or_default();
    for m in &msgs {
        for v in Version::ALL {
            b.push([&[200u8][..], &m.encode(v)].concat());
        }
        b.push([&[3u8][..], &m.encode_framed(Version::V1_2_0)?, &m.encode_framed(Version::V1_1_0)?].concat());
    }
    b.push([&[1u8][..], &bitswap::frame(&[0xff; 8])].concat());

    // dag-pb and UnixFS: every node of a file, a directory, a HAMT shard, a symlink.
    let d = seeds.entry("dagpb_unixfs").or_default();
    for (cid, data) in &blocks {
        if cid.codec() == cids::DAG_PB {
            d.push(data.to_vec());
        }
    }
    d.push(vec![0x12, 0x00]);

    // CIDs, names and paths.
    let c = seeds.entry("cid_path").or_default();
    for (cid, _) in blocks.iter().take(3) {
        c.push(cid.to_string().into_bytes());
        c.push(cid.to_bytes());
        c.push(cids::to_v1(cid).to_string().into_bytes());
    }
    let name = cairn_invariants::ipns_test_key().public().to_peer_id();
    c.push(name.to_string().into_bytes());
    c.push(cairn_protocol::names::Name::new(name).to_string().into_bytes());
    c.push(b"a/b//c/".to_vec());
    c.push(b"a/../b".to_vec());

    // CAR v1 and v2: a cut position, then the file.
    let mut v1 = Vec::new();
    car::encode_header(&[blocks[0].0], &mut v1);
    for (cid, data) in blocks.iter().take(6) {
        car::encode_section(cid, data, &mut v1);
    }
    let mut v2 = vec![0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
    v2.extend_from_slice(&[0u8; 16]);
    let offset = (v2.len() + 24) as u64;
    v2.extend_from_slice(&offset.to_le_bytes());
    v2.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    v2.extend_from_slice(&0u64.to_le_bytes());
    v2.extend_from_slice(&v1);
    let k = seeds.entry("car").or_default();
    k.push([&[0u8][..], &v1].concat());
    k.push([&[128u8][..], &v1].concat());
    k.push([&[60u8][..], &v2].concat());
    k.push([&[255u8][..], &v1[..v1.len() - 7]].concat());

    // IPNS records: for the test key's name (mode 0), and under a DHT key.
    let key = cairn_invariants::ipns_test_key();
    let eol = cairn_invariants::IPNS_NOW_NANOS + 86_400_000_000_000;
    let record = records::create_ipns(&key, format!("/ipfs/{}", blocks[0].0).as_bytes(), 5, eol, 3_600_000_000_000)?;
    let dht_key = records::ipns_key(&name);
    let r = seeds.entry("ipns_record").or_default();
    r.push([&[0u8][..], &record].concat());
    r.push([&[dht_key.len() as u8][..], &dht_key, &record].concat());
    let expired = records::create_ipns(&key, b"/ipfs/x", 1, cairn_invariants::IPNS_NOW_NANOS - 1, 0)?;
    r.push([&[0u8][..], &expired].concat());
    let pk = [b"/pk/".as_slice(), &name.to_bytes()].concat();
    r.push([&[pk.len() as u8][..], &pk, &key.public().encode_protobuf()].concat());

    // DHT messages.
    let peer =
        dht::Peer { id: name.to_bytes(), addrs: vec![b"\x04\x7f\x00\x00\x01\x06\x10\x01".to_vec()], connection: 1 };
    let h = seeds.entry("dht_message").or_default();
    h.push(dht::add_provider(&blocks[0].0.hash().to_bytes(), &name.to_bytes(), &peer.addrs)?.encode_to_vec());
    h.push(
        dht::Message {
            r#type: 3,
            key: blocks[0].0.hash().to_bytes(),
            closer_peers: vec![peer.clone()],
            provider_peers: vec![peer.clone()],
            ..Default::default()
        }
        .encode_to_vec(),
    );
    h.push(
        dht::Message {
            r#type: 0,
            key: dht_key.clone(),
            record: Some(dht::Record { key: dht_key.clone(), value: record.clone(), time_received: String::new() }),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    h.push(
        dht::Message { r#type: 4, key: name.to_bytes(), closer_peers: vec![peer], ..Default::default() }
            .encode_to_vec(),
    );

    // Gateway requests: host, path, query, accept, Range, `_redirects`.
    let root = blocks[0].0;
    let v1root = cids::to_v1(&root);
    let g = seeds.entry("gateway_request").or_default();
    for req in [
        format!("127.0.0.1:8080\n/ipfs/{root}/a/b.txt\nfilename=b.txt\ntext/html\nbytes=0-99\n/a/* /b/:splat 301\n"),
        format!("localhost:8080\n/ipfs/{root}\n\napplication/vnd.ipld.car\nbytes=-500\n/* /index.html 200\n"),
        format!("{v1root}.ipfs.localhost:8080\n/sub/%20dir/\nformat=raw\n\nbytes=100-\n/old /new 302\n# comment\n"),
        format!("localhost\n/ipns/{name}/x\n\n\nbytes=5-1\n/gone /x 410\n"),
        format!("\n/ipfs/\nuri=ipfs%3A%2F%2F{root}%2Fa\n\nbytes=0-0,5-9\n"),
        format!("{}.ipns.dweb.link\n/\nformat=ipns-record\n\nbytes=1-2\n", cairn_protocol::names::Name::new(name)),
        format!("127.0.0.1\n/ipfs/{root}/..\n\n\n\n"),
    ] {
        g.push(req.into_bytes());
    }

    // Multipart: raw bodies under the target's boundary, and structured entries.
    let m = seeds.entry("api_multipart").or_default();
    m.push(b"--cairnfuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--cairnfuzzboundary--\r\n".to_vec());
    m.push(b"--cairnfuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n--cairnfuzzboundary\r\nContent-Disposition: form-data; name=\"file?mode=0644&mtime=5\"; filename=\"d%2Fb.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nbody\r\n--cairnfuzzboundary--\r\n".to_vec());
    m.push(b"\x01dir\x00\xff\x00dir/file.txt\x00contents\xff\x02dir/link\x00file.txt".to_vec());

    for (target, inputs) in seeds {
        let dir = Path::new(&out).join(target);
        std::fs::create_dir_all(&dir)?;
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), input)?;
        }
        println!("{target}: {} seeds", inputs.len());
    }
    Ok(())
}

/// Every block of a small tree (a chunked file, a directory, a HAMT-sharded directory and a
/// symlink), root first.
fn dag_blocks() -> Result<Vec<(Cid, Bytes)>, Box<dyn std::error::Error>> {
    let journal = Journal::default();
    let store = Store::new(Box::new(SimFiles::new(journal.clone())), Box::new(SimMeta::new(journal)));
    let mut settings = ImportSettings {
        chunker: ChunkerSpec::Fixed(64),
        max_links: 4,
        hamt_threshold: 200,
        ..ImportSettings::v0_2015()
    };
    settings.raw_leaves = false;
    let opts = AddOptions { settings, pin: false, ..AddOptions::default() };
    let text: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
    let mut parts = vec![
        Part { kind: PartKind::Dir, ..Part::file("site", &[][..]) },
        Part::file("site/a.bin", &text[..]),
        Part { kind: PartKind::Dir, ..Part::file("site/many", &[][..]) },
    ];
    let names: Vec<String> = (0..40).map(|i| format!("site/many/entry-{i:03}.txt")).collect();
    for n in &names {
        parts.push(Part::file(n.clone(), &b"x"[..]));
    }
    parts.push(Part { kind: PartKind::Symlink, ..Part::file("site/link", &b"a.bin"[..]) });
    let roots = importer::import(&store, &opts, parts.into_iter().map(Ok), &mut |_| {}, &|_| {})?;
    let mut out = Vec::new();
    let mut stack = vec![roots.last().ok_or("no root")?.cid];
    while let Some(cid) = stack.pop() {
        let data = store.get(&cid)?.ok_or("a block went missing")?;
        stack.extend(cairn_node::dag::links(&cid, &data)?);
        out.push((cid, data));
    }
    Ok(out)
}
