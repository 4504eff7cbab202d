//! Reading UnixFS DAGs from async code: the protocol reader's state machines, fed by
//! [`Blocks`], so a block on its way over the network holds no thread, and failures stay
//! typed ([`DagReadError`]) for the one place that turns them into a status or a message.
//!
//! Code that runs on a blocking thread (a sync planner, an exporter writing files) uses the
//! same source through [`Blocks::sync`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use cairn_protocol::reader::{
    self, Entry, FileCursor, ListStep, Listing, Lookup, Node, Read, ReadError, ReadErrorKind, SourceError,
};
use cairn_protocol::Cid;
use tokio_util::sync::CancellationToken;

use crate::bitswap::Session;
pub(crate) use crate::read_ahead::BlockError;
pub(crate) use crate::read_ahead::Scope;
use crate::read_ahead::{read_store, ReadAhead};
use crate::store::{AsyncStore, Store};

/// Why reading a DAG failed: the DAG itself, or one of its blocks.
#[derive(Debug, thiserror::Error)]
pub enum DagReadError {
    /// A block was had but the DAG is malformed, or the path names nothing.
    #[error(transparent)]
    Dag(#[from] ReadError),
    /// A block could not be had.
    #[error("{source}")]
    Block {
        /// The block.
        cid: Cid,
        /// Why.
        source: Box<BlockError>,
    },
}

/// Asked before a request's first block is fetched from the network (the gateway moves the
/// request to its retrieval pool there); it may wait, or refuse.
pub(crate) trait NetworkGate: Send + Sync {
    /// Let the request fetch from the network.
    fn enter(&self) -> Pin<Box<dyn Future<Output = Result<(), BlockError>> + Send + '_>>;
}

/// A block source for one read: the store, then (when it has a session) the network with
/// read-ahead; every call first checks that the read is still wanted.
pub struct Blocks {
    store: AsyncStore,
    net: Option<ReadAhead>,
    token: CancellationToken,
    gate: Option<Arc<dyn NetworkGate>>,
    /// The last block given, for the next call: sniffing a file's type and then streaming it
    /// would otherwise read (and verify) its first block twice.
    last: Option<(Cid, Bytes)>,
    /// Every block given while recording (the trustless gateway's path proof).
    recorded: Option<Vec<(Cid, Bytes)>>,
    runtime: tokio::runtime::Handle,
}

impl DagReadError {
    /// The reader's failure, when the DAG (not a block source) failed.
    pub fn dag(&self) -> Option<&ReadErrorKind> {
        match self {
            DagReadError::Dag(e) => Some(e.kind()),
            DagReadError::Block { .. } => None,
        }
    }
}

impl Blocks {
    /// A source over `store`, and the network through `session` when there is one. Must be
    /// created inside a tokio runtime.
    pub fn new(store: Store, session: Option<Session>, token: CancellationToken) -> Blocks {
        Blocks {
            store: store.handle(),
            net: session.map(ReadAhead::new),
            token,
            gate: None,
            last: None,
            recorded: None,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Fetch only what is asked for (see [`Scope::Requested`]): for requests that read part of
    /// a DAG.
    pub(crate) fn only_requested(mut self) -> Blocks {
        self.set_scope(Scope::Requested);
        self
    }

    /// What is fetched ahead of the reader from now on.
    pub(crate) fn set_scope(&mut self, scope: Scope) {
        if let Some(ahead) = &mut self.net {
            ahead.set_scope(scope);
        }
    }

    /// The reader will ask for `upcoming` next, in that order: fetch the first of them ahead
    /// (with [`Scope::Requested`]; a walk over everything learns its order from the links).
    pub(crate) fn ahead<'a>(&mut self, upcoming: impl Iterator<Item = &'a Cid>) {
        if let Some(ahead) = &mut self.net {
            if ahead.scope() == Scope::Requested {
                ahead.follow(upcoming, &self.store);
            }
        }
    }

    /// Ask `gate` before the first block that must come from the network.
    pub(crate) fn with_gate(mut self, gate: Arc<dyn NetworkGate>) -> Blocks {
        self.gate = Some(gate);
        self
    }

    /// The block `cid`, verified.
    pub async fn get(&mut self, cid: &Cid) -> Result<Bytes, BlockError> {
        if self.token.is_cancelled() {
            return Err(BlockError::Cancelled);
        }
        if let Some((c, b)) = &self.last {
            if c == cid {
                let b = b.clone();
                self.record(cid, &b);
                return Ok(b);
            }
        }
        let block = match &mut self.net {
            Some(ahead) => {
                if let Some(gate) = &self.gate {
                    if !self.store.has(*cid).await.unwrap_or(false) {
                        gate.enter().await?;
                        // Entered once, for the rest of the read.
                        self.gate = None;
                    }
                }
                tokio::select! {
                    _ = self.token.cancelled() => Err(BlockError::Cancelled),
                    r = ahead.get(cid, &self.store) => r,
                }?
            }
            None => read_store(&self.store, cid).await?.ok_or(BlockError::NotLocal(*cid))?,
        };
        self.record(cid, &block);
        self.last = Some((*cid, block.clone()));
        Ok(block)
    }

    fn record(&mut self, cid: &Cid, block: &Bytes) {
        if let Some(r) = &mut self.recorded {
            r.push((*cid, block.clone()));
        }
    }

    /// Keep every block given from now on, for [`Blocks::take_recorded`].
    pub(crate) fn start_recording(&mut self) {
        self.recorded = Some(Vec::new());
    }

    /// The blocks given since [`Blocks::start_recording`], in order; recording stops.
    pub(crate) fn take_recorded(&mut self) -> Vec<(Cid, Bytes)> {
        self.recorded.take().unwrap_or_default()
    }

    /// [`Blocks::get`] as a blocking `fetch` callback for the protocol reader's sync drivers.
    /// Call it on a blocking thread.
    pub fn sync(&mut self) -> impl FnMut(&Cid) -> Result<Bytes, SourceError> + '_ {
        move |cid: &Cid| {
            let runtime = self.runtime.clone();
            runtime.block_on(self.get(cid)).map_err(|e| Box::new(e) as SourceError)
        }
    }

    /// [`Blocks::get`], its failure as a read failure naming the block.
    pub async fn block(&mut self, cid: &Cid) -> Result<Bytes, DagReadError> {
        self.get(cid).await.map_err(|source| DagReadError::Block { cid: *cid, source: Box::new(source) })
    }

    /// Fetch and decode a block.
    pub async fn load(&mut self, cid: &Cid) -> Result<Node, DagReadError> {
        let bytes = self.block(cid).await?;
        Ok(reader::decode(cid, &bytes)?)
    }

    /// Find `name` in the directory `node` (the block `dir`), fetching HAMT sub-shards as
    /// needed.
    pub async fn find(&mut self, dir: &Cid, node: &Node, name: &str) -> Result<Option<Cid>, DagReadError> {
        let mut step = reader::lookup(dir, node, name)?;
        loop {
            match step {
                Lookup::Found(cid) => return Ok(Some(cid)),
                Lookup::Missing => return Ok(None),
                Lookup::Need { shard, depth } => {
                    let bytes = self.block(&shard).await?;
                    step = reader::lookup_in(&shard, &bytes, name, depth)?;
                }
            }
        }
    }

    /// Resolve `segments` below `root`, one directory at a time.
    pub async fn resolve(&mut self, root: Cid, segments: &[String]) -> Result<Cid, DagReadError> {
        let mut cid = root;
        for name in segments {
            let node = self.load(&cid).await?;
            cid = self
                .find(&cid, &node, name)
                .await?
                .ok_or_else(|| ReadError::from(ReadErrorKind::NotFound { parent: cid, name: name.clone() }))?;
        }
        Ok(cid)
    }

    /// Every entry of the directory `node` (the block `dir`), across its HAMT sub-shards.
    pub async fn list(&mut self, dir: &Cid, node: &Node) -> Result<Vec<Entry>, DagReadError> {
        let mut listing = Listing::new(dir, node)?;
        loop {
            match listing.next_step()? {
                ListStep::Need(cid) => {
                    let bytes = self.block(&cid).await?;
                    listing.give(&bytes)?;
                }
                ListStep::Done(entries) => return Ok(entries),
            }
        }
    }

    /// Bytes `[start, start + len)` of a file, in one buffer (without copying when one block
    /// holds them).
    pub(crate) async fn read_range(&mut self, cid: Cid, start: u64, len: u64) -> Result<Bytes, DagReadError> {
        let mut cursor = FileCursor::new(cid, start, Some(len));
        let mut pieces = Vec::new();
        while let Some(piece) = self.next_piece(&mut cursor).await {
            pieces.push(piece?);
        }
        Ok(match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().expect("one piece"),
            _ => Bytes::from(pieces.concat()),
        })
    }

    /// The next non-empty piece of `cursor`'s range, `None` at the end. After an error the
    /// cursor yields nothing more.
    pub(crate) async fn next_piece(&mut self, cursor: &mut FileCursor) -> Option<Result<Bytes, DagReadError>> {
        loop {
            match cursor.next_step() {
                Read::Piece(piece) => return Some(Ok(piece)),
                Read::End => return None,
                Read::Need(cid) => match self.block(&cid).await {
                    Ok(bytes) => {
                        if let Err(e) = cursor.give(&bytes) {
                            return Some(Err(e.into()));
                        }
                        self.ahead(cursor.upcoming());
                    }
                    Err(e) => {
                        cursor.fail();
                        return Some(Err(e));
                    }
                },
            }
        }
    }
}
