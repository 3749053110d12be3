//! `bpfkit prog dump jited` disassembles the kernel's x86-64 JIT code as
//! bpftool does with libbfd: per function, headed by its prototype and
//! symbol, source lines interleaved, every byte of the code decoded.

use std::process::Command;

use bpfkit_kernel::ksyms::KernelSymbols;
use serde_json::Value;

mod common;

/// One decoded instruction of the text dump (`opcodes`): offset, bytes, text.
#[derive(Debug)]
struct Line {
    pc: usize,
    bytes: Vec<u8>,
    text: String,
}

/// A function of the text dump: its header lines and instructions.
#[derive(Debug, Default)]
struct Function {
    proto: Option<String>,
    name: String,
    insns: Vec<Line>,
    sources: usize,
}

fn bpfkit(args: &[&str]) -> String {
    let out = Command::new(common::BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "bpfkit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Parses `prog dump jited ID opcodes`: `PROTO:`, `NAME:`, `; source`,
/// `%4x:\tTEXT` each followed by `\tBYTES `, and a blank line per function.
fn parse(text: &str) -> Vec<Function> {
    let mut funcs: Vec<Function> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some(src) = line.strip_prefix("; ") {
            assert!(!src.is_empty());
            funcs
                .last_mut()
                .expect("a source line before any function")
                .sources += 1;
        } else if let Some((pc, insn)) = line.split_once(":\t") {
            let pc = usize::from_str_radix(pc.trim_start(), 16)
                .unwrap_or_else(|e| panic!("`{line}`: {e}"));
            let bytes_line = lines.next().expect("the bytes line of an instruction");
            let bytes = bytes_line
                .strip_prefix('\t')
                .unwrap_or_else(|| panic!("bytes line `{bytes_line}`"))
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            funcs
                .last_mut()
                .expect("an instruction before any function")
                .insns
                .push(Line {
                    pc,
                    bytes,
                    text: insn.to_string(),
                });
        } else {
            let head = line
                .strip_suffix(':')
                .unwrap_or_else(|| panic!("line `{line}`"));
            pending.push(head.to_string());
            if head.starts_with("bpf_prog_") || head.starts_with("0x") {
                let name = pending.pop().unwrap();
                funcs.push(Function {
                    proto: pending.pop(),
                    name,
                    ..Default::default()
                });
                assert!(pending.is_empty(), "stray header lines {pending:?}");
            }
        }
    }
    funcs
}

/// The instructions with the mnemonic and operands, without the kernel's
/// indirect-branch-tracking landing pads (present only with IBT).
fn mnemonics(f: &Function) -> Vec<String> {
    f.insns
        .iter()
        .map(|l| l.text.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| t != "endbr64")
        .collect()
}

/// The checks every function passes: instructions back to back from 0,
/// their bytes being the function's whole code, opening with the x86 JIT's
/// prologue (arch/x86/net/bpf_jit_comp.c `emit_prologue`: the patchable
/// 5-byte nop, the tail-call nop or `xor %eax,%eax` for a main program,
/// then `push %rbp; mov %rsp,%rbp`) and ending in `ret` or a `jmp` to the
/// kernel's return thunk (`emit_return`, with retpoline/SRSO mitigations).
fn check_function(f: &Function, code: &[u8], symbols: &KernelSymbols) {
    let mut pc = 0;
    for l in &f.insns {
        assert_eq!(l.pc, pc, "{}: instructions not back to back", f.name);
        pc += l.bytes.len();
    }
    let decoded: Vec<u8> = f.insns.iter().flat_map(|l| l.bytes.clone()).collect();
    assert_eq!(
        decoded, code,
        "{}: the decoded bytes are not the code",
        f.name
    );
    let m = mnemonics(f);
    assert_eq!(m[0], "nopl 0x0(%rax,%rax)", "{}: {m:?}", f.name);
    let push = m.iter().position(|t| t == "push %rbp").expect("push %rbp");
    assert!(push <= 2, "{}: prologue {m:?}", f.name);
    assert_eq!(m[push + 1], "mov %rsp,%rbp", "{}", f.name);
    let last = m.last().unwrap();
    if last != "ret" {
        let target = last
            .strip_prefix("jmp 0x")
            .unwrap_or_else(|| panic!("{}: ends with `{last}`", f.name));
        let target = u64::from_str_radix(target, 16).unwrap();
        let name = symbols.at(target).unwrap_or("(no symbol)");
        assert!(
            name.ends_with("return_thunk"),
            "{}: the last jmp goes to {name}, not a return thunk",
            f.name
        );
    }
    assert!(
        !f.insns
            .iter()
            .any(|l| l.text.contains("(bad)") || l.text.is_empty()),
        "{}: undecodable bytes",
        f.name
    );
}

fn load(path: &str) -> bpfkit_kernel::Collection {
    let spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap()
}

/// Text and JSON dumps of `prog`, checked against each other and the
/// kernel's bytes; returns the text dump's functions.
fn dump_and_check(prog: &bpfkit_kernel::Program) -> Vec<Function> {
    use std::os::fd::AsFd;
    let id = prog.id().to_string();
    let fd = prog.as_fd();
    let info = bpfkit_kernel::info::ProgramInfo::from_fd(fd).unwrap();
    let code = bpfkit_kernel::info::program_jited(fd).unwrap();
    let layout = bpfkit_kernel::info::program_jited_layout(fd).unwrap();
    assert_eq!(code.len(), info.bytes_jited as usize);
    let symbols = KernelSymbols::load().unwrap();
    let funcs = parse(&bpfkit(&["prog", "dump", "jited", "id", &id, "opcodes"]));
    assert_eq!(funcs.len(), layout.func_lens.len());
    let mut start = 0;
    for (f, (&len, &ksym)) in funcs.iter().zip(layout.func_lens.iter().zip(&layout.ksyms)) {
        assert_eq!(Some(f.name.as_str()), symbols.at(ksym));
        check_function(f, &code[start..start + len as usize], &symbols);
        start += len as usize;
    }
    let total: usize = funcs
        .iter()
        .flat_map(|f| &f.insns)
        .map(|l| l.bytes.len())
        .sum();
    assert_eq!(total, info.bytes_jited as usize);

    // JSON: bpftool's list of {proto, name, insns: [{pc, operation, operands, opcodes}]}.
    let json: Value = serde_json::from_str(&bpfkit(&[
        "prog", "dump", "jited", "id", &id, "opcodes", "-j",
    ]))
    .unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), funcs.len());
    for (j, f) in list.iter().zip(&funcs) {
        assert_eq!(j["name"], f.name.as_str());
        assert_eq!(j["proto"].as_str(), f.proto.as_deref());
        let insns = j["insns"].as_array().unwrap();
        assert_eq!(insns.len(), f.insns.len());
        for (ji, l) in insns.iter().zip(&f.insns) {
            assert_eq!(ji["pc"], format!("0x{:x}", l.pc));
            assert!(
                l.text.starts_with(ji["operation"].as_str().unwrap()),
                "{ji}"
            );
            let ops = ji["operands"].as_array().unwrap();
            assert!(!ops.is_empty(), "{ji}");
            let opcodes: Vec<String> = l.bytes.iter().map(|b| format!("0x{b:02x}")).collect();
            assert_eq!(ji["opcodes"], serde_json::json!(opcodes));
        }
        assert_eq!(
            insns.iter().filter(|i| i.get("src").is_some()).count(),
            f.sources
        );
    }
    compare_with_bpftool(&id, &funcs);
    funcs
}

/// bpftool built with a disassembler (libbfd or LLVM) decodes the same
/// instructions: the same functions, offsets and so lengths. Debian's
/// bpftool is built without one ("No libbfd support"): then the test says so.
fn compare_with_bpftool(id: &str, funcs: &[Function]) {
    let Ok(out) = Command::new("bpftool")
        .args(["-j", "prog", "dump", "jited", "id", id])
        .output()
    else {
        eprintln!("bpftool not installed: jited dump not compared with it");
        return;
    };
    if !out.status.success() {
        eprintln!(
            "bpftool cannot disassemble ({}): jited dump not compared with it",
            String::from_utf8_lossy(&out.stdout).trim()
        );
        return;
    }
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), funcs.len());
    for (t, f) in theirs.iter().zip(funcs) {
        assert_eq!(t["name"], f.name.as_str());
        let pcs: Vec<String> = t["insns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["pc"].as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = f.insns.iter().map(|l| format!("0x{:x}", l.pc)).collect();
        assert_eq!(
            ours, pcs,
            "{}: instruction boundaries differ from bpftool's",
            f.name
        );
    }
}

#[test]
fn jited_code_is_disassembled_per_function_with_source_lines() {
    if !common::require_bpf() {
        return;
    }
    if std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable").is_ok_and(|s| s.trim() == "0") {
        common::skip("the kernel's JIT is off (net.core.bpf_jit_enable = 0)");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        common::skip("prog dump jited disassembles x86-64 code only");
        return;
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    // One function with BTF line info.
    let coll = load(&format!("{dir}/../kernel/tests/fixtures/counter.bpf.o"));
    let funcs = dump_and_check(&coll.programs["count_getpid"]);
    assert_eq!(funcs.len(), 1);
    assert_eq!(
        funcs[0].proto.as_deref(),
        Some("int count_getpid(void * ctx)")
    );
    assert!(
        funcs[0].name.ends_with("_count_getpid"),
        "{}",
        funcs[0].name
    );
    assert!(funcs[0].sources > 3, "source lines interleaved: {funcs:?}");
    // A main program and its two bpf-to-bpf callees, one listing each.
    let coll = load(&format!("{dir}/../isa/tests/fixtures/calls.bpf.o"));
    let funcs = dump_and_check(&coll.programs["calls"]);
    let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(funcs.len(), 3, "{names:?}");
    assert!(names[0].ends_with("_calls"), "{names:?}");
    // The main program calls a subprogram at its kernel address (this
    // object has no BTF, so the kernel names its subprograms `F`).
    let symbols = KernelSymbols::load().unwrap();
    let targets: Vec<&str> = funcs[0]
        .insns
        .iter()
        .filter_map(|l| l.text.strip_prefix("call   0x"))
        .filter_map(|a| symbols.at(u64::from_str_radix(a, 16).unwrap()))
        .collect();
    assert!(
        names[1..].iter().any(|n| targets.contains(n)),
        "no call to {:?} in the calls to {targets:?}",
        &names[1..]
    );
}
