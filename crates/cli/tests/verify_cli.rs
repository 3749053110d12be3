//! `bpfkit verify`: one result per program, JSON lines, the exit status,
//! raw bytecode with --type, and --compare-kernel.

use std::path::PathBuf;
use std::process::Command;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verifier/tests/fixtures/rejects.bpf.o")
}

#[test]
fn json_lines_name_program_verdict_insn_line_and_reason() {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(fixture())
        .arg("--json")
        .output()
        .unwrap();
    assert!(!out.status.success(), "rejections must fail the command");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13, "{stdout}");
    let null = lines
        .iter()
        .find(|v| v["program"] == "null_unchecked")
        .unwrap();
    assert_eq!(null["verdict"], "reject");
    assert_eq!(null["insn"], 7);
    let source = std::fs::read_to_string(fixture().with_extension("c")).unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("reject: null"))
        .unwrap()
        + 1;
    assert_eq!(null["line"], format!("rejects.bpf.c:{line}"));
    assert!(
        null["message"].as_str().unwrap().contains("may be NULL"),
        "{null}"
    );
    assert!(null["processed_insns"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("11 of 13 programs rejected"));
}

#[test]
fn accepted_raw_bytecode_needs_a_type_and_exits_zero() {
    let dir = std::env::temp_dir().join(format!("bpfkit-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("ok.bin");
    // r0 = 2; exit
    std::fs::write(&raw, [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let out = Command::new(BIN)
        .args(["verify", "--type", "xdp", "--json"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["program"], "ok");
    assert_eq!(v["verdict"], "accept");
    assert_eq!(v["processed_insns"], 2);
    let out = Command::new(BIN).arg("verify").arg(&raw).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --type"));
    let out = Command::new(BIN)
        .args(["verify", "--type", "nonsense"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a program type"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_kernel_prints_both_verdicts() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("--compare-kernel needs bpf(): {why}"));
        return;
    }
    let out = Command::new(BIN)
        .arg("verify")
        .arg(fixture())
        .args([
            "--prog",
            "oob_packet",
            "--prog",
            "bad_return",
            "--compare-kernel",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for v in &lines {
        assert_eq!(v["verdict"], "reject", "{v}");
        assert_eq!(v["kernel_verdict"], "reject", "{v}");
        assert!(
            v["kernel_message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    let text = Command::new(BIN)
        .arg("verify")
        .arg(fixture())
        .args(["--prog", "oob_packet", "--compare-kernel"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("oob_packet: reject")
            && text.contains("kernel: reject")
            && text.contains("(agrees)"),
        "{text}"
    );
    assert!(text.contains("rejects.bpf.c:"), "{text}");
}
