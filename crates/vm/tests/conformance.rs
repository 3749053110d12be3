//! Every program of the bpf_conformance suite (../shared/conformance) passes.

use std::path::PathBuf;

#[test]
fn bpf_conformance_suite_passes() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bpf_conformance/tests"
    ));
    if !dir.is_dir() {
        eprintln!("SKIP: conformance suite not found at {}", dir.display());
        return;
    }
    let outcomes = bpfkit_vm::conformance::run_dir(&dir).unwrap();
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", o.path.display()))
        })
        .collect();
    assert_eq!(outcomes.len(), 313, "the suite has 313 programs");
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}
