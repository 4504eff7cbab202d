//! `multipart/form-data` request bodies the way kubo's clients write them, produced lazily as
//! the HTTP client reads: one part per entry, the path percent-encoded in `filename`,
//! `application/x-directory` for directories and `application/symlink` for symlinks (target
//! as body). File contents are read from disk as they are sent, so memory stays flat.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};

use indicatif::ProgressBar;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `filename` keeps unescaped: unreserved characters and `/` between path segments.
const FILENAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// One entry of the body.
pub struct Part {
    /// Path of the entry (`dir/sub/file.txt`), or empty for a nameless file.
    pub path: String,
    /// `file`, or `file?mode=…&mtime=…` to carry UnixFS metadata.
    pub field: String,
    /// `application/octet-stream`, `application/x-directory` or `application/symlink`.
    pub content_type: &'static str,
    /// The content (nothing for a directory).
    pub body: Option<Box<dyn Read>>,
}

/// Parts come from an iterator; an `Err` aborts the request with that error.
pub type Parts = Box<dyn Iterator<Item = io::Result<Part>>>;

/// A multipart body as `io::Read`.
pub struct Body {
    boundary: String,
    parts: Parts,
    cur: Option<Box<dyn Read>>,
    pending: Vec<u8>,
    pos: usize,
    started: bool,
    finished: bool,
    progress: Option<ProgressBar>,
}

impl Body {
    /// A body over `parts`; `progress` advances by the content bytes sent.
    pub fn new(parts: Parts, progress: Option<ProgressBar>) -> Body {
        let s = RandomState::new();
        let (mut a, mut b) = (s.build_hasher(), s.build_hasher());
        a.write_u64(std::process::id().into());
        b.write_u64(0x9e37_79b9_7f4a_7c15);
        let boundary = format!("cairn-{:016x}{:016x}", a.finish(), b.finish());
        Body { boundary, parts, cur: None, pending: Vec::new(), pos: 0, started: false, finished: false, progress }
    }

    /// The `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn head(&mut self, part: &Part) {
        let sep = if self.started { "\r\n" } else { "" };
        self.started = true;
        let name = utf8_percent_encode(&part.path, FILENAME);
        let field = part.field.replace('"', "%22");
        self.pending = format!(
            "{sep}--{}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {}\r\n\r\n",
            self.boundary, part.content_type
        )
        .into_bytes();
        self.pos = 0;
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.pos);
                out[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(r) = &mut self.cur {
                let n = r.read(out)?;
                if n > 0 {
                    if let Some(bar) = &self.progress {
                        bar.inc(n as u64);
                    }
                    return Ok(n);
                }
                self.cur = None;
            }
            match self.parts.next() {
                Some(part) => {
                    let mut part = part?;
                    self.head(&part);
                    self.cur = part.body.take();
                }
                None if self.finished => return Ok(0),
                None => {
                    self.finished = true;
                    let sep = if self.started { "\r\n" } else { "" };
                    self.pending = format!("{sep}--{}--\r\n", self.boundary).into_bytes();
                    self.pos = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape() {
        let parts: Vec<io::Result<Part>> = vec![
            Ok(Part { path: "d".into(), field: "file".into(), content_type: "application/x-directory", body: None }),
            Ok(Part {
                path: "d/a b.txt".into(),
                field: "file".into(),
                content_type: "application/octet-stream",
                body: Some(Box::new(&b"hi"[..])),
            }),
        ];
        let mut body = Body::new(Box::new(parts.into_iter()), None);
        let b = body.boundary.clone();
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: \
                 application/x-directory\r\n\r\n\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"d/a%20b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nhi\r\n--{b}--\r\n"
            )
        );
    }
}
