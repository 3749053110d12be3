//! Side by side in one run (`cargo bench -p bpfkit-cli --bench tools`):
//! `bpfkit execsnoop`, libbpf-tools' execsnoop (the C tool of the Debian
//! package `libbpf-tools`, which does the same work: argv capture through a
//! buffer), and a one-tracepoint bpftrace program (which does less):
//! - startup: time from spawning the tool to its being attached (its header,
//!   or bpftrace's BEGIN output, which runs once its probes are attached);
//!   bpfkit with its CO-RE cache warm, and cold (no cache: the kernel applies
//!   CO-RE at load). libbpf-tools' execsnoop runs under `stdbuf -oL`, since
//!   it prints its header with stdio, which a pipe would buffer until exit;
//! - overhead: cost per fork+exec of /bin/true with no tracer and with each.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON); the peers are compared when
//! installed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BPFKIT: &str = env!("CARGO_BIN_EXE_bpfkit");
const BPFTRACE_PROGRAM: &str = r#"BEGIN { printf("ready\n"); }
tracepoint:syscalls:sys_enter_execve { printf("%d %s\n", pid, comm); }"#;

/// A tracer under comparison: how to start it, and the line that says it
/// is attached.
struct Tracer {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    ready: &'static str,
}

const LIBBPF_TOOLS_EXECSNOOP: &str = "/usr/sbin/execsnoop";

fn tracers() -> Vec<Tracer> {
    let mut t = vec![
        Tracer {
            name: "bpfkit execsnoop (CO-RE cache warm)",
            program: BPFKIT,
            args: &["execsnoop"],
            env: &[],
            ready: "PCOMM",
        },
        Tracer {
            name: "bpfkit execsnoop (cold: no CO-RE cache)",
            program: BPFKIT,
            args: &["execsnoop"],
            env: &[("BPFKIT_NO_CORE_CACHE", "1")],
            ready: "PCOMM",
        },
    ];
    if std::path::Path::new(LIBBPF_TOOLS_EXECSNOOP).exists() {
        t.push(Tracer {
            name: "libbpf-tools execsnoop (C)",
            program: "stdbuf",
            args: &["-oL", LIBBPF_TOOLS_EXECSNOOP],
            env: &[],
            ready: "PCOMM",
        });
    }
    if Command::new("bpftrace").arg("--version").output().is_ok() {
        t.push(Tracer {
            name: "bpftrace one-tracepoint script",
            program: "bpftrace",
            args: &["-e", BPFTRACE_PROGRAM],
            env: &[],
            ready: "ready",
        });
    }
    t
}

fn spawn(t: &Tracer) -> Child {
    Command::new(t.program)
        .args(t.args)
        .envs(t.env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", t.name))
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
    let tracers = tracers();
    const RUNS: usize = 7;
    // Interleaved, so that drift in the machine's load affects all alike.
    let mut startup: Vec<Vec<Duration>> = vec![Vec::new(); tracers.len()];
    for _ in 0..RUNS {
        for (t, into) in tracers.iter().zip(&mut startup) {
            let started = Instant::now();
            let mut c = spawn(t);
            match until_ready(&mut c, started, t.ready) {
                Some(d) => into.push(d),
                None => eprintln!("{}: never said it was ready", t.name),
            }
            stop(c);
        }
    }
    let startup: Vec<Option<Duration>> = startup
        .into_iter()
        .map(|v| (!v.is_empty()).then(|| median(v)))
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (t, d) in tracers.iter().zip(&startup) {
        if let Some(d) = d {
            println!(
                "startup/{:<42} median of {RUNS}: {:>7.1} ms",
                t.name,
                ms(*d)
            );
        }
    }
    if let (Some(warm), Some(cold)) = (startup[0], startup[1]) {
        for (t, d) in tracers.iter().zip(&startup).skip(2) {
            if let Some(d) = d {
                println!(
                    "startup ratio {} / bpfkit: {:.1}x warm, {:.1}x cold",
                    t.name,
                    d.as_secs_f64() / warm.as_secs_f64(),
                    d.as_secs_f64() / cold.as_secs_f64()
                );
            }
        }
    }

    // Overhead: rounds of execs with no tracer and under each tracer in
    // turn, so that the machine's drift falls on all alike; medians.
    const EXECS: u32 = 100;
    const ROUNDS: usize = 5;
    // The warm and cold bpfkit runs attach the same programs: one row.
    let traced: Vec<&Tracer> = tracers.iter().skip(1).collect();
    let mut base = Vec::new();
    let mut with: Vec<Vec<Duration>> = vec![Vec::new(); traced.len()];
    for _ in 0..ROUNDS {
        base.push(execs_per_call(EXECS));
        for (t, into) in traced.iter().zip(&mut with) {
            let mut c = spawn(t);
            if until_ready(&mut c, Instant::now(), t.ready).is_some() {
                into.push(execs_per_call(EXECS));
            }
            stop(c);
        }
    }
    let base = median(base);
    println!(
        "overhead/no tracer                                 {:>7.1} us per fork+exec (median of {ROUNDS} x {EXECS})",
        base.as_secs_f64() * 1e6
    );
    let mut added = Vec::new();
    for (t, w) in traced.iter().zip(with) {
        if w.is_empty() {
            continue;
        }
        let w = median(w);
        let plus = w.as_secs_f64() - base.as_secs_f64();
        println!(
            "overhead/{:<42} {:>7.1} us per fork+exec (+{:.1} us)",
            t.name,
            w.as_secs_f64() * 1e6,
            plus * 1e6
        );
        added.push((t.name, plus));
    }
    if let Some((_, ours)) = added.first() {
        for (name, theirs) in added.iter().skip(1) {
            println!(
                "overhead ratio {name} / bpfkit (added cost per exec): {:.2}x",
                theirs / ours
            );
        }
    }
}
