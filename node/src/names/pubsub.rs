//! IPNS over PubSub's side channel: the libp2p Fetch protocol. A node that subscribes to a
//! name's topic asks the topic's peers for the latest record ([`fetch`]) instead of waiting
//! for the next publish; every node serves the records it holds ([`serve`]).

use std::sync::Arc;
use std::time::Duration;

use cairn_protocol::fetch::{self, FetchRequest, Status};
use cairn_protocol::names::Name;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The Fetch protocol.
const PROTOCOL: StreamProtocol = StreamProtocol::new(fetch::PROTOCOL);

/// Longest a fetch (open, ask, answer) may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Fetch requests served at once; a stream beyond them is closed unanswered (the peer asks
/// another topic peer).
const SERVING: usize = 32;

/// How often a followed topic is advertised again in the DHT (provider records live 48 h).
const READVERTISE: Duration = Duration::from_secs(12 * 3600);

/// Peers looked up per topic advertisement.
const RENDEZVOUS_PEERS: usize = 20;

/// The DHT key under which the peers of a topic announce themselves, as go-libp2p-pubsub's
/// discovery does it (kubo finds topic peers this way): CIDv1, raw, SHA-256 of
/// `floodsub:` ‖ topic.
pub(crate) fn rendezvous_key(topic: &str) -> cairn_protocol::Cid {
    cairn_protocol::cids::cid_for(
        cid::Version::V1,
        cairn_protocol::cids::RAW,
        cairn_protocol::cids::HashFn::Sha2_256,
        format!("floodsub:{topic}").as_bytes(),
    )
}

/// Announce this node under the topic's rendezvous key and dial the peers found there (the
/// swarm dials providers as it finds them, and gossipsub then learns their subscriptions);
/// again every [`READVERTISE`] until `stop`.
pub(super) async fn rendezvous(net: &crate::net::Network, topic: &str, stop: &CancellationToken) {
    let key = rendezvous_key(topic);
    loop {
        if let Err(e) = net.provide(key).await {
            tracing::debug!(%topic, "topic not advertised in the DHT: {e}");
        }
        if let Ok(mut found) = net.find_providers(key, RENDEZVOUS_PEERS).await {
            while found.recv().await.is_some() {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(READVERTISE) => {}
        }
    }
}

/// Read one length-prefixed frame of at most `max` bytes.
async fn read_frame(s: &mut Stream, max: usize) -> Result<Vec<u8>, String> {
    let mut prefix = Vec::with_capacity(10);
    let (len, _) = loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        prefix.push(b[0]);
        if let Some(found) = fetch::frame_len(&prefix, max).map_err(|e| e.to_string())? {
            break found;
        }
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(body)
}

/// Ask `peer` for its record of `name`: the bytes (unvalidated), `None` when it holds none.
pub(super) async fn fetch(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    name: Name,
) -> Result<Option<Vec<u8>>, String> {
    let exchange = async {
        let mut s = control.open_stream(peer, PROTOCOL).await.map_err(|e| e.to_string())?;
        s.write_all(&fetch::frame(&FetchRequest { identifier: name.routing_key() }))
            .await
            .map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        let body = read_frame(&mut s, fetch::MAX_RESPONSE).await?;
        let _ = s.close().await;
        fetch::decode_response(&body).map_err(|e| e.to_string())
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| format!("no answer within {TIMEOUT:?}"))?
}

/// Answer Fetch requests for IPNS records with `record_of` a name (what the name service
/// holds), until `stop`.
pub(super) async fn serve<F, Fut>(mut control: libp2p_stream::Control, record_of: F, stop: CancellationToken)
where
    F: Fn(Name) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<Vec<u8>>> + Send,
{
    let mut incoming = match control.accept(PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!("cannot serve {}: {e}", fetch::PROTOCOL);
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(SERVING));
    loop {
        let (peer, mut s) = tokio::select! {
            _ = stop.cancelled() => return,
            next = incoming.next() => match next { Some(x) => x, None => return },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Busy: close the stream, the peer asks someone else.
            continue;
        };
        let record_of = record_of.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let answer = async {
                let body = read_frame(&mut s, fetch::MAX_REQUEST).await?;
                let req = fetch::decode_request(&body).map_err(|e| e.to_string())?;
                let reply = match Name::from_routing_key(&req.identifier) {
                    Some(name) => match record_of(name).await {
                        Some(bytes) => fetch::response(Status::Ok, bytes),
                        None => fetch::response(Status::NotFound, Vec::new()),
                    },
                    None => fetch::response(Status::NotFound, Vec::new()),
                };
                s.write_all(&reply).await.map_err(|e| e.to_string())?;
                let _ = s.close().await;
                Ok::<(), String>(())
            };
            if let Err(e) = tokio::time::timeout(TIMEOUT, answer).await.unwrap_or(Err("timed out".into())) {
                tracing::debug!(%peer, "fetch request failed: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_keys_are_go_pubsub_discovery_cids() {
        // sha2-256("floodsub:/record/x") under a raw CIDv1, as go-libp2p's `nsToCid`.
        let key = rendezvous_key("/record/x");
        assert_eq!(key.codec(), cairn_protocol::cids::RAW);
        assert!(cairn_protocol::cids::verify(&key, b"floodsub:/record/x").is_ok());
    }
}
