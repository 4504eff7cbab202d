//! The `cairn` command line. Parsing and output live here; all logic is in `cairn-node`.
//! Commands go through a running daemon's RPC API when there is one (`cairn daemon`), and work
//! on the repo directly otherwise, with the same output; `--json` gives machine output.

mod args;
mod client;
mod cmd;
mod output;
mod waiting;

use clap::Parser;

fn main() {
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
