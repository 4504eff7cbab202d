//! The `cairn` command line. Parsing and output live here; all logic is in `cairn-node`'s
//! operations layer. Commands go through a running daemon's RPC API when there is one
//! (`cairn daemon`), and run in this process on the repo otherwise ([`backend`]), with the
//! same output; `--json` gives machine output.
//!
//! Module map:
//! - [`args`]: the command line (clap).
//! - [`cmd`]: one module per command group: build the typed request, print the answer.
//! - [`backend`]: running a request in-process or through the daemon.
//! - [`client`]: finding the daemon and its HTTP API.
//! - [`multipart`]: upload bodies as kubo's clients write them.
//! - [`output`], [`waiting`]: printing, progress, and saying what a command waits for.

pub mod args;
pub mod backend;
pub mod client;
pub mod cmd;
pub mod multipart;
pub mod output;
pub mod waiting;

use clap::Parser;

/// Parse the command line, run the command, and exit with its status.
pub fn main() {
    let cli = args::Cli::parse();
    let json = cli.json;
    if cli.timeout.is_some() && matches!(cli.command, args::Command::Daemon) {
        output::note("Error: --timeout bounds one command; it does not apply to `cairn daemon`");
        std::process::exit(2);
    }
    if let Some(limit) = cli.timeout {
        let _ = client::TIMEOUT.set(limit);
        waiting::arm_timeout(limit, json);
    }
    let result = cmd::run(cli);
    match result {
        Ok(()) => {}
        Err(e) if output::is_broken_pipe(&e) => {}
        Err(e) => {
            // `note`, not `eprintln!`: a closed stderr must not turn an error into a panic.
            if json {
                output::note(&serde_json::json!({ "error": output::describe(&e) }).to_string());
            } else {
                output::note(&format!("Error: {}", output::describe(&e)));
            }
            std::process::exit(1);
        }
    }
}
