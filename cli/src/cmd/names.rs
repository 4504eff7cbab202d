//! `cairn key …` and `cairn name …`: IPNS keys and names, each one operation of
//! `cairn_node::ops` (`key export` excepted: it reads the keystore in this process).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_node::ops::key::{KeyGen, KeyImport, KeyLs, KeyRename, KeyRm};
use cairn_node::ops::name::{NamePublish, NameResolve};
use cairn_node::ops::Part;
use cairn_node::repo::{Identity, Keystore};
use serde_json::json;

use crate::args::{KeyCommand, NameCommand};
use crate::backend::Backend;
use crate::output::{self, Printer};

/// `cairn key …` (all but `export`).
pub fn key(b: &Backend, cmd: KeyCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        KeyCommand::Gen { name, kind } => {
            if kind != "ed25519" {
                bail!("key type {kind:?} is not supported: IPNS keys are ed25519");
            }
            let k = b.call(KeyGen { name })?;
            out.emit(serde_json::to_value(&k)?, || k.id.clone())?;
        }
        KeyCommand::List => {
            for k in b.call(KeyLs)?.keys {
                let text = format!("{} {}", k.id, k.name);
                out.emit(serde_json::to_value(&k)?, || text)?;
            }
        }
        KeyCommand::Rm { names } => {
            for k in b.call(KeyRm { names })?.keys {
                let text = format!("{} {}", k.id, k.name);
                out.emit(serde_json::to_value(&k)?, || text)?;
            }
        }
        KeyCommand::Rename { from, to, force } => {
            let r = b.call(KeyRename { from, to, force })?;
            let text = format!("Key {} renamed to {}", r.id, r.now);
            out.emit(serde_json::to_value(&r)?, || text)?;
        }
        KeyCommand::Import { name, file, force } => {
            let data = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let part = Part::file(file.display().to_string(), io::Cursor::new(data));
            let k = b.upload(KeyImport { name, force }, Box::new(std::iter::once(Ok(part))))?;
            out.emit(serde_json::to_value(&k)?, || k.id.clone())?;
        }
        KeyCommand::Export { .. } => unreachable!("key export runs without a backend"),
    }
    Ok(())
}

/// `cairn key export`: the key's bytes to a new file, mode 0600, straight from the keystore
/// (a running daemon does not matter: the keystore is plain files).
pub fn export(repo: &Path, name: &str, output: Option<PathBuf>, out: &mut Printer) -> Result<()> {
    let identity = Identity::load(&repo.join("identity.key"))
        .with_context(|| format!("reading the identity of the repo at {}", repo.display()))?;
    let bytes = Keystore::new(repo, &identity).export(name)?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {} (an existing file is never overwritten)", path.display()))?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))?;
    let text = format!("exported key {name:?} to {}", path.display());
    out.emit(json!({ "Name": name, "Path": path }), || text)?;
    Ok(())
}

/// `cairn name …`.
pub fn name(b: &Backend, cmd: NameCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        NameCommand::Publish { path, key, lifetime, ttl, resolve, allow_offline } => {
            let waiting = b.waiter("the DHT to store the record");
            let p = b.call(NamePublish { path, key, lifetime, ttl, resolve, allow_offline })?;
            drop(waiting);
            for w in &p.warnings {
                output::warn(w);
            }
            let text = format!("Published to {}: {}", p.name, p.value);
            out.emit(serde_json::to_value(&p)?, || text)?;
        }
        NameCommand::Resolve { name, recursive, nocache } => {
            let r = b.call(NameResolve { name, recursive, nocache })?;
            let text = r.path.clone();
            out.emit(serde_json::to_value(&r)?, || text)?;
        }
    }
    Ok(())
}
