//! The raw libp2p stream ceiling: one process pushes N bytes over one stream of the node's own
//! transport (TCP, TLS or noise, yamux) to another, with no hashing and no storage. A fetch
//! between two cairn nodes is compared with it.
//!
//! Both roles are subcommands of this binary (`ceiling-serve`, `ceiling-push`) so that the
//! measurement covers two real processes, like the fetch it anchors.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_node::net::{self, DhtMode, NetConfig, TransportKind};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, StreamProtocol};
use tokio_util::sync::CancellationToken;

/// The push protocol: raw bytes until the sender closes.
const PUSH: StreamProtocol = StreamProtocol::new("/cairn/bench/push/1.0.0");

fn config(listen: &str) -> Result<NetConfig> {
    Ok(NetConfig {
        listen: vec![listen.parse()?],
        dht_mode: DhtMode::Client,
        transport: TransportKind::Real,
        autonat: false,
        pubsub: false,
        ..NetConfig::default()
    })
}

/// Listen on loopback, print `ready <addr>`, receive one stream to its end and print
/// `{"bytes":N,"seconds":S}`.
pub async fn serve() -> Result<()> {
    let shutdown = CancellationToken::new();
    let (net, _task) =
        net::task::spawn(Keypair::generate_ed25519(), &config("/ip4/127.0.0.1/tcp/0")?, shutdown.clone())?;
    let mut incoming = net.stream_control().accept(PUSH)?;
    let addr = loop {
        if let Some(a) = net.addrs().await?.into_iter().next() {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("ready {addr}/p2p/{}", net.local_peer_id());
    std::io::stdout().flush()?;
    let (_, mut stream) = incoming.next().await.context("no stream")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut start = None;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        start.get_or_insert_with(Instant::now);
        total += n as u64;
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!("{}", serde_json::json!({ "bytes": total, "seconds": secs }));
    shutdown.cancel();
    Ok(())
}

/// Dial `addr` and push `bytes` bytes over one stream.
pub async fn push(addr: Multiaddr, bytes: u64) -> Result<()> {
    let shutdown = CancellationToken::new();
    let (net, _task) =
        net::task::spawn(Keypair::generate_ed25519(), &config("/ip4/127.0.0.1/tcp/0")?, shutdown.clone())?;
    let peer = net.dial(addr).await?;
    let mut stream = match net.stream_control().open_stream(peer, PUSH).await {
        Ok(s) => s,
        Err(e) => bail!("opening the push stream: {e}"),
    };
    let buf = vec![0x5au8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    stream.close().await?;
    // Give the receiver time to read the tail before the connection goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    Ok(())
}
