//! The tracing tools as users run them, against the running kernel.

use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn require_bpf() -> bool {
    match bpfkit_kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIP: cannot use bpf(): {why}");
            false
        }
    }
}

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

#[test]
fn opensnoop_sees_a_temp_file_opened() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id();
    let tool = Command::new(BIN)
        .args(["opensnoop", "-p", &me.to_string(), "--json", "-d", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let path = std::env::temp_dir().join(format!("bpfkit-opensnoop-{me}"));
    std::fs::write(&path, b"x").unwrap();
    let _ = std::fs::File::open(path.with_extension("missing"));
    let out = tool.wait_with_output().unwrap();
    std::fs::remove_file(&path).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
