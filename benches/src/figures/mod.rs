//! The figures. Each returns table rows; each measures its anchor in the same run.

pub mod add;
pub mod behaviour;
pub mod ceiling;
pub mod daemon;
pub mod dht;
pub mod fetch;
pub mod gateway;
pub mod idle;
pub mod ipns;
pub mod memory;
pub mod multi;

use std::path::PathBuf;

use anyhow::{bail, Result};

/// What every figure needs.
pub struct Ctx {
    /// Small sizes, single runs.
    pub quick: bool,
    /// Runs per measurement.
    pub runs: usize,
    /// Scratch folder for this run.
    pub work: PathBuf,
    /// The `cairn` binary.
    pub cairn: PathBuf,
    /// The workspace root (for the anchors' setup scripts and their copies under target/).
    pub root: PathBuf,
}

/// The `cairn` binary of the same build profile as this runner.
pub fn cairn_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().expect("binary folder").join("cairn");
    if !bin.exists() {
        bail!("{} not found: build it first (cargo build --release -p cairn)", bin.display());
    }
    Ok(bin)
}

/// Write `n` bytes of incompressible random data to `path` (once; reused if present).
pub fn random_file(path: &std::path::Path, n: u64) -> Result<()> {
    use rand::RngCore;
    use std::io::Write;
    if path.metadata().map(|m| m.len() == n).unwrap_or(false) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..k]);
        f.write_all(&buf[..k])?;
        left -= k as u64;
    }
    f.flush()?;
    Ok(())
}
