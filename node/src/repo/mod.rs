//! The repo folder (`$CAIRN_PATH`, default `~/.cairn`):
//!
//! ```text
//! version        repo format version ("1")
//! config.toml    settings (see [`config`])
//! identity.key   Ed25519 secret key, mode 0600
//! repo.lock      held (flock) by the one process that has the repo open; holds its pid
//! blocks/        large blocks as files, blocks/<2 chars>/<BASE32 multihash>.data
//! meta/          sled database: small blocks, pins, bookkeeping
//! api            address of a running daemon's RPC API (written by the daemon)
//! ```

pub mod config;
pub mod identity;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;

pub use config::Config;
pub use identity::Identity;

use crate::store::{DiskFiles, SledMeta, Store};

/// The repo format this build writes and reads.
pub const REPO_VERSION: u32 = 1;

/// Errors opening or creating a repo.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No repo at the path.
    #[error("no cairn repo at {0}: run `cairn init` first (or set CAIRN_PATH)")]
    NotInitialized(PathBuf),
    /// `init` on an existing repo.
    #[error("a cairn repo already exists at {0}")]
    AlreadyExists(PathBuf),
    /// Another process holds the lock.
    #[error("the repo at {path} is in use by another cairn process{pid}; stop it (or use its daemon) and retry")]
    Locked {
        /// Repo path.
        path: PathBuf,
        /// " (pid N)" when known.
        pid: String,
    },
    /// A format this build cannot read.
    #[error("repo at {path} has format version {found}, but this cairn reads version {REPO_VERSION}{hint}")]
    Version {
        /// Repo path.
        path: PathBuf,
        /// Version found.
        found: String,
        /// What to do.
        hint: &'static str,
    },
    /// A bad config file.
    #[error("invalid config {path}: {reason}")]
    Config {
        /// Config path.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// A bad node profile name.
    #[error("unknown node profile {0:?}: use home, server or local")]
    Profile(String),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> RepoError {
    let context = context.into();
    move |source| RepoError::Io { context, source }
}

/// An open repo: the lock is held until it is dropped.
pub struct Repo {
    path: PathBuf,
    config: Config,
    identity: Identity,
    store: Store,
    _lock: fs::File,
}

/// The repo path from `CAIRN_PATH`, else `~/.cairn`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_PATH") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cairn")
}

impl Repo {
    /// Create a repo at `path` with the given node profile.
    pub fn init(path: &Path, profile: &str) -> Result<Identity, RepoError> {
        let config = Config::for_profile(profile).ok_or_else(|| RepoError::Profile(profile.into()))?;
        if path.join("version").exists() {
            return Err(RepoError::AlreadyExists(path.to_path_buf()));
        }
        fs::create_dir_all(path).map_err(io_ctx(format!("creating {}", path.display())))?;
        // No version file: any identity or config here is the leftover of an interrupted init
        // (nothing was ever stored with them), so start over.
        for leftover in ["identity.key", "config.toml"] {
            match fs::remove_file(path.join(leftover)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_ctx(format!("removing the leftover {leftover}"))(e))
                }
                _ => {}
            }
        }
        let identity = Identity::generate();
        identity.save(&path.join("identity.key")).map_err(io_ctx("writing identity.key"))?;
        write_synced(&path.join("config.toml"), config.to_toml().as_bytes())?;
        // The version file goes last: its presence means the repo is complete.
        write_synced(&path.join("version"), format!("{REPO_VERSION}\n").as_bytes())?;
        // Make the new directory entries themselves durable.
        fs::File::open(path).and_then(|d| d.sync_all()).map_err(io_ctx("syncing the repo folder"))?;
        Ok(identity)
    }

    /// Open the repo at `path`, taking its lock.
    pub fn open(path: &Path) -> Result<Repo, RepoError> {
        let version_path = path.join("version");
        let version = match fs::read_to_string(&version_path) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RepoError::NotInitialized(path.to_path_buf())),
            Err(e) => return Err(io_ctx("reading the repo version")(e)),
        };
        let lock = take_lock(path)?;
        migrate(path, version.trim())?;
        let config_path = path.join("config.toml");
        let text = fs::read_to_string(&config_path).map_err(io_ctx("reading config.toml"))?;
        let config =
            Config::from_toml(&text).map_err(|reason| RepoError::Config { path: config_path.clone(), reason })?;
        let identity = Identity::load(&path.join("identity.key")).map_err(io_ctx("reading identity.key"))?;
        let files = DiskFiles::open(&path.join("blocks")).map_err(io_ctx("opening blocks/"))?;
        let meta = SledMeta::open(&path.join("meta"), config.store.meta_cache_bytes)
            .map_err(io_ctx("opening the metadata database meta/"))?;
        let store = Store::new(Box::new(files), Box::new(meta));
        Ok(Repo { path: path.to_path_buf(), config, identity, store, _lock: lock })
    }

    /// The repo folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The block store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn take_lock(path: &Path) -> Result<fs::File, RepoError> {
    let lock_path = path.join("repo.lock");
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_ctx("opening repo.lock"))?;
    if f.try_lock_exclusive().is_err() {
        let pid = fs::read_to_string(&lock_path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default();
        return Err(RepoError::Locked { path: path.to_path_buf(), pid });
    }
    f.set_len(0).map_err(io_ctx("writing repo.lock"))?;
    write!(f, "{}", std::process::id()).map_err(io_ctx("writing repo.lock"))?;
    Ok(f)
}

/// Bring an older repo format up to [`REPO_VERSION`]. Each future format change adds one step
/// here; version 1 is the first, so there is nothing to migrate yet.
fn migrate(path: &Path, found: &str) -> Result<(), RepoError> {
    let version_err = |hint| RepoError::Version { path: path.to_path_buf(), found: found.to_string(), hint };
    let v: u32 = found.parse().map_err(|_| version_err(": the version file is damaged"))?;
    if v > REPO_VERSION {
        return Err(version_err(": upgrade cairn to open it"));
    }
    if v < 1 {
        return Err(version_err(": no migration exists from that version"));
    }
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), RepoError> {
    let mut f = fs::File::create(path).map_err(io_ctx(format!("writing {}", path.display())))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(io_ctx(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_open_lock_and_version_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("repo");
        assert!(matches!(Repo::open(&p), Err(RepoError::NotInitialized(_))));
        Repo::init(&p, "local").unwrap();
        assert!(matches!(Repo::init(&p, "local"), Err(RepoError::AlreadyExists(_))));
        let repo = Repo::open(&p).unwrap();
        let err = Repo::open(&p).err().expect("second open must fail");
        assert!(err.to_string().contains("in use by another cairn process"), "{err}");
        drop(repo);
        fs::write(p.join("version"), "7\n").unwrap();
        let err = Repo::open(&p).err().unwrap();
        assert!(err.to_string().contains("upgrade cairn"), "{err}");
    }
}
