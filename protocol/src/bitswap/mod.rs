//! The Bitswap wire format (`/ipfs/bitswap/1.0.0`, `1.1.0` and `1.2.0`): the protobuf message,
//! its validated form [`Message`], length-prefixed framing ([`FrameDecoder`], [`frame`]) and
//! packing into size-bounded messages ([`split_into_messages`]).
//!
//! Sans-IO: nothing here owns a stream, a wantlist or a clock. The node's Bitswap engine feeds
//! stream bytes into a [`FrameDecoder`], decodes each frame with [`Message::decode`], and
//! encodes replies with [`Message::encode_framed`] for the version negotiated on that stream.
//! Decoding hashes every received block, so the engine runs it off the swarm task.
//!
//! Invariants:
//! - Decoding never panics and is bounded: a frame body is at most [`MAX_MESSAGE_SIZE`], a block
//!   at most [`MAX_BLOCK_SIZE`], a CID at most [`MAX_CID_SIZE`], and a message holds at most
//!   [`MAX_ENTRIES_PER_MESSAGE`] wants, blocks and presences together (counted before anything
//!   is allocated for them). Going over any limit is an error for the whole message.
//! - A received block's CID is computed from its bytes: the sender only chooses the CID version,
//!   codec and hash function (the "prefix"), never the digest. Every decoded [`Block`] therefore
//!   names exactly its bytes, and "the peer sent the wrong bytes" shows up as a CID the receiver
//!   did not ask for; comparing against the wantlist is the engine's job.
//! - Encoding is deterministic: fields in tag order, items in the order given, so encoder output
//!   can be checked against byte vectors. Wire details and the annotated vector: `specs/bitswap.md`.

use bytes::{Buf, Bytes, BytesMut};
use cid::Cid;
use multihash::Multihash;
use prost::Message as _;

use crate::block::Block;
use crate::cids::{self, CidError, HashFn};

mod frame;
mod prefix;
mod proto;
mod split;
#[cfg(test)]
mod tests;

pub use frame::{frame, FrameDecoder};
pub use prefix::{cid_from_prefix, prefix_of};
pub use split::split_into_messages;

/// Protocol ID of Bitswap 1.2.0 (want-have, HAVE/DONT_HAVE, pending bytes).
pub const PROTOCOL_1_2_0: &str = "/ipfs/bitswap/1.2.0";
/// Protocol ID of Bitswap 1.1.0 (blocks carry a CID prefix, so CIDv1 works).
pub const PROTOCOL_1_1_0: &str = "/ipfs/bitswap/1.1.0";
/// Protocol ID of Bitswap 1.0.0 (blocks are bare bytes named by CIDv0).
pub const PROTOCOL_1_0_0: &str = "/ipfs/bitswap/1.0.0";
/// The unversioned legacy protocol ID, spoken with the 1.0.0 wire format.
pub const PROTOCOL_LEGACY: &str = "/ipfs/bitswap";
/// Every protocol ID we accept, most preferred first (the order to offer them in).
pub const PROTOCOLS: [&str; 4] = [PROTOCOL_1_2_0, PROTOCOL_1_1_0, PROTOCOL_1_0_0, PROTOCOL_LEGACY];

/// Largest message body (after the length prefix) we send or accept; the spec's limit.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Largest block we send or accept; the spec requires support up to this size.
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;
/// Most wantlist entries the engine keeps per peer (boxo's default). Not checked by the codec.
pub const MAX_WANTLIST_ENTRIES: usize = 1024;
/// Largest CID accepted in a want or presence: 128-byte digest plus 40 bytes of varints (boxo).
pub const MAX_CID_SIZE: usize = 168;
/// Most wants, blocks and presences (together) in one received message. A 2 MiB batch of the
/// smallest real entries (CIDv0 wants, about 46 bytes) holds ~45 000, so senders that batch
/// like boxo stay well under it; it stops tiny items from inflating memory on decode.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 64 * 1024;
/// Size [`split_into_messages`] aims for when batching, as boxo does.
pub const TARGET_MESSAGE_SIZE: usize = 2 * 1024 * 1024;

/// A Bitswap protocol version; decides which fields [`Message::encode`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `/ipfs/bitswap/1.0.0` (and the legacy `/ipfs/bitswap`).
    V1_0_0,
    /// `/ipfs/bitswap/1.1.0`.
    V1_1_0,
    /// `/ipfs/bitswap/1.2.0`.
    V1_2_0,
}

impl Version {
    /// Every version, newest first.
    pub const ALL: [Version; 3] = [Version::V1_2_0, Version::V1_1_0, Version::V1_0_0];

    /// The versioned protocol ID.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Version::V1_0_0 => PROTOCOL_1_0_0,
            Version::V1_1_0 => PROTOCOL_1_1_0,
            Version::V1_2_0 => PROTOCOL_1_2_0,
        }
    }

    /// The version spoken on a negotiated protocol ID; the legacy ID means 1.0.0.
    pub fn from_protocol_name(name: &str) -> Option<Self> {
        match name {
            PROTOCOL_1_2_0 => Some(Version::V1_2_0),
            PROTOCOL_1_1_0 => Some(Version::V1_1_0),
            PROTOCOL_1_0_0 | PROTOCOL_LEGACY => Some(Version::V1_0_0),
            _ => None,
        }
    }

    /// Whether the peer understands want-have, HAVE/DONT_HAVE and pending bytes (1.2.0).
    pub const fn supports_have(self) -> bool {
        matches!(self, Version::V1_2_0)
    }
}

/// What a want asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WantType {
    /// Send the block.
    Block,
    /// Say whether you have the block (1.2.0).
    Have,
}

/// A block presence answer (1.2.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The sender has the block.
    Have,
    /// The sender does not have the block (sent only when the want asked for it).
    DontHave,
}

/// One wantlist entry: a want, or the cancel of an earlier want.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantEntry {
    /// The wanted block.
    pub cid: Cid,
    /// Higher is served first. Not normalized; proto3 leaves it 0 when unset.
    pub priority: i32,
    /// This entry revokes an earlier want for `cid` instead of adding one.
    pub cancel: bool,
    /// Whether the block or only its presence is wanted.
    pub want: WantType,
    /// Ask for an explicit DONT_HAVE when the peer lacks the block (1.2.0).
    pub send_dont_have: bool,
}

/// A validated Bitswap message, version-independent.
///
/// Duplicate CIDs are kept as received, in order; merging them is the engine's concern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// `wants` replaces the receiver's copy of our wantlist rather than updating it.
    pub full: bool,
    /// Wants and cancels.
    pub wants: Vec<WantEntry>,
    /// Blocks. On decode each CID is computed from the data (see the module doc), so a block
    /// always names its bytes; whether it was wanted is for the receiver to check.
    pub blocks: Vec<Block>,
    /// HAVE / DONT_HAVE answers (1.2.0).
    pub presences: Vec<(Cid, Presence)>,
    /// Bytes the sender still has queued for the receiver (1.2.0). Kept as received, even
    /// if negative.
    pub pending_bytes: i32,
}

/// Why a block's CID prefix could not be turned into a CID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not exactly four varints (version, codec, hash code, digest length).
    #[error("malformed CID prefix: {0}")]
    Malformed(&'static str),
    /// A CID version other than 0 or 1.
    #[error("unsupported CID version {0}")]
    UnsupportedVersion(u64),
    /// A version-0 prefix that is not dag-pb, sha2-256, 32 bytes.
    #[error("a CIDv0 prefix must be dag-pb with a 32-byte sha2-256 digest")]
    InvalidV0,
    /// A hash function cairn does not implement.
    #[error("unsupported hash function 0x{0:x} (supported: sha2-256, blake3, identity)")]
    UnsupportedHash(u64),
    /// A supported hash function with a digest length other than its full length.
    #[error("hash function 0x{code:x} with a {len}-byte digest is not supported")]
    UnsupportedDigestLength {
        /// The multihash code.
        code: u64,
        /// The digest length the prefix asked for.
        len: u64,
    },
    /// An identity-hash block too long to inline in a CID.
    #[error("identity block of {len} bytes is too long to inline in a CID")]
    IdentityTooLong {
        /// The block's length.
        len: usize,
    },
}

/// Why bytes were refused as a Bitswap frame or message. Any of these is a protocol violation:
/// the engine resets the stream.
#[derive(Debug, thiserror::Error)]
pub enum BitswapError {
    /// A length prefix (or a body) announces more than [`MAX_MESSAGE_SIZE`] bytes.
    #[error("bitswap: message of {len} bytes exceeds the {MAX_MESSAGE_SIZE}-byte limit")]
    TooLarge {
        /// The announced or actual length.
        len: u64,
    },
    /// The length prefix is not a valid unsigned varint (too long or not minimal).
    #[error("bitswap: malformed length prefix")]
    BadLengthPrefix,
    /// The stream ended inside a frame.
    #[error("bitswap: stream ended inside a message ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes received of the unfinished frame, prefix included.
        buffered: usize,
    },
    /// The body is not a valid protobuf encoding.
    #[error("bitswap: malformed protobuf: {0}")]
    Malformed(&'static str),
    /// The body does not decode as the Bitswap schema.
    #[error("bitswap: bad message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// More than [`MAX_ENTRIES_PER_MESSAGE`] wants, blocks and presences.
    #[error("bitswap: {count} entries exceed the {MAX_ENTRIES_PER_MESSAGE}-entry limit")]
    TooManyEntries {
        /// Entries counted.
        count: usize,
    },
    /// A CID over [`MAX_CID_SIZE`] bytes in a want or presence.
    #[error("bitswap: CID of {len} bytes exceeds the {MAX_CID_SIZE}-byte limit")]
    CidTooLarge {
        /// The CID's length in bytes.
        len: usize,
    },
    /// A want or presence CID that does not parse.
    #[error("bitswap: {0}")]
    Cid(#[from] CidError),
    /// A want type outside the enum.
    #[error("bitswap: unknown want type {0}")]
    UnknownWantType(i32),
    /// A presence type outside the enum.
    #[error("bitswap: unknown block presence type {0}")]
    UnknownPresenceType(i32),
    /// A block over [`MAX_BLOCK_SIZE`] bytes.
    #[error("bitswap: block of {len} bytes exceeds the {MAX_BLOCK_SIZE}-byte limit")]
    BlockTooLarge {
        /// The block's length.
        len: usize,
    },
    /// A `payload` block whose prefix cannot be used.
    #[error("bitswap: payload block {index}: {source}")]
    Prefix {
        /// Position in the `payload` field.
        index: usize,
        /// What is wrong with the prefix.
        source: PrefixError,
    },
}

impl Message {
    /// Whether the message carries no wants, blocks or presences.
    pub fn is_empty(&self) -> bool {
        self.wants.is_empty() && self.blocks.is_empty() && self.presences.is_empty()
    }

    /// Decode a message body (without its length prefix). Accepts every field of every
    /// version, whatever was negotiated. See [`BitswapError`] for what is refused.
    pub fn decode(bytes: &[u8]) -> Result<Message, BitswapError> {
        check_body(bytes)?;
        Message::try_from(proto::Message::decode(bytes)?)
    }

    /// [`Message::decode`] without copying block data out of `bytes`.
    pub fn decode_bytes(bytes: Bytes) -> Result<Message, BitswapError> {
        check_body(&bytes)?;
        Message::try_from(proto::Message::decode(bytes)?)
    }

    /// Encode the body for a peer speaking `version`, dropping what that version cannot carry
    /// (exactly the difference between `self` and [`Message::for_version`]).
    pub fn encode(&self, version: Version) -> Vec<u8> {
        self.to_proto(version).encode_to_vec()
    }

    /// [`Message::encode`] behind a length prefix, refusing a body over [`MAX_MESSAGE_SIZE`].
    pub fn encode_framed(&self, version: Version) -> Result<Vec<u8>, BitswapError> {
        let pb = self.to_proto(version);
        let len = pb.encoded_len();
        if len > MAX_MESSAGE_SIZE {
            return Err(BitswapError::TooLarge { len: len as u64 });
        }
        Ok(pb.encode_length_delimited_to_vec())
    }

    /// What a peer speaking `version` receives from [`Message::encode`]:
    /// - before 1.2.0: presences and pending bytes are dropped (the fields do not exist);
    ///   want-have entries are dropped (an older peer would read them as want-block and send
    ///   the block; the engine asks for the block explicitly if it wants it, as boxo does);
    ///   cancels are kept with their want type reset to `Block`; `send_dont_have` is cleared;
    /// - 1.0.0 additionally drops blocks that are not CIDv0, because the receiver names every
    ///   block it gets by the CIDv0 of its bytes.
    pub fn for_version(&self, version: Version) -> Message {
        let have = version.supports_have();
        Message {
            full: self.full,
            wants: self.wants.iter().filter_map(|w| downgrade_want(w, version)).collect(),
            blocks: self.blocks.iter().filter(|b| block_survives(b, version)).cloned().collect(),
            presences: if have { self.presences.clone() } else { Vec::new() },
            pending_bytes: if have { self.pending_bytes } else { 0 },
        }
    }

    fn to_proto(&self, version: Version) -> proto::Message {
        let entries: Vec<proto::Entry> =
            self.wants.iter().filter_map(|w| downgrade_want(w, version)).map(|w| entry_to_proto(&w)).collect();
        let mut pb = proto::Message::default();
        if self.full || !entries.is_empty() {
            pb.wantlist = Some(proto::Wantlist { entries, full: self.full });
        }
        let blocks = self.blocks.iter().filter(|b| block_survives(b, version));
        match version {
            Version::V1_0_0 => pb.blocks = blocks.map(|b| b.data.clone()).collect(),
            Version::V1_1_0 | Version::V1_2_0 => pb.payload = blocks.map(block_to_proto).collect(),
        }
        if version.supports_have() {
            pb.block_presences = self.presences.iter().map(|(cid, p)| presence_to_proto(cid, *p)).collect();
            pb.pending_bytes = self.pending_bytes;
        }
        pb
    }
}

fn downgrade_want(w: &WantEntry, version: Version) -> Option<WantEntry> {
    if version.supports_have() {
        return Some(w.clone());
    }
    if w.want == WantType::Have && !w.cancel {
        return None;
    }
    Some(WantEntry { want: WantType::Block, send_dont_have: false, ..w.clone() })
}

fn block_survives(block: &Block, version: Version) -> bool {
    version != Version::V1_0_0 || block.cid.version() == cid::Version::V0
}

fn entry_to_proto(w: &WantEntry) -> proto::Entry {
    let want_type = match w.want {
        WantType::Block => proto::WantType::Block,
        WantType::Have => proto::WantType::Have,
    };
    proto::Entry {
        block: w.cid.to_bytes(),
        priority: w.priority,
        cancel: w.cancel,
        want_type: want_type as i32,
        send_dont_have: w.send_dont_have,
    }
}

fn block_to_proto(b: &Block) -> proto::Block {
    proto::Block { prefix: prefix_of(&b.cid), data: b.data.clone() }
}

fn presence_to_proto(cid: &Cid, p: Presence) -> proto::BlockPresence {
    let kind = match p {
        Presence::Have => proto::BlockPresenceType::Have,
        Presence::DontHave => proto::BlockPresenceType::DontHave,
    };
    proto::BlockPresence { cid: cid.to_bytes(), r#type: kind as i32 }
}

impl TryFrom<proto::Message> for Message {
    type Error = BitswapError;

    fn try_from(pb: proto::Message) -> Result<Self, Self::Error> {
        let wantlist = pb.wantlist.unwrap_or_default();
        let wants = wantlist.entries.into_iter().map(want_from_proto).collect::<Result<_, _>>()?;
        let mut blocks = Vec::with_capacity(pb.blocks.len() + pb.payload.len());
        for data in pb.blocks {
            check_block_size(&data)?;
            let cid = cids::cid_for(cid::Version::V0, cids::DAG_PB, HashFn::Sha2_256, &data);
            blocks.push(Block::new_unchecked(cid, data));
        }
        for (index, b) in pb.payload.into_iter().enumerate() {
            check_block_size(&b.data)?;
            let cid = cid_from_prefix(&b.prefix, &b.data).map_err(|source| BitswapError::Prefix { index, source })?;
            blocks.push(Block::new_unchecked(cid, b.data));
        }
        let presences = pb.block_presences.into_iter().map(presence_from_proto).collect::<Result<_, _>>()?;
        Ok(Message { full: wantlist.full, wants, blocks, presences, pending_bytes: pb.pending_bytes })
    }
}

fn want_from_proto(e: proto::Entry) -> Result<WantEntry, BitswapError> {
    let want = match proto::WantType::try_from(e.want_type) {
        Ok(proto::WantType::Block) => WantType::Block,
        Ok(proto::WantType::Have) => WantType::Have,
        Err(_) => return Err(BitswapError::UnknownWantType(e.want_type)),
    };
    Ok(WantEntry {
        cid: parse_cid(&e.block)?,
        priority: e.priority,
        cancel: e.cancel,
        want,
        send_dont_have: e.send_dont_have,
    })
}

fn presence_from_proto(p: proto::BlockPresence) -> Result<(Cid, Presence), BitswapError> {
    let presence = match proto::BlockPresenceType::try_from(p.r#type) {
        Ok(proto::BlockPresenceType::Have) => Presence::Have,
        Ok(proto::BlockPresenceType::DontHave) => Presence::DontHave,
        Err(_) => return Err(BitswapError::UnknownPresenceType(p.r#type)),
    };
    Ok((parse_cid(&p.cid)?, presence))
}

fn parse_cid(bytes: &[u8]) -> Result<Cid, BitswapError> {
    if bytes.len() > MAX_CID_SIZE {
        return Err(BitswapError::CidTooLarge { len: bytes.len() });
    }
    Ok(cids::from_bytes(bytes)?)
}

fn check_block_size(data: &[u8]) -> Result<(), BitswapError> {
    if data.len() > MAX_BLOCK_SIZE {
        return Err(BitswapError::BlockTooLarge { len: data.len() });
    }
    Ok(())
}

/// Size and entry-count checks made before prost allocates anything for the body.
fn check_body(bytes: &[u8]) -> Result<(), BitswapError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(BitswapError::TooLarge { len: bytes.len() as u64 });
    }
    let count = count_entries(bytes)?;
    if count > MAX_ENTRIES_PER_MESSAGE {
        return Err(BitswapError::TooManyEntries { count });
    }
    Ok(())
}

/// Count wants (inside every `wantlist` occurrence), blocks, payload blocks and presences by
/// walking the protobuf framing only. Wire types prost would also skip are skipped here, so
/// nothing can hide entries from the count; groups (absent from proto3) are refused.
fn count_entries(body: &[u8]) -> Result<usize, BitswapError> {
    let mut count = 0usize;
    for field in Fields(body) {
        match field? {
            (1, Some(wantlist)) => {
                for inner in Fields(wantlist) {
                    if let (1, Some(_)) = inner? {
                        count += 1;
                    }
                }
            }
            (2..=4, Some(_)) => count += 1,
            _ => {}
        }
    }
    Ok(count)
}

/// Iterator over the top-level fields of a protobuf message: (field number, body if
/// length-delimited). Stops after the first error.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Option<&'a [u8]>), BitswapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = self.read_field();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

impl<'a> Fields<'a> {
    fn read_field(&mut self) -> Result<(u64, Option<&'a [u8]>), BitswapError> {
        let key = self.varint()?;
        let body = match key & 7 {
            0 => self.varint().map(|_| None)?,
            1 => self.take(8).map(|_| None)?,
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| truncated())?;
                Some(self.take(len)?)
            }
            5 => self.take(4).map(|_| None)?,
            _ => return Err(BitswapError::Malformed("unsupported wire type")),
        };
        Ok((key >> 3, body))
    }

    /// A protobuf varint: up to 10 bytes, non-minimal forms allowed (as prost allows them).
    fn varint(&mut self) -> Result<u64, BitswapError> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(BitswapError::Malformed("bad varint"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BitswapError> {
        if n > self.0.len() {
            return Err(truncated());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

fn truncated() -> BitswapError {
    BitswapError::Malformed("field runs past the end")
}
