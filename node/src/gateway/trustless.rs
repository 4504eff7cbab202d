//! The trustless gateway: a single block (`application/vnd.ipld.raw`) or a CARv1 stream
//! (`application/vnd.ipld.car`) that a client verifies block by block. A CAR holds the blocks
//! that prove the path from the root to the terminal node, then what `dag-scope` selects
//! below it, in depth-first order without duplicates; with `entity-bytes` only the blocks of a
//! file that cover that byte range.

use std::collections::HashSet;
use std::io::{self, Write};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bytes::{Bytes, BytesMut};
use cairn_protocol::car::{encode_header, encode_section};
use cairn_protocol::cids::IDENTITY;
use cairn_protocol::reader::{self, FileCursor, Node, SourceError};
use cairn_protocol::Cid;
use sha2::{Digest, Sha256};

use super::request::{CarParams, DagScope, Target};
use super::{common_headers, etag_matches, Fetcher, GatewayError, Plan, Req};
use crate::http_body::BodyWriter;

/// The CAR's content type: version 1, depth-first order, no duplicate blocks.
const CAR_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

/// Resolve `t`'s path, recording every block read on the way (they prove the path): the
/// CIDs of the path's steps (terminal last) and the proof blocks.
#[allow(clippy::type_complexity)]
fn resolve(t: &Target, fetch: &mut Fetcher<'_>) -> Result<(Vec<Cid>, Vec<(Cid, Bytes)>), GatewayError> {
    let mut proof = Vec::new();
    let mut recording = |cid: &Cid| -> Result<Bytes, SourceError> {
        let b = fetch(cid)?;
        proof.push((*cid, b.clone()));
        Ok(b)
    };
    let roots = super::walk_path(t.root, &t.segments, &mut recording)
        .map_err(|e| GatewayError::from_read(&e, &t.content_path()))?;
    Ok((roots, proof))
}

fn fetch_block(cid: &Cid, path: &str, fetch: &mut Fetcher<'_>) -> Result<Bytes, GatewayError> {
    fetch(cid)
        .map_err(|source| GatewayError::from_read(&reader::ReadErrorKind::Fetch { cid: *cid, source }.into(), path))
}

/// `?format=raw`: the terminal block's bytes.
pub fn raw(req: &Req, t: &Target, fetch: &mut Fetcher<'_>) -> Result<Plan, GatewayError> {
    let path = t.content_path();
    let (roots, proof) = resolve(t, fetch)?;
    let cid = *roots.last().expect("the path's steps end with the terminal");
    if req.denied(&cid) {
        return Err(GatewayError::denied(&cid));
    }
    let etag = format!("\"{cid}.raw\"");
    if etag_matches(req, &etag) {
        return Ok(Plan::Done(super::not_modified(&etag, &path, &roots)));
    }
    let data = match proof.iter().find(|(c, _)| *c == cid) {
        Some((_, b)) => b.clone(),
        None => fetch_block(&cid, &path, fetch)?,
    };
    let len = data.len();
    let mut resp = if req.head { StatusCode::OK.into_response() } else { data.into_response() };
    let h = resp.headers_mut();
    common_headers(h, &etag, &path, &roots);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.ipld.raw"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    trustless_headers(h, &format!("{cid}.bin"));
    Ok(Plan::Done(resp))
}

/// `?format=car`: the path's proof, then the blocks `params` selects.
pub fn car(req: &Req, t: &Target, params: CarParams, fetch: &mut Fetcher<'_>) -> Result<Plan, GatewayError> {
    let path = t.content_path();
    let (roots, proof) = resolve(t, fetch)?;
    let terminal = *roots.last().expect("the path's steps end with the terminal");
    if req.denied(&terminal) {
        return Err(GatewayError::denied(&terminal));
    }
    // Fetch the terminal block now, so a missing one is a 504 rather than a cut stream.
    let terminal_data = match proof.iter().find(|(c, _)| *c == terminal) {
        Some((_, b)) => b.clone(),
        None => fetch_block(&terminal, &path, fetch)?,
    };
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
    let root = t.root;
    Ok(Plan::Stream {
        head,
        body: Box::new(move |w, fetch| {
            let mut car = CarWriter::new(w, root)?;
            for (cid, data) in &proof {
                car.block(cid, data)?;
            }
            car.block(&terminal, &terminal_data)?;
            let mut recording = |cid: &Cid| -> Result<Bytes, SourceError> {
                let b = fetch(cid)?;
                car.block(cid, &b)?;
                Ok(b)
            };
            let read_err = |e: reader::ReadError| GatewayError::from_read(&e, &path);
            match params.scope {
                DagScope::Block => {}
                DagScope::Entity => match reader::decode(&terminal, &terminal_data) {
                    Ok(Node::File { size, .. }) => {
                        let (start, end) = params.entity_bytes.map_or((0, size), |eb| eb.resolve(size));
                        let mut cursor = FileCursor::new(terminal, start, Some(end - start));
                        while let Some(piece) = cursor.next_piece(&mut recording) {
                            piece.map_err(read_err)?;
                        }
                    }
                    Ok(node @ Node::Shard { .. }) => {
                        reader::list(&terminal, &node, &mut recording).map_err(read_err)?;
                    }
                    // A plain directory, a symlink or a non-UnixFS block is its own entity.
                    _ => {}
                },
                DagScope::All => walk(&terminal, &terminal_data, &mut recording, &path)?,
            }
            car.finish()
        }),
    })
}

/// Depth-first, every block once.
fn walk(root: &Cid, data: &Bytes, fetch: &mut Fetcher<'_>, path: &str) -> Result<(), GatewayError> {
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
        let data = fetch(&cid)
            .map_err(|source| GatewayError::from_read(&reader::ReadErrorKind::Fetch { cid, source }.into(), path))?;
        stack.extend(links_of(&cid, &data)?.into_iter().rev());
    }
    Ok(())
}

/// A CAR stream into a response body, each block once.
struct CarWriter<'a> {
    w: &'a mut BodyWriter,
    seen: HashSet<Cid>,
    buf: BytesMut,
}

impl<'a> CarWriter<'a> {
    fn new(w: &'a mut BodyWriter, root: Cid) -> io::Result<CarWriter<'a>> {
        let mut buf = BytesMut::new();
        encode_header(&[root], &mut buf);
        w.write_all(&buf)?;
        buf.clear();
        Ok(CarWriter { w, seen: HashSet::new(), buf })
    }

    fn block(&mut self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        if cid.hash().code() == IDENTITY || !self.seen.insert(*cid) {
            return Ok(());
        }
        self.buf.clear();
        encode_section(cid, data, &mut self.buf);
        self.w.write_all(&self.buf)
    }

    fn finish(self) -> Result<(), GatewayError> {
        Ok(self.w.flush()?)
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
