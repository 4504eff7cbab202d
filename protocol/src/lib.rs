//! Pure IPFS formats for cairn. Nothing here does I/O, spawns tasks or reads clocks, so every
//! decoder can be fuzzed and every encoder checked against byte vectors.
//!
//! Module map:
//! - [`cids`]: CID parsing/printing, codec and hash constants, block hashing and verification.
//! - [`chunker`]: fixed-size, buzhash and rabin chunkers (kubo's algorithms and parameters).
//! - [`dagpb`]: canonical dag-pb node encoding and strict decoding.
//! - [`unixfs`]: the UnixFS `Data` message carried inside dag-pb nodes.
//! - [`profile`]: import settings (`unixfs-v1-2025`, `unixfs-v0-2015` and overrides).
//! - [`file`]: streaming file DAG builders (balanced and trickle).
//! - [`dir`]: directory builders (basic and HAMT-sharded).
//! - [`hamt`]: HAMT shard layout shared by the builder and the reader.
//! - [`reader`]: path resolution and byte-range planning over a DAG.
//! - [`car`]: CARv1 streaming reader and writer, CARv2 reader.
//! - [`block`]: a verified block (CID + bytes).
//! - [`bitswap`]: Bitswap 1.0.0/1.1.0/1.2.0 messages, framing and batching.
//! - [`dht`]: the Kademlia DHT message, for the RPCs the batched provider sends itself.
//! - [`records`]: IPNS and `/pk/` value records: validation, selection, creation.
//! - [`names`]: IPNS names as text (`k51…`), parsed from every form kubo accepts, and
//!   their PubSub topics.
//! - [`fetch`]: the libp2p Fetch protocol's messages (the latest IPNS record on request).

pub mod bitswap;
pub mod block;
pub mod car;
pub mod chunker;
pub mod cids;
pub mod dagpb;
pub mod dht;
pub mod dir;
pub mod fetch;
pub mod file;
pub mod hamt;
pub mod names;
pub mod profile;
pub mod reader;
pub mod records;
pub mod unixfs;
pub mod varint;

pub use block::Block;
pub use cid::Cid;
