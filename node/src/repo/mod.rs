//! The repo folder (`$CAIRN_PATH`, default `~/.cairn`):
//!
//! ```text
//! version        repo format version ("3"; see [`REPO_VERSION`] for what changed)
//! config.toml    settings (see [`config`])
//! identity.key   Ed25519 secret key, mode 0600 (the key `self`)
//! keystore/      named IPNS keys, mode 0700, one file per key, mode 0600 (see [`keystore`])
//! repo.lock      held (flock) by the one process that has the repo open; holds its pid
//! blocks/        large blocks as files, blocks/<2 chars>/<BASE32 multihash>.data
//! meta/          sled database: small blocks, pins, bookkeeping
//! api            address of a running daemon's RPC API (written by the daemon)
//! ```

pub mod config;
pub mod config_edit;
pub mod identity;
pub mod keystore;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;

pub use config::Config;
pub use identity::Identity;
pub use keystore::Keystore;

use crate::store::{space, DiskFiles, SledMeta, Store};

/// The repo format this build writes and reads. Format 2 keys the provider schedule
/// (`provide` tree) by multihash instead of CID bytes; format 3 adds its due-time index
/// (`provide_due`). Older repos are migrated when they are opened.
pub const REPO_VERSION: u32 = 3;

/// Errors opening or creating a repo.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No repo at the path.
    #[error("no cairn repo at {0}: run `cairn init` first (or set CAIRN_PATH)")]
    NotInitialized(PathBuf),
    /// `init` on an existing repo.
    #[error("a cairn repo already exists at {0}; `cairn init` never replaces one (its identity and data stay)")]
    AlreadyExists(PathBuf),
    /// Repo files without a `version` file: a damaged repo, never to be re-initialized.
    #[error(
        "{0} holds a cairn repo's files (identity.key, meta/ or blocks/) but no `version` file, so it is \
         damaged; cairn will not open or replace it. If it is a repo made by this cairn, restore the file \
         with `echo 1 > {0}/version`"
    )]
    Damaged(PathBuf),
    /// `init` into a folder that holds something else.
    #[error("{0} exists and is not an empty folder; choose another path for the repo (--repo or CAIRN_PATH)")]
    NotEmpty(PathBuf),
    /// Another process holds the lock.
    #[error("the repo at {path} is in use by another cairn process{pid}; stop it (or use its daemon) and retry")]
    Locked {
        /// Repo path.
        path: PathBuf,
        /// " (pid N)" when known.
        pid: String,
        /// What holds it, as written in `repo.lock` (a daemon, or a one-off command).
        holder: Option<Holder>,
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
    /// No room at all for the metadata database to start (the space reserve was used up).
    #[error(
        "the disk holding the repo at {0} is full (or its quota is used up): the metadata database needs a \
         few MiB to open. Free some space and retry; nothing in the repo is lost"
    )]
    DiskFull(PathBuf),
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

/// Which kind of process holds a repo's lock, written into `repo.lock` beside the pid so that
/// others know whether to wait: a command started while a daemon is starting waits for its
/// API, and a daemon started while a short command runs waits for the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// `cairn daemon`: holds the repo for its whole run and serves an API.
    Daemon,
    /// Any other command: holds the repo until it finishes.
    Command,
}

impl Holder {
    fn word(self) -> &'static str {
        match self {
            Holder::Daemon => "daemon",
            Holder::Command => "command",
        }
    }
}

/// The pid and holder a `repo.lock` names (`"1234 daemon"`; older builds wrote the pid alone).
pub fn lock_holder(path: &Path) -> Option<(u32, Option<Holder>)> {
    let text = fs::read_to_string(path.join("repo.lock")).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let holder = match words.next() {
        Some("daemon") => Some(Holder::Daemon),
        Some("command") => Some(Holder::Command),
        _ => None,
    };
    Some((pid, holder))
}

/// The file a daemon writes (its pid) the moment it starts and removes once its API answers:
/// commands that find it wait for the API instead of taking the repo themselves.
pub(crate) const STARTING_FILE: &str = "daemon.starting";

/// Marks a daemon as starting for as long as it is held (removed on drop).
pub struct Starting(PathBuf);

impl Starting {
    /// Write the marker for this process; `None` when the repo folder is not there (or full).
    pub fn mark(repo: &Path) -> Option<Starting> {
        let path = repo.join(STARTING_FILE);
        fs::write(&path, std::process::id().to_string()).ok()?;
        Some(Starting(path))
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The pid of a daemon that is starting on `repo` and still alive, if any.
pub fn starting_daemon(repo: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(repo.join(STARTING_FILE)).ok()?.trim().parse().ok()?;
    (pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()).then_some(pid)
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
    /// Create a repo at `path` with the given node profile. Never touches an existing repo or
    /// any file in it: the repo is built in a sibling folder and renamed into place, so an
    /// interrupted `init` leaves either nothing or a complete repo. An existing empty folder
    /// (a mount point, say) is filled in place with files created exclusively.
    pub fn init(path: &Path, profile: &str) -> Result<Identity, RepoError> {
        let config = Config::for_profile(profile).ok_or_else(|| RepoError::Profile(profile.into()))?;
        check_init_target(path)?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_ctx(format!("creating {}", parent.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "repo".into());
        remove_stale_init_folders(&parent, &name);
        let staging = parent.join(format!(".{name}.init-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let in_place = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let staged = if in_place {
            // A link to an empty folder: renaming would replace the link itself.
            Err(RepoError::NotEmpty(path.to_path_buf()))
        } else {
            fs::create_dir(&staging)
                .map_err(io_ctx(format!("creating {}", staging.display())))
                .and_then(|()| write_new_repo(&staging, &config))
        };
        match staged {
            // No staging folder beside it (the parent is not writable, or the path is a link):
            // an existing empty folder is filled in place, every file created new.
            Err(_) if is_empty_dir(path) => {
                let _ = fs::remove_dir_all(&staging);
                write_new_repo(path, &config)?;
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
            // rename(2) replaces a missing target or an empty folder, never a non-empty one.
            Ok(()) => match fs::rename(&staging, path) {
                Ok(()) => {}
                Err(_) if is_empty_dir(path) => {
                    // A mount point cannot be replaced: fill it in place.
                    let _ = fs::remove_dir_all(&staging);
                    write_new_repo(path, &config)?;
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&staging);
                    check_init_target(path)?;
                    return Err(io_ctx(format!("moving the new repo into {}", path.display()))(e));
                }
            },
        }
        fs::File::open(&parent).and_then(|d| d.sync_all()).map_err(io_ctx("syncing the repo's parent folder"))?;
        Identity::load(&path.join("identity.key")).map_err(io_ctx("reading the new identity.key"))
    }

    /// Open the repo at `path` for a one-off command, taking its lock.
    pub fn open(path: &Path) -> Result<Repo, RepoError> {
        Repo::open_as(path, Holder::Command)
    }

    /// Open the repo at `path`, taking its lock as `holder`.
    pub fn open_as(path: &Path, holder: Holder) -> Result<Repo, RepoError> {
        let version_path = path.join("version");
        let version = match fs::read_to_string(&version_path) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound && looks_like_repo(path) => {
                return Err(RepoError::Damaged(path.to_path_buf()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RepoError::NotInitialized(path.to_path_buf())),
            Err(e) => return Err(io_ctx("reading the repo version")(e)),
        };
        let lock = take_lock(path, holder)?;
        let found = check_version(path, version.trim())?;
        let config_path = path.join("config.toml");
        let text = fs::read_to_string(&config_path).map_err(io_ctx("reading config.toml"))?;
        let config =
            Config::from_toml(&text).map_err(|reason| RepoError::Config { path: config_path.clone(), reason })?;
        let identity = Identity::load(&path.join("identity.key")).map_err(io_ctx("reading identity.key"))?;
        let files = DiskFiles::open(&path.join("blocks")).map_err(io_ctx("opening blocks/"))?;
        let meta = open_meta(path, &config)?;
        let floor = space::Floor::new(path, config.store.min_free_bytes);
        let store = Store::with_floor(Box::new(files), Box::new(meta), Some(floor));
        store.set_read_cache(config.store.read_cache_bytes);
        if found < REPO_VERSION {
            migrate(path, &store, found)?;
        }
        space::restore_reserve(path, config.store.min_free_bytes);
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

    /// The named keys (IPNS), `self` being the identity.
    pub fn keystore(&self) -> Keystore {
        Keystore::new(&self.path, &self.identity)
    }

    /// The block store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Open the metadata database, first recovering what a write that ran out of space left
/// behind, and releasing the space reserve when the disk is too full for sled to start.
fn open_meta(path: &Path, config: &Config) -> Result<SledMeta, RepoError> {
    let dir = path.join("meta");
    space::recover_meta_leftovers(&dir).map_err(io_ctx("cleaning up meta/"))?;
    if space::release_reserve_if_full(path) {
        tracing::warn!("the disk is full: released the repo's space reserve so that it can open");
    }
    match SledMeta::open(&dir, config.store.meta_cache_bytes) {
        Ok(m) => Ok(m),
        Err(e) => {
            // A failed start-up snapshot leaves its file behind: remove it now, not next time.
            let _ = space::recover_meta_leftovers(&dir);
            if space::is_out_of_space(&e) {
                return Err(RepoError::DiskFull(path.to_path_buf()));
            }
            Err(io_ctx("opening the metadata database meta/")(e))
        }
    }
}

fn take_lock(path: &Path, holder: Holder) -> Result<fs::File, RepoError> {
    let lock_path = path.join("repo.lock");
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_ctx("opening repo.lock"))?;
    if f.try_lock_exclusive().is_err() {
        let found = lock_holder(path);
        let pid = found.map(|(p, _)| format!(" (pid {p})")).unwrap_or_default();
        return Err(RepoError::Locked { path: path.to_path_buf(), pid, holder: found.and_then(|(_, h)| h) });
    }
    // The lock is ours; a full disk must not stop a read, so writing the holder may fail.
    if f.set_len(0).is_ok() {
        let _ = write!(f, "{} {}", std::process::id(), holder.word());
    }
    Ok(f)
}

/// The repo's format version, if this build can open it (itself or by migrating it).
fn check_version(path: &Path, found: &str) -> Result<u32, RepoError> {
    let version_err = |hint| RepoError::Version { path: path.to_path_buf(), found: found.to_string(), hint };
    let v: u32 = found.parse().map_err(|_| version_err(": the version file is damaged"))?;
    if v > REPO_VERSION {
        return Err(version_err(": upgrade cairn to open it"));
    }
    if v < 1 {
        return Err(version_err(": no migration exists from that version"));
    }
    Ok(v)
}

/// Bring an older repo format up to [`REPO_VERSION`], one step per format change, each safe
/// to run again if interrupted: the new `version` is written (synced, renamed) only after the
/// step's changes are flushed.
fn migrate(path: &Path, store: &Store, found: u32) -> Result<(), RepoError> {
    if found < 2 {
        tracing::info!("migrating the repo from format 1 to 2 (provider schedule keyed by multihash)");
        store.rekey_provides_by_multihash().map_err(io_ctx("migrating the provider schedule"))?;
    }
    if found < 3 {
        tracing::info!("migrating the repo from format 2 to 3 (provider schedule ordered by due time)");
        store.index_provides_due().map_err(io_ctx("indexing the provider schedule"))?;
    }
    let tmp = path.join("version.new");
    let _ = fs::remove_file(&tmp);
    write_synced(&tmp, format!("{REPO_VERSION}\n").as_bytes())?;
    fs::rename(&tmp, path.join("version")).map_err(io_ctx("replacing the version file"))?;
    fs::File::open(path).and_then(|d| d.sync_all()).map_err(io_ctx("syncing the repo folder"))
}

/// Refuse to `init` over anything: a repo, a damaged repo, or a folder holding other files.
fn check_init_target(path: &Path) -> Result<(), RepoError> {
    if path.join("version").exists() {
        return Err(RepoError::AlreadyExists(path.to_path_buf()));
    }
    if looks_like_repo(path) {
        return Err(RepoError::Damaged(path.to_path_buf()));
    }
    // Followed: a link to an empty folder is as good as the folder.
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_ctx(format!("reading {}", path.display()))(e)),
        Ok(m) if m.is_dir() && is_empty_dir(path) => Ok(()),
        Ok(_) => Err(RepoError::NotEmpty(path.to_path_buf())),
    }
}

/// Whether `path` holds a repo's files (without its `version`, it is a damaged repo).
fn looks_like_repo(path: &Path) -> bool {
    ["identity.key", "meta", "blocks"].iter().any(|f| path.join(f).exists())
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Staging folders of `init`s that were killed (their pid is gone) are removed.
fn remove_stale_init_folders(parent: &Path, name: &str) {
    let prefix = format!(".{name}.init-");
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Write identity, config and version (last: its presence means the repo is complete) into
/// `dir`, creating each file new so that nothing existing is ever overwritten.
fn write_new_repo(dir: &Path, config: &Config) -> Result<(), RepoError> {
    Identity::generate().save(&dir.join("identity.key")).map_err(io_ctx("writing identity.key"))?;
    write_synced(&dir.join("config.toml"), config.to_toml().as_bytes())?;
    write_synced(&dir.join("version"), format!("{REPO_VERSION}\n").as_bytes())?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_ctx("syncing the repo folder"))
}

/// Create `path` (it must not exist) holding `data`, synced.
fn write_synced(path: &Path, data: &[u8]) -> Result<(), RepoError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_ctx(format!("creating {}", path.display())))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(io_ctx(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_1_provide_keys_become_multihashes_once() {
        use crate::store::Tree;
        use cairn_protocol::cids::{cid_for, HashFn, DAG_PB, RAW};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        Repo::init(&p, "local").unwrap();
        let repo = Repo::open(&p).unwrap();
        let meta = repo.store().meta();
        let v1 = cid_for(cid::Version::V1, DAG_PB, HashFn::Sha2_256, b"block");
        let v0 = cid::Cid::new_v0(*v1.hash()).unwrap();
        let raw = cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, b"other");
        meta.put(Tree::Provide, &v1.to_bytes(), &5u64.to_be_bytes()).unwrap();
        meta.put(Tree::Provide, &v0.to_bytes(), &9u64.to_be_bytes()).unwrap();
        meta.put(Tree::Provide, &raw.to_bytes(), &0u64.to_be_bytes()).unwrap();
        let entries = || {
            let mut all = Vec::new();
            meta.for_each(Tree::Provide, &mut |k, v| {
                all.push((k.to_vec(), u64::from_be_bytes(v.try_into().unwrap())));
                true
            })
            .unwrap();
            all.sort();
            all
        };
        repo.store().rekey_provides_by_multihash().unwrap();
        let mut want = vec![(v1.hash().to_bytes(), 9), (raw.hash().to_bytes(), 0)];
        want.sort();
        assert_eq!(entries(), want, "one key per block, the latest stamp kept");
        repo.store().rekey_provides_by_multihash().unwrap();
        assert_eq!(entries(), want, "a second run changes nothing");
    }

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

    #[test]
    fn init_never_touches_an_existing_or_damaged_repo() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("repo");
        let id = Repo::init(&p, "local").unwrap().peer_id();
        let key = fs::read(p.join("identity.key")).unwrap();
        fs::write(p.join("config.toml"), "# mine\n").unwrap();
        fs::remove_file(p.join("version")).unwrap();
        let err = Repo::open(&p).err().unwrap();
        assert!(matches!(err, RepoError::Damaged(_)), "{err}");
        assert!(!err.to_string().contains("cairn init"), "{err}");
        assert!(matches!(Repo::init(&p, "local"), Err(RepoError::Damaged(_))));
        assert_eq!(fs::read(p.join("identity.key")).unwrap(), key);
        assert_eq!(fs::read_to_string(p.join("config.toml")).unwrap(), "# mine\n");
        assert!(!p.join("version").exists());
        fs::write(p.join("version"), "1\n").unwrap();
        fs::write(p.join("config.toml"), Config::for_profile("local").unwrap().to_toml()).unwrap();
        assert_eq!(Repo::open(&p).unwrap().identity().peer_id(), id);

        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("notes.txt"), "keep").unwrap();
        assert!(matches!(Repo::init(&other, "local"), Err(RepoError::NotEmpty(_))));
        assert_eq!(fs::read_dir(&other).unwrap().count(), 1);
        // An empty folder is fine, and no staging folder is left beside it.
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        Repo::init(&empty, "local").unwrap();
        Repo::open(&empty).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(names.iter().all(|n| !n.to_string_lossy().contains(".init-")), "{names:?}");
        // A link to an empty folder is filled through the link, which stays a link.
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        Repo::init(&link, "local").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(target.join("version").exists());
        Repo::open(&link).unwrap();
    }
}
