//! Output helpers: JSON or text lines, progress bars on a terminal, broken pipes as success.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// Whether the error chain ends in a closed output pipe (`cairn cat x | head`): an
/// `io::Error` of kind `BrokenPipe`. Errors of the daemon connection never carry one (see
/// `client::Api`), so a daemon that stopped reading is an error, not a quiet success.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

/// The error and its causes, joined with ": ", leaving out a cause whose text the message
/// already carries: library errors name their source in their own text, and anyhow's `{:#}`
/// would print it twice ("disk full ...: disk full ...").
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// A byte count for people (`1.50 MiB`).
pub fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Print `warning: {text}` on stderr. A closed stderr is ignored: a warning never fails or
/// panics a command (`eprintln!` panics when stderr is gone).
pub fn warn(text: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {text}");
}

/// Print `text` on stderr, ignoring a closed stderr (progress notes, errors at exit).
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Prints one result per line: JSON objects with `--json`, else the text form.
pub struct Printer {
    json: bool,
    out: io::Stdout,
}

impl Printer {
    /// A printer for the chosen mode.
    pub fn new(json: bool) -> Self {
        Printer { json, out: io::stdout() }
    }

    /// Print `value` as one JSON line, or `text` when not in JSON mode.
    pub fn emit(&mut self, value: Value, text: impl FnOnce() -> String) -> io::Result<()> {
        let mut lock = self.out.lock();
        if self.json {
            writeln!(lock, "{value}")
        } else {
            writeln!(lock, "{}", text())
        }
    }
}

/// A byte progress bar on stderr, shown only when asked or when stderr is a terminal.
pub fn byte_bar(total: Option<u64>, show: Option<bool>, what: &str) -> ProgressBar {
    let visible = show.unwrap_or_else(|| io::stderr().is_terminal());
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like a library error that names its source in its own text.
    #[derive(Debug)]
    struct Wrapping(io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "block store I/O error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn only_a_real_closed_pipe_counts_as_one() {
        let stdout = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&stdout));
        // What the daemon client reports when the daemon stopped reading an upload.
        let daemon = anyhow::anyhow!("talking to the cairn daemon at 127.0.0.1:5001: Broken pipe (os error 32)");
        assert!(!is_broken_pipe(&daemon), "a failed upload must not exit 0");
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let e = anyhow::Error::new(Wrapping(io::Error::other("disk full"))).context("adding f.bin");
        assert_eq!(describe(&e), "adding f.bin: block store I/O error: disk full");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
