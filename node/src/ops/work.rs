//! What several commands share: blocking work that stops when its caller goes away, block
//! sources for the DAG reader, and making a DAG local before pinning or exporting it.

use std::collections::HashSet;
use std::io::Write;

use bytes::Bytes;
use cairn_protocol::cids::RAW;
use cairn_protocol::reader::SourceError;
use cairn_protocol::{Block, Cid};
use tokio_util::sync::CancellationToken;

use super::{Ctx, OpError, PieceSender};
use crate::dag;
use crate::dag_read::Blocks;
use crate::http_body::{self, BodyWriter};
use crate::store::{key_of, BatchWriter, Store};

/// A block source for the DAG reader.
pub type Fetcher = Box<dyn FnMut(&Cid) -> Result<Bytes, SourceError> + Send>;

/// Run `work` on a blocking thread. If the caller goes away first (its future is dropped),
/// the token `work` gets is cancelled; long walks and fetches check it between blocks.
pub async fn blocking<T, F>(work: F) -> Result<T, OpError>
where
    F: FnOnce(&CancellationToken) -> Result<T, OpError> + Send + 'static,
    T: Send + 'static,
{
    let token = CancellationToken::new();
    let guard = token.clone().drop_guard();
    let result = tokio::task::spawn_blocking(move || work(&token))
        .await
        .map_err(|e| OpError::failed(format!("internal error: a worker thread failed: {e}")))?;
    guard.disarm();
    result
}

/// Run a blocking writer (a tar or CAR stream) over `out` on a blocking thread; it gets a
/// `Write` into the answer and the token cancelled when the reader goes away.
pub async fn blocking_write<F>(out: PieceSender, work: F) -> Result<(), OpError>
where
    F: FnOnce(&mut dyn Write, &CancellationToken) -> Result<(), OpError> + Send + 'static,
{
    let token = out.token();
    http_body::run_blocking(out, move |w: &mut BodyWriter| work(w, &token)).await
}

/// An async block source for one read: the store, then (online, unless `offline`) the
/// network through the node; it stops once `token` is cancelled.
pub fn blocks(ctx: &Ctx, offline: bool, token: CancellationToken) -> Blocks {
    match ctx {
        Ctx::Online(node) if !offline => node.blocks(token),
        _ => Blocks::new(ctx.store().clone(), None, token),
    }
}

/// A block source: the store, then (online, unless `offline`) the network through the node;
/// every call first checks that the request is still wanted. Call it on a blocking thread.
pub fn fetcher(ctx: &Ctx, offline: bool, token: CancellationToken) -> Fetcher {
    let store = ctx.store().clone();
    let mut net: Option<Fetcher> = match ctx {
        Ctx::Online(node) if !offline => Some(Box::new(node.fetcher())),
        _ => None,
    };
    Box::new(move |cid: &Cid| {
        if token.is_cancelled() {
            return Err("the request was cancelled".into());
        }
        match &mut net {
            Some(f) => f(cid),
            None => match store.get(cid) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(format!("block {cid} is not in the local store").into()),
                Err(e) => Err(Box::new(e) as SourceError),
            },
        }
    })
}

/// Make every block of the DAG under `root` local, fetching what is missing. Returns the batch
/// holding the fetched blocks (committed; drop it once they are pinned) if any were fetched.
pub fn ensure_local(
    store: &Store,
    root: &Cid,
    fetch: &mut Fetcher,
    token: &CancellationToken,
) -> Result<Option<BatchWriter>, OpError> {
    let mut writer: Option<BatchWriter> = None;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if token.is_cancelled() {
            return Err(OpError::failed("the request was cancelled"));
        }
        if !seen.insert(key_of(&cid)) || (cid.codec() == RAW && store.has(&cid)?) {
            continue;
        }
        let data = match store.get(&cid)? {
            Some(d) => d,
            None => {
                let d = fetch(&cid).map_err(|e| OpError::failed(format!("fetching block {cid}: {e}")))?;
                if !store.has(&cid)? {
                    writer.get_or_insert_with(|| store.writer()).write(Block::new_unchecked(cid, d.clone()))?;
                }
                d
            }
        };
        if cid.codec() != RAW {
            stack.extend(dag::links(&cid, &data)?.into_iter().rev());
        }
    }
    if let Some(w) = &mut writer {
        w.commit()?;
    }
    Ok(writer)
}

/// One block, fetched if missing (for direct pins); the batch as in [`ensure_local`].
pub fn ensure_local_block(store: &Store, cid: &Cid, fetch: &mut Fetcher) -> Result<Option<BatchWriter>, OpError> {
    if store.has(cid)? {
        return Ok(None);
    }
    let data = fetch(cid).map_err(|e| OpError::failed(format!("fetching block {cid}: {e}")))?;
    let mut w = store.writer();
    if !store.has(cid)? {
        w.write(Block::new_unchecked(*cid, data))?;
        w.commit()?;
    }
    Ok(Some(w))
}
