//! Ring buffer consumption: 10 million 64-byte records produced by an XDP
//! program that `BPF_PROG_TEST_RUN` runs in a tight loop (on another
//! thread), consumed by the library's `RingBuf` one record at a time
//! (`next()`, zero-copy); reports events/s and losses. When `cc` and
//! libbpf's headers are present, the same program and the same loop run
//! under libbpf's `ring_buffer__poll` / `ring_buffer__consume` for comparison.
//!
//! `cargo bench -p bpfkit --bench ringbuf` (as root); set
//! `BPFKIT_BENCH_EVENTS` to change the count.

#[path = "../../kernel/tests/common/mod.rs"]
mod common;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bpfkit::abi::{MapType, ProgramType};
use bpfkit::isa::{encode, ByteOrder, Imm64, Insn};
use bpfkit::kernel::{KernelMap, MapDefinition};
use bpfkit::{Map, RingBuf};

/// Data area of the ring: 16 MiB, about 230 000 records of 72 bytes.
const RING_BYTES: u32 = 16 << 20;
/// Program runs per `BPF_PROG_TEST_RUN`.
const BATCH: u32 = 50_000;

#[derive(Clone, Copy)]
struct Outcome {
    received: u64,
    produced: u64,
    elapsed: Duration,
}

impl Outcome {
    fn print(&self, who: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{who:>8}: {:>9} events in {secs:.3} s = {:>6.2} M events/s consumed, {} lost ({:.2}%)",
            self.received,
            self.received as f64 / secs / 1e6,
            self.produced - self.received,
            (self.produced - self.received) as f64 * 100.0 / self.produced.max(1) as f64
        );
    }
}

/// Records that fit in the ring with room to spare (72 bytes each).
const FILL: u32 = (RING_BYTES / 72) * 9 / 10;

fn bpfkit_run(events: u64, drain_only: bool) -> Outcome {
    let counter = KernelMap::create(
        &MapDefinition::new("counter", MapType::Array, 4, 8, 1),
        None,
    )
    .expect("counter map");
    let rb = KernelMap::create(
        &MapDefinition::new("bench_rb", MapType::Ringbuf, 0, 0, RING_BYTES),
        None,
    )
    .expect("ring buffer");
    let prog = common::load(
        "bench_rb",
        ProgramType::Xdp,
        &common::ringbuf_output_prog(counter.as_fd(), rb.as_fd()),
    )
    .expect("load");
    let mut reader = RingBuf::new(Map::from_kernel(rb)).expect("reader");
    let (mut received, mut next, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut on_record = |rec: &[u8]| {
        let seq = u64::from_ne_bytes(rec[..8].try_into().unwrap_or_default());
        out_of_order += u64::from(seq < next);
        next = seq + 1;
        received += 1;
    };
    // The iterator style: one record at a time, borrowed from the ring.
    let drain = |reader: &mut RingBuf, on_record: &mut dyn FnMut(&[u8])| {
        while let Some(rec) = reader.next() {
            on_record(&rec);
        }
    };

    if drain_only {
        // Fill the ring, then time only its consumption; repeat.
        let packet = common::packet();
        let mut elapsed = Duration::ZERO;
        let mut produced = 0u64;
        while produced < events {
            let n = FILL.min((events - produced) as u32);
            prog.test_run(&packet, &[], n).expect("test run");
            produced += u64::from(n);
            let start = Instant::now();
            drain(&mut reader, &mut on_record);
            elapsed += start.elapsed();
        }
        assert_eq!(out_of_order, 0, "records arrived out of order");
        return Outcome {
            received,
            produced,
            elapsed,
        };
    }

    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let packet = common::packet();
            let mut runs = 0u64;
            while runs < events {
                let n = BATCH.min((events - runs) as u32);
                prog.test_run(&packet, &[], n).expect("test run");
                runs += u64::from(n);
            }
            done.store(true, Ordering::Release);
        })
    };
    let start = Instant::now();
    loop {
        let finished = done.load(Ordering::Acquire);
        if reader
            .next_timeout(Duration::from_millis(100))
            .expect("wait")
            .map(|rec| on_record(&rec))
            .is_some()
        {
            drain(&mut reader, &mut on_record);
        }
        if finished {
            drain(&mut reader, &mut on_record);
            break;
        }
    }
    let elapsed = start.elapsed();
    producer.join().expect("producer");
    assert_eq!(out_of_order, 0, "records arrived out of order");
    let produced = counter
        .lookup(&0u32.to_ne_bytes())
        .ok()
        .flatten()
        .map_or(0, |v| u64::from_ne_bytes(v.try_into().unwrap_or_default()));
    Outcome {
        received,
        produced,
        elapsed,
    }
}

const LIBBPF_HARNESS: &str = r#"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long received, next_seq, disorder;
static atomic_int done;
static int prog_fd;
static unsigned long long events;

static int on_record(void *ctx, void *data, size_t len) {
	unsigned long long seq;
	memcpy(&seq, data, sizeof(seq));
	disorder += seq < next_seq;
	next_seq = seq + 1;
	received++;
	return 0;
}

static void *produce(void *arg) {
	unsigned char pkt[64];
	for (int i = 0; i < 64; i++) pkt[i] = i;
	unsigned long long runs = 0;
	while (runs < events) {
		unsigned n = events - runs < BATCH ? events - runs : BATCH;
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = 64, .repeat = n);
		if (bpf_prog_test_run_opts(prog_fd, &o)) { perror("test run"); exit(1); }
		runs += n;
	}
	atomic_store(&done, 1);
	return NULL;
}

int main(int argc, char **argv) {
	events = strtoull(argv[2], NULL, 10);
	int drain_only = argc > 3;
	FILE *f = fopen(argv[1], "rb");
	static struct bpf_insn insns[4096];
	size_t cnt = fread(insns, sizeof(insns[0]), 4096, f);
	fclose(f);
	int counter = bpf_map_create(BPF_MAP_TYPE_ARRAY, "counter", 4, 8, 1, NULL);
	int rb_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bench_rb", 0, 0, RING_BYTES, NULL);
	for (size_t i = 0; i < cnt; i++)
		if (insns[i].code == (BPF_LD | BPF_DW | BPF_IMM) && insns[i].src_reg == BPF_PSEUDO_MAP_FD)
			insns[i].imm = insns[i].imm == 1001 ? counter : rb_fd;
	prog_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "bench_rb", "GPL", insns, cnt, NULL);
	if (counter < 0 || rb_fd < 0 || prog_fd < 0) { perror("setup"); return 1; }
	struct ring_buffer *rb = ring_buffer__new(rb_fd, on_record, NULL, NULL);
	pthread_t t;
	struct timespec a, b;
	unsigned long long produced = 0;
	unsigned key = 0;
	if (drain_only) {
		unsigned char pkt[64] = {0};
		double secs = 0;
		while (produced < events) {
			unsigned n = events - produced < FILL ? events - produced : FILL;
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = 64, .repeat = n);
			if (bpf_prog_test_run_opts(prog_fd, &o)) { perror("test run"); return 1; }
			produced += n;
			clock_gettime(CLOCK_MONOTONIC, &a);
			ring_buffer__consume(rb);
			clock_gettime(CLOCK_MONOTONIC, &b);
			secs += (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
		}
		printf("%llu %llu %.9f %llu\n", received, produced, secs, disorder);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	pthread_create(&t, NULL, produce, NULL);
	for (;;) {
		int finished = atomic_load(&done);
		ring_buffer__poll(rb, 100);
		if (finished) { ring_buffer__consume(rb); break; }
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	bpf_map_lookup_elem(counter, &key, &produced);
	printf("%llu %llu %.9f %llu\n", received, produced,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, disorder);
	return 0;
}
"#;

/// Builds and runs the libbpf harness; `Err` says why it could not.
fn libbpf_run(events: u64, drain_only: bool) -> Result<Outcome, String> {
    if !std::path::Path::new("/usr/include/bpf/libbpf.h").exists() {
        return Err("libbpf headers not installed (Debian: libbpf-dev)".into());
    }
    let dir = std::env::temp_dir().join(format!("bpfkit-ringbuf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = dir.join("harness.c");
    let bin = dir.join("harness");
    let insns_path: PathBuf = dir.join("prog.bin");
    std::fs::write(&src, LIBBPF_HARNESS).map_err(|e| e.to_string())?;
    // The same program, with its map fds swapped for placeholders (1001
    // the counter, 1002 the ring) that the harness replaces with its own.
    let counter = KernelMap::create(&MapDefinition::new("c", MapType::Array, 4, 8, 1), None)
        .map_err(|e| e.to_string())?;
    let ring = KernelMap::create(&MapDefinition::new("r", MapType::Ringbuf, 0, 0, 4096), None)
        .map_err(|e| e.to_string())?;
    let (cfd, rfd) = (
        std::os::fd::AsRawFd::as_raw_fd(&counter.as_fd()),
        std::os::fd::AsRawFd::as_raw_fd(&ring.as_fd()),
    );
    let mut prog = common::ringbuf_output_prog(counter.as_fd(), ring.as_fd());
    for insn in &mut prog {
        if let Insn::LdImm64 {
            imm: Imm64::MapFd(fd),
            ..
        } = insn
        {
            *fd = if *fd == cfd {
                1001
            } else if *fd == rfd {
                1002
            } else {
                *fd
            };
        }
    }
    std::fs::write(&insns_path, encode(&prog, ByteOrder::Little)).map_err(|e| e.to_string())?;
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg(format!("-DRING_BYTES={RING_BYTES}"))
        .arg(format!("-DBATCH={BATCH}"))
        .arg(format!("-DFILL={FILL}"))
        .args(["-lbpf", "-lpthread"])
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !cc.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&cc.stderr)
        ));
    }
    let out = Command::new(&bin)
        .arg(&insns_path)
        .arg(events.to_string())
        .args(drain_only.then_some("drain"))
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
    let f: Vec<&str> = text.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    if num(3) != 0.0 {
        return Err("libbpf harness saw records out of order".into());
    }
    Ok(Outcome {
        received: num(0) as u64,
        produced: num(1) as u64,
        elapsed: Duration::from_secs_f64(num(2)),
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Err(why) = bpfkit::kernel::check_bpf_access() {
        eprintln!("SKIP: cannot use bpf(): {why}");
        return;
    }
    let events: u64 = std::env::var("BPFKIT_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    println!(
        "ring buffer, {events} records of 64 bytes, {} MiB ring",
        RING_BYTES >> 20
    );
    println!("producer and consumer concurrent (XDP test runs of {BATCH} on another thread):");
    bpfkit_run(events, false).print("bpfkit");
    report_libbpf(libbpf_run(events, false));
    // Draining is fast and noisy on a shared machine: alternate the two
    // readers and keep each one's best of three.
    println!("consumer only (ring filled with {FILL} records, then drained; drain time only; best of 3):");
    let rate = |o: &Outcome| o.received as f64 / o.elapsed.as_secs_f64();
    let mut ours: Option<Outcome> = None;
    let mut theirs: Option<Result<Outcome, String>> = None;
    for _ in 0..3 {
        let o = bpfkit_run(events, true);
        if ours.as_ref().is_none_or(|b| rate(&o) > rate(b)) {
            ours = Some(o);
        }
        let t = libbpf_run(events, true);
        let better = match (&theirs, &t) {
            (None, _) | (Some(Err(_)), Ok(_)) => true,
            (Some(Ok(b)), Ok(o)) => rate(o) > rate(b),
            _ => false,
        };
        if better {
            theirs = Some(t);
        }
    }
    if let Some(o) = &ours {
        o.print("bpfkit");
    }
    if let (Some(o), Some(Ok(t))) = (&ours, &theirs) {
        report_libbpf(Ok(*t));
        println!(
            "  ratio (bpfkit / libbpf events/s): {:.3}x",
            rate(o) / rate(t)
        );
    } else if let Some(t) = theirs {
        report_libbpf(t);
    }
}

fn report_libbpf(r: Result<Outcome, String>) {
    match r {
        Ok(o) => o.print("libbpf"),
        Err(why) => println!("  libbpf: skipped: {why}"),
    }
}
