//! What uploading commands read (`add`, `block/put`, `dag/import`): a sequence of parts, each
//! a file, a directory or a symlink with its path, UnixFS metadata and bytes. Over HTTP each
//! part is one part of a `multipart/form-data` body (kubo's shape); in-process they come from
//! the file system or standard input. Parts are read one after the other, each to its end,
//! so nothing is held whole.

use std::io::{self, Read};

use cairn_protocol::unixfs::Metadata;

/// What a part is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// Bytes (a file, a block, a CAR).
    File,
    /// A directory: its entries are the parts under its path that follow it.
    Dir,
    /// A symbolic link: the bytes are its target.
    Symlink,
}

impl PartKind {
    /// The multipart `Content-Type` kubo's clients give this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            PartKind::File => "application/octet-stream",
            PartKind::Dir => "application/x-directory",
            PartKind::Symlink => "application/symlink",
        }
    }

    /// The kind a multipart `Content-Type` names (anything else is a file).
    pub(crate) fn from_content_type(ct: Option<&str>) -> PartKind {
        match ct.map(|c| c.split(';').next().unwrap_or("").trim()) {
            Some("application/x-directory") => PartKind::Dir,
            Some("application/symlink") => PartKind::Symlink,
            _ => PartKind::File,
        }
    }
}

/// One uploaded entry; `'a` bounds its reader (`'static` for operations).
pub struct Part<'a> {
    /// Its path (`dir/sub/file.txt`), a file name, or empty for a nameless file.
    pub name: String,
    /// What it is.
    pub kind: PartKind,
    /// Permission bits and modification time, when recorded.
    pub meta: Metadata,
    /// Its bytes (nothing for a directory).
    pub data: Box<dyn Read + Send + 'a>,
}

impl<'a> Part<'a> {
    /// A file part.
    pub fn file(name: impl Into<String>, data: impl Read + Send + 'a) -> Part<'a> {
        Part { name: name.into(), kind: PartKind::File, meta: Metadata::default(), data: Box::new(data) }
    }
}

/// The parts of an upload, in order; an `Err` ends it (a body or a file that could not be read).
pub type Parts = Box<dyn Iterator<Item = io::Result<Part<'static>>> + Send>;

/// A multipart field name carrying metadata the way kubo-rpc-client sends it:
/// `file?mode=0755&mtime=SECS&mtime-nsecs=N` (just `file` without metadata).
pub fn field_name(meta: &Metadata) -> String {
    let mut q = Vec::new();
    if let Some(mode) = meta.mode {
        q.push(format!("mode={mode:04o}"));
    }
    if let Some((secs, nsecs)) = meta.mtime {
        q.push(format!("mtime={secs}&mtime-nsecs={nsecs}"));
    }
    if q.is_empty() {
        "file".into()
    } else {
        format!("file?{}", q.join("&"))
    }
}
