//! Bitswap messages on libp2p streams: the accept task, one reader task per inbound stream,
//! and one sender task per peer and role.
//!
//! - [`run_accept`] (one task) registers the four protocol IDs with the stream control and
//!   starts a reader for each inbound stream, at most [`STREAMS_PER_PEER`] per peer and
//!   [`MAX_INBOUND_STREAMS`] in all; streams over either limit are reset.
//! - [`read_stream`] (one task per stream) frames bytes with [`FrameDecoder`], decodes each
//!   message (hashing its blocks; large messages on the blocking pool), and passes wants to
//!   the server and blocks/presences to the client, waiting when they are behind, which holds
//!   the peer back through the stream's flow control. A message over 4 MiB, or any decoding
//!   error, resets the stream and reports a violation.
//! - [`run_sender`] (one task per peer and role) opens a stream, trying 1.2.0, 1.1.0, 1.0.0 and
//!   the legacy ID in that order, and writes the messages queued for it, packed into messages
//!   of at most 2 MiB for the negotiated version. It reopens a stream once if a write fails,
//!   and exits after [`SENDER_IDLE`] without work, closing its stream so idle connections
//!   can close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_protocol::bitswap::{
    split_into_messages, BitswapError, FrameDecoder, Message, Presence, Version, WantEntry, WantType, PROTOCOLS,
    TARGET_MESSAGE_SIZE,
};
use cairn_protocol::{Block, Cid};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, OpenStreamError};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Counters;

/// Messages queued for one sender task before its owner keeps them back.
pub(crate) const PEER_QUEUE: usize = 16;

/// Inbound Bitswap streams open at once, over all peers.
pub(crate) const MAX_INBOUND_STREAMS: usize = 1024;

/// Inbound Bitswap streams one peer may hold open (boxo opens one per message it answers
/// with, and closes it; a few of those overlap).
pub(crate) const STREAMS_PER_PEER: usize = 32;

/// A sender with nothing to send for this long closes its stream and exits.
pub(crate) const SENDER_IDLE: Duration = Duration::from_secs(30);

/// Longest wait for a stream to open and its protocol to be agreed.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for one message to be written (a 2 MiB message at 70 KB/s).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Messages at least this large are decoded (and their blocks hashed) on the blocking pool,
/// so a burst of large blocks does not hold up the async workers.
const BLOCKING_DECODE: usize = 256 * 1024;

/// A peer's wants, from a reader task to the server task.
#[derive(Debug)]
pub(crate) struct PeerWants {
    /// Who sent them.
    pub(crate) peer: PeerId,
    /// They replace the peer's wantlist.
    pub(crate) full: bool,
    /// Wants and cancels.
    pub(crate) wants: Vec<WantEntry>,
}

/// What reader and sender tasks tell the client task about a peer.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// Blocks and presences from a peer (from a reader task).
    Received {
        /// The sender.
        peer: PeerId,
        /// Blocks, CIDs computed from their bytes.
        blocks: Vec<Block>,
        /// HAVE / DONT_HAVE answers.
        presences: Vec<(Cid, Presence)>,
    },
    /// A peer broke the protocol on a stream (from a reader task).
    Violation {
        /// The peer.
        peer: PeerId,
    },
    /// Wants could not be sent to a peer (from its sender task).
    SendFailed {
        /// The peer.
        peer: PeerId,
        /// It speaks no Bitswap version at all.
        unsupported: bool,
    },
}

/// Where inbound messages go, shared by the accept task and its readers. The wire owns
/// these message types, so it depends on neither half of the engine.
#[derive(Clone)]
pub(crate) struct Inbound {
    /// Wants go to the server task.
    pub(crate) server: mpsc::Sender<PeerWants>,
    /// Blocks, presences and violations go to the client task.
    pub(crate) client: mpsc::Sender<PeerEvent>,
    /// Message counters.
    pub(crate) counters: Arc<Counters>,
    /// Stops every reader.
    pub(crate) shutdown: CancellationToken,
}

/// Accept inbound streams on every Bitswap protocol ID until shutdown.
pub(crate) async fn run_accept(mut control: Control, inbound: Inbound) {
    let mut incoming = Vec::new();
    for name in PROTOCOLS {
        match control.accept(StreamProtocol::new(name)) {
            Ok(streams) => incoming.push(streams),
            Err(e) => tracing::error!(protocol = name, "cannot accept bitswap streams: {e}"),
        }
    }
    let mut incoming = futures::stream::select_all(incoming);
    let total = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS));
    let mut per_peer: HashMap<PeerId, Arc<Semaphore>> = HashMap::new();
    let mut since_prune = 0u32;
    loop {
        let (peer, stream) = tokio::select! {
            _ = inbound.shutdown.cancelled() => break,
            next = incoming.next() => match next {
                Some(s) => s,
                None => break,
            },
        };
        since_prune += 1;
        if since_prune >= 256 {
            since_prune = 0;
            // Forget peers with no open stream, so the map stays as small as the peer set.
            per_peer.retain(|_, s| s.available_permits() < STREAMS_PER_PEER);
        }
        let peer_sem = per_peer.entry(peer).or_insert_with(|| Arc::new(Semaphore::new(STREAMS_PER_PEER)));
        let (Ok(p1), Ok(p2)) = (peer_sem.clone().try_acquire_owned(), total.clone().try_acquire_owned()) else {
            tracing::debug!(%peer, "too many inbound bitswap streams; resetting one");
            continue; // dropping the stream resets it
        };
        tokio::spawn(read_stream(peer, stream, inbound.clone(), [p1, p2]));
    }
    tracing::debug!("bitswap accept task stopped");
}

/// Read one inbound stream to its end, a violation, or shutdown. The permits bound open
/// streams and are released when it returns.
pub(crate) async fn read_stream(
    peer: PeerId,
    mut stream: Stream,
    inbound: Inbound,
    _permits: [OwnedSemaphorePermit; 2],
) {
    let outcome = tokio::select! {
        _ = inbound.shutdown.cancelled() => Ok(()),
        r = read_messages(peer, &mut stream, &inbound) => r,
    };
    match outcome {
        Ok(()) => {}
        Err(ReadError::Io(e)) => tracing::debug!(%peer, "bitswap stream ended: {e}"),
        Err(ReadError::Gone) => {}
        Err(ReadError::Protocol(e)) => {
            tracing::debug!(%peer, "bitswap protocol violation, resetting the stream: {e}");
            Counters::add(&inbound.counters.protocol_violations, 1);
            drop(stream); // reset: dropped without closing
            let _ = inbound.client.send(PeerEvent::Violation { peer }).await;
        }
    }
}

/// Why reading a stream stopped.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] BitswapError),
    /// The engine stopped.
    #[error("bitswap stopped")]
    Gone,
}

async fn read_messages(peer: PeerId, stream: &mut Stream, inbound: &Inbound) -> Result<(), ReadError> {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // A stream cut inside a message is an I/O ending, not a violation: yamux reports a
            // dropped connection or a reset stream as a plain end, so this is what a flaky
            // link looks like. The bytes were already bounded by the frame limit.
            return match decoder.finish() {
                Err(e @ BitswapError::Truncated { .. }) => {
                    Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e)))
                }
                r => Ok(r?),
            };
        }
        decoder.feed(&buf[..n]);
        while let Some(body) = decoder.next_frame()? {
            let msg = decode(body).await?;
            Counters::add(&inbound.counters.messages_received, 1);
            dispatch(peer, msg, inbound).await?;
        }
    }
}

async fn decode(body: Bytes) -> Result<Message, ReadError> {
    if body.len() < BLOCKING_DECODE {
        return Ok(Message::decode_bytes(body)?);
    }
    match tokio::task::spawn_blocking(move || Message::decode_bytes(body)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ReadError::Gone),
    }
}

/// Wants to the server, blocks and presences to the client.
async fn dispatch(peer: PeerId, msg: Message, inbound: &Inbound) -> Result<(), ReadError> {
    if msg.full || !msg.wants.is_empty() {
        let cmd = PeerWants { peer, full: msg.full, wants: msg.wants };
        inbound.server.send(cmd).await.map_err(|_| ReadError::Gone)?;
    }
    if !msg.blocks.is_empty() || !msg.presences.is_empty() {
        let cmd = PeerEvent::Received { peer, blocks: msg.blocks, presences: msg.presences };
        inbound.client.send(cmd).await.map_err(|_| ReadError::Gone)?;
    }
    Ok(())
}

/// Which half of the engine a sender works for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Answers (blocks, presences) from the server; counted as sent blocks.
    Server,
    /// Wants and cancels from the client; failures are reported back to it.
    Client,
}

/// The owner's end of a sender task: a bounded queue and the bytes waiting in it. Dropping
/// it stops the task at once, dropping what is queued: the owner drops it when the peer
/// disconnects or is banned, and a sender must not dial the peer again to deliver old news.
#[derive(Debug)]
pub(crate) struct PeerSender {
    tx: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
    _stop: DropGuard,
}

impl PeerSender {
    /// Whether the sender task has exited (idle or failed); the owner starts a new one.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether one more message fits in the queue now.
    pub(crate) fn has_capacity(&self) -> bool {
        self.tx.capacity() > 0
    }

    /// Answer bytes queued and not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queue a message without waiting; gives it back when the queue is full or closed.
    pub(crate) fn try_send(&self, msg: Message) -> Result<(), Message> {
        let size = approx_size(&msg);
        self.queued.fetch_add(size, Ordering::Relaxed);
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued.fetch_sub(size, Ordering::Relaxed);
                Err(match e {
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
                })
            }
        }
    }
}

/// What a sender task needs besides its queue.
#[derive(Clone)]
pub(crate) struct SenderCtx {
    /// Opens outbound streams.
    pub(crate) control: Control,
    /// Which half of the engine this sender serves.
    pub(crate) role: Role,
    /// Sent-block counters.
    pub(crate) counters: Arc<Counters>,
    /// Woken after each message is written, so the server can refill the queue.
    pub(crate) room: Option<Arc<Notify>>,
    /// Where a client sender reports that the peer cannot be reached.
    pub(crate) failures: Option<mpsc::Sender<PeerEvent>>,
    /// Stops the sender.
    pub(crate) shutdown: CancellationToken,
    /// The serving budget the blocks sent spend (server senders only).
    pub(crate) upload: Option<crate::throttle::Throttle>,
}

/// Start a sender task for `peer`.
pub(crate) fn spawn_sender(peer: PeerId, mut ctx: SenderCtx) -> PeerSender {
    let (tx, rx) = mpsc::channel(PEER_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let stop = ctx.shutdown.child_token();
    ctx.shutdown = stop.clone();
    tokio::spawn(run_sender(peer, rx, queued.clone(), ctx));
    PeerSender { tx, queued, _stop: stop.drop_guard() }
}

/// Bytes a message costs in a queue: block data plus a little per item.
pub(crate) fn approx_size(msg: &Message) -> usize {
    msg.blocks.iter().map(|b| b.data.len() + 48).sum::<usize>() + (msg.presences.len() + msg.wants.len()) * 48
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("peer speaks no bitswap version")]
    Unsupported,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Encode(#[from] BitswapError),
}

/// The sender task: write queued messages to `peer` until idle, failure or shutdown.
pub(crate) async fn run_sender(
    peer: PeerId,
    mut rx: mpsc::Receiver<Message>,
    queued: Arc<AtomicUsize>,
    mut ctx: SenderCtx,
) {
    let mut stream: Option<(Stream, Version)> = None;
    loop {
        let msg = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            next = tokio::time::timeout(SENDER_IDLE, rx.recv()) => match next {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    // Idle: refuse new messages, then send what slipped in before exiting.
                    rx.close();
                    continue;
                }
            },
        };
        let size = approx_size(&msg);
        let stop = ctx.shutdown.clone();
        if let Some(budget) = ctx.upload.clone() {
            let bytes = msg.blocks.iter().map(|b| b.data.len()).sum();
            tokio::select! {
                _ = stop.cancelled() => break,
                () = budget.take(bytes) => {}
            }
        }
        let result = tokio::select! {
            _ = stop.cancelled() => break,
            r = send_with_retry(peer, &mut stream, &msg, &mut ctx) => r,
        };
        queued.fetch_sub(size, Ordering::Relaxed);
        if let Some(room) = &ctx.room {
            room.notify_one();
        }
        match result {
            Ok(()) => {
                if ctx.role == Role::Server {
                    Counters::add(&ctx.counters.blocks_sent, msg.blocks.len() as u64);
                    Counters::add(&ctx.counters.bytes_sent, msg.blocks.iter().map(|b| b.data.len() as u64).sum());
                }
            }
            Err(e) => {
                tracing::debug!(%peer, role = ?ctx.role, "bitswap send failed: {e}");
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    queued.fetch_sub(approx_size(&m), Ordering::Relaxed);
                }
                if let Some(f) = &ctx.failures {
                    let unsupported = matches!(e, SendError::Unsupported);
                    let _ = f.send(PeerEvent::SendFailed { peer, unsupported }).await;
                }
                return;
            }
        }
    }
    if let Some((mut s, _)) = stream {
        let _ = tokio::time::timeout(OPEN_TIMEOUT, s.close()).await;
    }
}

/// Send one message; if the stream broke (the peer may have closed an idle one), open a new
/// one and try once more. A new stream that fails to open with an I/O error is tried once
/// more after [`REOPEN_DELAY`]: right after a reconnect, the stream layer may still pick the
/// connection that is closing ("connection is closed") while a fresh one is up, and the
/// message (often an answer to a want) would otherwise be lost until the peer asks again.
async fn send_with_retry(
    peer: PeerId,
    stream: &mut Option<(Stream, Version)>,
    msg: &Message,
    ctx: &mut SenderCtx,
) -> Result<(), SendError> {
    let reused = stream.is_some();
    match send_once(peer, stream, msg, ctx).await {
        Err(SendError::Io(_) | SendError::Timeout) if reused => {
            *stream = None;
            send_once(peer, stream, msg, ctx).await
        }
        Err(SendError::Io(_)) if stream.is_none() => {
            tokio::time::sleep(REOPEN_DELAY).await;
            send_once(peer, stream, msg, ctx).await
        }
        other => other,
    }
}

/// Wait before opening a stream again after opening one failed.
const REOPEN_DELAY: Duration = Duration::from_millis(100);

async fn send_once(
    peer: PeerId,
    stream: &mut Option<(Stream, Version)>,
    msg: &Message,
    ctx: &mut SenderCtx,
) -> Result<(), SendError> {
    if stream.is_none() {
        *stream = Some(open(peer, &mut ctx.control).await?);
    }
    let Some((s, version)) = stream.as_mut() else { return Err(SendError::Unsupported) };
    let msg = for_peer(msg, *version);
    for part in split_into_messages(&msg, *version, TARGET_MESSAGE_SIZE) {
        if part.is_empty() && !part.full {
            continue;
        }
        let frame = part.encode_framed(*version)?;
        let write = async {
            s.write_all(&frame).await?;
            s.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                *stream = None;
                return Err(e.into());
            }
            Err(_) => {
                *stream = None;
                return Err(SendError::Timeout);
            }
        }
    }
    Ok(())
}

/// Before 1.2.0 there is no want-have: ask such a peer for the block itself (as boxo does).
fn for_peer(msg: &Message, version: Version) -> Message {
    let mut msg = msg.clone();
    if !version.supports_have() {
        for w in &mut msg.wants {
            if w.want == WantType::Have && !w.cancel {
                w.want = WantType::Block;
            }
        }
    }
    msg
}

/// Open a stream to `peer`, newest protocol version first.
async fn open(peer: PeerId, control: &mut Control) -> Result<(Stream, Version), SendError> {
    for name in PROTOCOLS {
        let version = Version::from_protocol_name(name).expect("our own protocol IDs parse");
        match tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, StreamProtocol::new(name))).await {
            Ok(Ok(s)) => return Ok((s, version)),
            Ok(Err(OpenStreamError::UnsupportedProtocol(_))) => continue,
            Ok(Err(OpenStreamError::Io(e))) => return Err(e.into()),
            Ok(Err(e)) => return Err(std::io::Error::other(e.to_string()).into()),
            Err(_) => return Err(SendError::Timeout),
        }
    }
    Err(SendError::Unsupported)
}
