//! `config.toml`: the node's settings, with a documented default for every value. Unknown keys
//! are refused so that a typo is an error instead of a silently ignored setting.

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which node profile `cairn init` used (`home`, `server` or `local`).
    pub profile: String,
    /// Block store settings.
    pub store: StoreConfig,
    /// Defaults for `cairn add`.
    pub import: ImportConfig,
    /// Listening addresses and peers (used by the daemon).
    pub network: NetworkConfig,
    /// What the daemon announces to the DHT.
    pub provide: ProvideConfig,
    /// The HTTP gateway (its address is `network.gateway`).
    pub gateway: GatewayConfig,
    /// IPNS names: publishing and resolving.
    pub ipns: IpnsConfig,
    /// Following names (`cairn follow`): keeping the latest version of someone's site.
    pub follow: FollowConfig,
}

/// Settings of `cairn follow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowConfig {
    /// How often a followed name is resolved again, seconds (default 300). With IPNS over
    /// PubSub, an update arriving on the name's topic starts the check at once.
    pub check_interval_secs: u64,
    /// How long a superseded version stays pinned after the new one is complete, seconds
    /// (default 3600): readers in the middle of the old version can finish.
    pub grace_secs: u64,
    /// The largest version a follow fetches, bytes, unless `follow add --max-bytes` says
    /// otherwise (default 10 GiB). Counted from the blocks fetched, not from the sizes the
    /// DAG declares.
    pub max_bytes: u64,
    /// How long a follow waits for any one block before the check fails and is retried with
    /// backoff, seconds (default 60).
    pub block_timeout_secs: u64,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig { check_interval_secs: 300, grace_secs: 3600, max_bytes: 10 << 30, block_timeout_secs: 60 }
    }
}

/// IPNS settings (`name publish`, `name resolve`, the gateway's `/ipns/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpnsConfig {
    /// How long a published record stays valid, seconds (default 30 days, where kubo says
    /// 48 h: volunteers keep a site's name resolvable while its owner's node is away, but only
    /// the key's holder can sign a record with a later end of life).
    pub record_lifetime_secs: u64,
    /// How long resolvers may cache a published record, seconds (default 300, as kubo).
    pub record_ttl_secs: u64,
    /// How often the daemon re-signs and re-puts its own records, seconds (default 4 h, as
    /// kubo).
    pub republish_interval_secs: u64,
    /// A lookup answers once this many peers sent a valid record (default 3) …
    pub resolve_answers: usize,
    /// … or this many milliseconds after the first one came (default 250), and keeps listening
    /// for a newer one (see `specs/ipns.md`).
    pub resolve_settle_ms: u64,
    /// IPNS over PubSub (default on): records are published on their name's gossipsub topic
    /// too, and names this node resolved are followed there, so updates arrive in seconds
    /// instead of after the TTL.
    pub pubsub: bool,
}

impl Default for IpnsConfig {
    fn default() -> Self {
        IpnsConfig {
            record_lifetime_secs: 30 * 24 * 3600,
            record_ttl_secs: 300,
            republish_interval_secs: 4 * 3600,
            resolve_answers: 3,
            resolve_settle_ms: 250,
            pubsub: true,
        }
    }
}

/// HTTP gateway settings (kubo's `Gateway` section, where cairn has the feature).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Host names that serve subdomain requests, `{cid}.ipfs.{host}` (default `localhost`, so
    /// `http://{cid}.ipfs.localhost:8080/` works out of the box in browsers).
    pub subdomain_hosts: Vec<String>,
    /// Redirect path requests (`/ipfs/{cid}/…`) arriving on a subdomain host to the CID's own
    /// origin, `{cid}.ipfs.{host}` (default on, as the subdomain gateway spec requires and kubo
    /// does for `localhost`; `127.0.0.1` is not a subdomain host and keeps serving paths).
    pub redirect_to_subdomain: bool,
    /// Seconds a request waits for any one block from the network before it fails with 504
    /// (default 30).
    pub retrieval_timeout_secs: u64,
    /// Requests served at once, a streamed body counting until it ends (default 256).
    pub max_requests: usize,
    /// How many requests may wait on the network at once for blocks the node does not hold
    /// (default 64; never more than three quarters of `max_requests`). The rest of the slots
    /// stay free for content held locally, so requests for content nobody has cannot starve
    /// the gateway; identical retrievals share one fetch.
    pub max_retrievals: usize,
    /// Serve only what is in the local store; never fetch from the network (default off).
    pub no_fetch: bool,
    /// File of refused content, one `/ipfs/{cid}` or CID per line (`#` comments), answered
    /// with 410. Relative to the repo (default `denylist.txt`; a missing file denies nothing).
    /// Re-read when it changes.
    pub denylist: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            subdomain_hosts: vec!["localhost".into()],
            redirect_to_subdomain: true,
            retrieval_timeout_secs: 30,
            max_requests: 256,
            max_retrievals: 64,
            no_fetch: false,
            denylist: "denylist.txt".into(),
        }
    }
}

/// DHT announcement settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvideConfig {
    /// `pinned` (default: every block of pinned DAGs, as kubo), `roots` (only pin roots: fewer
    /// records, but peers can find only whole DAGs) or `all` (every block added or fetched,
    /// so a node that reads content also serves it).
    pub strategy: crate::provider::Strategy,
}

/// Block store settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Page cache of the metadata database in bytes (default 16 MiB: keeps RSS low on small
    /// boxes; sled's own default of 1 GiB is far too large for a home node).
    pub meta_cache_bytes: u64,
    /// Unpinned cached blocks are evicted when the repo passes this many bytes (0: no limit).
    pub max_size_bytes: u64,
    /// How often the daemon checks `max_size_bytes`, seconds (kubo's `GCPeriod`; default 60).
    pub gc_period_secs: u64,
    /// Writes are refused, with a clear message, while the repo's file system has less free
    /// space than this (default 64 MiB), so the metadata database always has room to commit
    /// and reopen. Reads still work on a full disk.
    pub min_free_bytes: u64,
    /// Blocks kept in memory after they were read and verified, in bytes (default 16 MiB, 64 MiB
    /// on `server`; 0: off): hot content behind the gateway is neither read from disk nor hashed
    /// again. A block enters on its second read, so one pass over a large file does not fill it.
    pub read_cache_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            meta_cache_bytes: 16 * 1024 * 1024,
            max_size_bytes: 0,
            gc_period_secs: 60,
            min_free_bytes: 64 * 1024 * 1024,
            read_cache_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Defaults for `cairn add`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Import profile (`unixfs-v1-2025` or `unixfs-v0-2015`).
    pub profile: String,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig { profile: cairn_protocol::profile::DEFAULT_PROFILE.to_string() }
    }
}

/// Network settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Swarm listen multiaddresses (IPFS convention: port 4001, TCP and QUIC).
    pub listen: Vec<String>,
    /// RPC API address (loopback only unless a token is set).
    pub api: String,
    /// Bearer token the RPC API requires on every request when not empty (default empty). The
    /// daemon refuses to bind `api` to a non-loopback address without one.
    pub api_token: String,
    /// HTTP gateway address (`IP:PORT`; empty: no gateway). Read-only, so binding it to a
    /// public address is a supported setup.
    pub gateway: String,
    /// Peers dialled at start to join the DHT.
    pub bootstrap: Vec<String>,
    /// Addresses this node tells peers it is reachable at, besides what they observe (kubo's
    /// `Addresses.Announce`; default empty). A relay serves others only at confirmed public
    /// addresses: a server with a known public address lists it here.
    pub announce: Vec<String>,
    /// Find peers on the local network with mDNS and map the listen ports on the router by
    /// UPnP, so peers outside can dial in (on for the `home` profile; off for `server` and
    /// `local`).
    pub discovery: bool,
    /// Name servers (IP addresses, port 53) for `/dns4/`, `/dns6/`, `/dns/` and `/dnsaddr/`
    /// addresses (default empty: the system's resolver).
    pub dns_servers: Vec<String>,
    /// DHT role: `auto` (server once AutoNAT confirms a public address), `server` or `client`.
    pub dht_mode: crate::net::DhtMode,
    /// Probe reachability with AutoNAT v1 and v2, and answer peers' probes (off for
    /// loopback-only nodes).
    pub autonat: bool,
    /// For test networks only: let AutoNAT test and confirm private addresses (default off;
    /// on the internet a private address is never reachable from outside).
    pub autonat_private_addrs: bool,
    /// Most established connections (default 512; `home` 192: a household router's
    /// connection table, often 4,096 to 16,384 entries shared by every device, keeps room).
    pub max_connections: u32,
    /// Most connections being set up at once, each way (default 64; `home` 32: an attempt
    /// holds a router entry until it times out, answered or not).
    pub max_pending_connections: u32,
    /// Most new outbound connections per second, bursts of twice that (default 0: unlimited;
    /// `home` 16: DHT walks dial in bursts, and consumer routers drop new flows past a few
    /// hundred per second).
    pub max_dials_per_sec: u32,
    /// Bytes per second this node serves to peers (Bitswap) and gateway clients together
    /// (default 0: unlimited).
    pub max_upload_bytes_per_sec: u64,
    /// Circuit relay reservations kept while the node is not known to be publicly reachable,
    /// so peers can reach it through a relay (default 0; `home` 2).
    pub relay_reservations: u32,
    /// Serve as a circuit relay v2 for others (default off; `server` on).
    pub relay_service: bool,
    /// Bytes one relayed circuit may carry each way (default 131072, kubo's: enough for
    /// signalling and hole punching, not for transfers; 0: no limit, for a relay volunteers run
    /// for their own group, over which Bitswap then runs).
    pub relay_max_circuit_bytes: u64,
    /// Seconds one relayed circuit may stay open (default 120, kubo's).
    pub relay_max_circuit_secs: u64,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR; default off, `home`
    /// on).
    pub hole_punching: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into(), "/ip4/0.0.0.0/udp/4001/quic-v1".into()],
            api: "127.0.0.1:5001".into(),
            api_token: String::new(),
            gateway: "127.0.0.1:8080".into(),
            bootstrap: Vec::new(),
            announce: Vec::new(),
            discovery: false,
            dns_servers: Vec::new(),
            dht_mode: crate::net::DhtMode::Auto,
            autonat: true,
            autonat_private_addrs: false,
            max_connections: 512,
            max_pending_connections: 64,
            max_dials_per_sec: 0,
            max_upload_bytes_per_sec: 0,
            relay_reservations: 0,
            relay_service: false,
            relay_max_circuit_bytes: 128 * 1024,
            relay_max_circuit_secs: 120,
            hole_punching: false,
        }
    }
}

/// The public IPFS bootstrap peers kubo ships with.
pub(crate) const IPFS_BOOTSTRAP: &[&str] = &[
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
];

/// Node profiles offered by `cairn init --profile`.
pub(crate) const NODE_PROFILES: &[&str] = &["home", "server", "local"];

impl Config {
    /// The configuration a new repo gets for `profile`.
    pub(crate) fn for_profile(profile: &str) -> Option<Config> {
        let mut c = Config { profile: profile.to_string(), ..Config::default() };
        match profile {
            "home" => {
                c.network.bootstrap = IPFS_BOOTSTRAP.iter().map(|s| s.to_string()).collect();
                c.network.discovery = true;
                c.network.max_connections = 192;
                c.network.max_pending_connections = 32;
                c.network.max_dials_per_sec = 16;
                c.network.relay_reservations = 2;
                c.network.hole_punching = true;
            }
            "server" => {
                c.network.bootstrap = IPFS_BOOTSTRAP.iter().map(|s| s.to_string()).collect();
                c.store.meta_cache_bytes = 64 * 1024 * 1024;
                c.store.read_cache_bytes = 64 * 1024 * 1024;
                c.network.relay_service = true;
            }
            "local" => {
                // Tests and demos: loopback only, random ports, nothing sent beyond loopback.
                c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
                c.network.api = "127.0.0.1:0".into();
                c.network.gateway = "127.0.0.1:0".into();
                c.network.dht_mode = crate::net::DhtMode::Server;
                c.network.autonat = false;
            }
            _ => return None,
        }
        Some(c)
    }

    /// Parse and validate `config.toml` text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// Render as TOML with a header comment.
    pub(crate) fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("config serializes");
        format!("# cairn configuration. Every key is optional; a missing key takes its default.\n{body}")
    }
}

/// One config value outside what the node can work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct Invalid {
    /// The dotted key (`store.meta_cache_bytes`).
    pub key: &'static str,
    /// The value found, as written in TOML.
    pub value: String,
    /// The allowed range or form.
    pub allowed: String,
}

/// Check that `value` lies in `lo..=hi`, naming `key` when it does not.
fn in_range(key: &'static str, value: u64, lo: u64, hi: u64, unit: &str) -> Result<(), Invalid> {
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(Invalid { key, value: value.to_string(), allowed: format!("must be between {lo} and {hi}{unit}") })
}

/// Check that `text` parses as `T`, naming `key` and the expected form when it does not.
fn parses<T: std::str::FromStr>(key: &'static str, text: &str, form: &str) -> Result<(), Invalid> {
    text.trim().parse::<T>().map(|_| ()).map_err(|_| Invalid {
        key,
        value: format!("{text:?}"),
        allowed: format!("must be {form}"),
    })
}

/// A multiaddr that names its peer (`…/p2p/<id>`), as bootstrap entries must.
fn peer_addr(key: &'static str, text: &str) -> Result<(), Invalid> {
    let bad = || Invalid {
        key,
        value: format!("{text:?}"),
        allowed: "must be a multiaddr ending in /p2p/<peer id>, like /ip4/1.2.3.4/tcp/4001/p2p/12D3Koo…".into(),
    };
    let addr: libp2p::Multiaddr = text.parse().map_err(|_| bad())?;
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => Ok(()),
        _ => Err(bad()),
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// A day in seconds, the unit of the longest periods.
const DAY: u64 = 24 * 3600;

impl Config {
    /// Check every value against the range the node can work with; the first value outside
    /// it is named with its key and the allowed range. Called by [`Config::from_toml`], so a
    /// repo with a bad value does not open.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !NODE_PROFILES.contains(&self.profile.as_str()) && !self.profile.is_empty() {
            return Err(Invalid {
                key: "profile",
                value: format!("{:?}", self.profile),
                allowed: format!("must be one of {}", NODE_PROFILES.join(", ")),
            });
        }
        let s = &self.store;
        // sled needs room for a few pages; below 1 MiB it thrashes or panics.
        in_range("store.meta_cache_bytes", s.meta_cache_bytes, MIB, 64 * GIB, " bytes (1 MiB to 64 GiB)")?;
        if s.max_size_bytes != 0 {
            in_range("store.max_size_bytes", s.max_size_bytes, MIB, u64::MAX, " bytes, or 0 for no limit")?;
        }
        in_range("store.gc_period_secs", s.gc_period_secs, 1, 7 * DAY, " seconds")?;
        in_range("store.min_free_bytes", s.min_free_bytes, 0, 1024 * GIB, " bytes")?;
        in_range("store.read_cache_bytes", s.read_cache_bytes, 0, 64 * GIB, " bytes (0 to 64 GiB)")?;
        cairn_protocol::profile::ImportSettings::profile(&self.import.profile).map_err(|e| Invalid {
            key: "import.profile",
            value: format!("{:?}", self.import.profile),
            allowed: e.to_string(),
        })?;
        let n = &self.network;
        for a in &n.listen {
            parses::<libp2p::Multiaddr>("network.listen", a, "a multiaddr, like /ip4/0.0.0.0/tcp/4001")?;
        }
        parses::<std::net::SocketAddr>("network.api", &n.api, "IP:PORT, like 127.0.0.1:5001")?;
        if !n.gateway.trim().is_empty() {
            parses::<std::net::SocketAddr>("network.gateway", &n.gateway, "IP:PORT, like 127.0.0.1:8080, or empty")?;
        }
        for b in &n.bootstrap {
            peer_addr("network.bootstrap", b)?;
        }
        for a in &n.announce {
            parses::<libp2p::Multiaddr>("network.announce", a, "multiaddresses, like /ip4/203.0.113.7/tcp/4001")?;
        }
        for d in &n.dns_servers {
            parses::<std::net::IpAddr>("network.dns_servers", d, "IP addresses of name servers, like 10.0.0.53")?;
        }
        in_range("network.max_connections", u64::from(n.max_connections), 1, 65_536, "")?;
        in_range("network.max_pending_connections", u64::from(n.max_pending_connections), 1, 4_096, "")?;
        in_range("network.relay_reservations", u64::from(n.relay_reservations), 0, 16, "")?;
        in_range("network.relay_max_circuit_secs", n.relay_max_circuit_secs, 1, u64::from(u32::MAX), " seconds")?;
        in_range("network.max_dials_per_sec", u64::from(n.max_dials_per_sec), 0, 100_000, " (0: unlimited)")?;
        let g = &self.gateway;
        for h in &g.subdomain_hosts {
            if h.is_empty() || h.contains(['/', ' ', ':']) {
                return Err(Invalid {
                    key: "gateway.subdomain_hosts",
                    value: format!("{h:?}"),
                    allowed: "must be host names without a port or path, like localhost".into(),
                });
            }
        }
        in_range("gateway.retrieval_timeout_secs", g.retrieval_timeout_secs, 1, 3600, " seconds")?;
        in_range("gateway.max_requests", g.max_requests as u64, 1, 65_536, "")?;
        in_range("gateway.max_retrievals", g.max_retrievals as u64, 1, 65_536, "")?;
        let i = &self.ipns;
        in_range(
            "ipns.record_lifetime_secs",
            i.record_lifetime_secs,
            60,
            3650 * DAY,
            " seconds (a minute to 10 years)",
        )?;
        in_range("ipns.record_ttl_secs", i.record_ttl_secs, 1, 7 * DAY, " seconds")?;
        in_range("ipns.republish_interval_secs", i.republish_interval_secs, 60, 7 * DAY, " seconds")?;
        in_range("ipns.resolve_answers", i.resolve_answers as u64, 1, 20, " (of the 20 closest peers)")?;
        in_range("ipns.resolve_settle_ms", i.resolve_settle_ms, 0, 60_000, " ms")?;
        let f = &self.follow;
        in_range("follow.check_interval_secs", f.check_interval_secs, 1, 7 * DAY, " seconds")?;
        in_range("follow.grace_secs", f.grace_secs, 0, 30 * DAY, " seconds")?;
        in_range("follow.max_bytes", f.max_bytes, 1, u64::MAX, " bytes")?;
        in_range("follow.block_timeout_secs", f.block_timeout_secs, 1, 3600, " seconds")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_and_typos_are_refused() {
        for p in NODE_PROFILES {
            let c = Config::for_profile(p).unwrap();
            assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        }
        assert!(Config::for_profile("local").unwrap().network.bootstrap.is_empty());
        assert!(Config::from_toml("[store]\nmeta_cache_byte = 1\n").is_err());
        assert!(Config::from_toml("[import]\nprofile = \"nope\"\n").is_err());
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn absurd_values_are_refused_with_the_key_and_range() {
        let cases = [
            ("[store]\nmeta_cache_bytes = 100\n", "store.meta_cache_bytes = 100: must be between 1048576"),
            ("[ipns]\nresolve_answers = 0\n", "ipns.resolve_answers = 0: must be between 1 and 20"),
            ("[ipns]\nrecord_lifetime_secs = 5\n", "ipns.record_lifetime_secs = 5: must be between 60"),
            ("[store]\ngc_period_secs = 0\n", "store.gc_period_secs = 0"),
            ("[store]\nmax_size_bytes = 5\n", "store.max_size_bytes = 5"),
            ("[network]\nmax_connections = 0\n", "network.max_connections = 0"),
            ("[network]\napi = \"nowhere\"\n", "network.api = \"nowhere\": must be IP:PORT"),
            ("[network]\nlisten = [\"tcp/1\"]\n", "network.listen"),
            ("[network]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n", "network.bootstrap"),
            ("[gateway]\nretrieval_timeout_secs = 0\n", "gateway.retrieval_timeout_secs = 0"),
            ("[gateway]\nmax_requests = 0\n", "gateway.max_requests = 0"),
            ("[gateway]\nmax_retrievals = 0\n", "gateway.max_retrievals = 0"),
            ("[gateway]\nsubdomain_hosts = [\"a/b\"]\n", "gateway.subdomain_hosts"),
            ("profile = \"laptop\"\n", "profile = \"laptop\""),
        ];
        for (text, want) in cases {
            let err = Config::from_toml(text).expect_err(text);
            assert!(err.starts_with(want), "{text}: {err}");
        }
        for p in NODE_PROFILES {
            Config::for_profile(p).unwrap().validate().unwrap();
        }
    }
}
