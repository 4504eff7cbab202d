//! The streaming decoder: bytes in, header and sections out, CARv2 payloads unwrapped, every
//! error naming its byte offset.

use super::*;

#[derive(Clone, Debug)]
enum State {
    /// Expecting the CARv1 header or the CARv2 pragma.
    Start,
    /// Pragma read; expecting the 40-byte v2 header.
    V2Header,
    /// Discarding padding up to the payload.
    Skip(V2Header),
    /// Expecting the CARv1 header inside a CARv2 payload ending at `end`.
    InnerHeader { v2: V2Header, end: u64 },
    /// Reading sections, up to `end` for a CARv2 payload or to end of input.
    Sections { end: Option<u64> },
    /// The CARv2 payload is complete; further input (the index) is discarded.
    Done,
    /// An error was returned; it is returned again.
    Failed(CarError),
}

/// A length-prefixed frame found at the front of the buffer.
struct Frame {
    /// Absolute offset of the length prefix.
    start: u64,
    /// Bytes of the length prefix.
    prefix: usize,
    /// Bytes of the body.
    len: usize,
}

/// A streaming CARv1/CARv2 reader that does no I/O: push bytes, then drain items.
///
/// ```
/// # use cairn_protocol::car::{CarDecoder, Item};
/// # fn demo(pieces: &[&[u8]]) -> Result<(), cairn_protocol::car::CarError> {
/// let mut dec = CarDecoder::new();
/// for piece in pieces {
///     dec.push(piece);
///     while let Some(item) = dec.next()? {
///         if let Item::Section(s) = item { s.verify()?; }
///     }
/// }
/// dec.finish()?; // errors if the input stopped inside an item
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CarDecoder {
    /// Pushed bytes not yet consumed.
    buf: BytesMut,
    /// Absolute offset of `buf[0]`.
    offset: u64,
    state: State,
    limits: Limits,
}

impl Default for CarDecoder {
    fn default() -> Self {
        CarDecoder::new()
    }
}

impl CarDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> CarDecoder {
        CarDecoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> CarDecoder {
        CarDecoder { buf: BytesMut::new(), offset: 0, state: State::Start, limits }
    }

    /// Append input. Drain [`next`](Self::next) after each push to keep memory bounded.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Done | State::Failed(_)) {
            self.offset += bytes.len() as u64;
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Absolute offset of the first byte not yet consumed.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Total bytes pushed so far.
    pub fn pushed(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    /// Whether a CARv2 payload has been read completely (the rest of the file is index).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next complete item, or `None` when more input is needed (or the payload is done).
    /// After an error the decoder stays failed and returns the same error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, CarError> {
        let result = self.step();
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
            self.buf = BytesMut::new();
        }
        result
    }

    /// Call at end of input, after `next` returned `None`: an error names where the input
    /// stopped inside an incomplete header or section.
    pub fn finish(&self) -> Result<(), CarError> {
        let (what, start) = match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Done => return Ok(()),
            State::Sections { end: None } if self.buf.is_empty() => return Ok(()),
            State::Sections { end: None } => (self.describe_partial("section"), self.offset),
            State::Sections { end: Some(_) } if self.buf.is_empty() => ("CARv2 data payload".to_string(), self.offset),
            State::Sections { end: Some(_) } => (self.describe_partial("section"), self.offset),
            State::Start if self.pushed() == 0 => ("CAR header (the input is empty)".to_string(), 0),
            State::Start => (self.describe_partial("CAR header"), self.offset),
            State::V2Header => ("CARv2 header".to_string(), self.offset),
            State::Skip(_) => ("CARv2 padding before the data payload".to_string(), self.offset),
            State::InnerHeader { .. } => (self.describe_partial("CARv1 header of the CARv2 payload"), self.offset),
        };
        Err(CarError::Truncated { offset: start, end: self.pushed(), what })
    }

    fn describe_partial(&self, item: &str) -> String {
        match varint_decode::u64(&self.buf) {
            Ok((len, rest)) => format!("{item} of {len} bytes ({} present)", rest.len()),
            Err(_) => format!("length prefix of a {item}"),
        }
    }

    fn step(&mut self) -> Result<Option<Item>, CarError> {
        loop {
            match self.state.clone() {
                State::Failed(e) => return Err(e),
                State::Done => {
                    self.consume(self.buf.len());
                    return Ok(None);
                }
                State::Start => return self.read_first_header(),
                State::V2Header => {
                    if !self.read_v2_header()? {
                        return Ok(None);
                    }
                }
                State::Skip(v2) => {
                    let n = (v2.data_offset - self.offset).min(self.buf.len() as u64) as usize;
                    self.consume(n);
                    if self.offset < v2.data_offset {
                        return Ok(None);
                    }
                    self.state = State::InnerHeader { v2, end: v2.data_offset + v2.data_size };
                }
                State::InnerHeader { v2, end } => return self.read_inner_header(v2, end),
                State::Sections { end } => {
                    if end == Some(self.offset) {
                        self.state = State::Done;
                        continue;
                    }
                    return self.read_section(end);
                }
            }
        }
    }

    /// The first frame: a CARv1 header, or the CARv2 pragma (then go on with the v2 header).
    fn read_first_header(&mut self) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_header, None, true)? else {
            return Ok(None);
        };
        let raw = self.parse_header(&frame)?;
        match raw.version {
            1 => {
                let roots = raw.roots.ok_or_else(|| missing_roots(frame.start))?;
                self.state = State::Sections { end: None };
                Ok(Some(Item::Header(Header { roots, v2: None })))
            }
            2 => {
                self.state = State::V2Header;
                self.step()
            }
            version => Err(CarError::UnsupportedVersion { offset: frame.start, version }),
        }
    }

    /// The 40-byte v2 header; `false` when more input is needed.
    fn read_v2_header(&mut self) -> Result<bool, CarError> {
        let Some(bytes) = self.buf.get(..V2_HEADER_LEN) else {
            return Ok(false);
        };
        let bytes: &[u8; V2_HEADER_LEN] = bytes.try_into().expect("slice of V2_HEADER_LEN bytes");
        let v2 = V2Header::decode(bytes);
        let at = self.offset;
        let header_end = at + V2_HEADER_LEN as u64;
        if v2.data_offset < header_end {
            let reason = format!("data offset {} points inside the header (ends at byte {header_end})", v2.data_offset);
            return Err(CarError::BadV2Header { offset: at, reason });
        }
        if v2.data_offset.checked_add(v2.data_size).is_none() {
            let reason = format!("data offset {} + data size {} overflows", v2.data_offset, v2.data_size);
            return Err(CarError::BadV2Header { offset: at, reason });
        }
        self.consume(V2_HEADER_LEN);
        self.state = State::Skip(v2);
        Ok(true)
    }

    fn read_inner_header(&mut self, v2: V2Header, end: u64) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_header, Some(end), true)? else {
            return Ok(None);
        };
        let raw = self.parse_header(&frame)?;
        if raw.version != 1 {
            return Err(CarError::UnsupportedVersion { offset: frame.start, version: raw.version });
        }
        let roots = raw.roots.ok_or_else(|| missing_roots(frame.start))?;
        self.state = State::Sections { end: Some(end) };
        Ok(Some(Item::Header(Header { roots, v2: Some(v2) })))
    }

    fn read_section(&mut self, end: Option<u64>) -> Result<Option<Item>, CarError> {
        let Some(frame) = self.frame(self.limits.max_section, end, false)? else {
            return Ok(None);
        };
        if frame.len == 0 {
            return Err(CarError::EmptySection { offset: frame.start });
        }
        let body = &self.buf[frame.prefix..frame.prefix + frame.len];
        let mut rest = body;
        let cid = cids::read_canonical(&mut rest).map_err(|reason| CarError::BadCid { offset: frame.start, reason })?;
        let data = Bytes::copy_from_slice(rest);
        self.consume(frame.prefix + frame.len);
        Ok(Some(Item::Section(Section { cid, data, offset: frame.start })))
    }

    fn parse_header(&mut self, frame: &Frame) -> Result<RawHeader, CarError> {
        let body = &self.buf[frame.prefix..frame.prefix + frame.len];
        let raw: RawHeader = serde_ipld_dagcbor::from_slice(body)
            .map_err(|e| CarError::BadHeader { offset: frame.start, reason: e.to_string() })?;
        self.consume(frame.prefix + frame.len);
        Ok(raw)
    }

    /// Find a complete `varint(len) ‖ body` at the front of the buffer, checking the length
    /// against `max` and, inside a CARv2 payload, against the payload's `end`.
    fn frame(&self, max: u64, end: Option<u64>, header: bool) -> Result<Option<Frame>, CarError> {
        let start = self.offset;
        let visible = match end {
            Some(e) => &self.buf[..((e - start).min(self.buf.len() as u64) as usize)],
            None => &self.buf[..],
        };
        let (len, rest) = match varint_decode::u64(visible) {
            Ok(v) => v,
            Err(varint_decode::Error::Insufficient) if visible.len() < self.buf.len() => {
                return Err(CarError::PastPayload { offset: start, end: end.unwrap_or(start) });
            }
            Err(varint_decode::Error::Insufficient) => return Ok(None),
            Err(e) => return Err(CarError::Varint { offset: start, reason: e.to_string() }),
        };
        if len > max {
            return Err(if header {
                CarError::HeaderTooLarge { offset: start, len, max }
            } else {
                CarError::SectionTooLarge { offset: start, len, max }
            });
        }
        let prefix = visible.len() - rest.len();
        let total = prefix as u64 + len;
        if let Some(e) = end {
            if start + total > e {
                return Err(CarError::PastPayload { offset: start, end: e });
            }
        }
        if (self.buf.len() as u64) < total {
            return Ok(None);
        }
        Ok(Some(Frame { start, prefix, len: len as usize }))
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }
}

fn missing_roots(offset: u64) -> CarError {
    CarError::BadHeader { offset, reason: "missing field `roots`".to_string() }
}

/// Decode a whole CAR held in memory: its header and every section, unverified.
pub fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Section>), CarError> {
    let mut dec = CarDecoder::new();
    dec.push(bytes);
    let mut header = None;
    let mut sections = Vec::new();
    while let Some(item) = dec.next()? {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Section(s) => sections.push(s),
        }
    }
    dec.finish()?;
    let header = header.ok_or(CarError::Truncated { offset: 0, end: 0, what: "CAR header".into() })?;
    Ok((header, sections))
}
