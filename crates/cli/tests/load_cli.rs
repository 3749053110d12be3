//! `bpfkit load` against the running kernel: exec events decoded from BTF.

use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

#[test]
fn load_prints_decoded_exec_events_as_json() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let obj = format!(
        "{}/../object/tests/fixtures/bootstrap.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new(BIN)
        .args([
            "load",
            &obj,
            "--event-type",
            "event",
            "--json",
            "--duration",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to attach, then exec something recognisable.
    std::thread::sleep(Duration::from_millis(1200));
    let traced = Command::new("/bin/true").spawn().unwrap();
    let pid = traced.id() as i64;
    let mut traced = traced;
    traced.wait().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let exec = events
        .iter()
        .find(|e| e["event"]["pid"] == pid && e["event"]["exit_event"] == false)
        .unwrap_or_else(|| panic!("no exec event for pid {pid} in {stdout}"));
    assert_eq!(exec["map"], "rb");
    assert_eq!(exec["event"]["comm"], "true");
    assert_eq!(exec["event"]["filename"], "/bin/true");
    let exit = events
        .iter()
        .find(|e| e["event"]["pid"] == pid && e["event"]["exit_event"] == true)
        .expect("an exit event");
    assert_eq!(exit["event"]["exit_code"], 0);
}
