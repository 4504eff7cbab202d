//! IPNS records against another implementation, `@helia/ipns` (no network involved):
//! - records JavaScript made (Ed25519, RSA with its key in `pubKey`, secp256k1; V1+V2 and V2-only)
//!   validate in cairn, and the broken ones (expired, bad V2 signature, V1 value differing from
//!   the signed data) are refused;
//! - records cairn made (Ed25519, secp256k1) validate in JavaScript.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use cairn_protocol::records::{self, ValidRecord};
use cairn_tests::{js_clients_dir, run_with_deadline};
use libp2p::identity::Keypair;
use serde_json::Value;

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as i128
}

fn field(v: &Value, k: &str) -> Result<Vec<u8>> {
    Ok(hex::decode(v[k].as_str().with_context(|| format!("no {k} in {v}"))?)?)
}

#[test]
fn records_made_by_helia_validate_in_cairn() -> Result<()> {
    let dir = js_clients_dir()?;
    let mut c = Command::new("node");
    c.current_dir(&dir).args(["ipns_records.mjs", "make"]);
    let out = run_with_deadline(c, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!("ipns_records.mjs make: {}", String::from_utf8_lossy(&out.stderr));
    }
    let lines: Vec<Value> =
        String::from_utf8(out.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 15, "three key types, five records each");
    for v in &lines {
        let label = v["label"].as_str().unwrap_or("?");
        let got = records::validate(&field(v, "key")?, &field(v, "record")?, now_nanos());
        if v["valid"].as_bool() == Some(true) {
            let Ok(ValidRecord::Ipns(r)) = got else { bail!("{label}: refused: {got:?}") };
            assert_eq!(r.value, v["value"].as_str().unwrap_or_default().as_bytes(), "{label}");
        } else {
            assert!(got.is_err(), "{label}: accepted");
        }
    }
    Ok(())
}

#[test]
fn records_made_by_cairn_validate_in_helia() -> Result<()> {
    let dir = js_clients_dir()?;
    let mut input = String::new();
    let eol = now_nanos() + 3_600_000_000_000;
    for (label, key) in [
        ("ed25519", Keypair::generate_ed25519()),
        ("secp256k1", Keypair::generate_secp256k1()),
        // ECDSA is left out: @libp2p/crypto 5.1 fails to parse the DER public keys go-libp2p and
        // rust-libp2p both write ("Cannot read properties of undefined").
    ] {
        let record = records::create_ipns(&key, b"/ipfs/bafkqaaa", 1, eol, 60_000_000_000)?;
        let routing = records::ipns_key(&key.public().to_peer_id());
        let line = serde_json::json!({ "label": label, "key": hex::encode(routing), "record": hex::encode(record) });
        input.push_str(&format!("{line}\n"));
    }
    let mut child = Command::new("node")
        .current_dir(&dir)
        .args(["ipns_records.mjs", "check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("ipns_records.mjs check: {}", String::from_utf8_lossy(&out.stderr));
    }
    let answers: Vec<Value> =
        String::from_utf8(out.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert_eq!(a["ok"], Value::Bool(true), "Helia refused cairn's record: {a}");
    }
    Ok(())
}
