//! Open + load + attach (until attached; teardown untimed) of one object (3
//! programs, 4 maps, CO-RE relocations: kernel/tests/fixtures/loadbench.bpf.o)
//! through the library's API (`EbpfLoader::load` + `Ebpf::attach_all`), by
//! bpfkit and, when `cc`
//! and libbpf's headers are present, by libbpf (`bpf_object__open_file`,
//! `bpf_object__load`, `bpf_program__attach`) in one run, reported side by
//! side with the ratio.
//!
//! `cargo bench -p bpfkit --bench load` (as root); set
//! `BPFKIT_BENCH_LOADS` to change the number of rounds.
//!
//! The headline is the first load in a fresh process, the fair comparison
//! (median of 7 processes each): bpfkit with no CO-RE cache (the kernel
//! applies CO-RE at load), bpfkit with its disk cache warm, and libbpf.
//! Loads repeated within one process are reported apart, as what they are:
//! bpfkit keeps what it read of the kernel; libbpf reads it every time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bpfkit::EbpfLoader;

const LIBBPF_HARNESS: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level l, const char *f, va_list a) { return 0; }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int rounds = atoi(argv[2]);
	struct bpf_link *links[16];
	libbpf_set_print(quiet);
	double first = 0, total = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
		if (!obj || bpf_object__load(obj)) { fprintf(stderr, "load failed\n"); return 1; }
		struct bpf_program *p;
		int n = 0;
		bpf_object__for_each_program(p, obj) {
			links[n] = bpf_program__attach(p);
			if (!links[n]) { fprintf(stderr, "attach failed\n"); return 1; }
			n++;
		}
		double took = now() - t0;
		total += took;
		if (r == 0)
			first = took;
		for (int i = 0; i < n; i++)
			bpf_link__destroy(links[i]);
		bpf_object__close(obj);
	}
	printf("%f %f\n", first, total);
	return 0;
}
"#;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kernel/tests/fixtures/loadbench.bpf.o")
}

/// One round: read, parse, load and attach (timed), then detach and
/// unload (not timed: the kernel's RCU grace periods on teardown cost
/// both loaders the same ~200 ms and would hide the difference).
fn bpfkit_round(path: &Path, disk_cache: bool) -> Duration {
    let t0 = Instant::now();
    let bpf = EbpfLoader::new()
        .core_cache(disk_cache)
        .load_file(path)
        .expect("load");
    let links = bpf.attach_all().expect("attach");
    let took = t0.elapsed();
    assert_eq!(links.len(), 3);
    drop(links);
    drop(bpf);
    took
}

/// `(first round, all rounds)` for libbpf; `Err` says why it could not run.
fn libbpf_rounds(path: &Path, rounds: u32) -> Result<(Duration, Duration), String> {
    if !Path::new("/usr/include/bpf/libbpf.h").exists() {
        return Err("libbpf headers not installed (Debian: libbpf-dev)".into());
    }
    let dir = std::env::temp_dir().join(format!("bpfkit-load-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (src, bin) = (dir.join("harness.c"), dir.join("harness"));
    std::fs::write(&src, LIBBPF_HARNESS).map_err(|e| e.to_string())?;
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lbpf")
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !cc.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&cc.stderr)
        ));
    }
    let out = Command::new(&bin)
        .arg(path)
        .arg(rounds.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!(
            "harness failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    match f[..] {
        [first, total] => Ok((
            Duration::from_secs_f64(first),
            Duration::from_secs_f64(total),
        )),
        _ => Err(format!("unexpected harness output: {text}")),
    }
}

/// A fresh process's first load: this bench binary run again in child
/// mode, printing the round's milliseconds.
fn fresh_process_round(disk_cache: bool) -> Duration {
    let out = Command::new(std::env::current_exe().expect("the bench binary"))
        .env(CHILD, if disk_cache { "cache" } else { "nocache" })
        .output()
        .expect("the bench runs itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let ms: f64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("child round printed {text:?}"));
    Duration::from_secs_f64(ms / 1e3)
}

const CHILD: &str = "BPFKIT_LOAD_BENCH_CHILD";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(mode) = std::env::var(CHILD) {
        let took = bpfkit_round(&fixture(), mode == "cache");
        println!("{}", took.as_secs_f64() * 1e3);
        return;
    }
    if let Err(why) = bpfkit::kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let rounds: u32 = std::env::var("BPFKIT_BENCH_LOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .max(2);
    let path = fixture();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "open + load + attach of {} (3 programs, 4 maps, CO-RE; detach untimed)",
        path.file_name().unwrap().to_string_lossy()
    );
    const PROCESSES: usize = 7;
    bpfkit_round(&path, true); // fills the disk cache
    let mut nocache = Vec::new();
    let mut cache = Vec::new();
    let mut libbpf = Vec::new();
    let mut libbpf_skip = None;
    for _ in 0..PROCESSES {
        nocache.push(fresh_process_round(false));
        cache.push(fresh_process_round(true));
        match libbpf_rounds(&path, 1) {
            Ok((first, _)) => libbpf.push(first),
            Err(why) => libbpf_skip = Some(why),
        }
    }
    let (nocache, cache) = (median(nocache), median(cache));
    println!("first load in a fresh process, median of {PROCESSES} processes:");
    println!(
        "  bpfkit, no CO-RE cache (kernel CO-RE): {:>8.2} ms",
        ms(nocache)
    );
    println!(
        "  bpfkit, CO-RE disk cache warm:         {:>8.2} ms",
        ms(cache)
    );
    match libbpf_skip {
        None => {
            let libbpf = median(libbpf);
            println!(
                "  libbpf:                                {:>8.2} ms",
                ms(libbpf)
            );
            println!(
                "  ratio bpfkit / libbpf (<1 means bpfkit is faster): {:.2}x without the cache, {:.2}x with it",
                nocache.as_secs_f64() / libbpf.as_secs_f64(),
                cache.as_secs_f64() / libbpf.as_secs_f64()
            );
        }
        Some(why) => println!("  libbpf: skipped: {why}"),
    }

    // Loads repeated in one process: what a long-running loader pays for
    // each further object (bpfkit keeps what it read of the kernel).
    let in_process: Duration = (0..rounds)
        .map(|_| bpfkit_round(&path, false))
        .sum::<Duration>()
        / rounds;
    println!("later loads in the same process, mean of {rounds}:");
    println!("  bpfkit: {:>8.2} ms per load", ms(in_process));
    if let Ok((_, total)) = libbpf_rounds(&path, rounds) {
        let lmean = total / rounds;
        println!("  libbpf: {:>8.2} ms per load", ms(lmean));
        println!(
            "  ratio bpfkit / libbpf: {:.2}x",
            in_process.as_secs_f64() / lmean.as_secs_f64()
        );
    }
}
