//! `bpfkit btf dump` end to end.

use std::process::Command;

mod common;

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
        common::skip("/sys/kernel/btf/vmlinux missing");
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
        common::skip("bpftool not installed");
        return;
    };
    assert!(reference.status.success());
    let ours = stdout_of(&["btf", "dump", "/sys/kernel/btf/vmlinux"]);
    assert!(
        ours == String::from_utf8(reference.stdout).unwrap(),
        "raw dump differs from bpftool"
    );
}

#[test]
fn kernel_btf_objects_list_and_dump_by_id() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let list: serde_json::Value = serde_json::from_str(&stdout_of(&["btf", "list", "-j"])).unwrap();
    let vmlinux = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "vmlinux")
        .expect("vmlinux among the kernel's BTF objects");
    assert_eq!(vmlinux["kernel"], true);
    let size = std::fs::metadata("/sys/kernel/btf/vmlinux").unwrap().len();
    assert_eq!(vmlinux["size"], size);
    let id = vmlinux["id"].to_string();
    // The object read through bpf() is the file in sysfs, type for type.
    let by_id = stdout_of(&["btf", "dump", "id", &id]);
    let by_file = stdout_of(&["btf", "dump", "/sys/kernel/btf/vmlinux"]);
    assert!(by_id == by_file, "dump by id differs from the sysfs file");
    let bad = bpfkit(&["btf", "dump", "id", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`nope` is not a BTF object id"));
}
