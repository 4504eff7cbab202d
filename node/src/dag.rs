//! Walking DAGs through the store: the links of a block (dag-pb, dag-cbor, raw) and an
//! iterative depth-first walk with a visited set, used by pins, GC, verify and CAR export.

use std::collections::HashSet;

use bytes::Bytes;
use cairn_protocol::cids::{DAG_CBOR, DAG_PB, IDENTITY, RAW};
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::Cid;
use ipld_core::ipld::Ipld;

use crate::store::{key_of, Store, StoreError};

/// Errors while walking a DAG.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// A block the DAG needs is not in the store.
    #[error("block {0} is not in the local store")]
    Missing(Cid),
    /// The store failed or a block was corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block could not be parsed for links.
    #[error("block {cid} cannot be decoded: {reason}")]
    Decode {
        /// The block.
        cid: Cid,
        /// Why.
        reason: String,
    },
}

/// The CIDs a block links to, in order.
pub fn links(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, DagError> {
    match cid.codec() {
        DAG_PB => {
            let node = PbNode::decode(data).map_err(|e| DagError::Decode { cid: *cid, reason: e.to_string() })?;
            Ok(node.links.into_iter().map(|l| l.hash).collect())
        }
        DAG_CBOR => {
            let ipld: Ipld = serde_ipld_dagcbor::from_slice(data)
                .map_err(|e| DagError::Decode { cid: *cid, reason: e.to_string() })?;
            let mut out = Vec::new();
            let mut stack = vec![&ipld];
            while let Some(node) = stack.pop() {
                match node {
                    Ipld::Link(c) => out.push(*c),
                    Ipld::List(items) => stack.extend(items.iter().rev()),
                    Ipld::Map(map) => stack.extend(map.values().rev()),
                    _ => {}
                }
            }
            Ok(out)
        }
        // Raw and any codec we cannot parse have no links we know of.
        RAW => Ok(Vec::new()),
        _ => Ok(Vec::new()),
    }
}

/// How a walk reads blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkMode {
    /// Read and verify every block (export, pin verify).
    Verified,
    /// Only what is needed to find links: raw leaves are checked for presence but not read,
    /// and blocks are not re-hashed (GC marking).
    LinksOnly,
}

/// Visit every block reachable from `root` once, parents before children, children in link
/// order. `visit` gets each block (empty bytes for unread raw leaves in `LinksOnly` mode); a
/// missing block is an error unless `skip_missing`.
pub fn walk(
    store: &Store,
    root: &Cid,
    mode: WalkMode,
    skip_missing: bool,
    visit: &mut dyn FnMut(&Cid, &Bytes) -> Result<(), DagError>,
) -> Result<(), DagError> {
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(key_of(&cid)) {
            continue;
        }
        let data = match mode {
            WalkMode::Verified => store.get(&cid)?,
            WalkMode::LinksOnly if cid.codec() == RAW => store.has(&cid)?.then(Bytes::new),
            WalkMode::LinksOnly if cid.hash().code() == IDENTITY => store.get(&cid)?,
            WalkMode::LinksOnly => store.get_raw(&key_of(&cid))?,
        };
        let Some(data) = data else {
            if skip_missing {
                continue;
            }
            return Err(DagError::Missing(cid));
        };
        visit(&cid, &data)?;
        if mode == WalkMode::LinksOnly && cid.codec() == RAW {
            continue;
        }
        let children = links(&cid, &data)?;
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}
