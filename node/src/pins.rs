//! Pins: the roots the owner wants kept. Recursive pins keep a whole DAG, direct pins one
//! block; blocks under a recursive pin are "indirectly" pinned (computed, never stored).
//! Pins live in the metadata tree `pins`, keyed by CID bytes, and are written only after the
//! blocks they name are durable.

use std::collections::BTreeMap;

use cairn_protocol::Cid;
use serde::{Deserialize, Serialize};

use crate::dag::{self, DagError, WalkMode};
use crate::store::{Records, Store, StoreError};

/// Kind of pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PinKind {
    /// The block and everything below it.
    Recursive,
    /// Only the block itself.
    Direct,
    /// Below a recursive pin (reported by `ls`, never stored).
    Indirect,
}

impl PinKind {
    /// Lower-case name as kubo prints it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PinKind::Recursive => "recursive",
            PinKind::Direct => "direct",
            PinKind::Indirect => "indirect",
        }
    }
}

/// The stored value of a pin.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PinRecord {
    kind: PinKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// Errors from pin operations.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Walking the DAG failed (missing or undecodable block).
    #[error(transparent)]
    Dag(#[from] DagError),
    /// `pin rm` of something that is not pinned.
    #[error("{0} is not pinned")]
    NotPinned(Cid),
    /// `pin rm` of something pinned only through a recursive pin.
    #[error("{cid} is pinned indirectly under {parent}; unpin {parent} instead")]
    Indirect {
        /// The CID asked for.
        cid: Cid,
        /// A recursive pin above it.
        parent: Cid,
    },
    /// A damaged pin record.
    #[error("pin record for {0} is damaged")]
    Damaged(String),
}

/// A pin as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pin {
    /// Pinned CID.
    pub cid: Cid,
    /// Kind.
    pub kind: PinKind,
    /// Optional user label.
    pub name: Option<String>,
}

/// Pin `cid`. A recursive pin first checks that the whole DAG is in the store (so a pin never
/// promises data the repo does not hold); the record is flushed before returning.
pub(crate) fn add(store: &Store, cid: &Cid, kind: PinKind, name: Option<String>) -> Result<(), PinError> {
    let _gate = store.pin_guard();
    match kind {
        PinKind::Recursive => dag::walk(store, cid, WalkMode::LinksOnly, false, &mut |_, _| Ok(()))?,
        PinKind::Direct => {
            if !store.has(cid)? {
                return Err(DagError::Missing(*cid).into());
            }
        }
        PinKind::Indirect => return Err(PinError::Damaged("cannot add an indirect pin".into())),
    }
    // A recursive pin supersedes a direct one; a direct pin does not weaken a recursive one.
    if kind == PinKind::Direct && get(store, cid)?.is_some_and(|p| p.kind == PinKind::Recursive) {
        return Ok(());
    }
    let record = serde_json::to_vec(&PinRecord { kind, name }).expect("pin record serializes");
    store.put_record(Records::Pins, &cid.to_bytes(), &record)?;
    Ok(())
}

/// The stored pin on exactly `cid`, if any.
pub(crate) fn get(store: &Store, cid: &Cid) -> Result<Option<Pin>, PinError> {
    let Some(v) = store.record(Records::Pins, &cid.to_bytes())? else {
        return Ok(None);
    };
    let r: PinRecord = serde_json::from_slice(&v).map_err(|_| PinError::Damaged(cid.to_string()))?;
    Ok(Some(Pin { cid: *cid, kind: r.kind, name: r.name }))
}

/// Remove the pin on `cid`.
pub(crate) fn rm(store: &Store, cid: &Cid) -> Result<(), PinError> {
    if get(store, cid)?.is_none() {
        for pin in list_stored(store)? {
            if pin.kind == PinKind::Recursive && contains(store, &pin.cid, cid)? {
                return Err(PinError::Indirect { cid: *cid, parent: pin.cid });
            }
        }
        return Err(PinError::NotPinned(*cid));
    }
    store.remove_records(Records::Pins, &[cid.to_bytes()])?;
    Ok(())
}

fn contains(store: &Store, root: &Cid, target: &Cid) -> Result<bool, PinError> {
    let mut found = false;
    dag::walk(store, root, WalkMode::LinksOnly, true, &mut |c, _| {
        found |= c.hash() == target.hash();
        Ok(())
    })?;
    Ok(found)
}

/// Every stored pin (recursive and direct), ordered by CID bytes.
pub(crate) fn list_stored(store: &Store) -> Result<Vec<Pin>, PinError> {
    let mut out = Vec::new();
    let mut bad = None;
    store.for_each_record(Records::Pins, &mut |k, v| {
        match (cairn_protocol::cids::from_bytes(k), serde_json::from_slice::<PinRecord>(v)) {
            (Ok(cid), Ok(r)) => out.push(Pin { cid, kind: r.kind, name: r.name }),
            _ => bad = Some(format!("{k:02x?}")),
        }
        true
    })?;
    match bad {
        Some(k) => Err(PinError::Damaged(k)),
        None => Ok(out),
    }
}

/// Pins of the requested kinds; indirect pins are computed by walking recursive pins
/// (missing blocks are skipped: they are not held, so not pinned either).
pub(crate) fn list(store: &Store, kinds: &[PinKind]) -> Result<Vec<Pin>, PinError> {
    let stored = list_stored(store)?;
    let mut out: Vec<Pin> = stored.iter().filter(|p| kinds.contains(&p.kind)).cloned().collect();
    if kinds.contains(&PinKind::Indirect) {
        let mut indirect = BTreeMap::new();
        for pin in stored.iter().filter(|p| p.kind == PinKind::Recursive) {
            dag::walk(store, &pin.cid, WalkMode::LinksOnly, true, &mut |c, _| {
                if c != &pin.cid {
                    indirect.insert(c.to_bytes(), *c);
                }
                Ok(())
            })?;
        }
        for p in &stored {
            indirect.remove(&p.cid.to_bytes());
        }
        out.extend(indirect.into_values().map(|cid| Pin { cid, kind: PinKind::Indirect, name: None }));
    }
    Ok(out)
}

/// Result of checking one pin.
#[derive(Clone, Debug)]
pub(crate) struct PinCheck {
    /// The pin.
    pub cid: Cid,
    /// `None` when every block is present and verifies; otherwise what is wrong.
    pub problem: Option<String>,
}

/// Check that every pinned DAG is complete and every block verifies.
pub(crate) fn verify(store: &Store) -> Result<Vec<PinCheck>, PinError> {
    let mut out = Vec::new();
    for pin in list_stored(store)? {
        let problem = match pin.kind {
            PinKind::Recursive => {
                dag::walk(store, &pin.cid, WalkMode::Verified, false, &mut |_, _| Ok(())).err().map(|e| e.to_string())
            }
            _ => match store.get(&pin.cid) {
                Ok(Some(_)) => None,
                Ok(None) => Some(format!("block {} is missing", pin.cid)),
                Err(e) => Some(e.to_string()),
            },
        };
        out.push(PinCheck { cid: pin.cid, problem });
    }
    Ok(out)
}
