//! How long the x86-64 JIT takes to compile, per program and per
//! instruction, for every program of the committed objects (each crate's
//! tests/fixtures and bpf/obj), and, for the largest program the kernel
//! loads, the JIT's compile time side by side with the kernel's own
//! verification of it (the `verification time` line of its
//! `BPF_LOG_STATS` log), in one run.
//!
//! `cargo bench -p bpfkit-jit --bench compile`. Compile times are the
//! median of 21 compiles of a fresh copy of the program. Without `--bench`
//! (as `cargo test --all-targets` runs it) each program is compiled once.
#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bpfkit_kernel::{Collection, LoadOptions};
use bpfkit_object::ObjectSpec;
use bpfkit_vm::{Program, Vm};

/// `BPF_LOG_STATS`: the kernel's log gets only its closing statistics.
const BPF_LOG_STATS: u32 = 4;

fn objects() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("tests/fixtures"))
        .collect();
    dirs.push(root.join("bpf/obj"));
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    out.sort();
    out
}

/// One compiled program.
struct Row {
    object: String,
    program: String,
    slots: usize,
    compile: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The kernel's `verification time` of `program` in `spec`, when it loads.
fn kernel_verification(spec: &ObjectSpec, program: &str) -> Result<Duration, String> {
    bpfkit_kernel::check_bpf_access().map_err(|e| format!("bpf() is not usable: {e}"))?;
    let mut one = spec.clone();
    one.programs.retain(|n, _| n == program);
    let opts = LoadOptions {
        verifier_log_level: BPF_LOG_STATS,
        ..LoadOptions::default()
    };
    let mut times = Vec::new();
    for _ in 0..15 {
        let c = Collection::load(&one, &opts).map_err(|e| e.to_string())?;
        let log = c.programs[program]
            .verifier_stats()
            .log
            .clone()
            .unwrap_or_default();
        let us = log
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("verification time ")?
                    .strip_suffix(" usec")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("no `verification time` in the kernel's log: {log}"))?;
        times.push(Duration::from_micros(us));
    }
    Ok(median(times))
}

#[cfg(target_arch = "x86_64")]
fn main() {
    let runs = if std::env::args().any(|a| a == "--bench") {
        21
    } else {
        1
    };
    let rows = Arc::new(Mutex::new(Vec::new()));
    let mut specs = Vec::new();
    for path in objects() {
        let object = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(mut spec) = ObjectSpec::from_file(&path) else {
            continue;
        };
        if let Ok(config) = bpfkit_kernel::kconfig::kernel_config_for(&spec) {
            if spec.apply_kconfig(&config).is_err() {
                continue;
            }
        }
        // The VM prepares each program (maps and calls resolved) and hands
        // it here, where a copy is compiled `runs` times.
        let sink = Arc::clone(&rows);
        let name = object.clone();
        let time = move |p: &mut Program| {
            let mut samples = Vec::new();
            for _ in 0..runs {
                let mut copy = p.clone();
                let t = Instant::now();
                bpfkit_jit::compile(&mut copy).map_err(|e| e.to_string())?;
                samples.push(t.elapsed());
            }
            sink.lock().unwrap().push(Row {
                object: name.clone(),
                program: String::new(),
                slots: p.slots(),
                compile: median(samples),
            });
            Ok(())
        };
        let before = rows.lock().unwrap().len();
        let Ok(loaded) = Vm::new().load_object_with(&spec, &time) else {
            rows.lock().unwrap().truncate(before);
            continue;
        };
        // Programs are prepared in name order, as the loaded map lists them.
        let mut rows = rows.lock().unwrap();
        for (row, name) in rows[before..].iter_mut().zip(loaded.programs.keys()) {
            row.program = name.clone();
        }
        specs.push((object, spec));
    }
    let rows = std::mem::take(&mut *rows.lock().unwrap());
    println!(
        "{:<28} {:<36} {:>6} {:>11} {:>10}",
        "object", "program", "slots", "compile µs", "ns/insn"
    );
    let per_insn = |r: &Row| r.compile.as_nanos() as f64 / r.slots.max(1) as f64;
    for r in &rows {
        println!(
            "{:<28} {:<36} {:>6} {:>11.1} {:>10.1}",
            r.object,
            r.program,
            r.slots,
            r.compile.as_secs_f64() * 1e6,
            per_insn(r)
        );
    }
    let slots: usize = rows.iter().map(|r| r.slots).sum();
    let total: Duration = rows.iter().map(|r| r.compile).sum();
    println!(
        "{} programs, {slots} instruction slots: {:.1} µs in all, {:.1} ns per instruction",
        rows.len(),
        total.as_secs_f64() * 1e6,
        total.as_nanos() as f64 / slots.max(1) as f64
    );
    // A compile's fixed cost (prologue, exits, the executable mapping)
    // shows in the smallest program.
    if let Some(r) = rows.iter().min_by_key(|r| (r.slots, r.compile)) {
        println!(
            "smallest program: {}:{} ({} slots): {:.1} µs (about the fixed cost per compile)",
            r.object,
            r.program,
            r.slots,
            r.compile.as_secs_f64() * 1e6
        );
    }
    // The largest programs first, until one the kernel loads.
    let mut by_size: Vec<&Row> = rows.iter().collect();
    by_size.sort_by_key(|r| std::cmp::Reverse(r.slots));
    for r in by_size {
        let spec = &specs.iter().find(|(o, _)| *o == r.object).unwrap().1;
        match kernel_verification(spec, &r.program) {
            Ok(kernel) => {
                println!(
                    "largest program the kernel loads: {}:{} ({} slots): JIT compile {:.1} µs \
                     ({:.0} ns per instruction), kernel verification {:.1} µs, ratio {:.3}",
                    r.object,
                    r.program,
                    r.slots,
                    r.compile.as_secs_f64() * 1e6,
                    per_insn(r),
                    kernel.as_secs_f64() * 1e6,
                    r.compile.as_secs_f64() / kernel.as_secs_f64().max(1e-9)
                );
                return;
            }
            Err(e) => println!("{}:{}: not compared: {e}", r.object, r.program),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("the JIT has no back end for this architecture");
}
