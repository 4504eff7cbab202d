//! Fetching the blocks a DAG reader will want next, before it asks for them.
//!
//! Two scopes ([`Scope`]). A whole-DAG walk (`get`, `dag export`, a CAR of everything) reads
//! every block: each dag-pb node it reads tells which blocks come next (its links, in order),
//! ahead of whatever was queued after it, and [`ReadOrder`] keeps that order. A request for part
//! of a DAG (a gateway request, `cat` of a range) reads only what it asks for: nothing is
//! fetched ahead of path lookups, and a file range is read ahead from the list its
//! `FileCursor` gives ([`ReadAhead::follow`]): the path to the range's next byte and the blocks
//! covering the rest of it, never past a closed range's end. Either way [`ReadAhead`] keeps the
//! first [`READ_AHEAD`] blocks of the order in flight through one Bitswap session.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use cairn_protocol::cids::DAG_PB;
use cairn_protocol::dagpb::PbNode;
use cairn_protocol::Cid;
use tokio::task::JoinHandle;

use crate::bitswap::{FetchError, Session};
use crate::store::{AsyncStore, StoreError};

/// Blocks requested ahead of the reader, in file order: enough to keep every peer busy on a
/// fast link (1 MiB chunks: 16 MiB in flight; 32 was no faster on loopback), small enough to
/// keep a fetching daemon under 64 MiB.
pub(crate) const READ_AHEAD: usize = 16;

/// The blocks a depth-first reader will read next, in order, as far as it has seen the DAG.
#[derive(Debug, Default)]
pub(crate) struct ReadOrder {
    upcoming: VecDeque<Cid>,
}

impl ReadOrder {
    /// The reader is at `cid`: drop it and everything queued before it (blocks a range read
    /// skipped). Returns the dropped blocks. A block the order does not know drops nothing.
    pub(crate) fn pass(&mut self, cid: &Cid) -> Vec<Cid> {
        match self.upcoming.iter().position(|c| c == cid) {
            Some(i) => self.upcoming.drain(..=i).collect(),
            None => Vec::new(),
        }
    }

    /// The reader has read a node whose links are `children`: they come next, in their order.
    pub(crate) fn read(&mut self, children: &[Cid]) {
        for child in children.iter().rev() {
            self.upcoming.push_front(*child);
        }
    }

    /// The next [`READ_AHEAD`] blocks the reader will ask for.
    pub(crate) fn window(&self) -> impl Iterator<Item = &Cid> {
        self.upcoming.iter().take(READ_AHEAD)
    }
}

/// What a reader will read, so what may be fetched before it asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every block of the DAG: each node's links are fetched ahead, in reading order.
    #[default]
    Everything,
    /// Only what is asked for: file ranges read ahead from their cursors, nothing else.
    Requested,
}

/// Why a block could not be had for a reader.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The caller went away (or the node is stopping).
    #[error("the request was cancelled")]
    Cancelled,
    /// Reading only the store, and the block is not there.
    #[error("block {0} is not in the local store")]
    NotLocal(Cid),
    /// The network could not deliver it.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The store failed, or holds the block corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller may not fetch from the network now (every slot busy, shutting down).
    #[error("{0}")]
    Unavailable(String),
}

/// A [`ReadOrder`] and the blocks of its window already being fetched.
///
/// Each block of the window is fetched by its own [`Session::get`] and kept, verified, until
/// the reader takes it: the reader neither hashes it a second time nor reads it back from disk
/// (block files are written past the page cache). At most [`READ_AHEAD`] blocks are in flight
/// or waiting; dropping the reader aborts them. A block on its way holds no thread. A block of
/// the window found in the store is left there (`None`) until the reader asks for it.
pub(crate) struct ReadAhead {
    session: Session,
    scope: Scope,
    order: ReadOrder,
    inflight: HashMap<Cid, JoinHandle<Result<Option<Bytes>, FetchError>>>,
}

impl ReadAhead {
    /// Read ahead through `session`.
    pub(crate) fn new(session: Session) -> Self {
        ReadAhead { session, scope: Scope::Everything, order: ReadOrder::default(), inflight: HashMap::new() }
    }

    /// Read ahead within `scope` from now on.
    pub(crate) fn set_scope(&mut self, scope: Scope) {
        self.scope = scope;
    }

    /// What is read ahead now.
    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    /// The reader will ask for `upcoming` next, in that order (a file cursor's blocks, a walk's
    /// stack): fetch the first [`READ_AHEAD`] of them. Replaces the order learned from links.
    /// Blocks already on their way stay so until taken (or the reader is dropped).
    pub(crate) fn follow<'a>(&mut self, upcoming: impl Iterator<Item = &'a Cid>, store: &AsyncStore) {
        self.order = ReadOrder { upcoming: upcoming.take(READ_AHEAD).copied().collect() };
        self.fill(store);
    }

    /// The block `cid` for a reader that asks for it now: taken from the read-ahead, else
    /// from the store, else fetched (with the window started beside it).
    pub(crate) async fn get(&mut self, cid: &Cid, store: &AsyncStore) -> Result<Bytes, BlockError> {
        let ahead = self.take(cid).await;
        if self.scope == Scope::Requested {
            return match ahead {
                Some(b) => Ok(b),
                None => match read_store(store, cid).await? {
                    Some(b) => Ok(b),
                    None => Ok(self.session.get(*cid).await?),
                },
            };
        }
        for passed in self.order.pass(cid) {
            if let Some(task) = self.inflight.remove(&passed) {
                task.abort();
            }
        }
        let block = match ahead {
            Some(b) => b,
            None => match read_store(store, cid).await? {
                Some(b) => b,
                None => {
                    self.fill(store);
                    self.session.get(*cid).await?
                }
            },
        };
        if cid.codec() == DAG_PB {
            if let Ok(node) = PbNode::decode(&block) {
                let children: Vec<Cid> = node.links.iter().map(|l| l.hash).collect();
                self.order.read(&children);
            }
        }
        self.fill(store);
        Ok(block)
    }

    /// The block, if it was fetched ahead (waiting for it if it is still on its way). A failed
    /// fetch ahead, or a block found in the store, returns `None`: the caller reads the store
    /// or asks again, with a fresh deadline.
    async fn take(&mut self, cid: &Cid) -> Option<Bytes> {
        let task = self.inflight.remove(cid)?;
        task.await.ok()?.ok()?
    }

    /// Start fetching the blocks of the window that are not on their way, unless the store
    /// has them (checked in each block's task, off the reader's).
    fn fill(&mut self, store: &AsyncStore) {
        for next in self.order.window() {
            if self.inflight.contains_key(next) {
                continue;
            }
            let (session, store, cid) = (self.session.clone(), store.clone(), *next);
            let task = async move {
                if store.has(cid).await.unwrap_or(false) {
                    return Ok(None);
                }
                session.get(cid).await.map(Some)
            };
            self.inflight.insert(cid, tokio::spawn(task));
        }
    }
}

/// A block from the store, read (and verified) on the blocking pool.
pub(crate) async fn read_store(store: &AsyncStore, cid: &Cid) -> Result<Option<Bytes>, BlockError> {
    Ok(store.get(*cid).await?)
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for task in self.inflight.values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_protocol::cids;

    fn cid(n: u32) -> Cid {
        cids::cid_for(cid::Version::V1, cids::RAW, cids::HashFn::Sha2_256, &n.to_be_bytes())
    }

    /// A tree of `depth` levels under one root, `fanout` links per node; returns the children
    /// of each node and the depth-first order a reader visits it in.
    fn tree(depth: u32, fanout: u32) -> (HashMap<Cid, Vec<Cid>>, Vec<Cid>) {
        fn build(
            id: &mut u32,
            depth: u32,
            fanout: u32,
            links: &mut HashMap<Cid, Vec<Cid>>,
            order: &mut Vec<Cid>,
        ) -> Cid {
            let me = cid(*id);
            *id += 1;
            order.push(me);
            if depth > 0 {
                let kids = (0..fanout).map(|_| build(id, depth - 1, fanout, links, order)).collect();
                links.insert(me, kids);
            }
            me
        }
        let (mut links, mut order) = (HashMap::new(), Vec::new());
        build(&mut 0, depth, fanout, &mut links, &mut order);
        (links, order)
    }

    #[test]
    fn the_window_is_always_the_next_blocks_of_a_deep_dag() {
        let (links, visit) = tree(3, 5);
        let mut order = ReadOrder::default();
        for (i, at) in visit.iter().enumerate() {
            order.pass(at);
            order.read(links.get(at).map(Vec::as_slice).unwrap_or(&[]));
            let window: Vec<Cid> = order.window().copied().collect();
            // The window holds exactly what the reader asks for next, as far as it is known:
            // every block after `at` whose parent has been read.
            let known: Vec<Cid> = visit[i + 1..]
                .iter()
                .filter(|c| visit[..=i].iter().any(|p| links.get(p).is_some_and(|k| k.contains(c))))
                .take(READ_AHEAD)
                .copied()
                .collect();
            assert_eq!(window, known, "after block {i}");
            if i + 1 < visit.len() {
                assert_eq!(window.first(), Some(&visit[i + 1]), "the next block is in flight after block {i}");
            }
        }
        assert_eq!(order.window().count(), 0);
    }

    #[test]
    fn reading_an_inner_node_keeps_its_children_and_what_followed_it() {
        let (root, inner1, inner2) = (cid(0), cid(1), cid(2));
        let leaves: Vec<Cid> = (10..13).map(cid).collect();
        let mut order = ReadOrder::default();
        order.pass(&root);
        order.read(&[inner1, inner2]);
        assert_eq!(order.pass(&inner1), vec![inner1]);
        order.read(&leaves);
        let window: Vec<Cid> = order.window().copied().collect();
        assert_eq!(window, [leaves.clone(), vec![inner2]].concat());
    }

    #[test]
    fn a_range_read_drops_the_blocks_it_skipped_and_unknown_blocks_drop_nothing() {
        let leaves: Vec<Cid> = (0..40).map(cid).collect();
        let mut order = ReadOrder::default();
        order.read(&leaves);
        assert!(order.pass(&cid(999)).is_empty());
        assert_eq!(order.pass(&leaves[20]), leaves[..=20].to_vec());
        assert_eq!(order.window().copied().collect::<Vec<_>>(), leaves[21..21 + READ_AHEAD].to_vec());
    }

    #[test]
    fn a_repeated_block_is_passed_once_per_read() {
        let (zero, other) = (cid(0), cid(1));
        let mut order = ReadOrder::default();
        order.read(&[zero, zero, zero, other]);
        assert_eq!(order.pass(&zero), vec![zero]);
        assert_eq!(order.window().copied().collect::<Vec<_>>(), vec![zero, zero, other]);
    }
}
