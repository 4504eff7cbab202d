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

mod proto {
    //! The Bitswap 1.2.0 schema (a superset of 1.0.0 and 1.1.0), proto3, written out by hand.

    use bytes::Bytes;

    /// `Message`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        #[prost(message, optional, tag = "1")]
        pub wantlist: Option<Wantlist>,
        /// 1.0.0 only: block bytes, each named by its CIDv0.
        #[prost(bytes = "bytes", repeated, tag = "2")]
        pub blocks: Vec<Bytes>,
        /// 1.1.0 and later.
        #[prost(message, repeated, tag = "3")]
        pub payload: Vec<Block>,
        #[prost(message, repeated, tag = "4")]
        pub block_presences: Vec<BlockPresence>,
        #[prost(int32, tag = "5")]
        pub pending_bytes: i32,
    }

    /// `Message.Wantlist`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Wantlist {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
        #[prost(bool, tag = "2")]
        pub full: bool,
    }

    /// `Message.Wantlist.Entry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(bytes = "vec", tag = "1")]
        pub block: Vec<u8>,
        #[prost(int32, tag = "2")]
        pub priority: i32,
        #[prost(bool, tag = "3")]
        pub cancel: bool,
        #[prost(enumeration = "WantType", tag = "4")]
        pub want_type: i32,
        #[prost(bool, tag = "5")]
        pub send_dont_have: bool,
    }

    /// `Message.Wantlist.WantType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum WantType {
        Block = 0,
        Have = 1,
    }

    /// `Message.Block`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Block {
        #[prost(bytes = "vec", tag = "1")]
        pub prefix: Vec<u8>,
        #[prost(bytes = "bytes", tag = "2")]
        pub data: Bytes,
    }

    /// `Message.BlockPresenceType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum BlockPresenceType {
        Have = 0,
        DontHave = 1,
    }

    /// `Message.BlockPresence`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BlockPresence {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        #[prost(enumeration = "BlockPresenceType", tag = "2")]
        pub r#type: i32,
    }
}

/// The CID prefix a `payload` block carries: `varint(version) ‖ varint(codec) ‖
/// varint(hash code) ‖ varint(digest length)`, i.e. the CID without its digest.
pub fn prefix_of(cid: &Cid) -> Vec<u8> {
    let version = match cid.version() {
        cid::Version::V0 => 0,
        cid::Version::V1 => 1,
    };
    let mh = cid.hash();
    let mut out = Vec::with_capacity(8);
    for v in [version, cid.codec(), mh.code(), u64::from(mh.size())] {
        let mut buf = unsigned_varint::encode::u64_buffer();
        out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
    }
    out
}

/// Rebuild a block's CID from its prefix by hashing `data` with the prefix's hash function.
/// The result is by construction the CID of `data`. Supported: version 0 (dag-pb, sha2-256,
/// 32 bytes), version 1 with any codec and sha2-256 or blake3 (32 bytes) or identity (the
/// digest length is ignored, as go-cid does, and the data must fit in a CID).
pub fn cid_from_prefix(prefix: &[u8], data: &[u8]) -> Result<Cid, PrefixError> {
    let [version, codec, code, len] = parse_prefix(prefix)?;
    match version {
        0 if codec == cids::DAG_PB && code == cids::SHA2_256 && len == 32 => {
            Ok(cids::cid_for(cid::Version::V0, codec, HashFn::Sha2_256, data))
        }
        0 => Err(PrefixError::InvalidV0),
        1 => {
            let hash = match code {
                cids::IDENTITY => {
                    let mh = Multihash::wrap(cids::IDENTITY, data)
                        .map_err(|_| PrefixError::IdentityTooLong { len: data.len() })?;
                    return Ok(Cid::new_v1(codec, mh));
                }
                cids::SHA2_256 => HashFn::Sha2_256,
                cids::BLAKE3 => HashFn::Blake3,
                other => return Err(PrefixError::UnsupportedHash(other)),
            };
            if len != 32 {
                return Err(PrefixError::UnsupportedDigestLength { code, len });
            }
            Ok(cids::cid_for(cid::Version::V1, codec, hash, data))
        }
        other => Err(PrefixError::UnsupportedVersion(other)),
    }
}

fn parse_prefix(prefix: &[u8]) -> Result<[u64; 4], PrefixError> {
    let mut rest = prefix;
    let mut out = [0u64; 4];
    for slot in &mut out {
        let (value, tail) =
            unsigned_varint::decode::u64(rest).map_err(|_| PrefixError::Malformed("expected four varints"))?;
        *slot = value;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(PrefixError::Malformed("trailing bytes"));
    }
    Ok(out)
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

/// Put a length prefix (unsigned varint) in front of a message body. The caller keeps bodies
/// within [`MAX_MESSAGE_SIZE`]; [`Message::encode_framed`] checks that itself.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(body.len(), &mut buf);
    let mut out = Vec::with_capacity(prefix.len() + body.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(body);
    out
}

/// Splits a byte stream into message bodies: `varint(len) ‖ body`, repeated.
///
/// Feed bytes as they arrive with [`FrameDecoder::feed`], then call
/// [`FrameDecoder::next_frame`] until it returns `Ok(None)`. An announced length over
/// [`MAX_MESSAGE_SIZE`] is reported as soon as the prefix is complete, without waiting for the
/// body, so the caller can reset the stream; after any error the decoder stays failed. Driven
/// that way, the buffer never holds more than one frame plus one fed chunk.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Bytes received and not yet returned; starts at a prefix unless `body_len` is set.
    buf: BytesMut,
    /// Length of the frame whose prefix has been consumed but whose body is incomplete.
    body_len: Option<usize>,
    /// The error that ended this stream, repeated on every later call.
    failed: Option<Failure>,
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    TooLarge(u64),
    BadPrefix,
}

impl Failure {
    fn error(self) -> BitswapError {
        match self {
            Failure::TooLarge(len) => BitswapError::TooLarge { len },
            Failure::BadPrefix => BitswapError::BadLengthPrefix,
        }
    }
}

impl FrameDecoder {
    /// An empty decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete message body, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, BitswapError> {
        if let Some(failure) = self.failed {
            return Err(failure.error());
        }
        let len = match self.body_len {
            Some(len) => len,
            None => match self.read_prefix() {
                Ok(Some(len)) => len,
                Ok(None) => return Ok(None),
                Err(failure) => {
                    self.failed = Some(failure);
                    self.buf = BytesMut::new();
                    return Err(failure.error());
                }
            },
        };
        if self.buf.len() < len {
            self.body_len = Some(len);
            return Ok(None);
        }
        self.body_len = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Call at the end of the stream: an error if it stopped inside a frame.
    pub fn finish(&self) -> Result<(), BitswapError> {
        if let Some(failure) = self.failed {
            return Err(failure.error());
        }
        if self.buf.is_empty() && self.body_len.is_none() {
            return Ok(());
        }
        let prefix = self.body_len.map_or(0, |len| {
            let mut buf = unsigned_varint::encode::usize_buffer();
            unsigned_varint::encode::usize(len, &mut buf).len()
        });
        Err(BitswapError::Truncated { buffered: prefix + self.buf.len() })
    }

    /// Bytes held: a partial prefix or body, or frames not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn read_prefix(&mut self) -> Result<Option<usize>, Failure> {
        match unsigned_varint::decode::u64(&self.buf) {
            Ok((len, rest)) => {
                if len > MAX_MESSAGE_SIZE as u64 {
                    return Err(Failure::TooLarge(len));
                }
                let consumed = self.buf.len() - rest.len();
                self.buf.advance(consumed);
                Ok(Some(len as usize))
            }
            Err(unsigned_varint::decode::Error::Insufficient) => Ok(None),
            Err(_) => Err(Failure::BadPrefix),
        }
    }
}

/// Upper bound on what a message adds around its items: the wantlist field's key and length
/// (≤ 6 bytes), `full` (2) and `pendingBytes` (≤ 11, a negative int32 takes 10 varint bytes).
const SPLIT_OVERHEAD: usize = 6 + 2 + 11;

/// Pack `msg`, as a peer speaking `version` receives it ([`Message::for_version`]), into as few
/// messages as keep each encoding within `target` bytes and [`MAX_ENTRIES_PER_MESSAGE`]
/// entries. Items keep their order: wants, then presences, then blocks. A block is never split;
/// one too large for `target` travels alone. Always returns at least one message.
///
/// Only the first message carries `full` (the rest extend the wantlist it replaced). For 1.2.0,
/// each message's `pending_bytes` is `msg.pending_bytes` plus the block bytes in the messages
/// after it, saturating at `i32::MAX`.
pub fn split_into_messages(msg: &Message, version: Version, target: usize) -> Vec<Message> {
    let msg = msg.for_version(version);
    let mut packer = Packer::new(target);
    for w in msg.wants {
        let cost = field_cost(entry_to_proto(&w).encoded_len());
        packer.room(cost).wants.push(w);
    }
    for (cid, p) in msg.presences {
        let cost = field_cost(presence_to_proto(&cid, p).encoded_len());
        packer.room(cost).presences.push((cid, p));
    }
    for b in msg.blocks {
        let cost = match version {
            Version::V1_0_0 => field_cost(b.data.len()),
            Version::V1_1_0 | Version::V1_2_0 => field_cost(block_to_proto(&b).encoded_len()),
        };
        packer.room(cost).blocks.push(b);
    }
    let mut out = packer.finish();
    out[0].full = msg.full;
    if version.supports_have() {
        let mut later: i64 = 0;
        for m in out.iter_mut().rev() {
            let pending = i64::from(msg.pending_bytes) + later;
            m.pending_bytes = i32::try_from(pending).unwrap_or(i32::MAX);
            later += m.blocks.iter().map(|b| b.data.len() as i64).sum::<i64>();
        }
    }
    out
}

/// Bytes an item takes inside its repeated field: key, length, body.
fn field_cost(body_len: usize) -> usize {
    1 + prost::length_delimiter_len(body_len) + body_len
}

struct Packer {
    target: usize,
    out: Vec<Message>,
    cur: Message,
    size: usize,
    items: usize,
}

impl Packer {
    fn new(target: usize) -> Self {
        Packer { target, out: Vec::new(), cur: Message::default(), size: SPLIT_OVERHEAD, items: 0 }
    }

    /// The message the next item (of `cost` bytes) goes into, starting a new one if needed.
    fn room(&mut self, cost: usize) -> &mut Message {
        let full = self.size + cost > self.target || self.items == MAX_ENTRIES_PER_MESSAGE;
        if full && self.items > 0 {
            self.out.push(std::mem::take(&mut self.cur));
            self.size = SPLIT_OVERHEAD;
            self.items = 0;
        }
        self.size += cost;
        self.items += 1;
        &mut self.cur
    }

    fn finish(mut self) -> Vec<Message> {
        if self.items > 0 || self.out.is_empty() {
            self.out.push(self.cur);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// sha2-256 CIDv0 of some dag-pb node (34 bytes).
    const CID_V0: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
    /// CIDv1 raw sha2-256 of `hello world\n` (36 bytes).
    const CID_HELLO: &str = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
    /// CIDv1 raw sha2-256 of the empty block (36 bytes).
    const CID_EMPTY: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

    fn cid(text: &str) -> Cid {
        cids::parse(text).unwrap()
    }

    /// The CID of `data` in one of the four supported shapes (`kind` picks the shape).
    fn make_cid(kind: u8, codec: u64, data: &[u8]) -> Cid {
        match kind % 4 {
            0 => cids::cid_for(cid::Version::V0, cids::DAG_PB, HashFn::Sha2_256, data),
            1 => cids::cid_for(cid::Version::V1, codec, HashFn::Sha2_256, data),
            2 => cids::cid_for(cid::Version::V1, codec, HashFn::Blake3, data),
            _ => Cid::new_v1(codec, Multihash::wrap(cids::IDENTITY, data).unwrap()),
        }
    }

    fn arb_codec() -> impl Strategy<Value = u64> {
        prop_oneof![Just(cids::RAW), Just(cids::DAG_PB), Just(cids::DAG_CBOR), 0u64..(1 << 40),]
    }

    fn arb_cid() -> impl Strategy<Value = Cid> {
        (any::<u8>(), arb_codec(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(kind, codec, data)| make_cid(kind, codec, &data))
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        (any::<u8>(), arb_codec(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(
            |(kind, codec, mut data)| {
                if kind % 4 == 3 {
                    data.truncate(64);
                }
                Block::new_unchecked(make_cid(kind, codec, &data), Bytes::from(data))
            },
        )
    }

    fn arb_want() -> impl Strategy<Value = WantEntry> {
        (arb_cid(), any::<i32>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(cid, priority, cancel, have, send_dont_have)| WantEntry {
                cid,
                priority,
                cancel,
                want: if have { WantType::Have } else { WantType::Block },
                send_dont_have,
            },
        )
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let presence = (arb_cid(), any::<bool>())
            .prop_map(|(c, have)| (c, if have { Presence::Have } else { Presence::DontHave }));
        (
            any::<bool>(),
            proptest::collection::vec(arb_want(), 0..6),
            proptest::collection::vec(arb_block(), 0..4),
            proptest::collection::vec(presence, 0..6),
            any::<i32>(),
        )
            .prop_map(|(full, wants, blocks, presences, pending_bytes)| Message {
                full,
                wants,
                blocks,
                presences,
                pending_bytes,
            })
    }

    fn entries(m: &Message) -> usize {
        m.wants.len() + m.blocks.len() + m.presences.len()
    }

    fn want(cid: Cid, want: WantType, cancel: bool) -> WantEntry {
        WantEntry { cid, priority: 1, cancel, want, send_dont_have: true }
    }

    /// The message annotated in `specs/bitswap.md`: one of each 1.2.0 item.
    fn snapshot_message() -> Message {
        Message {
            full: false,
            wants: vec![want(cid(CID_V0), WantType::Have, false)],
            blocks: vec![Block::new_unchecked(cid(CID_HELLO), Bytes::from_static(b"hello world\n"))],
            presences: vec![(cid(CID_EMPTY), Presence::DontHave)],
            pending_bytes: 1024,
        }
    }

    #[test]
    fn snapshot_1_2_0() {
        let expected = [
            "0a2c", // 1 wantlist, 44 bytes
            "0a2a", //   1 entry, 42 bytes
            "0a22", //     1 block (CID), 34 bytes: CIDv0
            "122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e",
            "1001",                     //     2 priority = 1
            "2001",                     //     4 wantType = Have
            "2801",                     //     5 sendDontHave = true
            "1a14",                     // 3 payload block, 20 bytes
            "0a04",                     //   1 prefix, 4 bytes
            "01551220",                 //     CIDv1, raw, sha2-256, 32 bytes
            "120c",                     //   2 data, 12 bytes
            "68656c6c6f20776f726c640a", // "hello world\n"
            "2228",                     // 4 blockPresence, 40 bytes
            "0a24",                     //   1 cid, 36 bytes
            "01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "1001",   //   2 type = DontHave
            "288008", // 5 pendingBytes = 1024
        ]
        .concat();
        let msg = snapshot_message();
        let bytes = msg.encode(Version::V1_2_0);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(bytes.len(), 113);
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        let framed = msg.encode_framed(Version::V1_2_0).unwrap();
        assert_eq!(framed, frame(&bytes));
        assert_eq!(framed[0], 0x71);
    }

    #[test]
    fn downgrades_drop_what_older_versions_cannot_carry() {
        let v1_block = Block::new_unchecked(cid(CID_HELLO), Bytes::from_static(b"hello world\n"));
        let v0_data = Bytes::from_static(b"\x0a\x02\x08\x01");
        let v0_cid = cids::cid_for(cid::Version::V0, cids::DAG_PB, HashFn::Sha2_256, &v0_data);
        let v0_block = Block::new_unchecked(v0_cid, v0_data);
        let msg = Message {
            full: true,
            wants: vec![
                want(cid(CID_V0), WantType::Have, false),
                want(cid(CID_EMPTY), WantType::Have, true),
                want(cid(CID_HELLO), WantType::Block, false),
            ],
            blocks: vec![v1_block.clone(), v0_block.clone()],
            presences: vec![(cid(CID_EMPTY), Presence::Have)],
            pending_bytes: 7,
        };
        let plain = |c: &str, cancel| WantEntry { send_dont_have: false, ..want(cid(c), WantType::Block, cancel) };
        let v11 = Message {
            full: true,
            wants: vec![plain(CID_EMPTY, true), plain(CID_HELLO, false)],
            blocks: vec![v1_block, v0_block.clone()],
            presences: vec![],
            pending_bytes: 0,
        };
        assert_eq!(msg.for_version(Version::V1_1_0), v11);
        assert_eq!(msg.for_version(Version::V1_2_0), msg);
        let v10 = Message { blocks: vec![v0_block], ..v11.clone() };
        assert_eq!(msg.for_version(Version::V1_0_0), v10);

        // 1.0.0 writes bare bytes in `blocks`, 1.1.0 writes `payload`; neither writes 4 or 5.
        let pb = proto::Message::decode(&msg.encode(Version::V1_0_0)[..]).unwrap();
        assert_eq!((pb.blocks.len(), pb.payload.len()), (1, 0));
        let pb = proto::Message::decode(&msg.encode(Version::V1_1_0)[..]).unwrap();
        assert_eq!((pb.blocks.len(), pb.payload.len()), (0, 2));
        assert!(pb.block_presences.is_empty() && pb.pending_bytes == 0);
    }

    #[test]
    fn legacy_blocks_field_decodes_as_cidv0() {
        let pb = proto::Message { blocks: vec![Bytes::from_static(b"hello world\n")], ..Default::default() };
        let msg = Message::decode(&pb.encode_to_vec()).unwrap();
        let block = &msg.blocks[0];
        assert_eq!(block.cid.version(), cid::Version::V0);
        assert_eq!(block.cid.codec(), cids::DAG_PB);
        // Same sha2-256 digest as the CIDv1 raw name of these bytes.
        assert_eq!(block.cid.hash(), cid(CID_HELLO).hash());
        cids::verify(&block.cid, &block.data).unwrap();
    }

    #[test]
    fn unknown_hash_in_prefix_is_a_typed_error() {
        let pb = proto::Message {
            payload: vec![
                block_to_proto(&snapshot_message().blocks[0]),
                proto::Block {
                    prefix: vec![0x01, 0x55, 0x13, 0x40], // sha2-512, 64 bytes
                    data: Bytes::from_static(b"x"),
                },
            ],
            ..Default::default()
        };
        match Message::decode(&pb.encode_to_vec()) {
            Err(BitswapError::Prefix { index, source }) => {
                assert_eq!(index, 1);
                assert_eq!(source, PrefixError::UnsupportedHash(0x13));
            }
            other => panic!("expected a prefix error, got {other:?}"),
        }
    }

    #[test]
    fn prefix_errors() {
        let cases: [(&[u8], PrefixError); 7] = [
            (&[], PrefixError::Malformed("expected four varints")),
            (&[0x01, 0x55, 0x12], PrefixError::Malformed("expected four varints")),
            (&[0x01, 0x55, 0x12, 0x20, 0x00], PrefixError::Malformed("trailing bytes")),
            (&[0x02, 0x55, 0x12, 0x20], PrefixError::UnsupportedVersion(2)),
            (&[0x00, 0x55, 0x12, 0x20], PrefixError::InvalidV0),
            (&[0x01, 0x55, 0x12, 0x14], PrefixError::UnsupportedDigestLength { code: 0x12, len: 20 }),
            (&[0x01, 0x55, 0x00, 0x41], PrefixError::IdentityTooLong { len: 65 }),
        ];
        for (prefix, err) in cases {
            assert_eq!(cid_from_prefix(prefix, &[7; 65]), Err(err), "{prefix:02x?}");
        }
        assert_eq!(prefix_of(&cid(CID_V0)), [0x00, 0x70, 0x12, 0x20]);
        assert_eq!(prefix_of(&cid(CID_HELLO)), [0x01, 0x55, 0x12, 0x20]);
    }

    #[test]
    fn limits_are_enforced_on_decode() {
        let entry = |block: Vec<u8>, want_type: i32| proto::Entry {
            block,
            priority: 0,
            cancel: false,
            want_type,
            send_dont_have: false,
        };
        let with_entry = |e| proto::Message {
            wantlist: Some(proto::Wantlist { entries: vec![e], full: false }),
            ..Default::default()
        };
        // A 169-byte "CID" is refused before parsing.
        let big = with_entry(entry(vec![0x01; MAX_CID_SIZE + 1], 0)).encode_to_vec();
        assert!(matches!(Message::decode(&big), Err(BitswapError::CidTooLarge { len: 169 })));
        let bad_type = with_entry(entry(cid(CID_V0).to_bytes(), 7)).encode_to_vec();
        assert!(matches!(Message::decode(&bad_type), Err(BitswapError::UnknownWantType(7))));
        let presence = proto::Message {
            block_presences: vec![proto::BlockPresence { cid: cid(CID_V0).to_bytes(), r#type: 5 }],
            ..Default::default()
        };
        assert!(matches!(Message::decode(&presence.encode_to_vec()), Err(BitswapError::UnknownPresenceType(5))));

        let block = proto::Message {
            payload: vec![proto::Block {
                prefix: vec![0x01, 0x55, 0x12, 0x20],
                data: Bytes::from(vec![0; MAX_BLOCK_SIZE + 1]),
            }],
            ..Default::default()
        };
        assert!(matches!(
            Message::decode(&block.encode_to_vec()),
            Err(BitswapError::BlockTooLarge { len }) if len == MAX_BLOCK_SIZE + 1
        ));
        let body = vec![0; MAX_MESSAGE_SIZE + 1];
        assert!(matches!(Message::decode(&body), Err(BitswapError::TooLarge { .. })));

        // 65 537 empty legacy blocks: two bytes each on the wire, refused before decoding.
        let many = proto::Message { blocks: vec![Bytes::new(); MAX_ENTRIES_PER_MESSAGE + 1], ..Default::default() };
        assert!(matches!(
            Message::decode(&many.encode_to_vec()),
            Err(BitswapError::TooManyEntries { count }) if count == MAX_ENTRIES_PER_MESSAGE + 1
        ));
        // Groups (wire types 3 and 4) do not exist in proto3 and are refused.
        assert!(matches!(Message::decode(&[0x0b, 0x0c]), Err(BitswapError::Malformed(_))));
    }

    #[test]
    fn entry_count_sees_every_wantlist_occurrence() {
        // protobuf merges repeated occurrences of a message field; the count must too.
        let one = proto::Message {
            wantlist: Some(proto::Wantlist {
                entries: vec![entry_to_proto(&want(cid(CID_V0), WantType::Block, false)); 3],
                full: false,
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let twice = [one.clone(), one].concat();
        assert_eq!(count_entries(&twice).unwrap(), 6);
        assert_eq!(Message::decode(&twice).unwrap().wants.len(), 6);
    }

    #[test]
    fn frame_prefix_over_limit_fails_before_the_body() {
        let mut buf = unsigned_varint::encode::usize_buffer();
        let over = unsigned_varint::encode::usize(MAX_MESSAGE_SIZE + 1, &mut buf).to_vec();
        let mut dec = FrameDecoder::new();
        for (i, byte) in over.iter().enumerate() {
            dec.feed(&[*byte]);
            let got = dec.next_frame();
            if i + 1 < over.len() {
                assert!(matches!(got, Ok(None)));
            } else {
                assert!(matches!(got, Err(BitswapError::TooLarge { len }) if len == MAX_MESSAGE_SIZE as u64 + 1));
            }
        }
        // The decoder stays failed and holds nothing.
        dec.feed(&[0; 100]);
        assert!(matches!(dec.next_frame(), Err(BitswapError::TooLarge { .. })));
        assert!(dec.finish().is_err());
        assert_eq!(dec.buffered(), 0);

        // Exactly 4 MiB is allowed: the prefix is consumed and the body awaited.
        let mut buf = unsigned_varint::encode::usize_buffer();
        let max = unsigned_varint::encode::usize(MAX_MESSAGE_SIZE, &mut buf);
        let mut dec = FrameDecoder::new();
        assert_eq!(max, [0x80, 0x80, 0x80, 0x02]);
        dec.feed(max);
        assert!(matches!(dec.next_frame(), Ok(None)));
        assert_eq!(dec.buffered(), 0);
        assert!(matches!(dec.finish(), Err(BitswapError::Truncated { buffered: 4 })));
    }

    #[test]
    fn frame_errors() {
        let mut dec = FrameDecoder::new();
        dec.feed(&[0xff; 11]);
        assert!(matches!(dec.next_frame(), Err(BitswapError::BadLengthPrefix)));
        let mut dec = FrameDecoder::new();
        dec.feed(&[0x80, 0x00]); // non-minimal zero
        assert!(matches!(dec.next_frame(), Err(BitswapError::BadLengthPrefix)));
        let mut dec = FrameDecoder::new();
        let framed = frame(b"abc");
        dec.feed(&framed[..3]);
        assert!(matches!(dec.next_frame(), Ok(None)));
        assert!(matches!(dec.finish(), Err(BitswapError::Truncated { buffered: 3 })));
        dec.feed(&framed[3..]);
        assert_eq!(dec.next_frame().unwrap().unwrap(), &b"abc"[..]);
        dec.finish().unwrap();
        // An empty frame is an empty message.
        let mut dec = FrameDecoder::new();
        dec.feed(&[0x00]);
        let body = dec.next_frame().unwrap().unwrap();
        assert_eq!(Message::decode(&body).unwrap(), Message::default());
    }

    #[test]
    fn encode_framed_refuses_oversize_bodies() {
        let data = Bytes::from(vec![1; MAX_BLOCK_SIZE]);
        let block = Block::new_unchecked(make_cid(1, cids::RAW, &data), data);
        let msg = Message { blocks: vec![block.clone(), block.clone(), block], ..Default::default() };
        assert!(matches!(msg.encode_framed(Version::V1_2_0), Err(BitswapError::TooLarge { .. })));
    }

    #[test]
    fn split_packs_blocks_under_the_target() {
        let blocks: Vec<Block> = (0..7u8)
            .map(|i| {
                let data = Bytes::from(vec![i; 600 * 1024]);
                Block::new_unchecked(make_cid(1, cids::RAW, &data), data)
            })
            .collect();
        let msg = Message {
            full: true,
            wants: vec![want(cid(CID_V0), WantType::Have, false)],
            blocks,
            presences: vec![(cid(CID_EMPTY), Presence::DontHave)],
            pending_bytes: 5,
        };
        let parts = split_into_messages(&msg, Version::V1_2_0, TARGET_MESSAGE_SIZE);
        let shape: Vec<_> = parts.iter().map(|m| (m.wants.len(), m.presences.len(), m.blocks.len())).collect();
        assert_eq!(shape, [(1, 1, 3), (0, 0, 3), (0, 0, 1)]);
        let pending: Vec<_> = parts.iter().map(|m| m.pending_bytes).collect();
        assert_eq!(pending, [5 + 4 * 600 * 1024, 5 + 600 * 1024, 5]);
        assert!(parts[0].full && !parts[1].full && !parts[2].full);
        for part in &parts {
            assert!(part.encode(Version::V1_2_0).len() <= TARGET_MESSAGE_SIZE);
        }
    }

    #[test]
    fn split_edge_cases() {
        // An empty message still goes out once (an empty full wantlist means "want nothing").
        let empty = Message { full: true, ..Default::default() };
        assert_eq!(split_into_messages(&empty, Version::V1_2_0, 100), vec![empty]);
        // A block bigger than the target travels alone, unsplit.
        let data = Bytes::from(vec![9; 5000]);
        let block = Block::new_unchecked(make_cid(1, cids::RAW, &data), data);
        let msg = Message {
            wants: vec![want(cid(CID_V0), WantType::Block, false)],
            blocks: vec![block.clone()],
            ..Default::default()
        };
        let parts = split_into_messages(&msg, Version::V1_1_0, 1000);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].blocks, [block]);
        // The entry cap applies even when the bytes would fit.
        let many = Message {
            wants: vec![want(cid(CID_V0), WantType::Block, false); MAX_ENTRIES_PER_MESSAGE + 1],
            ..Default::default()
        };
        let parts = split_into_messages(&many, Version::V1_2_0, usize::MAX / 2);
        let sizes: Vec<_> = parts.iter().map(|m| m.wants.len()).collect();
        assert_eq!(sizes, [MAX_ENTRIES_PER_MESSAGE, 1]);
    }

    #[test]
    fn protocol_names() {
        for v in Version::ALL {
            assert_eq!(Version::from_protocol_name(v.protocol_name()), Some(v));
        }
        assert_eq!(Version::from_protocol_name(PROTOCOL_LEGACY), Some(Version::V1_0_0));
        assert_eq!(Version::from_protocol_name("/ipfs/bitswap/1.3.0"), None);
        assert_eq!(PROTOCOLS[0], "/ipfs/bitswap/1.2.0");
        assert!(Version::V1_2_0.supports_have() && !Version::V1_1_0.supports_have());
    }

    proptest! {
        #[test]
        fn round_trips_every_version(msg in arb_message()) {
            prop_assert_eq!(msg.for_version(Version::V1_2_0), msg.clone());
            for v in Version::ALL {
                let bytes = msg.encode(v);
                let expected = msg.for_version(v);
                prop_assert_eq!(Message::decode(&bytes).unwrap(), expected.clone());
                prop_assert_eq!(Message::decode_bytes(Bytes::from(bytes.clone())).unwrap(), expected.clone());
                // Encoding what survives gives the same bytes: the drops are exactly for_version.
                prop_assert_eq!(expected.encode(v), bytes.clone());
                let mut dec = FrameDecoder::new();
                dec.feed(&msg.encode_framed(v).unwrap());
                prop_assert_eq!(dec.next_frame().unwrap().unwrap(), Bytes::from(bytes));
                dec.finish().unwrap();
            }
        }

        #[test]
        fn prefix_round_trips(block in arb_block()) {
            prop_assert_eq!(cid_from_prefix(&prefix_of(&block.cid), &block.data), Ok(block.cid));
        }

        #[test]
        fn frames_survive_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5),
            chunk in 1usize..64,
        ) {
            let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                dec.feed(piece);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(f.to_vec());
                }
            }
            dec.finish().unwrap();
            prop_assert_eq!(got, bodies);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = Message::decode(&bytes);
            let mut dec = FrameDecoder::new();
            dec.feed(&bytes);
            while let Ok(Some(f)) = dec.next_frame() {
                let _ = Message::decode_bytes(f);
            }
            let _ = dec.finish();
        }

        #[test]
        fn mutated_messages_never_panic(
            msg in arb_message(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = msg.encode(Version::V1_2_0);
            if !bytes.is_empty() {
                for (at, byte) in edits {
                    let i = at % bytes.len();
                    bytes[i] = byte;
                }
            }
            if let Ok(back) = Message::decode(&bytes) {
                // Whatever decodes names its blocks by their bytes.
                for b in &back.blocks {
                    prop_assert!(cids::verify(&b.cid, &b.data).is_ok());
                }
            }
        }

        #[test]
        fn split_keeps_order_and_bounds(
            msg in arb_message(),
            target in 64usize..1500,
            v in prop_oneof![Just(Version::V1_0_0), Just(Version::V1_1_0), Just(Version::V1_2_0)],
        ) {
            let parts = split_into_messages(&msg, v, target);
            let want = msg.for_version(v);
            prop_assert!(!parts.is_empty());
            for (i, part) in parts.iter().enumerate() {
                let len = part.encode(v).len();
                prop_assert!(len <= target || entries(part) == 1, "part {} is {} bytes", i, len);
                prop_assert_eq!(part.full, i == 0 && msg.full);
                prop_assert_eq!(&part.for_version(v), part);
                prop_assert!(i == 0 || !part.is_empty());
            }
            let wants: Vec<_> = parts.iter().flat_map(|m| m.wants.clone()).collect();
            let blocks: Vec<_> = parts.iter().flat_map(|m| m.blocks.clone()).collect();
            let presences: Vec<_> = parts.iter().flat_map(|m| m.presences.clone()).collect();
            prop_assert_eq!(wants, want.wants);
            prop_assert_eq!(blocks, want.blocks);
            prop_assert_eq!(presences, want.presences);
            prop_assert_eq!(parts.last().unwrap().pending_bytes, want.pending_bytes);
        }
    }
}
