//! The UnixFS `Data` message (proto2) that dag-pb nodes carry, and typed views of it.
//!
//! prost encodes in tag order, which is also the order kubo writes, and `blocksizes` is declared
//! unpacked as proto2 requires, so prost is used directly here.

use bytes::Bytes;
use prost::Message;

/// UnixFS node kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// Legacy leaf type used by kubo's trickle layout.
    Raw = 0,
    /// A plain directory.
    Directory = 1,
    /// A file (leaf or internal node).
    File = 2,
    /// Unused legacy metadata node.
    Metadata = 3,
    /// A symbolic link; `data` is the target.
    Symlink = 4,
    /// A HAMT-sharded directory node.
    HamtShard = 5,
}

/// Modification time (UnixFS 1.5).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct UnixTime {
    /// Seconds since the Unix epoch.
    #[prost(int64, required, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, when known.
    #[prost(fixed32, optional, tag = "2")]
    pub fractional_nanoseconds: Option<u32>,
}

/// The UnixFS `Data` protobuf message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Data {
    /// Node kind ([`DataType`]).
    #[prost(enumeration = "DataType", required, tag = "1")]
    pub r#type: i32,
    /// File bytes (leaves), symlink target, or HAMT bitfield.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub data: Option<Bytes>,
    /// Total file bytes below this node.
    #[prost(uint64, optional, tag = "3")]
    pub filesize: Option<u64>,
    /// File bytes below each link, in link order.
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    pub blocksizes: Vec<u64>,
    /// HAMT hash function (murmur3-x64-64 = 0x22).
    #[prost(uint64, optional, tag = "5")]
    pub hash_type: Option<u64>,
    /// HAMT fanout.
    #[prost(uint64, optional, tag = "6")]
    pub fanout: Option<u64>,
    /// Unix permission bits (UnixFS 1.5, opt-in).
    #[prost(uint32, optional, tag = "7")]
    pub mode: Option<u32>,
    /// Modification time (UnixFS 1.5, opt-in).
    #[prost(message, optional, tag = "8")]
    pub mtime: Option<UnixTime>,
}

/// Why a UnixFS payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnixFsError {
    /// The dag-pb node has no Data field.
    #[error("unixfs: dag-pb node has no Data")]
    MissingData,
    /// The protobuf did not decode.
    #[error("unixfs: bad Data message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A type number outside the enum.
    #[error("unixfs: unknown node type {0}")]
    UnknownType(i32),
}

impl Data {
    /// A new message of the given kind with nothing else set.
    pub fn new(kind: DataType) -> Self {
        Data {
            r#type: kind as i32,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// The node kind, refusing unknown numbers.
    pub fn kind(&self) -> Result<DataType, UnixFsError> {
        DataType::try_from(self.r#type).map_err(|_| UnixFsError::UnknownType(self.r#type))
    }

    /// Serialize to protobuf bytes.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Parse protobuf bytes.
    pub fn from_bytes(bytes: &Bytes) -> Result<Self, UnixFsError> {
        let data = Data::decode(bytes.clone())?;
        data.kind()?;
        Ok(data)
    }
}

/// Optional POSIX metadata recorded in UnixFS 1.5 nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits (`mode & 0o7777`).
    pub mode: Option<u32>,
    /// Modification time as (seconds, nanoseconds).
    pub mtime: Option<(i64, u32)>,
}

impl Metadata {
    /// Copy the metadata into a `Data` message.
    pub fn apply(&self, data: &mut Data) {
        data.mode = self.mode;
        data.mtime = self
            .mtime
            .map(|(seconds, nanos)| UnixTime { seconds, fractional_nanoseconds: (nanos != 0).then_some(nanos) });
    }

    /// Read the metadata back from a `Data` message.
    pub fn from_data(data: &Data) -> Self {
        Metadata { mode: data.mode, mtime: data.mtime.map(|t| (t.seconds, t.fractional_nanoseconds.unwrap_or(0))) }
    }
}

/// One child of a directory, basic or HAMT-sharded (here, below both builders, so that
/// neither imports the other for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry name (one path component).
    pub name: String,
    /// The child's root CID.
    pub cid: cid::Cid,
    /// Cumulative size of the child DAG (its root block plus everything below it).
    pub tsize: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_and_dir_bytes() {
        let mut f = Data::new(DataType::File);
        f.filesize = Some(0);
        assert_eq!(f.to_bytes().as_ref(), [0x08, 0x02, 0x18, 0x00]);
        assert_eq!(Data::new(DataType::Directory).to_bytes().as_ref(), [0x08, 0x01]);
        // Raw = 0 is still written, because Type is required.
        assert_eq!(Data::new(DataType::Raw).to_bytes().as_ref(), [0x08, 0x00]);
    }

    #[test]
    fn blocksizes_are_unpacked() {
        let mut f = Data::new(DataType::File);
        f.filesize = Some(3);
        f.blocksizes = vec![1, 2];
        assert_eq!(f.to_bytes().as_ref(), [0x08, 0x02, 0x18, 0x03, 0x20, 0x01, 0x20, 0x02]);
        assert_eq!(Data::from_bytes(&f.to_bytes()).unwrap(), f);
    }

    #[test]
    fn rejects_unknown_type() {
        assert!(Data::from_bytes(&Bytes::from_static(&[0x08, 0x09])).is_err());
        assert!(Data::from_bytes(&Bytes::from_static(&[0xff])).is_err());
    }
}
