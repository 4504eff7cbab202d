//! Entry points for the fuzz targets and their replay tests (feature `fuzzing`): parsers of
//! request bytes that are private to the gateway and the API, run exactly as the daemon runs
//! them.

use std::sync::OnceLock;

use axum::extract::{FromRequest, Multipart};
use cairn_protocol::profile::ImportSettings;

use crate::api::routes::describe;
use crate::gateway::unixfs::{byte_range as gateway_range, RangeAnswer};
use crate::importer::{self, AddOptions};
use crate::store::sim::{Journal, SimFiles, SimMeta};
use crate::store::Store;
use crate::upload::{Part, PartKind};

/// What the gateway makes of a `Range` header for a file of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole file (no usable single range).
    Whole,
    /// Answer 416.
    Unsatisfiable,
    /// Serve these inclusive byte offsets.
    Range(u64, u64),
}

/// The gateway's reading of `header` for a file of `size` bytes.
pub fn byte_range(header: &str, size: u64) -> RangeOutcome {
    match gateway_range(header, size) {
        RangeAnswer::Ignore => RangeOutcome::Whole,
        RangeAnswer::Unsatisfiable => RangeOutcome::Unsatisfiable,
        RangeAnswer::Range(from, to) => RangeOutcome::Range(from, to),
    }
}

/// One part of an upload as the API reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPart {
    /// The decoded path (`file_name`).
    pub name: String,
    /// `file`, `dir` or `symlink`, from the part's content type.
    pub kind: &'static str,
    /// The part's bytes.
    pub data: Vec<u8>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime"))
}

/// Read a `multipart/form-data` body with `content_type` as the API does (axum's reader, then
/// the API's own part decoding); an error is the text a client would get.
pub fn multipart(content_type: &str, body: Vec<u8>) -> Result<Vec<UploadPart>, String> {
    runtime().block_on(async move {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/api/v0/add")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .map_err(|e| e.to_string())?;
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| e.body_text())?;
        let mut parts = Vec::new();
        while let Some(field) = form.next_field().await.map_err(|e| e.body_text())? {
            let (name, kind, _meta) = describe(&field).map_err(|e| e.message())?;
            let data = field.bytes().await.map_err(|e| e.body_text())?.to_vec();
            let kind = match kind {
                PartKind::File => "file",
                PartKind::Dir => "dir",
                PartKind::Symlink => "symlink",
            };
            parts.push(UploadPart { name, kind, data });
        }
        Ok(parts)
    })
}

/// Import `parts` as `cairn add` of an upload does, hashing only (nothing stored): the root
/// CIDs, or the importer's error text.
pub fn import(parts: &[UploadPart]) -> Result<Vec<cid::Cid>, String> {
    let journal = Journal::default();
    let store = Store::new(Box::new(SimFiles::new(journal.clone())), Box::new(SimMeta::new(journal)));
    let opts = AddOptions { settings: ImportSettings::v1_2025(), only_hash: true, ..AddOptions::default() };
    let parts = parts.iter().map(|p| {
        let kind = match p.kind {
            "dir" => PartKind::Dir,
            "symlink" => PartKind::Symlink,
            _ => PartKind::File,
        };
        Ok(Part { kind, ..Part::file(p.name.clone(), &p.data[..]) })
    });
    importer::import(&store, &opts, parts, &mut |_| {}, &|_| {})
        .map(|roots| roots.into_iter().map(|r| r.cid).collect())
        .map_err(|e| e.to_string())
}
