//! The kernel backend against the running kernel. Each test first checks that
//! bpf() is usable and otherwise prints why it skipped.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bpfkit_abi::{errno, update_flags::*, MapType};
use bpfkit_kernel::{
    inspect, Collection, CoreSource, Error, KernelMap, LoadOptions, MapDefinition, RingBufReader,
};
use bpfkit_object::ObjectSpec;

mod common;

fn fixture(name: &str) -> ObjectSpec {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    ObjectSpec::from_file(&p).unwrap()
}

fn def(t: MapType, k: u32, v: u32, max: u32, flags: u32) -> MapDefinition {
    MapDefinition {
        name: format!("t_{t}"),
        map_type: t,
        key_size: k,
        value_size: v,
        max_entries: max,
        map_flags: flags,
        map_extra: 0,
        numa_node: None,
        btf: None,
    }
}

fn k(i: u32) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}
fn v(i: u64) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}

#[test]
fn hash_and_array_semantics_match_the_vm() {
    require_bpf!();
    let h = KernelMap::create(&def(MapType::Hash, 4, 8, 2, 0), None).unwrap();
    assert_eq!(
        h.update(&k(1), &v(1), EXIST).unwrap_err().errno(),
        errno::ENOENT
    );
    h.update(&k(1), &v(1), NOEXIST).unwrap();
    assert_eq!(
        h.update(&k(1), &v(2), NOEXIST).unwrap_err().errno(),
        errno::EEXIST
    );
    h.update(&k(2), &v(2), ANY).unwrap();
    assert_eq!(
        h.update(&k(3), &v(3), ANY).unwrap_err().errno(),
        errno::E2BIG
    );
    assert_eq!(h.lookup(&k(2)).unwrap(), Some(v(2)));
    h.delete(&k(1)).unwrap();
    assert_eq!(h.delete(&k(1)).unwrap_err().errno(), errno::ENOENT);
    assert_eq!(h.next_key(None).unwrap(), Some(k(2)));

    let a = KernelMap::create(&def(MapType::Array, 4, 8, 4, 0), None).unwrap();
    assert_eq!(a.lookup(&k(0)).unwrap(), Some(v(0)));
    assert_eq!(
        a.update(&k(4), &v(1), ANY).unwrap_err().errno(),
        errno::E2BIG
    );
    assert_eq!(
        a.update(&k(1), &v(1), NOEXIST).unwrap_err().errno(),
        errno::EEXIST
    );
    assert_eq!(a.delete(&k(1)).unwrap_err().errno(), errno::EINVAL);
    assert_eq!(a.next_key(Some(&k(3))).unwrap(), None);
}

#[test]
fn queue_lru_lpm_and_percpu() {
    require_bpf!();
    let q = KernelMap::create(&def(MapType::Queue, 0, 8, 2, 0), None).unwrap();
    q.push(&v(1), ANY).unwrap();
    q.push(&v(2), ANY).unwrap();
    assert_eq!(q.push(&v(3), ANY).unwrap_err().errno(), errno::E2BIG);
    q.push(&v(3), EXIST).unwrap();
    assert_eq!(q.pop().unwrap(), Some(v(2)));
    assert_eq!(q.pop().unwrap(), Some(v(3)));
    assert_eq!(q.pop().unwrap(), None);

    let lpm = KernelMap::create(
        &def(
            MapType::LpmTrie,
            8,
            8,
            8,
            bpfkit_abi::map_flags::NO_PREALLOC,
        ),
        None,
    )
    .unwrap();
    let key = |plen: u32, ip: [u8; 4]| [plen.to_ne_bytes().to_vec(), ip.to_vec()].concat();
    lpm.update(&key(8, [10, 0, 0, 0]), &v(8), ANY).unwrap();
    lpm.update(&key(16, [10, 1, 0, 0]), &v(16), ANY).unwrap();
    assert_eq!(lpm.lookup(&key(32, [10, 1, 9, 9])).unwrap(), Some(v(16)));
    assert_eq!(lpm.lookup(&key(32, [10, 9, 9, 9])).unwrap(), Some(v(8)));
    assert_eq!(lpm.lookup(&key(32, [11, 0, 0, 0])).unwrap(), None);

    let pc = KernelMap::create(&def(MapType::PercpuArray, 4, 4, 1, 0), None).unwrap();
    let n = pc.value_copies();
    assert_eq!(n, bpfkit_kernel::fs::possible_cpus());
    let all: Vec<u8> = (0..n as u32)
        .flat_map(|c| [c.to_ne_bytes(), [0; 4]].concat())
        .collect();
    pc.update(&k(0), &all, ANY).unwrap();
    assert_eq!(pc.lookup(&k(0)).unwrap(), Some(all));
}

#[test]
fn tracepoint_counts_and_ring_buffer_delivers_exactly() {
    require_bpf!();
    let mut spec = fixture("counter.bpf.o");
    let me = std::process::id();
    spec.maps.get_mut(".rodata").unwrap().data = Some(me.to_ne_bytes().to_vec());
    let coll = Collection::load(&spec, &LoadOptions::default()).unwrap();
    let (links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(
        links[0].1.description(),
        "tracepoint syscalls/sys_enter_getpid"
    );
    let mut reader = RingBufReader::new().unwrap();
    reader.add(&coll.maps["pids"]).unwrap();
    for _ in 0..25 {
        // SAFETY: getpid has no preconditions. (libc's getpid may be cached;
        // the raw syscall always enters the kernel.)
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < 25 && Instant::now() < deadline {
        reader
            .poll(Duration::from_millis(100), &mut |_, rec| {
                got.push(u32::from_ne_bytes(rec.try_into().unwrap()))
            })
            .unwrap();
    }
    assert_eq!(got, vec![me; 25]);
    let calls = coll.maps["calls"]
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_ne_bytes(calls.try_into().unwrap()), 25);
}

#[test]
fn exec_events_from_libbpf_bootstrap_style_object() {
    require_bpf!();
    let spec = ObjectSpec::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../object/tests/fixtures/bootstrap.bpf.o"),
    )
    .unwrap();
    let coll = Collection::load(&spec, &LoadOptions::default()).unwrap();
    let (links, skipped) = coll.auto_attach();
    assert_eq!(links.len(), 2, "{skipped:?}");
    let mut reader = RingBufReader::new().unwrap();
    reader.add(&coll.maps["rb"]).unwrap();
    let child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as i32;
    let mut child = child;
    child.wait().unwrap();
    let mut seen_exec = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen_exec && Instant::now() < deadline {
        reader
            .poll(Duration::from_millis(100), &mut |_, rec| {
                let epid = i32::from_ne_bytes(rec[0..4].try_into().unwrap());
                // struct event: pid@0 ppid@4 exit_code@8 duration_ns@16 comm@24 filename@40 exit_event@167
                let exit_event = rec[167] != 0;
                if epid == pid && !exit_event {
                    let fname = &rec[40..40 + 9];
                    assert_eq!(fname, b"/bin/true");
                    seen_exec = true;
                }
            })
            .unwrap();
    }
    assert!(seen_exec, "no exec event for pid {pid}");
}

#[test]
fn verifier_rejection_names_the_complaint_and_the_source_line() {
    require_bpf!();
    let spec = fixture("rejected.bpf.o");
    let err = Collection::load(&spec, &LoadOptions::default())
        .err()
        .expect("the verifier rejects it");
    let Error::Verifier {
        program,
        message,
        source_line,
        log,
    } = &err
    else {
        panic!("expected a verifier error, got {err}");
    };
    assert_eq!(program, "missing_null_check");
    assert!(message.contains("map_value_or_null"), "{message}\n{log}");
    let line = source_line.as_deref().unwrap_or("");
    assert!(
        line.contains("rejected.bpf.c:18") && line.contains("*value += 1"),
        "{line}"
    );
    assert!(err.to_string().contains("rejected.bpf.c:18"));
}

#[test]
fn nothing_leaks_after_a_collection_is_dropped() {
    require_bpf!();
    let before = inspect::count_objects();
    {
        let spec = ObjectSpec::from_file(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../object/tests/fixtures/bootstrap.bpf.o"),
        )
        .unwrap();
        let coll = Collection::load(&spec, &LoadOptions::default()).unwrap();
        let (links, _) = coll.auto_attach();
        assert_eq!(links.len(), 2);
        let during = inspect::count_objects();
        assert!(
            during.programs >= before.programs + 2
                && during.maps >= before.maps + 3
                && during.links >= before.links + 2,
            "{before:?} {during:?}"
        );
    }
    // Other tests run in parallel; wait for the kernel's deferred frees and
    // compare this test's own objects, which are gone once the counts drop back.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = inspect::count_objects();
    while after.programs > before.programs && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        after = inspect::count_objects();
    }
    assert!(
        after.programs <= before.programs && after.links <= before.links,
        "before {before:?}, after {after:?}"
    );
}

#[test]
fn kprobe_absence_is_explained() {
    require_bpf!();
    if let Some(reason) = bpfkit_kernel::link::kprobe_unavailable_reason() {
        assert!(reason.contains("kprobes are not available"));
        assert!(reason.contains("CONFIG_KPROBES"));
    } else {
        common::skip("this kernel has kprobes, nothing to explain");
    }
}

#[test]
fn core_results_are_cached_per_kernel_and_reused() {
    require_bpf!();
    let dir = std::env::temp_dir().join(format!("bpfkit-core-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ObjectSpec::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loadbench.bpf.o"),
    )
    .unwrap();
    // The cache holds what bpfkit's own engine computed.
    let opts = LoadOptions {
        core_cache_dir: Some(&dir),
        user_space_core: true,
        ..LoadOptions::default()
    };
    let first = Collection::load(&spec, &opts).unwrap();
    assert_eq!(first.core_source(), CoreSource::UserSpace);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "one entry written"
    );
    let second = Collection::load(&spec, &opts).unwrap();
    assert_eq!(second.core_source(), CoreSource::Cache);
    let uncached = Collection::load(
        &spec,
        &LoadOptions {
            no_core_cache: true,
            user_space_core: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(uncached.core_source(), CoreSource::UserSpace);
    // On a cache miss the kernel relocates (core_relos at BPF_PROG_LOAD),
    // reading no BTF here, and must reach the very same code.
    let by_kernel = Collection::load(
        &spec,
        &LoadOptions {
            no_core_cache: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(by_kernel.core_source(), CoreSource::Kernel);
    // The kernel sees the same relocated programs either way (map
    // references aside: each collection has its own maps).
    // Raw slots: the kernel's rewrites may use internal encodings.
    let code = |p: &bpfkit_kernel::Program| -> Vec<u8> {
        let mut b = bpfkit_kernel::info::program_xlated_bytes(p.fd().as_fd()).unwrap();
        let mut i = 0;
        while i + 16 <= b.len() {
            if b[i] == 0x18 {
                b[i + 4..i + 8].fill(0);
                b[i + 12..i + 16].fill(0);
                i += 16;
            } else {
                i += 8;
            }
        }
        b
    };
    for (name, prog) in &second.programs {
        assert_eq!(code(prog), code(&uncached.programs[name]), "{name}");
        assert_eq!(
            code(prog),
            code(&by_kernel.programs[name]),
            "{name}: kernel CO-RE"
        );
    }
    // A damaged entry is ignored, not an error.
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"bpfkit-core-cache-1\n\xff").unwrap();
    let again = Collection::load(&spec, &opts).unwrap();
    assert_eq!(again.core_source(), CoreSource::UserSpace);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pinned_objects_outlive_the_process_handles_until_unpinned() {
    require_bpf!();
    use bpfkit_kernel::inspect::ObjectKind;
    let dir = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-pin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (map_id, link_id, prog_id);
    {
        let spec = fixture("counter.bpf.o");
        let coll = Collection::load(&spec, &LoadOptions::default()).unwrap();
        let (links, _) = coll.auto_attach();
        let map = &coll.maps["calls"];
        map.pin(&dir.join("calls")).unwrap();
        links[0].1.pin(&dir.join("link")).unwrap();
        map_id = map.id();
        prog_id = coll.programs["count_getpid"].id();
        link_id = inspect::id_of(links[0].1.fd().unwrap()).unwrap();
    }
    // Every handle of this process is closed: the pins keep them.
    let has = |kind, id| inspect::ids(kind).contains(&id);
    std::thread::sleep(Duration::from_millis(100));
    assert!(has(ObjectKind::Map, map_id), "pinned map freed");
    assert!(has(ObjectKind::Link, link_id), "pinned link freed");
    assert!(
        has(ObjectKind::Program, prog_id),
        "the pinned link's program freed"
    );
    // A pinned map opens again by path and still works.
    let reopened = bpfkit_kernel::KernelMap::from_pin(&dir.join("calls")).unwrap();
    assert_eq!(reopened.id(), map_id);
    drop(reopened);
    std::fs::remove_file(dir.join("calls")).unwrap();
    std::fs::remove_file(dir.join("link")).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (has(ObjectKind::Map, map_id)
        || has(ObjectKind::Link, link_id)
        || has(ObjectKind::Program, prog_id))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!has(ObjectKind::Map, map_id), "unpinned map still there");
    assert!(!has(ObjectKind::Link, link_id), "unpinned link still there");
    assert!(!has(ObjectKind::Program, prog_id), "program still there");
}

#[test]
fn ksym_externs_resolve_by_kallsyms_address_and_weak_ones_to_zero() {
    require_bpf!();
    let mut spec = fixture("ksym.bpf.o");
    spec.set_global("target_tgid", &std::process::id().to_ne_bytes())
        .unwrap();
    let coll = Collection::load(&spec, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (_links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() };
    let bss = coll.maps[".bss"]
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let word = |i: usize| u64::from_ne_bytes(bss[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(2), 1, "the program ran once");
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let schedule = kallsyms
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[2] == "schedule").then(|| u64::from_str_radix(f[0], 16).unwrap())
        })
        .unwrap();
    assert_eq!(word(0), schedule, "typeless ksym: the kallsyms address");
    assert_eq!(word(1), 0, "weak missing ksym");
}

#[test]
fn typed_ksym_loads_or_says_what_the_kernel_lacks() {
    require_bpf!();
    let spec = fixture("ksym_typed.bpf.o");
    let in_kallsyms = std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf_prog_active"));
    match Collection::load(&spec, &LoadOptions::default()) {
        Ok(_) => assert!(in_kallsyms, "loaded without the symbol in kallsyms?"),
        Err(e) => {
            assert!(!in_kallsyms, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("`bpf_prog_active`") && msg.contains("CONFIG_KALLSYMS_ALL"),
                "{msg}"
            );
        }
    }
}

#[test]
fn kfunc_calls_resolve_to_their_btf_ids() {
    require_bpf!();
    let mut spec = fixture("kfunc.bpf.o");
    spec.set_global("target_tgid", &std::process::id().to_ne_bytes())
        .unwrap();
    let coll = match Collection::load(&spec, &LoadOptions::default()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let (_links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() };
    let bss = coll.maps[".bss"]
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let word = |i: usize| u64::from_ne_bytes(bss[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(1), 1, "the program ran once");
    assert_eq!(
        word(0),
        u64::from(std::process::id()),
        "bpf_task_from_pid found us"
    );
}
