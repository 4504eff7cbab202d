//! A DHT under churn: a testnet of bare swarms where some nodes announce keys, then a share of
//! the others is taken off the network at once (their swarms stop, so dials to them fail as
//! they would to a crashed host), and the survivors look every key up. What the IPFS network
//! does all the time: the promise that content stays findable rests on lookups routing around
//! the dead.

use std::collections::HashSet;
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
    let t = Instant::now();
    let nets = networks_with_tables(plan.nodes, shutdown, |c| {
        c.pubsub = false;
        c.dht_auto_bootstrap = false;
        // Connections close soon after their last request, as on a busy public node: hundreds
        // of in-process nodes each holding a connection to most others would spend the run
        // polling them.
        c.idle_timeout = Duration::from_secs(2);
    })
    .await?;
    let setup_secs = t.elapsed().as_secs_f64();
    tracing::info!(nodes = plan.nodes, "churn: testnet up in {setup_secs:.1} s");
    let providers: Vec<&Network> = nets[1..=PROVIDERS].iter().map(|(n, _)| n).collect();
    let askers: Vec<&Network> = nets[PROVIDERS + 1..=PROVIDERS + ASKERS].iter().map(|(n, _)| n).collect();
    let salt: u64 = rand::random();
    let keys: Vec<Cid> = (0..plan.keys as u64)
        .map(|i| cid_for(cid::Version::V1, RAW, HashFn::Sha2_256, &[salt.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect();

    // Announce: key i from provider i % PROVIDERS, each provider's keys in one sweep.
    let t = Instant::now();
    let sweeps = providers.iter().enumerate().map(|(p, net)| {
        let mine: Vec<Cid> = keys.iter().skip(p).step_by(PROVIDERS).copied().collect();
        sweep::sweep(net, mine)
    });
    for report in futures::future::join_all(sweeps).await {
        let report = report.map_err(|e| ChurnError::Provide(e.to_string()))?;
        if !report.failed.is_empty() {
            return Err(ChurnError::Provide(format!("{} keys found no DHT peer", report.failed.len())));
        }
    }
    let provide_secs = t.elapsed().as_secs_f64();
    tracing::info!(keys = plan.keys, "churn: keys announced in {provide_secs:.1} s");

    // Churn: take down a share of the nodes that neither provide nor ask, all at once.
    let mut candidates: Vec<usize> = (0..plan.nodes).filter(|i| !(1..=PROVIDERS + ASKERS).contains(i)).collect();
    candidates.shuffle(&mut rand::rngs::StdRng::seed_from_u64(plan.seed));
    let kill = ((plan.nodes as f64 * plan.killed).round() as usize).min(candidates.len());
    let dead: HashSet<usize> = candidates.into_iter().take(kill).collect();
    for i in &dead {
        nets[*i].1.cancel();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Look every key up from the askers.
    let t = Instant::now();
    let lookups = keys.iter().enumerate().map(|(i, key)| {
        let asker = askers[i % ASKERS];
        let provider = providers[i % PROVIDERS].local_peer_id();
        async move {
            let t = Instant::now();
            let (mut found, asked) = asker.find_providers_counted(*key, 1).await.ok()?;
            match tokio::time::timeout(LOOKUP_TIMEOUT, found.recv()).await {
                Ok(Some(p)) if p == provider => {
                    Some((asked.load(std::sync::atomic::Ordering::Relaxed), t.elapsed().as_secs_f64() * 1000.0))
                }
                _ => None,
            }
        }
    });
    let results: Vec<Option<(u32, f64)>> =
        futures::stream::iter(lookups).buffer_unordered(PARALLEL_LOOKUPS).collect().await;
    let lookup_secs = t.elapsed().as_secs_f64();
    let (asked, latency_ms): (Vec<u32>, Vec<f64>) = results.into_iter().flatten().unzip();
    Ok(Report {
        plan,
        killed: dead.len(),
        found: asked.len(),
        asked,
        latency_ms,
        setup_secs,
        provide_secs,
        lookup_secs,
    })
}
