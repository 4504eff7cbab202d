//! Reachability beyond loopback, in network namespaces the tests build (nothing leaves the
//! machine): bootstrapping through `/dnsaddr/` and `/dns4/` addresses served by the test's own
//! DNS server, and two daemons on one LAN bridge finding each other by mDNS.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_tests::netns::{self, Lab};
use cairn_tests::{bootstrap_to, peer_id, set_config, swarm_addr, swarm_addr_on, wait_for, Daemon, TestRepo};

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
    let _server = netns::Program(server);

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
    let id_a = peer_id(&a)?;
    wait_for(Duration::from_secs(30), || connected(&b, &id_a).then_some(()))
        .context("B never found A by mDNS (no bootstrap peers)")?;
    assert_eq!(b.ok(&["cat", &cid])?, "found on the LAN\n");
    Ok(())
}

/// Run `f` on a new thread inside network namespace `ns` (threads it starts stay there too).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace's file");
        // SAFETY: setns only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns into {path}");
        f()
    })
}

/// TCP connections established on `port` inside `ns`, counted by `ss` from outside the node.
fn established(ns: &str, port: &str) -> Result<usize> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Htn", "state", "established", &format!("( sport = :{port} )")])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count())
}

#[test]
fn a_home_node_stays_under_its_connection_caps_in_a_crowd_and_paces_what_it_serves() -> Result<()> {
    let Some(mut lab) = lab_or_skip("crowd") else { return Ok(()) };
    let sw = lab.ns("sw")?;
    lab.bridge(&sw, "br0")?;
    let (nh, nc, nr) = (lab.ns("home")?, lab.ns("crowd")?, lab.ns("reader")?);
    lab.wire(&nh, "eth0", "10.32.0.2/24", &sw, "br0")?;
    lab.wire(&nc, "eth0", "10.32.0.3/24", &sw, "br0")?;
    lab.wire(&nr, "eth0", "10.32.0.4/24", &sw, "br0")?;
    let (max_conns, max_pending) = (24usize, 8usize);
    let home = repo_in(&nh, "10.32.0.2")?;
    set_config(&home, "max_connections = 512", &format!("max_connections = {max_conns}"))?;
    set_config(&home, "max_pending_connections = 64", &format!("max_pending_connections = {max_pending}"))?;
    set_config(&home, "max_upload_bytes_per_sec = 0", "max_upload_bytes_per_sec = 1048576")?;
    let dh = Daemon::start(&home)?;
    let home_id = peer_id(&home)?;
    let home_addr = swarm_addr_on(&home, "/ip4/10.32.0.2/")?;
    let port = tcp_port(&home_addr)?;
    let f = home.scratch("four.bin");
    std::fs::write(&f, cairn_tests::prng(4 << 20))?;
    let cid = home.ok(&["add", "-Q", f.to_str().unwrap()])?.trim().to_string();

    // The reader connects before the crowd comes.
    let reader = repo_in(&nr, "10.32.0.4")?;
    bootstrap_to(&reader, std::slice::from_ref(&home_addr))?;
    let _dr = Daemon::start(&reader)?;
    wait_for(Duration::from_secs(20), || connected(&reader, &home_id).then_some(()))
        .context("reader never connected")?;

    // 120 peers dial the home node at once and stay.
    const CROWD: usize = 120;
    let stop = tokio_util::sync::CancellationToken::new();
    let (target, token) = (home_addr.clone(), stop.clone());
    let crowd = in_netns(&nc, move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let mut nets = Vec::new();
            for _ in 0..CROWD {
                let cfg = cairn_node::net::NetConfig {
                    bootstrap: vec![target.parse()?],
                    dht_mode: cairn_node::net::DhtMode::Client,
                    autonat: false,
                    pubsub: false,
                    ..cairn_node::net::NetConfig::default()
                };
                let key = libp2p::identity::Keypair::generate_ed25519();
                nets.push(cairn_node::net::task::spawn(key, &cfg, token.child_token())?);
            }
            token.cancelled().await;
            for (_, task) in nets {
                let _ = task.await;
            }
            Ok(())
        })
    });

    // Meanwhile: the reader fetches 4 MiB, paced at 1 MiB/s by the home node's budget, and
    // the home node's established connections are counted from outside it.
    let counting = {
        let (lab_ns, port) = (nh.clone(), port.clone());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let sampler = std::thread::spawn(move || {
            let mut most = 0;
            while !d.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(established(&lab_ns, &port).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            most
        });
        (done, sampler)
    };
    std::thread::sleep(Duration::from_secs(2));
    let t = std::time::Instant::now();
    let got = reader.run(&["cat", &cid])?;
    let took = t.elapsed();
    assert!(got.status.success(), "the transfer failed in the crowd: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout.len(), 4 << 20);
    println!("4 MiB served through a 1 MiB/s budget in a crowd of {CROWD}: {took:?}");
    assert!(took >= Duration::from_millis(2500), "the serving budget was not applied: {took:?}");
    let now = established(&nh, &port)?;
    counting.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = counting.1.join().expect("sampler");
    stop.cancel();
    crowd.join().expect("crowd thread")?;
    println!("established TCP connections at the home node: at most {most} while {CROWD} peers dialled (now {now})");
    // Established connections, plus those libp2p is setting up, plus the kernel's accept
    // queue (as long as the pending limit): what a router sees of the node at worst.
    assert!(
        most <= max_conns + 2 * max_pending,
        "{most} connections, over the caps {max_conns} + 2 × {max_pending} pending"
    );
    assert!(now <= max_conns, "{now} connections established after the rush, over {max_conns}");
    assert!(most >= max_conns / 2, "the crowd never arrived: {most}");

    // The gateway spends the same budget.
    let t = std::time::Instant::now();
    let out = lab.exec(&nh, "curl").args(["-sf", "-o", "/dev/null", &format!("{}/ipfs/{cid}", dh.gateway)]).output()?;
    assert!(out.status.success(), "gateway: {}", String::from_utf8_lossy(&out.stderr));
    println!("4 MiB through the gateway at 1 MiB/s: {:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(2500), "the gateway was not paced: {:?}", t.elapsed());
    Ok(())
}
