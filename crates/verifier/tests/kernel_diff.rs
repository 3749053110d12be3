//! Differential test against the running kernel, the oracle: every
//! hand-written case of `common`, every program of the committed objects
//! (bpf/obj and the test fixtures), and programs made by mutating those,
//! go through both the kernel's verifier (`BPF_PROG_LOAD` as root) and
//! bpfkit's, and the verdicts must agree.
//!
//! Needs `bpf()` access; without it the test says why and skips, and under
//! `CI=true` it fails instead.

mod common;

use bpfkit_abi::{map_flags, AttachType, MapType, ProgramType};
use bpfkit_isa::{CallTarget, Imm64, Insn};
use bpfkit_kernel::prog::{LoadExtras, ProgramLoad};
use bpfkit_kernel::{Collection, Error, KernelMap, LoadOptions, MapDefinition};
use bpfkit_object::{ObjectSpec, RelocTarget};
use bpfkit_verifier::{MapInfo, Program, Verifier, VerifyOptions};
use common::{apply, mutation};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

fn kernel_available() -> bool {
    match bpfkit_kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            common::skip(&format!("cannot use bpf(), the oracle of this test: {why}"));
            false
        }
    }
}

/// A program ready for both verifiers: raw instructions whose maps are
/// `map[idx:N]` into `maps` (and `fds`, in the same order).
struct RawProgram {
    name: String,
    prog_type: ProgramType,
    attach: Option<AttachType>,
    insns: Vec<Insn>,
    maps: Vec<MapInfo>,
    kernel_maps: Rc<Vec<KernelMap>>,
    /// The kernel functions it calls: this kernel's BTF id and name.
    kfuncs: Vec<(u32, String)>,
}

fn create_maps(maps: &[MapInfo], flags: &[u32]) -> Rc<Vec<KernelMap>> {
    let created = maps
        .iter()
        .zip(flags)
        .map(|(m, &f)| {
            let name: String = m
                .name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(15)
                .collect();
            let mut def = MapDefinition::new(
                &name,
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries.max(1),
            );
            def.map_flags = f;
            KernelMap::create(&def, None).unwrap_or_else(|e| panic!("create map {}: {e}", m.name))
        })
        .collect();
    Rc::new(created)
}

/// The kernel's verdict: `Ok` or the verifier's complaint.
fn kernel_verdict(p: &RawProgram) -> Result<(), String> {
    let load = ProgramLoad {
        name: "bpfkit_diff",
        prog_type: p.prog_type,
        expected_attach_type: p.attach,
        insns: &p.insns,
        license: "GPL",
        kern_version: 0,
        btf: None,
        attach_btf_id: 0,
        core_relos: Vec::new(),
    };
    let extras = LoadExtras {
        fd_array: p.kernel_maps.iter().map(|m| m.fd().as_fd()).collect(),
        ..LoadExtras::default()
    };
    match bpfkit_kernel::Program::load_with(&load, &extras) {
        Ok(_) => Ok(()),
        Err(Error::Verifier { message, .. }) => Err(message),
        Err(e) => Err(format!("load failed: {e}")),
    }
}

fn bpfkit_verdict(p: &RawProgram) -> Result<(), String> {
    let opts = VerifyOptions {
        maps: p.maps.clone(),
        attach_type: p.attach,
        kfunc_names: p.kfuncs.clone(),
        ..VerifyOptions::default()
    };
    Verifier::new(p.prog_type)
        .verify(Program::Raw(&p.insns), &opts)
        .map(|_| ())
        .map_err(|r| format!("insn {}: {}", r.insn, r.message))
}

fn verdict_word(v: &Result<(), String>) -> &'static str {
    if v.is_ok() {
        "accept"
    } else {
        "reject"
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed objects: the tools' (bpf/obj) and every crate's test fixtures.
fn objects() -> Vec<PathBuf> {
    let root = repo_root();
    let mut out = Vec::new();
    let mut dirs = vec![root.join("bpf/obj")];
    for c in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(c.unwrap().path().join("tests/fixtures"));
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "o") {
                out.push(p);
            }
        }
    }
    out.sort();
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
fn as_the_kernel_sees_it(spec: &ObjectSpec) -> Result<ObjectSpec, String> {
    let mut relocated = spec.clone();
    if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
        let vmlinux = bpfkit_kernel::btf::vmlinux().map_err(|e| e.to_string())?;
        let modules = bpfkit_kernel::btf::modules();
        let targets = modules
            .iter()
            .fold(bpfkit_btf::TargetBtfs::new(&vmlinux), |t, m| {
                t.with_module(m)
            });
        relocated
            .apply_core(targets)
            .map_err(|e| format!("CO-RE: {e}"))?;
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
    Ok(relocated)
}

/// An object's program as raw instructions with its maps created in the
/// kernel, for mutation. `None` for programs that need what a raw load
/// cannot give (BTF attach targets, kernel symbols).
fn raw_from_object(spec: &ObjectSpec, name: &str) -> Option<RawProgram> {
    let prog = &spec.programs[name];
    let t = prog.kind.prog_type;
    if matches!(
        t,
        ProgramType::Tracing | ProgramType::Lsm | ProgramType::Ext | ProgramType::StructOps
    ) {
        return None;
    }
    let mut insns = prog.insns.clone();
    let mut slot_of = Vec::new();
    let mut slot = 0;
    for i in &insns {
        slot_of.push(slot);
        slot += i.slots();
    }
    let mut maps: Vec<MapInfo> = Vec::new();
    let mut flags = Vec::new();
    for r in &prog.relocations {
        let (map, offset) = match &r.target {
            RelocTarget::Map(m) => (m, None),
            RelocTarget::MapValue { map, offset } => (map, Some(*offset)),
            RelocTarget::Ksym { .. } => return None,
        };
        let m = spec.maps.get(map)?;
        if m.inner.is_some() || m.map_type == MapType::Unspec {
            return None;
        }
        let idx = match maps.iter().position(|x| &x.name == map) {
            Some(i) => i,
            None => {
                let mut info = MapInfo::new(
                    map,
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries.max(1),
                );
                info.read_only = m.map_flags & map_flags::RDONLY_PROG != 0;
                if m.map_type == MapType::PerfEventArray && m.max_entries == 0 {
                    info.max_entries = 64;
                }
                maps.push(info);
                flags.push(m.map_flags & !(map_flags::MMAPABLE));
                maps.len() - 1
            }
        };
        let k = slot_of.iter().position(|&s| s == r.insn)?;
        let Insn::LdImm64 { dst, .. } = insns[k] else {
            return None;
        };
        insns[k] = Insn::LdImm64 {
            dst,
            imm: match offset {
                None => Imm64::MapIdx(idx as i32),
                Some(o) => Imm64::MapIdxValue {
                    idx: idx as i32,
                    offset: o,
                },
            },
        };
    }
    if insns.iter().any(|i| {
        matches!(
            i,
            Insn::Call(CallTarget::Kfunc { .. })
                | Insn::LdImm64 {
                    imm: Imm64::BtfVar { .. },
                    ..
                }
        )
    }) {
        return None;
    }
    let kernel_maps = create_maps(&maps, &flags);
    Some(RawProgram {
        name: name.to_string(),
        prog_type: t,
        attach: prog.kind.attach_type,
        insns,
        maps,
        kernel_maps,
        kfuncs: Vec::new(),
    })
}

/// `insns` with the cases' placeholder kfunc ids (`common::KFUNCS`)
/// replaced by this kernel's BTF ids, and those ids with their names.
fn with_kernel_kfunc_ids(mut insns: Vec<Insn>) -> (Vec<Insn>, Vec<(u32, String)>) {
    let mut names = Vec::new();
    for insn in &mut insns {
        let Insn::Call(CallTarget::Kfunc { btf_id, .. }) = insn else {
            continue;
        };
        let Some(&(_, name)) = common::KFUNCS.iter().find(|(p, _)| *p as i32 == *btf_id) else {
            continue;
        };
        let vmlinux = bpfkit_kernel::btf::vmlinux().expect("this kernel's BTF");
        let id = vmlinux
            .find_by_name_kind(name, bpfkit_btf::Kind::Func)
            .unwrap_or_else(|| panic!("this kernel has no kfunc {name}"));
        *btf_id = id as i32;
        names.push((id, name.to_string()));
    }
    (insns, names)
}

#[test]
fn hand_written_cases_agree_with_the_kernel() {
    if !kernel_available() {
        return;
    }
    let maps = common::maps();
    let kernel_maps = create_maps(&maps, &[0, 0, 0]);
    let mut disagree = Vec::new();
    let cases = common::cases();
    for case in &cases {
        let (insns, kfuncs) = with_kernel_kfunc_ids(case.insns());
        let p = RawProgram {
            name: case.name.to_string(),
            prog_type: case.prog_type,
            attach: case.attach,
            insns,
            maps: maps.clone(),
            kernel_maps: Rc::clone(&kernel_maps),
            kfuncs,
        };
        let k = kernel_verdict(&p);
        let b = bpfkit_verdict(&p);
        if k.is_ok() != b.is_ok() {
            disagree.push(format!(
                "{} [{}]: kernel {} ({}), bpfkit {} ({})",
                case.name,
                case.category,
                verdict_word(&k),
                k.as_ref().err().map(String::as_str).unwrap_or(""),
                verdict_word(&b),
                b.as_ref().err().map(String::as_str).unwrap_or("")
            ));
        }
    }
    println!(
        "hand-written cases: {} of {} agree with the kernel",
        cases.len() - disagree.len(),
        cases.len()
    );
    assert!(
        disagree.is_empty(),
        "disagreements with the kernel:\n{}",
        disagree.join("\n")
    );
}

#[test]
fn committed_objects_agree_with_the_kernel() {
    if !kernel_available() {
        return;
    }
    let mut disagree = Vec::new();
    let (mut compared, mut not_loadable) = (0, Vec::new());
    for path in objects() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(spec) = parse_object(&path) else {
            not_loadable.push(format!(
                "{file}: does not parse or its kconfig cannot be computed"
            ));
            continue;
        };
        // bpfkit verifies what the kernel will: the program after CO-RE.
        let relocated = match as_the_kernel_sees_it(&spec) {
            Ok(r) => r,
            Err(e) => {
                not_loadable.push(format!("{file}: {e}"));
                continue;
            }
        };
        for name in spec.programs.keys() {
            // Kernel functions bpfkit's table has are compared; others
            // are refused by bpfkit as not modelled.
            let unmodelled = spec.programs[name]
                .relocations
                .iter()
                .find_map(|r| match &r.target {
                    RelocTarget::Ksym {
                        name,
                        is_func: true,
                        ..
                    } if bpfkit_abi::kfunc_proto(name).is_none() => Some(name.clone()),
                    _ => None,
                });
            if let Some(kfunc) = unmodelled {
                not_loadable.push(format!(
                    "{file}:{name}: calls kfunc {kfunc}, which bpfkit does not model"
                ));
                continue;
            }
            let mut one = spec.clone();
            one.programs.retain(|n, _| n == name);
            let kernel = match Collection::load(&one, &LoadOptions::default()) {
                Ok(_) => Ok(()),
                Err(Error::Verifier { message, .. }) => Err(message),
                Err(e) => {
                    not_loadable.push(format!("{file}:{name}: {e}"));
                    continue;
                }
            };
            let prog = &relocated.programs[name];
            let ours = Verifier::new(prog.kind.prog_type)
                .verify(
                    Program::Object {
                        object: &relocated,
                        program: prog,
                    },
                    &VerifyOptions::default(),
                )
                .map(|_| ())
                .map_err(|r| r.to_string());
            compared += 1;
            if kernel.is_ok() != ours.is_ok() {
                disagree.push(format!(
                    "{file}:{name}: kernel {} ({}), bpfkit {} ({})",
                    verdict_word(&kernel),
                    kernel.as_ref().err().map(String::as_str).unwrap_or(""),
                    verdict_word(&ours),
                    ours.as_ref().err().map(String::as_str).unwrap_or("")
                ));
            }
        }
    }
    for n in &not_loadable {
        println!("not compared: {n}");
    }
    println!(
        "object programs: {} of {compared} agree with the kernel",
        compared - disagree.len()
    );
    assert!(
        compared >= 40,
        "only {compared} object programs could be compared"
    );
    assert!(
        disagree.is_empty(),
        "disagreements with the kernel:\n{}",
        disagree.join("\n")
    );
}

#[test]
fn mutated_programs_agree_with_the_kernel() {
    if !kernel_available() {
        return;
    }
    // Seeds: the hand-written cases and the objects' programs.
    let mut seeds: Vec<RawProgram> = Vec::new();
    let maps = common::maps();
    for case in common::cases() {
        // The kernel takes ~10 s for each program that runs into its
        // complexity limit; mutants of that one add time, not coverage.
        if case.reason == "too large" {
            continue;
        }
        let (insns, kfuncs) = with_kernel_kfunc_ids(case.insns());
        seeds.push(RawProgram {
            name: case.name.to_string(),
            prog_type: case.prog_type,
            attach: case.attach,
            insns,
            maps: maps.clone(),
            kernel_maps: create_maps(&maps, &[0, 0, 0]),
            kfuncs,
        });
    }
    for path in objects() {
        let Some(spec) = parse_object(&path) else {
            continue;
        };
        let Ok(spec) = as_the_kernel_sees_it(&spec) else {
            continue;
        };
        for name in spec.programs.keys() {
            if let Some(mut p) = raw_from_object(&spec, name) {
                p.name = format!("{}:{name}", path.file_name().unwrap().to_string_lossy());
                // As above: programs at the complexity limit cost the kernel ~10 s each.
                if bpfkit_verdict(&p).is_err_and(|m| m.contains("too large")) {
                    continue;
                }
                seeds.push(p);
            }
        }
    }
    let total = 2100;
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: total,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (any::<usize>(), proptest::collection::vec(mutation(), 1..4));
    let (mut agree, mut runs) = (0usize, 0usize);
    let mut disagreements = Vec::new();
    let mut kernel_rejects = 0;
    for _ in 0..total {
        let (seed_idx, muts) = strategy.new_tree(&mut runner).unwrap().current();
        let seed = &seeds[seed_idx % seeds.len()];
        let mut insns = seed.insns.clone();
        for m in &muts {
            apply(&mut insns, m);
        }
        let p = RawProgram {
            name: seed.name.clone(),
            prog_type: seed.prog_type,
            attach: seed.attach,
            insns,
            maps: seed.maps.clone(),
            kernel_maps: Rc::clone(&seed.kernel_maps),
            kfuncs: seed.kfuncs.clone(),
        };
        let t0 = std::time::Instant::now();
        let k = kernel_verdict(&p);
        let t1 = std::time::Instant::now();
        let b = bpfkit_verdict(&p);
        let t2 = std::time::Instant::now();
        if std::env::var("KDIFF_TIMES").is_ok() && (t2 - t0).as_millis() > 100 {
            println!(
                "slow: {} kernel {:?} bpfkit {:?}: {:?} / {:?}",
                p.name,
                t1 - t0,
                t2 - t1,
                k.as_ref().err(),
                b.as_ref().err()
            );
        }
        runs += 1;
        kernel_rejects += k.is_err() as usize;
        if k.is_ok() == b.is_ok() {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{} {:?}: kernel {} ({}), bpfkit {} ({})",
                p.name,
                muts,
                verdict_word(&k),
                k.as_ref().err().map(String::as_str).unwrap_or(""),
                verdict_word(&b),
                b.as_ref().err().map(String::as_str).unwrap_or("")
            ));
        }
    }
    for d in &disagreements {
        println!("disagree: {d}");
    }
    println!(
        "mutated programs: {agree} of {runs} verdicts agree ({kernel_rejects} rejected by the kernel), from {} seeds",
        seeds.len()
    );
    assert!(runs >= 2000);
    assert!(
        agree * 100 >= runs * 99,
        "agreement {agree}/{runs} is below 99%"
    );
}

#[test]
fn random_programs_agree_with_the_kernel() {
    if !kernel_available() {
        return;
    }
    let maps = common::maps();
    let kernel_maps = create_maps(&maps, &[0, 0, 0]);
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::XorShift),
    );
    let strategy = (
        proptest::collection::vec(any::<[u8; 8]>(), 1..40),
        any::<bool>(),
    );
    let total = 5000;
    let (mut agree, mut accepted) = (0, 0);
    let mut disagreements = Vec::new();
    for _ in 0..total {
        let (slots, xdp) = strategy.new_tree(&mut runner).unwrap().current();
        let p = RawProgram {
            name: "random".into(),
            prog_type: if xdp {
                ProgramType::Xdp
            } else {
                ProgramType::SocketFilter
            },
            attach: None,
            insns: common::random_program(&slots),
            maps: maps.clone(),
            kernel_maps: Rc::clone(&kernel_maps),
            kfuncs: Vec::new(),
        };
        let k = kernel_verdict(&p);
        let b = bpfkit_verdict(&p);
        accepted += k.is_ok() as usize;
        if k.is_ok() == b.is_ok() {
            agree += 1;
        } else {
            disagreements.push(format!(
                "kernel {} ({}), bpfkit {} ({})\n{}",
                verdict_word(&k),
                k.as_ref().err().map(String::as_str).unwrap_or(""),
                verdict_word(&b),
                b.as_ref().err().map(String::as_str).unwrap_or(""),
                bpfkit_isa::disassemble(&p.insns, bpfkit_isa::Syntax::Llvm)
            ));
        }
    }
    for d in &disagreements {
        println!("disagree: {d}");
    }
    println!(
        "random programs: {agree} of {total} verdicts agree ({accepted} accepted by the kernel)"
    );
    assert!(
        agree * 100 >= total * 99,
        "agreement {agree}/{total} is below 99%"
    );
}
