//! Free space on the repo's file systems: the floor below which writes are refused, the space
//! reserve that lets a repo open on a full disk, and recovery of the metadata engine's
//! leftovers after a write failed for lack of space.
//!
//! Invariant: cairn's own writes never fill the disk. The store's writer checks the free space
//! (of the repo folder, `blocks/` and `meta/`) before a command's first block and every MiB
//! after, and refuses, with a message naming the floor, once a write would leave less than
//! `store.min_free_bytes`. When something else fills the disk anyway, the repo still
//! opens: `repo open` releases the [`RESERVE_FILE`] (a file of [`RESERVE_BYTES`] zeros kept for
//! this) so sled can write its start-up snapshot, and re-creates it once space is back.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The space reserve's name in the repo folder.
pub(crate) const RESERVE_FILE: &str = "space.reserve";

/// Size of the space reserve: room for sled's start-up snapshot and a few log segments (its
/// snapshot of a repo with a million blocks is a few MiB).
pub(crate) const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Free bytes below which the reserve is released at open, so the metadata engine can start.
pub(crate) const OPEN_ROOM: u64 = 4 * 1024 * 1024;

/// How many bytes may be written between two free-space checks (a `statvfs` per block would
/// be cheap too, but this keeps it off the hot path of small blocks).
const CHECK_EVERY: u64 = 1024 * 1024;

/// Free bytes for unprivileged writes on the file system holding `path`.
pub fn available(path: &Path) -> io::Result<u64> {
    fs2::available_space(path)
}

/// Free bytes where the repo writes: the least of the repo folder, `blocks/` and `meta/`
/// (either may be a link or a mount on another disk). Folders not there yet are skipped.
pub(crate) fn repo_available(repo: &Path) -> io::Result<u64> {
    let mut free = available(repo)?;
    for sub in ["blocks", "meta"] {
        if let Ok(f) = available(&repo.join(sub)) {
            free = free.min(f);
        }
    }
    Ok(free)
}

/// Whether `e` says the disk (or the user's quota) has no room left.
pub(crate) fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The free-space floor the store's writer enforces. While the reserve is missing (released
/// to open on a full disk, or never had room), the floor is raised by its size: the space it
/// freed is kept for the metadata engine, never handed to new data.
pub(crate) struct Floor {
    path: PathBuf,
    min_free: u64,
    /// Bytes written since the last check.
    since_check: AtomicU64,
}

impl Floor {
    /// A floor of `min_free` bytes on the file systems of the repo at `path`.
    pub(crate) fn new(path: &Path, min_free: u64) -> Floor {
        Floor { path: path.to_path_buf(), min_free, since_check: AtomicU64::new(u64::MAX / 2) }
    }

    /// Whether `len` more bytes may be written; an error naming the floor when not.
    pub(crate) fn check(&self, len: u64) -> io::Result<()> {
        let since = self.since_check.fetch_add(len, Ordering::Relaxed) + len;
        if since < CHECK_EVERY {
            return Ok(());
        }
        self.since_check.store(0, Ordering::Relaxed);
        let free = repo_available(&self.path)?;
        let reserve_missing = !self.path.join(RESERVE_FILE).exists();
        let floor = self.min_free + if reserve_missing { RESERVE_BYTES } else { 0 };
        if free < floor.saturating_add(len.max(CHECK_EVERY)) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, below_floor(free, floor)));
        }
        Ok(())
    }

    /// Check now, whatever was written since the last check (before a command starts writing).
    pub(crate) fn check_now(&self) -> io::Result<()> {
        self.since_check.store(u64::MAX / 2, Ordering::Relaxed);
        self.check(0)
    }
}

/// The message for a write refused at the floor.
pub(crate) fn below_floor(free: u64, floor: u64) -> String {
    format!(
        "disk full: the repo's disk has {} free, below the {} that cairn keeps free (store.min_free_bytes, \
         plus the space reserve while it is missing) so that nothing already stored is put at risk. Free \
         some space (`cairn repo gc`, or delete other files) and retry; reads keep working",
        human(free),
        human(floor)
    )
}

/// Bytes as MiB/GiB for messages.
pub fn human(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1024 * 1024 * 1024 {
        format!("{:.1} GiB", n as f64 / (MIB * 1024.0))
    } else {
        format!("{:.1} MiB", n as f64 / MIB)
    }
}

/// Remove what sled leaves behind when a snapshot write fails (an empty or partial
/// `snap.*.generating`, which sled 0.34 would otherwise read as the newest snapshot and then
/// report "Read corrupted data" on every open). Such a file is never complete: sled renames a
/// snapshot to its final name only after writing and syncing it.
pub(crate) fn recover_meta_leftovers(meta_dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(meta_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && (name.ends_with(".generating") || name.ends_with(".in___motion")) {
            fs::remove_file(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Before opening the metadata engine: release the reserve when the disk is too full for sled
/// to start. Returns whether it was released.
pub(crate) fn release_reserve_if_full(repo: &Path) -> bool {
    let reserve = repo.join(RESERVE_FILE);
    if !reserve.exists() || available(&repo.join("meta")).or_else(|_| available(repo)).is_ok_and(|f| f >= OPEN_ROOM) {
        return false;
    }
    fs::remove_file(&reserve).is_ok()
}

/// After a successful open: put the reserve back when there is room for it above the floor.
/// Best effort: a failure leaves a partial reserve removed and the repo as it was.
pub(crate) fn restore_reserve(repo: &Path, min_free: u64) {
    let reserve = repo.join(RESERVE_FILE);
    if reserve.metadata().is_ok_and(|m| m.len() == RESERVE_BYTES) {
        return;
    }
    if !available(repo).is_ok_and(|free| free >= RESERVE_BYTES + min_free + OPEN_ROOM) {
        return;
    }
    let tmp = repo.join(format!("{RESERVE_FILE}.tmp"));
    let written = (|| -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        // Real zeros, not a sparse file: the space must be allocated to be worth anything.
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..RESERVE_BYTES / zeros.len() as u64 {
            f.write_all(&zeros)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, &reserve)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generating_snapshots_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["snap.0000000000000261", "snap.0000000000000370.generating", "db", "conf"] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(recover_meta_leftovers(dir.path()).unwrap(), 1);
        let mut left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["conf", "db", "snap.0000000000000261"]);
    }

    #[test]
    fn the_floor_refuses_writes_it_cannot_leave_room_for() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).unwrap();
        assert!(Floor::new(dir.path(), 0).check_now().is_ok());
        let err = Floor::new(dir.path(), free.saturating_add(1 << 40)).check_now().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(err.to_string().contains("store.min_free_bytes"), "{err}");
        // The least of the repo folder, blocks/ and meta/ (a separate disk is tested in
        // tests/full_disk.rs).
        fs::create_dir(dir.path().join("blocks")).unwrap();
        assert!(repo_available(dir.path()).unwrap() <= available(dir.path()).unwrap());
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(libc::EIO)));
    }
}
