//! Criterion micro-benchmarks of the pure formats: chunk + hash, DAG build, CID parse.

use bytes::Bytes;
use cairn_protocol::cids;
use cairn_protocol::file::import_bytes;
use cairn_protocol::profile::ImportSettings;
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

criterion_group!(benches, import, cid_parse);
criterion_main!(benches);
