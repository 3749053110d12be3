//! Side by side with bpftrace, in one run (`cargo bench -p bpfkit-cli --bench tools`):
//! - startup: time from spawning the tool to its being attached (bpfkit's
//!   header; bpftrace's BEGIN output, which runs once its probes are attached),
//!   for bpfkit with its CO-RE cache warm and without it;
//! - overhead: cost per fork+exec of /bin/true with no tracer, with
//!   `bpfkit execsnoop`, and with the equivalent bpftrace program.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON) and, for the comparison, bpftrace.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BPFKIT: &str = env!("CARGO_BIN_EXE_bpfkit");
const BPFTRACE_PROGRAM: &str = r#"BEGIN { printf("ready\n"); }
tracepoint:syscalls:sys_enter_execve { printf("%d %s\n", pid, comm); }"#;

fn spawn_bpfkit() -> Child {
    spawn_bpfkit_with(false)
}

/// `cold`: without the CO-RE cache, as on the first run on a new kernel (the
/// kernel's BTF is read and parsed).
fn spawn_bpfkit_with(cold: bool) -> Child {
    let mut cmd = Command::new(BPFKIT);
    if cold {
        cmd.env("BPFKIT_NO_CORE_CACHE", "1");
    }
    cmd.arg("execsnoop")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bpfkit runs")
}

fn spawn_bpftrace() -> Option<Child> {
    Command::new("bpftrace")
        .args(["-e", BPFTRACE_PROGRAM])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Waits for the line that says the tool is attached; returns the elapsed time.
fn until_ready(child: &mut Child, started: Instant, ready: &str) -> Option<Duration> {
    let out = child.stdout.take()?;
    let mut lines = BufReader::new(out).lines();
    let elapsed = loop {
        let line = lines.next()?.ok()?;
        if line.contains(ready) {
            break started.elapsed();
        }
    };
    // Keep draining so the tool never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(elapsed)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn execs_per_call(n: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        Command::new("/bin/true").status().expect("/bin/true runs");
    }
    started.elapsed() / n
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for benchmark names.
    }
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok();
    const RUNS: usize = 7;
    let mut ours = Vec::new();
    let mut ours_cold = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        for (cold, into) in [(false, &mut ours), (true, &mut ours_cold)] {
            let started = Instant::now();
            let mut c = spawn_bpfkit_with(cold);
            into.push(until_ready(&mut c, started, "PCOMM").expect("bpfkit printed its header"));
            stop(c);
        }
        if have_bpftrace {
            let started = Instant::now();
            if let Some(mut c) = spawn_bpftrace() {
                if let Some(t) = until_ready(&mut c, started, "ready") {
                    theirs.push(t);
                }
                stop(c);
            }
        }
    }
    let ours = median(ours);
    let ours_cold = median(ours_cold);
    println!(
        "startup/bpfkit execsnoop  median of {RUNS}: {:>8.1} ms (CO-RE cache warm)",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "startup/bpfkit execsnoop  median of {RUNS}: {:>8.1} ms (no CO-RE cache: kernel BTF parsed)",
        ours_cold.as_secs_f64() * 1e3
    );
    if !theirs.is_empty() {
        let theirs = median(theirs);
        println!(
            "startup/bpftrace          median of {RUNS}: {:>8.1} ms",
            theirs.as_secs_f64() * 1e3
        );
        println!(
            "startup ratio (bpftrace / bpfkit): {:.1}x warm, {:.1}x cold",
            theirs.as_secs_f64() / ours.as_secs_f64(),
            theirs.as_secs_f64() / ours_cold.as_secs_f64()
        );
    } else {
        println!("startup/bpftrace: not installed, no comparison");
    }

    const EXECS: u32 = 300;
    let base = execs_per_call(EXECS);
    let c = spawn_bpfkit();
    std::thread::sleep(Duration::from_millis(500));
    let with_ours = execs_per_call(EXECS);
    stop(c);
    println!(
        "overhead/no tracer       {:>8.1} us per fork+exec",
        base.as_secs_f64() * 1e6
    );
    println!(
        "overhead/bpfkit          {:>8.1} us per fork+exec (+{:.1} us)",
        with_ours.as_secs_f64() * 1e6,
        (with_ours.as_secs_f64() - base.as_secs_f64()) * 1e6
    );
    if have_bpftrace {
        if let Some(mut c) = spawn_bpftrace() {
            let _ = until_ready(&mut c, Instant::now(), "ready");
            let with_theirs = execs_per_call(EXECS);
            stop(c);
            println!(
                "overhead/bpftrace        {:>8.1} us per fork+exec (+{:.1} us)",
                with_theirs.as_secs_f64() * 1e6,
                (with_theirs.as_secs_f64() - base.as_secs_f64()) * 1e6
            );
        }
    }
}
