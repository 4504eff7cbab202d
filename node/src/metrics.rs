//! Prometheus metrics, served at `/debug/metrics/prometheus` on the API port.
//!
//! One registry holds libp2p's own metrics (connections and their errors, protocols peers
//! support, DHT queries, identify, ping, relay, hole punching, gossipsub, and bandwidth by
//! transport) and the gateway's responses by status, which are counted as they happen.
//! The rest (Bitswap, the provide schedule, reachability, the store and pins) lives in the
//! subsystems' own counters and is read when the endpoint is scraped, so no hot path updates a
//! second copy. The store is counted by walking its keys, so that figure is refreshed at most
//! every [`STORE_REFRESH`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::maintenance::{self, RepoStat};
use crate::node::Node;
use crate::ops::OpError;

/// The content type of the OpenMetrics text format, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a count of the store's blocks and bytes is reused before it is taken again.
pub const STORE_REFRESH: Duration = Duration::from_secs(30);

/// The node's metrics registry and the counters that are updated as events happen.
pub struct Metrics {
    registry: Registry,
    gateway: Family<Labels, Counter>,
    store: Mutex<Option<(Instant, RepoStat)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Wrap `registry` (libp2p's metrics already in it) and add the event counters.
    pub fn new(mut registry: Registry) -> Metrics {
        let gateway = Family::default();
        registry.sub_registry_with_prefix("cairn").register(
            "gateway_requests",
            "HTTP gateway responses by status code",
            gateway.clone(),
        );
        Metrics { registry, gateway, store: Mutex::new(None) }
    }

    /// Count one gateway response with `status`.
    pub fn gateway_response(&self, status: u16) {
        self.gateway.get_or_create(&vec![("status".to_string(), status.to_string())]).inc();
    }

    /// The whole exposition: the registry, then the figures read from the node now.
    pub async fn render(&self, node: &Node) -> Result<String, OpError> {
        let live = self.snapshot(node).await?;
        let mut text = String::new();
        encode_registry(&mut text, &self.registry).map_err(encode_failed)?;
        encode_registry(&mut text, &live).map_err(encode_failed)?;
        encode_eof(&mut text).map_err(encode_failed)?;
        Ok(text)
    }

    /// The figures kept by the subsystems, as a registry built for this scrape.
    async fn snapshot(&self, node: &Node) -> Result<Registry, OpError> {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("cairn");
        let counter = |r: &mut Registry, name: &str, help: &str, v: u64| r.register(name, help, ConstCounter::new(v));
        let gauge = |r: &mut Registry, name: &str, help: &str, v: i64| r.register(name, help, ConstGauge::new(v));

        let b = node.bitswap().stats().await?;
        let wants = node.bitswap().wantlist().await?.len();
        counter(r, "bitswap_blocks_received", "Wanted blocks received and verified", b.blocks_received);
        r.register_with_unit(
            "bitswap_received",
            "Bytes of wanted blocks received",
            Unit::Bytes,
            ConstCounter::new(b.bytes_received),
        );
        counter(r, "bitswap_blocks_sent", "Blocks sent to peers", b.blocks_sent);
        r.register_with_unit(
            "bitswap_sent",
            "Bytes of blocks sent to peers",
            Unit::Bytes,
            ConstCounter::new(b.bytes_sent),
        );
        counter(r, "bitswap_duplicate_blocks", "Blocks received again after they were delivered", b.dup_blocks);
        counter(r, "bitswap_messages_received", "Bitswap messages received and decoded", b.messages_received);
        counter(r, "bitswap_unwanted_blocks", "Blocks received that nobody here asked for", b.unwanted_blocks);
        counter(
            r,
            "bitswap_protocol_violations",
            "Inbound streams reset for a protocol violation",
            b.protocol_violations,
        );
        counter(r, "bitswap_peers_banned", "Peers banned since start", b.peers_banned);
        gauge(r, "bitswap_wants", "Blocks this node is fetching now", to_i64(wants as u64));
        gauge(r, "bitswap_ledger_peers", "Peers whose wants this node holds", to_i64(b.ledger_peers));
        gauge(r, "bitswap_ledger_wants", "Wants held for peers across every ledger", to_i64(b.ledger_wants));

        let p = node.provider().stat().await;
        gauge(r, "provide_queue", "Keys waiting for a DHT announcement", to_i64(p.queued));
        counter(r, "provide_provided", "Keys announced since start", p.provided);
        counter(r, "provide_failed", "Announcements that failed since start", p.failed);
        gauge(r, "provide_keys", "Keys in the announcement schedule", to_i64(p.total_keys));
        r.register_with_unit(
            "provide_lag",
            "How long the oldest due key is overdue",
            Unit::Seconds,
            ConstGauge::new(to_i64(p.lag_secs)),
        );
        counter(r, "provide_walks", "DHT walks made by provide sweeps since start", p.walks);

        let reach = node.net().reach().await?;
        let peers = node.net().peers().await?;
        let relayed = peers.iter().filter(|p| p.addr.contains("/p2p-circuit")).count() as i64;
        let established = counters("kind", &[("direct", reach.direct), ("relayed", reach.relayed)]);
        r.register(
            "connections_established",
            "Connections established since start, direct or through a relay",
            established,
        );
        let punches = counters("result", &[("success", reach.hole_punched), ("failure", reach.hole_punch_failed)]);
        r.register("hole_punches", "Relayed connections upgraded to direct ones by hole punching", punches);
        let connected = gauges("link", &[("direct", peers.len() as i64 - relayed), ("relayed", relayed)]);
        r.register("peers", "Connected peers, by their best connection", connected);
        gauge(r, "relay_reservations", "Relay reservations held now", to_i64(reach.relay_reservations));
        let now = serde_json::to_value(reach.reachability).ok().and_then(|v| v.as_str().map(String::from));
        let states = ["unknown", "public", "private"].map(|state| (state, i64::from(now.as_deref() == Some(state))));
        let reachable = gauges("state", &states);
        r.register("reachability", "1 for the node's reachability as AutoNAT and port mapping found it", reachable);

        let s = self.store_stat(node).await?;
        gauge(r, "store_blocks", "Blocks held", to_i64(s.blocks));
        r.register_with_unit(
            "store_blocks_size",
            "Bytes of blocks held",
            Unit::Bytes,
            ConstGauge::new(to_i64(s.block_bytes)),
        );
        r.register_with_unit(
            "store_meta_size",
            "Metadata bytes on disk",
            Unit::Bytes,
            ConstGauge::new(to_i64(s.meta_disk_bytes)),
        );
        r.register_with_unit(
            "store_max_size",
            "The storage budget (store.max_size_bytes; 0: none)",
            Unit::Bytes,
            ConstGauge::new(to_i64(node.repo().config().store.max_size_bytes)),
        );
        r.register_with_unit(
            "store_read_cache_size",
            "Bytes of verified blocks held in memory for hot reads (store.read_cache_bytes)",
            Unit::Bytes,
            ConstGauge::new(to_i64(node.store().read_cache_size() as u64)),
        );
        gauge(r, "pins", "Recursive and direct pins", to_i64(s.pins));
        gauge(r, "follows", "Sites and CIDs followed", to_i64(node.follows().count() as u64));
        Ok(root)
    }

    /// The store's counts, taken again once older than [`STORE_REFRESH`].
    async fn store_stat(&self, node: &Node) -> Result<RepoStat, OpError> {
        if let Some((at, s)) = &*self.store.lock().expect("metrics lock") {
            if at.elapsed() < STORE_REFRESH {
                return Ok(s.clone());
            }
        }
        let store = node.store().clone();
        let s = tokio::task::spawn_blocking(move || maintenance::stat(&store))
            .await
            .map_err(|e| OpError::failed(format!("counting the store: {e}")))?
            .map_err(|e| OpError::failed(format!("counting the store: {e}")))?;
        *self.store.lock().expect("metrics lock") = Some((Instant::now(), s.clone()));
        Ok(s)
    }
}

/// Label sets of one label each.
type Labels = Vec<(String, String)>;

/// A counter family with one label, a counter per value of it.
fn counters(label: &str, values: &[(&str, u64)]) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    for (value, n) in values {
        family.get_or_create(&vec![(label.to_string(), value.to_string())]).inc_by(*n);
    }
    family
}

/// A gauge family with one label, a gauge per value of it.
fn gauges(label: &str, values: &[(&str, i64)]) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (value, n) in values {
        family.get_or_create(&vec![(label.to_string(), value.to_string())]).set(*n);
    }
    family
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn encode_failed(e: std::fmt::Error) -> OpError {
    OpError::failed(format!("encoding the metrics: {e}"))
}
