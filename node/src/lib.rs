//! The cairn node: everything that needs a disk (and, later, a network).
//!
//! Module map:
//! - [`store`]: the block store (files for large blocks, sled for small ones) and its writer.
//! - [`repo`]: the repo folder: format version, config, identity key, lock.
//! - [`pins`]: recursive and direct pins.
//! - [`gc`]: mark-and-sweep garbage collection from the pins.
//! - [`dag`]: walking DAGs through the store (links of dag-pb and raw blocks).
//! - [`importer`]: adding files and directories from the file system.
//! - [`exporter`]: writing files and directory trees out, safely.
//! - [`car_io`]: `dag import` / `dag export` of CAR files.
//! - [`local`]: the offline node facade the CLI drives.

pub mod car_io;
pub mod dag;
pub mod exporter;
pub mod gc;
pub mod importer;
pub mod maintenance;
pub mod pins;
pub mod repo;
pub mod store;
