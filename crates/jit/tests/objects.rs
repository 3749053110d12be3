//! The project's clang-compiled objects (every crate's tests/fixtures and
//! bpf/obj) load, run and leave their maps the same under every engine
//! (the interpreter, the x86-64 JIT, the ARM64 back end under qemu): each
//! program is test-run on the same inputs in a VM per engine, and the
//! results (or errors), the trace output and every map's contents must match.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use bpfkit_abi::MapType;
use bpfkit_jit::qemu::Qemu;
use bpfkit_object::ObjectSpec;
use bpfkit_vm::object::LoadedObject;
use bpfkit_vm::{HelperOutcome, Program, TestRun, Vm};

fn objects() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("tests/fixtures"))
        .collect();
    dirs.push(root.join("bpf/obj"));
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "o") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn packet(proto: u8, dport: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(42)];
    p[12] = 0x08;
    p[14] = 0x45;
    p[16..18].copy_from_slice(&((len.max(42) - 14) as u16).to_be_bytes());
    p[23] = proto;
    p[34..36].copy_from_slice(&4321u16.to_be_bytes());
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    p
}

fn inputs() -> Vec<TestRun> {
    let mut v: Vec<TestRun> = [
        packet(17, 5353, 64),
        packet(17, 53, 42),
        packet(6, 80, 100),
        packet(6, 443, 60),
        vec![0u8; 14],
    ]
    .into_iter()
    .map(|data_in| TestRun {
        data_in,
        ctx_in: vec![],
        repeat: 2,
    })
    .collect();
    // A raw context (tracepoint, kprobe, iterator programs).
    v.push(TestRun {
        data_in: (0..=255u8).collect(),
        ctx_in: vec![],
        repeat: 1,
    });
    v
}

/// A VM whose clock helpers return fixed times, so that programs storing
/// timestamps leave the same map contents under both engines.
fn vm() -> Vm {
    let mut vm = Vm::new();
    for (id, name) in [(5, "bpf_ktime_get_ns"), (125, "bpf_ktime_get_boot_ns")] {
        vm.helpers_mut()
            .register(id, name, |_, _| Ok(HelperOutcome::Return(1_000_000_000)));
    }
    vm
}

fn maps(vm: &Vm, obj: &LoadedObject) -> Vec<String> {
    obj.maps
        .iter()
        .map(|(name, &index)| {
            let m = vm.map(index).unwrap();
            // Map-in-map values are map ids, which count across VMs.
            let ids = matches!(m.def().map_type, MapType::ArrayOfMaps | MapType::HashOfMaps);
            let mut entries = Vec::new();
            let mut key: Option<Vec<u8>> = None;
            while let Ok(Some(k)) = m.next_key(key.as_deref()) {
                if ids {
                    entries.push(format!("{k:?}"));
                } else {
                    entries.push(format!("{k:?}={:?}", m.lookup(&k)));
                }
                key = Some(k);
                if entries.len() > 10_000 {
                    break;
                }
            }
            format!("{name}: {}", entries.join(" "))
        })
        .collect()
}

/// Which engine runs the programs.
#[derive(Clone)]
enum Engine {
    Interpreter,
    #[cfg(target_arch = "x86_64")]
    X86,
    A64(Arc<Qemu>),
}

/// Everything observable from running every program of `spec` on every input.
fn observe(spec: &ObjectSpec, engine: &Engine) -> Vec<String> {
    let mut vm = vm();
    let chosen = engine.clone();
    let compile = move |p: &mut Program| match &chosen {
        Engine::Interpreter => Ok(()),
        #[cfg(target_arch = "x86_64")]
        Engine::X86 => bpfkit_jit::compile(p).map_err(|e| e.to_string()),
        Engine::A64(q) => bpfkit_jit::hosted::compile_a64(p, q).map_err(|e| e.to_string()),
    };
    let loaded = vm.load_object_with(spec, &compile);
    let jit = !matches!(engine, Engine::Interpreter);
    let obj = match loaded {
        Ok(obj) => obj,
        Err(e) => return vec![format!("load: {e}")],
    };
    if jit {
        assert!(obj.programs.values().all(|p| p.compiled().is_some()));
    }
    let mut seen = Vec::new();
    for (name, prog) in &obj.programs {
        for (i, input) in inputs().iter().enumerate() {
            let r = vm
                .test_run(prog, input)
                .map(|r| (r.retval, r.data_out, r.ctx_out));
            seen.push(format!(
                "{name} #{i}: {r:?} last_executed={}",
                vm.last_executed()
            ));
            seen.push(format!("trace: {:?}", vm.take_trace()));
        }
    }
    seen.extend(maps(&vm, &obj));
    seen
}

/// Compares every fixture object under the interpreter and `engine`.
fn compare_with_interpreter(engine: Engine) {
    let mut ran = 0;
    let mut programs = 0;
    for path in objects() {
        let Ok(spec) = ObjectSpec::from_file(&path) else {
            // Fixtures the parser must refuse (kconfig edge cases).
            continue;
        };
        let interp = observe(&spec, &Engine::Interpreter);
        let jit = observe(&spec, &engine);
        assert_eq!(interp.len(), jit.len(), "{}", path.display());
        for (a, b) in interp.iter().zip(&jit) {
            assert_eq!(a, b, "{}", path.display());
        }
        if !interp[0].starts_with("load:") {
            ran += 1;
            programs += spec.programs.len();
        }
    }
    // The fixtures include XDP, socket, tracepoint, tail-call, callback and
    // global-data objects; most load in the VM.
    assert!(
        ran >= 10 && programs >= 20,
        "{ran} objects, {programs} programs ran"
    );
    eprintln!("{ran} objects, {programs} programs compared");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn every_fixture_object_behaves_the_same_under_the_x86_jit() {
    compare_with_interpreter(Engine::X86);
}

#[test]
fn every_fixture_object_behaves_the_same_on_arm64_code() {
    match Qemu::find() {
        Ok(q) => compare_with_interpreter(Engine::A64(Arc::new(q))),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "{e}");
            eprintln!("skipped: {e}");
        }
    }
}
