//! `health`: the survival check of a DAG or a name's current version (see [`crate::health`]).

use cairn_protocol::names::Name;
use tokio_util::sync::CancellationToken;

use super::{json_reply, work, Args, Command, Ctx, Op, OpError};
use crate::health::{self, Report};

json_reply!(Report);

/// `health`: how many independent live hosts hold each block of a DAG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `CID[/path]`, `/ipfs/…`, `/ipns/{name}[/path]` or a bare name.
    pub path: String,
    /// Holders of the weakest block below which the check fails (the CLI's exit code; the
    /// answer is the same).
    pub min: u32,
}

impl Command for Health {
    const NAME: &'static str = "health";

    fn to_args(&self) -> Vec<(&'static str, String)> {
        vec![("arg", self.path.clone()), ("min", self.min.to_string())]
    }

    fn from_args(args: &Args) -> Result<Self, OpError> {
        let min = args.u64("min")?.unwrap_or(2);
        let min = u32::try_from(min).map_err(|_| OpError::bad(format!("option \"min\": {min} is too large")))?;
        Ok(Health { path: args.arg()?.to_string(), min })
    }
}

/// The name a check is about, if the path starts with one (`k51…`, `/ipns/k51…/…`).
fn name_of(path: &str) -> Option<Name> {
    let first = path.strip_prefix("/ipns/").unwrap_or(path).split('/').next()?;
    match path.starts_with("/ipns/") || !path.contains('/') {
        true => first.parse().ok(),
        false => None,
    }
}

impl Op for Health {
    type Output = Report;

    async fn run(self, ctx: Ctx) -> Result<Report, OpError> {
        let node = ctx.node(Self::NAME)?.clone();
        let name = name_of(&self.path);
        let path = match name {
            Some(n) if !self.path.starts_with("/ipns/") => format!("/ipns/{n}"),
            _ => self.path.clone(),
        };
        let (root, segments) = super::name::content_path(&ctx, &path).await?;
        let mut blocks = work::blocks(&ctx, false, CancellationToken::new());
        let root = blocks.resolve(root, &segments).await?;
        let mut report =
            health::check(&node, root, name).await.map_err(|e| OpError::failed(format!("checking {root}: {e}")))?;
        if let Some(n) = name {
            if let Ok(r) = node.names().resolve(n, false).await {
                let eol = (r.eol_nanos.max(0) / 1_000_000_000) as u64;
                report.warnings.extend(super::follow::expiry_warning(&n.to_string(), eol, crate::follow::unix_now()));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_told_from_content_paths() {
        let name = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8";
        assert!(name_of(name).is_some());
        assert!(name_of(&format!("/ipns/{name}/index.html")).is_some());
        assert!(name_of("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy").is_none());
        assert!(name_of("/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy").is_none());
    }
}
