//! The operator's denylist: content the gateway refuses with 410. A text file, one entry per
//! line: a CID or `/ipfs/{cid}` (any path after the CID is ignored: the whole DAG under it is
//! refused wherever it is reached), `#` comments and blank lines skipped. A CID matches in any
//! version or base (the multihash is compared). The file is re-read when it changes, so an
//! operator edits it without restarting the daemon.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use cairn_protocol::{cids, Cid};

/// How often the file's modification time is checked.
const RECHECK: Duration = Duration::from_secs(2);

/// Denied multihashes, reloaded from a file.
pub(crate) struct Denylist {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    denied: HashSet<Vec<u8>>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Denylist {
    /// The list in `path` (which may not exist yet).
    pub(crate) fn open(path: PathBuf) -> Denylist {
        let list = Denylist { path, state: Mutex::new(State::default()) };
        list.refresh();
        list
    }

    /// Whether `cid` is denied.
    pub(crate) fn denies(&self, cid: &Cid) -> bool {
        self.refresh();
        self.state.lock().expect("denylist lock").denied.contains(&cid.hash().to_bytes())
    }

    fn refresh(&self) {
        let mut st = self.state.lock().expect("denylist lock");
        if st.checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return;
        }
        st.checked = Some(Instant::now());
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == st.modified {
            return;
        }
        st.modified = modified;
        st.denied = match std::fs::read_to_string(&self.path) {
            Ok(text) => parse(&text, &self.path.display().to_string()),
            Err(_) => HashSet::new(),
        };
    }
}

/// The multihashes listed in `text`; unparsable lines are logged and skipped.
fn parse(text: &str, origin: &str) -> HashSet<Vec<u8>> {
    let mut out = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let item = line.strip_prefix("/ipfs/").unwrap_or(line);
        let item = item.split('/').next().unwrap_or(item);
        match cids::parse(item) {
            Ok(cid) => {
                out.insert(cid.hash().to_bytes());
            }
            Err(e) => tracing::warn!("{origin}:{}: ignoring {line:?}: {e}", n + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_any_cid_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("denylist.txt");
        let list = Denylist::open(path.clone());
        let v0 = cids::parse("QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u").unwrap();
        assert!(!list.denies(&v0));
        std::fs::write(&path, format!("# blocked\n/ipfs/{}/some/path\nnot-a-cid\n", cids::to_v1(&v0))).unwrap();
        let fresh = Denylist::open(path);
        assert!(fresh.denies(&v0));
    }
}
