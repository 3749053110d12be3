//! Every program of the bpf_conformance suite (../shared/conformance)
//! passes under the JIT, as under the interpreter.
#![cfg(target_arch = "x86_64")]

use std::path::PathBuf;

#[test]
fn bpf_conformance_suite_passes_under_the_jit() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bpf_conformance/tests"
    ));
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "conformance suite not found at {} (CI must have ../shared)",
            dir.display()
        );
        eprintln!("SKIP: conformance suite not found at {}", dir.display());
        return;
    }
    let jit = |p: &mut bpfkit_vm::Program| bpfkit_jit::compile(p).map_err(|e| e.to_string());
    let outcomes = bpfkit_vm::conformance::run_dir_with(&dir, &jit).unwrap();
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
