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

/// The program ids a `bpfkit load` prints (`prog NAME: id N ...`).
fn read_prog_ids(stdout: &mut impl std::io::BufRead) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(rest) = line.strip_prefix("prog ") {
            let id = rest
                .split(": id ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            ids.extend(id.and_then(|i| i.parse::<u32>().ok()));
        }
        // Map lines come after every program line; the first one means loading is done.
        if line.starts_with("map ") {
            break;
        }
        line.clear();
    }
    ids
}

#[test]
fn a_killed_loader_leaves_nothing_in_the_kernel() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let obj = format!(
        "{}/../object/tests/fixtures/bootstrap.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    for signal in ["-INT", "-KILL"] {
        let mut child = Command::new(BIN)
            .args(["load", &obj])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let ids = read_prog_ids(&mut stdout);
        assert_eq!(ids.len(), 2, "both programs loaded and attached");
        let live = bpfkit_kernel::inspect::ids(bpfkit_kernel::inspect::ObjectKind::Program);
        assert!(ids.iter().all(|id| live.contains(id)));
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap();
        // Programs are freed once their last fd and link are gone; the kernel
        // does that asynchronously, so give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let live = bpfkit_kernel::inspect::ids(bpfkit_kernel::inspect::ObjectKind::Program);
            if ids.iter().all(|id| !live.contains(id)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after kill {signal}, programs {ids:?} are still loaded"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn load_reads_perf_buffers_too() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let obj = format!(
        "{}/../kernel/tests/fixtures/perfexec.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new(BIN)
        .args([
            "load",
            &obj,
            "--event-type",
            "exec_event",
            "--json",
            "--duration",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let mut traced = Command::new("/bin/true").spawn().unwrap();
    let pid = traced.id() as i64;
    traced.wait().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exec = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no perf record for pid {pid}: {stdout}"));
    assert_eq!(exec["map"], "execs");
    assert_eq!(exec["event"]["comm"], "true");
    assert_eq!(exec["event"]["uid"], 0);
}
