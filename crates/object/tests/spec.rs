//! The specs of the committed fixtures (tests/fixtures, rebuilt by regen.sh).

use std::path::PathBuf;

use bpfkit_abi::{AttachType, MapType, ProgramType};
use bpfkit_object::{
    AttachTarget, ExternSpec, InitRef, KconfigType, MapOrigin, ObjectError, ObjectSpec, Pinning,
    RelocTarget,
};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(&path(name)).unwrap()
}

fn targets(spec: &ObjectSpec, prog: &str) -> Vec<RelocTarget> {
    spec.programs[prog]
        .relocations
        .iter()
        .map(|r| r.target.clone())
        .collect()
}

#[test]
fn every_map_kind() {
    let spec = fixture("maps.bpf.o");
    let m = |n: &str| &spec.maps[n];
    let shape = |n: &str| {
        (
            m(n).map_type,
            m(n).key_size,
            m(n).value_size,
            m(n).max_entries,
        )
    };
    assert_eq!(shape("counts"), (MapType::Hash, 4, 8, 128));
    assert_eq!(shape("arr"), (MapType::Array, 4, 8, 4));
    assert_eq!(shape("pcpu"), (MapType::PercpuArray, 4, 4, 1));
    assert_eq!(shape("lru"), (MapType::LruHash, 4, 4, 16));
    assert_eq!(m("lru").pinning, Pinning::ByName);
    assert_eq!(shape("routes"), (MapType::LpmTrie, 8, 4, 64));
    assert_eq!(m("routes").map_flags, bpfkit_abi::map_flags::NO_PREALLOC);
    assert_eq!(shape("events"), (MapType::Ringbuf, 0, 0, 4096));
    assert_eq!(shape("perf"), (MapType::PerfEventArray, 4, 4, 0));
    assert_eq!(shape("queue"), (MapType::Queue, 0, 4, 8));
    assert_eq!(shape("stack"), (MapType::Stack, 0, 4, 8));
    assert_eq!(shape("bloom"), (MapType::BloomFilter, 0, 4, 32));
    assert_eq!(m("bloom").map_extra, 3);
    assert_eq!(shape("outer"), (MapType::ArrayOfMaps, 4, 4, 2));
    let inner = m("outer").inner.as_ref().unwrap();
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (MapType::Array, 4, 4, 1)
    );
    assert_eq!(m("outer").init.get(&1), Some(&InitRef::Map("inner".into())));
    assert_eq!(shape("jumps"), (MapType::ProgArray, 4, 4, 4));
    assert_eq!(
        m("jumps").init.get(&2),
        Some(&InitRef::Program("tail_target".into()))
    );
    assert!(m("counts").key_type_id.is_some() && m("counts").value_type_id.is_some());
    assert_eq!(spec.maps.len(), 13);

    let p = &spec.programs["use_maps"];
    assert_eq!(
        (p.kind.prog_type, p.kind.attach_type),
        (ProgramType::Xdp, Some(AttachType::Xdp))
    );
    let want: Vec<RelocTarget> = [
        "counts", "arr", "pcpu", "lru", "queue", "stack", "bloom", "events", "jumps",
    ]
    .iter()
    .map(|n| RelocTarget::Map(n.to_string()))
    .collect();
    assert_eq!(targets(&spec, "use_maps"), want);
    assert_eq!(spec.license, "GPL");
}

#[test]
fn global_data_subprograms_and_kconfig() {
    let spec = fixture("globals.bpf.o");
    let data = |n: &str| spec.maps[n].data.clone().unwrap();
    assert_eq!(data(".rodata"), 42u32.to_le_bytes());
    assert_eq!(data(".data"), 5u64.to_le_bytes());
    assert_eq!(data(".bss"), 0u64.to_le_bytes());
    assert_eq!(data(".data.custom"), 9u32.to_le_bytes());
    assert!(spec.maps[".rodata"].is_read_only());
    assert!(!spec.maps[".data"].is_read_only());
    assert_eq!(
        spec.maps[".data"].origin,
        MapOrigin::Data {
            section: ".data".into()
        }
    );
    assert_eq!(spec.maps[".kconfig"].origin, MapOrigin::Kconfig);

    // Both programs call `scale`, appended after each one's own code; `first`
    // also takes `add_one` by address.
    let first = &spec.programs["first"];
    let second = &spec.programs["second"];
    assert_eq!(
        first.kind.target,
        AttachTarget::Tracepoint {
            category: "syscalls".into(),
            name: "sys_enter_getpid".into()
        }
    );
    assert_eq!(second.kind.prog_type, ProgramType::RawTracepoint);
    assert_eq!(first.func_info.len(), 3, "first, scale, add_one");
    assert_eq!(second.func_info.len(), 2, "second, scale");
    let local_calls = |p: &bpfkit_object::ProgramSpec| {
        p.insns
            .iter()
            .filter(|i| matches!(i, bpfkit_isa::Insn::Call(bpfkit_isa::CallTarget::Local(_))))
            .count()
    };
    assert_eq!(local_calls(first), 1);
    assert_eq!(local_calls(second), 1);
    assert!(first.insns.iter().any(|i| matches!(
        i,
        bpfkit_isa::Insn::LdImm64 {
            imm: bpfkit_isa::Imm64::Func(_),
            ..
        }
    )));
    assert!(targets(&spec, "first").contains(&RelocTarget::MapValue {
        map: ".data".into(),
        offset: 0
    }));
    assert!(targets(&spec, "second").contains(&RelocTarget::MapValue {
        map: ".data.custom".into(),
        offset: 0
    }));

    let kcfg: Vec<(String, u32, KconfigType, bool)> = spec
        .externs
        .values()
        .filter_map(|e| match e {
            ExternSpec::Kconfig(k) => Some((k.name.clone(), k.offset, k.ty, k.weak)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kcfg,
        vec![
            ("CONFIG_BPF_SYSCALL".into(), 0, KconfigType::Bool, true),
            (
                "CONFIG_HZ".into(),
                4,
                KconfigType::Int {
                    size: 4,
                    signed: true
                },
                true
            ),
            (
                "LINUX_KERNEL_VERSION".into(),
                8,
                KconfigType::Int {
                    size: 4,
                    signed: true
                },
                false
            ),
        ]
    );
    assert!(targets(&spec, "first").contains(&RelocTarget::MapValue {
        map: ".kconfig".into(),
        offset: 8
    }));
}

#[test]
fn legacy_maps_and_version() {
    let spec = fixture("legacy.bpf.o");
    let m = &spec.maps["legacy_counts"];
    assert_eq!(
        (m.map_type, m.key_size, m.value_size, m.max_entries),
        (MapType::Hash, 4, 8, 32)
    );
    assert_eq!(m.origin, MapOrigin::Legacy);
    assert_eq!(spec.kern_version, Some(0x061200));
    assert_eq!(
        spec.programs["legacy_prog"].kind.prog_type,
        ProgramType::SocketFilter
    );
}

#[test]
fn tracepoint_core_and_line_info() {
    let spec = fixture("tracepoint.bpf.o");
    let p = &spec.programs["handle_exec"];
    assert_eq!(
        p.kind.target,
        AttachTarget::Tracepoint {
            category: "sched".into(),
            name: "sched_process_exec".into()
        }
    );
    assert!(
        p.core_relos.len() >= 13,
        "{} CO-RE relocations",
        p.core_relos.len()
    );
    let kinds: std::collections::BTreeSet<String> = p
        .core_relos
        .iter()
        .map(|r| format!("{:?}", r.kind))
        .collect();
    for k in [
        "FieldByteOffset",
        "FieldExists",
        "FieldByteSize",
        "TypeExists",
        "TypeSize",
        "EnumvalExists",
        "EnumvalValue",
        "TypeIdLocal",
        "TypeIdTarget",
        "FieldLShiftU64",
        "FieldRShiftU64",
        "FieldSigned",
    ] {
        assert!(
            kinds.iter().any(|x| x.contains(k)),
            "missing {k} in {kinds:?}"
        );
    }
    let (file, line, _, text) = spec.source_line("handle_exec", 5).unwrap();
    assert!(file.ends_with("tracepoint.bpf.c"));
    assert!(line > 40 && !text.is_empty(), "{line}: {text}");
}

#[test]
fn core_against_the_running_kernel() {
    let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("SKIP: /sys/kernel/btf/vmlinux is not readable");
        return;
    };
    let target = bpfkit_btf::Btf::from_vec(vmlinux).unwrap();
    let mut spec = fixture("tracepoint.bpf.o");
    let before = spec.programs["handle_exec"].insns.clone();
    spec.apply_core(bpfkit_btf::TargetBtfs::new(&target))
        .unwrap();
    let after = &spec.programs["handle_exec"].insns;
    assert_eq!(before.len(), after.len());
    assert_ne!(&before, after, "offsets were rewritten for this kernel");
}

#[test]
fn one_program_is_relocated_on_its_own() {
    let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("SKIP: /sys/kernel/btf/vmlinux is not readable");
        return;
    };
    let target = bpfkit_btf::Btf::from_vec(vmlinux).unwrap();
    let spec = fixture("bootstrap.bpf.o");
    let mut prog = spec.programs["handle_exit"].clone();
    bpfkit_object::apply_core_relocations(
        &mut prog,
        spec.btf.as_ref().unwrap(),
        bpfkit_btf::TargetBtfs::new(&target),
    )
    .unwrap();
    // The same patch as relocating the whole object.
    let mut whole = fixture("bootstrap.bpf.o");
    whole
        .apply_core(bpfkit_btf::TargetBtfs::new(&target))
        .unwrap();
    assert_eq!(prog.insns, whole.programs["handle_exit"].insns);
    assert_ne!(prog.insns, spec.programs["handle_exit"].insns);
}

#[test]
fn xdp_parser_and_socket_filter_exactly() {
    let xdp = fixture("xdp_parser.bpf.o");
    assert_eq!(xdp.programs.keys().collect::<Vec<_>>(), ["xdp_parser"]);
    let p = &xdp.programs["xdp_parser"];
    assert_eq!(p.section, "xdp");
    assert_eq!(
        (&p.kind.prog_type, &p.kind.attach_type, &p.kind.target),
        (
            &ProgramType::Xdp,
            &Some(AttachType::Xdp),
            &AttachTarget::Unspecified
        )
    );
    // 42 instructions in 44 slots (two lddw); relocations index slots, as
    // the kernel counts them.
    assert_eq!(p.insns.len(), 42);
    assert_eq!(
        p.relocations
            .iter()
            .map(|r| (r.insn, r.target.clone()))
            .collect::<Vec<_>>(),
        vec![
            (18, RelocTarget::Map("proto_count".into())),
            (
                37,
                RelocTarget::MapValue {
                    map: ".rodata".into(),
                    offset: 0
                }
            ),
        ]
    );
    assert_eq!((p.func_info.len(), p.core_relos.len()), (1, 0));
    assert_eq!(
        xdp.maps.keys().collect::<Vec<_>>(),
        [".rodata", "proto_count"]
    );
    let counts = &xdp.maps["proto_count"];
    assert_eq!(
        (
            counts.map_type,
            counts.key_size,
            counts.value_size,
            counts.max_entries,
            counts.map_flags
        ),
        (MapType::Array, 4, 8, 256, 0)
    );
    // `drop_port` = 53, frozen.
    assert_eq!(
        xdp.maps[".rodata"].data.as_deref(),
        Some(&53u16.to_le_bytes()[..])
    );
    assert!(xdp.maps[".rodata"].is_read_only());
    assert_eq!(xdp.license, "GPL");

    let sock = fixture("socket.bpf.o");
    let f = &sock.programs["udp_port_filter"];
    assert_eq!(
        (f.kind.prog_type, f.kind.attach_type, f.insns.len()),
        (ProgramType::SocketFilter, None, 24)
    );
    assert!(f.relocations.is_empty() && sock.maps.is_empty());
}

#[test]
fn libbpf_bootstrap_style_objects() {
    let minimal = fixture("minimal.bpf.o");
    assert_eq!(minimal.license, "Dual BSD/GPL");
    assert_eq!(
        targets(&minimal, "handle_tp"),
        vec![
            RelocTarget::MapValue {
                map: ".bss".into(),
                offset: 0
            },
            RelocTarget::MapValue {
                map: ".rodata".into(),
                offset: 0
            }
        ]
    );
    let bootstrap = fixture("bootstrap.bpf.o");
    assert_eq!(bootstrap.programs.len(), 2);
    assert_eq!(bootstrap.maps["rb"].max_entries, 256 * 1024);
    assert!(bootstrap.programs["handle_exit"].core_relos.len() >= 2);
}

#[test]
fn the_same_bytes_give_the_same_spec() {
    for f in ["maps.bpf.o", "globals.bpf.o", "bootstrap.bpf.o"] {
        let a = format!("{:?}", fixture(f).programs);
        let b = format!("{:?}", fixture(f).programs);
        assert_eq!(a, b);
        assert_eq!(
            format!("{:?}", fixture(f).maps),
            format!("{:?}", fixture(f).maps)
        );
    }
}

#[test]
fn malformed_objects_are_errors() {
    assert!(matches!(
        ObjectSpec::parse(b"not an elf"),
        Err(ObjectError::Elf(_))
    ));
    let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(matches!(
        ObjectSpec::parse(&host),
        Err(ObjectError::NotBpf(62))
    ));
    let bytes = std::fs::read(path("xdp_parser.bpf.o")).unwrap();
    for cut in [16, 64, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ObjectSpec::parse(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
}

#[test]
fn globals_can_be_set_before_load() {
    let mut spec = fixture("globals.bpf.o");
    spec.set_global("limit", &7u32.to_le_bytes()).unwrap();
    spec.set_global("counter", &1u64.to_le_bytes()).unwrap();
    assert_eq!(
        spec.maps[".rodata"].data.as_deref(),
        Some(&7u32.to_le_bytes()[..])
    );
    assert_eq!(
        spec.maps[".data"].data.as_deref(),
        Some(&1u64.to_le_bytes()[..])
    );
    assert!(spec
        .set_global("limit", &[0u8; 8])
        .unwrap_err()
        .to_string()
        .contains("is 4 bytes"));
    assert!(spec.set_global("nope", &[0u8; 4]).is_err());
}

#[test]
fn misaligned_bytes_parse_too() {
    let bytes = std::fs::read(path("xdp_parser.bpf.o")).unwrap();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let spec = ObjectSpec::parse(&shifted[1..]).unwrap();
    assert!(spec.programs.contains_key("xdp_parser"));
}
