//! Helpers shared by cairn's end-to-end tests: finding the `cairn` binary and `../shared`,
//! throwaway repos, running commands with a deadline, and the deterministic inputs of the
//! reference vectors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The workspace root (the folder holding `Cargo.toml` of the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `../shared` beside the workspace, or `$CAIRN_SHARED`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("CAIRN_SHARED").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("..").join("shared"))
}

/// The `cairn` binary built next to the test executable.
pub fn cairn_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/cairn
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir");
    let bin = dir.join("cairn");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p cairn` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A temporary repo initialised with the `local` profile; removed on drop.
pub struct TestRepo {
    /// Holds the repo and scratch files.
    pub dir: tempfile::TempDir,
}

impl TestRepo {
    /// Create and `cairn init --profile local`.
    pub fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let repo = TestRepo { dir };
        repo.ok(&["init", "--profile", "local"])?;
        Ok(repo)
    }

    /// The repo path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A scratch path beside the repo.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `cairn` command bound to this repo.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(cairn_bin());
        c.env("CAIRN_PATH", self.path()).args(args).stdin(Stdio::null());
        c
    }

    /// Run with a 5-minute deadline and return the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        run_with_deadline(self.cmd(args), Duration::from_secs(300))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "cairn {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!("cairn {args:?} succeeded but should have failed: {}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(String::from_utf8(out.stderr)?)
    }
}

/// Run a command, killing it if it outlives `deadline`.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Result<Output> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("spawning command")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            bail!("command timed out after {deadline:?}: {cmd:?}")
        }
    }
}

/// Poll `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The vectors' pseudo-random bytes: concatenated sha256("prng-vector" || u64le counter).
pub fn prng(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut c = 0u64;
    while out.len() < n {
        let mut h = Sha256::new();
        h.update(b"prng-vector");
        h.update(c.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        c += 1;
    }
    out.truncate(n);
    out
}

/// The directory of `make-tree.mjs` (the `tree` vector).
pub fn make_tree(out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("sub").join("deeper"))?;
    fs::create_dir_all(out.join("empty-dir"))?;
    fs::write(out.join("hello.txt"), "hello world\n")?;
    fs::write(out.join("empty.txt"), "")?;
    let data: Vec<u8> = (0..300000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect();
    fs::write(out.join("data.bin"), data)?;
    fs::write(out.join("ünïcödé-日本語.txt"), "unicode name\n")?;
    fs::write(out.join("sub").join("nested.txt"), "nested file\n")?;
    fs::write(out.join("sub").join("deeper").join("leaf.txt"), "deep leaf\n")?;
    Ok(())
}

/// The `hamt-6000` vector: 6000 files `file-NNNNN.txt` holding `"{i}\n"`.
pub fn make_hamt_dir(out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    for i in 0..6000 {
        fs::write(out.join(format!("file-{i:05}.txt")), format!("{i}\n"))?;
    }
    Ok(())
}

/// Hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let data = fs::read(path)?;
    Ok(Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect())
}
