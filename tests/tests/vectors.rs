//! `cairn add --only-hash` reproduces every reference CID in `../shared/vectors/vectors.json`
//! (checked against real kubo for the legacy profile), for files and directory trees.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use cairn_tests::{make_hamt_dir, make_tree, prng, shared_dir, TestRepo};
use serde_json::Value;

/// cairn flags for each setting key of the vectors file.
fn flags(setting: &str) -> Vec<&'static str> {
    match setting {
        "kubo-default" => vec!["--profile", "unixfs-v0-2015"],
        "cidv1-raw" => vec!["--profile", "unixfs-v0-2015", "--cid-version", "1"],
        "trickle" => vec!["--profile", "unixfs-v0-2015", "--trickle"],
        // Helia's defaults equal unixfs-v1-2025 except the HAMT size estimate (links-bytes),
        // which only matters for directories near the threshold; none of the inputs is.
        "helia-default" => vec!["--profile", "unixfs-v1-2025"],
        other => panic!("vectors.json has a setting this test does not know: {other}"),
    }
}

fn write_input(dir: &Path, name: &str) -> Result<(std::path::PathBuf, Vec<&'static str>)> {
    let p = dir.join(name);
    let extra = match name {
        "empty" => {
            fs::write(&p, b"")?;
            vec![]
        }
        "a" => {
            fs::write(&p, b"a")?;
            vec![]
        }
        "hello" => {
            fs::write(&p, b"hello world\n")?;
            vec![]
        }
        "zeros-262144" => {
            fs::write(&p, vec![0u8; 262144])?;
            vec![]
        }
        "zeros-262145" => {
            fs::write(&p, vec![0u8; 262145])?;
            vec![]
        }
        "zeros-45MiB" => {
            fs::write(&p, vec![0u8; 45 << 20])?;
            vec![]
        }
        "zeros-174chunks" => {
            fs::write(&p, vec![0u8; 174 * 262144])?;
            vec![]
        }
        "zeros-175chunks" => {
            fs::write(&p, vec![0u8; 175 * 262144])?;
            vec![]
        }
        "prng-10MiB" => {
            fs::write(&p, prng(10 << 20))?;
            vec![]
        }
        "tree" => {
            make_tree(&p)?;
            vec!["-r"]
        }
        "tree-wrapped" => {
            let t = dir.join("tree");
            if !t.exists() {
                make_tree(&t)?;
            }
            return Ok((t, vec!["-r", "-w"]));
        }
        "hamt-6000" => {
            make_hamt_dir(&p)?;
            vec!["-r"]
        }
        other => panic!("vectors.json has an input this test cannot make: {other}"),
    };
    Ok((p, extra))
}

#[test]
fn add_only_hash_reproduces_every_reference_cid() -> Result<()> {
    let path = shared_dir().join("vectors").join("vectors.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)?;
    let repo = TestRepo::new()?;
    let inputs = repo.scratch("inputs");
    fs::create_dir_all(&inputs)?;
    let mut checked = 0;
    let mut failures = Vec::new();
    for v in doc["vectors"].as_array().context("vectors array")? {
        let name = v["name"].as_str().context("vector name")?;
        let (input, extra) = write_input(&inputs, name)?;
        let mut expected: Vec<(String, String)> = Vec::new();
        for section in ["cids", "extra"] {
            for (setting, cid) in v[section].as_object().context("cid map")? {
                expected.push((setting.clone(), cid.as_str().context("cid")?.to_string()));
            }
        }
        for (setting, want) in expected {
            let mut args = vec!["add", "--only-hash", "-Q"];
            args.extend(extra.iter().copied());
            args.extend(flags(&setting));
            let input_str = input.to_str().context("utf-8 path")?;
            args.push(input_str);
            let got = repo.ok(&args)?.trim().to_string();
            checked += 1;
            if got != want {
                failures.push(format!("{name} [{setting}]: got {got}, want {want}"));
            }
        }
    }
    assert!(checked >= 40, "only {checked} vectors checked");
    assert!(failures.is_empty(), "{} of {checked} CIDs differ:\n{}", failures.len(), failures.join("\n"));
    // --only-hash wrote nothing.
    let stat: Value = serde_json::from_str(&repo.ok(&["repo", "stat", "--json"])?)?;
    assert_eq!(stat["NumObjects"], 0);
    Ok(())
}
