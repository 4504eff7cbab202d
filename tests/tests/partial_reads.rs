//! A request for part of a file fetches only the blocks that part needs, counted where they are
//! sent: node A holds the files, node B (holding nothing) serves Range requests, `HEAD`,
//! entity-bytes CARs and `cat --offset/--length`; after each case A's `BlocksSent` tells how
//! many blocks left A, and B's store is emptied (`repo gc`) for the next case. Expected: the
//! blocks on the path to the range's first byte plus the leaves covering the range.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_tests::{curl, swarm_addr, Daemon, TestRepo};

/// A's `BlocksSent`, once it has stopped changing for 300 ms (the last block's count lands as
/// it is written).
fn blocks_sent(a: &TestRepo) -> Result<u64> {
    let read = || -> Result<u64> {
        let v: serde_json::Value = serde_json::from_str(&a.ok(&["bitswap", "stat", "--json"])?)?;
        v["BlocksSent"].as_u64().context("BlocksSent")
    };
    let mut last = read()?;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}

struct Pair {
    a: TestRepo,
    b: TestRepo,
    _da: Daemon,
    db: Daemon,
}

impl Pair {
    fn start() -> Result<Pair> {
        let a = TestRepo::new()?;
        let da = Daemon::start(&a)?;
        let b = TestRepo::new()?;
        let db = Daemon::start(&b)?;
        b.ok(&["swarm", "connect", &swarm_addr(&a)?])?;
        Ok(Pair { a, b, _da: da, db })
    }

    /// Run `case` on B with an empty store; the blocks A sent for it.
    fn count(&self, case: impl FnOnce() -> Result<()>) -> Result<u64> {
        self.b.ok(&["repo", "gc"])?;
        let before = blocks_sent(&self.a)?;
        case()?;
        Ok(blocks_sent(&self.a)? - before)
    }
}

#[test]
fn ranges_head_entity_bytes_and_cat_fetch_only_the_covering_blocks() -> Result<()> {
    let p = Pair::start()?;
    // 12 MiB in 1 MiB chunks: a root and 12 leaves.
    let data = cairn_tests::prng(12 << 20);
    let src = p.a.scratch("big.bin");
    fs::write(&src, &data)?;
    let cid = p.a.ok(&["add", "-Q", "--cid-version", "1", src.to_str().unwrap()])?.trim().to_string();
    let url = format!("{}/ipfs/{cid}", p.db.gateway);

    let mut rows = Vec::new();
    let mut case = |name: &str, want: u64, run: &dyn Fn() -> Result<()>| -> Result<()> {
        let sent = p.count(run)?;
        rows.push((name.to_string(), sent, want));
        Ok(())
    };

    // Without a file name the gateway sniffs the type from the first 512 bytes, so a range
    // elsewhere also costs the first leaf; with a name (`?filename=`, or a path ending in one)
    // it costs exactly the path and the covering leaves.
    let named = format!("{url}?filename=clip.mp4");
    case("Range 100 bytes at 5,000,000 of clip.mp4 (root, leaf 4)", 2, &|| {
        let r = curl(&named, &["-H", "Range: bytes=5000000-5000099"])?;
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-type"), Some("video/mp4"));
        assert_eq!(r.body, data[5_000_000..5_000_100], "the range's bytes");
        Ok(())
    })?;
    case("Range 100 bytes at 1 MiB of clip.mp4 (root, leaf 1)", 2, &|| {
        let r = curl(&named, &["-H", "Range: bytes=1048576-1048675"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &data[1_048_576..1_048_676]));
        Ok(())
    })?;
    case("open-ended Range from 11.5 MiB of clip.mp4 (root, leaf 11)", 2, &|| {
        let r = curl(&named, &["-H", "Range: bytes=12058624-"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &data[12_058_624..]));
        Ok(())
    })?;
    case("Range 100 bytes at 5,000,000, no name (root, leaf 0 to sniff, leaf 4)", 3, &|| {
        let r = curl(&url, &["-H", "Range: bytes=5000000-5000099"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &data[5_000_000..5_000_100]));
        Ok(())
    })?;
    case("Range across leaves 0 and 1, no name (root, leaves 0 and 1)", 3, &|| {
        let r = curl(&url, &["-H", "Range: bytes=1048000-1049000"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &data[1_048_000..1_049_001]));
        Ok(())
    })?;
    case("HEAD, no name (root, leaf 0 to sniff)", 2, &|| {
        let r = curl(&url, &["-I"])?;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("12582912"));
        Ok(())
    })?;
    case("HEAD of clip.mp4 (root)", 1, &|| {
        let r = curl(&named, &["-I"])?;
        assert_eq!((r.status, r.header("content-type")), (200, Some("video/mp4")));
        Ok(())
    })?;
    case("CAR with entity-bytes=5000000:5000099 (root, leaf 4)", 2, &|| {
        let r = curl(&format!("{url}?format=car&dag-scope=entity&entity-bytes=5000000:5000099"), &[])?;
        assert_eq!(r.status, 200);
        Ok(())
    })?;
    case("cat --offset 5000000 --length 100 (root, leaf 4)", 2, &|| {
        let out = p.b.cmd(&["cat", "--offset", "5000000", "--length", "100", &cid]).output()?;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, data[5_000_000..5_000_100]);
        Ok(())
    })?;
    case("the whole file", 13, &|| {
        let r = curl(&url, &[])?;
        assert!(r.status == 200 && r.body == data, "the whole file");
        Ok(())
    })?;

    // A deeper DAG: 3 MiB in 4 KiB chunks, 174 links a node: a root over 5 inner nodes over
    // 768 leaves.
    let deep = cairn_tests::prng(3 << 20);
    let src = p.a.scratch("deep.bin");
    fs::write(&src, &deep)?;
    let deep_cid =
        p.a.ok(&[
            "add",
            "-Q",
            "--cid-version",
            "1",
            "--chunker",
            "size-4096",
            "--max-links",
            "174",
            src.to_str().unwrap(),
        ])?
        .trim()
        .to_string();
    let deep_url = format!("{}/ipfs/{deep_cid}?filename=deep.bin", p.db.gateway);
    case("deep DAG: Range 100 bytes at 2,000,000 (root, inner node 2, leaf)", 3, &|| {
        let r = curl(&deep_url, &["-H", "Range: bytes=2000000-2000099"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &deep[2_000_000..2_000_100]));
        Ok(())
    })?;
    case("deep DAG: 64 KiB at 1 MiB (root, inner node 1, 16 leaves)", 18, &|| {
        let r = curl(&deep_url, &["-H", "Range: bytes=1048576-1114111"])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &deep[1_048_576..1_114_112]));
        Ok(())
    })?;
    case("deep DAG: 8 KiB across inner nodes 0 and 1 (root, 2 inner nodes, 2 leaves)", 5, &|| {
        // Leaf 173 is inner node 0's last, leaf 174 inner node 1's first.
        let at = 174 * 4096 - 4096;
        let r = curl(&deep_url, &["-H", &format!("Range: bytes={at}-{}", at + 8191)])?;
        assert_eq!((r.status, r.body.as_slice()), (206, &deep[at..at + 8192]));
        Ok(())
    })?;
    case("deep DAG: cat --offset 2000000 --length 100 (root, inner node 2, leaf)", 3, &|| {
        let out = p.b.cmd(&["cat", "--offset", "2000000", "--length", "100", &deep_cid]).output()?;
        assert!(out.status.success() && out.stdout == deep[2_000_000..2_000_100]);
        Ok(())
    })?;

    let report: Vec<String> =
        rows.iter().map(|(n, sent, want)| format!("{n}: {sent} blocks (expected {want})")).collect();
    println!("{}", report.join("\n"));
    for (name, sent, want) in &rows {
        assert_eq!(sent, want, "{name}\n{}", report.join("\n"));
    }
    Ok(())
}
