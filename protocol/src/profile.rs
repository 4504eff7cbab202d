//! Import settings: everything that decides which CID a file or directory gets.
//!
//! Two named profiles from IPIP-499: `unixfs-v1-2025` (the default) and `unixfs-v0-2015`
//! (kubo's legacy defaults, CIDv0). Single settings can then be overridden, as kubo's
//! `ipfs add` flags do.

use cid::{Cid, Version};

use crate::chunker::{ChunkerError, ChunkerSpec};
use crate::cids::{self, HashFn};

/// Shape of a file DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// All leaves at the same depth (kubo and Helia's default).
    Balanced,
    /// kubo's trickle DAG, for streaming append-only data.
    Trickle,
}

/// How a directory's size is estimated when deciding to shard it into a HAMT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HamtSizing {
    /// Sum of link name and CID byte lengths (kubo, Helia, `unixfs-v0-2015`).
    LinksBytes,
    /// The full serialized dag-pb directory block (`unixfs-v1-2025`).
    BlockBytes,
}

/// Every setting that affects the CIDs of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSettings {
    /// CID version of dag-pb nodes (raw leaves are always CIDv1).
    pub cid_version: Version,
    /// Store leaves as raw blocks instead of dag-pb UnixFS nodes.
    pub raw_leaves: bool,
    /// How file bytes are cut into leaves.
    pub chunker: ChunkerSpec,
    /// Most links in one file node.
    pub max_links: usize,
    /// Balanced or trickle file DAG.
    pub layout: Layout,
    /// Hash function of every block.
    pub hash: HashFn,
    /// A directory whose estimated size is above this many bytes becomes a HAMT.
    pub hamt_threshold: usize,
    /// Which size estimate is compared with `hamt_threshold`.
    pub hamt_sizing: HamtSizing,
    /// Children per HAMT node.
    pub hamt_fanout: usize,
    /// Sub-trees per depth in the trickle layout (kubo: 4).
    pub trickle_repeat: usize,
}

/// Errors in import settings.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A profile name that does not exist.
    #[error("unknown import profile {0:?}: use unixfs-v1-2025 or unixfs-v0-2015")]
    UnknownProfile(String),
    /// A bad chunker.
    #[error(transparent)]
    Chunker(#[from] ChunkerError),
    /// Other invalid combinations.
    #[error("invalid import settings: {0}")]
    Invalid(String),
}

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "unixfs-v1-2025";

impl Default for ImportSettings {
    fn default() -> Self {
        Self::v1_2025()
    }
}

impl ImportSettings {
    /// `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links, HAMT above 256 KiB of
    /// serialized directory block.
    pub fn v1_2025() -> Self {
        ImportSettings {
            cid_version: Version::V1,
            raw_leaves: true,
            chunker: ChunkerSpec::Fixed(1024 * 1024),
            max_links: 1024,
            layout: Layout::Balanced,
            hash: HashFn::Sha2_256,
            hamt_threshold: 256 * 1024,
            hamt_sizing: HamtSizing::BlockBytes,
            hamt_fanout: 256,
            trickle_repeat: 4,
        }
    }

    /// `unixfs-v0-2015`: kubo's legacy defaults (CIDv0, 256 KiB chunks, 174 links, dag-pb
    /// leaves, HAMT above 256 KiB of link bytes).
    pub fn v0_2015() -> Self {
        ImportSettings {
            cid_version: Version::V0,
            raw_leaves: false,
            chunker: ChunkerSpec::Fixed(256 * 1024),
            max_links: 174,
            layout: Layout::Balanced,
            hash: HashFn::Sha2_256,
            hamt_threshold: 256 * 1024,
            hamt_sizing: HamtSizing::LinksBytes,
            hamt_fanout: 256,
            trickle_repeat: 4,
        }
    }

    /// Settings of a named profile.
    pub fn profile(name: &str) -> Result<Self, ProfileError> {
        match name {
            "unixfs-v1-2025" | "v1" => Ok(Self::v1_2025()),
            "unixfs-v0-2015" | "legacy" | "kubo" => Ok(Self::v0_2015()),
            other => Err(ProfileError::UnknownProfile(other.to_string())),
        }
    }

    /// Set the CID version the way kubo's `--cid-version` does: unless raw leaves were set
    /// explicitly (pass `raw_leaves_explicit`), version 1 implies raw leaves and version 0
    /// implies dag-pb leaves.
    pub fn set_cid_version(&mut self, version: Version, raw_leaves_explicit: bool) {
        self.cid_version = version;
        if !raw_leaves_explicit {
            self.raw_leaves = version == Version::V1;
        }
    }

    /// Check the combination and apply kubo's implications (a non-sha2-256 hash needs CIDv1).
    pub fn validate(mut self) -> Result<Self, ProfileError> {
        if self.hash != HashFn::Sha2_256 {
            self.cid_version = Version::V1;
        }
        if self.max_links < 2 {
            return Err(ProfileError::Invalid("max-links must be at least 2".into()));
        }
        if !self.hamt_fanout.is_power_of_two() || !(8..=1024).contains(&self.hamt_fanout) {
            return Err(ProfileError::Invalid("HAMT fanout must be a power of two between 8 and 1024".into()));
        }
        if self.trickle_repeat == 0 {
            return Err(ProfileError::Invalid("trickle repeat must be at least 1".into()));
        }
        Ok(self)
    }

    /// CID of a dag-pb node with these settings.
    pub fn node_cid(&self, bytes: &[u8]) -> Cid {
        cids::cid_for(self.cid_version, cids::DAG_PB, self.hash, bytes)
    }

    /// CID of a raw leaf with these settings (raw blocks are always CIDv1).
    pub fn raw_cid(&self, bytes: &[u8]) -> Cid {
        cids::cid_for(Version::V1, cids::RAW, self.hash, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_implications() {
        assert_eq!(ImportSettings::profile("unixfs-v0-2015").unwrap().max_links, 174);
        assert!(ImportSettings::profile("nope").is_err());
        let mut s = ImportSettings::v0_2015();
        s.set_cid_version(Version::V1, false);
        assert!(s.raw_leaves);
        let mut s = ImportSettings::v0_2015();
        s.hash = HashFn::Blake3;
        assert_eq!(s.validate().unwrap().cid_version, Version::V1);
    }
}
