//! The operations layer: every API route and every CLI subcommand is one typed operation, and
//! running a request in-process or through the daemon's HTTP API gives equal answers on the
//! same node.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cairn_cli::backend::{Backend, Local};
use cairn_cli::client::Api;
use cairn_node::api::{ApiOptions, Server};
use cairn_node::importer::{self, AddOptions, Walked};
use cairn_node::node::{Node, NodeOptions};
use cairn_node::ops::add::Add;
use cairn_node::ops::block::{BlockGet, BlockPut, BlockRm, BlockStat};
use cairn_node::ops::content::{Cat, Get, Ls};
use cairn_node::ops::dag::{DagExport, DagImport};
use cairn_node::ops::info::{Id, Version};
use cairn_node::ops::key::{KeyGen, KeyImport, KeyLs, KeyRename, KeyRm};
use cairn_node::ops::name::{NamePublish, NameResolve};
use cairn_node::ops::pin::{PinAdd, PinLs, PinRm, PinType, PinVerify};
use cairn_node::ops::repo::{RepoGc, RepoStat, RepoVerify};
use cairn_node::ops::routing::{DhtFindpeer, DhtProvide};
use cairn_node::ops::stats::{BitswapStat, BitswapWantlist, ProvideStat, Shutdown, StatsBw};
use cairn_node::ops::swarm::{SwarmAddrs, SwarmAddrsLocal, SwarmConnect, SwarmDisconnect, SwarmPeers};
use cairn_node::ops::{self, Ctx, Op, Part, UploadOp, WriteOp};
use cairn_node::repo::Repo;
use cairn_tests::{make_tree, prng, TestRepo};
use clap::CommandFactory;
use tokio_util::sync::CancellationToken;

/// Every leaf subcommand of the CLI, as `pin add`.
fn cli_leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let name = if prefix.is_empty() { sub.get_name().to_string() } else { format!("{prefix} {}", sub.get_name()) };
        if sub.get_subcommands().next().is_none() {
            out.push(name);
        } else {
            cli_leaves(sub, &name, out);
        }
    }
}

#[test]
fn every_subcommand_and_route_is_one_operation() -> Result<()> {
    let names: BTreeSet<&str> = ops::NAMES.iter().copied().collect();
    ensure!(names.len() == ops::NAMES.len(), "an operation is listed twice: {:?}", ops::NAMES);
    let table = cairn_cli::cmd::OPERATIONS;
    let mut leaves = Vec::new();
    cli_leaves(&cairn_cli::args::Cli::command(), "", &mut leaves);
    leaves.retain(|l| l != "help");
    for leaf in &leaves {
        let row =
            table.iter().find(|(c, _)| c == leaf).with_context(|| format!("`cairn {leaf}` is not in OPERATIONS"))?;
        if let Some(op) = row.1 {
            ensure!(names.contains(op), "`cairn {leaf}` names {op}, which is not an operation");
        }
    }
    for (cmd, _) in table {
        ensure!(leaves.iter().any(|l| l == cmd), "OPERATIONS lists `cairn {cmd}`, which does not exist");
    }
    // Every operation has a route, and nothing else does.
    let repo = TestRepo::new()?;
    let rt = tokio::runtime::Runtime::new()?;
    let (node, api, _token) = rt.block_on(start(&repo))?;
    // `shutdown` last: it stops the node.
    for name in ops::NAMES.iter().filter(|n| **n != "shutdown").chain(&["shutdown"]) {
        let resp = api.call(name, &[]);
        let text = resp.err().map(|e| e.to_string()).unwrap_or_default();
        ensure!(!text.contains("unknown command"), "{name}: {text}");
    }
    drop(api);
    rt.block_on(async move { stop(node).await });
    Ok(())
}

/// A node over `repo` with its API on a free loopback port.
async fn start(repo: &TestRepo) -> Result<(Arc<Node>, Api, CancellationToken)> {
    let node = Arc::new(Node::start(Repo::open(&repo.path())?, NodeOptions::default()).await?);
    let server = Server::bind(node.clone(), &ApiOptions { addr: "127.0.0.1:0".into(), token: String::new() }).await?;
    let api = Api::new(server.local_addr(), None);
    let token = node.shutdown_token();
    let t = token.clone();
    tokio::spawn(async move { server.serve(t).await });
    Ok((node, api, token))
}

/// Shut the node down while requests may still hold it: every task is joined.
async fn stop(node: Arc<Node>) {
    node.shutdown().await;
    assert_eq!(node.running_tasks(), 0, "shutdown returned with tasks still running");
}

/// Both backends' results for one request: `Err` if they differ (answers, failure texts, or
/// one failing where the other does not), else the shared result.
fn both<T: PartialEq + std::fmt::Debug>(what: &str, a: Result<T>, b: Result<T>) -> Result<Result<T, String>> {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            ensure!(a == b, "{what}: in-process answered {a:?}, HTTP {b:?}");
            Ok(Ok(a))
        }
        (Err(a), Err(b)) => {
            ensure!(a.to_string() == b.to_string(), "{what}: in-process failed with {a:#}, HTTP with {b:#}");
            Ok(Err(a.to_string()))
        }
        (a, b) => anyhow::bail!("{what}: in-process gave {a:?}, HTTP {b:?}"),
    }
}

/// A shared success.
fn ok<T>(what: &str, r: Result<Result<T, String>>) -> Result<T> {
    r?.map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// A shared failure.
fn failed<T: std::fmt::Debug>(what: &str, r: Result<Result<T, String>>) -> Result<()> {
    match r? {
        Ok(v) => anyhow::bail!("{what} succeeded: {v:?}"),
        Err(_) => Ok(()),
    }
}

struct Pair {
    local: Backend,
    http: Backend,
}

impl Pair {
    fn call<O: Op + Clone>(&self, what: &str, op: O) -> Result<O::Output> {
        ok(what, self.run(what, op))
    }

    fn run<O: Op + Clone>(&self, what: &str, op: O) -> Result<Result<O::Output, String>> {
        both(what, self.local.call(op.clone()), self.http.call(op))
    }

    /// For answers about a running node's state: the backends agree (on the answer, or on
    /// the failure) once the state holds still; fails if they never do.
    fn agree<O: Op + Clone>(&self, what: &str, op: O) -> Result<Result<O::Output, String>> {
        let text = |r: Result<O::Output>| r.map_err(|e| e.to_string());
        let mut last = None;
        for _ in 0..50 {
            let a = text(self.local.call(op.clone()));
            let b = text(self.http.call(op.clone()));
            let c = text(self.local.call(op.clone()));
            if a == c && a == b {
                return Ok(a);
            }
            last = Some((a, b, c));
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("{what}: the backends never agreed: {last:?}")
    }

    /// [`Pair::agree`] on a success.
    fn settled<O: Op + Clone>(&self, what: &str, op: O) -> Result<O::Output> {
        self.agree(what, op)?.map_err(|e| anyhow::anyhow!("{what}: {e}"))
    }

    fn bytes<W: WriteOp + Clone>(&self, what: &str, op: W) -> Result<Vec<u8>> {
        ok(what, self.read(what, op))
    }

    fn read<W: WriteOp + Clone>(&self, what: &str, op: W) -> Result<Result<Vec<u8>, String>> {
        let read = |b: &Backend| -> Result<Vec<u8>> {
            let mut out = Vec::new();
            b.open(op.clone())?.read_to_end(&mut out)?;
            Ok(out)
        };
        both(what, read(&self.local), read(&self.http))
    }

    fn upload<U: UploadOp + Clone>(&self, what: &str, op: U, data: &[u8]) -> Result<U::Output> {
        ok(what, self.send(what, op, data))
    }

    fn send<U: UploadOp + Clone>(&self, what: &str, op: U, data: &[u8]) -> Result<Result<U::Output, String>> {
        let part = || -> ops::Parts {
            Box::new(std::iter::once(Ok(Part::file("input", std::io::Cursor::new(data.to_vec())))))
        };
        both(what, self.local.upload(op.clone(), part()), self.http.upload(op, part()))
    }
}

#[test]
fn in_process_and_http_answer_alike() -> Result<()> {
    let repo = TestRepo::new()?;
    let other = TestRepo::new()?;
    let file = repo.scratch("big.bin");
    std::fs::write(&file, prng(700_000))?;
    let tree = repo.scratch("tree");
    make_tree(&tree)?;
    let cid = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let dir = repo.ok(&["add", "-Q", "-r", tree.to_str().unwrap()])?.trim().to_string();
    let loose = repo.ok(&["add", "-Q", "--pin=false", "--raw-leaves=true", file.to_str().unwrap()])?.trim().to_string();

    let rt = tokio::runtime::Runtime::new()?;
    let (node, api, _token) = rt.block_on(start(&repo))?;
    let (peer, _peer_api, _t2) = rt.block_on(start(&other))?;
    let pair = Pair { local: Backend::Local(Local::over(Ctx::Online(node.clone()))?), http: Backend::Daemon(api) };

    pair.call("version", Version)?;
    let id = pair.settled("id", Id { peer: None })?;
    ensure!(!id.addresses.is_empty(), "a running node lists its addresses");
    failed(
        "id of another peer",
        pair.run("id of another peer", Id { peer: Some(peer.net().local_peer_id().to_string()) }),
    )?;

    // Reads.
    let offline = true;
    let ls = pair.call("ls", Ls { paths: vec![dir.clone(), cid.clone()], offline })?;
    ensure!(ls.objects.len() == 2 && !ls.objects[0].links.is_empty(), "{ls:?}");
    let bytes = pair.bytes("cat", Cat { path: cid.clone(), offset: 0, length: None, offline })?;
    ensure!(bytes == prng(700_000), "cat returned other bytes");
    let range = pair.bytes("cat range", Cat { path: cid.clone(), offset: 5, length: Some(300_000), offline })?;
    ensure!(range == prng(700_000)[5..300_005]);
    pair.bytes("get", Get { path: dir.clone(), offline })?;
    pair.bytes("block/get", BlockGet { cid: cid.clone(), offline })?;
    pair.call("block/stat", BlockStat { cid: cid.clone(), offline })?;
    let car = pair.bytes("dag/export", DagExport { path: dir.clone(), offline })?;
    let missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_string();
    failed(
        "block/stat of a missing block",
        pair.run("block/stat of a missing block", BlockStat { cid: missing.clone(), offline }),
    )?;
    failed(
        "cat of a missing block",
        pair.read("cat of a missing block", Cat { path: missing, offset: 0, length: None, offline }),
    )?;
    failed("ls of a bad CID", pair.run("ls of a bad CID", Ls { paths: vec!["not-a-cid".into()], offline }))?;

    // Pins.
    let pins = PinLs { kind: PinType::All, paths: Vec::new(), stream: false };
    pair.call("pin/ls", pins.clone())?;
    pair.call("pin/ls stream", PinLs { stream: true, ..pins.clone() })?;
    pair.call("pin/ls of one", PinLs { kind: PinType::Recursive, paths: vec![dir.clone()], stream: true })?;
    pair.call("pin/verify", PinVerify { verbose: true })?;
    let add = PinAdd { paths: vec![loose.clone()], recursive: true, name: Some("n".into()), offline };
    let rm = PinRm { paths: vec![loose.clone()] };
    let a = pair.local.call(add.clone())?;
    let r = pair.local.call(rm.clone())?;
    ok("pin/add", both("pin/add", Ok(a), pair.http.call(add)))?;
    ok("pin/rm", both("pin/rm", Ok(r), pair.http.call(rm.clone())))?;
    failed("pin/rm of an unpinned CID", pair.run("pin/rm of an unpinned CID", rm))?;

    // Blocks and CARs in.
    let put = BlockPut::default();
    let block = pair.upload("block/put", put.clone(), b"a block of its own")?;
    let key = block.0[0].key.clone();
    let brm = BlockRm { cids: vec![key.clone()], force: false };
    let r = pair.local.call(brm.clone())?;
    pair.local.upload(put.clone(), Box::new(std::iter::once(Ok(Part::file("x", &b"a block of its own"[..])))))?;
    ok("block/rm", both("block/rm", Ok(r), pair.http.call(brm.clone())))?;
    pair.call("block/rm of a missing block", brm)?;
    pair.call("block/rm forced", BlockRm { cids: vec![key], force: true })?;
    failed(
        "block/put of a bad codec",
        pair.send("block/put of a bad codec", BlockPut { codec: "nope".into(), ..put }, b"x"),
    )?;
    pair.upload("dag/import", DagImport { pin_roots: true, stats: true }, &car)?;
    // A tree through both: every entry arrives, in order, whichever way (three times: the
    // parts race the operation that reads them).
    let walk = || -> ops::Parts {
        Box::new(importer::walk(std::slice::from_ref(&tree), &AddOptions::default()).filter_map(|w| match w {
            Ok(Walked::Part(p)) => Some(Ok(p)),
            Ok(Walked::Skipped(..)) => None,
            Err(e) => Some(Err(e)),
        }))
    };
    for progress in [false, true, false] {
        let add = Add { pin: true, progress, ..Add::default() };
        let rows = ok("add", both("add", pair.local.upload(add.clone(), walk()), pair.http.upload(add, walk())))?;
        ensure!(rows.0.last().and_then(|r| r.hash.clone()) == Some(dir.clone()), "add of the tree: {rows:?}");
        ensure!(rows.0.len() == if progress { 16 } else { 10 }, "{rows:?}");
    }
    failed(
        "dag/import of a cut CAR",
        pair.send("dag/import of a cut CAR", DagImport::default(), &car[..car.len() / 2]),
    )?;

    // Keys and names. A new key differs each time: one made each way, then the same answers.
    let k1 = pair.local.call(KeyGen { name: "one".into() })?;
    let k2 = pair.http.call(KeyGen { name: "two".into() })?;
    ensure!(k1.id.starts_with("k51") && k2.id.starts_with("k51") && k1.id != k2.id, "{k1:?} {k2:?}");
    let keys = pair.call("key/list", KeyLs)?;
    ensure!(keys.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>() == ["self", "one", "two"], "{keys:?}");
    failed("key/gen of an existing name", pair.run("key/gen of an existing name", KeyGen { name: "one".into() }))?;
    failed("key/rm of self", pair.run("key/rm of self", KeyRm { names: vec!["self".into()] }))?;
    let exported = node.repo().keystore().export("one")?;
    let imported = pair.upload("key/import", KeyImport { name: "one-copy".into(), force: true }, &exported)?;
    ensure!(imported.id == k1.id, "{imported:?}");
    failed(
        "key/import of junk",
        pair.send("key/import of junk", KeyImport { name: "j".into(), force: false }, b"junk"),
    )?;
    let renamed = pair.local.call(KeyRename { from: "one-copy".into(), to: "copy".into(), force: false })?;
    let back = pair.http.call(KeyRename { from: "copy".into(), to: "one-copy".into(), force: false })?;
    ensure!((renamed.id == back.id) && (back.was.as_str(), back.now.as_str()) == ("copy", "one-copy"), "{back:?}");
    let removed = pair.local.call(KeyRm { names: vec!["one-copy".into()] })?;
    ensure!(removed.keys[0].id == k1.id);
    let publish = NamePublish {
        path: format!("/ipfs/{cid}"),
        key: "one".into(),
        lifetime: Some("4w".into()),
        ttl: Some("1h".into()),
        resolve: true,
        allow_offline: false,
    };
    let p1 = pair.local.call(publish.clone())?;
    let p2 = pair.http.call(publish.clone())?;
    ensure!(
        (p1.name == k1.id) && (&p1.name, &p1.value) == (&p2.name, &p2.value) && p2.sequence == p1.sequence + 1,
        "{p2:?}"
    );
    let resolved =
        pair.call("name/resolve", NameResolve { name: Some(k1.id.clone()), recursive: true, nocache: false })?;
    ensure!(resolved.path == format!("/ipfs/{cid}"), "{resolved:?}");
    failed(
        "name/publish of an unknown key",
        pair.run("name/publish of an unknown key", NamePublish { key: "nope".into(), ..publish.clone() }),
    )?;
    failed(
        "name/publish of a path that is no path",
        pair.run("name/publish of a bad path", NamePublish { path: "nonsense".into(), ..publish }),
    )?;
    failed(
        "name/resolve of a content CID",
        pair.run("name/resolve of a CID", NameResolve { name: Some(cid.clone()), recursive: true, nocache: false }),
    )?;

    // Maintenance.
    pair.local.call(RepoGc)?;
    pair.call("repo/gc", RepoGc)?;
    pair.call("repo/verify", RepoVerify)?;
    let (a, b) = (pair.local.call(RepoStat)?, pair.http.call(RepoStat)?);
    ensure!(
        (a.num_objects, a.pins, &a.repo_path, a.block_bytes) == (b.num_objects, b.pins, &b.repo_path, b.block_bytes)
    );

    // The network.
    let peer_addr = rt.block_on(peer.net().addrs())?.into_iter().next().context("the peer listens nowhere")?;
    let peer_id = peer.net().local_peer_id().to_string();
    let dial = SwarmConnect { addrs: vec![format!("{peer_addr}/p2p/{peer_id}")] };
    let hang_up = SwarmDisconnect { peers: vec![peer_id.clone()] };
    let c = pair.local.call(dial.clone())?;
    pair.settled("swarm/peers", SwarmPeers)?;
    pair.settled("swarm/addrs", SwarmAddrs)?;
    // The peers' DHT may not know each other yet: an answer or a failure, but the same.
    let _either = pair.agree("dht/findpeer", DhtFindpeer { peer: peer_id.clone() })?;
    let _either = pair.agree("dht/provide", DhtProvide { cids: vec![cid.clone()], recursive: false })?;
    let d = pair.local.call(hang_up.clone())?;
    wait_disconnected(&pair)?;
    ok("swarm/connect", both("swarm/connect", Ok(c), pair.http.call(dial)))?;
    ok("swarm/disconnect", both("swarm/disconnect", Ok(d), pair.http.call(hang_up)))?;
    pair.settled("swarm/addrs/local", SwarmAddrsLocal { id: true })?;
    pair.settled("bitswap/stat", BitswapStat)?;
    pair.settled("bitswap/wantlist", BitswapWantlist { peer: None })?;
    pair.settled("stats/bw", StatsBw)?;
    pair.settled("provide/stat", ProvideStat)?;

    // Shutdown stops the node, whichever way it is asked.
    let http_shutdown = pair.http.call(Shutdown);
    ensure!(http_shutdown.is_ok(), "{http_shutdown:?}");
    ensure!(node.shutdown_token().is_cancelled(), "shutdown through the API did not stop the node");
    let peer_local = Backend::Local(Local::over(Ctx::Online(peer.clone()))?);
    peer_local.call(Shutdown)?;
    ensure!(peer.shutdown_token().is_cancelled(), "shutdown in-process did not stop the node");
    drop((pair, peer_local));
    rt.block_on(async move {
        stop(node).await;
        stop(peer).await;
    });
    Ok(())
}

fn wait_disconnected(pair: &Pair) -> Result<()> {
    for _ in 0..100 {
        if pair.local.call(SwarmPeers)?.peers.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("the peer stayed connected")
}

/// Commands also run on a repo opened without a node: reads and pins work, network commands
/// say that they need the daemon.
#[test]
fn offline_operations() -> Result<()> {
    let repo = TestRepo::new()?;
    let file = repo.scratch("f.bin");
    std::fs::write(&file, prng(10_000))?;
    let cid = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let local = Backend::Local(Local::new(Repo::open(&repo.path())?)?);
    let mut out = Vec::new();
    local.open(Cat { path: cid.clone(), offset: 0, length: None, offline: false })?.read_to_end(&mut out)?;
    ensure!(out == prng(10_000));
    let id = local.call(Id { peer: None })?;
    ensure!(id.addresses.is_empty() && id.profile == "local", "{id:?}");
    let err = local.call(SwarmPeers).err().context("swarm/peers answered without a node")?;
    ensure!(err.to_string().contains("no daemon running"), "{err}");
    Ok(())
}
