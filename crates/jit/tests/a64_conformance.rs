//! The ARM64 back end passes the bpf_conformance suite: each program is
//! built into a static aarch64 executable with its input and run under
//! qemu-aarch64 (the qemu-user package), which must then print the `r0`
//! the file expects, or fail where the file expects an error.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfkit_jit::a64;
use bpfkit_vm::conformance::{Expected, TestCase};
use bpfkit_vm::{Program, Vm};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn data_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            data_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "data") {
            out.push(p);
        }
    }
}

/// r0, or the exit status of a failed run.
fn run_a64(exe: &[u8], dir: &Path, name: &str) -> Result<u64, i32> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, exe).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("qemu-aarch64").arg(&path).output().unwrap();
    std::fs::remove_file(&path).ok();
    match out.status.code() {
        Some(0) if out.stdout.len() == 8 => {
            Ok(u64::from_le_bytes(out.stdout[..8].try_into().unwrap()))
        }
        Some(code) => Err(code),
        None => Err(-1),
    }
}

#[test]
fn bpf_conformance_suite_passes_on_the_arm64_back_end() {
    if Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!ci(), "qemu-aarch64 is missing (Debian package qemu-user)");
        eprintln!("SKIP: qemu-aarch64 not found (Debian package qemu-user)");
        return;
    }
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bpf_conformance/tests"
    ));
    if !dir.is_dir() {
        assert!(!ci(), "conformance suite not found at {}", dir.display());
        eprintln!("SKIP: conformance suite not found at {}", dir.display());
        return;
    }
    let mut files = Vec::new();
    data_files(&dir, &mut files);
    files.sort();
    let tmp = std::env::temp_dir().join(format!("bpfkit-a64-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (mut passed, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let case = TestCase::from_file(path).unwrap();
        if case.skip_reason(&mut Vm::for_conformance()).is_some() {
            skipped += 1;
            continue;
        }
        let outcome = match case.program.clone().map(Program::new) {
            Err(_) | Ok(Err(_)) => Err(-2),
            Ok(Ok(program)) => {
                let exe = a64::executable(&program, &case.mem, 1 << 24).unwrap();
                run_a64(&exe, &tmp, &format!("t{i}"))
            }
        };
        let ok = match (&case.expected, outcome) {
            (Expected::Value(want), Ok(got)) => *want == got,
            (Expected::Error(_), Err(code)) => code != a64::EXIT_UNSUPPORTED && code != -1,
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "{}: expected {:?}, got {outcome:?}",
                path.display(),
                case.expected
            ));
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
    assert_eq!(files.len(), 313);
    assert!(
        failures.is_empty(),
        "{} failed ({passed} passed, {skipped} skipped):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The interpreter runs every file of the suite, so must this.
    assert_eq!((passed, skipped), (313, 0));
}

#[test]
fn arm64_executables_report_results_faults_and_the_budget() {
    if Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!ci(), "qemu-aarch64 is missing (Debian package qemu-user)");
        eprintln!("SKIP: qemu-aarch64 not found (Debian package qemu-user)");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("bpfkit-a64u-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let run = |src: &str, mem: &[u8], budget: u64| {
        let insns = bpfkit_isa::assemble(src, bpfkit_isa::Syntax::Llvm).unwrap();
        let program = Program::new(insns).unwrap();
        let exe = a64::executable(&program, mem, budget).unwrap();
        let r = run_a64(&exe, &tmp, "p");
        // The interpreter agrees: the same r0, or also an error.
        let mut vm = Vm::new();
        vm.set_budget(budget);
        let interp = vm.run(&program, &mut mem.to_vec());
        assert_eq!(interp.is_ok(), r.is_ok(), "{src}: {interp:?} vs {r:?}");
        if let (Ok(a), Ok(b)) = (&interp, &r) {
            assert_eq!(a, b, "{src}");
        }
        r
    };
    assert_eq!(run("r0 = 42\nexit", &[], 100), Ok(42));
    assert_eq!(
        run(
            "r0 = *(u32 *)(r1 + 4)\nr0 += r2\nexit",
            &[1, 0, 0, 0, 7, 0, 0, 0],
            100
        ),
        Ok(7 + 8)
    );
    // Past the input's end, and below the frame.
    assert_eq!(
        run("r0 = *(u32 *)(r1 + 6)\nexit", &[0; 8], 100),
        Err(a64::EXIT_FAULT)
    );
    assert_eq!(
        run("r0 = *(u8 *)(r10 - 513)\nexit", &[], 100),
        Err(a64::EXIT_FAULT)
    );
    // A frame returned from is dead.
    assert_eq!(
        run(
            "call f\nr0 = *(u64 *)(r0 + 0)\nexit\nf:\nr0 = r10\nr0 += -8\nexit",
            &[],
            100
        ),
        Err(a64::EXIT_FAULT)
    );
    // The budget, counted as the interpreter counts it.
    assert_eq!(run("r0 = 3\nr0 += 1\nexit", &[], 3), Ok(4));
    assert_eq!(run("r0 = 3\nr0 += 1\nexit", &[], 2), Err(a64::EXIT_BUDGET));
    assert_eq!(run("l:\ngoto l", &[], 1000), Err(a64::EXIT_BUDGET));
    std::fs::remove_dir_all(&tmp).ok();
}
