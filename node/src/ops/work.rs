//! What several commands share: blocking work that stops when its caller goes away, the
//! async block source for the DAG reader, and making a DAG local before pinning or
//! exporting it.

use std::collections::HashSet;
use std::io::Write;

use bytes::Bytes;
use cairn_protocol::cids::RAW;
use cairn_protocol::{Block, Cid};
use tokio_util::sync::CancellationToken;

use super::{Ctx, OpError, PieceSender};
use crate::dag;
use crate::dag_read::Blocks;
use crate::http_body::{self, BodyWriter};
use crate::store::{key_of, BatchWriter, Store};

/// Fetched blocks queued for the writer of [`ensure_local`].
const ENSURE_QUEUE: usize = 16;

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
pub(crate) async fn blocking_write<F>(out: PieceSender, work: F) -> Result<(), OpError>
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

/// Make every block of the DAG under `root` local, reading through `blocks` (the store, then
/// the network). Fetched blocks go to a batch writer on a blocking thread; the batch comes
/// back (committed: drop it once the blocks are pinned or exported) if any were fetched.
pub(crate) async fn ensure_local(
    store: &Store,
    root: &Cid,
    blocks: &mut Blocks,
) -> Result<Option<BatchWriter>, OpError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Block>(ENSURE_QUEUE);
    let s = store.clone();
    let writing = tokio::task::spawn_blocking(move || -> Result<Option<BatchWriter>, OpError> {
        let mut writer: Option<BatchWriter> = None;
        while let Some(block) = rx.blocking_recv() {
            if !s.has(&block.cid)? {
                writer.get_or_insert_with(|| s.writer()).write(block)?;
            }
        }
        if let Some(w) = &mut writer {
            w.commit()?;
        }
        Ok(writer)
    });
    let walked = async {
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(key_of(&cid)) {
                continue;
            }
            let (local, data) = local_block(store, cid).await?;
            if local && cid.codec() == RAW {
                continue; // a stored leaf: nothing below it
            }
            let data = match data {
                Some(d) => d,
                None => {
                    let d =
                        blocks.block(&cid).await.map_err(|e| OpError::context(format!("fetching block {cid}"), &e))?;
                    let sent = tx.send(Block::new_unchecked(cid, d.clone())).await;
                    sent.map_err(|_| OpError::failed("the block writer stopped"))?;
                    d
                }
            };
            if cid.codec() != RAW {
                stack.extend(dag::links(&cid, &data)?.into_iter().rev());
            }
        }
        Ok::<(), OpError>(())
    }
    .await;
    drop(tx);
    let written = writing.await.map_err(|e| OpError::failed(format!("internal error: a worker thread failed: {e}")))?;
    // The writer's own failure (a full disk, say) is the cause of a walk that stopped on it.
    let writer = written?;
    walked?;
    Ok(writer)
}

/// Whether a block is stored and, unless it is a raw leaf (no links to follow), its verified
/// bytes: one trip to the blocking pool.
async fn local_block(store: &Store, cid: Cid) -> Result<(bool, Option<Bytes>), OpError> {
    let s = store.clone();
    blocking(move |_| {
        if cid.codec() == RAW {
            return Ok((s.has(&cid)?, None));
        }
        let data = s.get(&cid)?;
        Ok((data.is_some(), data))
    })
    .await
}

/// One block, fetched if missing (for direct pins); the batch as in [`ensure_local`].
pub(crate) async fn ensure_local_block(
    store: &Store,
    cid: &Cid,
    blocks: &mut Blocks,
) -> Result<Option<BatchWriter>, OpError> {
    if store.handle().has(*cid).await? {
        return Ok(None);
    }
    let data = blocks.block(cid).await.map_err(|e| OpError::context(format!("fetching block {cid}"), &e))?;
    let (s, cid) = (store.clone(), *cid);
    blocking(move |_| {
        let mut w = s.writer();
        if !s.has(&cid)? {
            w.write(Block::new_unchecked(cid, data))?;
            w.commit()?;
        }
        Ok(Some(w))
    })
    .await
}
