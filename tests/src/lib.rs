//! Helpers shared by cairn's end-to-end tests: finding the `cairn` binary and `../shared`,
//! throwaway repos, running commands with a deadline, and the deterministic inputs of the
//! reference vectors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub mod netns;

/// The workspace root (the folder holding `Cargo.toml` of the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `../shared` beside the workspace, or `$CAIRN_SHARED`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("CAIRN_SHARED").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("..").join("shared"))
}

/// The `cairn` binary built next to the test executable.
pub fn cairn_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/cairn
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir");
    let bin = dir.join("cairn");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p cairn` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A temporary repo initialised with the `local` profile; removed on drop.
pub struct TestRepo {
    /// Holds the repo and scratch files.
    pub dir: tempfile::TempDir,
    /// The network namespace its commands (and its daemon) run in, if not this one.
    pub netns: Option<String>,
}

impl TestRepo {
    /// Create and `cairn init --profile local`.
    pub fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let repo = TestRepo { dir, netns: None };
        repo.ok(&["init", "--profile", "local"])?;
        Ok(repo)
    }

    /// Run this repo's commands and daemon inside network namespace `ns` from now on.
    pub fn in_netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self
    }

    /// The repo path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A scratch path beside the repo.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `cairn` command bound to this repo.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            // `ip netns exec` execs the program: the child is `cairn` itself (signals reach it).
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(cairn_bin());
                c
            }
            None => Command::new(cairn_bin()),
        };
        c.env("CAIRN_PATH", self.path()).args(args).stdin(Stdio::null());
        c
    }

    /// Run with a 5-minute deadline and return the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        run_with_deadline(self.cmd(args), Duration::from_secs(300))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "cairn {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!("cairn {args:?} succeeded but should have failed: {}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(String::from_utf8(out.stderr)?)
    }
}

/// Install the JavaScript clients in `tests/gateway` (npm packages once, via
/// `scripts/gateway-js-setup.sh`) and return their directory.
pub fn js_clients_dir() -> Result<String> {
    let mut c = Command::new("bash");
    c.arg(workspace_root().join("scripts").join("gateway-js-setup.sh"));
    let out = run_with_deadline(c, Duration::from_secs(900))?;
    if !out.status.success() {
        bail!("gateway-js-setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().lines().last().context("setup printed no path")?.to_string())
}

/// Run a command, killing it if it outlives `deadline`.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Result<Output> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("spawning command")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            bail!("command timed out after {deadline:?}: {cmd:?}")
        }
    }
}

/// Poll `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The vectors' pseudo-random bytes: concatenated sha256("prng-vector" || u64le counter).
pub fn prng(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut c = 0u64;
    while out.len() < n {
        let mut h = Sha256::new();
        h.update(b"prng-vector");
        h.update(c.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        c += 1;
    }
    out.truncate(n);
    out
}

/// The directory of `make-tree.mjs` (the `tree` vector).
pub fn make_tree(out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("sub").join("deeper"))?;
    fs::create_dir_all(out.join("empty-dir"))?;
    fs::write(out.join("hello.txt"), "hello world\n")?;
    fs::write(out.join("empty.txt"), "")?;
    let data: Vec<u8> = (0..300000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect();
    fs::write(out.join("data.bin"), data)?;
    fs::write(out.join("ünïcödé-日本語.txt"), "unicode name\n")?;
    fs::write(out.join("sub").join("nested.txt"), "nested file\n")?;
    fs::write(out.join("sub").join("deeper").join("leaf.txt"), "deep leaf\n")?;
    Ok(())
}

/// The `hamt-6000` vector: 6000 files `file-NNNNN.txt` holding `"{i}\n"`.
pub fn make_hamt_dir(out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    for i in 0..6000 {
        fs::write(out.join(format!("file-{i:05}.txt")), format!("{i}\n"))?;
    }
    Ok(())
}

/// Hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let data = fs::read(path)?;
    Ok(Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect())
}

/// A `cairn daemon` running on a repo; killed (SIGKILL) on drop if still running.
pub struct Daemon {
    child: std::process::Child,
    /// The repo's `api` file.
    pub api_file: PathBuf,
    /// The API's address, from the `api` file.
    pub api: std::net::SocketAddr,
    /// The gateway's URL (`http://127.0.0.1:PORT`), from the `gateway` file.
    pub gateway: String,
    /// Lines the daemon printed on stdout so far.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Start `cairn daemon` on `repo` and wait (up to a minute) until it prints
    /// `Daemon is ready` and its `api` file exists. Its stderr (the log) goes to the repo's
    /// scratch file `daemon.log`.
    pub fn start(repo: &TestRepo) -> Result<Daemon> {
        let log = fs::File::create(repo.scratch("daemon.log"))?;
        let mut child = repo.cmd(&["daemon"]).stdout(Stdio::piped()).stderr(log).spawn()?;
        let stdout = child.stdout.take().context("daemon stdout")?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = output.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("output lock").push(line);
            }
        });
        let api_file = repo.path().join("api");
        let mut daemon = Daemon { child, api_file, api: "127.0.0.1:0".parse()?, gateway: String::new(), output };
        let api = wait_for(Duration::from_secs(60), || {
            if daemon.child.try_wait().ok().flatten().is_some() {
                return Some(Err(anyhow::anyhow!("the daemon exited: {:?}", daemon.output())));
            }
            let ready = daemon.output().iter().any(|l| l == "Daemon is ready");
            let text = fs::read_to_string(&daemon.api_file).ok()?;
            ready.then(|| parse_api_multiaddr(&text))
        })
        .with_context(|| format!("waiting for the daemon to be ready; it printed {:?}", daemon.output()))??;
        daemon.api = api;
        daemon.gateway = fs::read_to_string(repo.path().join("gateway")).unwrap_or_default().trim().to_string();
        Ok(daemon)
    }

    /// The daemon's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon printed on stdout so far.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().expect("output lock").clone()
    }

    /// The swarm addresses it printed (`Swarm listening on …`).
    pub fn swarm_addrs(&self) -> Vec<String> {
        self.output().iter().filter_map(|l| l.strip_prefix("Swarm listening on ").map(String::from)).collect()
    }

    /// Wait up to `timeout` for the daemon to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        wait_for(timeout, || self.child.try_wait().ok().flatten()).context("waiting for the daemon to exit")
    }

    /// Send a signal by name (`TERM`, `INT`, `KILL`) to the daemon.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status()?;
        if !status.success() {
            bail!("kill -{signal} failed");
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `/ip4/127.0.0.1/tcp/5001` (what a daemon writes to its `api` file) as a socket address.
pub fn parse_api_multiaddr(text: &str) -> Result<std::net::SocketAddr> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    match parts.as_slice() {
        ["", "ip4" | "ip6", ip, "tcp", port] => Ok(std::net::SocketAddr::new(ip.parse()?, port.parse()?)),
        _ => bail!("not an API multiaddr: {text:?}"),
    }
}

/// A raw HTTP/1.0 `POST` of `target` (path and query) with extra `headers` and `body`; the
/// status code and body. Plain `std` sockets, so tests see exactly what the server sends.
pub fn http_post(
    addr: std::net::SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut req = format!("POST {target} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").context("no end of HTTP headers")?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).context("no HTTP status")?.parse()?;
    Ok((status, resp[split + 4..].to_vec()))
}

/// Point a repo's bootstrap list at `peers` (before its daemon starts).
pub fn bootstrap_to(repo: &TestRepo, peers: &[String]) -> Result<()> {
    let path = repo.path().join("config.toml");
    let text = fs::read_to_string(&path)?;
    let list = peers.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
    if !text.contains("bootstrap = []") {
        bail!("config has no empty bootstrap list: {text}");
    }
    fs::write(&path, text.replace("bootstrap = []", &format!("bootstrap = [{list}]")))?;
    Ok(())
}

/// Replace the first occurrence of `from` in a repo's `config.toml` (before its daemon starts).
pub fn set_config(repo: &TestRepo, from: &str, to: &str) -> Result<()> {
    let path = repo.path().join("config.toml");
    let text = fs::read_to_string(&path)?;
    if !text.contains(from) {
        bail!("{from:?} not in {text}");
    }
    fs::write(&path, text.replacen(from, to, 1))?;
    Ok(())
}

/// A running daemon's peer ID (`cairn id`).
pub fn peer_id(repo: &TestRepo) -> Result<String> {
    let id: serde_json::Value = serde_json::from_str(&repo.ok(&["id", "--json"])?)?;
    Ok(id["ID"].as_str().context("ID")?.to_string())
}

/// Whether `asker`'s `dht findprovs cid` lists `provider` within 30 s.
pub fn finds_provider(asker: &TestRepo, cid: &str, provider: &str) -> bool {
    wait_for(Duration::from_secs(30), || asker.ok(&["dht", "findprovs", cid]).ok().filter(|o| o.contains(provider)))
        .is_ok()
}

/// A running daemon's loopback TCP address (any of 127.0.0.0/8) with its peer ID (from
/// `cairn id`).
pub fn swarm_addr(repo: &TestRepo) -> Result<String> {
    swarm_addr_on(repo, "/ip4/127.")
}

/// A running daemon's TCP address starting with `prefix` (`/ip4/10.50.0.10/`), or its QUIC
/// one for a prefix naming UDP (`/ip4/10.50.0.10/udp/`), with its peer ID (from `cairn id`).
pub fn swarm_addr_on(repo: &TestRepo, prefix: &str) -> Result<String> {
    let id: serde_json::Value = serde_json::from_str(&repo.ok(&["id", "--json"])?)?;
    let peer = id["ID"].as_str().context("ID")?;
    let addr = id["Addresses"]
        .as_array()
        .context("Addresses")?
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| a.starts_with(prefix) && (a.contains("/tcp/") || prefix.contains("/udp/")))
        .with_context(|| format!("an address starting with {prefix}"))?
        .to_string();
    Ok(if addr.contains("/p2p/") { addr } else { format!("{addr}/p2p/{peer}") })
}

/// One HTTP exchange as `curl` saw it.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Response headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// Run `curl` (no redirects followed, paths sent as written) with `args` and the `url`;
/// the status, headers and body of the response.
pub fn curl(url: &str, args: &[&str]) -> Result<Reply> {
    let dir = tempfile::tempdir()?;
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--path-as-is", "--max-time", "60", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url);
    let out = run_with_deadline(cmd, Duration::from_secs(90))?;
    if !out.status.success() {
        bail!("curl {args:?} {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let status = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    let head = fs::read_to_string(&head)?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply { status, headers, body: fs::read(&body).unwrap_or_default() })
}
