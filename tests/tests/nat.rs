//! Home nodes behind NAT, in network namespaces the test builds: a "public" bridge with a
//! relay (and DHT) node, and two home networks, each behind its own masquerading router that
//! drops unsolicited packets. A home node keeps a reservation on the relay; another home node
//! finds its content through the DHT and fetches it through a volunteer relay whose circuits
//! carry any amount; or, through a relay with kubo's limits (128 KiB, 2 minutes), after the
//! two hole-punched a direct connection (DCUtR over TCP), in at least 8 of 10 attempts.

use std::time::Duration;

use anyhow::{Context, Result};
use cairn_tests::netns::{self, Lab};
use cairn_tests::{bootstrap_to, peer_id, set_config, swarm_addr_on, wait_for, Daemon, TestRepo};

/// A `local` repo in `ns`, listening on `ip`.
fn repo_in(ns: &str, ip: &str) -> Result<TestRepo> {
    let r = TestRepo::new()?.in_netns(ns);
    set_config(&r, "/ip4/127.0.0.1/tcp/0", &format!("/ip4/{ip}/tcp/0"))?;
    Ok(r)
}

/// `cairn id --json` of a running daemon.
fn id(repo: &TestRepo) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&repo.ok(&["id", "--json"])?)?)
}

/// A home network behind its own router: `router` on the public bridge at `wan_ip`, the home
/// node's namespace on the router's LAN `lan_net` (`192.168.N`).
fn home(lab: &mut Lab, public: &str, name: &str, wan_ip: &str, lan_net: &str) -> Result<String> {
    let router = lab.ns(&format!("{name}gw"))?;
    lab.wire(&router, "wan", &format!("{wan_ip}/24"), public, "br0")?;
    lab.bridge(&router, "lan")?;
    lab.addr(&router, "lan", &format!("{lan_net}.1/24"))?;
    lab.masquerade(&router, "wan")?;
    let host = lab.ns(name)?;
    lab.wire(&host, "eth0", &format!("{lan_net}.2/24"), &router, "lan")?;
    lab.route(&host, &format!("{lan_net}.1"))?;
    Ok(host)
}

#[test]
fn a_home_node_behind_nat_is_reached_through_a_volunteer_relay() -> Result<()> {
    let Some((to_a, counts)) = scenario("nat", false)? else { return Ok(()) };
    assert!(to_a.contains("/p2p-circuit"), "not relayed: {to_a}");
    assert!(counts["Relayed"].as_u64() >= Some(1) && counts["HolePunched"] == 0, "{counts}");
    Ok(())
}

#[test]
fn home_nodes_behind_nat_hole_punch_and_fetch_over_a_direct_connection() -> Result<()> {
    const ATTEMPTS: usize = 10;
    let mut direct = 0;
    for attempt in 0..ATTEMPTS {
        match scenario(&format!("punch{attempt}"), true) {
            Ok(None) => return Ok(()),
            Ok(Some((to_a, counts))) if !to_a.contains("/p2p-circuit") => {
                assert!(counts["HolePunched"].as_u64() >= Some(1), "the punch is counted: {counts}");
                direct += 1;
            }
            Ok(Some((to_a, _))) => println!("attempt {attempt}: still relayed ({to_a})"),
            Err(e) => println!("attempt {attempt}: {e:#}"),
        }
    }
    println!("hole punching over TCP: {direct} of {ATTEMPTS} fetches over a direct connection");
    assert!(direct >= 8, "only {direct} of {ATTEMPTS} hole punches succeeded");
    Ok(())
}

/// Build the topology, run the fetch, and return B's connection to A as `swarm peers` shows
/// it and B's connection counts from `cairn id` (`None`: skipped). With `punch`, the relay keeps kubo's circuit limits and both home
/// nodes hole-punch; without, the relay is a volunteer's without limits.
fn scenario(tag: &str, punch: bool) -> Result<Option<(String, serde_json::Value)>> {
    if let Some(why) = netns::unavailable() {
        println!("SKIPPED: {why}");
        return Ok(None);
    }
    let mut lab = Lab::new(tag);
    let public = lab.ns("pub")?;
    lab.bridge(&public, "br0")?;
    let relay_ns = lab.ns("relay")?;
    lab.wire(&relay_ns, "eth0", "10.50.0.10/24", &public, "br0")?;
    let na = home(&mut lab, &public, "a", "10.50.0.2", "192.168.10")?;
    let nb = home(&mut lab, &public, "b", "10.50.0.3", "192.168.20")?;

    // The relay: a volunteer's, circuits without a byte limit.
    let relay = TestRepo::new()?.in_netns(&relay_ns);
    set_config(&relay, "/ip4/127.0.0.1/tcp/0", "/ip4/10.50.0.10/tcp/4001")?;
    // A relay serves at confirmed public addresses: this one announces its own.
    set_config(&relay, "announce = []", "announce = [\"/ip4/10.50.0.10/tcp/4001\"]")?;
    set_config(&relay, "relay_service = false", "relay_service = true")?;
    if !punch {
        set_config(&relay, "relay_max_circuit_bytes = 131072", "relay_max_circuit_bytes = 0")?;
    }
    let _dr = Daemon::start(&relay)?;
    let raddr = swarm_addr_on(&relay, "/ip4/10.50.0.10/")?;

    let (a, b) = (repo_in(&na, "192.168.10.2")?, repo_in(&nb, "192.168.20.2")?);
    for r in [&a, &b] {
        bootstrap_to(r, std::slice::from_ref(&raddr))?;
        set_config(r, "dht_mode = \"server\"", "dht_mode = \"client\"")?;
        set_config(r, "relay_reservations = 0", "relay_reservations = 1")?;
        if punch {
            set_config(r, "hole_punching = false", "hole_punching = true")?;
        }
    }
    let _da = Daemon::start(&a)?;
    // A is reachable through the relay once its reservation is accepted.
    let circuit = wait_for(Duration::from_secs(30), || {
        let addrs = a.ok(&["swarm", "addrs"]).ok()?;
        addrs.lines().find(|l| l.contains("/p2p-circuit")).map(String::from)
    })
    .with_context(|| {
        format!(
            "A never got a relay reservation; peers {:?}\n{}",
            a.ok(&["swarm", "peers"]),
            std::fs::read_to_string(a.scratch("daemon.log")).unwrap_or_default()
        )
    })?;
    println!("A listens through the relay: {circuit}");
    let f = a.scratch("behind-nat.bin");
    std::fs::write(&f, cairn_tests::prng(2 << 20))?;
    let cid = a.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string();
    std::thread::sleep(Duration::from_secs(2));

    let _db = Daemon::start(&b)?;
    let got = b.run(&["--timeout", "60s", "cat", &cid])?;
    assert!(got.status.success(), "B could not fetch from A: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout.len(), 2 << 20);
    let a_id = peer_id(&a)?;
    let peers = b.ok(&["swarm", "peers"])?;
    let to_a = peers.lines().find(|l| l.contains(&a_id)).context("B is not connected to A")?;
    let counts = id(&b)?["Connections"].clone();
    println!("B's connection to A: {to_a}; B's connections: {counts}");
    Ok(Some((to_a.to_string(), counts)))
}
