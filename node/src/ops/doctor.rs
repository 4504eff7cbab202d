//! `doctor`: whether this node works, in plain words, with what to do about each problem:
//! the daemon, reachability (AutoNAT, relays), addresses, port mapping, peers and bootstrap
//! peers, disk space against the free-space floor, and the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::repo::no_options;
use super::{json_reply, Args, Command, Ctx, Op, OpError};
use crate::net::{PortMapping, Reach, Reachability};

/// `doctor`: check the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doctor;
no_options!(Doctor, "doctor");

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but not as well as it could.
    Warn,
    /// Wrong: the node cannot do part of its job.
    Fail,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Check {
    /// What was checked (`reachability`, `disk`, …).
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when nothing).
    pub fix: String,
}

/// Every check, and whether none failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DoctorReport {
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// No check failed.
    pub healthy: bool,
}
json_reply!(DoctorReport);

fn check(name: &str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: name.into(), status, detail: detail.into(), fix: fix.into() }
}

/// What to do when peers cannot dial in.
const FORWARD: &str = "forward TCP and UDP port 4001 on your router to this machine, or turn on UPnP in the router \
     (cairn maps the port itself with network.discovery = true)";

impl Op for Doctor {
    type Output = DoctorReport;

    async fn run(self, ctx: Ctx) -> Result<DoctorReport, OpError> {
        let repo = ctx.repo();
        let config = repo.config();
        let mut checks = Vec::new();
        match &ctx {
            Ctx::Offline(_) => checks.push(check(
                "daemon",
                Status::Fail,
                "not running: the node is not on the network",
                "start it: cairn daemon (or systemctl start cairn)",
            )),
            Ctx::Online(node) => {
                checks.push(check("daemon", Status::Ok, "running", ""));
                let net = node.net();
                let reach = net.reach().await?;
                let addrs: Vec<String> = net.addrs().await?.iter().map(|a| a.to_string()).collect();
                checks.push(reachability(&reach, config.network.autonat));
                checks.push(match addrs.is_empty() {
                    true => check("addresses", Status::Fail, "listening on no address", "check network.listen"),
                    false => check("addresses", Status::Ok, addrs.join(", "), ""),
                });
                checks.push(port_mapping(&reach));
                let peers = net.peers().await?;
                let boot: Vec<String> = config
                    .network
                    .bootstrap
                    .iter()
                    .filter_map(|b| b.rsplit("/p2p/").next().map(String::from))
                    .collect();
                let reached = boot.iter().filter(|id| peers.iter().any(|p| &p.peer == *id)).count();
                checks.push(match (peers.len(), boot.len()) {
                    (0, 0) => check(
                        "peers",
                        Status::Warn,
                        "no peers, and no bootstrap peers configured",
                        "add peers to network.bootstrap, or connect one: cairn swarm connect <multiaddr>",
                    ),
                    (0, n) => check(
                        "peers",
                        Status::Fail,
                        format!("no peers: none of the {n} bootstrap peers answered"),
                        "check the internet connection and DNS, and network.bootstrap",
                    ),
                    (p, 0) => check("peers", Status::Ok, format!("{p} connected"), ""),
                    (p, n) => {
                        check("peers", Status::Ok, format!("{p} connected, {reached} of {n} bootstrap peers"), "")
                    }
                });
            }
        }
        checks.push(disk(repo.path(), config.store.min_free_bytes));
        checks.push(clock(repo.path()));
        let healthy = checks.iter().all(|c| c.status != Status::Fail);
        Ok(DoctorReport { checks, healthy })
    }
}

/// Reachability in words.
fn reachability(r: &Reach, autonat: bool) -> Check {
    let name = "reachability";
    match (r.reachability, r.relay_reservations) {
        (Reachability::Public, _) => check(name, Status::Ok, "public: peers can dial this node", ""),
        (_, _) if !autonat => check(name, Status::Ok, "not probed (network.autonat is off)", ""),
        (Reachability::Private, n) if n > 0 => check(
            name,
            Status::Warn,
            format!("behind NAT or a firewall: peers reach this node only through {n} relay(s), and transfers wait for a hole punch"),
            FORWARD,
        ),
        (Reachability::Private, _) => check(
            name,
            Status::Fail,
            "unreachable: behind NAT or a firewall, with no relay reservation; peers cannot reach what this node holds",
            format!("{FORWARD}; or keep network.relay_reservations above 0"),
        ),
        (Reachability::Unknown, _) => check(
            name,
            Status::Warn,
            "not known yet: no AutoNAT server has probed this node",
            "wait a few minutes after start; probes need connected peers",
        ),
    }
}

/// UPnP in words.
fn port_mapping(r: &Reach) -> Check {
    let name = "port mapping";
    let public = r.reachability == Reachability::Public;
    let (status, detail, fix) = match r.port_mapping {
        PortMapping::Off => (Status::Ok, "off (network.discovery)", ""),
        PortMapping::Searching => (Status::Ok, "looking for a UPnP router", ""),
        PortMapping::Mapped => (Status::Ok, "the listen port is mapped on the router", ""),
        PortMapping::NoRouter if public => (Status::Ok, "no UPnP router on the LAN (not needed: public)", ""),
        PortMapping::NoRouter => (Status::Warn, "no UPnP router answered on the LAN", FORWARD),
        PortMapping::NotRoutable => (
            Status::Warn,
            "the router is itself behind NAT (carrier-grade NAT or a second router): a mapping would not help",
            "ask your provider for a public IPv4 address, or rely on relays and hole punching",
        ),
        PortMapping::Failed => (Status::Warn, "the router refused the mapping or let it lapse", FORWARD),
    };
    check(name, status, detail, fix)
}

/// Free space on the repo's disk against the floor below which writes stop.
fn disk(repo: &std::path::Path, min_free: u64) -> Check {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    match crate::store::space::repo_available(repo) {
        Err(e) => check("disk", Status::Warn, format!("free space unknown: {e}"), ""),
        Ok(free) if free < min_free => check(
            "disk",
            Status::Fail,
            format!(
                "{} free, below store.min_free_bytes ({}): adding and fetching are refused",
                gib(free),
                gib(min_free)
            ),
            "free space: cairn repo gc, or delete other files",
        ),
        Ok(free) if free < min_free.saturating_mul(4).max(1 << 30) => check(
            "disk",
            Status::Warn,
            format!("only {} free; writes stop at {}", gib(free), gib(min_free)),
            "free space soon (cairn repo gc), or set store.max_size_bytes so cached blocks are evicted",
        ),
        Ok(free) => check("disk", Status::Ok, format!("{} free", gib(free)), ""),
    }
}

/// The clock, against the repo's own creation time and the year this build was made in.
fn clock(repo: &std::path::Path) -> Check {
    let now = SystemTime::now();
    let created = std::fs::metadata(repo.join("version")).and_then(|m| m.modified()).ok();
    let fix = "set the clock (timedatectl set-ntp true): IPNS records and TLS handshakes depend on it";
    // 2025-01-01: no correct clock reads earlier than this build.
    let floor = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    if now < floor {
        return check("clock", Status::Fail, "the system clock is before 2025", fix);
    }
    if let Some(c) = created.filter(|c| now + Duration::from_secs(300) < *c) {
        let behind = c.duration_since(now).unwrap_or_default().as_secs();
        return check(
            "clock",
            Status::Fail,
            format!("the clock is {behind} s behind the time this repo was created"),
            fix,
        );
    }
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    check("clock", Status::Ok, format!("unix time {secs}"), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_node_without_relays_is_unreachable_and_with_one_degraded() {
        let mut r = Reach { reachability: Reachability::Private, ..Reach::default() };
        assert_eq!(reachability(&r, true).status, Status::Fail);
        r.relay_reservations = 1;
        assert_eq!(reachability(&r, true).status, Status::Warn);
        r.reachability = Reachability::Public;
        assert_eq!(reachability(&r, true).status, Status::Ok);
        assert_eq!(reachability(&Reach::default(), false).status, Status::Ok);
    }
}
