//! The Prometheus endpoint after a real transfer between two daemons on 127.0.0.1: the text is
//! accepted by the reference parser (the official Python client's OpenMetrics parser), and the
//! Bitswap, DHT, connection, bandwidth and gateway counters moved on both sides.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use cairn_tests::{bootstrap_to, curl, finds_provider, peer_id, swarm_addr, Daemon, TestRepo};

/// Parse `text` with `prometheus_client.openmetrics.parser` (Debian's python3-prometheus-client)
/// and return every sample as `name{labels}` → value; fails if the parser rejects the text.
fn parse(text: &str) -> Result<HashMap<String, f64>> {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}}\t{s.value}")
"#;
    // Debian's interpreter, which has the Debian package (a pyenv one may come first in PATH).
    let python = if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running the Prometheus parser")?;
    child.stdin.take().context("stdin")?.write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("the parser rejected the exposition: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut samples = HashMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let (key, value) = line.split_once('\t').context("a sample line")?;
        samples.insert(key.to_string(), value.parse()?);
    }
    Ok(samples)
}

/// The sum of every sample of `name` whose labels contain all of `labels`.
fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{")) && labels.iter().all(|l| k.contains(l)))
        .map(|(_, v)| v)
        .sum()
}

fn scrape(d: &Daemon) -> Result<(String, HashMap<String, f64>)> {
    let reply = curl(&format!("http://{}/debug/metrics/prometheus", d.api), &[])?;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let ct = reply.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/openmetrics-text"), "content type {ct}");
    let text = String::from_utf8(reply.body)?;
    let samples = parse(&text)?;
    Ok((text, samples))
}

#[test]
fn after_a_transfer_the_metrics_parse_and_count_bitswap_dht_connections_and_the_gateway() -> Result<()> {
    let a = TestRepo::new()?;
    let da = Daemon::start(&a)?;
    let b = TestRepo::new()?;
    bootstrap_to(&b, &[swarm_addr(&a)?])?;
    let db = Daemon::start(&b)?;

    let size = 3 << 20;
    let src = a.scratch("file.bin");
    fs::write(&src, cairn_tests::prng(size))?;
    let cid = a.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    // B finds A through the DHT, then fetches the file over Bitswap and through its gateway.
    assert!(finds_provider(&b, &cid, &peer_id(&a)?), "B found A as a provider");
    let out = b.cmd(&["cat", &cid]).output()?;
    assert!(out.status.success() && out.stdout == fs::read(&src)?, "B read A's file");
    assert_eq!(curl(&format!("{}/ipfs/{cid}", db.gateway), &[])?.status, 200);
    assert_eq!(curl(&format!("{}/ipfs/not-a-cid", db.gateway), &[])?.status, 400);

    let (text, bm) = scrape(&db)?;
    let at_least = |m: &HashMap<String, f64>, name: &str, labels: &[&str], min: f64| {
        let v = sum(m, name, labels);
        assert!(v >= min, "{name}{labels:?} = {v}, expected at least {min}\n{text}");
    };
    // Bitswap on the fetching side.
    at_least(&bm, "cairn_bitswap_blocks_received_total", &[], 4.0); // three 1 MiB leaves and the root
    at_least(&bm, "cairn_bitswap_received_bytes_total", &[], size as f64);
    // The DHT: B's provider lookups ran and finished.
    at_least(&bm, "libp2p_kad_query_result_num_requests_count", &[], 1.0);
    at_least(&bm, "libp2p_kad_query_result_get_providers_ok_count", &[], 1.0);
    // Connections, as libp2p and as cairn count them, and the bytes they carried.
    at_least(&bm, "libp2p_swarm_connections_established_total", &[], 1.0);
    at_least(&bm, "cairn_connections_established_total", &["kind=\"direct\""], 1.0);
    at_least(&bm, "cairn_peers", &["link=\"direct\""], 1.0);
    at_least(&bm, "libp2p_bandwidth_bytes_total", &["direction=\"Inbound\""], size as f64);
    // The gateway's answers by status, and the store.
    at_least(&bm, "cairn_gateway_requests_total", &["status=\"200\""], 1.0);
    at_least(&bm, "cairn_gateway_requests_total", &["status=\"400\""], 1.0);
    at_least(&bm, "cairn_store_blocks_size_bytes", &[], size as f64);
    assert_eq!(sum(&bm, "cairn_reachability", &[]), 1.0, "exactly one reachability state is set");

    // The serving side sent the blocks and answered B's DHT requests.
    let (text, am) = scrape(&da)?;
    let v = sum(&am, "cairn_bitswap_sent_bytes_total", &[]);
    assert!(v >= size as f64, "A sent {v} bytes\n{text}");
    let v = sum(&am, "libp2p_kad_inbound_requests_total", &[]);
    assert!(v >= 1.0, "A answered {v} DHT requests\n{text}");
    let v = sum(&am, "cairn_pins", &[]);
    assert!(v >= 1.0, "A's pin is counted ({v})\n{text}");
    assert!(sum(&am, "cairn_provide_provided_total", &[]) >= 1.0, "A announced its blocks\n{text}");
    Ok(())
}
