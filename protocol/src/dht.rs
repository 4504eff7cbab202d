//! The IPFS Kademlia DHT message (`/ipfs/kad/1.0.0`), for the RPCs cairn sends itself: the
//! batched provider writes many `ADD_PROVIDER` messages on one stream per peer, which the
//! general-purpose Kademlia behaviour cannot do.
//!
//! Framing is the same as Bitswap's (`varint(len) ‖ protobuf`, see [`crate::bitswap::frame`]).
//! Keys of provider records are multihashes, not CIDs, so CIDv0 and CIDv1 of one block share
//! one record.

use prost::Message as _;

/// Largest DHT message we write or accept (go-libp2p-kad-dht's limit).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Longest key an `ADD_PROVIDER` may carry (servers drop longer ones).
pub const MAX_PROVIDER_KEY: usize = 80;

/// The kinds of DHT message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// Store a value record.
    PutValue = 0,
    /// Fetch a value record.
    GetValue = 1,
    /// Announce a provider (no response).
    AddProvider = 2,
    /// Ask for providers and closer peers.
    GetProviders = 3,
    /// Ask for closer peers.
    FindNode = 4,
    /// Deprecated liveness check.
    Ping = 5,
}

/// A peer as the DHT carries it: binary peer ID and binary multiaddresses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    /// Binary peer ID (a multihash).
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// Binary multiaddresses.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub addrs: Vec<Vec<u8>>,
    /// Connection state as the sender sees it (0: not connected).
    #[prost(int32, tag = "3")]
    pub connection: i32,
}

/// A value record (fields 3 and 4 were removed from the spec).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// Record key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Record value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// When the record was received (RFC 3339), set by receivers.
    #[prost(string, tag = "5")]
    pub time_received: String,
}

/// The DHT message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// [`MessageType`].
    #[prost(enumeration = "MessageType", tag = "1")]
    pub r#type: i32,
    /// Unused; kept for wire compatibility.
    #[prost(int32, tag = "10")]
    pub cluster_level_raw: i32,
    /// The key the message is about.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// A value record (PUT_VALUE, GET_VALUE responses).
    #[prost(message, optional, tag = "3")]
    pub record: Option<Record>,
    /// Peers closer to the key.
    #[prost(message, repeated, tag = "8")]
    pub closer_peers: Vec<Peer>,
    /// Providers of the key.
    #[prost(message, repeated, tag = "9")]
    pub provider_peers: Vec<Peer>,
}

/// Why a DHT message was refused.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The protobuf did not decode.
    #[error("dht: bad message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("dht: message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A provider key longer than [`MAX_PROVIDER_KEY`].
    #[error("dht: provider key of {0} bytes is too long")]
    KeyTooLong(usize),
}

/// The `ADD_PROVIDER` message announcing that `provider` (binary peer ID, reachable at the
/// binary `addrs`) provides the block whose multihash is `key`.
pub fn add_provider(key: &[u8], provider: &[u8], addrs: &[Vec<u8>]) -> Result<Message, DhtError> {
    if key.len() > MAX_PROVIDER_KEY {
        return Err(DhtError::KeyTooLong(key.len()));
    }
    Ok(Message {
        r#type: MessageType::AddProvider as i32,
        cluster_level_raw: 0,
        key: key.to_vec(),
        record: None,
        closer_peers: Vec::new(),
        provider_peers: vec![Peer { id: provider.to_vec(), addrs: addrs.to_vec(), connection: 0 }],
    })
}

impl Message {
    /// The message as `varint(len) ‖ protobuf`, ready for a stream.
    pub fn to_frame(&self) -> Vec<u8> {
        crate::bitswap::frame(&self.encode_to_vec())
    }

    /// Decode one message body (without its length prefix).
    pub fn from_body(body: &[u8]) -> Result<Message, DhtError> {
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(DhtError::TooLarge(body.len()));
        }
        Ok(Message::decode(body)?)
    }

    /// The message type, if known.
    pub fn kind(&self) -> Option<MessageType> {
        MessageType::try_from(self.r#type).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn add_provider_bytes() {
        let m = add_provider(&[0x12, 0x20, 0xaa], &[0x00, 0x01, 0x02], &[vec![0x04, 0x7f, 0, 0, 1]]).unwrap();
        let frame = m.to_frame();
        // len 21 | type=2 | key (3 bytes) | providerPeers { id (3 bytes), addrs[0] (5 bytes) }
        let want = ["15", "0802", "1203", "1220aa", "4a0c", "0a03000102", "1205047f000001"].concat();
        assert_eq!(hex::encode(&frame), want);
        let back = Message::from_body(&frame[1..]).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.kind(), Some(MessageType::AddProvider));
        assert!(add_provider(&[0; 81], &[], &[]).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::from_body(&bytes);
        }
    }
}
