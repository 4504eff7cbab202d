//! Criterion micro-benchmarks: chunk + hash + DAG build (`import_bytes`), CID parse, hashing,
//! Bitswap message encode/decode, and block store put/get of 1 KiB and 1 MiB blocks.

use bytes::Bytes;
use cairn_node::repo::Repo;
use cairn_protocol::bitswap::{Message, Presence, Version, WantEntry, WantType};
use cairn_protocol::cids::{self, HashFn, RAW};
use cairn_protocol::file::import_bytes;
use cairn_protocol::profile::ImportSettings;
use cairn_protocol::Block;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn import(c: &mut Criterion) {
    let data: Vec<u8> = (0..(16u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut g = c.benchmark_group("import_bytes");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, s) in [("unixfs-v1-2025", ImportSettings::v1_2025()), ("unixfs-v0-2015", ImportSettings::v0_2015())] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &s, |b, s| b.iter(|| import_bytes(s, &data)));
    }
    g.finish();
}

fn cid_parse(c: &mut Criterion) {
    c.bench_function("cid_parse_v1", |b| {
        b.iter(|| cids::parse("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi").unwrap())
    });
    let data = Bytes::from(vec![7u8; 1 << 20]);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha2-256 1 MiB", |b| b.iter(|| cids::HashFn::Sha2_256.digest(&data)));
    g.bench_function("blake3 1 MiB", |b| b.iter(|| cids::HashFn::Blake3.digest(&data)));
    g.finish();
}

/// Raw blocks of `size` bytes, each different.
fn blocks(n: usize, size: usize) -> Vec<Block> {
    (0..n)
        .map(|i| {
            let mut data = vec![(i % 251) as u8; size];
            data[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let cid = cids::cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &data);
            Block::new_unchecked(cid, Bytes::from(data))
        })
        .collect()
}

fn bitswap(c: &mut Criterion) {
    let blocks_1m = blocks(2, 1 << 20);
    let wants: Vec<WantEntry> = blocks(256, 8)
        .into_iter()
        .map(|b| WantEntry { cid: b.cid, priority: 1, cancel: false, want: WantType::Have, send_dont_have: true })
        .collect();
    let messages = [
        ("256 want-haves", Message { wants: wants.clone(), ..Message::default() }),
        (
            "2 x 1 MiB blocks + 256 presences",
            Message {
                blocks: blocks_1m,
                presences: wants.iter().map(|w| (w.cid, Presence::DontHave)).collect(),
                ..Message::default()
            },
        ),
    ];
    let mut g = c.benchmark_group("bitswap");
    for (name, msg) in &messages {
        let bytes = msg.encode(Version::V1_2_0);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("encode {name}"), |b| b.iter(|| msg.encode(Version::V1_2_0)));
        // Decoding hashes every block to compute its CID.
        g.bench_function(format!("decode {name}"), |b| b.iter(|| Message::decode(&bytes).unwrap()));
    }
    g.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    Repo::init(&path, "local").unwrap();
    let repo = Repo::open(&path).unwrap();
    let store = repo.store();
    let mut g = c.benchmark_group("store");
    for (name, size, n) in [("1 KiB", 1024usize, 64usize), ("1 MiB", 1 << 20, 8)] {
        let batch = blocks(n, size);
        g.throughput(Throughput::Bytes((size * n) as u64));
        // Durable puts of fresh blocks: each iteration writes a new batch (salted CIDs).
        let mut round = 0u64;
        g.bench_function(format!("put {n} x {name}"), |b| {
            b.iter(|| {
                round += 1;
                let fresh: Vec<Block> = batch
                    .iter()
                    .map(|blk| {
                        let mut data = blk.data.to_vec();
                        data[8..16].copy_from_slice(&round.to_le_bytes());
                        let cid = cids::cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &data);
                        Block::new_unchecked(cid, Bytes::from(data))
                    })
                    .collect();
                store.put_many(fresh).unwrap();
            })
        });
        store.put_many(batch.clone()).unwrap();
        // Verified reads (every get re-hashes the block).
        g.bench_function(format!("get {n} x {name}"), |b| {
            b.iter(|| {
                for blk in &batch {
                    store.get(&blk.cid).unwrap().unwrap();
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, import, cid_parse, bitswap, store);
criterion_main!(benches);
