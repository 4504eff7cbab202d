//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cairn: a peer-to-peer, content-addressed file network that speaks IPFS.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, propagate_version = true)]
pub struct Cli {
    /// Repo folder (default: $CAIRN_PATH, else ~/.cairn).
    #[arg(long, global = true, env = "CAIRN_PATH")]
    pub repo: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up after this long (`30s`, `2m`, `1h`): the command fails with what it was
    /// waiting for, and the daemon stops the request's work.
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repo (identity key, config, empty store).
    Init {
        /// Node profile: home (default), server, or local (loopback only, for tests and demos).
        #[arg(long, default_value = "home")]
        profile: String,
    },
    /// Add files or directories; prints their CIDs.
    Add(AddArgs),
    /// Print a file's bytes.
    Cat {
        /// CID[/path] or /ipfs/CID[/path].
        path: String,
        /// First byte to print.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Number of bytes to print (default: to the end).
        #[arg(long)]
        length: Option<u64>,
    },
    /// Write a file or directory tree to disk.
    Get {
        /// CID[/path] or /ipfs/CID[/path].
        path: String,
        /// Output path (default: the CID, or the last path segment, in the current folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List a directory.
    Ls {
        /// CID[/path] or /ipfs/CID[/path].
        path: String,
    },
    /// Manage pins (what GC keeps).
    #[command(subcommand)]
    Pin(PinCommand),
    /// Raw block operations.
    #[command(subcommand)]
    Block(BlockCommand),
    /// DAG import/export as CAR files.
    #[command(subcommand)]
    Dag(DagCommand),
    /// Repo maintenance.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Show this node's identity.
    Id,
    /// Print version information.
    Version,
    /// Run the node: join the network, serve the RPC API, and let other `cairn` commands
    /// go through it (stops on Ctrl-C, SIGTERM or `cairn shutdown`).
    Daemon,
    /// Connections to other peers (needs a running daemon).
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// The DHT: find providers and peers, announce content (needs a running daemon).
    #[command(subcommand)]
    Dht(DhtCommand),
    /// Block exchange state (needs a running daemon).
    #[command(subcommand)]
    Bitswap(BitswapCommand),
    /// Traffic statistics (needs a running daemon).
    #[command(subcommand)]
    Stats(StatsCommand),
    /// DHT announcement schedule (needs a running daemon).
    #[command(subcommand)]
    Provide(ProvideCommand),
    /// Stop the running daemon.
    Shutdown,
    /// Signing keys for IPNS names (`self` is the node's identity).
    #[command(subcommand)]
    Key(KeyCommand),
    /// IPNS names: point a key's name at content, resolve names.
    #[command(subcommand)]
    Name(NameCommand),
    /// Follow a name (or a CID): keep its latest complete version pinned and served, and
    /// keep the name resolvable while its publisher is away.
    #[command(subcommand)]
    Follow(FollowCommand),
    /// Read and change settings in the repo's config.toml, checked as the daemon checks them
    /// (a running daemon applies a change when it restarts).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check that this node works: daemon, reachability, addresses, port mapping, peers,
    /// disk space, clock; says what to do about each problem. Exits 1 when something is wrong.
    Doctor,
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell), e.g.
    /// `cairn completions bash > /etc/bash_completion.d/cairn`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Check that content survives the loss of any single host: ask every live holder, block
    /// by block (needs a running daemon). Exits 1 when the weakest block has fewer than
    /// --min independent holders.
    Health {
        /// A CID[/path], /ipfs/…, /ipns/<name>[/path] or a name (k51…).
        path: String,
        /// Independent live holders every block needs.
        #[arg(long, default_value_t = 2)]
        min: u32,
    },
}

/// `cairn config …`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print every setting in effect, defaults included (specs/config.md explains each).
    Show,
    /// Print one setting: `cairn config get network.max_connections`.
    Get {
        /// The dotted key.
        key: String,
    },
    /// Change one setting: `cairn config set network.max_connections 256`. The value is TOML
    /// (`true`, `64`, `["/ip4/…"]`); a string needs no quotes. Refused, naming the key, when
    /// the daemon would refuse it; the file keeps its comments.
    Set {
        /// The dotted key.
        key: String,
        /// The new value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

/// `cairn follow …`.
#[derive(Subcommand, Debug)]
pub enum FollowCommand {
    /// Follow a name (k51…, /ipns/…) or a CID.
    Add {
        /// What to follow.
        target: String,
        /// A label for the follow and its pins (`follow:<label>`).
        #[arg(long = "as")]
        label: Option<String>,
        /// Refuse versions larger than this: 500MB, 2GiB, or bytes (default: follow.max_bytes,
        /// 10 GiB). Counted as blocks arrive, not from sizes the content declares.
        #[arg(long)]
        max_bytes: Option<String>,
    },
    /// List follows.
    Ls,
    /// Stop following; the follow's pins go unless --keep.
    Rm {
        /// Targets or labels.
        #[arg(required = true)]
        which: Vec<String>,
        /// Keep the version held pinned.
        #[arg(long)]
        keep: bool,
    },
    /// Show each follow's state: version held, version being fetched, last check and error,
    /// when the name's record expires.
    Status {
        /// Targets or labels (default: every follow).
        which: Vec<String>,
    },
}

/// `cairn key …`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Make a new Ed25519 key; prints its IPNS name.
    Gen {
        /// The key's name.
        name: String,
        /// Key type (only ed25519).
        #[arg(short = 't', long = "type", default_value = "ed25519")]
        kind: String,
    },
    /// List keys and their IPNS names.
    #[command(alias = "ls")]
    List,
    /// Remove keys.
    Rm {
        /// Key names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Rename a key.
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
        /// Replace a key that has the new name.
        #[arg(short, long)]
        force: bool,
    },
    /// Write a private key to a file (libp2p protobuf, kubo's format), readable by you only.
    Export {
        /// Key name.
        name: String,
        /// Output file (default: `<name>.key`); never overwritten.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import a private key file (as `key export` and kubo write it).
    Import {
        /// The name it gets.
        name: String,
        /// The key file.
        file: PathBuf,
        /// Replace a key of that name.
        #[arg(short, long)]
        force: bool,
    },
}

/// `cairn name …`.
#[derive(Subcommand, Debug)]
pub enum NameCommand {
    /// Point a key's name at a path, signed, and put the record into the DHT.
    Publish {
        /// /ipfs/<cid>[/path], <cid>[/path] or /ipns/<name>.
        path: String,
        /// The key that signs (see `cairn key list`).
        #[arg(short, long, default_value = "self")]
        key: String,
        /// How long the record stays valid: 4w, 30d, 48h (default: ipns.record_lifetime_secs,
        /// 30 days). Under 7 days draws a warning.
        #[arg(long)]
        lifetime: Option<String>,
        /// How long resolvers may cache it: 5m, 1h (default: ipns.record_ttl_secs, 5 minutes).
        #[arg(long)]
        ttl: Option<String>,
        /// Check that the path resolves first.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        resolve: bool,
        /// Without a daemon: sign the record now; the daemon publishes it when it starts.
        #[arg(long)]
        allow_offline: bool,
    },
    /// Print the path a name points at.
    Resolve {
        /// A name (k51…, 12D3KooW…) or /ipns/<name>[/path] (default: this node's own).
        name: Option<String>,
        /// Follow names that point at names.
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        recursive: bool,
        /// Ask the network even if a cached record is still fresh.
        #[arg(long)]
        nocache: bool,
    },
}

/// `cairn swarm …`.
#[derive(Subcommand, Debug)]
pub enum SwarmCommand {
    /// List connected peers.
    Peers,
    /// Connect to peers (multiaddrs ending in /p2p/<peer ID>).
    Connect {
        /// Addresses.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// Close every connection to peers (peer IDs or /…/p2p/<peer ID> addresses).
    Disconnect {
        /// Peers.
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// This node's listen addresses.
    Addrs,
}

/// `cairn dht …`.
#[derive(Subcommand, Debug)]
pub enum DhtCommand {
    /// Find peers that provide a CID.
    Findprovs {
        /// The CID.
        cid: String,
        /// Most providers to find.
        #[arg(short = 'n', long, default_value_t = 20)]
        num_providers: u64,
    },
    /// Find a peer's addresses.
    Findpeer {
        /// The peer ID.
        peer: String,
    },
    /// Announce to the DHT that this node provides CIDs (held locally).
    Provide {
        /// CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Announce every block of their DAGs.
        #[arg(short, long)]
        recursive: bool,
    },
}

/// `cairn bitswap …`.
#[derive(Subcommand, Debug)]
pub enum BitswapCommand {
    /// Counters and current state.
    Stat,
    /// The blocks this node is fetching (or, with --peer, what a peer wants from us).
    Wantlist {
        /// A peer ID.
        #[arg(long)]
        peer: Option<String>,
    },
}

/// `cairn provide …`.
#[derive(Subcommand, Debug)]
pub enum ProvideCommand {
    /// Keys queued for announcement, announcements made, last run and lag.
    Stat,
}

/// `cairn stats …`.
#[derive(Subcommand, Debug)]
pub enum StatsCommand {
    /// Bytes sent and received (Bitswap block bytes for now).
    Bw,
}

/// `cairn add` arguments.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Files or directories to add (none or "-": standard input).
    pub paths: Vec<PathBuf>,
    /// Add directories recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// Wrap the result in a directory (keeps the file name).
    #[arg(short = 'w', long)]
    pub wrap_with_directory: bool,
    /// Include dot-files.
    #[arg(long)]
    pub hidden: bool,
    /// Only compute CIDs; write nothing.
    #[arg(short = 'n', long)]
    pub only_hash: bool,
    /// Pin what is added.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pin: bool,
    /// Print only CIDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print only the final root CID.
    #[arg(short = 'Q', long)]
    pub quieter: bool,
    /// Show a progress bar (default: when stderr is a terminal).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub progress: Option<bool>,
    /// Name used for standard input with -w.
    #[arg(long, default_value = "")]
    pub stdin_name: String,
    /// Import settings.
    #[command(flatten)]
    pub import: ImportArgs,
}

/// Settings that decide CIDs (IPIP-499 profiles plus kubo's single-setting flags).
#[derive(Args, Debug, Default)]
pub struct ImportArgs {
    /// Import profile: unixfs-v1-2025 (default) or unixfs-v0-2015 (kubo legacy, CIDv0).
    #[arg(long)]
    pub profile: Option<String>,
    /// CID version of dag-pb nodes (0 or 1; 1 implies raw leaves).
    #[arg(long)]
    pub cid_version: Option<u8>,
    /// Raw leaves (true/false).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub raw_leaves: Option<bool>,
    /// Chunker: size-N, buzhash, rabin, rabin-AVG or rabin-MIN-AVG-MAX.
    #[arg(long, short = 's')]
    pub chunker: Option<String>,
    /// Use the trickle DAG layout.
    #[arg(long, short = 't')]
    pub trickle: bool,
    /// Hash function: sha2-256 or blake3.
    #[arg(long)]
    pub hash: Option<String>,
    /// Most links per file node.
    #[arg(long)]
    pub max_links: Option<usize>,
    /// Record permission bits (UnixFS 1.5).
    #[arg(long)]
    pub preserve_mode: bool,
    /// Record modification times (UnixFS 1.5).
    #[arg(long)]
    pub preserve_mtime: bool,
}

/// `cairn pin …`.
#[derive(Subcommand, Debug)]
pub enum PinCommand {
    /// Pin content (recursively by default).
    Add {
        /// CID[/path]s to pin.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Pin the whole DAG (false: only the block).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        recursive: bool,
        /// A label for the pin.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove pins.
    Rm {
        /// CIDs to unpin.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// List pins.
    Ls {
        /// Which pins.
        #[arg(long = "type", value_enum, default_value_t = PinType::All)]
        kind: PinType,
        /// Only these CIDs.
        paths: Vec<String>,
    },
    /// Check that every pinned DAG is complete and uncorrupted.
    Verify,
}

/// Pin kinds for `pin ls`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PinType {
    /// Every kind.
    All,
    /// Recursive pins.
    Recursive,
    /// Direct pins.
    Direct,
    /// Blocks under recursive pins.
    Indirect,
    /// Pins whose content is still being fetched (through a daemon: with progress).
    Pending,
}

/// `cairn block …`.
#[derive(Subcommand, Debug)]
pub enum BlockCommand {
    /// Print a block's raw bytes.
    Get {
        /// The CID.
        cid: String,
    },
    /// Store a block read from a file or standard input.
    Put {
        /// File to read (default: standard input).
        file: Option<PathBuf>,
        /// Codec of the block: raw, dag-pb or dag-cbor.
        #[arg(long, default_value = "raw")]
        cid_codec: String,
        /// Hash function: sha2-256 or blake3.
        #[arg(long, default_value = "sha2-256")]
        mhtype: String,
        /// Pin the block directly.
        #[arg(long)]
        pin: bool,
    },
    /// Show a block's size.
    Stat {
        /// The CID.
        cid: String,
    },
    /// Remove blocks (pinned blocks are refused).
    Rm {
        /// CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Ignore blocks that are not present.
        #[arg(short, long)]
        force: bool,
    },
}

/// `cairn dag …`.
#[derive(Subcommand, Debug)]
pub enum DagCommand {
    /// Import blocks from CAR files (v1 or v2), pinning their roots.
    Import {
        /// CAR files (none or "-": standard input).
        files: Vec<PathBuf>,
        /// Pin the roots listed in the CAR header.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        pin_roots: bool,
    },
    /// Export a DAG as a CARv1 (to standard output or -o).
    Export {
        /// Root CID[/path].
        path: String,
        /// Output file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `cairn repo …`.
#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Remove every block no pin reaches.
    Gc,
    /// Show repo size and counts.
    Stat,
    /// Re-hash every block and report corrupt ones.
    Verify,
}
