//! Command options as kubo sends them: `?arg=<x>&arg=<y>&<option>=<value>` in the query
//! string. Options not named here are ignored, as kubo's clients send some (`stream-channels`,
//! `encoding`) that change nothing for us.

use axum::extract::Query;
use axum::http::Uri;
use cairn_protocol::Cid;

use super::error::OpError;

/// The query string of one request, in order.
#[derive(Clone, Debug, Default)]
pub struct Args(Vec<(String, String)>);

impl Args {
    /// The options of a request URI.
    pub(crate) fn from_uri(uri: &Uri) -> Result<Args, OpError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Args(pairs))
            .map_err(|e| OpError::bad(format!("malformed query string: {}", e.body_text())))
    }

    /// Parse a bare query string (`a=1&b=2`).
    pub fn parse(query: &str) -> Result<Args, OpError> {
        let uri: Uri = format!("/?{query}").parse().map_err(|_| OpError::bad(format!("malformed query {query:?}")))?;
        Args::from_uri(&uri)
    }

    /// Every positional argument (`arg=`), in order.
    pub fn all(&self) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == "arg").map(|(_, v)| v.as_str()).collect()
    }

    /// The first positional argument, required.
    pub fn arg(&self) -> Result<&str, OpError> {
        self.all().into_iter().next().ok_or_else(|| OpError::bad("argument \"arg\" is required"))
    }

    /// At least one positional argument.
    pub fn some(&self) -> Result<Vec<&str>, OpError> {
        let all = self.all();
        if all.is_empty() {
            return Err(OpError::bad("argument \"arg\" is required"));
        }
        Ok(all)
    }

    /// The first value of option `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The last value of option `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean option: `true`/`1`/empty (present) or `false`/`0`.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, OpError> {
        self.opt_flag(name).map(|v| v.unwrap_or(default))
    }

    /// A boolean option, `None` when absent.
    pub(crate) fn opt_flag(&self, name: &str) -> Result<Option<bool>, OpError> {
        match self.get(name) {
            None => Ok(None),
            Some("" | "true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(v) => Err(OpError::bad(format!("option {name:?}: {v:?} is not a boolean (use true or false)"))),
        }
    }

    /// A non-negative integer option.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, OpError> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| OpError::bad(format!("option {name:?}: {v:?} is not a whole number"))))
            .transpose()
    }
}

/// Parse a CID argument (a bare CID or `/ipfs/<cid>`), as a bad request when malformed.
pub(crate) fn cid_arg(text: &str) -> Result<Cid, OpError> {
    let t = text.trim();
    let t = t.strip_prefix("/ipfs/").unwrap_or(t);
    cairn_protocol::cids::parse(t).map_err(|e| OpError::bad(format!("invalid CID {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_args_and_flags() {
        let a = Args::parse("arg=a&arg=b%2Fc&pin=false&quiet&offset=5").unwrap();
        assert_eq!(a.all(), vec!["a", "b/c"]);
        assert!(!a.flag("pin", true).unwrap());
        assert!(a.flag("quiet", false).unwrap());
        assert_eq!(a.u64("offset").unwrap(), Some(5));
        assert!(Args::parse("pin=maybe").unwrap().flag("pin", true).is_err());
    }
}
