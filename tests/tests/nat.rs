//! Home nodes behind NAT, in network namespaces the test builds: a "public" bridge with a
//! relay (and DHT) node, and two home networks, each behind its own masquerading router that
//! drops unsolicited packets. A home node keeps a reservation on the relay; another home node
//! finds its content through the DHT and fetches it through a volunteer relay whose circuits
//! carry any amount; or, through a relay with kubo's limits (128 KiB, 2 minutes), after the
//! two hole-punched a direct connection (DCUtR, over TCP and over QUIC), in at least 8 of 10
//! attempts each. AutoNAT tells the home nodes they are behind NAT and a node on the public
//! bridge that it is public; `doctor` calls a NATed node without relays unreachable. A home node whose router speaks UPnP (Debian's miniupnpd) maps
//! its port and is dialled directly.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_tests::netns::{self, Lab};
use cairn_tests::{bootstrap_to, peer_id, set_config, swarm_addr_on, wait_for, Daemon, TestRepo};

/// The transport a scenario runs on.
#[derive(Clone, Copy, PartialEq)]
enum Over {
    Tcp,
    Quic,
}

impl Over {
    /// A listen address on `ip` (port `port`, 0 for any).
    fn listen(self, ip: &str, port: u16) -> String {
        match self {
            Over::Tcp => format!("/ip4/{ip}/tcp/{port}"),
            Over::Quic => format!("/ip4/{ip}/udp/{port}/quic-v1"),
        }
    }

    /// How a daemon's address on `ip` starts (for `swarm_addr_on`).
    fn prefix(self, ip: &str) -> String {
        match self {
            Over::Tcp => format!("/ip4/{ip}/tcp/"),
            Over::Quic => format!("/ip4/{ip}/udp/"),
        }
    }
}

/// A `local` repo in `ns`, listening on `listen`, whose AutoNAT tests private addresses (the
/// test networks use them).
fn repo_in(ns: &str, listen: &str) -> Result<TestRepo> {
    let r = TestRepo::new()?.in_netns(ns);
    set_config(&r, "\"/ip4/127.0.0.1/tcp/0\"", &format!("{listen:?}"))?;
    set_config(&r, "autonat = false", "autonat = true")?;
    set_config(&r, "autonat_private_addrs = false", "autonat_private_addrs = true")?;
    Ok(r)
}

/// `cairn id --json` of a running daemon.
fn id(repo: &TestRepo) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&repo.ok(&["id", "--json"])?)?)
}

/// Wait until a daemon's reachability (`cairn id`) is `want`.
fn wait_reachability(repo: &TestRepo, who: &str, want: &str) -> Result<()> {
    wait_for(Duration::from_secs(60), || {
        (id(repo).ok()?["Connections"]["Reachability"].as_str()? == want).then_some(())
    })
    .with_context(|| format!("{who} never found itself {want}: {:?}", id(repo).map(|v| v["Connections"].clone())))
}

#[test]
fn a_home_node_behind_nat_is_reached_through_a_volunteer_relay() -> Result<()> {
    let Some((to_a, counts, _)) = scenario("nat", false, Over::Tcp)? else { return Ok(()) };
    assert!(to_a.contains("/p2p-circuit"), "not relayed: {to_a}");
    assert!(counts["Relayed"].as_u64() >= Some(1) && counts["HolePunched"] == 0, "{counts}");
    Ok(())
}

#[test]
fn home_nodes_behind_nat_hole_punch_over_tcp() -> Result<()> {
    punch_rounds("tcp", Over::Tcp)
}

#[test]
fn home_nodes_behind_nat_hole_punch_over_quic() -> Result<()> {
    punch_rounds("quic", Over::Quic)
}

/// Ten hole-punch scenarios on `over`; at least eight end with the fetch on a direct
/// connection.
fn punch_rounds(tag: &str, over: Over) -> Result<()> {
    const ATTEMPTS: usize = 10;
    let mut direct = 0;
    for attempt in 0..ATTEMPTS {
        match scenario(&format!("{tag}{attempt}"), true, over) {
            Ok(None) => return Ok(()),
            Ok(Some((to_a, b, a))) if !to_a.contains("/p2p-circuit") => {
                // The side whose DCUtR dial made the connection counts the punch; over QUIC
                // that can be A alone, B's own dial riding the hole A's packets opened.
                let punched = a["HolePunched"].as_u64().unwrap_or(0) + b["HolePunched"].as_u64().unwrap_or(0);
                assert!(punched >= 1, "the punch is counted: A {a}, B {b}");
                if over == Over::Quic {
                    assert!(to_a.contains("/quic-v1"), "not over QUIC: {to_a}");
                }
                direct += 1;
            }
            Ok(Some((to_a, _, _))) => println!("attempt {attempt}: still relayed ({to_a})"),
            Err(e) => println!("attempt {attempt}: {e:#}"),
        }
    }
    println!("hole punching over {tag}: {direct} of {ATTEMPTS} fetches over a direct connection");
    assert!(direct >= 8, "only {direct} of {ATTEMPTS} hole punches over {tag} succeeded");
    Ok(())
}

/// Build the topology, run the fetch, and return B's connection to A as `swarm peers` shows
/// it, and B's and A's connection counts from `cairn id` (`None`: skipped). With `punch`, the relay
/// keeps kubo's circuit limits and both home nodes hole-punch; without, the relay is a
/// volunteer's without limits, and AutoNAT's verdicts are checked: the home nodes are
/// private, a node on the public bridge is public.
fn scenario(tag: &str, punch: bool, over: Over) -> Result<Option<(String, serde_json::Value, serde_json::Value)>> {
    if let Some(why) = netns::unavailable() {
        println!("SKIPPED: {why}");
        return Ok(None);
    }
    let mut lab = Lab::new(tag);
    let public = lab.ns("pub")?;
    lab.bridge(&public, "br0")?;
    let relay_ns = lab.ns("relay")?;
    lab.wire(&relay_ns, "eth0", "10.50.0.10/24", &public, "br0")?;
    let (_, na) = lab.home(&public, "a", "10.50.0.2", "192.168.10")?;
    let (_, nb) = lab.home(&public, "b", "10.50.0.3", "192.168.20")?;

    // The relay: a volunteer's, circuits without a byte limit.
    let relay = repo_in(&relay_ns, &over.listen("10.50.0.10", 4001))?;
    // A relay serves at confirmed public addresses: this one announces its own.
    set_config(&relay, "announce = []", &format!("announce = [{:?}]", over.listen("10.50.0.10", 4001)))?;
    set_config(&relay, "relay_service = false", "relay_service = true")?;
    if !punch {
        set_config(&relay, "relay_max_circuit_bytes = 131072", "relay_max_circuit_bytes = 0")?;
    }
    let _dr = Daemon::start(&relay)?;
    let raddr = swarm_addr_on(&relay, &over.prefix("10.50.0.10"))?;

    let (a, b) = (repo_in(&na, &over.listen("192.168.10.2", 0))?, repo_in(&nb, &over.listen("192.168.20.2", 0))?);
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
    if !got.status.success() {
        bail!("B could not fetch from A: {}", String::from_utf8_lossy(&got.stderr));
    }
    assert_eq!(got.stdout.len(), 2 << 20);
    let a_id = peer_id(&a)?;
    let peers = b.ok(&["swarm", "peers"])?;
    let to_a = peers.lines().find(|l| l.contains(&a_id)).context("B is not connected to A")?;
    let counts = id(&b)?["Connections"].clone();
    println!("B's connection to A: {to_a}; B's connections: {counts}");

    if !punch {
        // AutoNAT: the relay's and B's dial-backs to A fail at A's router, so A is private
        // (and reachable through its reservation); a node on the public bridge that announces
        // nothing is dialled back and found public.
        let c_ns = lab.ns("c")?;
        lab.wire(&c_ns, "eth0", "10.50.0.20/24", &public, "br0")?;
        let c = repo_in(&c_ns, &over.listen("10.50.0.20", 4001))?;
        bootstrap_to(&c, std::slice::from_ref(&raddr))?;
        let _dc = Daemon::start(&c)?;
        wait_reachability(&c, "a node on the public bridge", "public")?;
        wait_reachability(&a, "A, behind NAT", "private")?;
        let text = a.ok(&["id"])?;
        assert!(text.contains("reachable through 1 relay"), "{text}");
        println!("A: {}", text.lines().nth(1).unwrap_or_default());
        // doctor: A behind NAT with a relay reservation works, degraded (exit 0, a warning);
        // a second node behind B's router without reservations is unreachable (exit 1).
        let out = a.run(&["doctor"])?;
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("WARN  reachability: behind NAT"), "{said}");
        let d = repo_in(&nb, &over.listen("192.168.20.2", 0))?;
        bootstrap_to(&d, std::slice::from_ref(&raddr))?;
        set_config(&d, "dht_mode = \"server\"", "dht_mode = \"client\"")?;
        let _dd = Daemon::start(&d)?;
        wait_reachability(&d, "a node behind NAT without relays", "private")?;
        let out = d.run(&["doctor"])?;
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains("FAIL  reachability: unreachable") && said.contains("forward TCP and UDP port 4001"),
            "{said}"
        );
    }
    let a_counts = id(&a)?["Connections"].clone();
    Ok(Some((to_a.to_string(), counts, a_counts)))
}

#[test]
fn a_home_node_maps_its_port_on_a_upnp_router_and_is_dialled_directly() -> Result<()> {
    if let Some(why) = netns::unavailable() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let mut lab = Lab::new("upnp");
    let public = lab.ns("pub")?;
    lab.bridge(&public, "br0")?;
    // miniupnpd refuses a router whose WAN address is private, so this public bridge uses a
    // global-looking range; the namespaces have no route anywhere else.
    let server_ns = lab.ns("srv")?;
    lab.wire(&server_ns, "eth0", "11.50.0.10/24", &public, "br0")?;
    let (router, na) = lab.home(&public, "a", "11.50.0.2", "192.168.10")?;
    let scratch = tempfile::tempdir()?;
    let _igd = lab.upnp(&router, "wan", "lan", "192.168.10.0/24", scratch.path())?;

    let a = repo_in(&na, "/ip4/192.168.10.2/tcp/4001")?;
    set_config(&a, "discovery = false", "discovery = true")?;
    let _da = Daemon::start(&a)?;
    let a_id = peer_id(&a)?;
    let mapped = wait_for(Duration::from_secs(30), || {
        let v = id(&a).ok()?;
        (v["Connections"]["PortMapping"] == "mapped").then_some(())?;
        v["Addresses"]
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str())
            .find(|x| x.starts_with("/ip4/11.50.0.2/tcp/4001"))
            .map(String::from)
    })
    .with_context(|| {
        format!(
            "A never mapped its port: {:?}\nminiupnpd: {}",
            id(&a).map(|v| v["Connections"].clone()),
            std::fs::read_to_string(scratch.path().join(format!("{router}-miniupnpd.log"))).unwrap_or_default()
        )
    })?;
    println!("A's mapped address: {mapped}");
    assert_eq!(id(&a)?["Connections"]["Reachability"], "public");

    let f = a.scratch("mapped.bin");
    std::fs::write(&f, cairn_tests::prng(1 << 20))?;
    let cid = a.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string();
    // A server on the public side dials A's mapped address (no relay, no hole punch exists
    // here) and fetches.
    let s = repo_in(&server_ns, "/ip4/11.50.0.10/tcp/4001")?;
    let _ds = Daemon::start(&s)?;
    s.ok(&["swarm", "connect", &mapped])?;
    let got = s.run(&["--timeout", "30s", "cat", &cid])?;
    assert!(got.status.success(), "the fetch failed: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout.len(), 1 << 20);
    let peers = s.ok(&["swarm", "peers"])?;
    let to_a = peers.lines().find(|l| l.contains(&a_id)).context("not connected to A")?;
    assert!(to_a.starts_with("/ip4/11.50.0.2/tcp/4001"), "not over the mapped port: {to_a}");
    Ok(())
}
