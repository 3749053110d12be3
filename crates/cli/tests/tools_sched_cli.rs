//! runqlen and memleak as users run them, against the running kernel.

mod common;

use common::*;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Spins `n` threads until the returned flag is set.
fn busy_threads(n: usize) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let handles = (0..n)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    (stop, handles)
}

#[test]
fn runqlen_sees_waiting_tasks_when_cpus_are_oversubscribed() {
    if !require_bpf() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Three runnable threads per CPU: two of them wait at any sample.
    let (stop, handles) = busy_threads(3 * cpus);
    let out = Command::new(BIN)
        .args(["runqlen", "--json", "-C", "-F", "199", "-d", "1.5"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert!(out.status.success());
    let hists = json_lines(&out.stdout);
    assert_eq!(
        hists.len(),
        bpfkit_kernel::fs::online_cpus().len(),
        "{hists:?}"
    );
    let mut waiting = 0;
    let mut samples = 0;
    for h in &hists {
        assert_eq!(h["unit"], "runqlen");
        assert!(h["cpu"].is_u64());
        let slots: Vec<u64> = serde_json::from_value(h["slots"].clone()).unwrap();
        assert_eq!(slots.len(), 32);
        assert_eq!(h["samples"], slots.iter().sum::<u64>());
        samples += slots.iter().sum::<u64>();
        waiting += slots[1..].iter().sum::<u64>();
    }
    // ~199 Hz x 1.5 s x CPUs; most samples find queued tasks.
    assert!(samples > 100, "only {samples} samples");
    assert!(
        waiting * 2 > samples,
        "{waiting} of {samples} samples saw a waiting task"
    );
}

#[test]
fn runqlen_text_histogram_and_bad_frequency() {
    if !require_bpf() {
        return;
    }
    let out = Command::new(BIN)
        .args(["runqlen", "-d", "0.5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Sampling run queue length... Hit Ctrl-C to end.\n"),
        "{text}"
    );
    assert!(
        text.contains("     runqlen       : count     distribution\n"),
        "{text}"
    );
    let bad = Command::new(BIN)
        .args(["runqlen", "-F", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 1 Hz"));
}

/// Leaks `n` blocks of `size` bytes from one function: the place memleak
/// must name.
#[no_mangle]
#[inline(never)]
pub fn bpfkit_test_leak_blocks(n: usize, size: usize) -> Vec<usize> {
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        // SAFETY: malloc has no preconditions; the blocks are never freed.
        blocks.push(unsafe { libc::malloc(size) } as usize);
    }
    blocks
}

/// The reported site whose innermost frame is `bpfkit_test_leak_blocks`.
fn leak_site(sites: &[serde_json::Value]) -> &serde_json::Value {
    sites
        .iter()
        .find(|s| {
            s["stack"][0]
                .as_str()
                .is_some_and(|f| f.starts_with("bpfkit_test_leak_blocks+"))
        })
        .unwrap_or_else(|| panic!("no site names bpfkit_test_leak_blocks: {sites:?}"))
}

/// Allocates and frees `n` blocks: outstanding for no time at all.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bpfkit_test_alloc_and_free(n: usize, size: usize) {
    for _ in 0..n {
        // SAFETY: the block comes from malloc and is freed once.
        unsafe { libc::free(std::hint::black_box(libc::malloc(size))) };
    }
}

#[test]
fn memleak_names_the_function_that_leaked_and_counts_its_blocks() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id().to_string();
    let mut tool = Command::new(BIN)
        .args([
            "memleak", "-p", &me, "--older", "0", "--json", "-z", "20000", "-Z", "30000", "60", "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool prints nothing before its first report in JSON mode; give
    // the uprobes time to attach.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let leaked = bpfkit_test_leak_blocks(7, 24_680);
    bpfkit_test_alloc_and_free(5, 25_000);
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SIGINT: the tool prints its report and exits.
    Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status()
        .unwrap();
    let status = tool.wait().unwrap();
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(tool.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(tool.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let sites = json_lines(&stdout);
    let site = leak_site(&sites);
    assert_eq!(site["allocations"], 7);
    assert_eq!(site["bytes"], 7 * 24_680);
    // Freed blocks are not outstanding; nothing else is in the size window.
    assert_eq!(sites.len(), 1, "{sites:?}");
    drop(leaked);
}

/// The child of `memleak_ends_with_a_final_report_when_its_target_exits`:
/// run by that test (in a process of its own, through the test harness),
/// it leaks when told to on stdin, says so, and exits.
#[test]
#[ignore = "a child process of memleak_ends_with_a_final_report_when_its_target_exits"]
fn memleak_target_child() {
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let leaked = bpfkit_test_leak_blocks(3, 24_680);
    println!("leaked");
    std::mem::forget(leaked);
}

#[test]
fn memleak_ends_with_a_final_report_when_its_target_exits() {
    if !require_bpf() {
        return;
    }
    use std::io::{BufRead, Write};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "memleak_target_child",
            "--nocapture",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Past its exec: the test harness runs it and it says so.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
    }
    let mut tool = Command::new(BIN)
        .args([
            "memleak", "-p", &pid, "--older", "0", "--json", "-z", "20000", "-Z", "30000", "600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool prints its header on stderr once attached.
    let mut tool_err = std::io::BufReader::new(tool.stderr.take().unwrap());
    let mut header = String::new();
    tool_err.read_line(&mut header).unwrap();
    assert!(header.contains("Attaching to pid"), "{header}");
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    while !line.contains("leaked") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
    }
    child.wait().unwrap();
    // With a 600 s interval, only the target's exit ends the tool.
    let status = tool.wait().unwrap();
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(tool.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut tool_err, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains(&format!("process {pid} exited")), "{rest}");
    let sites = json_lines(&stdout);
    let site = leak_site(&sites);
    assert_eq!(site["allocations"], 3);
}
