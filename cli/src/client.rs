//! Talking to a running daemon: finding it through the repo's `api` file, and a small
//! blocking HTTP client for its RPC API (`POST /api/v0/<command>?arg=…`).
//!
//! A stale `api` file (the daemon was killed) must not send commands into the void: if the
//! address does not answer, the caller falls back to opening the repo directly, which only
//! works when no daemon holds the repo lock (see `cmd::connect`).

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use ureq::http::Response;
use ureq::{Body, SendBody};

use cairn_node::ops::{Op, Reply};

/// How long finding out whether a daemon answers may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `--timeout`, once set by `main`: every call sends it as kubo's global `timeout` option.
pub static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// The repo file a daemon writes its API address into.
pub fn api_file(repo: &Path) -> PathBuf {
    repo.join("api")
}

/// What the `api` file says, if there is one.
pub enum Found {
    /// No `api` file: no daemon (or one still starting).
    None,
    /// A daemon answers here.
    Running(Api),
    /// The file names an address nobody answers on.
    Stale(String),
}

/// A client for one daemon's RPC API.
#[derive(Clone)]
pub struct Api {
    base: String,
    addr: SocketAddr,
    agent: ureq::Agent,
    token: Option<String>,
    /// `--timeout`, sent with every call so that the daemon stops the work too.
    timeout: Option<Duration>,
}

/// Parse the `api` file: `/ip4/A/tcp/P`, `/ip6/A/tcp/P` or `/dns*/localhost/tcp/P`.
pub fn parse_api_addr(text: &str) -> Option<SocketAddr> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let [empty, proto, host, tcp, port] = parts.as_slice() else { return None };
    if !empty.is_empty() || *tcp != "tcp" {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = match *proto {
        "ip4" => IpAddr::V4(host.parse().ok()?),
        "ip6" => IpAddr::V6(host.parse().ok()?),
        "dns" | "dns4" | "dns6" if *host == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    // A daemon bound to every interface is reached on loopback.
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    Some(SocketAddr::new(ip, port))
}

/// Look for a running daemon of the repo at `repo`.
pub fn discover(repo: &Path) -> Result<Found> {
    let text = match fs::read_to_string(api_file(repo)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::None),
        Err(e) => return Err(e).context("reading the repo's api file"),
    };
    let Some(addr) = parse_api_addr(&text) else {
        return Ok(Found::Stale(text.trim().to_string()));
    };
    if TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_err() {
        return Ok(Found::Stale(text.trim().to_string()));
    }
    Ok(Found::Running(Api::new(addr, token_of(repo))))
}

/// The API token from the repo's config, if one is set.
fn token_of(repo: &Path) -> Option<String> {
    let text = fs::read_to_string(repo.join("config.toml")).ok()?;
    let config = cairn_node::repo::Config::from_toml(&text).ok()?;
    Some(config.network.api_token).filter(|t| !t.is_empty())
}

impl Api {
    /// A client for the API at `addr`.
    pub fn new(addr: SocketAddr, token: Option<String>) -> Api {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The daemon is local: an `http_proxy` in the environment must not route to it.
            .proxy(None)
            .timeout_connect(Some(PROBE_TIMEOUT))
            .build()
            .into();
        Api { base: format!("http://{addr}/api/v0"), addr, agent, token, timeout: TIMEOUT.get().copied() }
    }

    /// The daemon's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn request(&self, cmd: &str, query: &[(&str, String)]) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let mut req = self.agent.post(format!("{}/{cmd}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        if let Some(t) = self.timeout {
            req = req.query("timeout", humantime::format_duration(t).to_string());
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req
    }

    /// Run a typed operation on the daemon and decode its one-value answer.
    pub fn op<O: Op>(&self, op: O) -> Result<O::Output> {
        let resp = self.call(O::NAME, &op.to_args())?;
        self.decode(O::NAME, resp)
    }

    /// Read a command's whole answer and decode it as the typed reply this CLI expects.
    pub fn decode<R: Reply>(&self, name: &str, mut resp: Response<Body>) -> Result<R> {
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .with_context(|| format!("reading the daemon's answer to {name} ({})", self.addr()))?;
        R::from_body(&body).with_context(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            format!("the daemon's answer to {name} is not what this cairn expects: {text:?}")
        })
    }

    /// `POST` a command without a body; fails with the daemon's message on an error status.
    pub fn call(&self, cmd: &str, query: &[(&str, String)]) -> Result<Response<Body>> {
        let resp = self.request(cmd, query).send_empty().map_err(|e| self.io_error(e))?;
        check(resp)
    }

    /// `POST` a command with a streamed body (multipart for `add`, `block/put`, `dag/import`).
    pub fn call_with(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        content_type: &str,
        body: impl Read + 'static,
    ) -> Result<Response<Body>> {
        let resp = self
            .request(cmd, query)
            .header("Content-Type", content_type)
            .send(SendBody::from_owned_reader(body))
            .map_err(|e| self.io_error(e))?;
        check(resp)
    }

    /// A failed exchange with the daemon, as text: the connection's own `io::Error` must not
    /// stay in the chain, where a `BrokenPipe` (the daemon stopped reading an upload) would
    /// pass for a closed stdout, which `main` treats as success.
    fn io_error(&self, e: ureq::Error) -> anyhow::Error {
        let why = match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                "it stopped reading the request (it failed, or shut down; see its log)".to_string()
            }
            _ => e.to_string(),
        };
        anyhow!("talking to the cairn daemon at {}: {why}", self.addr)
    }
}

/// The daemon's error message (`{"Message": …}`) for an error status.
fn check(mut resp: Response<Body>) -> Result<Response<Body>> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let text = resp.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
    let msg = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["Message"].as_str().map(String::from))
        .unwrap_or_else(|| format!("the daemon answered {status}: {}", text.trim()));
    bail!("{msg}")
}

/// The body of an answer as a reader (raw bytes of `cat`, `get`, `block/get`, `dag/export`).
pub fn bytes(resp: Response<Body>) -> impl Read {
    resp.into_body().into_reader()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_file_addresses() {
        assert_eq!(parse_api_addr("/ip4/127.0.0.1/tcp/5001"), Some("127.0.0.1:5001".parse().unwrap()));
        assert_eq!(parse_api_addr("/ip4/0.0.0.0/tcp/5001\n"), Some("127.0.0.1:5001".parse().unwrap()));
        assert_eq!(parse_api_addr("/ip6/::1/tcp/80"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(parse_api_addr("/dns4/localhost/tcp/80"), Some("127.0.0.1:80".parse().unwrap()));
        assert_eq!(parse_api_addr("/ip4/127.0.0.1/udp/5001"), None);
        assert_eq!(parse_api_addr("garbage"), None);
    }
}
