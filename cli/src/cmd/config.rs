//! `cairn config show|get|set`: the repo's `config.toml`, read and changed in place without
//! opening the repo (a running daemon keeps it open), checked as the daemon checks it.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use cairn_node::repo::config_edit;
use cairn_node::repo::Config;
use serde_json::json;

use crate::args::ConfigCommand;
use crate::output::Printer;

/// Run one `config` subcommand on the repo at `repo`.
pub fn run(repo: &Path, cmd: ConfigCommand, out: &mut Printer) -> Result<()> {
    let file = repo.join("config.toml");
    let text = fs::read_to_string(&file).with_context(|| {
        format!("reading {} (is {} a cairn repo? `cairn init` makes one)", file.display(), repo.display())
    })?;
    match cmd {
        ConfigCommand::Show => {
            let config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            out.emit(config_edit::to_json(&config), || config_edit::show(&config).trim_end().to_string())?;
        }
        ConfigCommand::Get { key } => {
            let config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let value = config_edit::get(&config, &key)?;
            let json = serde_json::to_value(&value)?;
            out.emit(json!({ "Key": key, "Value": json }), || match &value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })?;
        }
        ConfigCommand::Set { key, value } => {
            let new = config_edit::set(&text, &key, &value).context("refused")?;
            config_edit::save(&file, &new).with_context(|| format!("writing {}", file.display()))?;
            let config = Config::from_toml(&new).map_err(|e| anyhow::anyhow!("{e}"))?;
            let shown = config_edit::get(&config, &key)?;
            let running = crate::client::api_file(repo).exists();
            out.emit(json!({ "Key": key, "Value": serde_json::to_value(&shown)?, "RestartNeeded": running }), || {
                let mut t = format!("{key} = {shown}");
                if running {
                    t.push_str(
                        "\nthe running daemon applies this when it restarts (cairn shutdown, then cairn daemon)",
                    );
                }
                t
            })?;
        }
    }
    Ok(())
}
