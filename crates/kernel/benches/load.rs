//! Open + load + attach (until attached; teardown untimed) of one object (3 programs, 4 maps, CO-RE
//! relocations: tests/fixtures/loadbench.bpf.o), by bpfkit and, when `cc`
//! and libbpf's headers are present, by libbpf (`bpf_object__open_file`,
//! `bpf_object__load`, `bpf_program__attach`) in one run, reported side by
//! side with the ratio.
//!
//! `cargo bench -p bpfkit-kernel --bench load` (as root); set
//! `BPFKIT_BENCH_LOADS` to change the number of rounds.
//!
//! bpfkit parses the kernel's BTF once per process and keeps it; libbpf
//! parses it for every object it loads. The first bpfkit round (which pays
//! for the parse) is reported on its own, so both the cold and the warm
//! figure are visible.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bpfkit_kernel::{Collection, LoadOptions};
use bpfkit_object::ObjectSpec;

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
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loadbench.bpf.o")
}

/// One round: read, parse, load and attach (timed), then detach and
/// unload (not timed: the kernel's RCU grace periods on teardown cost
/// both loaders the same ~200 ms and would hide the difference).
fn bpfkit_round(path: &Path, disk_cache: bool) -> Duration {
    let t0 = Instant::now();
    let bytes = std::fs::read(path).expect("read the object");
    let spec = ObjectSpec::parse(&bytes).expect("parse");
    let opts = LoadOptions {
        no_core_cache: !disk_cache,
        ..LoadOptions::default()
    };
    let coll = Collection::load(&spec, &opts).expect("load");
    let (links, skipped) = coll.auto_attach();
    let took = t0.elapsed();
    assert!(skipped.is_empty() && links.len() == 3, "{skipped:?}");
    drop(links);
    drop(coll);
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let rounds: u32 = std::env::var("BPFKIT_BENCH_LOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .max(2);
    let path = fixture();
    println!(
        "open + load + attach of {} (3 programs, 4 maps, CO-RE; detach untimed), {rounds} rounds",
        path.file_name().unwrap().to_string_lossy()
    );
    // Without the disk cache: the first round reads and parses the kernel's
    // BTF, as a fresh process on a fresh boot does; later rounds reuse it.
    let first = bpfkit_round(&path, false);
    let rest: Duration = (1..rounds).map(|_| bpfkit_round(&path, false)).sum();
    let bpfkit_mean = (first + rest) / rounds;
    let warm_mean = rest / (rounds - 1);
    bpfkit_round(&path, true); // fills the disk cache
    let cached: Duration = (0..rounds)
        .map(|_| bpfkit_round(&path, true))
        .sum::<Duration>()
        / rounds;
    println!(
        "  bpfkit: first round {:>8.2} ms (parses kernel BTF), then {:>8.2} ms per round; mean {:>8.2} ms",
        first.as_secs_f64() * 1e3,
        warm_mean.as_secs_f64() * 1e3,
        bpfkit_mean.as_secs_f64() * 1e3
    );
    println!(
        "  bpfkit: {:>8.2} ms per round with the CO-RE disk cache (what a second process pays)",
        cached.as_secs_f64() * 1e3
    );
    match libbpf_rounds(&path, rounds) {
        Ok((lfirst, total)) => {
            let lmean = total / rounds;
            println!(
                "  libbpf: first round {:>8.2} ms, mean {:>8.2} ms per round",
                lfirst.as_secs_f64() * 1e3,
                lmean.as_secs_f64() * 1e3
            );
            println!(
                "  ratio (libbpf / bpfkit, >1 means bpfkit is faster): first round {:.2}x, mean {:.2}x",
                lfirst.as_secs_f64() / first.as_secs_f64(),
                lmean.as_secs_f64() / bpfkit_mean.as_secs_f64()
            );
        }
        Err(why) => println!("  libbpf: skipped: {why}"),
    }
}
