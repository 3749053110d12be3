//! Side by side in one run: (a) the time to compile representative
//! pcap-filter(7) expressions, bpfkit against libpcap; (b) the time to run
//! compiled filters over the packets of libpcap's Ethernet savefiles, in
//! bpfkit's classic interpreter, as the eBPF translation in bpfkit's VM,
//! and in the kernel (`BPF_PROG_TEST_RUN` of the translated socket filter).
//!
//! `cargo bench -p bpfkit-pcap --bench compile` (BPFKIT_BENCH_QUICK=1 for a
//! shorter run). libpcap is timed two ways, each printed with its method.
//! The `pcap` crate cannot be built here: the machine has libpcap's shared
//! library (libpcap0.8) but not libpcap-dev's headers and unversioned
//! libpcap.so. So: (1) through `tcpdump -d`, as the median of paired
//! `tcpdump -d EXPR` less `tcpdump -d ''` wall times, which cancels process
//! start but keeps its noise; (2) in process, when a C compiler is present:
//! a small C harness, with pcap_open_dead/pcap_compile/pcap_freecode
//! declared in it (no headers needed), linked against the shared library
//! and timing 2000 pcap_compile calls an expression.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bpfkit_abi::ProgramType;
use bpfkit_pcap::classic::{Filter, Packet};
use bpfkit_pcap::compile::{compile, CompileOptions, LinkType};
use bpfkit_pcap::translate::translate;
use bpfkit_vm::{ContextKind, Program as VmProgram, TestRun, Vm};

/// What the compile-time comparison compiles (for Ethernet).
const EXPRESSIONS: &[&str] = &[
    "tcp",
    "tcp port 22",
    "udp port 53 or tcp port 80",
    "ip host 10.0.0.1 and udp",
    "vlan and tcp",
    "icmp or arp",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
    "ip[2:2] > 576",
    "portrange 1000-2000",
    "net 192.168.0.0/16 and not port 22",
    "ip6 and tcp dst port 443",
    "ether broadcast or ether multicast",
];

/// What the execution comparison runs.
const RUN_EXPRESSIONS: &[&str] = &[
    "tcp port 22",
    "udp port 53 or tcp port 80",
    "vlan and tcp",
    "ip[2:2] > 576",
    "net 192.168.0.0/16 and not port 22",
];

/// bpf_prog_test_run_skb hands a socket filter the data after an Ethernet
/// header; these 14 bytes in front make it see the packet from offset 0.
const PREFIX: [u8; 14] = [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];
/// The largest packet a kernel test run takes after [`PREFIX`] (bpf_test_init).
const MAX_TEST_RUN: usize = 4096 - 64 - 320 - PREFIX.len();

fn quick() -> bool {
    std::env::var_os("BPFKIT_BENCH_QUICK").is_some()
}

/// Mean time of `f`, run until `budget` has passed (at least 10 times).
fn mean_time(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut n = 0u32;
    while n < 10 || start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed() / n
}

/// The wall time of one `tcpdump -d EXPR`, or None without tcpdump.
fn tcpdump_once(expr: &str) -> Option<Duration> {
    let start = Instant::now();
    let status = Command::new("tcpdump")
        .arg("-d")
        .arg(expr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let t = start.elapsed();
    status.success().then_some(t)
}

/// libpcap's compile time for `expr` as the median, over `runs` pairs run
/// back to back, of `tcpdump -d EXPR` less `tcpdump -d ''` (pairs, so that
/// a slow moment of the machine affects both halves), in microseconds; and
/// the median of the baseline alone. None without tcpdump.
fn tcpdump_compile_us(expr: &str, runs: usize) -> Option<(f64, f64)> {
    let mut diffs = Vec::with_capacity(runs);
    let mut bases = Vec::with_capacity(runs);
    for _ in 0..runs {
        let base = us(tcpdump_once("")?);
        let with = us(tcpdump_once(expr)?);
        diffs.push(with - base);
        bases.push(base);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Some((median(&mut diffs), median(&mut bases)))
}

/// The C harness: each argument compiled 2000 times with pcap_compile on
/// a dead Ethernet handle; prints the mean microseconds, one line each.
const LIBPCAP_HARNESS: &str = r#"
#include <stdio.h>
#include <time.h>
struct bpf_program { unsigned int bf_len; void *bf_insns; };
typedef struct pcap pcap_t;
pcap_t *pcap_open_dead(int, int);
int pcap_compile(pcap_t *, struct bpf_program *, const char *, int, unsigned int);
void pcap_freecode(struct bpf_program *);
int main(int argc, char **argv) {
    pcap_t *p = pcap_open_dead(1, 262144);
    for (int a = 1; a < argc; a++) {
        struct timespec s, e;
        struct bpf_program prog;
        const int n = 2000;
        clock_gettime(CLOCK_MONOTONIC, &s);
        for (int i = 0; i < n; i++) {
            if (pcap_compile(p, &prog, argv[a], 1, 0) != 0) return 1;
            pcap_freecode(&prog);
        }
        clock_gettime(CLOCK_MONOTONIC, &e);
        printf("%f\n", ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / n / 1000.0);
    }
    return 0;
}
"#;

/// libpcap's in-process compile time (us) of each expression through
/// [`LIBPCAP_HARNESS`], or why it cannot be measured.
fn libpcap_in_process(exprs: &[&str]) -> Result<Vec<f64>, String> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
    .map(|e| e.path())
    .find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("libpcap.so."))
    })
    .ok_or("no libpcap shared library (Debian package libpcap0.8)")?;
    let dir = std::env::temp_dir().join(format!("bpfkit-bench-libpcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let source = dir.join("harness.c");
    let binary = dir.join("harness");
    std::fs::write(&source, LIBPCAP_HARNESS).map_err(|e| e.to_string())?;
    let built = ["cc", "clang", "gcc"].iter().any(|cc| {
        Command::new(cc)
            .arg("-O2")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .arg(&lib)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let out = if built {
        Command::new(&binary).args(exprs).output().ok()
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.ok_or("no C compiler (cc, clang or gcc) to build the harness")?;
    if !out.status.success() {
        return Err("the harness failed (pcap_compile refused an expression)".into());
    }
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if times.len() != exprs.len() {
        return Err(format!(
            "the harness printed {} times for {} expressions",
            times.len(),
            exprs.len()
        ));
    }
    println!(
        "    libpcap in process: {} through a C harness",
        lib.display()
    );
    Ok(times)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn compile_times() {
    let opts = CompileOptions::new(LinkType::EN10MB);
    let budget = Duration::from_millis(if quick() { 20 } else { 200 });
    let runs = if quick() { 10 } else { 60 };
    let have_tcpdump = tcpdump_once("").is_some();
    println!("(a) compile time per expression, Ethernet, optimized");
    if have_tcpdump {
        println!(
            "    libpcap {}: median over {runs} back-to-back pairs of (`tcpdump -d EXPR` \
             less `tcpdump -d ''`) wall time: process start and set-up cancel out, the \
             noise (tens of us) does not; `-` where the difference is below zero",
            libpcap_version()
        );
    } else {
        println!("    libpcap: tcpdump is not installed (Debian package tcpdump); bpfkit only");
    }
    let in_process = libpcap_in_process(EXPRESSIONS).unwrap_or_else(|why| {
        println!("    libpcap in process: not measured: {why}");
        Vec::new()
    });
    println!(
        "    {:<40} {:>10} {:>11} {:>11} {:>10} {:>11} {:>10}",
        "expression",
        "bpfkit us",
        "via tcpdump",
        "tcpdump us",
        "tcpd/bpfk",
        "in-proc us",
        "inp/bpfk"
    );
    let (mut sum_b, mut sum_l) = (0.0, 0.0);
    let (mut sum_all, mut sum_inp) = (0.0, 0.0);
    for (i, expr) in EXPRESSIONS.iter().enumerate() {
        let t = us(mean_time(budget, || {
            black_box(compile(black_box(expr), &opts).unwrap());
        }));
        let inp = match in_process.get(i) {
            Some(x) => {
                sum_all += t;
                sum_inp += x;
                format!("{x:>11.1} {:>10.2}", x / t)
            }
            None => format!("{:>11} {:>10}", "-", "-"),
        };
        match have_tcpdump
            .then(|| tcpdump_compile_us(expr, runs))
            .flatten()
        {
            Some((l, base)) if l > 0.0 => {
                sum_b += t;
                sum_l += l;
                println!(
                    "    {expr:<40} {t:>10.1} {l:>11.1} {base:>11.0} {:>10.2} {inp}",
                    l / t
                );
            }
            Some((l, base)) => println!(
                "    {expr:<40} {t:>10.1} {:>11} {base:>11.0} {:>10} {inp}",
                format!("({l:.0})"),
                "-"
            ),
            None => println!(
                "    {expr:<40} {t:>10.1} {:>11} {:>11} {:>10} {inp}",
                "-", "-", "-"
            ),
        }
    }
    if !in_process.is_empty() {
        println!(
            "    all rows: bpfkit {sum_all:.1} us, libpcap in process {sum_inp:.1} us, \
             libpcap/bpfkit {:.2}",
            sum_inp / sum_all
        );
    }
    if have_tcpdump {
        println!(
            "    {:<40} {sum_b:>10.1} {sum_l:>11.1} {:>11} {:>10.2}",
            "total (rows with a tcpdump time)",
            "",
            sum_l / sum_b
        );
    }
}

fn libpcap_version() -> String {
    Command::new("tcpdump")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("libpcap"))
                .map(|l| l.trim_start_matches("libpcap version ").to_string())
        })
        .unwrap_or_default()
}

/// The packets of libpcap's Ethernet savefiles (pcap ones), each at most
/// what a kernel test run takes.
fn ethernet_packets() -> (Vec<String>, Vec<(Vec<u8>, u32)>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcap/savefiles");
    let mut names = Vec::new();
    let mut packets = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared test data)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(mut r) = pcap_file::pcap::PcapReader::new(&bytes[..]) else {
            continue; // pcapng, or one of the deliberately broken files
        };
        if r.header().datalink != pcap_file::DataLink::ETHERNET {
            continue;
        }
        let before = packets.len();
        while let Some(Ok(p)) = r.next_raw_packet() {
            if p.data.len() >= 14 && p.data.len() <= MAX_TEST_RUN {
                packets.push((p.data.into_owned(), p.orig_len));
            }
        }
        if packets.len() > before {
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    (names, packets)
}

fn execution_times() {
    let (files, packets) = ethernet_packets();
    let bytes: usize = packets.iter().map(|p| p.0.len()).sum();
    println!();
    println!(
        "(b) filter execution over {} packets ({bytes} bytes) of {} Ethernet savefiles \
         ({}), ns per packet",
        packets.len(),
        files.len(),
        files.join(", ")
    );
    let kernel = match bpfkit_kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            println!("    kernel: not run, bpf() is not usable here: {why}");
            false
        }
    };
    println!(
        "    classic: bpfkit's classic interpreter; VM: the eBPF translation in bpfkit's VM \
         (Vm::test_run with repeat, which builds the __sk_buff once and reruns on it, as the kernel does); \
         kernel: BPF_PROG_TEST_RUN of the translated socket filter with repeat (the kernel's \
         mean duration, JIT as configured); JIT: the same translation through bpfkit's \
         x86-64 JIT in the VM"
    );
    println!(
        "    {:<38} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "expression", "classic", "VM", "JIT", "kernel", "VM/cls", "JIT/cls", "kernel/cls"
    );
    let repeat: u32 = if quick() { 20 } else { 200 };
    let mut vm = Vm::new();
    let opts = CompileOptions::new(LinkType::EN10MB);
    for expr in RUN_EXPRESSIONS {
        let insns = compile(expr, &opts).unwrap();
        let classic = Filter::new(insns.clone()).unwrap();
        let ebpf = translate(&insns).unwrap();
        let inputs: Vec<TestRun> = packets
            .iter()
            .map(|(d, _)| {
                let mut data_in = PREFIX.to_vec();
                data_in.extend_from_slice(d);
                TestRun {
                    data_in,
                    repeat,
                    ..TestRun::default()
                }
            })
            .collect();

        // Classic: every packet, repeated, timed as a whole.
        let start = Instant::now();
        let mut accepted = 0u64;
        for _ in 0..repeat {
            for (data, wire_len) in &packets {
                let r = classic.run(black_box(&Packet {
                    data,
                    wire_len: *wire_len,
                    meta: Default::default(),
                }));
                accepted += u64::from(r != 0);
            }
        }
        let classic_ns =
            start.elapsed().as_secs_f64() * 1e9 / (f64::from(repeat) * packets.len() as f64);

        let prog = VmProgram::with_context(ebpf.clone(), ContextKind::SkBuffL3).unwrap();
        let mut vm_total = Duration::ZERO;
        let mut vm_accepted = 0u64;
        for input in &inputs {
            let r = vm.test_run(&prog, input).unwrap();
            vm_total += r.duration;
            vm_accepted += u64::from(r.retval != 0) * u64::from(repeat);
        }
        assert_eq!(
            vm_accepted, accepted,
            "{expr}: the VM and the interpreter disagree"
        );
        let vm_ns = vm_total.as_secs_f64() * 1e9 / packets.len() as f64;

        let jit_ns = jit_time(&prog, &inputs, &mut vm, accepted, repeat, expr);

        let kernel_ns = kernel.then(|| {
            let loaded = bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
                name: "bench_filter",
                prog_type: ProgramType::SocketFilter,
                expected_attach_type: None,
                insns: &ebpf,
                license: "GPL",
                kern_version: 0,
                btf: None,
                attach_btf_id: 0,
                core_relos: Vec::new(),
            })
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
            let mut total_ns = 0u64;
            let mut kernel_accepted = 0u64;
            for input in &inputs {
                let r = loaded.test_run(&input.data_in, &[], repeat).unwrap();
                total_ns += u64::from(r.duration_ns);
                kernel_accepted += u64::from(r.retval != 0) * u64::from(repeat);
            }
            assert_eq!(
                kernel_accepted, accepted,
                "{expr}: the kernel and the interpreter disagree"
            );
            total_ns as f64 / packets.len() as f64
        });
        let cell = |v: Option<f64>, prec: usize| match v {
            Some(v) => format!("{v:.prec$}"),
            None => "-".to_string(),
        };
        println!(
            "    {:<38} {:>9.1} {:>9.1} {:>9} {:>9} {:>9.2} {:>9} {:>11}",
            expr,
            classic_ns,
            vm_ns,
            cell(jit_ns, 1),
            cell(kernel_ns, 1),
            vm_ns / classic_ns,
            cell(jit_ns.map(|j| j / classic_ns), 2),
            cell(kernel_ns.map(|k| k / classic_ns), 2),
        );
    }
}

/// ns per packet of `prog` compiled by bpfkit's JIT, run as the VM column
/// runs it; `None` where the JIT has no back end for this machine.
fn jit_time(
    prog: &VmProgram,
    inputs: &[TestRun],
    vm: &mut Vm,
    accepted: u64,
    repeat: u32,
    expr: &str,
) -> Option<f64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let mut jitted = prog.clone();
    bpfkit_jit::compile(&mut jitted).unwrap_or_else(|e| panic!("{expr}: JIT: {e}"));
    let mut total = Duration::ZERO;
    let mut jit_accepted = 0u64;
    for input in inputs {
        let r = vm.test_run(&jitted, input).unwrap();
        total += r.duration;
        jit_accepted += u64::from(r.retval != 0) * u64::from(repeat);
    }
    assert_eq!(
        jit_accepted, accepted,
        "{expr}: the JIT and the interpreter disagree"
    );
    Some(total.as_secs_f64() * 1e9 / inputs.len() as f64)
}

fn main() {
    compile_times();
    execution_times();
}
