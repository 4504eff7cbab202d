//! A DHT under churn: a testnet of bare swarms where some nodes announce keys, then a share of
//! the others is taken off the network at once (their swarms stop, so dials to them fail as
//! they would to a crashed host), and the survivors look every key up. What the IPFS network
//! does all the time: the promise that content stays findable rests on lookups routing around
//! the dead.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_protocol::cids::{cid_for, HashFn, RAW};
use cairn_protocol::Cid;
use futures::StreamExt;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use super::{networks_with_tables, TestnetError};
use crate::net::Network;
use crate::provider::sweep;

/// Nodes that announce keys (never taken down: the content's hosts stay up, the DHT around
/// them churns).
const PROVIDERS: usize = 10;
/// Nodes that look keys up (survivors by construction).
const ASKERS: usize = 10;
/// Longest wait for one lookup's first provider.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lookups running at once.
const PARALLEL_LOOKUPS: usize = 8;
/// How long a connection stays open after its last request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// One churn experiment.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Nodes in the testnet (at least providers + askers + 1).
    pub nodes: usize,
    /// Keys announced, then looked up.
    pub keys: usize,
    /// Share of the nodes taken down after the keys were announced (0.0 to 0.9).
    pub killed: f64,
    /// Seeds which nodes are taken down.
    pub seed: u64,
}

/// What the lookups after the churn found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plan this ran.
    pub plan: Plan,
    /// Nodes actually taken down.
    pub killed: usize,
    /// Lookups that found the key's provider.
    pub found: usize,
    /// DHT requests sent until the provider was found, per successful lookup.
    pub asked: Vec<u32>,
    /// Milliseconds until the provider was found, per successful lookup.
    pub latency_ms: Vec<f64>,
    /// Seconds the testnet took to start and fill its routing tables.
    pub setup_secs: f64,
    /// Seconds the announcing took, before any node went down.
    pub provide_secs: f64,
    /// Seconds all the lookups took.
    pub lookup_secs: f64,
    /// The lookups that did not find the provider, and why.
    pub misses: Vec<Miss>,
}

/// A lookup that did not find its key's provider.
#[derive(Clone, Debug)]
pub struct Miss {
    /// Index of the key.
    pub key: usize,
    /// Node that looked it up (index in the testnet).
    pub asker: usize,
    /// Node that announced it.
    pub provider: usize,
    /// What happened instead.
    pub reason: MissReason,
}

/// Why a lookup missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissReason {
    /// The search ended without a provider, after this many requests.
    Ended(u32),
    /// No provider within the lookup's time limit.
    TimedOut(u32),
    /// Another peer was named as the provider.
    OtherProvider,
    /// The asker's swarm refused the search.
    Refused(String),
}

impl Report {
    /// Share of lookups that found the provider.
    pub fn success_rate(&self) -> f64 {
        self.found as f64 / self.plan.keys.max(1) as f64
    }
}

/// Errors of the experiment's set-up (a lookup that finds nothing is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    /// The testnet did not start.
    #[error(transparent)]
    Testnet(#[from] TestnetError),
    /// The plan cannot run.
    #[error("churn plan: {0}")]
    Plan(String),
    /// Announcing the keys failed before any churn.
    #[error("announcing keys: {0}")]
    Provide(String),
}

/// What the latest run is doing, for a watchdog's message.
static PHASE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn set_phase(phase: String) {
    tracing::info!("churn: {phase}");
    *PHASE.lock().unwrap_or_else(|e| e.into_inner()) = phase;
}

/// The latest run's phase and progress ("announcing: 7 of 10 providers done", say).
pub fn phase() -> String {
    PHASE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Run `plan` on a fresh testnet, then stop it.
pub async fn run(plan: Plan) -> Result<Report, ChurnError> {
    if plan.nodes < PROVIDERS + ASKERS + 1 || !(0.0..=0.9).contains(&plan.killed) {
        return Err(ChurnError::Plan(format!("{} nodes, {} killed", plan.nodes, plan.killed)));
    }
    let shutdown = CancellationToken::new();
    let result = run_on(plan, &shutdown).await;
    shutdown.cancel();
    result
}

async fn run_on(plan: Plan, shutdown: &CancellationToken) -> Result<Report, ChurnError> {
    set_phase(format!("starting {} nodes", plan.nodes));
    let t = Instant::now();
    let nets = networks_with_tables(plan.nodes, shutdown, |c| {
        c.pubsub = false;
        c.dht_auto_bootstrap = false;
        c.dht_table_inserts = false;
        // Connections close soon after their last request, as on a busy public node: hundreds
        // of in-process nodes each holding a connection to most others would spend the run
        // polling them.
        c.idle_timeout = IDLE_TIMEOUT;
    })
    .await?;
    let setup_secs = t.elapsed().as_secs_f64();
    set_phase(format!("{} nodes up in {setup_secs:.1} s; announcing {} keys", plan.nodes, plan.keys));
    let providers: Vec<&Network> = nets[1..=PROVIDERS].iter().map(|(n, _)| n).collect();
    let askers: Vec<&Network> = nets[PROVIDERS + 1..=PROVIDERS + ASKERS].iter().map(|(n, _)| n).collect();
    let salt: u64 = rand::random();
    let keys: Vec<Cid> = (0..plan.keys as u64)
        .map(|i| cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &[salt.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect();

    // Announce: key i from provider i % PROVIDERS, each provider's keys in one sweep.
    let t = Instant::now();
    let swept = AtomicUsize::new(0);
    let sweeps = providers.iter().enumerate().map(|(p, net)| {
        let mine: Vec<Cid> = keys.iter().skip(p).step_by(PROVIDERS).copied().collect();
        let swept = &swept;
        async move {
            let report = sweep::sweep(net, mine).await;
            let done = swept.fetch_add(1, Ordering::Relaxed) + 1;
            set_phase(format!("announcing: {done} of {PROVIDERS} providers done"));
            report
        }
    });
    for report in futures::future::join_all(sweeps).await {
        let report = report.map_err(|e| ChurnError::Provide(e.to_string()))?;
        if !report.failed.is_empty() {
            return Err(ChurnError::Provide(format!("{} keys found no DHT peer", report.failed.len())));
        }
    }
    let provide_secs = t.elapsed().as_secs_f64();
    set_phase(format!("{} keys announced in {provide_secs:.1} s; taking nodes down", plan.keys));

    // Churn: take down a share of the nodes that neither provide nor ask, all at once.
    let mut candidates: Vec<usize> = (0..plan.nodes).filter(|i| !(1..=PROVIDERS + ASKERS).contains(i)).collect();
    candidates.shuffle(&mut rand::rngs::StdRng::seed_from_u64(plan.seed));
    let kill = ((plan.nodes as f64 * plan.killed).round() as usize).min(candidates.len());
    let dead: HashSet<usize> = candidates.into_iter().take(kill).collect();
    for i in &dead {
        nets[*i].1.cancel();
    }
    // Lookups come long after announcements: let the announcing's connections close first, so
    // every share down starts from the same state (and no lookup rides on one of them).
    tokio::time::sleep(IDLE_TIMEOUT + Duration::from_millis(500)).await;

    // Look every key up from the askers.
    let mut open = 0;
    for (i, (net, _)) in nets.iter().enumerate() {
        if !dead.contains(&i) {
            open += net.peers().await.map(|p| p.iter().map(|p| p.connections as usize).sum::<usize>()).unwrap_or(0);
        }
    }
    set_phase(format!("{} nodes down, {open} connection ends open; looking {} keys up", dead.len(), plan.keys));
    let t = Instant::now();
    let looked = AtomicUsize::new(0);
    let lookups = keys.iter().enumerate().map(|(i, key)| {
        let asker = askers[i % ASKERS];
        let provider = providers[i % PROVIDERS].local_peer_id();
        let miss =
            move |reason| Miss { key: i, asker: PROVIDERS + 1 + i % ASKERS, provider: 1 + i % PROVIDERS, reason };
        let looked = &looked;
        async move {
            let done = looked.fetch_add(1, Ordering::Relaxed);
            if done.is_multiple_of(100) {
                set_phase(format!("lookups: {done} of {} started", plan.keys));
            }
            let t = Instant::now();
            let (mut found, asked) =
                asker.find_providers_counted(*key, 1).await.map_err(|e| miss(MissReason::Refused(e.to_string())))?;
            let asked_now = || asked.load(Ordering::Relaxed);
            match tokio::time::timeout(LOOKUP_TIMEOUT, found.recv()).await {
                Ok(Some(p)) if p == provider => Ok((asked_now(), t.elapsed().as_secs_f64() * 1000.0)),
                Ok(Some(_)) => Err(miss(MissReason::OtherProvider)),
                Ok(None) => Err(miss(MissReason::Ended(asked_now()))),
                Err(_) => Err(miss(MissReason::TimedOut(asked_now()))),
            }
        }
    });
    let results: Vec<Result<(u32, f64), Miss>> =
        futures::stream::iter(lookups).buffer_unordered(PARALLEL_LOOKUPS).collect().await;
    let lookup_secs = t.elapsed().as_secs_f64();
    set_phase(format!("lookups done in {lookup_secs:.1} s"));
    let (hits, misses): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let (asked, latency_ms): (Vec<u32>, Vec<f64>) = hits.into_iter().flatten().unzip();
    let mut misses: Vec<Miss> = misses.into_iter().filter_map(Result::err).collect();
    misses.sort_by_key(|m| m.key);
    Ok(Report {
        plan,
        killed: dead.len(),
        found: asked.len(),
        asked,
        latency_ms,
        setup_secs,
        provide_secs,
        lookup_secs,
        misses,
    })
}
