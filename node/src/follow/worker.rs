//! One follow's task: check what the target points at, fetch a new version completely, pin
//! and announce it, unpin the superseded one after the grace period; keep the name's newest
//! record and put it back into the DHT on the republish schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_protocol::Cid;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::env::{unix_now, Env};
use super::state::{self, Follow, Held, Root, Version};
use crate::dag_read::Blocks;
use crate::names;
use crate::pinning::{self, Fetch, PinRemoteError};
use crate::pins::{self, PinKind};

/// First wait after a failed check; doubled per failure up to the check interval.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// How often a follower announces itself under the name's followers key (provider records
/// live 48 h) and re-puts the name's record, at most.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(12 * 3600);

/// What a check came to.
enum Checked {
    /// Up to date, or a new version is now held.
    Current,
    /// A version was refused (too large); the last complete one stays. Not retried.
    Refused(String),
}

/// Run one follow until `stop`. `wake` starts a check at once (a newer record arrived).
pub(super) async fn run(env: Arc<Env>, mut f: Follow, wake: Arc<Notify>, stop: CancellationToken) {
    if let (Some(name), Some(record)) = (f.name(), f.record.clone()) {
        // The kept record answers lookups and Fetch requests from here, even with its
        // publisher gone.
        if let Err(e) = env.names.offer(name, record).await {
            tracing::debug!(%name, "kept record not offered: {e}");
        }
    }
    let mut next_announce = Instant::now();
    let mut fresh = true;
    loop {
        if Instant::now() >= next_announce {
            next_announce = Instant::now() + ANNOUNCE_EVERY.min(env.republish_every);
            // DHT walks take seconds: they must not hold up the check.
            tokio::spawn(announce(env.clone(), f.clone()));
        }
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            r = check(&env, &mut f, fresh) => r,
        };
        match outcome {
            Ok(Checked::Current) => {
                f.failures = 0;
                f.last_error = None;
            }
            Ok(Checked::Refused(why)) => {
                f.failures = 0;
                f.last_error = Some(why);
            }
            Err(why) => {
                f.failures = f.failures.saturating_add(1);
                tracing::warn!(follow = %f.label, "{why}");
                f.last_error = Some(why);
            }
        }
        unpin_superseded(&env, &mut f).await;
        save(&env, &f).await;
        let mut wait = match f.failures {
            0 => env.interval,
            n => (FIRST_BACKOFF * 2u32.saturating_pow(n.min(16) - 1)).min(env.interval),
        };
        if let Some(first) = f.superseded.iter().map(|(_, at)| *at).min() {
            wait = wait.min(Duration::from_secs(first.saturating_sub(unix_now())).max(Duration::from_secs(1)));
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => fresh = false,
            _ = tokio::time::sleep(wait) => fresh = true,
        }
    }
}

async fn save(env: &Env, f: &Follow) {
    let (store, f) = (env.store.clone(), f.clone());
    match store.handle().call(move |s| state::save(s, &f)).await {
        Ok(()) => {}
        Err(e) => tracing::warn!("follow not saved: {e}"),
    }
}

/// Announce this node as a follower of the name, and put the name's newest record back into
/// the DHT while it is valid (only its key's holder can sign a later one).
async fn announce(env: Arc<Env>, f: Follow) {
    let Some(name) = f.name() else { return };
    if let Err(e) = env.net.provide(names::followers_key(&name)).await {
        tracing::debug!(%name, "not announced as a follower (retried): {e}");
    }
    let valid = f.record_eol.is_some_and(|eol| eol > crate::net::now_nanos());
    if let (Some(record), true) = (f.record.clone(), valid) {
        if let Err(e) = env.net.put_value(name.routing_key(), record).await {
            tracing::debug!(%name, "kept record not re-put: {e}");
        }
    }
}

/// What the target points at now: the root and the record's sequence number.
async fn current(env: &Env, f: &mut Follow, fresh: bool) -> Result<Version, String> {
    let Some(name) = f.name() else {
        let cid = Cid::try_from(f.target.as_str()).map_err(|e| format!("bad target {}: {e}", f.target))?;
        return Ok(Version { cid: Root(cid), sequence: 0 });
    };
    let r = env.names.resolve(name, fresh).await.map_err(|e| e.to_string())?;
    let kept = (f.record_sequence.unwrap_or(0), f.record_eol.unwrap_or(i128::MIN));
    if f.record.is_none() || (r.sequence, r.eol_nanos) > kept {
        f.record = Some(r.record.clone());
        f.record_sequence = Some(r.sequence);
        f.record_eol = Some(r.eol_nanos);
    }
    let path = if r.value.starts_with("/ipns/") {
        let names = env.names.clone();
        names::follow(&r.value, true, |n| {
            let names = names.clone();
            async move { names.resolve(n, fresh).await }
        })
        .await
        .map_err(|e| e.to_string())?
        .0
    } else {
        r.value.clone()
    };
    let (cid, segments) = crate::exporter::parse_path(&path).map_err(|e| format!("{name} points at {path}: {e}"))?;
    let mut blocks = Blocks::new(env.store.clone(), Some(env.session()), CancellationToken::new());
    let root = blocks.resolve(cid, &segments).await.map_err(|e| format!("resolving {path}: {e}"))?;
    Ok(Version { cid: Root(root), sequence: r.sequence })
}

/// One check: resolve, and fetch, pin and announce a new version.
async fn check(env: &Env, f: &mut Follow, fresh: bool) -> Result<Checked, String> {
    f.last_check = unix_now();
    let now = current(env, f, fresh).await?;
    if f.held.as_ref().is_some_and(|h| h.version.cid == now.cid) {
        f.fetching = None;
        return Ok(Checked::Current);
    }
    if f.refused == Some(now.cid) {
        return Ok(Checked::Refused(f.last_error.clone().unwrap_or_default()));
    }
    f.fetching = Some(now.clone());
    save(env, f).await;
    let root = now.cid.0;
    let how = Fetch { recursive: true, max_bytes: Some(f.max_bytes), name: Some(f.pin_name()), progress: &env.pinning };
    let keeping = match &f.held {
        Some(h) => format!("; still holding {}", h.version.cid.0),
        None => String::new(),
    };
    let (blocks, bytes) = match pinning::fetch_dag(&env.store, &env.session(), root, how).await {
        Ok(done) => done,
        Err(PinRemoteError::TooLarge { limit, seen }) => {
            f.fetching = None;
            f.refused = Some(now.cid);
            return Ok(Checked::Refused(format!(
                "version {root} (sequence {}) refused: larger than the follow's limit of {limit} bytes \
                 (stopped at {seen} bytes; to allow it: `cairn follow rm --keep {label}`, then `cairn follow \
                 add {} --as {label} --max-bytes N`){keeping}",
                now.sequence,
                f.target,
                label = f.label
            )));
        }
        Err(e) => return Err(format!("fetching version {root} (sequence {}): {e}{keeping}", now.sequence)),
    };
    let (store, pin_name) = (env.store.clone(), f.pin_name());
    store
        .handle()
        .call(move |s| Ok(pins::add(s, &root, PinKind::Recursive, Some(pin_name)).map_err(|e| e.to_string())))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("pinning version {root}: {e}"))?;
    crate::provider::announce(&env.store, &env.provider, env.strategy, vec![root]).await;
    if let Some(old) = f.held.take() {
        f.superseded.push((old.version.cid, unix_now() + env.grace.as_secs()));
    }
    tracing::info!(follow = %f.label, %root, sequence = now.sequence, blocks, bytes, "now holding a new version");
    f.held = Some(Held { version: now, blocks, bytes, since: unix_now() });
    f.fetching = None;
    f.refused = None;
    Ok(Checked::Current)
}

/// Unpin superseded versions whose grace period is over (only pins this follow made).
async fn unpin_superseded(env: &Env, f: &mut Follow) {
    let now = unix_now();
    let held = f.held.as_ref().map(|h| h.version.cid);
    let (due, later): (Vec<_>, Vec<_>) = f.superseded.iter().copied().partition(|(_, at)| *at <= now);
    if due.is_empty() {
        return;
    }
    f.superseded = later;
    let roots: Vec<Cid> = due.into_iter().map(|(c, _)| c).filter(|c| Some(*c) != held).map(|c| c.0).collect();
    let pin_name = f.pin_name();
    let unpinned = env.store.handle().call(move |s| Ok(unpin_own(s, &roots, &pin_name))).await.unwrap_or_default();
    if !unpinned.is_empty() {
        env.provider.forget(unpinned).await;
    }
}

/// Unpin those of `roots` pinned under `pin_name` (a pin someone else made stays); returns
/// the blocks no pin reaches any more, to stop announcing.
pub(super) fn unpin_own(store: &crate::store::Store, roots: &[Cid], pin_name: &str) -> Vec<Cid> {
    let mut removed = Vec::new();
    for root in roots {
        let ours = matches!(pins::get(store, root), Ok(Some(p)) if p.name.as_deref() == Some(pin_name));
        if ours && pins::rm(store, root).is_ok() {
            removed.push(*root);
        }
    }
    crate::gc::unreached(store, &removed).unwrap_or_default()
}
