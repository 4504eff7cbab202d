//! Reachability beyond loopback, in network namespaces the tests build (nothing leaves the
//! machine): bootstrapping through `/dnsaddr/` and `/dns4/` addresses served by the test's own
//! DNS server, and two daemons on one LAN bridge finding each other by mDNS.

use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_tests::netns::{self, Lab};
use cairn_tests::{bootstrap_to, peer_id, set_config, swarm_addr, wait_for, Daemon, TestRepo};

/// Skip (saying why) when the kernel cannot make the namespaces these tests need.
fn lab_or_skip(tag: &str) -> Option<Lab> {
    match netns::unavailable() {
        Some(why) => {
            println!("SKIPPED: {why}");
            None
        }
        None => Some(Lab::new(tag)),
    }
}

/// A `local` repo whose commands and daemon run in `ns`, listening on `ip`.
fn repo_in(ns: &str, ip: &str) -> Result<TestRepo> {
    let r = TestRepo::new()?.in_netns(ns);
    set_config(&r, "/ip4/127.0.0.1/tcp/0", &format!("/ip4/{ip}/tcp/0"))?;
    Ok(r)
}

/// The TCP port of a daemon's swarm address.
fn tcp_port(addr: &str) -> Result<String> {
    let parts: Vec<&str> = addr.split('/').collect();
    let i = parts.iter().position(|p| *p == "tcp").context("no /tcp/ in the address")?;
    Ok(parts[i + 1].to_string())
}

/// Kills the DNS server when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon's peer ID (`cairn id`).
fn node_id(repo: &TestRepo) -> Result<String> {
    let id: serde_json::Value = serde_json::from_str(&repo.ok(&["id", "--json"])?)?;
    Ok(id["ID"].as_str().context("ID")?.to_string())
}

fn connected(repo: &TestRepo, peer: &str) -> bool {
    repo.ok(&["swarm", "peers"]).is_ok_and(|p| p.contains(peer))
}

#[test]
fn a_node_bootstraps_through_dnsaddr_and_dns4_addresses_from_its_dns_server() -> Result<()> {
    let Some(mut lab) = lab_or_skip("dns") else { return Ok(()) };
    let ns = lab.ns("dns")?;
    let (p1, p2) = (repo_in(&ns, "127.0.0.2")?, repo_in(&ns, "127.0.0.3")?);
    let _d1 = Daemon::start(&p1)?;
    let _d2 = Daemon::start(&p2)?;
    let (id1, id2) = (peer_id(&p1)?, peer_id(&p2)?);
    let port2 = tcp_port(&swarm_addr(&p2)?)?;
    // The test's DNS server: `_dnsaddr.boot.test` lists P1's address, `p2.test` is P2's IP.
    let dnsaddr = format!("_dnsaddr.boot.test,dnsaddr={}", swarm_addr(&p1)?);
    let server = lab
        .exec(&ns, "dnsmasq")
        .args(["-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file="])
        .args(["--listen-address=127.0.0.53", "--bind-interfaces", "--port=53"])
        .arg(format!("--txt-record={dnsaddr}"))
        .arg("--host-record=p2.test,127.0.0.3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dnsmasq")?;
    let _server = Server(server);

    let node = repo_in(&ns, "127.0.0.4")?;
    bootstrap_to(&node, &[format!("/dnsaddr/boot.test/p2p/{id1}"), format!("/dns4/p2.test/tcp/{port2}/p2p/{id2}")])?;
    set_config(&node, "dns_servers = []", "dns_servers = [\"127.0.0.53\"]")?;
    let _dn = Daemon::start(&node)?;
    wait_for(Duration::from_secs(30), || (connected(&node, &id1) && connected(&node, &id2)).then_some(()))
        .with_context(|| {
            format!(
                "not connected to both bootstrap peers: {:?}\n{}",
                node.ok(&["swarm", "peers"]),
                std::fs::read_to_string(node.scratch("daemon.log")).unwrap_or_default()
            )
        })?;
    Ok(())
}

#[test]
fn two_daemons_on_one_lan_find_each_other_by_mdns_and_exchange_a_file() -> Result<()> {
    let Some(mut lab) = lab_or_skip("mdns") else { return Ok(()) };
    let sw = lab.ns("sw")?;
    lab.bridge(&sw, "br0")?;
    let (na, nb) = (lab.ns("a")?, lab.ns("b")?);
    lab.wire(&na, "eth0", "10.31.0.2/24", &sw, "br0")?;
    lab.wire(&nb, "eth0", "10.31.0.3/24", &sw, "br0")?;
    let (a, b) = (repo_in(&na, "10.31.0.2")?, repo_in(&nb, "10.31.0.3")?);
    for r in [&a, &b] {
        set_config(r, "discovery = false", "discovery = true")?;
    }
    let _da = Daemon::start(&a)?;
    let _db = Daemon::start(&b)?;
    let f = a.scratch("lan.txt");
    std::fs::write(&f, "found on the LAN\n")?;
    let cid = a.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string();
    let id_a = node_id(&a)?;
    wait_for(Duration::from_secs(30), || connected(&b, &id_a).then_some(()))
        .context("B never found A by mDNS (no bootstrap peers)")?;
    assert_eq!(b.ok(&["cat", &cid])?, "found on the LAN\n");
    Ok(())
}
