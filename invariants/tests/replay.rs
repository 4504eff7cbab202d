//! Every committed seed (`fuzz/corpus/<target>/`) and every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`) still holds its target's invariants: the fuzzers' findings
//! stay fixed, checked by the ordinary test suite without a nightly toolchain.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_holds_its_invariants() {
    let mut counts = Vec::new();
    for (name, check) in cairn_invariants::TARGETS {
        let seeds = inputs(&fuzz_dir().join("corpus").join(name));
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        assert!(seeds.len() >= 3, "{name}: expected a committed seed corpus, found {} files", seeds.len());
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                panic!("{name}: {} breaks an invariant: {why}", path.display());
            }
        }
        counts.push(format!("{name}: {} seeds, {} regressions", seeds.len(), regressions.len()));
    }
    eprintln!("{}", counts.join("\n"));
}
