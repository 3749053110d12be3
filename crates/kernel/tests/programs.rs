//! Programs written as `Insn`s, loaded into the running kernel, run with
//! `BPF_PROG_TEST_RUN`, and read back through ring buffers, perf buffers and
//! the kernel's object info.

mod common;

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bpfkit_abi::{MapType, ProgramType};
use bpfkit_isa::Insn;
use bpfkit_kernel::inspect::{self, ObjectKind};
use bpfkit_kernel::{
    features, Error, KernelMap, MapDefinition, PerfBufReader, Program, RingBufReader,
};
use common::*;

fn counter() -> KernelMap {
    KernelMap::create(
        &MapDefinition::new("counter", MapType::Array, 4, 8, 1),
        None,
    )
    .unwrap()
}

fn ringbuf(size: u32) -> KernelMap {
    KernelMap::create(
        &MapDefinition::new("rb", MapType::Ringbuf, 0, 0, size),
        None,
    )
    .unwrap()
}

fn seq(rec: &[u8]) -> u64 {
    u64::from_ne_bytes(rec[..8].try_into().unwrap())
}

#[test]
fn ring_buffer_receives_exactly_the_records() {
    require_bpf!();
    let (n, rb) = (counter(), ringbuf(256 * 1024));
    let prog = load(
        "rb_output",
        ProgramType::Xdp,
        &ringbuf_output_prog(n.as_fd(), rb.as_fd()),
    )
    .unwrap();
    let mut reader = RingBufReader::new().unwrap();
    assert_eq!(reader.add(&rb).unwrap(), 0);
    let out = prog.test_run(&packet(), &[], 1000).unwrap();
    assert_eq!(out.retval, 2, "XDP_PASS");
    let mut got = Vec::new();
    let count = reader.consume(&mut |ring, rec| {
        assert_eq!(ring, 0);
        assert_eq!(rec.len(), 64);
        assert!(rec[8..].chunks(8).all(|c| c == 0x5a5a5a5au64.to_ne_bytes()));
        got.push(seq(rec));
    });
    assert_eq!(count, 1000);
    assert_eq!(got, (0..1000).collect::<Vec<u64>>());
    assert_eq!(reader.pending_bytes(0), 0);
    // Nothing more, and a poll times out empty.
    assert_eq!(
        reader
            .poll(Duration::from_millis(10), &mut |_, _| ())
            .unwrap(),
        0
    );
}

#[test]
fn discarded_records_are_skipped() {
    require_bpf!();
    let (n, rb) = (counter(), ringbuf(64 * 1024));
    let prog = load(
        "rb_discard",
        ProgramType::Xdp,
        &ringbuf_discard_odd_prog(n.as_fd(), rb.as_fd()),
    )
    .unwrap();
    let mut reader = RingBufReader::new().unwrap();
    reader.add(&rb).unwrap();
    prog.test_run(&packet(), &[], 100).unwrap();
    let mut got = Vec::new();
    reader.consume(&mut |_, rec| got.push(seq(rec)));
    assert_eq!(got, (0..100).step_by(2).collect::<Vec<u64>>());
}

#[test]
fn one_poll_waits_on_several_rings() {
    require_bpf!();
    let n = counter();
    let (a, b) = (ringbuf(16 * 1024), ringbuf(16 * 1024));
    let pa = load(
        "rb_a",
        ProgramType::Xdp,
        &ringbuf_output_prog(n.as_fd(), a.as_fd()),
    )
    .unwrap();
    let pb = load(
        "rb_b",
        ProgramType::Xdp,
        &ringbuf_output_prog(n.as_fd(), b.as_fd()),
    )
    .unwrap();
    let mut reader = RingBufReader::new().unwrap();
    reader.add(&a).unwrap();
    reader.add(&b).unwrap();
    // Writes from another thread while this one blocks in poll.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        pa.test_run(&packet(), &[], 3).unwrap();
        pb.test_run(&packet(), &[], 2).unwrap();
    });
    let mut per_ring = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(5);
    while per_ring.iter().sum::<usize>() < 5 && Instant::now() < deadline {
        reader
            .poll(Duration::from_millis(500), &mut |ring, _| {
                per_ring[ring] += 1
            })
            .unwrap();
    }
    writer.join().unwrap();
    assert_eq!(per_ring, [3, 2]);
}

#[test]
fn perf_buffer_delivers_samples_and_counts_losses() {
    require_bpf!();
    common::pin_to_first_cpu();
    let cpus = bpfkit_kernel::fs::possible_cpus() as u32;
    let perf = KernelMap::create(
        &MapDefinition::new("perf", MapType::PerfEventArray, 4, 4, cpus),
        None,
    )
    .unwrap();
    let n = counter();
    let prog = load(
        "perf_out",
        ProgramType::Xdp,
        &perf_output_prog(n.as_fd(), perf.as_fd()),
    )
    .unwrap();
    // One data page holds about 50 of these 80-byte records.
    let mut reader = PerfBufReader::new(&perf, 1).unwrap();
    prog.test_run(&packet(), &[], 20).unwrap();
    let mut got = Vec::new();
    let stats = reader.consume(&mut |_, rec| {
        assert!(rec.len() >= 64);
        got.push(seq(rec));
    });
    assert_eq!((stats.samples, stats.lost), (20, 0));
    assert_eq!(got, (0..20).collect::<Vec<u64>>());

    // Overflow: the kernel drops what does not fit and says how much with a
    // PERF_RECORD_LOST, which it writes before the next sample that fits in
    // the same CPU's ring (the thread is pinned, so that is CPU 0's).
    prog.test_run(&packet(), &[], 1000).unwrap();
    let first = reader.consume(&mut |_, _| ());
    assert!(first.samples < 1000, "{first:?}");
    let (mut samples, mut lost) = (first.samples, first.lost);
    let produced = || {
        let v = n.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
        u64::from_ne_bytes(v.try_into().unwrap()) - 20
    };
    for _ in 0..200 {
        if samples + lost == produced() {
            break;
        }
        prog.test_run(&packet(), &[], 1).unwrap();
        let s = reader.consume(&mut |_, _| ());
        samples += s.samples;
        lost += s.lost;
    }
    assert_eq!(
        samples + lost,
        produced(),
        "every record is a sample or counted lost"
    );
    assert!(lost > 0);
    assert_eq!(reader.lost(), lost);
}

#[test]
fn verifier_rejection_carries_the_log_and_complaint() {
    require_bpf!();
    // Returns without setting r0.
    let err = load("no_ret", ProgramType::SocketFilter, &[Insn::Exit]).unwrap_err();
    let Error::Verifier {
        program,
        message,
        log,
        ..
    } = &err
    else {
        panic!("expected a verifier error, got {err}");
    };
    assert_eq!(program, "no_ret");
    assert!(message.contains("R0 !read_ok"), "{message}");
    assert!(
        log.contains("R0 !read_ok") && log.lines().count() >= 2,
        "{log}"
    );
    assert!(err.to_string().contains("R0 !read_ok"));
}

#[test]
fn test_run_and_program_info() {
    require_bpf!();
    let insns = [mov(bpfkit_isa::Reg::R0, 2), Insn::Exit];
    let prog = load("xdp_pass", ProgramType::Xdp, &insns).unwrap();
    let out = prog.test_run(&packet(), &[], 10).unwrap();
    assert_eq!(out.retval, 2);
    assert_eq!(out.data_out, packet());
    assert!(prog.verifier_stats().verified_insns >= 2);

    let info = prog.info().unwrap();
    assert_eq!(info.id, prog.id());
    assert_eq!(info.name, "xdp_pass");
    assert_eq!(info.prog_type, Some(ProgramType::Xdp));
    assert!(info.gpl_compatible);
    assert_eq!(prog.xlated().unwrap(), insns);

    let again = Program::from_id(prog.id()).unwrap();
    assert_eq!(again.name(), "xdp_pass");
    assert_eq!(again.prog_type(), ProgramType::Xdp);
    assert!(inspect::programs().iter().any(|p| p.id == prog.id()));
}

#[test]
fn pinned_objects_reopen() {
    require_bpf!();
    let Ok(root) = bpfkit_kernel::fs::bpffs() else {
        common::skip("no bpffs");
        return;
    };
    let map = counter();
    let path = root.join(format!("bpfkit_test_{}", std::process::id()));
    map.pin(&path).unwrap();
    let reopened = KernelMap::from_pin(&path);
    std::fs::remove_file(&path).unwrap();
    let reopened = reopened.unwrap();
    assert_eq!(reopened.id(), map.id());
    assert_eq!(reopened.map_type(), MapType::Array);
    assert_eq!(KernelMap::from_id(map.id()).unwrap().value_size(), 8);
}

#[test]
fn objects_are_released_when_dropped() {
    require_bpf!();
    let before = inspect::count_objects();
    let (prog_id, map_ids, link_id) = {
        let (n, rb) = (counter(), ringbuf(4096));
        let prog = load(
            "leak_xdp",
            ProgramType::Xdp,
            &ringbuf_output_prog(n.as_fd(), rb.as_fd()),
        )
        .unwrap();
        let tp = load(
            "leak_rawtp",
            ProgramType::RawTracepoint,
            &[mov(bpfkit_isa::Reg::R0, 0), Insn::Exit],
        )
        .unwrap();
        let link =
            bpfkit_kernel::sys::raw_tracepoint_open(tp.as_fd(), Some(c"sys_enter"), 0).unwrap();
        let link_id = inspect::id_of(&link).unwrap();
        let during = inspect::count_objects();
        assert!(
            during.programs >= before.programs + 2
                && during.maps >= before.maps + 2
                && during.links > before.links,
            "{before:?} -> {during:?}"
        );
        (prog.id(), [n.id(), rb.id()], link_id)
    };
    // Programs and maps are freed after an RCU grace period.
    let ours_alive = || {
        let progs: HashSet<u32> = inspect::ids(ObjectKind::Program).into_iter().collect();
        let maps: HashSet<u32> = inspect::ids(ObjectKind::Map).into_iter().collect();
        let links: HashSet<u32> = inspect::ids(ObjectKind::Link).into_iter().collect();
        progs.contains(&prog_id)
            || map_ids.iter().any(|m| maps.contains(m))
            || links.contains(&link_id)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ours_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ours_alive(), "objects outlived their owners");
    let after = inspect::count_objects();
    eprintln!("object counts: before {before:?}, after {after:?}");
}

#[test]
fn features_of_this_kernel() {
    require_bpf!();
    use bpfkit_abi::helper;
    assert!(features::program_type(ProgramType::Xdp).unwrap());
    assert!(features::program_type(ProgramType::SocketFilter).unwrap());
    assert!(features::map_type(MapType::Hash).unwrap());
    assert!(features::ringbuf().unwrap());
    assert!(features::helper(ProgramType::Xdp, helper::RINGBUF_OUTPUT).unwrap());
    assert!(features::helper(ProgramType::Tracepoint, helper::GET_CURRENT_PID_TGID).unwrap());
    // Socket filters may read packets but not write them; nothing has helper 100000.
    assert!(features::helper(ProgramType::SocketFilter, helper::SKB_LOAD_BYTES).unwrap());
    assert!(!features::helper(ProgramType::SocketFilter, helper::SKB_STORE_BYTES).unwrap());
    assert!(!features::helper(ProgramType::Xdp, 100_000).unwrap());
    // Cached answers are the same answers.
    assert!(features::helper(ProgramType::Xdp, helper::RINGBUF_OUTPUT).unwrap());
    let btf = features::btf_features();
    assert!(btf.func && btf.datasec && btf.float, "{btf:?}");
    let report = features::report().unwrap();
    eprintln!(
        "kprobe PMU {}, fentry {}, tcx {}, xdp link {}, btf {:?}",
        report.kprobe_pmu, report.fentry, report.tcx, report.xdp_link, report.btf
    );
    let missing: Vec<_> = report.map_types.iter().filter(|(_, ok)| !ok).collect();
    eprintln!("map types not available: {missing:?}");
    let missing: Vec<_> = report.program_types.iter().filter(|(_, ok)| !ok).collect();
    eprintln!("program types not available: {missing:?}");
    assert_eq!(
        report.kprobe_pmu,
        std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
    );
}

#[test]
fn btf_objects_load_or_explain() {
    require_bpf!();
    use bpfkit_btf::{BtfBuilder, Endian, IntEncoding, TypeData, TypeDef};
    let int = |bits| {
        TypeDef::new(
            "int",
            TypeData::Int {
                size: 4,
                encoding: IntEncoding(IntEncoding::SIGNED),
                offset: 0,
                bits,
            },
        )
    };
    let mut good = BtfBuilder::new();
    good.add(int(32));
    let fd = bpfkit_kernel::btf::load_btf(&good.encode(Endian::native()).unwrap()).unwrap();
    let info = bpfkit_kernel::info::BtfInfo::from_fd(fd.as_fd()).unwrap();
    assert!(!info.kernel_btf && info.size > 0);
    assert!(inspect::btfs().iter().any(|b| b.id == info.id));
    assert!(inspect::btfs()
        .iter()
        .any(|b| b.kernel_btf && b.name == "vmlinux"));

    // 40 value bits in a 4-byte int: the kernel says why it refuses.
    let mut bad = BtfBuilder::new();
    bad.add(int(40));
    let err = bpfkit_kernel::btf::load_btf(&bad.encode(Endian::native()).unwrap()).unwrap_err();
    let Error::Btf { message, log } = &err else {
        panic!("expected a BTF error, got {err}");
    };
    assert!(
        !message.is_empty() && log.contains(message.as_str()),
        "{message}\n{log}"
    );
}

#[test]
fn the_verifier_log_is_kept_on_request() {
    require_bpf!();
    let insns = [mov(bpfkit_isa::Reg::R0, 0), Insn::Exit];
    let prog = Program::load_with(
        &bpfkit_kernel::ProgramLoad {
            name: "logged",
            prog_type: ProgramType::SocketFilter,
            expected_attach_type: None,
            insns: &insns,
            license: "GPL",
            kern_version: 0,
            btf: None,
            attach_btf_id: 0,
            core_relos: Vec::new(),
        },
        &bpfkit_kernel::LoadExtras {
            log_level: 4,
            always_log: true,
            ..Default::default()
        },
    )
    .unwrap();
    let stats = prog.verifier_stats();
    let log = stats.log.as_deref().unwrap_or("");
    assert!(log.contains("processed 2 insns"), "{log}");
    assert_eq!(stats.verified_insns, 2);
}
