//! The loader API as a user meets it: typed programs, clear errors before
//! any system call, globals checked against BTF, and readers fed by the
//! kernel or by VM runs.

use std::time::Duration;

use bpfkit::{Backend, Ebpf, EbpfLoader, Error, PerfBuf, Record, RingBuf, TracePoint, Xdp};

fn fixture(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../{dir}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn kernel_available() -> bool {
    match bpfkit::kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "under CI=true a kernel test may not skip: {why}"
            );
            println!("SKIP: cannot use bpf(): {why}");
            false
        }
    }
}

fn counter() -> Vec<u8> {
    fixture("kernel", "counter.bpf.o")
}

#[test]
fn a_program_of_another_kind_is_refused_by_name() {
    let mut bpf = Ebpf::load_vm(&counter()).unwrap();
    let prog = bpf.program_mut("count_getpid").unwrap();
    assert_eq!(prog.kind_name(), "TracePoint");
    let e = <&mut Xdp>::try_from(prog).err().unwrap();
    assert_eq!(
        e.to_string(),
        "program `count_getpid` is a TracePoint program, not Xdp"
    );
    let e = bpf.program("nosuch").err().unwrap();
    assert_eq!(
        e.to_string(),
        "the object has no program `nosuch` (it has: count_getpid)"
    );
    let e = bpf.map("nosuch").err().unwrap();
    assert!(
        e.to_string().contains("(it has: .rodata, calls, pids)"),
        "{e}"
    );
}

#[test]
fn attaching_in_the_vm_says_what_to_do_instead() {
    let mut bpf = Ebpf::load_vm(&counter()).unwrap();
    let tp: &mut TracePoint = bpf.program_mut("count_getpid").unwrap().try_into().unwrap();
    let e = tp.attach("syscalls", "sys_enter_getpid").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                backend: Backend::Vm,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("run the program with test_run"),
        "{e}"
    );
}

#[test]
fn globals_are_checked_against_their_btf_type() {
    let e = EbpfLoader::new()
        .backend(Backend::Vm)
        .set_global("target_tgid", &7u64)
        .load(&counter())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "global `target_tgid`: is `volatile const __u32` (4 bytes) in .rodata, but the value is \
         a `u64` (8 bytes)"
    );
    let e = EbpfLoader::new()
        .backend(Backend::Vm)
        .set_global("target", &7u32)
        .load(&counter())
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("no such global variable (the object has: target_tgid)"),
        "{e}"
    );
    let bpf = EbpfLoader::new()
        .backend(Backend::Vm)
        .set_global("target_tgid", &7u32)
        .load(&counter())
        .unwrap();
    assert_eq!(bpf.global::<u32>("target_tgid").unwrap(), 7);
    // .rodata is frozen at load: set it on the loader.
    let e = bpf.set_global("target_tgid", &8u32).unwrap_err();
    assert!(e.to_string().contains("read-only once loaded"), "{e}");
}

#[test]
fn autoload_leaves_a_program_out_and_unknown_names_are_errors() {
    let maps = fixture("object", "maps.bpf.o");
    let all = Ebpf::load_vm(&maps).unwrap();
    let first = all.programs().next().unwrap().0.to_string();
    let bpf = EbpfLoader::new()
        .backend(Backend::Vm)
        .autoload(&first, false)
        .load(&maps)
        .unwrap();
    assert!(bpf.program(&first).is_err());
    assert_eq!(bpf.programs().count(), all.programs().count() - 1);
    let e = EbpfLoader::new()
        .backend(Backend::Vm)
        .autoload("nosuch", false)
        .load(&maps)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("the object has no program `nosuch`"),
        "{e}"
    );
    let e = EbpfLoader::new()
        .backend(Backend::Vm)
        .set_max_entries("nosuch", 4)
        .load(&maps)
        .err()
        .unwrap();
    assert!(
        e.to_string().starts_with("the object has no map `nosuch`"),
        "{e}"
    );
}

/// `count_getpid` in the VM: the ring buffer is fed by VM runs and read
/// through the same reader as in the kernel.
#[test]
fn vm_runs_feed_the_ring_buffer_reader() {
    let mut bpf = EbpfLoader::new()
        .backend(Backend::Vm)
        .set_global("target_tgid", &4242u32)
        .load(&counter())
        .unwrap();
    bpf.vm().unwrap().set_current_task(bpfkit::vm::Task {
        pid: 4242,
        tgid: 4242,
        ..Default::default()
    });
    let mut pids = RingBuf::new(bpf.take_map("pids").unwrap()).unwrap();
    let prog = bpf.program("count_getpid").unwrap();
    for _ in 0..3 {
        prog.test_run(&[0; 16], &[]).unwrap();
    }
    let mut seen = Vec::new();
    while let Some(rec) = pids.next() {
        seen.push(rec.read::<u32>().unwrap());
    }
    assert_eq!(seen, vec![4242; 3]);
    assert_eq!(pids.lost(), Some(0));
    assert_eq!(bpf.global::<u32>("target_tgid").unwrap(), 4242);
    let calls = bpfkit::maps::Array::<_, u64>::new(bpf.map("calls").unwrap()).unwrap();
    assert_eq!(calls.get(0).unwrap(), 3);
}

#[test]
fn kernel_ring_buffer_records_arrive_through_next() {
    if !kernel_available() {
        return;
    }
    let me = std::process::id();
    let mut bpf = EbpfLoader::new()
        .set_global("target_tgid", &me)
        .load(&counter())
        .unwrap();
    let tp: &mut TracePoint = bpf.program_mut("count_getpid").unwrap().try_into().unwrap();
    // A bad attach point is named before any system call.
    let e = tp.attach("syscalls", "sys_enter_nosuch").unwrap_err();
    assert!(
        matches!(e, Error::AttachPoint { .. })
            && e.to_string()
                .contains("no tracepoint syscalls/sys_enter_nosuch"),
        "{e}"
    );
    let e = tp.attach("sys/calls", "x").unwrap_err();
    assert!(
        e.to_string().contains("is not a tracepoint category name"),
        "{e}"
    );
    let link = tp.attach("syscalls", "sys_enter_getpid").unwrap();
    let mut pids = RingBuf::new(bpf.take_map("pids").unwrap()).unwrap();
    assert!(pids.next().is_none(), "nothing before the calls");
    for _ in 0..3 {
        getpid();
    }
    let mut seen = 0;
    while let Some(rec) = pids.next_timeout(Duration::from_secs(5)).unwrap() {
        assert_eq!(rec.read::<u32>(), Some(me));
        seen += 1;
        if seen == 3 {
            break;
        }
    }
    assert_eq!(seen, 3);
    drop(link);
    assert_eq!(pids.lost(), None, "the kernel counts no ring buffer losses");
}

/// getpid(2), the system call itself (glibc caches nothing since 2.25).
fn getpid() {
    std::hint::black_box(std::process::id());
}

#[test]
fn perf_buffer_samples_arrive_with_their_cpu() {
    if !kernel_available() {
        return;
    }
    let mut bpf = Ebpf::load(&fixture("kernel", "perfexec.bpf.o")).unwrap();
    let _links = bpf.attach_all().unwrap();
    let mut execs = PerfBuf::new(bpf.take_map("execs").unwrap(), 8).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut found = false;
    while !found && std::time::Instant::now() < deadline {
        if let Some(s) = execs.next_timeout(Duration::from_millis(200)).unwrap() {
            found = s.read::<u32>() == Some(pid);
        }
    }
    assert!(found, "the exec of pid {pid} was sampled");
    assert_eq!(execs.lost(), 0);
}

#[cfg(feature = "tokio")]
#[test]
fn async_ring_buffer_yields_records() {
    if !kernel_available() {
        return;
    }
    let me = std::process::id();
    let mut bpf = EbpfLoader::new()
        .set_global("target_tgid", &me)
        .load(&counter())
        .unwrap();
    let tp: &mut TracePoint = bpf.program_mut("count_getpid").unwrap().try_into().unwrap();
    let _link = tp.attach("syscalls", "sys_enter_getpid").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut pids = bpfkit::AsyncRingBuf::new(bpf.map("pids").unwrap()).unwrap();
        for _ in 0..2 {
            getpid();
        }
        for _ in 0..2 {
            let rec = tokio::time::timeout(Duration::from_secs(5), pids.next())
                .await
                .expect("a record within 5 s")
                .unwrap();
            assert_eq!(rec, me.to_ne_bytes());
        }
    });
}

/// The VM backend runs programs with the JIT by default on x86-64; the
/// interpreter gives the same results, maps and records.
#[test]
fn both_vm_engines_agree_through_the_api() {
    let object = fixture("object", "xdp_parser.bpf.o");
    let mut packet = vec![0u8; 64];
    packet[12] = 0x08;
    packet[14] = 0x45;
    packet[23] = 17;
    packet[36..38].copy_from_slice(&53u16.to_be_bytes());
    let mut outcomes = Vec::new();
    for engine in [bpfkit::Engine::Interpreter, bpfkit::Engine::Jit] {
        let bpf = EbpfLoader::new()
            .backend(Backend::Vm)
            .engine(engine)
            .load(&object)
            .unwrap();
        let prog = bpf.program("xdp_parser").unwrap();
        let runs: Vec<_> = (0..3)
            .map(|_| prog.test_run(&packet, &[]).unwrap())
            .collect();
        let counts = bpfkit::dump(bpf.map("proto_count").unwrap()).unwrap();
        outcomes.push((runs, counts));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert!(!outcomes[0].1.is_empty(), "the program counted something");
}

/// `LIBBPF_PIN_BY_NAME` maps (maps.bpf.o's `lru`) are pinned under the
/// loader's pin root; a second load reuses the pin, so both see one map;
/// a pin of another shape is refused with the difference.
#[test]
fn pinned_by_name_maps_are_reused_and_incompatible_pins_refused() {
    if !kernel_available() {
        return;
    }
    let object = fixture("object", "maps.bpf.o");
    let root = bpfkit::kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-api-pins-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let load = || EbpfLoader::new().pin_root(&root).load(&object);
    let first = load().unwrap();
    assert_eq!(
        first.pinned_maps().keys().cloned().collect::<Vec<_>>(),
        vec!["lru".to_string()]
    );
    let second = load().unwrap();
    assert!(second.reused_maps().contains("lru"));
    let lru = bpfkit::maps::HashMap::<_, u32, u32>::new(first.map("lru").unwrap()).unwrap();
    lru.insert(&7, &70, 0).unwrap();
    let seen = bpfkit::maps::HashMap::<_, u32, u32>::new(second.map("lru").unwrap()).unwrap();
    assert_eq!(
        seen.get(&7).unwrap(),
        Some(70),
        "both loads share the pinned map"
    );
    drop((first, second));
    // Another shape under the same name is refused, naming what differs.
    let e = EbpfLoader::new()
        .pin_root(&root)
        .set_max_entries("lru", 32)
        .load(&object)
        .err()
        .expect("an incompatible pin is refused");
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(
        text.contains("max_entries 16, the object wants 32"),
        "{text}"
    );
    let _ = std::fs::remove_file(root.join("lru"));
    let _ = std::fs::remove_dir(&root);
}

/// The VM backend verifies programs before running them, as the kernel
/// does: a map value used without its NULL check is refused, naming the C
/// line. With verification off, the VM's run-time checks stop the run.
#[test]
fn the_vm_backend_refuses_unsafe_programs_unless_told_not_to_verify() {
    let object = fixture("kernel", "rejected.bpf.o");
    let e = Ebpf::load_vm(&object).err().expect("refused");
    let Error::Rejected { program, rejection } = &e else {
        panic!("not a verifier rejection: {e}");
    };
    assert_eq!(program, "missing_null_check");
    let line = rejection.line.as_ref().expect("the C line");
    assert!(line.text.contains("*value += 1"), "{e}");
    assert!(e.to_string().contains("rejected.bpf.c:"), "{e}");
    let bpf = EbpfLoader::new()
        .backend(Backend::Vm)
        .verify(false)
        .load(&object)
        .unwrap();
    let run = bpf
        .program("missing_null_check")
        .unwrap()
        .test_run(&[0; 64], &[]);
    assert!(matches!(run, Err(Error::VmRun { .. })), "{run:?}");
}
