//! The operator's configuration tools through the `cairn` binary: `config get|set|show` with
//! the daemon's own checks (a bad value is refused with its key named and the file left as it
//! was; a good one keeps the file's comments and reaches the daemon at its next start),
//! `completions`, and the systemd unit in `contrib/`, checked by `systemd-analyze verify`.

use std::fs;

use anyhow::{Context, Result};
use cairn_tests::{Daemon, TestRepo};

#[test]
fn config_set_refuses_bad_values_by_key_and_a_good_one_reaches_the_daemon() -> Result<()> {
    let repo = TestRepo::new()?;
    let file = repo.path().join("config.toml");
    let with_note = format!("# the operator's note\n{}", fs::read_to_string(&file)?);
    fs::write(&file, &with_note)?;

    for (key, value, says) in [
        ("network.max_connections", "0", "must be between 1 and 65536"),
        ("network.max_connections", "lots", "expected an integer"),
        ("network.api", "nowhere", "IP:PORT"),
        ("network.max_conections", "5", "unknown key"),
        ("store.gc_period_secs", "-1", "store.gc_period_secs"),
    ] {
        let out = repo.run(&["config", "set", key, value])?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key} = {value} was accepted");
        assert!(err.contains(key) && err.contains(says), "{key} = {value}: {err}");
        assert_eq!(fs::read_to_string(&file)?, with_note, "a refused value changed the file");
    }

    repo.ok(&["config", "set", "network.max_connections", "77"])?;
    repo.ok(&["config", "set", "network.dns_servers", r#"["10.0.0.53"]"#])?;
    let text = fs::read_to_string(&file)?;
    assert!(text.starts_with("# the operator's note\n"), "comments lost: {text}");
    assert_eq!(repo.ok(&["config", "get", "network.max_connections"])?.trim(), "77");
    let v: serde_json::Value = serde_json::from_str(&repo.ok(&["--json", "config", "get", "network.dns_servers"])?)?;
    assert_eq!(v["Value"], serde_json::json!(["10.0.0.53"]));
    let all: serde_json::Value = serde_json::from_str(&repo.ok(&["--json", "config", "show"])?)?;
    assert_eq!(all["network"]["max_connections"], 77);
    assert_eq!(all["follow"]["check_interval_secs"], 300, "defaults are shown too");

    // The daemon runs with the new value: a change made while it runs waits for a restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    repo.ok(&["config", "set", "network.gateway", &format!("127.0.0.1:{port}")])?;
    let d = Daemon::start(&repo)?;
    assert_eq!(d.gateway, format!("http://127.0.0.1:{port}"));
    let out = repo.ok(&["config", "set", "network.max_connections", "78"])?;
    assert!(out.contains("applies this when it restarts"), "{out}");
    Ok(())
}

#[test]
fn doctor_finds_a_running_local_node_healthy_and_a_stopped_one_not() -> Result<()> {
    let repo = TestRepo::new()?;
    let out = repo.run(&["doctor"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "no daemon is something wrong: {text}");
    assert!(text.contains("FAIL  daemon: not running") && text.contains("cairn daemon"), "{text}");

    let _d = Daemon::start(&repo)?;
    let out = repo.run(&["--json", "doctor"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["Healthy"], true, "{v}");
    let status = |name: &str| {
        v["Checks"].as_array().and_then(|c| c.iter().find(|c| c["Name"] == name)).map(|c| c["Status"].clone())
    };
    for name in ["daemon", "reachability", "addresses", "clock"] {
        assert_eq!(status(name), Some(serde_json::json!("ok")), "{name}: {v}");
    }
    // The disk check warns below 1 GiB free, which a busy build machine may be.
    assert!(status("disk").is_some_and(|s| s != "fail"), "disk: {v}");
    // A lone local node has no peers and no bootstrap list: worth a warning, not a failure.
    assert_eq!(status("peers"), Some(serde_json::json!("warn")), "{v}");
    Ok(())
}

#[test]
fn completions_cover_the_commands_and_the_systemd_unit_verifies() -> Result<()> {
    let repo = TestRepo::new()?;
    let bash = repo.ok(&["completions", "bash"])?;
    for word in ["follow", "health", "config", "swarm"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(repo.ok(&["completions", "zsh"])?.contains("#compdef cairn"));
    assert!(repo.ok(&["completions", "fish"])?.contains("complete -c cairn"));

    let unit = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/cairn.service"))?;
    let Ok(out) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        println!("SKIPPED the unit check: systemd-analyze is not installed");
        return Ok(());
    };
    assert!(out.status.success());
    // The unit as installed, with the binary where its ExecStart says.
    let bin = cairn_tests::cairn_bin();
    let local = repo.scratch("cairn.service");
    fs::write(&local, unit.replace("/usr/local/bin/cairn", bin.to_str().context("binary path")?))?;
    let out = std::process::Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&local).output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    // A build machine has no `cairn` user: that is the only complaint allowed.
    let other: Vec<&str> =
        said.lines().filter(|l| !l.contains("User") && !l.contains("Group") && !l.trim().is_empty()).collect();
    assert!(other.is_empty(), "systemd-analyze verify: {said}");
    Ok(())
}
