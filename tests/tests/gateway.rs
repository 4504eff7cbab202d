//! The HTTP gateway of a real `cairn daemon`, through `curl`: every header and status of the
//! path gateway (ranges across a chunk boundary, HEAD, 304, bad CIDs, `..`), the trustless
//! formats (a raw block, CARs whose blocks verify and cover exactly the requested range),
//! subdomain origins with `_redirects`, the denylist, the retrieval timeout, and content
//! fetched from another node on demand.

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cairn_protocol::car::read_all;
use cairn_protocol::reader::{self, Node};
use cairn_protocol::{cids, Cid};
use cairn_tests::{bootstrap_to, curl, prng, swarm_addr, wait_for, Daemon, Reply, TestRepo};

/// The default profile's chunk size: leaves of the big file are this long.
const CHUNK: usize = 1024 * 1024;

struct Site {
    root: String,
    big: Vec<u8>,
}

/// A small site: `index.html`, a 3.5-chunk file, a text file, a directory without index,
/// and a `_redirects` file for a single-page app.
fn add_site(repo: &TestRepo) -> Result<Site> {
    let dir = repo.scratch("site");
    fs::create_dir_all(dir.join("docs"))?;
    fs::write(dir.join("index.html"), "<!DOCTYPE html><title>home</title><p>home page</p>\n")?;
    fs::write(dir.join("hello.txt"), "hello gateway\n")?;
    fs::write(dir.join("docs").join("a.txt"), "a\n")?;
    fs::write(dir.join("docs").join("<b>&.txt"), "b\n")?;
    fs::write(dir.join("noext"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")?;
    fs::write(dir.join("_redirects"), "/old-page /hello.txt 301\n/app/* /index.html 200\n/gone /hello.txt 410\n")?;
    let big = prng(3 * CHUNK + CHUNK / 2);
    fs::write(dir.join("big.bin"), &big)?;
    let root = repo.ok(&["add", "-r", "-Q", dir.to_str().unwrap()])?.trim().to_string();
    Ok(Site { root, big })
}

fn get(gw: &str, path: &str, args: &[&str]) -> Result<Reply> {
    curl(&format!("{gw}{path}"), args)
}

#[test]
fn path_gateway_headers_and_statuses() -> Result<()> {
    let repo = TestRepo::new()?;
    let site = add_site(&repo)?;
    let d = Daemon::start(&repo)?;
    let (gw, root) = (d.gateway.as_str(), site.root.as_str());
    assert!(gw.starts_with("http://127.0.0.1:"), "gateway file: {gw:?}");

    // A file: bytes, type, immutable caching, ETag = its CID, roots along the path.
    let r = get(gw, &format!("/ipfs/{root}/hello.txt"), &[])?;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello gateway\n"[..]));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=29030400, immutable"));
    // (The ETag's CID is checked against the block's bytes with `format=raw` below.)
    let etag = r.header("etag").context("etag")?.to_string();
    assert!(etag.starts_with("\"bafk") && etag.ends_with('"'), "{etag}");
    assert_eq!(r.header("x-ipfs-path"), Some(format!("/ipfs/{root}/hello.txt").as_str()));
    assert_eq!(r.header("x-ipfs-roots"), Some(format!("{root},{}", etag.trim_matches('"')).as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    // No extension: sniffed from the bytes.
    assert_eq!(get(gw, &format!("/ipfs/{root}/noext"), &[])?.header("content-type"), Some("image/png"));

    // If-None-Match with the ETag: 304, no body.
    let r = get(gw, &format!("/ipfs/{root}/hello.txt"), &["-H", &format!("If-None-Match: {etag}")])?;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    // The whole big file, then a range across the first chunk boundary: 206 with its bytes.
    let r = get(gw, &format!("/ipfs/{root}/big.bin"), &[])?;
    assert_eq!(r.status, 200);
    assert!(r.body == site.big, "the big file's bytes come back whole");
    assert_eq!(r.header("content-length"), Some(site.big.len().to_string().as_str()));
    let (from, to) = (CHUNK - 10, CHUNK + 9);
    let r = get(gw, &format!("/ipfs/{root}/big.bin"), &["-H", &format!("Range: bytes={from}-{to}")])?;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, site.big[from..=to]);
    assert_eq!(r.header("content-range"), Some(format!("bytes {from}-{to}/{}", site.big.len()).as_str()));
    assert_eq!(r.header("content-length"), Some("20"));
    // A suffix range, and one past the end.
    let r = get(gw, &format!("/ipfs/{root}/big.bin"), &["-H", "Range: bytes=-5"])?;
    assert_eq!((r.status, r.body.as_slice()), (206, &site.big[site.big.len() - 5..]));
    let r = get(gw, &format!("/ipfs/{root}/big.bin"), &["-H", &format!("Range: bytes={}-", site.big.len())])?;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{}", site.big.len()).as_str()));

    // HEAD: the same headers, no body (read off the socket: curl -I prints headers as body).
    let r = get(gw, &format!("/ipfs/{root}/big.bin"), &["-I"])?;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(site.big.len().to_string().as_str()));
    let raw = raw_request(gw, &format!("HEAD /ipfs/{root}/big.bin HTTP/1.0\r\nHost: x\r\n\r\n"))?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").context("end of headers")? + 4;
    assert_eq!(raw.len(), end, "HEAD sends no body");

    // Directories: redirected to a trailing slash, then index.html or a listing.
    let r = get(gw, &format!("/ipfs/{root}"), &[])?;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(format!("/ipfs/{root}/").as_str()));
    let r = get(gw, &format!("/ipfs/{root}/"), &[])?;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("home page"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(gw, &format!("/ipfs/{root}/docs/"), &[])?;
    let html = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 200);
    assert!(html.contains("href=\"./a.txt\"") && html.contains("&lt;b&gt;&amp;.txt"), "{html}");
    assert!(!html.contains("<b>&"), "names are escaped: {html}");

    // Errors.
    let r = get(gw, "/ipfs/bafynotacid/x", &[])?;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = get(gw, &format!("/ipfs/{root}/docs/../hello.txt"), &[])?;
    assert_eq!(r.status, 400, "`..` segments are refused");
    let r = get(gw, &format!("/ipfs/{root}/no-such-file"), &[])?;
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("no-such-file"));
    assert_eq!(get(gw, &format!("/ipfs/{root}/hello.txt"), &["-X", "POST"])?.status, 405);
    // `_redirects` apply on subdomain origins only.
    assert_eq!(get(gw, &format!("/ipfs/{root}/app/route"), &[])?.status, 404);

    // The trustless probe, and a raw block by Accept.
    let r = get(gw, "/ipfs/bafkqaaa", &["-H", "Accept: application/vnd.ipld.raw"])?;
    assert_eq!((r.status, r.body.len()), (200, 0));
    let r = get(gw, &format!("/ipfs/{root}/hello.txt?format=raw"), &[])?;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello gateway\n"[..]));
    assert_eq!(r.header("content-type"), Some("application/vnd.ipld.raw"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let raw_etag = format!("\"{}.raw\"", etag.trim_matches('"'));
    assert_eq!(r.header("etag"), Some(raw_etag.as_str()));
    let cid = cids::parse(etag.trim_matches('"'))?;
    cids::verify(&cid, &r.body).context("the raw block verifies against its CID")?;
    Ok(())
}

/// Send `request` as is to the gateway at `gw` (`http://IP:PORT`) and read the reply to the end.
fn raw_request(gw: &str, request: &str) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.trim_start_matches("http://"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// A block of a CAR response.
type Block = (Cid, Vec<u8>);

/// The CAR at `url`: its blocks, each verified against its CID, in order.
fn car_blocks(url: &str) -> Result<(Reply, Vec<Block>)> {
    let r = curl(url, &[])?;
    assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/vnd.ipld.car; version=1; order=dfs; dups=n"));
    let (_, sections) = read_all(&r.body).context("the CAR parses")?;
    let mut blocks = Vec::new();
    for s in sections {
        s.verify().context("every block verifies")?;
        blocks.push((s.cid, s.data.to_vec()));
    }
    Ok((r, blocks))
}

#[test]
fn trustless_cars_cover_exactly_what_was_asked() -> Result<()> {
    let repo = TestRepo::new()?;
    let site = add_site(&repo)?;
    let d = Daemon::start(&repo)?;
    let (gw, root) = (d.gateway.as_str(), site.root.as_str());
    let root_cid = cids::parse(root)?;

    // dag-scope=block: the root directory block, then the file's root block.
    let (_, blocks) = car_blocks(&format!("{gw}/ipfs/{root}/big.bin?format=car&dag-scope=block"))?;
    assert_eq!(blocks.len(), 2, "path proof + terminal");
    assert_eq!(blocks[0].0, root_cid);
    let file_cid = blocks[1].0;
    let Node::File { size, .. } = reader::decode(&file_cid, &blocks[1].1.clone().into())? else {
        panic!("big.bin is a file")
    };
    assert_eq!(size as usize, site.big.len());

    // entity-bytes across the boundary of chunks 1 and 2: exactly those two leaves.
    let (from, to) = (2 * CHUNK - 100, 2 * CHUNK + 100);
    let (r, blocks) =
        car_blocks(&format!("{gw}/ipfs/{root}/big.bin?format=car&dag-scope=entity&entity-bytes={from}:{to}"))?;
    assert!(r.header("etag").is_some_and(|e| e.contains(".car.")));
    let leaves: Vec<Vec<u8>> = blocks.iter().skip(2).map(|(_, d)| d.clone()).collect();
    assert_eq!(blocks[..2].iter().map(|b| b.0).collect::<Vec<_>>(), vec![root_cid, file_cid]);
    assert_eq!(leaves.len(), 2, "only the leaves covering bytes {from}..={to}");
    assert_eq!(leaves.concat(), site.big[CHUNK..3 * CHUNK], "the leaves are chunks 1 and 2, in order");

    // A negative range: the last 10 bytes are in the last (half) chunk.
    let (_, blocks) = car_blocks(&format!("{gw}/ipfs/{root}/big.bin?format=car&dag-scope=entity&entity-bytes=-10:*"))?;
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[2].1, site.big[3 * CHUNK..]);

    // The whole DAG: every block once, and the file reassembles from its leaves.
    let (_, blocks) = car_blocks(&format!("{gw}/ipfs/{root}?format=car"))?;
    let unique: HashSet<Cid> = blocks.iter().map(|b| b.0).collect();
    assert_eq!(unique.len(), blocks.len(), "no duplicates");
    let big_leaves: Vec<u8> = site.big.chunks(CHUNK).flat_map(|c| c.to_vec()).collect();
    assert_eq!(big_leaves, site.big);
    for chunk in site.big.chunks(CHUNK) {
        assert!(blocks.iter().any(|b| b.1 == chunk), "every leaf of big.bin is in the CAR");
    }
    // dag-scope=entity of a directory: just its block.
    let (_, blocks) = car_blocks(&format!("{gw}/ipfs/{root}/docs?format=car&dag-scope=entity"))?;
    assert_eq!(blocks.len(), 2);

    // Bad parameters are 400.
    assert_eq!(curl(&format!("{gw}/ipfs/{root}?format=car&dag-scope=nope"), &[])?.status, 400);
    assert_eq!(curl(&format!("{gw}/ipfs/{root}?format=car&entity-bytes=9:1"), &[])?.status, 400);
    Ok(())
}

#[test]
fn subdomain_origins_redirects_and_denylist() -> Result<()> {
    let repo = TestRepo::new()?;
    let site = add_site(&repo)?;
    let d = Daemon::start(&repo)?;
    let gw = d.gateway.as_str();
    let port = gw.rsplit(':').next().context("port")?;
    let host = |cid: &str| format!("Host: {cid}.ipfs.localhost:{port}");

    // The site on its own origin.
    let r = get(gw, "/hello.txt", &["-H", &host(&site.root)])?;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello gateway\n"[..]));
    // `_redirects`: a single-page app route, a moved page, a gone page.
    let r = get(gw, "/app/some/route", &["-H", &host(&site.root)])?;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("home page"));
    let r = get(gw, "/old-page", &["-H", &host(&site.root)])?;
    assert_eq!((r.status, r.header("location")), (301, Some("/hello.txt")));
    assert_eq!(get(gw, "/gone", &["-H", &host(&site.root)])?.status, 410);
    assert_eq!(get(gw, "/nothing-here", &["-H", &host(&site.root)])?.status, 404);
    // A broken `_redirects` is the site owner's mistake: 500 naming the line, not a silent 404.
    let bad = repo.scratch("bad-site");
    fs::create_dir_all(&bad)?;
    fs::write(bad.join("index.html"), "x")?;
    fs::write(bad.join("_redirects"), "/ok /index.html 200\n/a /b 999\n")?;
    let bad_root = repo.ok(&["add", "-r", "-Q", bad.to_str().unwrap()])?.trim().to_string();
    let r = get(gw, "/missing", &["-H", &host(&bad_root)])?;
    assert_eq!(r.status, 500);
    assert!(String::from_utf8_lossy(&r.body).contains("_redirects line 2"), "{}", String::from_utf8_lossy(&r.body));
    // A CIDv0 label is redirected to its base32 CIDv1 form.
    let v0 = repo.ok(&["add", "-Q", "--cid-version", "0", repo.scratch("site/hello.txt").to_str().unwrap()])?;
    let v0 = v0.trim();
    let r = get(gw, "/", &["-H", &host(v0)])?;
    let v1 = cids::to_v1(&cids::parse(v0)?).to_string();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(format!("http://{v1}.ipfs.localhost:{port}/").as_str()));

    // The denylist: refused with 410 once the file lists the CID, without a restart.
    let url = format!("/ipfs/{}/hello.txt", site.root);
    assert_eq!(get(gw, &url, &[])?.status, 200);
    fs::write(repo.path().join("denylist.txt"), format!("# refused\n/ipfs/{}\n", site.root))?;
    wait_for(Duration::from_secs(10), || (get(gw, &url, &[]).ok()?.status == 410).then_some(()))
        .context("the denied CID answers 410")?;
    Ok(())
}

#[test]
fn content_is_fetched_from_peers_on_demand_or_times_out() -> Result<()> {
    let (a, b) = (TestRepo::new()?, TestRepo::new()?);
    let _da = Daemon::start(&a)?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let config = b.path().join("config.toml");
    let text = fs::read_to_string(&config)?;
    fs::write(&config, text.replace("retrieval_timeout_secs = 30", "retrieval_timeout_secs = 2"))?;
    let db = Daemon::start(&b)?;

    // B's gateway serves what only A has, fetched over Bitswap and verified.
    let data = prng(5 * CHUNK / 2);
    let src = a.scratch("f.bin");
    fs::write(&src, &data)?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    let r = curl(&format!("{}/ipfs/{cid}", db.gateway), &[])?;
    assert_eq!(r.status, 200);
    assert!(r.body == data, "B's gateway returned A's bytes");

    // Nobody has this block: 504 after the retrieval timeout, not a hang.
    let missing = cids::cid_for(cid::Version::V1, cids::RAW, cids::HashFn::Sha2_256, b"nobody has this");
    let start = std::time::Instant::now();
    let r = curl(&format!("{}/ipfs/{missing}", db.gateway), &[])?;
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert!(start.elapsed() < Duration::from_secs(30), "answered in {:?}", start.elapsed());
    Ok(())
}

/// Start `n` clients that stall on the daemon `pid`, 100 ms apart (so their short planning
/// steps share the blocking pool's idle threads: what stays is what a stalled body holds), and
/// count the daemon's OS threads before and once every client waits for the missing block.
fn stall(
    pid: u32,
    n: usize,
    start: impl Fn() -> std::io::Result<std::process::Child>,
) -> Result<(usize, usize, Vec<std::process::Child>)> {
    let before = threads(pid)?;
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(start().context("starting a client")?);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    Ok((before, threads(pid)?, clients))
}

/// OS threads of a process.
fn threads(pid: u32) -> Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/task"))?.count())
}

/// A file body waiting for a block from the network is async work: many gateway clients, or
/// `cairn cat`s through the API, stalled on a missing block at once add no OS threads to the
/// daemon (one blocking thread each, before).
#[test]
fn stalled_file_bodies_hold_no_thread() -> Result<()> {
    const CLIENTS: usize = 24;
    let a = TestRepo::new()?;
    let config = a.path().join("config.toml");
    let text = fs::read_to_string(&config)?;
    fs::write(&config, text.replace("retrieval_timeout_secs = 30", "retrieval_timeout_secs = 8"))?;
    let da = Daemon::start(&a)?;

    // A 3.5-chunk file whose second leaf is gone: its head and first chunk are local, then the
    // body waits on the network for a block nobody has.
    let data = prng(3 * CHUNK + CHUNK / 2);
    let src = a.scratch("stall.bin");
    fs::write(&src, &data)?;
    let cid = a.ok(&["add", "-Q", "--pin=false", src.to_str().unwrap()])?.trim().to_string();
    let root = a.run(&["block", "get", &cid])?.stdout;
    let node = cairn_protocol::dagpb::PbNode::decode(&root.into()).context("the root is dag-pb")?;
    ensure!(node.links.len() == 4, "four leaves, got {}", node.links.len());
    let gone = node.links[1].hash.to_string();
    a.ok(&["block", "rm", &gone])?;

    let url = format!("{}/ipfs/{cid}", da.gateway);
    let _ = curl(&url, &["--max-time", "2"]); // warm up the runtime's worker threads
    let gateway =
        || std::process::Command::new("curl").args(["-s", "-o", "/dev/null", "--max-time", "30", &url]).spawn();
    let (before, during, bodies) = stall(da.pid(), CLIENTS, gateway)?;
    eprintln!("daemon threads: {before} before, {during} with {CLIENTS} stalled bodies");
    for mut c in bodies {
        c.wait()?;
    }
    ensure!(
        during < before + CLIENTS / 2,
        "{CLIENTS} stalled bodies grew the daemon from {before} to {during} threads"
    );

    // The same through the API: `cairn cat` streams from the daemon with the same reader.
    let null = std::process::Stdio::null;
    let cat = || a.cmd(&["cat", &cid]).stdout(null()).stderr(null()).spawn();
    let (before, during, cats) = stall(da.pid(), CLIENTS, cat)?;
    eprintln!("daemon threads: {before} before, {during} with {CLIENTS} stalled `cairn cat`s");
    for mut c in cats {
        // Still waiting for the block (the node's own fetch timeout is longer): stop them.
        ensure!(c.try_wait()?.is_none(), "a cat of a file with a missing block cannot have finished");
        c.kill()?;
        c.wait()?;
    }
    ensure!(during < before + CLIENTS / 2, "{CLIENTS} stalled cats grew the daemon from {before} to {during} threads");
    // And the stall ends as the timeout says: the body is cut short, not a hang.
    let start = std::time::Instant::now();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "25", &url])
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let got: u64 = said.split(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    ensure!(
        !out.status.success() && said.starts_with("200") && got < data.len() as u64,
        "a body cut short, got {said:?} ({:?})",
        out.status
    );
    ensure!(start.elapsed() < Duration::from_secs(20), "cut after {:?}", start.elapsed());
    Ok(())
}
