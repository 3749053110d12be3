//! The JIT side by side with bpfkit's interpreter, rbpf's JIT, uBPF's JIT
//! and native code, on the VM's interpreter benchmarks
//! (crates/vm/benches/interp.rs: the same four programs).
//!
//! - "native-c" is the same algorithm in C (crates/vm/benches/common/
//!   workloads.c), compiled with `clang -O2` into a shared object under
//!   target/ when the bench starts and called through `dlsym`;
//!   "native-rust" is it in Rust, compiled by rustc.
//! - "ubpf-jit" is uBPF's x86-64 JIT, built from source at bench start:
//!   the source tree is `$UBPF_SRC` (a checkout with `vm/`) or, without
//!   it, extracted from the mirror /work/.mirror/iovisor+ubpf/repo; its
//!   `vm/*.c` are compiled with clang into a shared object (no cmake: the
//!   `ubpf_config.h` cmake would make is written here). uBPF's loader takes
//!   no map pseudo-instructions, so the hash counter's `r1 = map[fd:0]`
//!   becomes a plain `lddw` of the C map's address, and helpers 1 and 2
//!   are the C map's lookup and update.
//! - "bpfkit-jit-verified" is the JIT in verified-unchecked mode
//!   (`bpfkit_jit::compile_verified`): the program is verified as a socket
//!   filter whose r1 is the run's memory (`PTR_TO_MEM` of its length), and
//!   the stack accesses the verifier proved in-frame lose their checks. A
//!   program the verifier rejects has no entry, with the reason printed.
//! - rbpf has no maps, so the hash map counter has no rbpf entry.
//! - bpfkit runs over the workload's memory with `Vm::run_vec`, which lends
//!   the buffer to the run, as rbpf and uBPF run over the caller's memory
//!   (`Vm::run` would copy it in and out).
//!
//! A column whose tool is missing (no clang, no uBPF source) is left out
//! with the reason printed. After criterion's figures, a table gives each
//! engine's median time per run (from the samples criterion took) and the
//! JIT's ratios to the others.
//!
//! Run with `cargo bench -p bpfkit-jit`.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bpfkit_abi::{MapType, ProgramType};
use bpfkit_isa::{assemble, encode, ByteOrder, Syntax};
use bpfkit_verifier::{EntryState, MapInfo, RegState, RegType, Verifier, VerifyOptions};
use bpfkit_vm::{MapDef, Program, Vm};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion};

#[path = "../../vm/benches/common/mod.rs"]
mod common;
use common::workloads::*;

/// Inputs longer than this are lent to runs (`Vm::run_vec`), shorter ones copied.
const LEND_ABOVE: usize = 4096;

fn program(src: &str) -> (Program, Program, Vec<u8>) {
    let insns = assemble(src, Syntax::Llvm).expect("benchmark program assembles");
    let bytes = encode(&insns, ByteOrder::Little);
    let interp = Program::new(insns).expect("benchmark program loads");
    let mut jit = interp.clone();
    bpfkit_jit::compile(&mut jit).expect("benchmark program compiles");
    (interp, jit, bytes)
}

fn native_primes() -> u64 {
    let mut count = 0;
    let mut n = 2u64;
    while n < 2000 {
        let mut d = 2u64;
        loop {
            if d * d > n {
                count += 1;
                break;
            }
            if n % d == 0 {
                break;
            }
            d += 1;
        }
        n += 1;
    }
    count
}

fn native_memcpy(mem: &mut [u8]) -> u64 {
    let (src, dst) = mem.split_at_mut(65536);
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        d.copy_from_slice(s);
    }
    65536
}

fn native_parse(p: &[u8]) -> u64 {
    if p.len() < 14 || u16::from_le_bytes([p[12], p[13]]) != 0x8 {
        return 0;
    }
    let ihl = ((p[14] & 15) as usize) << 2;
    let l4 = 14 + ihl;
    if l4 + 20 > p.len() || p[23] != 6 {
        return 0;
    }
    u16::from_be_bytes([p[l4 + 2], p[l4 + 3]]) as u64 + (p[l4 + 13] & 18) as u64
}

fn native_hash_counter(map: &mut HashMap<u32, u64>) -> u64 {
    for i in 0..1000u32 {
        *map.entry(i & 63).or_insert(0) += 1;
    }
    1000
}

// ---- C side: building and loading shared objects. ----

/// A `dlopen`ed shared object, closed on drop.
struct Lib {
    handle: *mut c_void,
    path: PathBuf,
}

impl Lib {
    fn open(path: &Path) -> Result<Lib, String> {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: `c` is a NUL-terminated path; the object's initialisers
        // are those of C code built by this bench (no constructors).
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("dlopen {}: {}", path.display(), dl_error()));
        }
        Ok(Lib {
            handle,
            path: path.to_owned(),
        })
    }

    /// The address of symbol `name`.
    /// Symbol `name` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be the function's prototype.
    unsafe fn function<F: Copy>(&self, name: &str) -> Result<F, String> {
        let p = self.sym(name)?;
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        // SAFETY: `p` is the function's address and `F` (the caller
        // promises) its pointer type.
        Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
    }

    fn sym(&self, name: &str) -> Result<*mut c_void, String> {
        let c = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: `handle` is a live handle from dlopen, `c` NUL-terminated.
        let p = unsafe { libc::dlsym(self.handle, c.as_ptr()) };
        if p.is_null() {
            return Err(format!("{}: no symbol `{name}`", self.path.display()));
        }
        Ok(p)
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and nothing from the object
        // is used after its `Lib` is dropped (callers keep it alive).
        unsafe {
            libc::dlclose(self.handle);
        }
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message that stays
    // valid until the next dl* call on this thread.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// Where the bench puts what it builds: target/<profile>/bench-c.
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    // target/<profile>/deps/jit-<hash>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the bench runs from target/<profile>/deps");
    profile.join("bench-c")
}

fn compile_c(sources: &[PathBuf], includes: &[PathBuf], out: &Path) -> Result<(), String> {
    let mut cmd = Command::new("clang");
    cmd.args(["-O2", "-fPIC", "-shared", "-w", "-o"]).arg(out);
    for i in includes {
        cmd.arg("-I").arg(i);
    }
    cmd.args(sources);
    let output = cmd
        .output()
        .map_err(|e| format!("running clang (is it installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "clang failed building {}:\n{}",
            out.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The C twins of the workloads, built with `clang -O2`.
fn build_native_c(dir: &Path) -> Result<Lib, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vm/benches/common/workloads.c");
    let out = dir.join("libbpfkit_bench_native.so");
    compile_c(&[src], &[], &out)?;
    Lib::open(&out)
}

const UBPF_MIRROR: &str = "/work/.mirror/iovisor+ubpf/repo";

/// uBPF's `vm/` directory: `$UBPF_SRC/vm`, or the mirror's HEAD extracted
/// into `dir`.
fn ubpf_source(dir: &Path) -> Result<PathBuf, String> {
    if let Some(src) = std::env::var_os("UBPF_SRC") {
        let vm = PathBuf::from(src).join("vm");
        return if vm.join("inc/ubpf.h").is_file() {
            Ok(vm)
        } else {
            Err(format!(
                "UBPF_SRC has no vm/inc/ubpf.h ({} is not a uBPF checkout)",
                vm.display()
            ))
        };
    }
    if !Path::new(UBPF_MIRROR).is_dir() {
        return Err(format!(
            "no uBPF source: set UBPF_SRC to a uBPF checkout (the mirror {UBPF_MIRROR} is absent)"
        ));
    }
    let tree = dir.join("ubpf-src");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git --git-dir={UBPF_MIRROR} archive HEAD vm | tar -x -C {}",
            tree.display()
        ))
        .status()
        .map_err(|e| format!("extracting uBPF from {UBPF_MIRROR}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "extracting uBPF from {UBPF_MIRROR} failed ({status})"
        ));
    }
    Ok(tree.join("vm"))
}

/// uBPF built from source: `vm/*.c` (not its test driver) into one shared
/// object, with the `ubpf_config.h` its cmake would generate (elf.h is
/// there on Linux; retpolines left at their default, on).
fn build_ubpf(dir: &Path) -> Result<Ubpf, String> {
    let vm = ubpf_source(dir)?;
    let gen = dir.join("ubpf-gen");
    std::fs::create_dir_all(&gen).map_err(|e| format!("{}: {e}", gen.display()))?;
    std::fs::write(
        gen.join("ubpf_config.h"),
        "#pragma once\n#define UBPF_HAS_ELF_H\n",
    )
    .map_err(|e| format!("writing ubpf_config.h: {e}"))?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&vm)
        .map_err(|e| format!("{}: {e}", vm.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c") && !p.ends_with("test.c"))
        .collect();
    sources.sort();
    let out = dir.join("libubpf.so");
    compile_c(&sources, &[vm.join("inc"), gen, vm.clone()], &out)?;
    Ubpf::new(Lib::open(&out)?)
}

type UbpfJitFn = unsafe extern "C" fn(*mut c_void, usize) -> u64;

/// uBPF's API (vm/inc/ubpf.h), resolved from the shared object.
struct Ubpf {
    create: unsafe extern "C" fn() -> *mut c_void,
    destroy: unsafe extern "C" fn(*mut c_void),
    register: unsafe extern "C" fn(*mut c_void, u32, *const c_char, *mut c_void) -> c_int,
    load: unsafe extern "C" fn(*mut c_void, *const c_void, u32, *mut *mut c_char) -> c_int,
    compile: unsafe extern "C" fn(*mut c_void, *mut *mut c_char) -> Option<UbpfJitFn>,
    _lib: Lib,
}

impl Ubpf {
    fn new(lib: Lib) -> Result<Ubpf, String> {
        // SAFETY: each symbol is the uBPF function of that name, whose C
        // prototype in ubpf.h the field's type repeats.
        unsafe {
            Ok(Ubpf {
                create: lib.function("ubpf_create")?,
                destroy: lib.function("ubpf_destroy")?,
                register: lib.function("ubpf_register")?,
                load: lib.function("ubpf_load")?,
                compile: lib.function("ubpf_compile")?,
                _lib: lib,
            })
        }
    }

    /// Loads and JIT-compiles `code` with `helpers` (index, name, address).
    fn jit(
        &self,
        code: &[u8],
        helpers: &[(u32, &str, *mut c_void)],
    ) -> Result<UbpfProgram<'_>, String> {
        // SAFETY: ubpf_create has no preconditions; NULL means no memory.
        let vm = unsafe { (self.create)() };
        if vm.is_null() {
            return Err("ubpf_create failed".into());
        }
        let mut prog = UbpfProgram {
            ubpf: self,
            vm,
            f: None,
        };
        for &(index, name, f) in helpers {
            let name = CString::new(name).map_err(|e| e.to_string())?;
            // SAFETY: `vm` is live and `f` has the external_function_t
            // prototype; uBPF keeps the `name` pointer, so it is leaked
            // below to outlive the vm.
            let rc = unsafe { (self.register)(vm, index, name.as_ptr(), f) };
            std::mem::forget(name);
            if rc < 0 {
                return Err(format!("ubpf_register of helper {index} failed"));
            }
        }
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `code` is valid for its length; `err` receives a malloc'd
        // message on failure.
        let rc = unsafe { (self.load)(vm, code.as_ptr().cast(), code.len() as u32, &mut err) };
        if rc < 0 {
            return Err(format!("ubpf_load: {}", take_message(err)));
        }
        // SAFETY: as for ubpf_load.
        prog.f = unsafe { (self.compile)(vm, &mut err) };
        if prog.f.is_none() {
            return Err(format!("ubpf_compile: {}", take_message(err)));
        }
        Ok(prog)
    }
}

fn take_message(err: *mut c_char) -> String {
    if err.is_null() {
        return "no message".into();
    }
    // SAFETY: uBPF's error messages are malloc'd NUL-terminated strings
    // handed to the caller to free.
    unsafe {
        let s = CStr::from_ptr(err).to_string_lossy().into_owned();
        libc::free(err.cast());
        s
    }
}

/// A program uBPF loaded and compiled; destroyed with its vm.
struct UbpfProgram<'u> {
    ubpf: &'u Ubpf,
    vm: *mut c_void,
    f: Option<UbpfJitFn>,
}

impl UbpfProgram<'_> {
    fn run(&self, mem: &mut [u8]) -> u64 {
        let f = self.f.expect("a compiled uBPF program has code");
        let ptr = if mem.is_empty() {
            std::ptr::null_mut()
        } else {
            mem.as_mut_ptr().cast()
        };
        // SAFETY: uBPF's JIT runs the benchmark program, which stays
        // within `mem` and the helpers' map (checked by bpfkit's
        // interpreter on the same program and input before timing).
        unsafe { f(ptr, mem.len()) }
    }
}

impl Drop for UbpfProgram<'_> {
    fn drop(&mut self) {
        // SAFETY: `vm` came from ubpf_create and is not used afterwards.
        unsafe { (self.ubpf.destroy)(self.vm) }
    }
}

/// The C side of the comparison: what could be built, or why not.
struct CSide {
    native: Result<Lib, String>,
    ubpf: Result<Ubpf, String>,
}

impl CSide {
    fn build() -> CSide {
        let dir = out_dir();
        let made = std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()));
        let native = made.clone().and_then(|_| build_native_c(&dir));
        let ubpf = made.and_then(|_| build_ubpf(&dir));
        if let Err(e) = &native {
            println!("native-c column missing: {e}");
        }
        if let Err(e) = &ubpf {
            println!("ubpf-jit column missing: {e}");
        }
        CSide { native, ubpf }
    }

    /// A C function of the native object, as type `F`.
    fn native_fn<F: Copy>(&self, name: &str) -> Option<F> {
        let lib = self.native.as_ref().ok()?;
        // SAFETY: callers name a function of workloads.c with `F` its
        // prototype.
        unsafe { lib.function(name) }
            .map_err(|e| println!("{e}"))
            .ok()
    }
}

// ---- Timing: criterion's samples, kept for the ratio table. ----

/// One workload's median time per run (ns) by engine.
struct Row {
    name: &'static str,
    ns: Vec<(&'static str, f64)>,
}

impl Row {
    fn get(&self, engine: &str) -> Option<f64> {
        self.ns.iter().find(|(e, _)| *e == engine).map(|&(_, v)| v)
    }
}

/// Benchmarks `f` as `id` in `group` and records its median ns per run.
fn timed(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    row: &mut Row,
    id: &'static str,
    mut f: impl FnMut() -> u64,
) {
    let mut per_run = Vec::new();
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let took = start.elapsed();
            per_run.push(took.as_nanos() as f64 / iters as f64);
            took
        })
    });
    if per_run.is_empty() {
        return; // filtered out on the command line
    }
    per_run.sort_by(f64::total_cmp);
    row.ns.push((id, per_run[per_run.len() / 2]));
}

const ENGINES: [&str; 7] = [
    "bpfkit-interp",
    "bpfkit-jit",
    "bpfkit-jit-verified",
    "rbpf-jit",
    "ubpf-jit",
    "native-c",
    "native-rust",
];

fn print_table(rows: &[Row]) {
    println!();
    println!("median ns per run (criterion's samples)");
    print!("{:<14}", "workload");
    for e in ENGINES {
        print!("{:>14}", e.trim_start_matches("bpfkit-"));
    }
    println!();
    for row in rows {
        print!("{:<14}", row.name);
        for e in ENGINES {
            match row.get(e) {
                Some(v) => print!("{v:>14.1}"),
                None => print!("{:>14}", "-"),
            }
        }
        println!();
    }
    println!();
    println!(
        "ratios: interp/jit = the JIT's speedup over the interpreter (goal >= 10); \
         jit/X = the JIT's time over X's (< 1: the JIT is faster; goal <= 1.5 for native-c \
         on primes and memcpy, < 1 for ubpf-jit)"
    );
    let cols = [
        ("interp/jit", "bpfkit-interp", true),
        ("jit/verified", "bpfkit-jit-verified", false),
        ("jit/native-c", "native-c", false),
        ("jit/native-rs", "native-rust", false),
        ("jit/ubpf", "ubpf-jit", false),
        ("jit/rbpf", "rbpf-jit", false),
    ];
    print!("{:<14}", "workload");
    for (h, ..) in cols {
        print!("{h:>15}");
    }
    println!();
    for row in rows {
        print!("{:<14}", row.name);
        let jit = row.get("bpfkit-jit");
        for (_, other, inverse) in cols {
            match (jit, row.get(other)) {
                (Some(j), Some(o)) => {
                    let r = if inverse { o / j } else { j / o };
                    print!("{r:>15.2}")
                }
                _ => print!("{:>15}", "-"),
            }
        }
        println!();
    }
}

// ---- The workloads. ----

/// The workload verified and compiled in verified-unchecked mode, or
/// `None` (saying why) when the verifier rejects it.
fn verified(name: &str, src: &str, mem_len: usize, maps: Vec<MapInfo>) -> Option<Program> {
    let insns = assemble(src, Syntax::Llvm).expect("benchmark program assembles");
    let mut prog = Program::new(insns).expect("benchmark program loads");
    let mut opts = VerifyOptions {
        maps,
        ..VerifyOptions::default()
    };
    if mem_len > 0 {
        opts.entry = Some(EntryState {
            regs: vec![
                (1, RegState::pointer(RegType::Mem, mem_len as u32)),
                (
                    2,
                    RegState::scalar(bpfkit_verifier::Scalar::constant(mem_len as u64)),
                ),
            ],
            stack: Vec::new(),
        });
    }
    let verifier = Verifier::new(ProgramType::SocketFilter);
    match bpfkit_jit::compile_verified(&mut prog, &verifier, &opts) {
        Ok(v) => {
            let proved = v.stack_accesses.iter().filter(|&&p| p).count();
            println!("{name}: verified, {proved} stack accesses proved in-frame");
            Some(prog)
        }
        Err(e) => {
            println!("{name}: no bpfkit-jit-verified entry: {e}");
            None
        }
    }
}

/// A native twin of a workload, on the workload's memory.
type NativeFn = Box<dyn Fn(&mut [u8]) -> u64>;

/// One memory-only workload through every engine.
fn side_by_side(
    c: &mut Criterion,
    cside: &CSide,
    name: &'static str,
    src: &str,
    mem: Vec<u8>,
    native: fn(&mut [u8]) -> u64,
    native_c: Option<NativeFn>,
) -> Row {
    let (interp, jit, bytes) = program(src);
    let mut vm = Vm::new();
    let mut m = mem.clone();
    let ours = vm.run(&interp, &mut m).expect("bpfkit runs");
    let insns = vm.last_executed();
    let mut m = mem.clone();
    assert_eq!(vm.run(&jit, &mut m), Ok(ours), "{name}: the JIT agrees");
    let mut rbpf_vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf loads");
    rbpf_vm.jit_compile().expect("rbpf compiles");
    let mut m = mem.clone();
    // SAFETY: rbpf's JIT runs the benchmark program, which stays within
    // `m` (checked by bpfkit's interpreter above on the same memory).
    let theirs = unsafe { rbpf_vm.execute_program_jit(&mut m) }.expect("rbpf runs");
    assert_eq!(ours, theirs, "{name}: rbpf's JIT agrees");
    let unchecked = verified(name, src, mem.len(), Vec::new());
    if let Some(p) = &unchecked {
        let mut m = mem.clone();
        assert_eq!(
            vm.run(p, &mut m),
            Ok(ours),
            "{name}: verified-unchecked agrees"
        );
    }
    let mut m = mem.clone();
    assert_eq!(native(&mut m), ours, "{name}: native Rust agrees");
    if let Some(f) = &native_c {
        let mut m = mem.clone();
        assert_eq!(f(&mut m), ours, "{name}: native C agrees");
    }
    let ubpf = match &cside.ubpf {
        Ok(u) => match u.jit(&bytes, &[]) {
            Ok(p) => {
                let mut m = mem.clone();
                assert_eq!(p.run(&mut m), ours, "{name}: uBPF's JIT agrees");
                Some(p)
            }
            Err(e) => {
                println!("{name}: no ubpf-jit entry: {e}");
                None
            }
        },
        Err(_) => None,
    };
    println!("{name}: {insns} instructions per run");
    let mut row = Row {
        name,
        ns: Vec::new(),
    };
    let mut group = c.benchmark_group(name);
    let mut m = mem.clone();
    // As an embedder would: a small input copied in and out (the VM's
    // space then keeps its layout, and the JIT its tables, from run to
    // run), a large one lent.
    let run = |vm: &mut Vm, p: &Program, m: &mut Vec<u8>| {
        if m.len() <= LEND_ABOVE {
            vm.run(black_box(p), black_box(m))
        } else {
            vm.run_vec(black_box(p), black_box(m))
        }
        .unwrap()
    };
    timed(&mut group, &mut row, "bpfkit-interp", || {
        run(&mut vm, &interp, &mut m)
    });
    timed(&mut group, &mut row, "bpfkit-jit", || {
        run(&mut vm, &jit, &mut m)
    });
    if let Some(p) = &unchecked {
        timed(&mut group, &mut row, "bpfkit-jit-verified", || {
            run(&mut vm, p, &mut m)
        });
    }
    timed(&mut group, &mut row, "rbpf-jit", || {
        // SAFETY: as above.
        unsafe { rbpf_vm.execute_program_jit(black_box(&mut m)) }.unwrap()
    });
    if let Some(p) = &ubpf {
        timed(&mut group, &mut row, "ubpf-jit", || {
            p.run(black_box(&mut m))
        });
    }
    if let Some(f) = &native_c {
        timed(&mut group, &mut row, "native-c", || f(black_box(&mut m)));
    }
    timed(&mut group, &mut row, "native-rust", || {
        native(black_box(&mut m))
    });
    group.finish();
    row
}

/// The hash-map counter: bpfkit's map for bpfkit, the C map (through
/// registered helpers) for uBPF and native C, a std HashMap for Rust.
fn hash_counter(c: &mut Criterion, cside: &CSide) -> Row {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Hash, 4, 8, 64)).unwrap();
    let (interp, jit, bytes) = program(HASH_COUNTER);
    let ours = vm.run(&interp, &mut []).unwrap();
    println!("hash_counter: {} instructions per run", vm.last_executed());
    assert_eq!(
        vm.run(&jit, &mut []),
        Ok(ours),
        "hash_counter: the JIT agrees"
    );
    let maps = vec![MapInfo::new("counts", MapType::Hash, 4, 8, 64)];
    let unchecked = verified("hash_counter", HASH_COUNTER, 0, maps);
    if let Some(p) = &unchecked {
        assert_eq!(
            vm.run(p, &mut []),
            Ok(ours),
            "hash_counter: verified-unchecked agrees"
        );
    }

    type MapNew = unsafe extern "C" fn(u32) -> *mut c_void;
    type MapFree = unsafe extern "C" fn(*mut c_void);
    type Counter = unsafe extern "C" fn(*mut c_void) -> u64;
    type Lookup = unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64;
    let c_map = cside.native_fn::<MapNew>("c_map_new").and_then(|new| {
        let free = cside.native_fn::<MapFree>("c_map_free")?;
        let lookup = cside.native_fn::<Lookup>("c_map_lookup")?;
        // SAFETY: c_map_new allocates a map; NULL means no memory.
        let m = unsafe { new(64) };
        (!m.is_null()).then_some((m, free, lookup))
    });
    // The counts a map holds after `runs` runs of the counter: key k is
    // hit once per i < 1000 with i & 63 == k.
    let check_counts = |what: &str, runs: u64| {
        let (m, _, lookup) = c_map.expect("checked with a C map");
        for k in 0u32..64 {
            // SAFETY: `m` is a live C map; the key is a valid u32.
            let v = unsafe { lookup(m as u64, &k as *const u32 as u64, 0, 0, 0) };
            assert_ne!(v, 0, "hash_counter: {what} stored key {k}");
            let hits = if k < 1000 % 64 {
                1000 / 64 + 1
            } else {
                1000 / 64
            };
            // SAFETY: a nonzero lookup result is the address of the u64
            // value in the live map.
            let got = unsafe { *(v as *const u64) };
            assert_eq!(got, hits * runs, "hash_counter: {what}'s count of key {k}");
        }
    };
    let native_c = c_map.and_then(|(m, _, _)| {
        let f = cside.native_fn::<Counter>("c_hash_counter")?;
        // SAFETY: `m` is a live C map of u32 keys and u64 values.
        assert_eq!(unsafe { f(m) }, ours, "hash_counter: native C agrees");
        check_counts("native C", 1);
        Some(f)
    });
    let ubpf = match (&cside.ubpf, c_map) {
        (Ok(u), Some((m, _, _))) => {
            let lookup = cside.native_fn::<*mut c_void>("c_map_lookup");
            let update = cside.native_fn::<*mut c_void>("c_map_update");
            let code = with_map_address(&bytes, m as u64);
            let helpers = [
                (1, "map_lookup_elem", lookup.expect("c_map_lookup")),
                (2, "map_update_elem", update.expect("c_map_update")),
            ];
            match u.jit(&code, &helpers) {
                Ok(p) => {
                    assert_eq!(p.run(&mut []), ours, "hash_counter: uBPF's JIT agrees");
                    check_counts("uBPF's JIT after native C", 2);
                    Some(p)
                }
                Err(e) => {
                    println!("hash_counter: no ubpf-jit entry: {e}");
                    None
                }
            }
        }
        (Ok(_), None) => {
            println!("hash_counter: no ubpf-jit entry: its helpers need the C map");
            None
        }
        _ => None,
    };
    let mut row = Row {
        name: "hash_counter",
        ns: Vec::new(),
    };
    let mut group = c.benchmark_group("hash_counter");
    timed(&mut group, &mut row, "bpfkit-interp", || {
        vm.run(black_box(&interp), &mut []).unwrap()
    });
    timed(&mut group, &mut row, "bpfkit-jit", || {
        vm.run(black_box(&jit), &mut []).unwrap()
    });
    if let Some(p) = &unchecked {
        timed(&mut group, &mut row, "bpfkit-jit-verified", || {
            vm.run(black_box(p), &mut []).unwrap()
        });
    }
    if let Some(p) = &ubpf {
        timed(&mut group, &mut row, "ubpf-jit", || p.run(&mut []));
    }
    if let (Some(f), Some((m, ..))) = (native_c, c_map) {
        // SAFETY: as above.
        timed(&mut group, &mut row, "native-c", || unsafe {
            f(black_box(m))
        });
    }
    let mut map = HashMap::new();
    timed(&mut group, &mut row, "native-rust", || {
        native_hash_counter(black_box(&mut map))
    });
    group.finish();
    drop(ubpf);
    if let Some((m, free, _)) = c_map {
        // SAFETY: nothing uses the map after this.
        unsafe { free(m) };
    }
    row
}

/// `code` with each map load (`lddw` with src 1, BPF_PSEUDO_MAP_FD) made a
/// plain `lddw` of `addr`: uBPF's loader refuses pseudo sources.
fn with_map_address(code: &[u8], addr: u64) -> Vec<u8> {
    let mut out = code.to_vec();
    let mut i = 0;
    while i + 16 <= out.len() {
        if out[i] == 0x18 {
            if out[i + 1] >> 4 == 1 {
                out[i + 1] &= 0x0f;
                out[i + 4..i + 8].copy_from_slice(&(addr as u32).to_le_bytes());
                out[i + 12..i + 16].copy_from_slice(&((addr >> 32) as u32).to_le_bytes());
            }
            i += 16;
        } else {
            i += 8;
        }
    }
    out
}

fn benches(c: &mut Criterion) {
    let cside = CSide::build();
    type Primes = unsafe extern "C" fn() -> u64;
    type Memcpy = unsafe extern "C" fn(*mut u8) -> u64;
    type Parse = unsafe extern "C" fn(*const u8, usize) -> u64;
    let c_primes = cside.native_fn::<Primes>("c_primes").map(|f| {
        // SAFETY: c_primes takes nothing and touches no memory.
        Box::new(move |_: &mut [u8]| unsafe { f() }) as NativeFn
    });
    let c_memcpy = cside.native_fn::<Memcpy>("c_memcpy").map(|f| {
        Box::new(move |m: &mut [u8]| {
            assert!(m.len() >= 2 * 65536);
            // SAFETY: c_memcpy reads and writes the first 128 KiB of `m`.
            unsafe { f(m.as_mut_ptr()) }
        }) as NativeFn
    });
    let c_parse = cside.native_fn::<Parse>("c_parse").map(|f| {
        // SAFETY: c_parse reads at most `len` bytes of `m`.
        Box::new(move |m: &mut [u8]| unsafe { f(m.as_ptr(), m.len()) }) as NativeFn
    });
    let rows = [
        side_by_side(
            c,
            &cside,
            "primes",
            PRIMES,
            Vec::new(),
            |_| native_primes(),
            c_primes,
        ),
        side_by_side(
            c,
            &cside,
            "memcpy_64k",
            MEMCPY,
            vec![7u8; 2 * 65536],
            native_memcpy,
            c_memcpy,
        ),
        side_by_side(
            c,
            &cside,
            "packet_parse",
            PARSE,
            packet(),
            |p| native_parse(p),
            c_parse,
        ),
        hash_counter(c, &cside),
    ];
    print_table(&rows);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = jit;
    config = config();
    targets = benches
}
criterion_main!(jit);
