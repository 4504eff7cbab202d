//! Bad input gets a clear error and loses nothing: hostile names in a DAG, blocks corrupted on
//! disk, missing blocks, a repo that is not there or already in use, a full disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Result;
use cairn_protocol::cids;
use cairn_protocol::dagpb::{PbLink, PbNode};
use cairn_protocol::unixfs::{Data, DataType};
use cairn_tests::TestRepo;

/// Store a dag-pb directory whose only entry has `name`, pointing at a small raw file.
fn hostile_dir(repo: &TestRepo, name: &str) -> Result<String> {
    let leaf = repo.scratch("leaf.bin");
    fs::write(&leaf, b"payload written by a hostile DAG\n")?;
    let leaf_cid = repo.ok(&["block", "put", leaf.to_str().unwrap()])?.trim().to_string();
    let node = PbNode {
        links: vec![PbLink { hash: cids::parse(&leaf_cid)?, name: Some(name.to_string()), tsize: Some(33) }],
        data: Some(Data::new(DataType::Directory).to_bytes()),
    };
    let file = repo.scratch("dir.pb");
    fs::write(&file, node.encode())?;
    Ok(repo.ok(&["block", "put", "--cid-codec", "dag-pb", file.to_str().unwrap()])?.trim().to_string())
}

fn tree_listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn get_refuses_hostile_entry_names_and_writes_nothing_outside() -> Result<()> {
    let repo = TestRepo::new()?;
    let work = repo.scratch("work");
    fs::create_dir_all(work.join("inner"))?;
    for name in ["..", "../escape.txt", "a/b", "/etc/passwd-cairn", ".", ""] {
        let cid = hostile_dir(&repo, name)?;
        let before = tree_listing(repo.dir.path());
        let out = work.join("inner").join("out");
        let err = repo.fails(&["get", &cid, "-o", out.to_str().unwrap()])?;
        assert!(err.contains("entry name") || err.contains("corrupt"), "name {name:?}: {err}");
        let after: Vec<PathBuf> = tree_listing(repo.dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(&out) && !p.starts_with(repo.path()))
            .collect();
        let before: Vec<PathBuf> = before.into_iter().filter(|p| !p.starts_with(repo.path())).collect();
        assert_eq!(before, after, "name {name:?} wrote outside -o");
        assert!(!work.join("escape.txt").exists());
        let _ = fs::remove_dir_all(&out);
        // ls refuses it too.
        repo.fails(&["ls", &cid])?;
    }
    Ok(())
}

fn block_files(repo: &TestRepo) -> Vec<PathBuf> {
    tree_listing(&repo.path().join("blocks"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect()
}

#[test]
fn corrupt_block_is_never_returned_and_verify_finds_it() -> Result<()> {
    let repo = TestRepo::new()?;
    let src = repo.scratch("big.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(&src, &data)?;
    let cid = repo.ok(&["add", "-Q", src.to_str().unwrap()])?.trim().to_string();
    repo.ok(&["repo", "verify"])?;
    let files = block_files(&repo);
    assert!(files.len() >= 3, "expected several block files, found {}", files.len());
    // Flip one byte in one leaf on disk.
    let victim = &files[1];
    let mut bytes = fs::read(victim)?;
    bytes[100] ^= 0xff;
    fs::write(victim, &bytes)?;

    let out = repo.run(&["cat", &cid])?;
    assert!(!out.status.success(), "cat of a corrupt DAG must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt"), "{err}");
    // Whatever was printed before the error is the true prefix of the file: no bad bytes.
    assert!(out.stdout.len() < data.len());
    assert_eq!(&out.stdout[..], &data[..out.stdout.len()]);

    let dest = repo.scratch("got.bin");
    let err = repo.fails(&["get", &cid, "-o", dest.to_str().unwrap()])?;
    assert!(err.contains("corrupt"), "{err}");

    let out = repo.run(&["repo", "verify", "--json"])?;
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("\"Status\":\"corrupt\""), "{text}");
    let err = repo.fails(&["pin", "verify"])?;
    assert!(err.contains("incomplete or corrupt"), "{err}");
    Ok(())
}

#[test]
fn missing_blocks_and_bad_arguments_are_clear_errors() -> Result<()> {
    let repo = TestRepo::new()?;
    let err = repo.fails(&["cat", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"])?;
    assert!(err.contains("not in the local store"), "{err}");
    let err = repo.fails(&["cat", "not-a-cid"])?;
    assert!(err.contains("invalid CID"), "{err}");
    let err = repo.fails(&["add", "--chunker", "size-0", repo.path().join("config.toml").to_str().unwrap()])?;
    assert!(err.contains("chunk size"), "{err}");
    let err = repo.fails(&["add", repo.path().to_str().unwrap()])?;
    assert!(err.contains("-r"), "{err}");
    let other = tempfile::tempdir()?;
    let out = std::process::Command::new(cairn_tests::cairn_bin())
        .env("CAIRN_PATH", other.path().join("nope"))
        .args(["repo", "stat"])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cairn init"));
    Ok(())
}

#[test]
fn a_second_process_gets_a_clear_lock_error() -> Result<()> {
    let repo = TestRepo::new()?;
    // `add` from a pipe we keep open holds the repo lock.
    let mut holder = repo.cmd(&["add", "-Q"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"first bytes")?;
    // Wait until the holder has the lock (it writes its pid there), so that the probe below
    // cannot take the lock first.
    let pid = holder.id().to_string();
    let lock = repo.path().join("repo.lock");
    cairn_tests::wait_for(std::time::Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&lock).ok()?;
        (text.split_whitespace().next() == Some(pid.as_str())).then_some(())
    })?;
    let out = repo.run(&["repo", "stat"])?;
    assert!(!out.status.success(), "a second process must not open a locked repo");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("in use by another cairn process"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    drop(stdin);
    let out = holder.wait_with_output()?;
    assert!(out.status.success());
    let cid = String::from_utf8(out.stdout)?.trim().to_string();
    assert_eq!(repo.ok(&["cat", &cid])?, "first bytes");
    Ok(())
}

/// A full disk: the repo lives on a 16 MiB tmpfs (in a private mount namespace). Adding more
/// than fits fails with one clear "disk full" error, leaves no temporary file, and what was
/// pinned before is intact and verifies.
#[test]
fn a_full_disk_fails_the_add_clearly_and_loses_nothing() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let (small, big, mnt) =
        (scratch.path().join("small.bin"), scratch.path().join("big.bin"), scratch.path().join("mnt"));
    fs::write(&small, cairn_tests::prng(1 << 20))?;
    fs::write(&big, cairn_tests::prng(24 << 20))?;
    fs::create_dir(&mnt)?;
    let script = r#"set -e
mount -t tmpfs -o size=16m tmpfs "$MNT"
R="$MNT/repo"
"$CAIRN" --repo "$R" init --profile local > /dev/null
sed -i 's/^min_free_bytes = .*/min_free_bytes = 1048576/' "$R/config.toml"
S=$("$CAIRN" --repo "$R" add -Q "$SMALL")
echo "small $S"
if "$CAIRN" --repo "$R" add -Q "$BIG" 2> "$MNT/../err.txt"; then echo "big added"; fi
echo "tmp $(ls "$R/blocks/.tmp" | wc -l)"
"$CAIRN" --repo "$R" pin ls
"$CAIRN" --repo "$R" cat "$S" | cmp - "$SMALL" && echo "small intact"
"$CAIRN" --repo "$R" repo verify --json | tail -n 1
"#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script])
        .env("CAIRN", cairn_tests::cairn_bin())
        .env("MNT", &mnt)
        .env("SMALL", &small)
        .env("BIG", &big);
    let out = cairn_tests::run_with_deadline(cmd, std::time::Duration::from_secs(120))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let small_cid = stdout.lines().find_map(|l| l.strip_prefix("small ")).expect("small added").to_string();
    assert!(!stdout.contains("big added"), "24 MiB fit in 16 MiB: {stdout}");
    let err = fs::read_to_string(scratch.path().join("err.txt"))?;
    assert_eq!(err.matches("disk full").count(), 1, "one clear message: {err}");
    assert!(stdout.contains("tmp 0"), "temporary files left: {stdout}");
    assert!(stdout.contains(&format!("{small_cid} recursive")), "the earlier pin: {stdout}");
    assert!(stdout.contains("small intact"), "{stdout}");
    assert!(stdout.contains(r#""Ok":true"#), "repo verify: {stdout}");
    Ok(())
}
