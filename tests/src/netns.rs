//! Test networks beyond loopback, built inside network namespaces the test creates and removes:
//! namespaces, bridges and veth pairs made with iproute2 directly in their namespaces (nothing
//! is added to the test runner's own namespace), routes, nftables masquerading, and programs
//! started inside a namespace. Every namespace name carries the process ID, so parallel tests
//! and leftovers of killed runs never collide.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};

/// Namespaces made by this process so far (for unique names).
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Why namespaces cannot be made here, if they cannot (the probe named in skip messages:
/// `ip netns add` and a veth pair inside it).
pub fn unavailable() -> Option<String> {
    static PROBE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let name = format!("cairn-probe-{}", std::process::id());
            let probe = ip(&["netns", "add", &name]).and_then(|()| {
                ip(&["-n", &name, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
                    .and_then(|()| ip(&["-n", &name, "link", "add", "b0", "type", "bridge"]))
            });
            let _ = ip(&["netns", "del", &name]);
            probe.err().map(|e| format!("network namespaces with veth pairs and bridges are not available: {e}"))
        })
        .clone()
}

/// A set of namespaces, removed (with every link inside) on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    links: usize,
}

impl Lab {
    /// An empty lab; `tag` names it in `ip netns list`.
    pub fn new(tag: &str) -> Lab {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Lab { prefix: format!("cairn-{tag}-{}-{n}", std::process::id()), namespaces: Vec::new(), links: 0 }
    }

    /// A new namespace with loopback up; its full name.
    pub fn ns(&mut self, name: &str) -> Result<String> {
        let full = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &full])?;
        self.namespaces.push(full.clone());
        ip(&["-n", &full, "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// A bridge `br` inside namespace `ns`, up.
    pub fn bridge(&mut self, ns: &str, br: &str) -> Result<()> {
        ip(&["-n", ns, "link", "add", br, "type", "bridge"])?;
        ip(&["-n", ns, "link", "set", br, "up"])
    }

    /// A veth pair from `ns` (interface `ifname`, address `cidr` like `10.1.0.2/24`) to bridge
    /// `br` in namespace `switch`.
    pub fn wire(&mut self, ns: &str, ifname: &str, cidr: &str, switch: &str, br: &str) -> Result<()> {
        self.links += 1;
        let port = format!("port{}", self.links);
        ip(&["link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", &port, "netns", switch])?;
        ip(&["-n", switch, "link", "set", &port, "master", br])?;
        ip(&["-n", switch, "link", "set", &port, "up"])?;
        ip(&["-n", ns, "addr", "add", cidr, "dev", ifname])?;
        ip(&["-n", ns, "link", "set", ifname, "up"])
    }

    /// A default route in `ns` via `gateway`.
    pub fn route(&self, ns: &str, gateway: &str) -> Result<()> {
        ip(&["-n", ns, "route", "add", "default", "via", gateway])
    }

    /// Address `cidr` on interface `dev` in `ns` (a bridge acting as a router's LAN port).
    pub fn addr(&self, ns: &str, dev: &str, cidr: &str) -> Result<()> {
        ip(&["-n", ns, "addr", "add", cidr, "dev", dev])
    }

    /// Make `router` a home router: forward packets, masquerade what leaves through `wan`
    /// behind its address there, and drop unsolicited packets arriving there (nftables).
    pub fn masquerade(&self, router: &str, wan: &str) -> Result<()> {
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("ip").args(["netns", "exec", router]).args(args).output()?;
            if !out.status.success() {
                bail!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        };
        run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        run(&["nft", "add", "table", "ip", "nat"])?;
        run(&["nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }"])?;
        run(&["nft", "add", "rule", "ip", "nat", "post", "oifname", wan, "masquerade"])?;
        // As home routers do: unsolicited packets from outside are dropped, not answered
        // (a closed port's RST would end a hole punch whose other side is still on its way).
        run(&["nft", "add", "table", "ip", "filter"])?;
        run(&["nft", "add chain ip filter input { type filter hook input priority 0 ; }"])?;
        run(&["nft", "add", "rule", "ip", "filter", "input", "iifname", wan, "ct", "state", "new", "drop"])
    }

    /// Make `router` (already masquerading through `wan`) a UPnP IGD for its LAN interface
    /// `lan`: the nftables chains miniupnpd fills (a port-forward in `prerouting_miniupnpd`,
    /// its accept rule in `miniupnpd`) and Debian's miniupnpd (nftables build) in the
    /// foreground, mapping ports 1024–65535 for hosts on `allow` (like `192.168.10.0/24`) only
    /// to themselves. miniupnpd refuses a router whose WAN address is private ("port
    /// forwarding is impossible"), so `wan` must carry a global-looking address.
    pub fn upnp(&self, router: &str, wan: &str, lan: &str, allow: &str, scratch: &std::path::Path) -> Result<Program> {
        let rules = "table inet miniupnpd {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
";
        let nft = scratch.join(format!("{router}-upnp.nft"));
        std::fs::write(&nft, rules)?;
        let out = self.exec(router, "nft").arg("-f").arg(&nft).output()?;
        if !out.status.success() {
            bail!("nft -f {}: {}", nft.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let conf = scratch.join(format!("{router}-miniupnpd.conf"));
        std::fs::write(
            &conf,
            format!(
                "ext_ifname={wan}\nlistening_ip={lan}\nport=0\nenable_natpmp=no\nenable_upnp=yes\n\
                 secure_mode=yes\nsystem_uptime=yes\nuuid=3e2c3a52-9a5e-4c8c-9a0f-2f1c1a0c0001\n\
                 upnp_table_name=miniupnpd\nupnp_nat_table_name=miniupnpd\n\
                 allow 1024-65535 {allow} 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
            ),
        )?;
        let log = std::fs::File::create(scratch.join(format!("{router}-miniupnpd.log")))?;
        let child = self
            .exec(router, "miniupnpd")
            .arg("-f")
            .arg(&conf)
            .arg("-d")
            .arg("-P")
            .arg(scratch.join(format!("{router}-miniupnpd.pid")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting miniupnpd (Debian package miniupnpd-nftables)")?;
        Ok(Program(child))
    }

    /// A home network behind its own router: namespace `{name}gw` on bridge `br0` of `public`
    /// at `wan_ip` (interface `wan`), masquerading and dropping unsolicited packets, with a
    /// LAN bridge `lan` at `{lan_net}.1`; the home host `{name}` at `{lan_net}.2` (interface
    /// `eth0`), routed through it. Returns (router, host).
    pub fn home(&mut self, public: &str, name: &str, wan_ip: &str, lan_net: &str) -> Result<(String, String)> {
        let router = self.ns(&format!("{name}gw"))?;
        self.wire(&router, "wan", &format!("{wan_ip}/24"), public, "br0")?;
        self.bridge(&router, "lan")?;
        self.addr(&router, "lan", &format!("{lan_net}.1/24"))?;
        self.masquerade(&router, "wan")?;
        let host = self.ns(name)?;
        self.wire(&host, "eth0", &format!("{lan_net}.2/24"), &router, "lan")?;
        self.route(&host, &format!("{lan_net}.1"))?;
        Ok((router, host))
    }

    /// A command that runs `program` inside `ns`.
    pub fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            // Processes still inside keep the namespace alive but unnamed; tests stop theirs
            // first.
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

/// A program started inside a namespace (a DNS server, a UPnP router), killed when dropped:
/// drop it before the [`Lab`], whose namespaces it keeps alive.
pub struct Program(pub Child);

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
