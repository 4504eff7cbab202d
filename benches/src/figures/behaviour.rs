//! The stream ceiling's transfer through a `NetworkBehaviour` instead: the fetcher asks a server
//! for 1 MiB chunks over libp2p request-response, [`WINDOW`] in flight, on the node's transport
//! (TCP, TLS or noise, yamux). Each response is read on the connection's task and reaches the
//! caller as a swarm event through the swarm task: the path a Bitswap built as a behaviour would
//! take. Beside the raw-stream ceiling in the same run, it is the measurement behind the Bitswap
//! design choice (`specs/bitswap.md`).
//!
//! Both roles are subcommands of this binary (`behaviour-serve`, `behaviour-fetch`).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, tls, yamux, Multiaddr, StreamProtocol, Swarm, SwarmBuilder};

/// The protocol: a request is a chunk number (8 bytes), a response its bytes.
const CHUNKS: StreamProtocol = StreamProtocol::new("/cairn/bench/chunks/1.0.0");

/// Chunk size.
const CHUNK: usize = 1 << 20;

/// Requests in flight, as a Bitswap session keeps want-blocks in flight.
pub const WINDOW: u64 = 16;

/// Fixed-size requests and length-prefixed responses.
#[derive(Clone, Default)]
struct ChunkCodec;

impl request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = u64;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<u64> {
        let mut b = [0u8; 8];
        io.read_exact(&mut b).await?;
        Ok(u64::from_be_bytes(b))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 4 * CHUNK {
            return Err(io::Error::other("response too large"));
        }
        let mut out = vec![0u8; len];
        io.read_exact(&mut out).await?;
        Ok(out)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: u64,
    ) -> io::Result<()> {
        io.write_all(&req.to_be_bytes()).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&(res.len() as u32).to_be_bytes()).await?;
        io.write_all(&res).await?;
        io.close().await
    }
}

type Behaviour = request_response::Behaviour<ChunkCodec>;

/// A swarm on the node's TCP stack (TLS preferred, noise accepted, yamux) with the behaviour.
fn swarm() -> Result<Swarm<Behaviour>> {
    let cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(60))
        .with_max_concurrent_streams(4 * WINDOW as usize);
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), (tls::Config::new, noise::Config::new), yamux::Config::default)?
        .with_behaviour(|_| Behaviour::new([(CHUNKS, ProtocolSupport::Full)], cfg))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Listen on loopback, print `ready <addr>`, and answer chunk requests until the fetcher leaves.
pub async fn serve() -> Result<()> {
    let mut swarm = swarm()?;
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let chunk = vec![0x5au8; CHUNK];
    let mut connected = false;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                println!("ready {address}/p2p/{}", swarm.local_peer_id());
                std::io::stdout().flush()?;
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) => {
                let _ = swarm.behaviour_mut().send_response(channel, chunk.clone());
            }
            SwarmEvent::ConnectionEstablished { .. } => connected = true,
            SwarmEvent::ConnectionClosed { num_established: 0, .. } if connected => return Ok(()),
            _ => {}
        }
    }
}

/// Dial `addr`, fetch `bytes` in chunks with [`WINDOW`] requests in flight, print
/// `{"bytes":N,"seconds":S}` timed from the first request to the last response.
pub async fn fetch(addr: Multiaddr, bytes: u64) -> Result<()> {
    let mut swarm = swarm()?;
    let peer = match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => bail!("{addr} has no /p2p/ peer ID"),
    };
    swarm.dial(addr)?;
    let chunks = bytes.div_ceil(CHUNK as u64);
    let (mut sent, mut received, mut got) = (0u64, 0u64, 0u64);
    let mut start = None;
    while received < chunks {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => {
                start = Some(Instant::now());
                while sent < chunks.min(WINDOW) {
                    swarm.behaviour_mut().send_request(&peer, sent);
                    sent += 1;
                }
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            }) => {
                got += response.len() as u64;
                received += 1;
                if sent < chunks {
                    swarm.behaviour_mut().send_request(&peer, sent);
                    sent += 1;
                }
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                bail!("request failed: {error}")
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
            _ => {}
        }
    }
    let secs = start.context("never connected")?.elapsed().as_secs_f64();
    println!("{}", serde_json::json!({ "bytes": got, "seconds": secs }));
    Ok(())
}
