//! `bpfkit load` against the running kernel: exec events decoded from BTF.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

#[test]
fn load_prints_decoded_exec_events_as_json() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
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
        common::skip(&format!("cannot use bpf(): {why}"));
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
        common::skip(&format!("cannot use bpf(): {why}"));
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

fn kernel_fixture(name: &str) -> String {
    format!(
        "{}/../kernel/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run_load(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("load").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn load_keeps_the_supported_twin_and_honours_prog_and_skip() {
    if !common::require_bpf() {
        return;
    }
    let obj = kernel_fixture("twins.bpf.o");
    // Default: exec_btf (tp_btf) over its raw_tp twin; fentry left out here.
    let (ok, stdout, stderr) = run_load(&[&obj, "-d", "0"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("prog exec_btf:") && stdout.contains("-> trace_raw_tp sched_process_exec"),
        "{stdout}"
    );
    assert!(
        stderr.contains("`exec_raw` not loaded: twin of `exec_btf`"),
        "{stderr}"
    );
    // --skip the preferred twin: the other one takes over.
    let (ok, stdout, stderr) = run_load(&[&obj, "-d", "0", "--skip", "exec_btf"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("prog exec_raw:")
            && stdout.contains("-> raw_tracepoint sched_process_exec"),
        "{stdout}"
    );
    // Only a program that cannot attach here: a failure, unless load-only.
    if !bpfkit_kernel::link::kprobes_available() {
        let (ok, _, stderr) = run_load(&[&obj, "-d", "0", "--prog", "exit_kprobe"]);
        assert!(!ok, "attached nothing yet succeeded: {stderr}");
        assert!(
            stderr.contains("nothing was attached") && stderr.contains("kprobes are not available"),
            "{stderr}"
        );
        let (ok, stdout, stderr) = run_load(&[&obj, "--load-only", "--prog", "exit_kprobe"]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("prog exit_kprobe:"), "{stdout}");
    }
    let (ok, _, stderr) = run_load(&[&obj, "--prog", "nosuch"]);
    assert!(!ok);
    assert!(
        stderr.contains("no program `nosuch`") && stderr.contains("exec_btf"),
        "{stderr}"
    );
}

#[test]
fn load_sizes_maps_on_request_and_reuses_its_pins() {
    if !common::require_bpf() {
        return;
    }
    let obj = kernel_fixture("unsized.bpf.o");
    let (ok, _, stderr) = run_load(&[&obj, "-d", "0"]);
    assert!(!ok);
    assert!(
        stderr.contains("`stacks` (stack_trace) has max_entries 0")
            && stderr.contains("--map-size stacks=N"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("os error").count(), 0, "{stderr}");
    let dir = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-cli-pin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = common::RemoveOnDrop(dir.clone());
    let pin = dir.to_str().unwrap();
    let first = run_load(&[&obj, "-d", "0", "--map-size", "stacks=32", "--pin", pin]);
    assert!(first.0, "{}{}", first.1, first.2);
    assert!(first.2.contains("stays attached after exit"), "{}", first.2);
    for name in ["shared_counts", "stacks", "link_sample"] {
        assert!(dir.join(name).exists(), "{name} not pinned");
    }
    // The pinned link keeps the program attached: attaching again is refused
    // before anything is loaded...
    let again = run_load(&[&obj, "-d", "0", "--map-size", "stacks=32", "--pin", pin]);
    assert!(!again.0);
    assert!(again.2.contains("link_sample exists"), "{}", again.2);
    // ...and once it is removed, the maps are reused.
    std::fs::remove_file(dir.join("link_sample")).unwrap();
    let second = run_load(&[&obj, "-d", "0", "--map-size", "stacks=32", "--pin", pin]);
    assert!(second.0, "{}", second.2);
    assert!(
        second.2.contains("map `shared_counts` reused from")
            && second.2.contains("map `stacks` reused"),
        "{}",
        second.2
    );
    // A pin of another size is refused, naming the difference.
    std::fs::remove_file(dir.join("link_sample")).unwrap();
    let other = run_load(&[&obj, "-d", "0", "--map-size", "stacks=64", "--pin", pin]);
    assert!(!other.0);
    assert!(
        other.2.contains("max_entries 32, the object wants 64"),
        "{}",
        other.2
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn iterators_run_once_or_pin_like_bpftool_iter() {
    if !common::require_bpf() {
        return;
    }
    let obj = kernel_fixture("iter.bpf.o");
    let out = Command::new(BIN)
        .args(["iter", "run", &obj])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me = std::process::id();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{me} {me} "))),
        "this process is not in the task iterator's output"
    );
    let path = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-iter-{me}"));
    let out = Command::new(BIN)
        .args(["iter", "pin", &obj, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each read of the pinned file runs the iterator again.
    let read = std::fs::read_to_string(&path).unwrap();
    assert!(read.lines().any(|l| l.starts_with(&format!("{me} {me} "))));
    std::fs::remove_file(&path).unwrap();
    // And `load` runs an iterator once, printing its output.
    let (ok, stdout, stderr) = run_load(&[&obj, "-d", "0"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("iter dump_task:"), "{stdout}");
}

#[test]
fn event_type_falls_back_to_dwarf_when_btf_lacks_the_record() {
    if !common::require_bpf() {
        return;
    }
    let obj = format!(
        "{}/../object/tests/fixtures/dwarf_event.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut tool, lines) = common::load_until_attached(
        &[obj.as_str(), "--event-type", "event", "-d", "10"].map(std::ffi::OsStr::new),
    );
    // SAFETY: getpgid has no preconditions.
    unsafe { libc::getpgid(0) };
    let me = std::process::id();
    let line = lines
        .map(|l| l.unwrap())
        .find(|l| l.contains(&format!("pid={me} ")))
        .expect("the record was printed");
    let _ = Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status();
    let _ = tool.wait();
    assert!(
        line.contains("stamp=42 pad=[1,2] flags=exited=1 level=5"),
        "{line}"
    );
    // An object with neither BTF nor DWARF for the type says where it looked.
    let stripped = format!(
        "{}/../object/tests/fixtures/minimal.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let (ok, _, stderr) = run_load(&[&stripped, "--event-type", "nosuch", "-d", "0"]);
    assert!(!ok);
    assert!(stderr.contains("nor in DWARF"), "{stderr}");
}

/// libbpf-bootstrap's `bootstrap.bpf.c`, unmodified (examples/bootstrap),
/// never puts `struct event` into BTF: `--event-type event` finds it in
/// the object's DWARF and decodes the exec record of a process we start.
#[test]
fn event_type_decodes_upstream_bootstrap_records_from_dwarf() {
    if !common::require_bpf() {
        return;
    }
    let obj = format!(
        "{}/../../examples/bootstrap/bootstrap.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut tool, lines) = common::load_until_attached(
        &[obj.as_str(), "--event-type", "event", "-d", "10"].map(std::ffi::OsStr::new),
    );
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let line = lines
        .map(|l| l.unwrap())
        .find(|l| l.contains(&format!("pid={pid} ")) && l.contains("exit_event=0"))
        .expect("the exec record was printed");
    let _ = Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status();
    let _ = tool.wait();
    assert!(line.contains("comm=\"true\""), "{line}");
    assert!(line.contains("filename=\"/bin/true\""), "{line}");
}

/// When the kernel rejects a program, `bpfkit load` gives the kernel's
/// reason and then bpfkit's own verifier's, which names the C line of the
/// unchecked dereference in `rejected.bpf.c`.
#[test]
fn a_kernel_rejection_comes_with_bpfkits_own_diagnosis() {
    if !common::require_bpf() {
        return;
    }
    let (ok, _, stderr) = run_load(&[&kernel_fixture("rejected.bpf.o"), "--load-only"]);
    assert!(!ok, "the kernel must reject rejected.bpf.o: {stderr}");
    let (kernel, ours) = stderr
        .split_once("bpfkit's verifier:")
        .unwrap_or_else(|| panic!("no bpfkit's verifier section: {stderr}"));
    assert!(
        kernel.contains("program `missing_null_check` rejected by the verifier"),
        "{stderr}"
    );
    assert!(kernel.contains("invalid mem access"), "{stderr}");
    assert!(ours.contains("rejects `missing_null_check`"), "{stderr}");
    assert!(ours.contains("rejected.bpf.c:18"), "{stderr}");
    assert!(ours.contains("*value += 1;"), "{stderr}");
    assert!(ours.contains("NULL"), "{stderr}");
}
