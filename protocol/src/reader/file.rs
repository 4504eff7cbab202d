//! Files: [`FileCursor`] streams a byte range in file order, asking only for the blocks that
//! overlap it and checking that every subtree holds what its parent claims.

use bytes::Bytes;
use cid::Cid;

use super::{decode, decode_pb, fetch_block, file_node_size, Kind, ReadError, ReadErrorKind, SourceError};
use crate::cids::{DAG_PB, RAW};
use crate::unixfs::DataType;

/// A block still to visit: its CID, the file offset where its bytes start, and the byte count
/// its parent says it holds (`None` for the root).
#[derive(Clone, Debug)]
struct Pending {
    cid: Cid,
    offset: u64,
    expect: Option<u64>,
}

/// What a [`FileCursor`] wants next.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// The bytes of this block: pass them to [`FileCursor::give`].
    Need(Cid),
    /// The next non-empty piece of the range, in file order.
    Piece(Bytes),
    /// The range is complete (or the cursor failed).
    End,
}

/// Streams the bytes `[offset, offset + length)` of a UnixFS file in order, asking only for the
/// blocks that overlap that range: call [`FileCursor::next_step`] and answer each [`Read::Need`]
/// with [`FileCursor::give`] until it returns [`Read::End`].
#[derive(Debug)]
pub struct FileCursor {
    root: Cid,
    start: u64,
    length: Option<u64>,
    /// Exclusive end, known once the root is decoded.
    end: u64,
    /// Blocks to visit, the next one last.
    stack: Vec<Pending>,
    /// The block asked for and not given yet.
    waiting: Option<Pending>,
    /// A piece of the block given last, not yet returned.
    ready: Option<Bytes>,
    started: bool,
    /// The root was given, so `end` is known.
    sized: bool,
    failed: bool,
}

impl FileCursor {
    /// A cursor over `[offset, offset + length)` of the file `root` (to the end when `length`
    /// is `None`; a range past the end yields nothing).
    pub fn new(root: Cid, offset: u64, length: Option<u64>) -> Self {
        FileCursor {
            root,
            start: offset,
            length,
            end: 0,
            stack: Vec::new(),
            waiting: None,
            ready: None,
            started: false,
            sized: false,
            failed: false,
        }
    }

    /// The file's total size, once the root block has been given.
    pub fn file_size(&self) -> Option<u64> {
        self.sized.then_some(self.end)
    }

    /// What the cursor wants next. Asking again before [`FileCursor::give`] repeats the need.
    pub fn next_step(&mut self) -> Read {
        if let Some(piece) = self.ready.take() {
            return Read::Piece(piece);
        }
        if self.failed {
            return Read::End;
        }
        if !self.started {
            self.started = true;
            self.stack.push(Pending { cid: self.root, offset: 0, expect: None });
        }
        if let Some(p) = &self.waiting {
            return Read::Need(p.cid);
        }
        let Some(p) = self.stack.pop() else { return Read::End };
        if p.expect.is_some() && p.offset >= self.end {
            // Everything left lies past the range.
            self.stack.clear();
            return Read::End;
        }
        let cid = p.cid;
        self.waiting = Some(p);
        Read::Need(cid)
    }

    /// The bytes of the block the last [`Read::Need`] asked for (verified by the caller).
    /// After an error the cursor yields nothing more.
    pub fn give(&mut self, bytes: &Bytes) -> Result<(), ReadError> {
        let Some(p) = self.waiting.take() else { return Ok(()) };
        match self.expand(&p, bytes) {
            Ok((inline, size)) => {
                if p.expect.is_none() {
                    self.end = match self.length {
                        Some(len) => self.start.saturating_add(len).min(size),
                        None => size,
                    };
                    self.sized = true;
                }
                self.ready = self.clip(p.offset, inline);
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// Stop: the cursor yields nothing more (its source failed).
    pub fn fail(&mut self) {
        self.failed = true;
        self.stack.clear();
        self.waiting = None;
        self.ready = None;
    }

    /// The next non-empty piece of the range in file order, `None` at the end, each block
    /// from a blocking `fetch`. After an error the cursor yields nothing more.
    pub fn next_piece(
        &mut self,
        fetch: &mut dyn FnMut(&Cid) -> Result<Bytes, SourceError>,
    ) -> Option<Result<Bytes, ReadError>> {
        loop {
            match self.next_step() {
                Read::Piece(piece) => return Some(Ok(piece)),
                Read::End => return None,
                Read::Need(cid) => {
                    let given = fetch_block(&cid, fetch).and_then(|bytes| self.give(&bytes));
                    if let Err(e) = given {
                        self.fail();
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// The blocks this cursor will ask for after the one it waits for, in the order it will
    /// ask, as far as the blocks given so far tell: the path to the range's next byte and the
    /// blocks covering the rest of the range, nothing outside it. What a reader fetches ahead.
    pub fn upcoming(&self) -> impl Iterator<Item = &Cid> + '_ {
        self.stack.iter().rev().map(|p| &p.cid)
    }

    /// Decode one block of the file: push its overlapping children and return its inline bytes
    /// and the size of the subtree it roots.
    fn expand(&mut self, p: &Pending, bytes: &Bytes) -> Result<(Bytes, u64), ReadError> {
        let malformed = |reason: String| ReadError::from(ReadErrorKind::Malformed { cid: p.cid, reason });
        let (inline, size, children) = match p.cid.codec() {
            RAW => (bytes.clone(), bytes.len() as u64, Vec::new()),
            DAG_PB => {
                let (node, data) = decode_pb(&p.cid, bytes)?;
                let kind =
                    data.kind().map_err(|source| ReadError::from(ReadErrorKind::UnixFs { cid: p.cid, source }))?;
                if !matches!(kind, DataType::File | DataType::Raw) {
                    let kind = decode(&p.cid, bytes).map(|n| n.kind()).unwrap_or(Kind::File);
                    if p.expect.is_none() {
                        return Err(ReadError::from(ReadErrorKind::NotFile { cid: p.cid, kind }));
                    }
                    return Err(malformed(format!("a {kind} inside a file")));
                }
                let size = file_node_size(&p.cid, &node, &data)?;
                let inline = data.data.clone().unwrap_or_default();
                let children: Vec<(Cid, u64)> =
                    node.links.iter().zip(data.blocksizes.iter()).map(|(l, &s)| (l.hash, s)).collect();
                (inline, size, children)
            }
            codec => return Err(ReadError::from(ReadErrorKind::UnsupportedCodec { cid: p.cid, codec })),
        };
        if let Some(expect) = p.expect {
            if expect != size {
                return Err(malformed(format!("holds {size} bytes but its parent says {expect}")));
            }
        }
        // Children start after the inline bytes; push the overlapping ones, last first.
        let (range_start, range_end) = if p.expect.is_none() {
            let end = match self.length {
                Some(len) => self.start.saturating_add(len).min(size),
                None => size,
            };
            (self.start, end)
        } else {
            (self.start, self.end)
        };
        let mut offset = p.offset + inline.len() as u64;
        let mut wanted = Vec::new();
        for (cid, s) in children {
            let child_end = offset + s;
            if s > 0 && child_end > range_start && offset < range_end {
                wanted.push(Pending { cid, offset, expect: Some(s) });
            } else if s == 0 {
                // An empty child still has to be checked to hold nothing: cheap, and keeps
                // "every subtree holds what its parent claims" true. Skip fetching it only when
                // it lies outside the range.
                if offset >= range_start && offset < range_end {
                    wanted.push(Pending { cid, offset, expect: Some(0) });
                }
            }
            offset = child_end;
        }
        self.stack.extend(wanted.into_iter().rev());
        Ok((inline, size))
    }

    /// The part of `bytes` (starting at file offset `at`) inside the range, if any.
    fn clip(&self, at: u64, bytes: Bytes) -> Option<Bytes> {
        let len = bytes.len() as u64;
        let from = self.start.max(at);
        let to = self.end.min(at + len);
        (from < to).then(|| bytes.slice((from - at) as usize..(to - at) as usize))
    }
}
