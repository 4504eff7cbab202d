//! Following: keeping the latest complete version of a name (or a CID) pinned, served and
//! announced, and keeping the name itself alive after its publisher goes.
//!
//! Each follow has one task ([`worker`]): it resolves the name every
//! `follow.check_interval_secs` (at once when a newer record arrives, over PubSub or
//! otherwise: [`crate::names::Names::updates`]), fetches a new version completely, counting
//! its bytes as they come against the follow's limit, then pins it (`follow:{label}`),
//! announces it, and unpins the superseded version after `follow.grace_secs`. A version that
//! does not complete never replaces the last complete one, and is never pinned; failures are
//! retried with backoff. The follow's state is written after every change ([`state`]), so
//! follows and their fetches resume after a restart.
//!
//! Followers keep the name's newest valid record, answer lookups and PubSub Fetch requests
//! with it (through the name service), put it back into the DHT on the republish schedule,
//! and announce themselves under the name's followers key, where `cairn health` and other
//! followers find them.

mod env;
pub(crate) mod state;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cairn_protocol::names::Name;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{Store, StoreError};
pub(crate) use env::{unix_now, Env};
pub(crate) use state::Follow;

/// Why a follow command failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Neither a name nor a CID.
    #[error("{0:?} is neither an IPNS name (k51…, /ipns/…) nor a CID")]
    BadTarget(String),
    /// Already followed.
    #[error("{0} is followed already (as {1:?})")]
    Exists(String, String),
    /// The label is taken by another follow.
    #[error("the label {0:?} is taken by the follow of {1}")]
    LabelTaken(String, String),
    /// Not followed.
    #[error("{0:?} is not followed (see `cairn follow ls`)")]
    NotFollowed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A follow's running task.
struct Running {
    name: Option<Name>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    /// Closed when the task has ended (its sender is dropped then).
    ended: tokio::sync::oneshot::Receiver<()>,
}

/// How long `follow rm` waits for the follow's task to end before removing it anyway.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Handle to the follows of a running node. Cheap to clone.
#[derive(Clone)]
pub struct Follows {
    env: Arc<Env>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// The canonical form of a target: a name as `k51…`, a CID as printed.
pub(crate) fn target_of(text: &str) -> Result<String, FollowError> {
    let t = text.trim().trim_end_matches('/');
    if let Ok(name) = t.parse::<Name>() {
        return Ok(name.to_string());
    }
    let c = t.strip_prefix("/ipfs/").unwrap_or(t);
    cairn_protocol::cids::parse(c).map(|c| c.to_string()).map_err(|_| FollowError::BadTarget(text.to_string()))
}

/// Record a new follow in the store (no task: the daemon starts it, now or at its start).
pub(crate) fn add(store: &Store, target: &str, label: Option<String>, max_bytes: u64) -> Result<Follow, FollowError> {
    let target = target_of(target)?;
    let label = label.filter(|l| !l.trim().is_empty()).unwrap_or_else(|| target.clone());
    for f in state::all(store)? {
        if f.target == target {
            return Err(FollowError::Exists(target, f.label));
        }
        if f.label == label {
            return Err(FollowError::LabelTaken(label, f.target));
        }
    }
    let f = Follow {
        target,
        label,
        max_bytes,
        held: None,
        fetching: None,
        refused: None,
        superseded: Vec::new(),
        last_check: 0,
        last_error: None,
        failures: 0,
        record: None,
        record_sequence: None,
        record_eol: None,
        added: unix_now(),
    };
    state::save(store, &f)?;
    Ok(f)
}

/// Find a follow by target or label.
pub(crate) fn find(store: &Store, what: &str) -> Result<Follow, FollowError> {
    let target = target_of(what).ok();
    state::all(store)?
        .into_iter()
        .find(|f| f.label == what || Some(&f.target) == target.as_ref())
        .ok_or_else(|| FollowError::NotFollowed(what.to_string()))
}

/// Forget a follow and, unless `keep`, unpin its versions (pins it made only). Returns the
/// follow and the blocks no pin reaches any more.
pub(crate) fn remove(store: &Store, what: &str, keep: bool) -> Result<(Follow, Vec<cairn_protocol::Cid>), FollowError> {
    let f = find(store, what)?;
    state::remove(store, &f.target)?;
    let mut roots: Vec<_> = f.superseded.iter().map(|(c, _)| c.0).collect();
    if !keep {
        roots.extend(f.held.as_ref().map(|h| h.version.cid.0));
    }
    let unreached = worker::unpin_own(store, &roots, &f.pin_name());
    Ok((f, unreached))
}

impl Follows {
    /// Start a task for every follow in the store, and the listener that wakes a follow when
    /// a newer record of its name arrives.
    pub(crate) fn start(env: Env, shutdown: CancellationToken, tasks: &TaskTracker) -> Follows {
        let follows = Follows {
            env: Arc::new(env),
            running: Default::default(),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        };
        let (f, stop) = (follows.clone(), shutdown);
        tasks.spawn(async move {
            let mut updates = f.env.names.updates();
            let store = f.env.store.handle();
            match store.call(state::all).await {
                Ok(all) => {
                    for one in all {
                        f.spawn(one);
                    }
                }
                Err(e) => tracing::warn!("follows not started: {e}"),
            }
            loop {
                let update = tokio::select! {
                    _ = stop.cancelled() => return,
                    u = updates.recv() => u,
                };
                match update {
                    Ok((name, _)) => f.wake(|n| n == Some(name)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => f.wake(|n| n.is_some()),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        follows
    }

    fn wake(&self, which: impl Fn(Option<Name>) -> bool) {
        for r in self.running.lock().expect("follows lock").values() {
            if which(r.name) {
                r.wake.notify_one();
            }
        }
    }

    fn spawn(&self, f: Follow) {
        let stop = self.shutdown.child_token();
        let wake = Arc::new(Notify::new());
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let running = Running { name: f.name(), wake: wake.clone(), stop: stop.clone(), ended };
        if let Some(old) = self.running.lock().expect("follows lock").insert(f.target.clone(), running) {
            old.stop.cancel();
        }
        let env = self.env.clone();
        self.tasks.spawn(async move {
            worker::run(env, f, wake, stop).await;
            drop(ended_tx);
        });
    }

    /// Follow `target` from now on.
    pub(crate) async fn add(
        &self,
        target: String,
        label: Option<String>,
        max_bytes: u64,
    ) -> Result<Follow, FollowError> {
        let store = self.env.store.handle();
        let f = store.call(move |s| Ok(add(s, &target, label, max_bytes))).await.map_err(FollowError::Store)??;
        self.spawn(f.clone());
        Ok(f)
    }

    /// Stop following (by target or label); unpin its versions unless `keep`.
    pub(crate) async fn remove(&self, what: String, keep: bool) -> Result<Follow, FollowError> {
        let asked = what.clone();
        let target = target_of(&what).ok();
        let label_match = {
            let running = self.running.lock().expect("follows lock");
            running.keys().find(|t| Some(*t) == target.as_ref()).cloned()
        };
        // Stop the task first, so it does not write the follow back.
        let stop_target = match label_match {
            Some(t) => Some(t),
            None => self.env.store.handle().call(move |s| Ok(find(s, &what).map(|f| f.target))).await?.ok(),
        };
        let Some(t) = stop_target else {
            return Err(FollowError::NotFollowed(asked));
        };
        let running = self.running.lock().expect("follows lock").remove(&t);
        if let Some(r) = running {
            // The task writes the follow after each step: it must be gone before the follow is.
            r.stop.cancel();
            let _ = tokio::time::timeout(STOP_WAIT, r.ended).await;
        }
        let store = self.env.store.handle();
        let (f, unreached) = store.call(move |s| Ok(remove(s, &t, keep))).await??;
        if !unreached.is_empty() {
            self.env.provider.forget(unreached).await;
        }
        Ok(f)
    }

    /// How many follows run now.
    pub(crate) fn count(&self) -> usize {
        self.running.lock().expect("follows lock").len()
    }

    /// The fetch progress of a root being fetched (blocks, bytes).
    pub(crate) fn progress(&self, root: &cairn_protocol::Cid) -> Option<(u64, u64)> {
        self.env.pinning.get(root).map(|p| (p.blocks, p.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_one_canonical_form() {
        let name = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8";
        let peer = name.parse::<Name>().unwrap().peer_id().to_string();
        for form in [name.to_string(), format!("/ipns/{name}/"), peer, format!("/ipns/{name}")] {
            assert_eq!(target_of(&form).unwrap(), name, "{form}");
        }
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert_eq!(target_of(&format!("/ipfs/{cid}")).unwrap(), cid);
        assert!(matches!(target_of("not a thing"), Err(FollowError::BadTarget(_))));
    }

    #[test]
    fn a_follow_is_recorded_once_under_a_unique_label_and_removed_with_its_own_pins_only() {
        let dir = tempfile::tempdir().unwrap();
        crate::repo::Repo::init(dir.path(), "local").unwrap();
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        let store = repo.store();
        let name = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8";
        let f = add(store, name, Some("site".into()), 1000).unwrap();
        assert_eq!((f.label.as_str(), f.pin_name()), ("site", "follow:site".to_string()));
        assert!(matches!(add(store, &format!("/ipns/{name}"), None, 1), Err(FollowError::Exists(..))));
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert!(matches!(add(store, cid, Some("site".into()), 1), Err(FollowError::LabelTaken(..))));
        assert_eq!(find(store, "site").unwrap().target, name);
        assert_eq!(find(store, name).unwrap().label, "site");
        let (gone, _) = remove(store, "site", false).unwrap();
        assert_eq!(gone.target, name);
        assert!(matches!(find(store, "site"), Err(FollowError::NotFollowed(_))));
    }
}
