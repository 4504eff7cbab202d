//! The trustless gateway: a single block (`application/vnd.ipld.raw`) or a CARv1 stream
//! (`application/vnd.ipld.car`) that a client verifies block by block. A CAR holds the blocks
//! that prove the path from the root to the terminal node, then what `dag-scope` selects
//! below it, in depth-first order without duplicates; with `entity-bytes` only the blocks of a
//! file that cover that byte range.

use std::collections::HashSet;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bytes::{Bytes, BytesMut};
use cairn_protocol::car::{encode_header, encode_section};
use cairn_protocol::cids::IDENTITY;
use cairn_protocol::reader::{self, FileCursor, ListStep, Listing, Node, Read};
use cairn_protocol::Cid;
use sha2::{Digest, Sha256};

use super::request::{CarParams, DagScope, Target};
use super::{common_headers, etag_matches, GatewayError, Plan, Req};
use crate::dag_read::{Blocks, DagReadError};
use crate::http_body::{PieceSender, PIECE};

/// The CAR's content type: version 1, depth-first order, no duplicate blocks.
const CAR_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

/// Resolve `t`'s path, recording every block read on the way (they prove the path): the
/// CIDs of the path's steps (terminal last) and the proof blocks.
#[allow(clippy::type_complexity)]
async fn resolve(t: &Target, blocks: &mut Blocks) -> Result<(Vec<Cid>, Vec<(Cid, Bytes)>), GatewayError> {
    blocks.start_recording();
    let roots = super::walk_path(t.root, &t.segments, blocks).await;
    let proof = blocks.take_recorded();
    let roots = roots.map_err(|e| GatewayError::from_dag(&e, &t.content_path()))?;
    Ok((roots, proof))
}

/// A block of the path's proof, or fetched.
async fn block(cid: &Cid, proof: &[(Cid, Bytes)], path: &str, blocks: &mut Blocks) -> Result<Bytes, GatewayError> {
    match proof.iter().find(|(c, _)| c == cid) {
        Some((_, b)) => Ok(b.clone()),
        None => blocks.block(cid).await.map_err(|e| GatewayError::from_dag(&e, path)),
    }
}

/// `?format=raw`: the terminal block's bytes.
pub(super) async fn raw(req: &Req, t: &Target, blocks: &mut Blocks) -> Result<Plan, GatewayError> {
    let path = t.content_path();
    let (roots, proof) = resolve(t, blocks).await?;
    let cid = *roots.last().expect("the path's steps end with the terminal");
    if req.denied(&cid) {
        return Err(GatewayError::denied(&cid));
    }
    let etag = format!("\"{cid}.raw\"");
    if etag_matches(req, &etag) {
        return Ok(Plan::Done(super::not_modified(&etag, &path, &roots)));
    }
    let data = block(&cid, &proof, &path, blocks).await?;
    let len = data.len();
    let mut resp = if req.head { StatusCode::OK.into_response() } else { data.into_response() };
    let h = resp.headers_mut();
    common_headers(h, &etag, &path, &roots);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.ipld.raw"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    trustless_headers(h, &format!("{cid}.bin"));
    Ok(Plan::Done(resp))
}

/// What a CAR answer sends once its headers are out.
pub(crate) struct CarBody {
    root: Cid,
    proof: Vec<(Cid, Bytes)>,
    terminal: Cid,
    terminal_data: Bytes,
    params: CarParams,
    path: String,
}

/// `?format=car`: the path's proof, then the blocks `params` selects.
pub(super) async fn car(req: &Req, t: &Target, params: CarParams, blocks: &mut Blocks) -> Result<Plan, GatewayError> {
    let path = t.content_path();
    let (roots, proof) = resolve(t, blocks).await?;
    let terminal = *roots.last().expect("the path's steps end with the terminal");
    if req.denied(&terminal) {
        return Err(GatewayError::denied(&terminal));
    }
    // Fetch the terminal block now, so a missing one is a 504 rather than a cut stream.
    let terminal_data = block(&terminal, &proof, &path, blocks).await?;
    let etag = format!("\"{terminal}.car.{}\"", params_digest(&params));
    if etag_matches(req, &etag) {
        return Ok(Plan::Done(super::not_modified(&etag, &path, &roots)));
    }
    let mut head = StatusCode::OK.into_response();
    let h = head.headers_mut();
    common_headers(h, &etag, &path, &roots);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CAR_TYPE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    trustless_headers(h, &format!("{terminal}.car"));
    if req.head {
        return Ok(Plan::Done(head));
    }
    let body = CarBody { root: t.root, proof, terminal, terminal_data, params, path };
    Ok(Plan::Car { head, body: Box::new(body) })
}

/// Send a CAR: the header, the proof, the terminal block, then what the scope selects.
pub(crate) async fn stream_car(body: CarBody, mut blocks: Blocks, out: PieceSender) -> Result<(), GatewayError> {
    let CarBody { root, proof, terminal, terminal_data, params, path } = body;
    let mut car = CarOut::new(out, root);
    for (cid, data) in &proof {
        car.block(cid, data).await?;
    }
    car.block(&terminal, &terminal_data).await?;
    // What the plan fetched goes out at once; the rest in pieces as it comes.
    car.flush().await?;
    let dag_err = |e: DagReadError| GatewayError::from_dag(&e, &path);
    let read_err = |e: reader::ReadError| GatewayError::from_read(&e, &path);
    match params.scope {
        DagScope::Block => {}
        DagScope::Entity => match reader::decode(&terminal, &terminal_data) {
            Ok(Node::File { size, .. }) => {
                // Only the blocks covering the range: the cursor asks for each one.
                let (start, end) = params.entity_bytes.map_or((0, size), |eb| eb.resolve(size));
                let mut cursor = FileCursor::new(terminal, start, Some(end - start));
                // The terminal block is at hand: the cursor's first step takes it from there.
                loop {
                    match cursor.next_step() {
                        Read::Need(cid) => {
                            let b = blocks.block(&cid).await.map_err(dag_err)?;
                            car.block(&cid, &b).await?;
                            cursor.give(&b).map_err(read_err)?;
                            blocks.ahead(cursor.upcoming());
                        }
                        Read::Piece(_) => {}
                        Read::End => break,
                    }
                }
            }
            Ok(node @ Node::Shard { .. }) => {
                let mut listing = Listing::new(&terminal, &node).map_err(read_err)?;
                while let ListStep::Need(cid) = listing.next_step().map_err(read_err)? {
                    let b = blocks.block(&cid).await.map_err(dag_err)?;
                    car.block(&cid, &b).await?;
                    listing.give(&b).map_err(read_err)?;
                }
            }
            // A plain directory, a symlink or a non-UnixFS block is its own entity.
            _ => {}
        },
        DagScope::All => walk(&terminal, &terminal_data, &mut blocks, &mut car, &path).await?,
    }
    car.finish().await
}

/// Depth-first, every block once.
async fn walk(root: &Cid, data: &Bytes, blocks: &mut Blocks, car: &mut CarOut, path: &str) -> Result<(), GatewayError> {
    let links_of = |cid: &Cid, data: &Bytes| {
        crate::dag::links(cid, data)
            .map_err(|e| GatewayError { status: StatusCode::BAD_GATEWAY, message: format!("{path}: {e}") })
    };
    let mut seen = HashSet::from([*root]);
    let mut stack: Vec<Cid> = links_of(root, data)?.into_iter().rev().collect();
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) || cid.hash().code() == IDENTITY {
            continue;
        }
        blocks.ahead(stack.iter().rev());
        let data = blocks.block(&cid).await.map_err(|e| GatewayError::from_dag(&e, path))?;
        car.block(&cid, &data).await?;
        stack.extend(links_of(&cid, &data)?.into_iter().rev());
    }
    Ok(())
}

/// A CAR stream into a response body, each block once, sent in pieces of about [`PIECE`].
struct CarOut {
    out: PieceSender,
    seen: HashSet<Cid>,
    buf: BytesMut,
}

impl CarOut {
    fn new(out: PieceSender, root: Cid) -> CarOut {
        let mut buf = BytesMut::with_capacity(PIECE);
        encode_header(&[root], &mut buf);
        CarOut { out, seen: HashSet::new(), buf }
    }

    async fn block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), GatewayError> {
        if cid.hash().code() == IDENTITY || !self.seen.insert(*cid) {
            return Ok(());
        }
        encode_section(cid, data, &mut self.buf);
        if self.buf.len() >= PIECE {
            self.out.send(self.buf.split().freeze()).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), GatewayError> {
        Ok(self.out.send(self.buf.split().freeze()).await?)
    }

    async fn finish(mut self) -> Result<(), GatewayError> {
        self.flush().await
    }
}

/// Part of the CAR's ETag: responses with other parameters are other representations.
fn params_digest(p: &CarParams) -> String {
    let text = format!("{:?}", p);
    Sha256::digest(text.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn trustless_headers(h: &mut axum::http::HeaderMap, filename: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
}
