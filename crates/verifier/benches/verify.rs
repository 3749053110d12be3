//! bpfkit's verifier side by side with the running kernel's, on the larger
//! programs of the corpus that both accept: every object in `bpf/obj`, the
//! crates' test fixtures, `examples/*/`, and the libbpf-tools objects (as
//! `crates/cli/tests/libbpf_tools` extracts them, when the package is installed).
//!
//! For each program it prints the median time of bpfkit's
//! `Verifier::verify` (CO-RE applied once beforehand, as the kernel sees the
//! program) and of the kernel's verification, and the instructions each
//! processed (bpfkit's `Verdict::processed_insns`, the kernel's
//! `verified_insns`), then the totals.
//!
//! The kernel's side is its own `verification time` (the `BPF_LOG_STATS`
//! line of its log, bpf_check from start to end), median of 15 loads; the
//! ratio is against it. Also shown: what "kern ld µs" times: `Collection::load` of the object restricted to
//! that one program, all fds closed at once, minus `Collection::load` of the
//! same object with no program (its maps and BTF only), right after it: the
//! median of 15 such differences. That is the `BPF_PROG_LOAD` call (the
//! kernel's verification, plus its fixups and JIT) and bpfkit's relocation
//! of that program from the CO-RE cache. bpfkit's time is the median of up
//! to 11 runs (at least 3, fewer than 11 when they take over a second).
//!
//! `cargo bench -p bpfkit-verifier --bench verify`; `VERIFY_BENCH_MIN_INSNS`
//! sets what "larger" means (default 100 instruction slots). Without
//! `--bench` (as `cargo test --all-targets` runs it) it measures once, on
//! `bpf/obj` only. Without bpf() access it says so and measures nothing.

#[path = "../../cli/tests/libbpf_tools/mod.rs"]
mod libbpf_tools;

use bpfkit_kernel::{Collection, LoadOptions};
use bpfkit_object::{ObjectSpec, RelocTarget};
use bpfkit_verifier::{Program, Verifier, VerifyOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn objects_in(dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    found.sort();
    for p in found {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, p));
    }
}

/// The committed corpus: bpf/obj, every crate's test fixtures, the examples.
fn committed_objects(quick: bool) -> Vec<(String, PathBuf)> {
    let root = repo_root();
    let mut out = Vec::new();
    objects_in(&root.join("bpf/obj"), &mut out);
    if quick {
        return out;
    }
    for base in ["crates", "examples"] {
        let Ok(rd) = std::fs::read_dir(root.join(base)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for d in dirs {
            if base == "crates" {
                objects_in(&d.join("tests/fixtures"), &mut out);
            } else {
                objects_in(&d, &mut out);
            }
        }
    }
    out
}

fn parse_object(path: &Path) -> Option<ObjectSpec> {
    let mut spec = ObjectSpec::from_file(path).ok()?;
    if let Ok(config) = bpfkit_kernel::kconfig::kernel_config_for(&spec) {
        spec.apply_kconfig(&config).ok()?;
    }
    Some(spec)
}

/// The object as the kernel will see it: CO-RE applied against its BTF,
/// and without func_info when the kernel refuses the object's BTF (the
/// loader then loads the programs without it).
fn as_the_kernel_sees_it(spec: &ObjectSpec) -> Option<ObjectSpec> {
    let mut relocated = spec.clone();
    if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
        let vmlinux = bpfkit_kernel::btf::vmlinux().ok()?;
        let modules = bpfkit_kernel::btf::modules();
        let targets = modules
            .iter()
            .fold(bpfkit_btf::TargetBtfs::new(&vmlinux), |t, m| {
                t.with_module(m)
            });
        relocated.apply_core(targets).ok()?;
    }
    let btf_loads = match spec.kernel_btf(&bpfkit_kernel::features::btf_features()) {
        Ok(Some(blob)) => bpfkit_kernel::btf::load_btf(&blob).is_ok(),
        _ => false,
    };
    if !btf_loads {
        for p in relocated.programs.values_mut() {
            p.func_info.clear();
        }
    }
    Some(relocated)
}

/// `BPF_LOG_STATS`: the log gets only the closing statistics.
const BPF_LOG_STATS: u32 = 4;

/// `verification time N usec` of a kernel verifier log.
fn verification_time(log: &str) -> Option<Duration> {
    log.lines().find_map(|l| {
        let us = l
            .trim()
            .strip_prefix("verification time ")?
            .strip_suffix(" usec")?;
        us.trim().parse().ok().map(Duration::from_micros)
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One measured program.
struct Row {
    name: String,
    insns: usize,
    bpfkit: Duration,
    /// `BPF_PROG_LOAD` of the program (load with less load without).
    kernel: Duration,
    /// The kernel's `verification time` line (bpf_check, start to end).
    kernel_verify: Duration,
    bpfkit_processed: u64,
    kernel_processed: u32,
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        println!("SKIP: cannot use bpf(), which the kernel's side of this benchmark needs: {why}");
        return;
    }
    let min_insns: usize = std::env::var("VERIFY_BENCH_MIN_INSNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let (bpfkit_runs, kernel_runs) = if quick { (1, 1) } else { (11, 15) };

    let mut objects = committed_objects(quick);
    let tools_dir =
        std::env::temp_dir().join(format!("bpfkit-verify-bench-{}", std::process::id()));
    if !quick {
        std::fs::create_dir_all(&tools_dir).expect("temporary directory for libbpf-tools objects");
        let tools = libbpf_tools::corpus(&tools_dir);
        if tools.is_empty() {
            println!("note: libbpf-tools is not installed; its objects are not measured");
        }
        for (tool, path) in tools {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            objects.push((format!("libbpf-tools/{tool}:{file}"), path));
        }
    }

    let mut rows = Vec::new();
    let (mut small, mut not_both) = (0usize, Vec::new());
    for (file, path) in &objects {
        let Some(spec) = parse_object(path) else {
            continue;
        };
        let Some(relocated) = as_the_kernel_sees_it(&spec) else {
            continue;
        };
        for (name, prog) in &relocated.programs {
            let slots: usize = prog.insns.iter().map(|i| i.slots()).sum();
            if slots < min_insns {
                small += 1;
                continue;
            }
            // bpfkit does not model kfuncs and kernel symbols.
            if prog
                .relocations
                .iter()
                .any(|r| matches!(r.target, RelocTarget::Ksym { .. }))
            {
                not_both.push(format!("{file}:{name}: uses kernel symbols"));
                continue;
            }
            let mut one = spec.clone();
            one.programs.retain(|n, _| n == name);
            let mut no_program = one.clone();
            no_program.programs.clear();
            let kernel_processed = match Collection::load(&one, &LoadOptions::default()) {
                Ok(c) => c.programs[name].verifier_stats().verified_insns,
                Err(e) => {
                    let e = e.to_string();
                    let first = e.lines().next().unwrap_or("");
                    not_both.push(format!(
                        "{file}:{name}: the kernel does not load it: {first}"
                    ));
                    continue;
                }
            };
            let verifier = Verifier::new(prog.kind.prog_type);
            let verify = || {
                verifier.verify(
                    Program::Object {
                        object: &relocated,
                        program: prog,
                    },
                    &VerifyOptions::default(),
                )
            };
            let bpfkit_processed = match verify() {
                Ok(v) => v.processed_insns,
                Err(r) => {
                    not_both.push(format!("{file}:{name}: bpfkit rejects it: {}", r.message));
                    continue;
                }
            };
            // Up to `bpfkit_runs` runs, fewer when one run takes long.
            let mut samples = Vec::new();
            let started = Instant::now();
            while samples.len() < bpfkit_runs
                && (samples.len() < 3 || started.elapsed() < Duration::from_secs(1))
            {
                let t = Instant::now();
                std::hint::black_box(verify().is_ok());
                samples.push(t.elapsed());
            }
            let bpfkit = median(samples);
            // Pairs of loads, with the program and without, back to back so
            // that a slow moment of the machine hits both; the median of
            // their differences is the program's load.
            let mut differences = Vec::new();
            for _ in 0..kernel_runs {
                let t = Instant::now();
                drop(Collection::load(&one, &LoadOptions::default()).expect("loaded before"));
                let with = t.elapsed();
                let t = Instant::now();
                drop(Collection::load(&no_program, &LoadOptions::default()));
                differences.push(with.saturating_sub(t.elapsed()));
            }
            let kernel = median(differences);
            // The kernel's own measure of bpf_check, from its BPF_LOG_STATS line.
            let stats = LoadOptions {
                verifier_log_level: BPF_LOG_STATS,
                ..LoadOptions::default()
            };
            let mut verify_times = Vec::new();
            for _ in 0..kernel_runs {
                let c = Collection::load(&one, &stats).expect("loaded before");
                let log = c.programs[name]
                    .verifier_stats()
                    .log
                    .clone()
                    .unwrap_or_default();
                match verification_time(&log) {
                    Some(t) => verify_times.push(t),
                    None => {
                        panic!("{file}:{name}: no `verification time` in the kernel's log:\n{log}")
                    }
                }
            }
            let kernel_verify = median(verify_times);
            rows.push(Row {
                name: format!("{file}:{name}"),
                insns: slots,
                bpfkit,
                kernel,
                kernel_verify,
                bpfkit_processed,
                kernel_processed,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&tools_dir);

    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(7).max(7);
    println!(
        "{:width$}  {:>6}  {:>10}  {:>11}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}",
        "program",
        "insns",
        "bpfkit µs",
        "kern ver µs",
        "kern ld µs",
        "ratio",
        "proc bk",
        "proc kern",
        "proc ratio"
    );
    let proc_ratio = |b: u64, k: u64| b as f64 / k.max(1) as f64;
    let line = |name: &str,
                insns: usize,
                b: Duration,
                kv: Duration,
                kl: Duration,
                pb: u64,
                pk: u64| {
        println!(
            "{name:width$}  {insns:>6}  {:>10.1}  {:>11.1}  {:>9.1}  {:>7.3}  {pb:>9}  {pk:>9}  {:>9.2}",
            micros(b),
            micros(kv),
            micros(kl),
            micros(b) / micros(kv).max(0.001),
            proc_ratio(pb, pk),
        );
    };
    for r in &rows {
        let pk = u64::from(r.kernel_processed);
        line(
            &r.name,
            r.insns,
            r.bpfkit,
            r.kernel_verify,
            r.kernel,
            r.bpfkit_processed,
            pk,
        );
    }
    let total_b: Duration = rows.iter().map(|r| r.bpfkit).sum();
    let total_kv: Duration = rows.iter().map(|r| r.kernel_verify).sum();
    let total_kl: Duration = rows.iter().map(|r| r.kernel).sum();
    let proc_b: u64 = rows.iter().map(|r| r.bpfkit_processed).sum();
    let proc_k: u64 = rows.iter().map(|r| u64::from(r.kernel_processed)).sum();
    let insns: usize = rows.iter().map(|r| r.insns).sum();
    line("TOTAL", insns, total_b, total_kv, total_kl, proc_b, proc_k);
    let slower: Vec<&str> = rows
        .iter()
        .filter(|r| r.bpfkit >= r.kernel_verify)
        .map(|r| r.name.as_str())
        .collect();
    let over_2x: Vec<&str> = rows
        .iter()
        .filter(|r| {
            let (b, k) = (r.bpfkit_processed, u64::from(r.kernel_processed));
            b > 2 * k || k > 2 * b
        })
        .map(|r| r.name.as_str())
        .collect();
    println!(
        "{} programs of at least {min_insns} slots accepted by both ({small} smaller ones left out; \
         medians of up to {bpfkit_runs} bpfkit runs and of {kernel_runs} kernel loads); ratio: bpfkit \
         against the kernel's own `verification time` (BPF_LOG_STATS); kern ld: the program's \
         BPF_PROG_LOAD (load with less load without), which adds the kernel's fixups and JIT",
        rows.len()
    );
    println!(
        "bpfkit faster than the kernel's verification on {} of {}; not faster on: {}",
        rows.len() - slower.len(),
        rows.len(),
        if slower.is_empty() {
            "none".to_string()
        } else {
            slower.join(", ")
        }
    );
    println!(
        "processed instructions within 2x of the kernel's on {} of {}; outside: {}",
        rows.len() - over_2x.len(),
        rows.len(),
        if over_2x.is_empty() {
            "none".to_string()
        } else {
            over_2x.join(", ")
        }
    );
    for n in &not_both {
        println!("not measured: {n}");
    }
}
