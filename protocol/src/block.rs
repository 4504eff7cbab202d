//! A block: a CID together with the bytes it names.

use bytes::Bytes;
use cid::Cid;

use crate::cids::{self, CidError};

/// A CID and its bytes. Construct with [`Block::new_verified`] for bytes from outside, or
/// [`Block::new_unchecked`] for bytes this process just hashed itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block's CID.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Bytes,
}

impl Block {
    /// Wrap bytes whose CID the caller computed from them.
    pub fn new_unchecked(cid: Cid, data: Bytes) -> Self {
        Block { cid, data }
    }

    /// Wrap bytes from an untrusted source, checking them against the CID.
    pub fn new_verified(cid: Cid, data: Bytes) -> Result<Self, CidError> {
        cids::verify(&cid, &data)?;
        Ok(Block { cid, data })
    }
}
