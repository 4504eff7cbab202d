//! A follow as the store keeps it ([`Records::Follows`], JSON, keyed by what is followed):
//! the version held, the version being fetched, the newest record of the name, the versions
//! waiting to be unpinned. Written after every change, so a follow and its fetch in flight
//! resume after a restart.

use cairn_protocol::names::Name;
use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};

use crate::store::{Records, Store, StoreError};

/// A CID kept as its text in the JSON record (readable with `sled` tools, stable across
/// serde formats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Root(pub(crate) Cid);

impl Serialize for Root {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Root, D::Error> {
        let text = String::deserialize(d)?;
        Cid::try_from(text.as_str()).map(Root).map_err(serde::de::Error::custom)
    }
}

/// A version of what is followed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Version {
    /// Its root.
    pub(crate) cid: Root,
    /// The sequence number of the record that pointed at it (0 for a CID followed).
    pub(crate) sequence: u64,
}

/// The complete version held (pinned), with what it cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Held {
    /// The version.
    pub(crate) version: Version,
    /// Blocks in it.
    pub(crate) blocks: u64,
    /// Bytes in it (as fetched).
    pub(crate) bytes: u64,
    /// Unix seconds when it became the version held.
    pub(crate) since: u64,
}

/// One follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Follow {
    /// What is followed: a name (`k51…`) or a CID, as printed.
    pub(crate) target: String,
    /// The label (`--as`); the pins of this follow are named `follow:{label}`.
    pub(crate) label: String,
    /// Versions larger than this are refused.
    pub(crate) max_bytes: u64,
    /// The last complete version, pinned.
    pub(crate) held: Option<Held>,
    /// The version being fetched (never pinned until complete).
    pub(crate) fetching: Option<Version>,
    /// A version refused (too large): not fetched again.
    #[serde(default)]
    pub(crate) refused: Option<Root>,
    /// Superseded versions and the Unix second after which their pin goes.
    #[serde(default)]
    pub(crate) superseded: Vec<(Root, u64)>,
    /// Unix seconds of the last check, 0 before the first.
    pub(crate) last_check: u64,
    /// What went wrong last, until a check succeeds.
    pub(crate) last_error: Option<String>,
    /// Consecutive failed checks (the backoff).
    #[serde(default)]
    pub(crate) failures: u32,
    /// The newest valid record of the name (signed by its publisher; kept and re-put here).
    #[serde(default)]
    pub(crate) record: Option<Vec<u8>>,
    /// That record's sequence number.
    #[serde(default)]
    pub(crate) record_sequence: Option<u64>,
    /// That record's end of life, Unix nanoseconds.
    #[serde(default)]
    pub(crate) record_eol: Option<i128>,
    /// Unix seconds when the follow was added.
    pub(crate) added: u64,
}

impl Follow {
    /// The name followed, if a name is.
    pub(crate) fn name(&self) -> Option<Name> {
        self.target.parse().ok()
    }

    /// The name of this follow's pins.
    pub(crate) fn pin_name(&self) -> String {
        format!("follow:{}", self.label)
    }
}

/// Every follow in the store.
pub(crate) fn all(store: &Store) -> Result<Vec<Follow>, StoreError> {
    let mut out = Vec::new();
    store.for_each_record(Records::Follows, &mut |k, v| {
        match serde_json::from_slice::<Follow>(v) {
            Ok(f) => out.push(f),
            Err(e) => tracing::warn!(target = %String::from_utf8_lossy(k), "damaged follow record skipped: {e}"),
        }
        true
    })?;
    Ok(out)
}

/// Write a follow (durable when this returns).
pub(crate) fn save(store: &Store, f: &Follow) -> Result<(), StoreError> {
    let value = serde_json::to_vec(f).expect("follows serialize");
    store.put_record(Records::Follows, f.target.as_bytes(), &value)
}

/// Forget a follow.
pub(crate) fn remove(store: &Store, target: &str) -> Result<(), StoreError> {
    store.remove_records(Records::Follows, &[target.as_bytes().to_vec()])
}
