//! `key/gen`, `key/list`, `key/rm`, `key/rename`, `key/import`: the named signing keys of
//! IPNS (`self` is the node's identity), in kubo's fields. Names print as `k51…`.
//! Exporting a private key is not an operation: it never crosses the API (as kubo), and the
//! CLI reads the keystore itself.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::work::blocking;
use super::{json_reply, Args, Command, Ctx, Op, OpError, Parts, UploadOp};
use crate::repo::keystore::{KeyError, KeyInfo};

/// Largest key file accepted (an RSA-4096 key is ~2.4 KiB).
const MAX_KEY_FILE: usize = 16 * 1024;

/// A key in an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRow {
    /// Its local name.
    pub name: String,
    /// Its IPNS name (`k51…`).
    pub id: String,
}
json_reply!(KeyRow);

impl From<KeyInfo> for KeyRow {
    fn from(k: KeyInfo) -> KeyRow {
        KeyRow { name: k.name, id: k.id.to_string() }
    }
}

/// A list of keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyList {
    /// The keys.
    pub keys: Vec<KeyRow>,
}
json_reply!(KeyList);

fn key_error(e: KeyError) -> OpError {
    match e {
        KeyError::Io(_) => OpError::chain(&e),
        other => OpError::bad(other.to_string()),
    }
}

/// `key/gen`: a new Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGen {
    /// Its name.
    pub name: String,
}

impl Command for KeyGen {
    const NAME: &'static str = "key/gen";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.name.clone()), ("type", "ed25519".into())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        match args.get("type") {
            None | Some("ed25519") => {}
            Some(t) => return Err(OpError::bad(format!("key type {t:?} is not supported: IPNS keys are ed25519"))),
        }
        Ok(KeyGen { name: args.arg()?.to_string() })
    }
}

impl Op for KeyGen {
    type Output = KeyRow;

    async fn run(self, ctx: Ctx) -> Result<KeyRow, OpError> {
        let ks = ctx.repo().keystore();
        blocking(move |_| ks.generate(&self.name).map(KeyRow::from).map_err(key_error)).await
    }
}

/// `key/list`: every key, `self` first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLs;

impl Command for KeyLs {
    const NAME: &'static str = "key/list";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("l", "true".into())]
    }

    fn from_args(_: &Args) -> Result<Self, OpError> {
        Ok(KeyLs)
    }
}

impl Op for KeyLs {
    type Output = KeyList;

    async fn run(self, ctx: Ctx) -> Result<KeyList, OpError> {
        let ks = ctx.repo().keystore();
        let keys = blocking(move |_| ks.list().map_err(key_error)).await?;
        Ok(KeyList { keys: keys.into_iter().map(KeyRow::from).collect() })
    }
}

/// `key/rm`: remove keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRm {
    /// Their names.
    pub names: Vec<String>,
}

impl Command for KeyRm {
    const NAME: &'static str = "key/rm";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        self.names.iter().map(|n| ("arg", n.clone())).collect()
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        Ok(KeyRm { names: args.some()?.into_iter().map(String::from).collect() })
    }
}

impl Op for KeyRm {
    type Output = KeyList;

    async fn run(self, ctx: Ctx) -> Result<KeyList, OpError> {
        let (ks, store) = (ctx.repo().keystore(), ctx.store().clone());
        let keys = blocking(move |_| {
            // All or nothing: every name must exist before any is removed.
            for n in &self.names {
                ks.get(n).map_err(key_error)?;
            }
            let mut rows = Vec::new();
            for n in &self.names {
                rows.push(ks.remove(n).map(KeyRow::from).map_err(key_error)?);
                crate::names::published::remove_key(&store, n)?;
            }
            Ok(rows)
        })
        .await?;
        Ok(KeyList { keys })
    }
}

/// `key/rename`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRename {
    /// Current name.
    pub from: String,
    /// New name.
    pub to: String,
    /// Replace a key already named `to`.
    pub force: bool,
}

/// `key/rename`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Renamed {
    /// The old name.
    pub was: String,
    /// The new name.
    pub now: String,
    /// Its IPNS name.
    pub id: String,
    /// Whether a key named `now` was replaced.
    pub overwrite: bool,
}
json_reply!(Renamed);

impl Command for KeyRename {
    const NAME: &'static str = "key/rename";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.from.clone()), ("arg", self.to.clone()), ("force", self.force.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        let [from, to] = args.all()[..] else {
            return Err(OpError::bad("key/rename takes two arguments: the key's name and its new name"));
        };
        Ok(KeyRename { from: from.into(), to: to.into(), force: args.flag("force", false)? })
    }
}

impl Op for KeyRename {
    type Output = Renamed;

    async fn run(self, ctx: Ctx) -> Result<Renamed, OpError> {
        let (ks, store) = (ctx.repo().keystore(), ctx.store().clone());
        let was = self.from.clone();
        let (key, overwrite) = blocking(move |_| {
            let renamed = ks.rename(&self.from, &self.to, self.force).map_err(key_error)?;
            crate::names::published::rename_key(&store, &self.from, &self.to)?;
            Ok(renamed)
        })
        .await?;
        Ok(Renamed { was, now: key.name, id: key.id.to_string(), overwrite })
    }
}

/// `key/import`: a key file (libp2p protobuf, as `cairn key export` and kubo write it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyImport {
    /// The name it gets.
    pub name: String,
    /// Replace a key of that name.
    pub force: bool,
}

impl Command for KeyImport {
    const NAME: &'static str = "key/import";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.name.clone()), ("force", self.force.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        match args.get("format") {
            None | Some("libp2p-protobuf-cleartext") => {}
            Some(f) => {
                return Err(OpError::bad(format!("key format {f:?} is not supported: use libp2p-protobuf-cleartext")))
            }
        }
        Ok(KeyImport { name: args.arg()?.to_string(), force: args.flag("force", false)? })
    }
}

impl UploadOp for KeyImport {
    type Output = KeyRow;

    const MAX_BODY: Option<usize> = Some(MAX_KEY_FILE + 16 * 1024);

    async fn run(self, ctx: Ctx, mut parts: Parts) -> Result<KeyRow, OpError> {
        let ks = ctx.repo().keystore();
        blocking(move |_| {
            let part = parts.next().ok_or_else(|| OpError::bad("no key file sent"))?;
            let part = super::file_part(part, "the key")?;
            let mut bytes = Vec::new();
            part.data.take(MAX_KEY_FILE as u64 + 1).read_to_end(&mut bytes)?;
            if bytes.len() > MAX_KEY_FILE {
                return Err(OpError::bad(format!("{} is over {MAX_KEY_FILE} bytes: not a key file", part.name)));
            }
            ks.import(&self.name, &bytes, self.force).map(KeyRow::from).map_err(key_error)
        })
        .await
    }
}
