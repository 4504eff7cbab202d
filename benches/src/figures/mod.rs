//! The figures. Each returns table rows; each measures its anchor in the same run.

pub mod add;
pub mod behaviour;
pub mod ceiling;
pub mod churn;
pub mod daemon;
pub mod dht;
pub mod fetch;
pub mod follow;
pub mod gateway;
pub mod idle;
pub mod ipns;
pub mod memory;
pub mod multi;
pub mod nat;

use std::path::PathBuf;

use anyhow::{bail, Result};

/// What every figure needs.
pub struct Ctx {
    /// Small sizes, single runs.
    pub quick: bool,
    /// Runs per measurement.
    pub runs: usize,
    /// Scratch folder for this run.
    pub work: PathBuf,
    /// The `cairn` binary.
    pub cairn: PathBuf,
    /// The workspace root (for the anchors' setup scripts and their copies under target/).
    pub root: PathBuf,
    /// Size of the fetch figure's file, MiB.
    pub fetch_mib: u64,
}

/// The `cairn` binary of the same build profile as this runner.
pub fn cairn_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().expect("binary folder").join("cairn");
    if !bin.exists() {
        bail!("{} not found: build it first (cargo build --release -p cairn)", bin.display());
    }
    Ok(bin)
}

/// `n` bytes of incompressible random data.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut out = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut out);
    out
}

/// Write `n` bytes of incompressible random data to `path` (once; reused if present).
pub fn random_file(path: &std::path::Path, n: u64) -> Result<()> {
    use rand::RngCore;
    use std::io::Write;
    if path.metadata().map(|m| m.len() == n).unwrap_or(false) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..k]);
        f.write_all(&buf[..k])?;
        left -= k as u64;
    }
    f.flush()?;
    Ok(())
}

/// `n` in-process nodes over TCP, each on its own loopback address (127.0.0.`first`, the next,
/// …: JavaScript gossipsub scores down peers that share an IP, as it should on the real
/// network), bootstrapped through the first, their routing tables filled. Without `pubsub`,
/// gossipsub and IPNS over PubSub are off and follows check every 2 s.
pub async fn loopback_testnet(
    dir: &std::path::Path,
    n: usize,
    first: usize,
    pubsub: bool,
) -> Result<Vec<cairn_node::node::Node>> {
    use cairn_node::net::{DhtMode, NetConfig, TransportKind};
    use cairn_node::node::{Node, NodeOptions};
    use cairn_node::repo::Repo;
    use std::time::Duration;

    let mut nodes: Vec<Node> = Vec::new();
    let mut hub = Vec::new();
    for i in 0..n {
        let path = dir.join(format!("node-{i}"));
        Repo::init(&path, "local")?;
        if !pubsub {
            let cfg = path.join("config.toml");
            let text = std::fs::read_to_string(&cfg)?.replacen("pubsub = true", "pubsub = false", 1).replacen(
                "check_interval_secs = 300",
                "check_interval_secs = 2",
                1,
            );
            std::fs::write(&cfg, text)?;
        }
        let net = NetConfig {
            listen: vec![format!("/ip4/127.0.0.{}/tcp/0", first + i).parse()?],
            bootstrap: hub.clone(),
            dht_mode: DhtMode::Server,
            transport: TransportKind::Real,
            autonat: false,
            pubsub,
            ..NetConfig::default()
        };
        let node = Node::start(Repo::open(&path)?, NodeOptions { net: Some(net), ..NodeOptions::default() }).await?;
        if i == 0 {
            let addr = loop {
                if let Some(a) = node.net().addrs().await?.into_iter().next() {
                    break a;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            hub = vec![format!("{addr}/p2p/{}", node.net().local_peer_id()).parse()?];
        }
        nodes.push(node);
    }
    for node in &nodes {
        for _ in 0..200 {
            if !node.net().routing_table().await?.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for node in nodes.iter().skip(1) {
        node.net().bootstrap().await?;
    }
    Ok(nodes)
}
