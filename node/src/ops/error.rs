//! Why an operation failed, typed by whose fault it is; [`crate::api::error`] maps each kind
//! to an HTTP status, the CLI prints the message.
//!
//! Messages carry the whole error chain (`outer: inner: cause`), the way the CLI prints an
//! error offline, so a command fails with the same words in-process and through the daemon.

use std::fmt;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The command failed (missing block, corrupt DAG, disk full...).
    Failed(String),
    /// The request itself is wrong: unknown option value, missing argument, bad CID.
    BadRequest(String),
    /// No or wrong bearer token.
    Unauthorized,
    /// Refused for where it came from (a browser origin, a foreign `Host`).
    Forbidden(String),
    /// A body larger than the command accepts.
    TooLarge(String),
    /// The node is shutting down.
    ShuttingDown,
    /// The command needs the network, and runs on a repo without a running node.
    Offline(String),
}

impl OpError {
    /// A failed command, with `e`'s whole source chain as the message.
    pub fn chain(e: &(dyn std::error::Error + 'static)) -> OpError {
        OpError::Failed(error_chain(e))
    }

    /// A failed command whose message starts with `context` (like anyhow's `.context`).
    pub fn context(context: impl fmt::Display, e: &(dyn std::error::Error + 'static)) -> OpError {
        OpError::Failed(format!("{context}: {}", error_chain(e)))
    }

    /// A bad request.
    pub fn bad(msg: impl Into<String>) -> OpError {
        OpError::BadRequest(msg.into())
    }

    /// A failed command with a plain message.
    pub fn failed(msg: impl Into<String>) -> OpError {
        OpError::Failed(msg.into())
    }

    /// The message clients see.
    pub fn message(&self) -> String {
        match self {
            OpError::Failed(m)
            | OpError::BadRequest(m)
            | OpError::Forbidden(m)
            | OpError::TooLarge(m)
            | OpError::Offline(m) => m.clone(),
            OpError::Unauthorized => {
                "missing or wrong API token: send `Authorization: Bearer <network.api_token>`".into()
            }
            OpError::ShuttingDown => "the node is shutting down".into(),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl<E: std::error::Error + 'static> From<E> for OpError {
    fn from(e: E) -> Self {
        OpError::chain(&e)
    }
}

/// `e` and its sources joined by `": "`, skipping a source whose text the outer message
/// already ends with (thiserror's `{source}` formats repeat it).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_and_statuses() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(OpError::from(e).message(), "outer: disk on fire");
    }
}
