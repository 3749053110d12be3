//! `bpfkit jit`, and `--engine` of `run` and `conformance`.
#![cfg(target_arch = "x86_64")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn fixture(name: &str) -> String {
    format!(
        "{}/../object/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn stdout(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn jit_prints_each_ebpf_instruction_before_its_x86_code() {
    let (ok, out, err) = stdout(&["jit", &fixture("xdp_parser.bpf.o")]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("; 44 eBPF slots, "), "{out}");
    // The first instruction of the program, then its budget check and code.
    let first = lines
        .iter()
        .position(|l| *l == ";    0: r0 = 2")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        lines[first + 1].ends_with("cmp qword ptr [r12+10h],2"),
        "{out}"
    );
    assert!(lines[first + 4].ends_with("mov eax,2"), "{out}");
    assert!(out.contains("; out-of-line paths"), "{out}");
    assert!(lines.last().unwrap().ends_with("ret"), "{out}");
    // Choosing among programs, as `run` does.
    let (ok, _, err) = stdout(&["jit", &fixture("maps.bpf.o")]);
    assert!(!ok);
    assert!(
        err.contains("choose one with --prog (tail_target, use_maps)"),
        "{err}"
    );
    let (ok, out, _) = stdout(&["jit", &fixture("maps.bpf.o"), "--prog", "use_maps"]);
    assert!(ok && out.contains("call rax"), "{out}");
}

#[test]
fn run_gives_the_same_answer_under_both_engines() {
    let dir = std::env::temp_dir().join(format!("bpfkit-jit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pkt = dir.join("udp53.bin");
    let mut p = vec![0u8; 42];
    p[12] = 0x08;
    p[14] = 0x45;
    p[23] = 17;
    p[37] = 53;
    std::fs::write(&pkt, &p).unwrap();
    let xdp = fixture("xdp_parser.bpf.o");
    let run = |engine: &str| {
        let (ok, out, err) = stdout(&[
            "run",
            &xdp,
            "--data",
            pkt.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(ok, "{err}");
        // Everything but the timing line.
        out.lines()
            .filter(|l| !l.starts_with("duration:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let interp = run("interp");
    assert!(interp.contains("retval: 1 (0x1)"), "{interp}");
    assert_eq!(interp, run("jit"));
    let (ok, _, err) = stdout(&["run", &xdp, "--engine", "fast"]);
    assert!(!ok && err.contains("interpreter, jit"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conformance_runs_under_the_jit() {
    let dir = format!(
        "{}/../../../shared/conformance/bpf_conformance/tests",
        env!("CARGO_MANIFEST_DIR")
    );
    if !std::path::Path::new(&dir).is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no suite at {dir}"
        );
        eprintln!("SKIP: conformance suite not found at {dir}");
        return;
    }
    let (ok, out, _) = stdout(&["conformance", &dir, "--engine", "jit"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().last(), Some("313 passed, 0 failed, 0 skipped"));
}

#[test]
fn conformance_runs_on_the_arm64_back_end_under_qemu() {
    let dir = format!(
        "{}/../../../shared/conformance/bpf_conformance/tests",
        env!("CARGO_MANIFEST_DIR")
    );
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !std::path::Path::new(&dir).is_dir() {
        assert!(!ci, "no suite at {dir}");
        eprintln!("SKIP: conformance suite not found at {dir}");
        return;
    }
    // Without qemu-aarch64 on PATH, the error names the package to install.
    let out = Command::new(BIN)
        .args(["conformance", &dir, "--engine", "jit-arm64"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("qemu-aarch64 not found") && err.contains("package qemu-user"),
        "{err}"
    );
    if Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!ci, "qemu-aarch64 is missing (Debian package qemu-user)");
        eprintln!("SKIP: qemu-aarch64 not found (Debian package qemu-user)");
        return;
    }
    let (ok, out, err) = stdout(&["conformance", &dir, "--engine", "jit-arm64"]);
    assert!(ok, "{out}{err}");
    // Every file the interpreter passes, none skipped.
    assert_eq!(out.lines().last(), Some("313 passed, 0 failed, 0 skipped"));
}
