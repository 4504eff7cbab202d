//! A full disk never costs data or the repo: the repo lives on a small tmpfs (in a private
//! mount namespace) that the test fills to the last byte, at rest and under a running daemon
//! that is then killed. Reads keep working with 0 bytes free, writes are refused with one
//! clear message and print nothing as added, and once space is back everything verifies.

use std::fs;
use std::time::Duration;

use anyhow::Result;

/// The scenario, as a shell script run with `unshare -m` (so the tmpfs is private to it).
/// Each step prints a `tag rc` line (or a value) that the test then checks.
const SCRIPT: &str = r#"
mount -t tmpfs -o size=64m tmpfs "$MNT"
R="$MNT/repo"
c() { "$CAIRN" --repo "$R" "$@"; }
c init --profile local > /dev/null
# The floor is lowered so that a 64 MiB disk leaves room for the test's files.
sed -i 's/^min_free_bytes = .*/min_free_bytes = 4194304/' "$R/config.toml"
A=$(c add -Q "$A_FILE"); echo "a $A"
B=$(c add -Q "$B_FILE"); echo "b $B"
echo "reserve $(stat -c %s "$R/space.reserve")"
avail() { df -B1 --output=avail "$MNT" | tail -1 | tr -d ' '; }
# 0. A file larger than the room above the floor: refused, and the floor is kept.
head -c $(( $(avail) - 2 * 1048576 )) "$BIG_SRC" > "$MNT/../toobig.bin"
c add -Q "$MNT/../toobig.bin" > "$MNT/../add0.out" 2> "$MNT/../add0.err"; echo "add0 $?"
echo "floorkept $(avail)"
c repo gc > /dev/null; echo "gc0 $?"
fill() { dd if=/dev/zero of="$MNT/fill.$1" bs=64k 2> /dev/null; echo "free$1 $(df -B1 --output=avail "$MNT" | tail -1 | tr -d ' ')"; }

# 1. At rest: fill every byte. Reads work; a write is refused and prints nothing.
fill 1
c repo stat > /dev/null; echo "stat1 $?"
c pin ls > "$MNT/../pins1.txt"; echo "pinls1 $?"
c cat "$A" | cmp -s - "$A_FILE"; echo "cat1 $?"
c add "$C_FILE" > "$MNT/../add1.out" 2> "$MNT/../add1.err"; echo "add1 $?"
# The reserve was released to open; fill what it freed too: 0 bytes free, no reserve.
fill 2
c repo stat > /dev/null; echo "stat2 $?"
c cat "$B" | cmp -s - "$B_FILE"; echo "cat2 $?"
echo hello | c add > "$MNT/../add2.out" 2> "$MNT/../add2.err"; echo "add2 $?"
c block put "$C_FILE" > /dev/null 2>&1; echo "blockput2 $?"
c repo verify > /dev/null; echo "verify2 $?"
rm -f "$MNT"/fill.*

# 2. A daemon on a disk that fills while it runs, killed while it is full.
# Not through `c`: `$!` must be the daemon itself, or `kill -9` hits only a subshell.
"$CAIRN" --repo "$R" daemon > "$MNT/../daemon.out" 2>&1 &
D=$!
for i in $(seq 1 200); do [ -s "$R/api" ] && break; sleep 0.1; done
echo "daemon_api $([ -s "$R/api" ] && echo yes || echo no)"
fill 3
c add "$C_FILE" > "$MNT/../add3.out" 2> "$MNT/../add3.err"; echo "add3 $?"
c cat "$A" | cmp -s - "$A_FILE"; echo "cat3 $?"
kill -9 $D; wait $D 2> /dev/null
echo "daemon_gone $(kill -0 $D 2> /dev/null && echo no || echo yes)"
c repo stat > /dev/null; echo "stat4 $?"
c cat "$A" | cmp -s - "$A_FILE"; echo "cat4 $?"
c pin ls > "$MNT/../pins4.txt"; echo "pinls4 $?"

# 3. Space back: writes work again and nothing was lost.
rm -f "$MNT"/fill.*
C=$(c add -Q "$C_FILE"); echo "c $C add5 $?"
c repo verify > /dev/null; echo "verify5 $?"
c pin ls > "$MNT/../pins5.txt"
echo "meta $(ls "$R/meta" | tr '\n' ' ')"
echo "reserve5 $(stat -c %s "$R/space.reserve" 2> /dev/null || echo none)"

# 4. blocks/ on a disk of its own (16 MiB): the floor watches that disk too.
R2="$MNT/repo2"
"$CAIRN" --repo "$R2" init --profile local > /dev/null
sed -i 's/^min_free_bytes = .*/min_free_bytes = 4194304/' "$R2/config.toml"
mkdir -p "$R2/blocks" && mount -t tmpfs -o size=16m tmpfs "$R2/blocks"
"$CAIRN" --repo "$R2" add -Q "$A_FILE" > /dev/null; echo "split_small $?"
head -c 16777216 "$BIG_SRC" > "$MNT/../split.bin"
"$CAIRN" --repo "$R2" add -Q "$MNT/../split.bin" > /dev/null 2> "$MNT/../split.err"; echo "split_big $?"
echo "split_left $(df -B1 --output=avail "$R2/blocks" | tail -1 | tr -d ' ')"
"#;

fn value<'a>(out: &'a str, tag: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {tag:?} line in:\n{out}"))
}

#[test]
fn a_full_disk_keeps_the_repo_readable_and_loses_nothing() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mnt = scratch.path().join("mnt");
    fs::create_dir(&mnt)?;
    let file = |name: &str, n: usize, seed: u8| -> Result<std::path::PathBuf> {
        let p = scratch.path().join(name);
        let mut data = cairn_tests::prng(n);
        data.iter_mut().for_each(|b| *b ^= seed);
        fs::write(&p, data)?;
        Ok(p)
    };
    let (a, b, c) = (file("a.bin", 5 << 20, 1)?, file("b.bin", 3 << 20, 2)?, file("c.bin", 2 << 20, 3)?);
    let big_src = file("big.bin", 64 << 20, 4)?;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "bash", "-c", SCRIPT])
        .env("CAIRN", cairn_tests::cairn_bin())
        .env("MNT", &mnt)
        .env("A_FILE", &a)
        .env("B_FILE", &b)
        .env("C_FILE", &c)
        .env("BIG_SRC", &big_src);
    let out = cairn_tests::run_with_deadline(cmd, Duration::from_secs(180))?;
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let read = |name: &str| fs::read_to_string(scratch.path().join(name)).unwrap_or_default();
    let (a_cid, b_cid) = (value(&out, "a").to_string(), value(&out, "b").to_string());
    assert_eq!(value(&out, "reserve"), "8388608", "the space reserve is kept");

    // An add that does not fit above the floor stops at the floor, not at 0 bytes free.
    assert_ne!(value(&out, "add0"), "0", "{out}");
    assert_eq!(read("add0.out"), "", "a refused add printed a result");
    assert_eq!(read("add0.err").matches("disk full").count(), 1, "{}", read("add0.err"));
    let kept: u64 = value(&out, "floorkept").parse()?;
    assert!(kept >= 3 << 20, "the add ate into the 4 MiB floor: {kept} bytes left\n{out}");
    assert_eq!(value(&out, "gc0"), "0", "{out}");

    // At rest, 0 bytes free: reads succeed, writes fail clearly and print no CID.
    assert_eq!(value(&out, "free1"), "0", "{out}");
    for tag in ["stat1", "pinls1", "cat1", "stat2", "cat2", "verify2"] {
        assert_eq!(value(&out, tag), "0", "{tag} with a full disk:\n{out}");
    }
    assert_eq!(value(&out, "free2"), "0", "{out}");
    for tag in ["add1", "add2", "blockput2"] {
        assert_ne!(value(&out, tag), "0", "{tag} succeeded on a full disk:\n{out}");
    }
    for (stdout, stderr) in [("add1.out", "add1.err"), ("add2.out", "add2.err")] {
        assert_eq!(read(stdout), "", "a failed add printed a result");
        let err = read(stderr);
        assert_eq!(err.matches("disk full").count(), 1, "one clear message: {err}");
    }
    let pins = read("pins1.txt");
    assert!(pins.contains(&format!("{a_cid} recursive")) && pins.contains(&format!("{b_cid} recursive")), "{pins}");

    // The daemon: its add is refused, it serves reads, and killed while full it leaves a
    // repo that opens with 0 bytes free.
    assert_eq!(value(&out, "daemon_api"), "yes", "{out}\n{}", read("daemon.out"));
    assert_eq!(value(&out, "free3"), "0", "{out}");
    assert_ne!(value(&out, "add3"), "0", "{out}");
    assert_eq!(read("add3.out"), "");
    assert!(read("add3.err").contains("disk full"), "{}", read("add3.err"));
    assert_eq!(value(&out, "daemon_gone"), "yes", "the daemon survived kill -9:\n{out}");
    for tag in ["cat3", "stat4", "cat4", "pinls4"] {
        assert_eq!(value(&out, tag), "0", "{tag}:\n{out}");
    }
    assert_eq!(read("pins4.txt"), pins, "pins changed while the disk was full");

    // Space back: a write succeeds, every block verifies, every pin is there.
    assert!(value(&out, "c").ends_with("add5 0"), "{out}");
    assert_eq!(value(&out, "verify5"), "0", "{out}");
    let pins5 = read("pins5.txt");
    assert!(pins5.contains(&format!("{a_cid} recursive")) && pins5.contains(&format!("{b_cid} recursive")));
    assert!(!value(&out, "meta").contains(".generating"), "{out}");
    assert_eq!(value(&out, "reserve5"), "8388608", "the reserve is restored once space is back");

    // A blocks/ folder on another, small disk: refused at that disk's floor.
    assert_eq!(value(&out, "split_small"), "0", "{out}");
    assert_ne!(value(&out, "split_big"), "0", "{out}");
    assert!(read("split.err").contains("disk full"), "{}", read("split.err"));
    let left: u64 = value(&out, "split_left").parse()?;
    assert!(left >= 3 << 20, "blocks/ was filled past the floor: {left} bytes left");
    Ok(())
}
