//! `cairn config show|get|set`: read and change settings by their dotted key
//! (`network.max_connections`). A change passes the same checks as opening the repo, and the
//! file keeps its comments and layout (toml_edit).

use std::io::Write;
use std::path::Path;

use super::config::{Config, Invalid};

/// Why a key could not be read or set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    /// No such key.
    #[error("unknown key {key}{}", hint(.known))]
    UnknownKey {
        /// The key asked for.
        key: String,
        /// Keys of the nearest table, as a hint.
        known: Vec<String>,
    },
    /// The value has the wrong type or form for the key.
    #[error("{key}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The value is outside what the node accepts.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// The file on disk does not parse.
    #[error("config.toml does not parse: {0}")]
    File(String),
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn hint(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; keys here: {}", known.join(", "))
    }
}

/// The effective configuration (every key, defaults filled in) as TOML.
pub fn show(config: &Config) -> String {
    toml::to_string_pretty(config).expect("config serializes")
}

/// The effective configuration as JSON.
pub fn to_json(config: &Config) -> serde_json::Value {
    serde_json::to_value(config).expect("config serializes")
}

/// One key's effective value.
pub fn get(config: &Config, key: &str) -> Result<toml::Value, ConfigEditError> {
    let all = toml::Value::try_from(config).expect("config serializes");
    lookup(&all, key).cloned()
}

/// Walk a dotted key through the effective configuration.
fn lookup<'a>(all: &'a toml::Value, key: &str) -> Result<&'a toml::Value, ConfigEditError> {
    let mut at = all;
    for part in key.split('.') {
        let table = at.as_table();
        at = table.and_then(|t| t.get(part)).ok_or_else(|| ConfigEditError::UnknownKey {
            key: key.to_string(),
            known: table.map(|t| t.keys().cloned().collect()).unwrap_or_default(),
        })?;
    }
    Ok(at)
}

/// The config text `text` with `key` set to `value` (TOML syntax: `512`, `true`,
/// `["/ip4/…"]`; a bare word for a string key), checked as opening the repo would check it.
pub fn set(text: &str, key: &str, value: &str) -> Result<String, ConfigEditError> {
    // Not validated: `set` is how a value the daemon refuses gets fixed.
    let current: Config = toml::from_str(text).map_err(|e| ConfigEditError::File(e.message().to_string()))?;
    let all = toml::Value::try_from(&current).expect("config serializes");
    let old = lookup(&all, key)?;
    if old.is_table() {
        return Err(ConfigEditError::BadValue { key: key.into(), reason: "is a table: set one of its keys".into() });
    }
    let bad = |reason: String| ConfigEditError::BadValue { key: key.into(), reason };
    let item: toml_edit::Value = if old.is_str() {
        // A string key takes the text as it is, quoted or not.
        let unquoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        unquoted.into()
    } else {
        value.parse().map_err(|_| bad(format!("{value:?} is not a TOML value (expected {})", kind(old))))?
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| ConfigEditError::File(format!("{e}")))?;
    let (path, last) = match key.rsplit_once('.') {
        Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
        None => (Vec::new(), key),
    };
    let mut table = doc.as_table_mut();
    for part in path {
        let entry = table.entry(part).or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| bad(format!("{part} is not a table in config.toml")))?;
    }
    table[last] = toml_edit::value(item);
    let out = doc.to_string();
    let parsed: Config = toml::from_str(&out).map_err(|e| bad(format!("{} (expected {})", e.message(), kind(old))))?;
    parsed.validate()?;
    Ok(out)
}

/// A TOML value's type, for messages.
fn kind(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array, like [\"a\", \"b\"]",
        toml::Value::Table(_) => "a table",
    }
}

/// Replace `path` with `text` durably: a synced temporary file renamed over it.
pub fn save(path: &Path, text: &str) -> Result<(), ConfigEditError> {
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> String {
        format!("# my notes\n{}", show(&Config::for_profile("local").unwrap()))
    }

    #[test]
    fn set_keeps_comments_and_changes_one_value() {
        let out = set(&local(), "network.max_connections", "100").unwrap();
        assert!(out.starts_with("# my notes\n"));
        let c = Config::from_toml(&out).unwrap();
        assert_eq!(c.network.max_connections, 100);
        assert_eq!(get(&c, "network.max_connections").unwrap(), toml::Value::Integer(100));
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let e = set(&local(), "network.max_connections", "0").unwrap_err().to_string();
        assert!(e.contains("network.max_connections"), "{e}");
        let e = set(&local(), "network.max_connections", "many").unwrap_err().to_string();
        assert!(e.contains("network.max_connections") && e.contains("integer"), "{e}");
        let e = set(&local(), "network.max_conections", "5").unwrap_err().to_string();
        assert!(e.contains("unknown key network.max_conections") && e.contains("max_connections"), "{e}");
        let e = set(&local(), "network.api", "nowhere").unwrap_err().to_string();
        assert!(e.contains("network.api"), "{e}");
    }

    #[test]
    fn strings_need_no_quotes_and_arrays_parse() {
        let out = set(&local(), "network.gateway", "127.0.0.1:9090").unwrap();
        assert_eq!(Config::from_toml(&out).unwrap().network.gateway, "127.0.0.1:9090");
        let out = set(&out, "network.dns_servers", "[\"10.0.0.53\"]").unwrap();
        assert_eq!(Config::from_toml(&out).unwrap().network.dns_servers, vec!["10.0.0.53".to_string()]);
    }

    #[test]
    fn a_key_missing_from_the_file_is_added_to_its_table() {
        let out = set("[network]\napi = \"127.0.0.1:5001\"\n", "follow.grace_secs", "60").unwrap();
        assert_eq!(Config::from_toml(&out).unwrap().follow.grace_secs, 60);
    }
}
