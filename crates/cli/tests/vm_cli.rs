//! `bpfkit conformance`, `conformance-plugin` and `run` as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn suite() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bpf_conformance/tests"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: conformance suite not found at {}", dir.display());
        None
    }
}

#[test]
fn conformance_command_reports_all_passed() {
    let Some(dir) = suite() else { return };
    let out = Command::new(BIN)
        .arg("conformance")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("313 passed, 0 failed, 0 skipped")
    );
}

#[test]
fn conformance_command_reports_failures_with_expected_and_got() {
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("bad.data"),
        "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("conformance")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("bad.data: expected r0 = 0x2, got r0 = 0x1"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed, 0 skipped"));
}

#[test]
fn conformance_reads_subdirs_links_hexdumps_error_patterns_and_skips() {
    // Issue 10: each file exercises one thing the runner ignored or misread;
    // see the comments in the files.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/conformance");
    let out = Command::new(BIN)
        .arg("conformance")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // plain, subdir/linked-asm, hexdump-mem, error-pattern and load-error
    // pass; no-result is skipped, saying why.
    assert_eq!(
        stdout.lines().last(),
        Some("5 passed, 0 failed, 1 skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "no-result.data: no expected result (no `result`, `error` or `error pattern`)"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("SKIP ")).count(), 1);
}

#[test]
fn conformance_names_a_missing_linked_file() {
    // Not under tempfile_dir(): the runner reads subdirectories, and the
    // other tests' directory must keep only their own files.
    let dir = std::env::temp_dir().join(format!("bpfkit-vm-cli-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("t.data"), "-- asm @ nowhere.asm\n-- result\n0x1\n").unwrap();
    let out = Command::new(BIN)
        .arg("conformance")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("t.data: section `asm`: reading `nowhere.asm`: "),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed, 0 skipped"));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfkit-vm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn plugin_protocol() {
    // ldxb r0, [r1+1]; exit  — as the suite's runner sends it.
    let mut child = Command::new(BIN)
        .args(["conformance-plugin", "aabbcc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"7110010000000000\n9500000000000000\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bb");
}

#[test]
fn run_raw_bytecode_with_memory() {
    let dir = tempfile_dir();
    let prog = dir.join("add.bin");
    // r0 = *(u8 *)(r1 + 0); r0 += r2; exit
    std::fs::write(
        &prog,
        [
            0x71, 0x10, 0, 0, 0, 0, 0, 0, 0x0f, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
        ],
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", prog.to_str().unwrap(), "--mem", "05 00 00"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0x8");
    let bad = Command::new(BIN)
        .args(["run", prog.to_str().unwrap(), "--mem", "zz"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`zz` is not hex"));
}

fn fixture(name: &str) -> String {
    format!(
        "{}/../object/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn run_an_object_program_prints_retval_data_and_changed_maps() {
    let dir = tempfile_dir();
    let pkt = dir.join("udp53.bin");
    let mut p = vec![0u8; 42];
    p[12] = 0x08;
    p[14] = 0x45;
    p[23] = 17;
    p[37] = 53;
    std::fs::write(&pkt, &p).unwrap();
    let out = Command::new(BIN)
        .args([
            "run",
            &fixture("xdp_parser.bpf.o"),
            "--data",
            pkt.to_str().unwrap(),
            "--repeat",
            "3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("retval: 1 (0x1)"),
        "XDP_DROP for port 53: {stdout}"
    );
    assert!(
        stdout.contains("map proto_count: [11 00 00 00] = 03 00 00 00 00 00 00 00"),
        "{stdout}"
    );
    let many = Command::new(BIN)
        .args(["run", &fixture("maps.bpf.o")])
        .output()
        .unwrap();
    assert!(!many.status.success());
    assert!(String::from_utf8_lossy(&many.stderr)
        .contains("choose one with --prog (tail_target, use_maps)"));
}

#[test]
fn kernel_only_externs_are_refused_by_the_vm_by_name() {
    let obj = format!(
        "{}/../kernel/tests/fixtures/kfunc.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(BIN)
        .args(["run", &obj, "--prog", "find_task"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("program `find_task`")
            && err.contains("kernel function `bpf_task_from_pid` (__ksym)")
            && err.contains("userspace VM does not have"),
        "{err}"
    );
}

#[test]
fn non_ascii_hex_is_an_error_naming_the_character_not_a_panic() {
    // Issue 10: `é` is two bytes, so slicing the text in byte pairs panicked.
    let mut child = Command::new(BIN)
        .args(["conformance-plugin", "aé"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"9500000000000000\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("memory: `aé` is not hex: character `é` (U+00E9) at offset 1"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["conformance-plugin", "--program", "95000000000000ü0", ""])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("program: `ü0` is not hex: character `ü` (U+00FC) at offset 14"),
        "{err}"
    );

    let dir = tempfile_dir();
    let prog = dir.join("exit.bin");
    std::fs::write(&prog, [0x95, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let out = Command::new(BIN)
        .args(["run", prog.to_str().unwrap(), "--mem", "00 €1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("--mem: `€1` is not hex: character `€` (U+20AC) at offset 3"),
        "{err}"
    );
}
