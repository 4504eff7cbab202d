//! The RPC API and `cairn daemon`, as real processes on 127.0.0.1: the CLI going through a
//! daemon (with the same output as offline), raw HTTP checks of kubo's shapes and errors,
//! tokens and browser-origin refusal, stopping through `shutdown` and SIGTERM, stale `api`
//! files, two daemons fetching from each other, and kubo's own JavaScript client
//! (`kubo-rpc-client`) driving cairn.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use cairn_tests::{http_post, make_tree, prng, run_with_deadline, workspace_root, Daemon, TestRepo};
use serde_json::Value;

/// The kubo-rpc-client release the interop test installs (pinned: its wire habits are what
/// we test against).
const KUBO_RPC_CLIENT: &str = "7.1.0";

fn json_lines(text: &str) -> Result<Vec<Value>> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

fn post_json(d: &Daemon, target: &str) -> Result<(u16, Value)> {
    let (status, body) = http_post(d.api, target, &[], b"")?;
    let v = serde_json::from_slice(&body).with_context(|| format!("{target}: {}", String::from_utf8_lossy(&body)))?;
    Ok((status, v))
}

/// Write the test tree and a 300 KB file into `repo`'s scratch space.
fn inputs(repo: &TestRepo) -> Result<(PathBuf, PathBuf)> {
    let tree = repo.scratch("tree");
    make_tree(&tree)?;
    std::os::unix::fs::symlink("hello.txt", tree.join("link"))?;
    let file = repo.scratch("file.bin");
    fs::write(&file, prng(300_000))?;
    Ok((tree, file))
}

#[test]
fn cli_commands_go_through_the_daemon() -> Result<()> {
    let repo = TestRepo::new()?;
    let (tree, file) = inputs(&repo)?;
    let d = Daemon::start(&repo)?;
    let out = d.output();
    ensure!(out.iter().any(|l| l.starts_with("API server listening on /ip4/127.0.0.1/tcp/")), "{out:?}");
    ensure!(!d.swarm_addrs().is_empty(), "{out:?}");
    // The daemon holds the repo lock, so these can only work through its API.
    let lock = fs::read_to_string(repo.path().join("repo.lock"))?;
    assert_eq!(lock.trim(), format!("{} daemon", d.pid()), "repo.lock names the pid and its role");

    let cid = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let cat = repo.run(&["cat", &cid])?;
    ensure!(cat.status.success(), "{}", String::from_utf8_lossy(&cat.stderr));
    assert!(cat.stdout == prng(300_000), "cat through the daemon returned other bytes");
    let range = repo.run(&["cat", "--offset", "1000", "--length", "10", &cid])?;
    assert_eq!(range.stdout, prng(300_000)[1000..1010]);
    let pins = repo.ok(&["pin", "ls", "--type", "recursive"])?;
    assert!(pins.contains(&format!("{cid} recursive")), "{pins}");

    let id: Value = serde_json::from_str(&repo.ok(&["--json", "id"])?)?;
    let (status, api_id) = post_json(&d, "/api/v0/id")?;
    assert_eq!(status, 200);
    assert_eq!(id["ID"], api_id["ID"]);
    assert_eq!(id["profile"], "local");
    let addrs = id["Addresses"].as_array().context("Addresses")?;
    assert!(addrs.iter().any(|a| a.as_str().unwrap().ends_with(&format!("/p2p/{}", id["ID"].as_str().unwrap()))));

    let root = repo.ok(&["add", "-Q", "-r", tree.to_str().unwrap()])?.trim().to_string();
    let got = repo.scratch("got");
    repo.ok(&["get", &root, "-o", got.to_str().unwrap()])?;
    assert_eq!(fs::read(got.join("data.bin"))?, fs::read(tree.join("data.bin"))?);
    assert_eq!(fs::read_link(got.join("link"))?, PathBuf::from("hello.txt"));
    assert_eq!(fs::read_to_string(got.join("sub/deeper/leaf.txt"))?, "deep leaf\n");
    Ok(())
}

/// The same commands on a repo with a daemon and on one without print the same thing.
#[test]
fn output_is_the_same_with_and_without_a_daemon() -> Result<()> {
    let online = TestRepo::new()?;
    let offline = TestRepo::new()?;
    let (tree, file) = inputs(&online)?;
    let _d = Daemon::start(&online)?;
    let (t, f) = (tree.to_str().unwrap(), file.to_str().unwrap());
    let root = online.ok(&["add", "-Q", "-r", t])?.trim().to_string();
    let dir = format!("{root}/sub");
    let hello = format!("{root}/hello.txt");
    let car = online.scratch("x.car");
    let car = car.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["add", "-r", t],
        vec!["--json", "add", "-r", "--hidden", t],
        vec!["add", "-q", "-w", f, t, "-r"],
        vec!["add", "-Q", "-w", f],
        vec!["add", "--only-hash", "--chunker", "size-1000", "--trickle", f],
        vec!["--json", "add", "--cid-version", "0", "--raw-leaves=false", f],
        vec!["ls", &root],
        vec!["--json", "ls", &dir],
        vec!["cat", &hello],
        vec!["pin", "ls", &root],
        vec!["--json", "pin", "ls", "--type", "recursive"],
        vec!["pin", "add", "--recursive=false", &dir],
        vec!["pin", "rm", &dir],
        vec!["pin", "verify"],
        vec!["block", "stat", &root],
        vec!["--json", "block", "stat", &root],
        vec!["dag", "export", &root, "-o", car],
        vec!["dag", "import", car],
        vec!["--json", "dag", "import", car],
        vec!["repo", "gc"],
        vec!["repo", "verify"],
    ];
    for args in commands {
        let a = online.run(&args)?;
        let b = offline.run(&args)?;
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(text(&a), text(&b), "stdout of {args:?} differs (daemon vs offline)");
        assert_eq!(a.status.success(), b.status.success(), "exit of {args:?}: {}", String::from_utf8_lossy(&a.stderr));
    }
    // Errors read the same too.
    for args in [vec!["cat", &root as &str], vec!["add", t], vec!["pin", "rm", &dir]] {
        let (a, b) = (online.fails(&args)?, offline.fails(&args)?);
        assert_eq!(a.lines().next(), b.lines().next(), "error of {args:?}");
    }
    Ok(())
}

#[test]
fn raw_http_follows_kubo_shapes() -> Result<()> {
    let repo = TestRepo::new()?;
    let d = Daemon::start(&repo)?;
    let (status, v) = post_json(&d, "/api/v0/version")?;
    assert_eq!(status, 200);
    assert!(v["Version"].is_string() && v["Repo"].as_str() == Some(&cairn_node::repo::REPO_VERSION.to_string()), "{v}");
    let (_, id) = post_json(&d, "/api/v0/id")?;
    for field in ["ID", "PublicKey", "Addresses", "AgentVersion", "ProtocolVersion"] {
        assert!(!id[field].is_null(), "id lacks {field}: {id}");
    }

    // add: a multipart body with a directory, a file inside it and a nameless file.
    let b = "testboundary";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\nContent-Type: \
         application/x-directory\r\n\r\n\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"dir%2Fa%20b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--{b}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={b}");
    let (status, out) = http_post(d.api, "/api/v0/add?pin=true", &[("Content-Type", &ct)], body.as_bytes())?;
    let rows = json_lines(&String::from_utf8(out)?)?;
    assert_eq!(status, 200, "{rows:?}");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["Name"], "dir/a b.txt");
    assert_eq!(rows[1]["Name"], "dir");
    let file_cid = rows[0]["Hash"].as_str().unwrap().to_string();
    assert_eq!(rows[0]["Size"], "5");
    let dir_cid = rows[1]["Hash"].as_str().unwrap().to_string();

    let (status, bytes) = http_post(d.api, &format!("/api/v0/cat?arg=/ipfs/{dir_cid}/a%20b.txt"), &[], b"")?;
    assert_eq!((status, bytes.as_slice()), (200, &b"hello"[..]));
    let (_, v) = post_json(&d, &format!("/api/v0/ls?arg={dir_cid}"))?;
    assert_eq!(v["Objects"][0]["Links"][0]["Hash"], file_cid.as_str());
    assert_eq!(v["Objects"][0]["Links"][0]["Type"], 2);
    let (_, v) = post_json(&d, "/api/v0/pin/ls?type=recursive")?;
    assert_eq!(v["Keys"][&dir_cid]["Type"], "recursive", "{v}");
    let (status, tar) = http_post(d.api, &format!("/api/v0/get?arg={dir_cid}"), &[], b"")?;
    assert_eq!(status, 200);
    assert!(tar.len() % 512 == 0 && tar.windows(5).any(|w| w == b"hello"), "not a tar with the file");
    let (_, v) = post_json(&d, &format!("/api/v0/block/stat?arg={file_cid}"))?;
    assert_eq!(v["Size"], 5);

    // Errors: kubo's JSON, 500 for a failed command, 400 for a bad request.
    let (status, v) = post_json(&d, &format!("/api/v0/cat?arg={dir_cid}"))?;
    assert_eq!(status, 500);
    assert_eq!((v["Type"].as_str(), v["Code"].as_i64()), (Some("error"), Some(0)));
    assert!(v["Message"].as_str().unwrap().contains("not a file"), "{v}");
    let (status, v) = post_json(&d, "/api/v0/cat")?;
    assert_eq!((status, v["Code"].as_i64()), (400, Some(1)), "{v}");
    let (status, v) = post_json(&d, "/api/v0/no/such/command")?;
    assert_eq!(status, 400, "{v}");
    // A web page may not drive the API (any page can POST to 127.0.0.1), nor may a rebound name.
    let (status, _) = http_post(d.api, "/api/v0/version", &[("Origin", "http://evil.example")], b"")?;
    assert_eq!(status, 403);
    // Sandboxed iframes and file:// pages send `Origin: null`: refused too, shutdown included.
    let (status, _) = http_post(d.api, "/api/v0/shutdown", &[("Origin", "null")], b"")?;
    assert_eq!(status, 403);
    let own = format!("http://{}", d.api);
    let (status, _) = http_post(d.api, "/api/v0/version", &[("Origin", &own)], b"")?;
    assert_eq!(status, 200, "the API's own origin is allowed");
    let mut s = std::net::TcpStream::connect(d.api)?;
    std::io::Write::write_all(&mut s, b"POST /api/v0/version HTTP/1.0\r\nHost: evil.example\r\n\r\n")?;
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp)?;
    assert!(resp.starts_with("HTTP/1.0 403") || resp.starts_with("HTTP/1.1 403"), "{resp}");
    Ok(())
}

#[test]
fn a_configured_token_is_required() -> Result<()> {
    let repo = TestRepo::new()?;
    let config = repo.path().join("config.toml");
    let text = fs::read_to_string(&config)?;
    ensure!(text.contains("api_token = \"\""), "{text}");
    fs::write(&config, text.replace("api_token = \"\"", "api_token = \"s3cret\""))?;
    let d = Daemon::start(&repo)?;
    assert_eq!(http_post(d.api, "/api/v0/version", &[], b"")?.0, 401);
    assert_eq!(http_post(d.api, "/api/v0/version", &[("Authorization", "Bearer wrong")], b"")?.0, 401);
    assert_eq!(http_post(d.api, "/api/v0/version", &[("Authorization", "Bearer s3cret")], b"")?.0, 200);
    // The CLI reads the token from the repo's config.
    repo.ok(&["pin", "ls"])?;
    Ok(())
}

#[test]
fn a_public_api_without_a_token_is_refused() -> Result<()> {
    let repo = TestRepo::new()?;
    let config = repo.path().join("config.toml");
    let text = fs::read_to_string(&config)?;
    fs::write(&config, text.replace("api = \"127.0.0.1:0\"", "api = \"0.0.0.0:0\""))?;
    let err = repo.fails(&["daemon"])?;
    assert!(err.contains("not a loopback address") && err.contains("api_token"), "{err}");
    assert!(!repo.path().join("api").exists());
    Ok(())
}

#[test]
fn shutdown_stops_the_daemon_and_removes_the_api_file() -> Result<()> {
    let repo = TestRepo::new()?;
    let mut d = Daemon::start(&repo)?;
    let out = repo.ok(&["shutdown"])?;
    assert_eq!(out.trim(), "daemon stopped");
    assert!(d.wait_exit(Duration::from_secs(30))?.success());
    assert!(!d.api_file.exists());
    assert!(d.output().iter().any(|l| l == "Daemon stopped"), "{:?}", d.output());
    // Offline again, right away.
    repo.ok(&["pin", "ls"])?;
    let err = repo.fails(&["swarm", "peers"])?;
    assert!(err.contains("no daemon running: start one with `cairn daemon`"), "{err}");
    Ok(())
}

#[test]
fn sigterm_stops_the_daemon_cleanly() -> Result<()> {
    let repo = TestRepo::new()?;
    let (_, file) = inputs(&repo)?;
    let mut d = Daemon::start(&repo)?;
    let cid = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    d.signal("TERM")?;
    assert!(d.wait_exit(Duration::from_secs(30))?.success());
    assert!(!d.api_file.exists());
    // What the daemon stored is durable and readable offline.
    let cat = repo.run(&["cat", &cid])?;
    assert!(cat.status.success() && cat.stdout == prng(300_000));
    repo.ok(&["repo", "verify"])?;
    Ok(())
}

#[test]
fn a_stale_api_file_falls_back_to_offline_only_without_a_lock_holder() -> Result<()> {
    let repo = TestRepo::new()?;
    let mut d = Daemon::start(&repo)?;
    let api_file = d.api_file.clone();

    // A daemon that holds the lock but whose announced address does not answer: an error, not
    // a silent offline run.
    let real = fs::read_to_string(&api_file)?;
    fs::write(&api_file, "/ip4/127.0.0.1/tcp/1")?;
    let err = repo.fails(&["pin", "ls"])?;
    assert!(err.contains("does not answer"), "{err}");
    fs::write(&api_file, real)?;

    // Killed: the file stays behind, but nobody holds the lock, so commands run offline.
    d.signal("KILL")?;
    d.wait_exit(Duration::from_secs(30))?;
    assert!(api_file.exists());
    repo.ok(&["pin", "ls"])?;
    assert!(!api_file.exists(), "the stale api file should be cleaned up");
    let err = repo.fails(&["dht", "findprovs", "bafkqaaa"])?;
    assert!(err.contains("no daemon running"), "{err}");
    // And a new daemon starts over it.
    let _d2 = Daemon::start(&repo)?;
    repo.ok(&["pin", "ls"])?;
    Ok(())
}

/// Two daemons: one connects to the other and reads, lists and pins what only the other holds.
#[test]
fn a_daemon_fetches_content_from_a_connected_peer() -> Result<()> {
    let (a, b) = (TestRepo::new()?, TestRepo::new()?);
    let (tree, file) = inputs(&b)?;
    let (da, db) = (Daemon::start(&a)?, Daemon::start(&b)?);
    let file_cid = b.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let tree_cid = b.ok(&["add", "-Q", "-r", tree.to_str().unwrap()])?.trim().to_string();
    let b_id: Value = serde_json::from_str(&b.ok(&["--json", "id"])?)?;
    let b_addr = format!("{}/p2p/{}", db.swarm_addrs()[0], b_id["ID"].as_str().unwrap());
    let out = a.ok(&["swarm", "connect", &b_addr])?;
    assert!(out.contains("success"), "{out}");
    let peers = a.ok(&["swarm", "peers"])?;
    assert!(peers.contains(b_id["ID"].as_str().unwrap()), "{peers}");

    let cat = a.run(&["cat", &file_cid])?;
    ensure!(cat.status.success(), "{}", String::from_utf8_lossy(&cat.stderr));
    assert!(cat.stdout == prng(300_000), "fetched bytes differ");
    let ls = a.ok(&["ls", &tree_cid])?;
    assert!(ls.contains("hello.txt"), "{ls}");
    a.ok(&["pin", "add", &tree_cid])?;
    drop((da, db));
    // Pinned means every block is local: readable with the peer gone and no daemon.
    let got = a.scratch("got");
    a.ok(&["get", &tree_cid, "-o", got.to_str().unwrap()])?;
    assert_eq!(fs::read(got.join("data.bin"))?, fs::read(tree.join("data.bin"))?);
    let stats = a.fails(&["stats", "bw"])?;
    assert!(stats.contains("no daemon running"), "{stats}");
    Ok(())
}

/// Install the pinned kubo-rpc-client into `target/kubo-rpc-client` (once per test run) and
/// copy our script beside it; the folder.
fn rpc_client_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| install_rpc_client().map_err(|e| format!("{e:#}")));
    match dir {
        Ok(p) => Ok(p.clone()),
        Err(e) => bail!("{e}"),
    }
}

fn install_rpc_client() -> Result<PathBuf> {
    let root = workspace_root();
    let mut deps = Command::new("bash");
    deps.arg(root.join("scripts").join("install-deps.sh")).stdin(Stdio::null());
    let out = run_with_deadline(deps, Duration::from_secs(900))?;
    ensure!(out.status.success(), "install-deps.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let dir = root.join("target").join("kubo-rpc-client");
    fs::create_dir_all(&dir)?;
    let installed = dir.join("node_modules").join("kubo-rpc-client").join("package.json");
    let have = fs::read_to_string(&installed).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
    if have.as_ref().and_then(|v| v["version"].as_str()) != Some(KUBO_RPC_CLIENT) {
        fs::write(dir.join("package.json"), r#"{"name":"cairn-rpc-client-test","private":true,"type":"module"}"#)?;
        let mut npm = Command::new("npm");
        npm.current_dir(&dir)
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--save-exact"])
            .arg(format!("kubo-rpc-client@{KUBO_RPC_CLIENT}"))
            .stdin(Stdio::null());
        let out = run_with_deadline(npm, Duration::from_secs(900))?;
        ensure!(out.status.success(), "npm install kubo-rpc-client failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    fs::copy(root.join("tests").join("js").join("rpc-client.mjs"), dir.join("rpc-client.mjs"))?;
    Ok(dir)
}

fn add_q(repo: &TestRepo, args: &[&str], path: &Path) -> Result<String> {
    let mut all = vec!["add", "-Q"];
    all.extend_from_slice(args);
    all.push(path.to_str().context("utf-8 path")?);
    Ok(repo.ok(&all)?.trim().to_string())
}

/// Acceptance: kubo's JavaScript RPC client adds, cats, lists pins and reads the identity of a
/// cairn daemon and gets the answers cairn's own CLI gives.
#[test]
fn kubo_rpc_client_works_against_cairn() -> Result<()> {
    let dir = rpc_client_dir()?;
    let repo = TestRepo::new()?;
    let d = Daemon::start(&repo)?;
    let mut node = Command::new("node");
    node.current_dir(&dir).arg("rpc-client.mjs").arg(format!("http://{}", d.api)).stdin(Stdio::null());
    let out = run_with_deadline(node, Duration::from_secs(120))?;
    ensure!(out.status.success(), "rpc-client.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;

    // The same bytes and tree added by the CLI (hash only) give the same CIDs.
    let text = "hello from kubo-rpc-client\n";
    let file = repo.scratch("hello.txt");
    fs::write(&file, text)?;
    let expect = add_q(&repo, &["-n"], &file)?;
    assert_eq!(v["added"]["cid"], expect.as_str(), "{v}");
    assert_eq!(v["added"]["size"], text.len());
    assert_eq!(v["cat"], text);
    let tree = repo.scratch("d");
    fs::create_dir_all(tree.join("sub"))?;
    fs::write(tree.join("a.txt"), "file a\n")?;
    fs::write(tree.join("sub").join("b.txt"), "file b\n")?;
    let tree_cid = add_q(&repo, &["-n", "-r"], &tree)?;
    let tree_rows = v["tree"].as_array().context("tree")?;
    let root = tree_rows.iter().find(|r| r["path"] == "d").context("no row for d")?;
    assert_eq!(root["cid"], tree_cid.as_str(), "{v}");

    let pins = v["pins"].as_array().context("pins")?;
    for cid in [&expect, &tree_cid] {
        assert!(pins.iter().any(|p| p["cid"] == cid.as_str() && p["type"] == "recursive"), "{cid} not in {pins:?}");
    }
    let id: Value = serde_json::from_str(&repo.ok(&["--json", "id"])?)?;
    assert_eq!(v["id"]["id"], id["ID"]);
    assert!(v["id"]["agentVersion"].as_str().unwrap_or("").starts_with("cairn/"), "{v}");
    assert!(!v["id"]["addresses"].as_array().context("addresses")?.is_empty());
    Ok(())
}
