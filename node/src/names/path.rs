//! Following a path through names: `/ipns/{name}[/rest]` becomes what the name points at,
//! the rest of the path appended, name after name.

use std::time::Duration;

use cairn_protocol::names::Name;

use super::{NameError, Resolved, MAX_DEPTH};

/// Follow a path through names: `/ipns/{name}[/rest]` (or a bare name) becomes what the
/// name's record points at, with `rest` appended; with `recursive`, until the path no longer
/// starts with `/ipns/` (at most [`MAX_DEPTH`] names). `step` resolves one name. Returns the
/// path and the smallest TTL met on the way (how long the answer may be cached).
pub async fn follow<F, Fut>(path: &str, recursive: bool, mut step: F) -> Result<(String, Duration), NameError>
where
    F: FnMut(Name) -> Fut,
    Fut: std::future::Future<Output = Result<Resolved, NameError>>,
{
    let mut path = match path.strip_prefix("/ipns/") {
        Some(rest) => format!("/ipns/{rest}"),
        None if path.starts_with('/') => return Err(NameError::BadValue(format!("{path:?} is not an /ipns/ path"))),
        None => format!("/ipns/{path}"),
    };
    let mut ttl = Duration::MAX;
    for _ in 0..MAX_DEPTH {
        let Some(rest) = path.strip_prefix("/ipns/") else { return Ok((path, ttl)) };
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let name: Name =
            first.parse().map_err(|e: cairn_protocol::names::NameError| NameError::BadValue(e.to_string()))?;
        let r = step(name).await?;
        ttl = ttl.min(r.ttl);
        path = join(&r.value, tail);
        if !recursive {
            return Ok((path, ttl));
        }
    }
    if path.starts_with("/ipns/") {
        return Err(NameError::TooDeep(path));
    }
    Ok((path, ttl))
}

fn join(value: &str, tail: &str) -> String {
    let tail = tail.trim_matches('/');
    if tail.is_empty() {
        value.to_string()
    } else {
        format!("{}/{tail}", value.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::names::Source;
    use libp2p::identity::Keypair;

    fn name() -> Name {
        Name::new(Keypair::generate_ed25519().public().to_peer_id())
    }

    fn resolved(name: Name, value: &str, ttl: u64) -> Resolved {
        Resolved {
            name,
            value: value.into(),
            sequence: 1,
            ttl: Duration::from_secs(ttl),
            eol_nanos: 0,
            record: Vec::new(),
            source: Source::Local,
        }
    }

    #[tokio::test]
    async fn follow_goes_through_names_and_keeps_the_rest_of_the_path() {
        let (a, b) = (name(), name());
        let table: HashMap<Name, Resolved> =
            [(a, resolved(a, &format!("/ipns/{b}/site"), 60)), (b, resolved(b, "/ipfs/bafkqaaa", 30))].into();
        let step = |n: Name| {
            let r = table.get(&n).cloned().ok_or(NameError::NotFound(n));
            async move { r }
        };
        let (p, ttl) = follow(&format!("/ipns/{a}/index.html"), true, step).await.unwrap();
        assert_eq!((p.as_str(), ttl), ("/ipfs/bafkqaaa/site/index.html", Duration::from_secs(30)));
        let (p, _) = follow(&a.to_string(), false, step).await.unwrap();
        assert_eq!(p, format!("/ipns/{b}/site"));
        assert!(matches!(follow("/ipfs/bafkqaaa", true, step).await, Err(NameError::BadValue(_))));
    }

    #[tokio::test]
    async fn a_circle_of_names_stops() {
        let a = name();
        let step = |n: Name| async move { Ok(resolved(n, &format!("/ipns/{n}"), 60)) };
        assert!(matches!(follow(&a.to_string(), true, step).await, Err(NameError::TooDeep(_))));
    }
}
