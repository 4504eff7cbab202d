//! The `cairn` command line. Parsing and output live here; all logic is in `cairn-node`.
//! Commands work on the repo directly (no daemon needed); `--json` gives machine output.

mod args;
mod cmd;
mod output;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let json = cli.json;
    let result = cmd::run(cli);
    match result {
        Ok(()) => {}
        Err(e) if output::is_broken_pipe(&e) => {}
        Err(e) => {
            if json {
                let msg = format!("{e:#}");
                eprintln!("{}", serde_json::json!({ "error": msg }));
            } else {
                eprintln!("Error: {e:#}");
            }
            std::process::exit(1);
        }
    }
}
