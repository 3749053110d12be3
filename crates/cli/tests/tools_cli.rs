//! The tracing tools as users run them, against the running kernel.

mod common;

use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn execsnoop_reports_exact_args_and_failed_execs() {
    if !require_bpf() {
        return;
    }
    let tool = Command::new(BIN)
        .args(["execsnoop", "-x", "--json", "-d", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut ok = Command::new("/bin/true")
        .args(["hello", "execsnoop"])
        .spawn()
        .unwrap();
    let ok_pid = ok.id();
    ok.wait().unwrap();
    let failed = Command::new("/nonexistent/bpfkit-test").spawn();
    assert!(failed.is_err(), "the exec itself fails");
    let out = tool.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let me = std::process::id();
    let e = events
        .iter()
        .find(|e| e["pid"] == ok_pid)
        .unwrap_or_else(|| panic!("no event for pid {ok_pid}: {stdout}"));
    assert_eq!(e["comm"], "true");
    assert_eq!(e["ppid"], me);
    assert_eq!(e["ret"], 0);
    assert_eq!(
        e["args"],
        serde_json::json!(["/bin/true", "hello", "execsnoop"])
    );
    assert_eq!(e["truncated"], false);
    assert!(e["time"].as_str().is_some_and(|t| t.len() == 8));
    let f = events
        .iter()
        .find(|e| e["args"][0] == "/nonexistent/bpfkit-test")
        .unwrap_or_else(|| panic!("no failed exec event: {stdout}"));
    assert_eq!(f["ret"], -2, "ENOENT");
    assert_eq!(f["ppid"], me);
}

#[test]
fn execsnoop_text_header_and_max_args_truncation() {
    if !require_bpf() {
        return;
    }
    let tool = Command::new(BIN)
        .args(["execsnoop", "--max-args", "2", "-n", "^true$", "-d", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("/bin/true")
        .args(["a", "b", "c"])
        .status()
        .unwrap();
    Command::new("/bin/echo")
        .arg("filtered-out")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let out = tool.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("TIME     PCOMM            PID     PPID    UID    RET ARGS")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter().any(|l| l.ends_with("/bin/true a ...")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("filtered-out"),
        "-n filters by command name: {stdout}"
    );
}

/// Runs `opensnoop -p <this process> --json` around `act`: from when it
/// says it is attached (its header, on stderr in JSON mode) until it is
/// stopped with SIGINT. Returns its events and its stdout.
fn opensnoop_this_process(act: impl FnOnce()) -> (Vec<serde_json::Value>, String) {
    use std::io::{BufRead, Read};
    let me = std::process::id();
    let mut tool = Command::new(BIN)
        .args(["opensnoop", "-p", &me.to_string(), "--json", "-d", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(tool.stderr.take().unwrap());
    let mut header = String::new();
    err.read_line(&mut header).unwrap();
    act();
    Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status()
        .unwrap();
    let mut stdout = String::new();
    tool.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(tool.wait().unwrap().success(), "{header}");
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (events, stdout)
}

#[test]
fn opensnoop_sees_a_temp_file_opened() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id();
    let path = std::env::temp_dir().join(format!("bpfkit-opensnoop-{me}"));
    let (events, stdout) = opensnoop_this_process(|| {
        std::fs::write(&path, b"x").unwrap();
        let _ = std::fs::File::open(path.with_extension("missing"));
    });
    std::fs::remove_file(&path).unwrap();
    let created = events
        .iter()
        .find(|e| e["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no open of {}: {stdout}", path.display()));
    assert_eq!(created["pid"], me);
    assert!(created["fd"].as_i64().unwrap() >= 0);
    assert_eq!(created["err"], 0);
    let flags = created["flags"].as_u64().unwrap();
    assert_ne!(flags & 0o100, 0, "O_CREAT");
    let missing = events
        .iter()
        .find(|e| e["path"] == path.with_extension("missing").to_str().unwrap())
        .expect("the failed open");
    assert_eq!(
        (missing["fd"].as_i64(), missing["err"].as_i64()),
        (Some(-1), Some(2))
    );
    assert!(
        events.iter().all(|e| e["pid"] == me),
        "-p filters by process"
    );
}

#[test]
fn opensnoop_reads_a_path_whose_page_is_not_resident_at_entry() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id();
    // The path lives in a file mapped but never touched: at sys_enter its
    // page is not in this process's page tables, which a BPF helper cannot
    // fault in; the kernel's own copy of the path faults it in.
    let target = std::env::temp_dir().join(format!("bpfkit-opensnoop-cold-{me}"));
    let holder = std::env::temp_dir().join(format!("bpfkit-opensnoop-path-{me}"));
    let mut text = target.to_str().unwrap().as_bytes().to_vec();
    text.push(0);
    std::fs::write(&holder, &text).unwrap();
    let file = std::fs::File::open(&holder).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh private read-only mapping of an open file, unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    let (events, stdout) = opensnoop_this_process(|| {
        // SAFETY: the mapping holds a NUL-terminated path.
        let fd = unsafe { libc::open(map as *const libc::c_char, libc::O_RDONLY) };
        assert_eq!(fd, -1, "the target does not exist");
    });
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(map, 4096) };
    std::fs::remove_file(&holder).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["path"] == target.to_str().unwrap() && e["err"] == 2),
        "the open of an untouched page's path was not reported with its path: {stdout}"
    );
}

#[test]
fn syscount_counts_a_known_number_of_calls() {
    if !require_bpf() {
        return;
    }
    // getppid is a call nothing else in this process makes.
    let me = std::process::id();
    let tool = Command::new(BIN)
        .args([
            "syscount",
            "-p",
            &me.to_string(),
            "--json",
            "-d",
            "3",
            "-T",
            "50",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..500 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    let out = tool.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = rows
        .iter()
        .find(|r| r["syscall"] == "getppid")
        .unwrap_or_else(|| panic!("no getppid row: {stdout}"));
    assert_eq!(row["count"], 500);
}

#[test]
fn execsnoop_cgroup_and_pid_filters() {
    if !require_bpf() {
        return;
    }
    let Some(root) = cgroup2_root() else {
        common::skip("no cgroup v2 hierarchy is mounted");
        return;
    };
    let dir = root.join(format!("bpfkit-execsnoop-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let me = std::process::id().to_string();
    let cg = Command::new(BIN)
        .args(["execsnoop", "--json", "-d", "4", "--cgroup"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let by_pid = Command::new(BIN)
        .args(["execsnoop", "--json", "-d", "4", "-p", &me])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Inside the cgroup: a shell that moves itself there, then runs true.
    let script = format!(
        "echo $$ > {}/cgroup.procs && /bin/true inside-cgroup; /bin/true inside-again",
        dir.display()
    );
    let shell = Command::new("bash").args(["-c", &script]).spawn().unwrap();
    let shell_pid = shell.id();
    shell.wait_with_output().unwrap();
    Command::new("/bin/true")
        .arg("outside-cgroup")
        .status()
        .unwrap();
    let cg_events = json_lines(&cg.wait_with_output().unwrap().stdout);
    let pid_events = json_lines(&by_pid.wait_with_output().unwrap().stdout);
    std::fs::remove_dir(&dir).unwrap();

    let args = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                e["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(
        args(&cg_events),
        ["/bin/true inside-cgroup", "/bin/true inside-again"],
        "only execs inside the cgroup"
    );
    // -p: the test's own children (the shell, the outside true, and what the
    // shell execs in place of itself), not the shell's children.
    let pid_args = args(&pid_events);
    assert!(
        pid_args.iter().any(|a| a.contains("bash -c")),
        "{pid_args:?}"
    );
    assert!(
        pid_args.contains(&"/bin/true outside-cgroup".to_string()),
        "{pid_args:?}"
    );
    assert!(
        !pid_args.contains(&"/bin/true inside-cgroup".to_string()),
        "{pid_args:?}"
    );
    assert!(pid_events
        .iter()
        .all(|e| e["pid"] == shell_pid || e["ppid"] == std::process::id()));
    let bad = Command::new(BIN)
        .args(["execsnoop", "--cgroup", "/nonexistent/cgroup"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cgroup /nonexistent/cgroup"));
}

#[test]
fn lost_events_are_counted_when_the_ring_is_tiny() {
    if !require_bpf() {
        return;
    }
    // One page holds a single 2.6 KB exec record: with the reader stopped,
    // all but one of a burst of execs must be counted as lost.
    let tool = Command::new(BIN)
        .args(["execsnoop", "--json", "-d", "5", "-n", "^true$"])
        .env("BPFKIT_RINGBUF_BYTES", "4096")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = tool.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    for _ in 0..20 {
        Command::new("/bin/true").arg("burst").status().unwrap();
    }
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tool.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let received = json_lines(&out.stdout)
        .iter()
        .filter(|e| e["args"][1] == "burst")
        .count();
    let lost: u64 = stderr
        .split_whitespace()
        .zip(stderr.split_whitespace().skip(1))
        .find(|(_, w)| *w == "events")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no loss report on stderr: {stderr}"));
    assert!(received <= 1, "{received} records fit in one page?");
    // Other execs on the machine may be lost too, so at least ours.
    assert!(
        lost as usize >= 20 - received,
        "lost {lost}, received {received}"
    );
    let bad = Command::new(BIN)
        .args(["execsnoop", "-d", "1"])
        .env("BPFKIT_RINGBUF_BYTES", "1000")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("power of two"));
}
