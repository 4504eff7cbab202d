//! Named signing keys for IPNS, beside the node's identity: `<repo>/keystore/<name>`, each the
//! libp2p protobuf encoding of a private key (kubo's `libp2p-protobuf-cleartext` export
//! format), readable by the owner only. The identity is the key named `self`: it is read
//! from `identity.key` and can be neither removed nor replaced here.
//!
//! Writes are atomic (a temporary file, synced, then renamed), so a crash leaves either the
//! old key or the new one, never half a key.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_protocol::names::Name;
use libp2p::identity::Keypair;

use super::Identity;

/// The name of the node's identity key.
pub const SELF: &str = "self";

/// Longest key name accepted.
const MAX_NAME: usize = 64;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key of that name.
    #[error("no key named {0:?} (see `cairn key list`)")]
    NotFound(String),
    /// A key of that name exists already.
    #[error("a key named {0:?} exists already (use another name, or --force to replace it)")]
    Exists(String),
    /// The name is not allowed.
    #[error("{0}")]
    BadName(String),
    /// `self` cannot be changed here.
    #[error("the key `self` is the node's identity: it cannot be {0}")]
    IsSelf(&'static str),
    /// Key bytes that do not decode.
    #[error("not a libp2p private key (protobuf): {0}")]
    BadKey(String),
    /// The disk failed.
    #[error("keystore: {0}")]
    Io(#[from] io::Error),
}

/// A key's name and the IPNS name it signs for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's local name.
    pub name: String,
    /// Its IPNS name (`k51…`).
    pub id: Name,
}

/// The keystore folder of a repo.
pub struct Keystore {
    dir: PathBuf,
    identity: Keypair,
}

impl Keystore {
    /// The keystore of the repo at `repo`, whose identity is `identity`.
    pub fn new(repo: &Path, identity: &Identity) -> Keystore {
        let identity = Keypair::ed25519_from_bytes(identity.secret_bytes()).expect("32-byte Ed25519 seeds are valid");
        Keystore { dir: repo.join("keystore"), identity }
    }

    /// Every key, `self` first, then by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut out = vec![info(SELF, &self.identity)];
        let mut names = Vec::new();
        match fs::read_dir(&self.dir) {
            Ok(entries) => {
                for e in entries {
                    let name = e?.file_name().to_string_lossy().into_owned();
                    if check_name(&name).is_ok() {
                        names.push(name);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        names.sort();
        for name in names {
            out.push(info(&name, &self.get(&name)?));
        }
        Ok(out)
    }

    /// The key named `name` (`self`: the identity).
    pub fn get(&self, name: &str) -> Result<Keypair, KeyError> {
        if name == SELF {
            return Ok(self.identity.clone());
        }
        check_name(name)?;
        let bytes = match fs::read(self.dir.join(name)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyError::NotFound(name.into())),
            Err(e) => return Err(e.into()),
        };
        decode(&bytes)
    }

    /// Make a new Ed25519 key named `name`.
    pub fn generate(&self, name: &str) -> Result<KeyInfo, KeyError> {
        self.insert(name, Keypair::generate_ed25519(), false)
    }

    /// Store `bytes` (a libp2p protobuf private key, as `export` writes) as `name`.
    pub fn import(&self, name: &str, bytes: &[u8], force: bool) -> Result<KeyInfo, KeyError> {
        self.insert(name, decode(bytes)?, force)
    }

    /// The key's bytes, as [`Keystore::import`] takes them.
    pub fn export(&self, name: &str) -> Result<Vec<u8>, KeyError> {
        let key = self.get(name)?;
        key.to_protobuf_encoding().map_err(|e| KeyError::BadKey(e.to_string()))
    }

    /// Remove the key named `name`.
    pub fn remove(&self, name: &str) -> Result<KeyInfo, KeyError> {
        if name == SELF {
            return Err(KeyError::IsSelf("removed"));
        }
        let key = self.get(name)?;
        fs::remove_file(self.dir.join(name))?;
        sync_dir(&self.dir)?;
        Ok(info(name, &key))
    }

    /// Rename a key; with `force`, a key already named `to` is replaced. Returns the key and
    /// whether one was replaced.
    pub fn rename(&self, from: &str, to: &str, force: bool) -> Result<(KeyInfo, bool), KeyError> {
        if from == SELF || to == SELF {
            return Err(KeyError::IsSelf("renamed"));
        }
        check_name(to)?;
        let key = self.get(from)?;
        let target = self.dir.join(to);
        let replaced = target.exists();
        if replaced && !force {
            return Err(KeyError::Exists(to.into()));
        }
        fs::rename(self.dir.join(from), target)?;
        sync_dir(&self.dir)?;
        Ok((info(to, &key), replaced))
    }

    fn insert(&self, name: &str, key: Keypair, force: bool) -> Result<KeyInfo, KeyError> {
        if name == SELF {
            return Err(KeyError::IsSelf("replaced"));
        }
        check_name(name)?;
        let path = self.dir.join(name);
        if path.exists() && !force {
            return Err(KeyError::Exists(name.into()));
        }
        fs::create_dir_all(&self.dir)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        let bytes = key.to_protobuf_encoding().map_err(|e| KeyError::BadKey(e.to_string()))?;
        // A temporary name of this writer's own, then into place: replacing with `force`, else
        // by a hard link, which fails if a key of that name appeared meanwhile.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = self.dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        let written = (|| {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            if force {
                fs::rename(&tmp, &path)
            } else {
                fs::hard_link(&tmp, &path).and_then(|()| fs::remove_file(&tmp))
            }
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                KeyError::Exists(name.into())
            } else {
                e.into()
            });
        }
        sync_dir(&self.dir)?;
        Ok(info(name, &key))
    }
}

fn info(name: &str, key: &Keypair) -> KeyInfo {
    KeyInfo { name: name.to_string(), id: Name::new(key.public().to_peer_id()) }
}

fn decode(bytes: &[u8]) -> Result<Keypair, KeyError> {
    Keypair::from_protobuf_encoding(bytes).map_err(|e| KeyError::BadKey(e.to_string()))
}

/// Names are file names: letters, digits, `-`, `_` and `.`, not starting with a dot.
fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(format!(
            "{name:?} is not a valid key name: use up to {MAX_NAME} letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keystore(dir: &Path) -> Keystore {
        Keystore::new(dir, &Identity::generate())
    }

    #[test]
    fn generate_list_rename_export_import_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let ks = keystore(dir.path());
        let site = ks.generate("site").unwrap();
        assert!(site.id.to_string().starts_with("k51"));
        let names: Vec<String> = ks.list().unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["self", "site"]);
        let mode = fs::metadata(dir.path().join("keystore/site")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.path().join("keystore")).unwrap().permissions().mode() & 0o777, 0o700);

        assert!(matches!(ks.generate("site"), Err(KeyError::Exists(_))));
        let (moved, replaced) = ks.rename("site", "blog", false).unwrap();
        assert_eq!((moved.id, replaced), (site.id, false));
        assert!(matches!(ks.get("site"), Err(KeyError::NotFound(_))));

        let bytes = ks.export("blog").unwrap();
        let copy = ks.import("copy", &bytes, false).unwrap();
        assert_eq!(copy.id, site.id);
        assert_eq!(ks.remove("blog").unwrap().id, site.id);
        assert!(matches!(ks.import("bad", b"not a key", false), Err(KeyError::BadKey(_))));
    }

    #[test]
    fn self_is_the_identity_and_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let ks = Keystore::new(dir.path(), &id);
        let me = &ks.list().unwrap()[0];
        assert_eq!(me.name, "self");
        assert_eq!(me.id.peer_id().to_base58(), id.peer_id());
        assert!(matches!(ks.remove("self"), Err(KeyError::IsSelf(_))));
        assert!(matches!(ks.rename("self", "x", true), Err(KeyError::IsSelf(_))));
        assert!(matches!(ks.generate("self"), Err(KeyError::IsSelf(_))));
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ks = keystore(dir.path());
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65), "spa ce"] {
            assert!(matches!(ks.generate(bad), Err(KeyError::BadName(_))), "{bad:?}");
        }
    }
}
