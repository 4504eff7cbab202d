//! `cairn pin …`: on the repo, or through a daemon (`pin add` then fetches what is missing
//! from the network before pinning).

use anyhow::{bail, Context, Result};
use cairn_node::exporter;
use cairn_node::pins::{self, Pin, PinKind};
use cairn_node::repo::Repo;
use serde_json::{json, Value};

use super::Target;
use crate::args::{PinCommand, PinType};
use crate::client::{self, Api};
use crate::output::Printer;
use crate::waiting::Waiter;

/// Run a pin subcommand.
pub fn run(t: &Target, cmd: PinCommand, out: &mut Printer) -> Result<()> {
    match cmd {
        PinCommand::Add { paths, recursive, name } => {
            let kind = if recursive { PinKind::Recursive } else { PinKind::Direct };
            for p in paths {
                let cid = match t {
                    Target::Local(repo) => {
                        let cid = exporter::resolve(repo.store(), &p)?;
                        pins::add(repo.store(), &cid, kind, name.clone())?;
                        cid.to_string()
                    }
                    Target::Daemon(api) => {
                        let mut q = vec![("arg", p.clone()), ("recursive", recursive.to_string())];
                        q.extend(name.clone().map(|n| ("name", n)));
                        let _waiter = Waiter::start(api, &p);
                        first_pin(&api.json("pin/add", &q)?)?
                    }
                };
                out.emit(json!({ "Pins": [cid] }), || format!("pinned {cid} {}", kind.as_str()))?;
            }
        }
        PinCommand::Rm { paths } => {
            for p in paths {
                let cid = match t {
                    Target::Local(repo) => {
                        let cid = exporter::resolve(repo.store(), &p)?;
                        pins::rm(repo.store(), &cid)?;
                        cid.to_string()
                    }
                    Target::Daemon(api) => first_pin(&api.json("pin/rm", &[("arg", p.clone())])?)?,
                };
                out.emit(json!({ "Pins": [cid] }), || format!("unpinned {cid}"))?;
            }
        }
        PinCommand::Ls { kind, paths } => {
            let rows = match t {
                Target::Local(repo) => local_ls(repo, kind, &paths)?,
                Target::Daemon(api) => remote_ls(api, kind, &paths)?,
            };
            for (cid, kind, name) in rows {
                out.emit(json!({ "Cid": cid, "Type": kind, "Name": name }), || format!("{cid} {kind}"))?;
            }
        }
        PinCommand::Verify => {
            let checks: Vec<(String, Option<String>)> = match t {
                Target::Local(repo) => {
                    pins::verify(repo.store())?.into_iter().map(|c| (c.cid.to_string(), c.problem)).collect()
                }
                Target::Daemon(api) => {
                    let resp = api.call("pin/verify", &[("verbose", "true".into())])?;
                    client::ndjson(resp)
                        .map(|row| {
                            let row = row?;
                            let cid = row["Cid"].as_str().context("a pin/verify row without Cid")?.to_string();
                            let problem = row["BadNodes"][0]["Err"].as_str().map(String::from);
                            Ok((cid, problem))
                        })
                        .collect::<Result<_>>()?
                }
            };
            let mut bad = 0;
            for (cid, problem) in checks {
                let ok = problem.is_none();
                bad += usize::from(!ok);
                out.emit(json!({ "Cid": cid, "Ok": ok, "Problem": problem }), || match &problem {
                    None => format!("{cid} ok"),
                    Some(p) => format!("{cid} BAD: {p}"),
                })?;
            }
            if bad > 0 {
                bail!("{bad} pin(s) are incomplete or corrupt");
            }
        }
    }
    Ok(())
}

fn first_pin(v: &Value) -> Result<String> {
    v["Pins"][0].as_str().map(String::from).context("the daemon's answer names no pin")
}

type PinRow = (String, String, Value);

fn local_ls(repo: &Repo, kind: PinType, paths: &[String]) -> Result<Vec<PinRow>> {
    let store = repo.store();
    let kinds = match kind {
        PinType::All => vec![PinKind::Recursive, PinKind::Direct, PinKind::Indirect],
        PinType::Recursive => vec![PinKind::Recursive],
        PinType::Direct => vec![PinKind::Direct],
        PinType::Indirect => vec![PinKind::Indirect],
    };
    let mut list = pins::list(store, &kinds)?;
    if !paths.is_empty() {
        let wanted = paths.iter().map(|p| exporter::resolve(store, p)).collect::<Result<Vec<_>, _>>()?;
        list.retain(|p| wanted.iter().any(|w| w.hash() == p.cid.hash()));
        if list.is_empty() {
            bail!("not pinned: {}", paths.join(", "));
        }
    }
    Ok(list
        .into_iter()
        .map(|Pin { cid, kind, name }| (cid.to_string(), kind.as_str().to_string(), json!(name)))
        .collect())
}

fn remote_ls(api: &Api, kind: PinType, paths: &[String]) -> Result<Vec<PinRow>> {
    let t = match kind {
        PinType::All => "all",
        PinType::Recursive => "recursive",
        PinType::Direct => "direct",
        PinType::Indirect => "indirect",
    };
    let mut q = vec![("type", t.to_string()), ("stream", "true".into())];
    q.extend(paths.iter().map(|p| ("arg", p.clone())));
    client::ndjson(api.call("pin/ls", &q)?)
        .map(|row| {
            let row = row?;
            let cid = row["Cid"].as_str().context("a pin/ls row without Cid")?.to_string();
            let kind = row["Type"].as_str().unwrap_or_default().to_string();
            Ok((cid, kind, row["Name"].clone()))
        })
        .collect()
}
