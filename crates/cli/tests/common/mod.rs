//! What the CLI test binaries share: the binary's path, the access check,
//! and JSON-lines parsing.
#![allow(dead_code)]

/// The `bpfkit` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

/// Whether `bpf()` is usable; prints why not (the test then skips).
pub fn require_bpf() -> bool {
    match bpfkit_kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            skip(&format!("cannot use bpf(): {why}"));
            false
        }
    }
}

/// Says why a test skips. Under `CI=true` a skip fails instead: CI runs as
/// root with every tool installed, so a skip there hides a fault.
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test skipped under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// One JSON value per line of a tool's stdout; a line that is not JSON fails.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The mount point of the cgroup v2 hierarchy, if one is mounted.
pub fn cgroup2_root() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| std::path::PathBuf::from(f[1]))
}

/// A directory removed with everything in it when dropped, also when the
/// test fails: for bpffs pins, which outlive the test process.
pub struct RemoveOnDrop(pub std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `bpfkit load ARGS` and returns once it is attached (the blank
/// line after its program and map list), with the rest of its stdout.
pub fn load_until_attached(
    args: &[&std::ffi::OsStr],
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut tool = std::process::Command::new(BIN)
        .arg("load")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(tool.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().is_empty() {
            break;
        }
    }
    (tool, lines)
}
