//! Length-prefixed framing of messages on a stream, with the size limit enforced before
//! the body arrives.

use super::*;

/// Put a length prefix (unsigned varint) in front of a message body. The caller keeps bodies
/// within [`MAX_MESSAGE_SIZE`]; [`Message::encode_framed`] checks that itself.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crate::varint::len(body.len() as u64) + body.len());
    crate::varint::put(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// Splits a byte stream into message bodies: `varint(len) ‖ body`, repeated.
///
/// Feed bytes as they arrive with [`FrameDecoder::feed`], then call
/// [`FrameDecoder::next_frame`] until it returns `Ok(None)`. An announced length over
/// [`MAX_MESSAGE_SIZE`] is reported as soon as the prefix is complete, without waiting for the
/// body, so the caller can reset the stream; after any error the decoder stays failed.
///
/// Each body is collected in an allocation of exactly its announced length. Blocks decoded from
/// a body borrow that allocation, so a block a reader still holds keeps only its own message
/// alive, never a larger, shared read buffer.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Bytes received after the current body: the next prefix and whatever follows it.
    buf: BytesMut,
    /// Length of the frame whose prefix has been consumed but whose body is incomplete.
    body_len: Option<usize>,
    /// The incomplete body of that frame, allocated at its full length.
    body: BytesMut,
    /// The error that ended this stream, repeated on every later call.
    failed: Option<Failure>,
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    TooLarge(u64),
    BadPrefix,
}

impl Failure {
    fn error(self) -> BitswapError {
        match self {
            Failure::TooLarge(len) => BitswapError::TooLarge { len },
            Failure::BadPrefix => BitswapError::BadLengthPrefix,
        }
    }
}

impl FrameDecoder {
    /// An empty decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes read from the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Some(len) = self.body_len {
            let take = (len - self.body.len()).min(bytes.len());
            self.body.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message body, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, BitswapError> {
        if let Some(failure) = self.failed {
            return Err(failure.error());
        }
        let len = match self.body_len {
            Some(len) => len,
            None => match self.read_prefix() {
                Ok(Some(len)) => {
                    let from_buf = len.min(self.buf.len());
                    self.body = BytesMut::with_capacity(len);
                    self.body.extend_from_slice(&self.buf[..from_buf]);
                    self.buf.advance(from_buf);
                    self.body_len = Some(len);
                    len
                }
                Ok(None) => return Ok(None),
                Err(failure) => {
                    self.failed = Some(failure);
                    self.buf = BytesMut::new();
                    return Err(failure.error());
                }
            },
        };
        if self.body.len() < len {
            return Ok(None);
        }
        self.body_len = None;
        Ok(Some(std::mem::take(&mut self.body).freeze()))
    }

    /// Call at the end of the stream: an error if it stopped inside a frame.
    pub fn finish(&self) -> Result<(), BitswapError> {
        if let Some(failure) = self.failed {
            return Err(failure.error());
        }
        if self.buf.is_empty() && self.body_len.is_none() {
            return Ok(());
        }
        let prefix = self.body_len.map_or(0, |len| crate::varint::len(len as u64));
        Err(BitswapError::Truncated { buffered: prefix + self.body.len() + self.buf.len() })
    }

    /// Bytes held: a partial prefix or body, or frames not yet taken.
    pub fn buffered(&self) -> usize {
        self.body.len() + self.buf.len()
    }

    fn read_prefix(&mut self) -> Result<Option<usize>, Failure> {
        match unsigned_varint::decode::u64(&self.buf) {
            Ok((len, rest)) => {
                if len > MAX_MESSAGE_SIZE as u64 {
                    return Err(Failure::TooLarge(len));
                }
                let consumed = self.buf.len() - rest.len();
                self.buf.advance(consumed);
                Ok(Some(len as usize))
            }
            Err(unsigned_varint::decode::Error::Insufficient) => Ok(None),
            Err(_) => Err(Failure::BadPrefix),
        }
    }
}
