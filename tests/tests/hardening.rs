//! Hardening: a clumsy script or a hostile client never costs data, identity or service.
//! Each test is a case that broke before: `init` over a repo, a config value that panicked,
//! special files in `add`, the daemon/command start-up race, silent waits without `--timeout`,
//! closed output pipes, and API and gateway clients that held every slot.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cairn_tests::{http_post, prng, run_with_deadline, set_config, Daemon, TestRepo};

/// A CID of bytes nobody has (a raw block of `seed`).
fn missing_cid(seed: u64) -> String {
    let data = format!("cairn hardening test: nobody holds this block {seed}");
    cairn_protocol::cids::cid_for(
        cid::Version::V1,
        cairn_protocol::cids::RAW,
        cairn_protocol::cids::HashFn::Sha2_256,
        data.as_bytes(),
    )
    .to_string()
}

/// Run a shell pipeline with the repo in `CAIRN_PATH` and `$CAIRN` set; its output.
fn sh(repo: &TestRepo, script: &str) -> Result<std::process::Output> {
    let mut c = Command::new("bash");
    c.args(["-c", script]).env("CAIRN_PATH", repo.path()).env("CAIRN", cairn_tests::cairn_bin());
    run_with_deadline(c, Duration::from_secs(120))
}

#[test]
fn init_never_replaces_a_repo_or_its_identity() -> Result<()> {
    let repo = TestRepo::new()?;
    let key = fs::read(repo.path().join("identity.key"))?;
    let id = repo.ok(&["id"])?;
    let err = repo.fails(&["init", "--profile", "local"])?;
    ensure!(err.contains("already exists"), "{err}");
    // The version file gone: the repo is damaged, and init still refuses to touch it.
    fs::remove_file(repo.path().join("version"))?;
    let err = repo.fails(&["repo", "stat"])?;
    ensure!(err.contains("no `version` file") && !err.contains("run `cairn init`"), "{err}");
    let err = repo.fails(&["init", "--profile", "local"])?;
    ensure!(err.contains("damaged"), "{err}");
    assert_eq!(fs::read(repo.path().join("identity.key"))?, key, "the identity was rewritten");
    fs::write(repo.path().join("version"), "1\n")?;
    assert_eq!(repo.ok(&["id"])?, id, "the peer ID changed");
    Ok(())
}

#[test]
fn absurd_config_values_are_clear_errors_not_panics() -> Result<()> {
    let repo = TestRepo::new()?;
    for (from, to, key) in [
        ("meta_cache_bytes = 16777216", "meta_cache_bytes = 100", "store.meta_cache_bytes = 100"),
        ("gc_period_secs = 60", "gc_period_secs = 0", "store.gc_period_secs = 0"),
        ("max_requests = 256", "max_requests = 0", "gateway.max_requests = 0"),
    ] {
        set_config(&repo, from, to)?;
        let out = repo.run(&["repo", "stat"])?;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(err.contains(key) && err.contains("must be"), "{err}");
        set_config(&repo, to, from)?;
    }
    repo.ok(&["repo", "stat"])?;
    Ok(())
}

#[test]
fn special_files_are_skipped_in_folders_and_read_on_the_command_line() -> Result<()> {
    let repo = TestRepo::new()?;
    let dir = repo.scratch("tree");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("a.txt"), "a\n")?;
    let status = Command::new("mkfifo").arg(dir.join("pipe")).status()?;
    ensure!(status.success(), "mkfifo failed");
    let plain = repo.scratch("plain");
    fs::create_dir_all(&plain)?;
    fs::write(plain.join("a.txt"), "a\n")?;
    let want = repo.ok(&["add", "-Q", "--only-hash", "-r", plain.to_str().unwrap()])?;
    let check = |label: &str, repo: &TestRepo| -> Result<()> {
        // Offline or through the daemon: the FIFO is skipped with a warning, and the folder
        // gets the CID of the same folder without it.
        let out = repo.run(&["add", "-Q", "-r", dir.to_str().unwrap()])?;
        ensure!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(err.contains("skipping") && err.contains("a FIFO"), "{label}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{label}");
        // `<(cmd)` is a /dev/fd link to a pipe: its bytes are added as a file.
        let out = sh(repo, r#""$CAIRN" add -Q <(printf 'piped bytes\n')"#)?;
        ensure!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        let cid = String::from_utf8(out.stdout)?.trim().to_string();
        assert_eq!(repo.ok(&["cat", &cid])?, "piped bytes\n", "{label}");
        Ok(())
    };
    check("offline", &repo)?;
    let _d = Daemon::start(&repo)?;
    check("through the daemon", &repo)
}

#[test]
fn commands_started_with_the_daemon_wait_for_it_instead_of_racing() -> Result<()> {
    let repo = TestRepo::new()?;
    let file = repo.scratch("f.txt");
    fs::write(&file, "raced\n")?;
    for round in 0..5 {
        let script = format!(
            r#""$CAIRN" daemon > "{log}" 2>&1 &
D=$!
"$CAIRN" id > /dev/null || echo "id failed"
C=$("$CAIRN" add -Q "{file}") || echo "add failed"
"$CAIRN" pin add "$C" > /dev/null || echo "pin failed"
"$CAIRN" shutdown > /dev/null || echo "shutdown failed"
wait $D; echo "daemon exit $?""#,
            log = repo.scratch(&format!("daemon{round}.log")).display(),
            file = file.display()
        );
        let out = sh(&repo, &script)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let log = fs::read_to_string(repo.scratch(&format!("daemon{round}.log")))?;
        ensure!(
            text.trim() == "daemon exit 0",
            "round {round}: {text}\n{}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(!log.contains("in use"), "round {round}: {log}");
    }
    Ok(())
}

#[test]
fn waits_say_what_they_wait_for_and_timeout_ends_them() -> Result<()> {
    let repo = TestRepo::new()?;
    let missing = missing_cid(1);
    // Offline: a closed output pipe is never a panic (exit 101).
    let out = sh(&repo, &format!(r#""$CAIRN" cat {missing} 2>&1 | true; echo "rc ${{PIPESTATUS[0]}}""#))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rc 1");
    let _d = Daemon::start(&repo)?;
    for cmd in [vec!["cat", missing.as_str()], vec!["pin", "add", missing.as_str()]] {
        let mut args = vec!["--timeout", "4s"];
        args.extend(&cmd);
        let start = Instant::now();
        let out = repo.run(&args)?;
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(took < Duration::from_secs(15), "{cmd:?} took {took:?}");
        ensure!(err.contains(&format!("waiting for {missing}")), "{cmd:?}: {err}");
        ensure!(err.contains("block(s) received") && err.contains("timed out after 4s"), "{cmd:?}: {err}");
    }
    let out = sh(&repo, &format!(r#""$CAIRN" --timeout 2s cat {missing} 2>&1 | true; echo "rc ${{PIPESTATUS[0]}}""#))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rc 1");
    let file = repo.scratch("big.bin");
    fs::write(&file, prng(3 << 20))?;
    let cid = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let out = sh(&repo, &format!(r#""$CAIRN" cat {cid} | head -c 10 > /dev/null; echo "rc ${{PIPESTATUS[0]}}""#))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rc 0", "a closed stdout is success");
    Ok(())
}

/// A connection that sends `head` and then one byte every `every` until the server answers
/// or closes it, or `limit` passes; returns how long that took.
fn trickle(addr: SocketAddr, head: String, every: Duration, limit: Duration) -> Duration {
    let start = Instant::now();
    let Ok(mut s) = TcpStream::connect(addr) else { return Duration::ZERO };
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    if s.write_all(head.as_bytes()).is_err() {
        return start.elapsed();
    }
    let mut buf = [0u8; 512];
    let mut next_write = every;
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            // An answer (an error status), a close or a reset: the server is done with us.
            _ => return start.elapsed(),
        }
        if start.elapsed() >= next_write {
            if s.write_all(b"x").is_err() {
                return start.elapsed();
            }
            next_write += every;
        }
    }
    start.elapsed()
}

#[test]
fn slow_api_clients_cannot_starve_control_calls_and_are_cut_off() -> Result<()> {
    let repo = TestRepo::new()?;
    let d = Daemon::start(&repo)?;
    let addr = d.api;
    // 70 uploads at a byte every 2 s: more than the 64 content slots.
    let head = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let uploads: Vec<_> = (0..70)
        .map(|_| {
            let head = head.clone();
            std::thread::spawn(move || trickle(addr, head, Duration::from_secs(2), Duration::from_secs(90)))
        })
        .collect();
    // A client that never finishes its header.
    let header = std::thread::spawn(move || {
        trickle(
            addr,
            format!("POST /api/v0/version HTTP/1.1\r\nHost: {addr}\r\n"),
            Duration::from_secs(90),
            Duration::from_secs(60),
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    // A real upload queued behind them: it waits for a slot, is not blamed for the wait, and
    // succeeds once the trickles are cut off.
    let file = repo.scratch("queued.bin");
    fs::write(&file, prng(1 << 20))?;
    let queued = {
        let mut cmd = repo.cmd(&["add", "-Q", file.to_str().unwrap()]);
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        std::thread::spawn(move || run_with_deadline(cmd, Duration::from_secs(90)))
    };
    for _ in 0..5 {
        let start = Instant::now();
        let (status, body) = http_post(addr, "/api/v0/version", &[], b"")?;
        ensure!(status == 200, "version: {status} {}", String::from_utf8_lossy(&body));
        ensure!(start.elapsed() < Duration::from_secs(2), "version took {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    repo.ok(&["id"]).context("cairn id while uploads hold every slot")?;
    let held = header.join().expect("header thread");
    ensure!(held >= Duration::from_secs(9) && held < Duration::from_secs(20), "an unfinished header held {held:?}");
    for u in uploads {
        let held = u.join().expect("upload thread");
        // 20 s from its first read; the six beyond the 64 slots are first read ~20 s later.
        ensure!(held < Duration::from_secs(60), "a trickling upload was kept for {held:?}");
    }
    let (status, _) = http_post(addr, "/api/v0/version", &[], b"")?;
    assert_eq!(status, 200);
    let out = queued.join().expect("queued add")?;
    ensure!(out.status.success(), "the queued upload failed: {}", String::from_utf8_lossy(&out.stderr));
    let cid = String::from_utf8(out.stdout)?.trim().to_string();
    assert_eq!(repo.run(&["cat", &cid])?.stdout, prng(1 << 20));
    // The uploads that were cut off pinned nothing (not even the bytes they had sent).
    let pins = repo.ok(&["pin", "ls", "--type", "recursive"])?;
    assert_eq!(pins.trim(), format!("{cid} recursive"), "a cut-off upload was pinned");
    Ok(())
}

/// `GET path` on `addr` with a deadline; the status code (0 when the connection failed).
fn get_status(addr: SocketAddr, path: &str, deadline: Duration) -> (u16, Duration) {
    let start = Instant::now();
    let attempt = || -> Result<u16> {
        let mut s = TcpStream::connect_timeout(&addr, deadline)?;
        s.set_read_timeout(Some(deadline))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(std::str::from_utf8(&head[9..12])?.parse()?)
    };
    (attempt().unwrap_or(0), start.elapsed())
}

#[test]
fn requests_for_content_nobody_has_cannot_starve_the_gateway() -> Result<()> {
    let repo = TestRepo::new()?;
    set_config(&repo, "retrieval_timeout_secs = 30", "retrieval_timeout_secs = 8")?;
    let file = repo.scratch("held.txt");
    fs::write(&file, "held locally\n")?;
    let held = repo.ok(&["add", "-Q", file.to_str().unwrap()])?.trim().to_string();
    let d = Daemon::start(&repo)?;
    let gw: SocketAddr = d.gateway.trim_start_matches("http://").parse()?;
    // 300 requests for content nobody has: 150 for one CID (the first request among them),
    // 150 for distinct ones.
    let waiting: Vec<_> = (0..300u64)
        .map(|i| {
            let same = i % 2 == 0;
            let cid = if same { missing_cid(0) } else { missing_cid(1000 + i) };
            (same, std::thread::spawn(move || get_status(gw, &format!("/ipfs/{cid}"), Duration::from_secs(60))))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..10 {
        let (status, took) = get_status(gw, &format!("/ipfs/{held}"), Duration::from_secs(5));
        ensure!(status == 200 && took < Duration::from_secs(2), "local content: {status} after {took:?}");
    }
    let mut statuses = std::collections::BTreeMap::new();
    for (same, w) in waiting {
        let (status, took) = w.join().expect("request thread");
        ensure!(took < Duration::from_secs(40), "a request for missing content took {took:?}");
        *statuses.entry((same, status)).or_insert(0) += 1;
    }
    // The 150 identical requests shared one retrieval, which got a slot at once: every one
    // of them ends as 504 after the retrieval timeout. The distinct ones end as 504, or as
    // 503 when every retrieval slot stayed busy.
    assert_eq!(statuses.get(&(true, 504)), Some(&150), "{statuses:?}");
    ensure!(statuses.keys().all(|(_, s)| *s == 503 || *s == 504), "{statuses:?}");
    Ok(())
}
