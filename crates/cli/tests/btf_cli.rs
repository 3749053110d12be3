//! `bpfkit btf dump` end to end.

use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../btf/tests/fixtures");

fn bpfkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = bpfkit(args);
    assert!(
        out.status.success(),
        "bpfkit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn raw_dump_of_a_btf_file_matches_bpftool() {
    let expected = std::fs::read_to_string(format!("{FIXTURES}/core/target.bpftool.raw")).unwrap();
    let btf = format!("{FIXTURES}/core/target.btf");
    assert_eq!(stdout_of(&["btf", "dump", &btf]), expected);
    assert_eq!(
        stdout_of(&["btf", "dump", &btf, "--format", "raw"]),
        expected
    );
}

#[test]
fn dump_reads_the_btf_section_of_an_elf_object() {
    let expected = std::fs::read_to_string(format!("{FIXTURES}/core/target.bpftool.raw")).unwrap();
    let obj = format!("{FIXTURES}/core/target.o");
    assert_eq!(
        stdout_of(&["btf", "dump", &obj, "--format", "raw"]),
        expected
    );
}

#[test]
fn c_dump_is_a_header() {
    let header = stdout_of(&[
        "btf",
        "dump",
        &format!("{FIXTURES}/dump/types.btf"),
        "--format",
        "c",
    ]);
    assert!(header.starts_with("#ifndef __VMLINUX_H__\n"));
    assert!(header.contains(
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)"
    ));
    assert!(header.contains("struct everything {\n"));
    assert!(header.ends_with("#endif /* __VMLINUX_H__ */\n"));
}

#[test]
fn malformed_input_fails_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("bpfkit-btf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut blob = std::fs::read(format!("{FIXTURES}/core/target.btf")).unwrap();
    // The kind of type [1] lives in the top byte of its info word.
    blob[24 + 7] = 0x1f;
    let path = dir.join("bad.btf");
    std::fs::write(&path, &blob).unwrap();
    let out = bpfkit(&["btf", "dump", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BTF type [1]") && stderr.contains("unknown kind 31"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vmlinux_raw_dump_matches_bpftool() {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("SKIP: /sys/kernel/btf/vmlinux missing");
        return;
    }
    let Ok(reference) = Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "raw",
        ])
        .output()
    else {
        eprintln!("SKIP: bpftool not installed");
        return;
    };
    assert!(reference.status.success());
    let ours = stdout_of(&["btf", "dump", "/sys/kernel/btf/vmlinux"]);
    assert!(
        ours == String::from_utf8(reference.stdout).unwrap(),
        "raw dump differs from bpftool"
    );
}
