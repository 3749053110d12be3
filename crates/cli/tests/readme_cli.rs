//! Every `bpfkit` command in the README's `sh` blocks runs as written from
//! the root of a clone (those that need root only when the test has it).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// The command lines of the README's ```sh blocks that invoke bpfkit.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        let line = line.trim();
        if in_sh && !line.starts_with('#') && line.contains("bpfkit ") && !line.starts_with("cargo")
        {
            out.push(line.to_string());
        }
    }
    out
}

/// Subcommands that need root (or CAP_BPF).
fn needs_root(command: &str) -> bool {
    ["bpfkit load", "bpfkit feature", "bpfkit btf dump /sys"]
        .iter()
        .any(|p| command.contains(p))
}

#[test]
fn readme_commands_run_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(
        commands.len() >= 7,
        "README commands not found: {commands:?}"
    );
    // A clone's root, without writing into this one: its folders, and
    // `bpfkit` on PATH as `cargo install` would put it.
    let clone = std::env::temp_dir().join(format!("bpfkit-readme-{}", std::process::id()));
    let bin = clone.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for dir in ["crates", "bpf"] {
        std::os::unix::fs::symlink(root.join(dir).canonicalize().unwrap(), clone.join(dir))
            .unwrap();
    }
    std::os::unix::fs::symlink(common::BIN, bin.join("bpfkit")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root_ok = bpfkit_kernel::check_bpf_access().is_ok();
    let mut ran = 0;
    for command in &commands {
        if needs_root(command) && !root_ok {
            common::skip(&format!("needs bpf(): {command}"));
            continue;
        }
        let out = Command::new("sh")
            .args(["-c", command])
            .current_dir(&clone)
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`{command}` failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let produced = !stdout.trim().is_empty() || written_file(&clone, command);
        assert!(produced, "`{command}` printed nothing");
        if command.contains("udp-packet.bin") {
            assert!(stdout.contains("retval: 1 "), "XDP_DROP expected: {stdout}");
        }
        if command.contains("conformance-plugin") {
            assert_eq!(stdout.trim(), "2a");
        }
        if command.contains("bpfkit conformance ") {
            assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
        }
        ran += 1;
    }
    std::fs::remove_dir_all(&clone).unwrap();
    eprintln!("ran {ran} README commands");
}

/// Whether a `... > FILE` command left a non-empty FILE.
fn written_file(dir: &Path, command: &str) -> bool {
    command
        .rsplit_once('>')
        .map(|(_, f)| dir.join(f.trim()))
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.len() > 0)
}
