//! `cairn dag import|export` end to end through the binary: round trips of files and
//! directories between repos, truncated and corrupted CARs refused with byte offsets and no
//! pins, `-o` never leaving a partial file, broken pipes, and interop both ways with the
//! JavaScript CAR library (`@ipld/car`) through `../shared/helia-peer`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use cairn_protocol::car;
use cairn_tests::{make_tree, prng, run_with_deadline, workspace_root, TestRepo};
use serde_json::Value;

/// About 50 KB of deterministic bytes: 49 chunks of 1 KiB plus a short one.
const FILE_LEN: usize = 50_000;

/// Add `path` to `repo` with `flags` and return the root CID.
fn add(repo: &TestRepo, path: &Path, flags: &[&str]) -> Result<String> {
    let mut args = vec!["add", "-Q"];
    args.extend_from_slice(flags);
    args.push(path.to_str().context("utf-8 path")?);
    Ok(repo.ok(&args)?.trim().to_string())
}

/// Write the test file into `repo`'s scratch space and add it with 1 KiB chunks.
fn add_file(repo: &TestRepo) -> Result<(PathBuf, String)> {
    let path = repo.scratch("file.bin");
    fs::write(&path, prng(FILE_LEN))?;
    let cid = add(repo, &path, &["--chunker", "size-1024"])?;
    Ok((path, cid))
}

/// `cairn dag export <what> -o <name>` and the CAR's bytes.
fn export(repo: &TestRepo, what: &str, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let out = repo.scratch(name);
    repo.ok(&["dag", "export", what, "-o", out.to_str().context("utf-8 path")?])?;
    let bytes = fs::read(&out)?;
    Ok((out, bytes))
}

fn recursive_pins(repo: &TestRepo) -> Result<String> {
    repo.ok(&["pin", "ls", "--type", "recursive"])
}

/// The number after the first "at byte " in `text`.
fn byte_offset_in(text: &str) -> Option<u64> {
    let rest = &text[text.find("at byte ")? + "at byte ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn files_and_directories_round_trip_through_car_files() -> Result<()> {
    let a = TestRepo::new()?;
    let (file, root) = add_file(&a)?;
    let (car_path, car_bytes) = export(&a, &root, "file.car")?;
    let (header, sections) = car::read_all(&car_bytes)?;
    assert_eq!(header.roots.iter().map(|c| c.to_string()).collect::<Vec<_>>(), vec![root.clone()]);
    assert!(sections.len() > 40, "expected a multi-block DAG, got {} blocks", sections.len());
    assert_eq!(sections[0].cid.to_string(), root, "the root block comes first");

    // Standard output gives the same bytes as -o.
    let stdout = a.run(&["dag", "export", &root])?;
    ensure!(stdout.status.success(), "{}", String::from_utf8_lossy(&stdout.stderr));
    assert_eq!(stdout.stdout, car_bytes);

    let tree = a.scratch("tree");
    make_tree(&tree)?;
    let dir_root = add(&a, &tree, &["-r"])?;
    let (dir_car, _) = export(&a, &dir_root, "tree.car")?;

    let b = TestRepo::new()?;
    let out = b.ok(&["dag", "import", car_path.to_str().unwrap(), dir_car.to_str().unwrap()])?;
    assert!(out.contains(&format!("Pinned root\t{root}\tsuccess")), "{out}");
    assert!(out.contains(&format!("Pinned root\t{dir_root}\tsuccess")), "{out}");
    assert!(out.contains("Imported ") && out.contains(" blocks ("), "{out}");
    assert_eq!(b.run(&["cat", &root])?.stdout, fs::read(&file)?);
    for rel in ["hello.txt", "data.bin", "ünïcödé-日本語.txt", "sub/deeper/leaf.txt", "empty.txt"] {
        let got = b.run(&["cat", &format!("{dir_root}/{rel}")])?;
        ensure!(got.status.success(), "cat {rel}: {}", String::from_utf8_lossy(&got.stderr));
        assert_eq!(got.stdout, fs::read(tree.join(rel))?, "{rel}");
    }
    assert!(recursive_pins(&b)?.contains(&root));

    // A sub-path exports the DAG under it; stdin import and --json work.
    let (_, sub_car) = export(&a, &format!("{dir_root}/sub"), "sub.car")?;
    let c = TestRepo::new()?;
    let mut cmd = c.cmd(&["--json", "dag", "import", "-"]);
    cmd.stdin(fs::File::open(a.scratch("sub.car"))?);
    let json = run_with_deadline(cmd, Duration::from_secs(60))?;
    ensure!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let lines: Vec<Value> =
        String::from_utf8(json.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let (sub_header, sub_sections) = car::read_all(&sub_car)?;
    assert_eq!(lines[0]["Root"]["Cid"]["/"], sub_header.roots[0].to_string());
    assert_eq!(lines[0]["Root"]["PinErrorMsg"], "");
    assert_eq!(lines[1]["Stats"]["BlockCount"], sub_sections.len());
    assert_eq!(c.run(&["cat", &format!("{}/nested.txt", sub_header.roots[0])])?.stdout, b"nested file\n");
    Ok(())
}

#[test]
fn carv2_wrapping_an_export_imports() -> Result<()> {
    let a = TestRepo::new()?;
    let (file, root) = add_file(&a)?;
    let (_, v1) = export(&a, &root, "file.car")?;
    let pad = 13usize;
    let data_offset = (car::V2_PRAGMA.len() + car::V2_HEADER_LEN + pad) as u64;
    let mut v2 = car::V2_PRAGMA.to_vec();
    v2.extend_from_slice(&[0u8; 16]);
    v2.extend_from_slice(&data_offset.to_le_bytes());
    v2.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    v2.extend_from_slice(&0u64.to_le_bytes());
    v2.extend(std::iter::repeat_n(0u8, pad));
    v2.extend_from_slice(&v1);
    let path = a.scratch("file.v2.car");
    fs::write(&path, &v2)?;
    let b = TestRepo::new()?;
    let out = b.ok(&["dag", "import", path.to_str().unwrap()])?;
    assert!(out.contains(&format!("Pinned root\t{root}\tsuccess")), "{out}");
    assert_eq!(b.run(&["cat", &root])?.stdout, fs::read(&file)?);
    Ok(())
}

#[test]
fn truncated_or_corrupted_cars_are_refused_with_offsets_and_pin_nothing() -> Result<()> {
    let a = TestRepo::new()?;
    let (file, root) = add_file(&a)?;
    let (_, car_bytes) = export(&a, &root, "file.car")?;
    let (_, sections) = car::read_all(&car_bytes)?;
    let mid = &sections[sections.len() / 2];
    // Inside the header, inside the first section's CID, in the middle of a middle section,
    // and one byte before the end. (A cut exactly between sections is a valid, shorter CAR.)
    let cuts = [20, sections[0].offset as usize + 3, mid.offset as usize + 500, car_bytes.len() - 1];

    let b = TestRepo::new()?;
    for cut in cuts {
        let path = b.scratch(&format!("cut-{cut}.car"));
        fs::write(&path, &car_bytes[..cut])?;
        let err = b.fails(&["dag", "import", path.to_str().unwrap()])?;
        let at = byte_offset_in(&err).with_context(|| format!("cut at {cut}: no byte offset in {err:?}"))?;
        assert!(at <= cut as u64, "cut at {cut}: error names byte {at}: {err}");
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
        assert!(!recursive_pins(&b)?.contains(&root), "cut at {cut} pinned the root");
    }

    // One flipped byte inside a block's data: refused, naming that block.
    let mut corrupt = car_bytes.clone();
    let at = mid.offset as usize + 300;
    corrupt[at] ^= 0x40;
    let path = b.scratch("corrupt.car");
    fs::write(&path, &corrupt)?;
    let err = b.fails(&["dag", "import", path.to_str().unwrap()])?;
    assert!(err.contains("does not match") && err.contains(&mid.cid.to_string()), "{err}");
    assert_eq!(byte_offset_in(&err), Some(mid.offset), "{err}");
    assert!(!recursive_pins(&b)?.contains(&root));

    // Garbage is refused too, and the repo still works afterwards.
    let garbage = b.scratch("garbage.car");
    fs::write(&garbage, b"this is not a CAR file at all")?;
    let err = b.fails(&["dag", "import", garbage.to_str().unwrap()])?;
    assert!(byte_offset_in(&err).is_some(), "{err}");
    let good = b.scratch("good.car");
    fs::write(&good, &car_bytes)?;
    b.ok(&["dag", "import", good.to_str().unwrap()])?;
    assert_eq!(b.run(&["cat", &root])?.stdout, fs::read(&file)?);
    b.ok(&["repo", "verify"])?;
    Ok(())
}

#[test]
fn incomplete_dags_are_not_pinned_and_failed_exports_leave_no_file() -> Result<()> {
    let a = TestRepo::new()?;
    let (_, root) = add_file(&a)?;
    let (_, car_bytes) = export(&a, &root, "file.car")?;
    let (header, sections) = car::read_all(&car_bytes)?;
    // A CAR holding only the root block.
    let mut partial = Vec::new();
    car::encode_header(&header.roots, &mut partial);
    car::encode_section(&sections[0].cid, &sections[0].data, &mut partial);
    let b = TestRepo::new()?;
    let path = b.scratch("partial.car");
    fs::write(&path, &partial)?;
    let err = b.fails(&["dag", "import", path.to_str().unwrap()])?;
    assert!(err.contains("--pin-roots=false"), "{err}");
    assert!(!recursive_pins(&b)?.contains(&root));
    let out = b.ok(&["dag", "import", "--pin-roots=false", path.to_str().unwrap()])?;
    assert!(out.contains("Imported 1 blocks"), "{out}");

    // Exporting the incomplete DAG fails, naming the missing block, and writes nothing.
    let dest = b.scratch("out");
    fs::create_dir_all(&dest)?;
    let target = dest.join("partial-export.car");
    let err = b.fails(&["dag", "export", &root, "-o", target.to_str().unwrap()])?;
    assert!(err.contains(&sections[1].cid.to_string()) && err.contains("not in the local store"), "{err}");
    assert_eq!(fs::read_dir(&dest)?.count(), 0, "a failed export left files behind");
    Ok(())
}

#[test]
fn export_to_a_closed_pipe_is_not_an_error() -> Result<()> {
    let a = TestRepo::new()?;
    let path = a.scratch("big.bin");
    fs::write(&path, prng(3 << 20))?;
    let root = add(&a, &path, &[])?;
    let mut child = a.cmd(&["dag", "export", &root]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut first = [0u8; 16];
    child.stdout.take().context("stdout")?.read_exact(&mut first)?; // then the pipe closes
    let out = child.wait_with_output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// `bash scripts/helia-setup.sh` once per test run; its path, or why it failed.
fn helia_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let mut cmd = Command::new("bash");
        cmd.arg(workspace_root().join("scripts").join("helia-setup.sh")).stdin(Stdio::null());
        let out = run_with_deadline(cmd, Duration::from_secs(900)).map_err(|e| format!("{e:#}"))?;
        if !out.status.success() {
            return Err(format!("helia-setup.sh failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("").trim();
        Ok(PathBuf::from(line))
    });
    match dir {
        Ok(p) => Ok(p.clone()),
        Err(e) => bail!("{e}"),
    }
}

fn node(args: &[&str]) -> Result<String> {
    let dir = helia_dir()?;
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir).args(args).stdin(Stdio::null());
    let out = run_with_deadline(cmd, Duration::from_secs(300))?;
    if !out.status.success() {
        bail!("node {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn javascript_car_library_reads_our_exports() -> Result<()> {
    let dir = helia_dir()?;
    let reader = dir.join("read-car.mjs");
    let a = TestRepo::new()?;
    let (_, file_root) = add_file(&a)?;
    let tree = a.scratch("tree");
    make_tree(&tree)?;
    let v0_root = add(&a, &tree, &["-r", "--profile", "unixfs-v0-2015"])?;
    for root in [file_root, v0_root] {
        let (path, bytes) = export(&a, &root, &format!("{root}.car"))?;
        let (_, sections) = car::read_all(&bytes)?;
        let ours: BTreeSet<String> = sections.iter().map(|s| s.cid.to_string()).collect();
        let js: Value = serde_json::from_str(&node(&[reader.to_str().unwrap(), path.to_str().unwrap()])?)?;
        assert_eq!(js["roots"], serde_json::json!([root]));
        let blocks = js["blocks"].as_array().context("blocks")?;
        let theirs: BTreeSet<String> =
            blocks.iter().map(|b| b["cid"].as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(theirs, ours, "{root}: block sets differ");
        assert_eq!(blocks.len(), sections.len(), "{root}: each block once");
        for b in blocks {
            assert_eq!(b["ok"], true, "{root}: JS says block {} does not match its CID", b["cid"]);
        }
    }
    Ok(())
}

#[test]
fn cars_written_by_the_javascript_library_import() -> Result<()> {
    let dir = helia_dir()?;
    let oracle = dir.join("cid-oracle.mjs");
    let a = TestRepo::new()?;
    let input = a.scratch("file.bin");
    fs::write(&input, prng(FILE_LEN))?;
    let js_car = a.scratch("js.car");
    let out = node(&[
        oracle.to_str().unwrap(),
        input.to_str().unwrap(),
        "--chunk-size",
        "1024",
        "--car",
        js_car.to_str().unwrap(),
    ])?;
    let root = out.trim().to_string();
    ensure!(root.starts_with("Qm"), "unexpected oracle output {out:?}");
    let imported = a.ok(&["dag", "import", js_car.to_str().unwrap()])?;
    assert!(imported.contains(&format!("Pinned root\t{root}\tsuccess")), "{imported}");
    assert_eq!(a.run(&["cat", &root])?.stdout, fs::read(&input)?);

    // Same DAG, same order: our export of it is byte-identical to the JavaScript CAR.
    let (_, ours) = export(&a, &root, "ours.car")?;
    assert!(ours == fs::read(&js_car)?, "our export of {root} differs from the JavaScript CAR");
    Ok(())
}
