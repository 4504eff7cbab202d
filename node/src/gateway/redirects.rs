//! `_redirects` files (the IPFS gateway spec's subset of Netlify's format), which let a
//! single-page site answer every path with its `index.html`, move pages, or serve a custom
//! 404 page. Only on a CID's own origin (subdomain requests), only for paths that do not
//! exist, and only from the file at the root of the CID.
//!
//! Each line is `from to [status]`: `from` is a path whose segments may be `:name`
//! placeholders and whose last segment may be `*` (the rest of the path); `to` is a path or
//! URL where `:name` and `:splat` are substituted; `status` is 301 (default), 302, 303, 307,
//! 308, 200 (serve `to` instead, the URL unchanged), 404 (serve `to` with status 404), 410 or
//! 451. `#` starts a comment. The first matching rule wins.

/// Largest `_redirects` file the gateway reads (the spec's limit).
pub(crate) const MAX_SIZE: u64 = 64 * 1024;

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    from: Vec<String>,
    splat: bool,
    to: String,
    /// The status this rule answers with.
    pub status: u16,
}

/// Why a `_redirects` file was refused (the gateway then answers 500 with this, as the spec
/// asks, so the site owner sees the mistake).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("_redirects line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parse a whole file.
pub fn parse(text: &str) -> Result<Vec<Rule>, ParseError> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| ParseError { line: i + 1, reason };
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (from, to, status) = match fields.as_slice() {
            [from, to] => (*from, *to, "301"),
            [from, to, status] => (*from, *to, *status),
            _ => return Err(err(format!("expected `from to [status]`, got {line:?}"))),
        };
        if status.ends_with('!') {
            return Err(err("forced rules (`!`) are not supported".into()));
        }
        let status: u16 = status.parse().map_err(|_| err(format!("invalid status {status:?}")))?;
        if ![200, 301, 302, 303, 307, 308, 404, 410, 451].contains(&status) {
            return Err(err(format!("status {status} is not allowed in _redirects")));
        }
        if !from.starts_with('/') || from.contains('?') {
            return Err(err(format!("`from` must be a path without a query, got {from:?}")));
        }
        if !(to.starts_with('/') || to.starts_with("http://") || to.starts_with("https://")) {
            return Err(err(format!("`to` must be a path or an http(s) URL, got {to:?}")));
        }
        let mut segs: Vec<String> = from.split('/').filter(|s| !s.is_empty()).map(String::from).collect();
        let splat = segs.last().is_some_and(|s| s == "*");
        if splat {
            segs.pop();
        }
        if segs.iter().any(|s| s.contains('*')) {
            return Err(err("`*` is allowed only as the last segment of `from`".into()));
        }
        rules.push(Rule { from: segs, splat, to: to.to_string(), status });
    }
    Ok(rules)
}

/// The first rule matching `path` (decoded, starting with `/`): its status and target with
/// placeholders substituted.
pub fn find(rules: &[Rule], path: &str) -> Option<(u16, String)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    rules.iter().find_map(|r| r.apply(&segs).map(|to| (r.status, to)))
}

impl Rule {
    fn apply(&self, segs: &[&str]) -> Option<String> {
        if segs.len() < self.from.len() || (!self.splat && segs.len() != self.from.len()) {
            return None;
        }
        let mut bound: Vec<(&str, &str)> = Vec::new();
        for (pat, seg) in self.from.iter().zip(segs) {
            match pat.strip_prefix(':') {
                Some(name) => bound.push((name, seg)),
                None if pat == seg => {}
                None => return None,
            }
        }
        let splat = segs[self.from.len()..].join("/");
        let mut to = self.to.replace(":splat", &splat);
        // Longest names first, so `:id` does not eat the start of `:idx`.
        bound.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for (name, value) in bound {
            to = to.replace(&format!(":{name}"), value);
        }
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_page_site_and_moves() {
        let rules = parse(
            "# comment\n/old/:id  /new/:id 302\n/blog/*  /posts/:splat\n/missing /404.html 404\n/*  /index.html  200\n",
        )
        .unwrap();
        assert_eq!(find(&rules, "/old/42"), Some((302, "/new/42".into())));
        assert_eq!(find(&rules, "/blog/2024/x"), Some((301, "/posts/2024/x".into())));
        assert_eq!(find(&rules, "/missing/"), Some((404, "/404.html".into())));
        assert_eq!(find(&rules, "/app/route"), Some((200, "/index.html".into())));
        assert_eq!(find(&rules, "/"), Some((200, "/index.html".into())));
        assert_eq!(find(&parse("/a /b\n").unwrap(), "/a/b"), None);
    }

    #[test]
    fn refused_lines_name_the_line() {
        assert_eq!(parse("/a /b 301!\n").unwrap_err().line, 1);
        assert_eq!(parse("\n/a /b 999\n").unwrap_err().line, 2);
        assert!(parse("/a?x=1 /b\n").is_err());
        assert!(parse("/a/*/b /c\n").is_err());
        assert!(parse("/a b\n").is_err());
        assert!(parse("/a\n").is_err());
    }
}
