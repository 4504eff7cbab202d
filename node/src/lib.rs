//! The cairn node: everything that needs a disk or the network.
//!
//! Module map (who owns what: the store owns every sled tree, the provider actor owns the
//! announcement queue, the swarm task owns the Swarm, the Bitswap client and server tasks own
//! their wants and ledgers; everything else talks to them through handles and commands):
//! - [`store`]: the block store (files for large blocks, sled for small ones) and its writer;
//!   the only owner of the metadata trees (pins, pending pins, provide schedule, DHT records).
//! - [`repo`]: the repo folder: format version, config, identity key, lock.
//! - [`pins`]: recursive and direct pins.
//! - [`gc`]: mark-and-sweep garbage collection from the pins.
//! - [`dag`]: walking DAGs through the store (links of dag-pb and raw blocks).
//! - [`importer`]: adding files, directories and symlinks (from disk or a request body).
//! - [`upload`]: the parts an uploading command reads (`add`, `block/put`, `dag/import`).
//! - [`exporter`]: writing files and directory trees out, safely.
//! - [`car_io`]: `dag import` / `dag export` of CAR files.
//! - [`net`]: the libp2p swarm task (DHT, identify, ping, AutoNAT) and its handle.
//! - [`bitswap`]: the Bitswap engine: serving peers' wants (ledgers) and fetch sessions.
//! - [`node`]: a running node: swarm, Bitswap and provider started and stopped together.
//! - [`ops`]: every command once, as a typed request and answer, for the API and the CLI.
//! - [`api`]: the RPC API (kubo's `/api/v0/…` over HTTP) that `cairn daemon` serves, routing
//!   onto [`ops`].
//! - [`gateway`]: the HTTP gateway (path, trustless and subdomain) that `cairn daemon` serves.
//! - [`names`]: IPNS: publishing this node's names, resolving anyone's (cache, fast lookups,
//!   republishing).
//! - [`provider`]: the actor announcing content to the DHT from the store's schedule
//!   (re-announced every 22 h, due keys read from an index, a bounded queue in memory).
//! - [`health`]: the survival check: how many independent live hosts hold each block of a DAG.
//! - [`follow`]: following names: the latest complete version pinned, the name kept alive.
//! - [`maintenance`]: `repo stat` and `repo verify`.
//! - [`pinning`]: pinning remote content (fetch the DAG, then pin; resumes after a restart).
//! - [`read_ahead`]: fetching the blocks a DAG reader wants next, in file order.
//! - [`dag_read`]: one async block source per read ([`dag_read::Blocks`]) driving the
//!   protocol reader's state machines, with typed failures.
//! - [`throttle`]: the serving budget shared by Bitswap and the gateway.
//! - [`cache`]: the storage budget: unpinned blocks evicted past `store.max_size_bytes`.
//! - [`memory`]: handing freed heap memory back to the system while the daemon runs.
//! - [`metrics`]: the Prometheus registry (libp2p's metrics and cairn's) the API serves.
//! - [`api::webui`]: the operator's dashboard, served by the API at `/webui`.
//! - [`http_serve`]: the connection loop of the API and the gateway, with read deadlines.
//! - [`http_body`]: streaming response bodies (from blocking or async producers) and request
//!   bodies read on blocking threads.
//! - `testnet` (feature `test-utils`): in-process memory-transport testnets for tests and
//!   benchmarks.
//!
//! These docs are written for the people who work on the node: read them with
//! `cargo doc --document-private-items`, where links to crate-private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub mod bitswap;
pub(crate) mod cache;
pub mod car_io;
pub mod dag;
pub(crate) mod dag_read;
pub mod exporter;
pub mod follow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gateway;
pub(crate) mod gc;
pub mod health;
pub(crate) mod http_body;
pub(crate) mod http_serve;
pub mod importer;
pub(crate) mod maintenance;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod net;
pub mod node;
pub mod ops;
pub(crate) mod pinning;
pub(crate) mod pins;
pub mod provider;
pub(crate) mod read_ahead;
pub mod repo;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod testnet;
pub mod throttle;
pub mod upload;
