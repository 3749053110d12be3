//! `bpfkit jit`, and `--engine` of `run` and `conformance`.
#![cfg(target_arch = "x86_64")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn fixture(name: &str) -> String {
    format!(
        "{}/../object/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn stdout(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn jit_prints_each_ebpf_instruction_before_its_x86_code() {
    let (ok, out, err) = stdout(&["jit", &fixture("xdp_parser.bpf.o")]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("; 44 eBPF slots, "), "{out}");
    // The first instruction of the program, then its budget check and code.
    let first = lines
        .iter()
        .position(|l| *l == ";    0: r0 = 2")
        .unwrap_or_else(|| panic!("{out}"));
    // The block's budget: its 2 instructions taken off the budget
    // register in one step.
    assert!(lines[first + 1].ends_with("sub r9,2"), "{out}");
    assert!(lines[first + 2].contains("  jb "), "{out}");
    assert!(lines[first + 3].ends_with("mov eax,2"), "{out}");
    assert!(out.contains("; out-of-line paths"), "{out}");
    assert!(lines.last().unwrap().ends_with("ret"), "{out}");
    // Choosing among programs, as `run` does.
    let (ok, _, err) = stdout(&["jit", &fixture("maps.bpf.o")]);
    assert!(!ok);
    assert!(
        err.contains("choose one with --prog (tail_target, use_maps)"),
        "{err}"
    );
    let (ok, out, _) = stdout(&["jit", &fixture("maps.bpf.o"), "--prog", "use_maps"]);
    assert!(ok && out.contains("call rax"), "{out}");
}

#[test]
fn run_gives_the_same_answer_under_every_engine() {
    let dir = std::env::temp_dir().join(format!("bpfkit-jit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pkt = dir.join("udp53.bin");
    let mut p = vec![0u8; 42];
    p[12] = 0x08;
    p[14] = 0x45;
    p[23] = 17;
    p[37] = 53;
    std::fs::write(&pkt, &p).unwrap();
    let xdp = fixture("xdp_parser.bpf.o");
    let run = |engine: &str| {
        let (ok, out, err) = stdout(&[
            "run",
            &xdp,
            "--data",
            pkt.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(ok, "{err}");
        // Everything but the timing line.
        out.lines()
            .filter(|l| !l.starts_with("duration:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let interp = run("interp");
    assert!(interp.contains("retval: 1 (0x1)"), "{interp}");
    assert_eq!(interp, run("jit"));
    // The ARM64 back end too, under qemu, with the VM's map.
    if Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_ok()
    {
        assert_eq!(interp, run("jit-arm64"));
    } else {
        assert!(std::env::var_os("CI").is_none(), "qemu-aarch64 is missing");
        eprintln!("SKIP: --engine jit-arm64: qemu-aarch64 not found (Debian package qemu-user)");
    }
    let (ok, _, err) = stdout(&["run", &xdp, "--engine", "fast"]);
    assert!(!ok && err.contains("interpreter, jit, jit-arm64"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conformance_runs_under_the_jit() {
    let dir = format!(
        "{}/../../../shared/conformance/bpf_conformance/tests",
        env!("CARGO_MANIFEST_DIR")
    );
    if !std::path::Path::new(&dir).is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no suite at {dir}"
        );
        eprintln!("SKIP: conformance suite not found at {dir}");
        return;
    }
    let (ok, out, _) = stdout(&["conformance", &dir, "--engine", "jit"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().last(), Some("313 passed, 0 failed, 0 skipped"));
}

#[test]
fn conformance_runs_on_the_arm64_back_end_under_qemu() {
    let dir = format!(
        "{}/../../../shared/conformance/bpf_conformance/tests",
        env!("CARGO_MANIFEST_DIR")
    );
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !std::path::Path::new(&dir).is_dir() {
        assert!(!ci, "no suite at {dir}");
        eprintln!("SKIP: conformance suite not found at {dir}");
        return;
    }
    // Without qemu-aarch64 on PATH, the error names the package to install.
    let out = Command::new(BIN)
        .args(["conformance", &dir, "--engine", "jit-arm64"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("qemu-aarch64 not found") && err.contains("package qemu-user"),
        "{err}"
    );
    if Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!ci, "qemu-aarch64 is missing (Debian package qemu-user)");
        eprintln!("SKIP: qemu-aarch64 not found (Debian package qemu-user)");
        return;
    }
    let (ok, out, err) = stdout(&["conformance", &dir, "--engine", "jit-arm64"]);
    assert!(ok, "{out}{err}");
    // Every file the interpreter passes, none skipped.
    assert_eq!(out.lines().last(), Some("313 passed, 0 failed, 0 skipped"));
}

/// The A64 listing's instructions after each eBPF instruction: `(slot,
/// eBPF text, [A64 text])`, checking every line's layout on the way.
fn a64_blocks(out: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut blocks: Vec<(usize, String, Vec<String>)> = Vec::new();
    let mut offset = 0;
    let mut exits = false;
    for line in out.lines().skip(1) {
        if line == "; prologue" {
            continue;
        }
        if line == "; exit paths" {
            exits = true;
            continue;
        }
        if let Some(h) = line.strip_prefix("; ") {
            assert!(!exits, "an eBPF instruction among the exit paths: {line}");
            let (slot, text) = h.split_once(": ").unwrap_or_else(|| panic!("`{line}`"));
            blocks.push((slot.trim().parse().unwrap(), text.to_string(), Vec::new()));
            continue;
        }
        let (off, text) = line
            .trim_start()
            .split_once("  ")
            .unwrap_or_else(|| panic!("`{line}`"));
        assert_eq!(usize::from_str_radix(off, 16).unwrap(), offset, "`{line}`");
        offset += 4;
        if let (false, Some(b)) = (exits, blocks.last_mut()) {
            b.2.push(text.to_string());
        }
    }
    blocks
}

/// A64 mnemonics the back end emits (a listing with others decoded wrongly).
const A64_MNEMONICS: &[&str] = &[
    "mov", "movk", "movz", "movn", "add", "sub", "subs", "cmp", "tst", "ands", "and", "orr", "eor",
    "blr", "mul", "madd", "msub", "udiv", "sdiv", "lsl", "lsr", "asr", "lslv", "lsrv", "asrv",
    "ubfm", "sbfm", "ubfx", "sbfx", "sxtb", "sxth", "sxtw", "uxth", "uxtb", "rev", "rev16",
    "rev32", "neg", "mvn", "orn", "b", "bl", "ret", "cbz", "cbnz", "tbnz", "ldr", "ldrb", "ldrh",
    "ldrsb", "ldrsh", "ldrsw", "str", "strb", "strh", "stp", "ldp", "svc", "nop", "ldaddal",
    "ldclral", "ldeoral", "ldsetal", "swpal", "casal", "stlr", "ldar", "ldadd", "ldclr", "ldeor",
    "ldset", "swp", "cas",
];

fn assert_valid_a64(what: &str, insns: &[String]) {
    for i in insns {
        let mnemonic = i.split_whitespace().next().unwrap_or_default();
        let mnemonic = mnemonic.split('.').next().unwrap_or_default();
        assert!(
            A64_MNEMONICS.contains(&mnemonic) && !i.contains("invalid"),
            "{what}: `{i}` is no instruction the back end emits"
        );
    }
}

#[test]
fn jit_prints_each_ebpf_instruction_before_its_a64_code() {
    let (ok, out, err) = stdout(&["jit", &fixture("xdp_parser.bpf.o"), "--arch", "aarch64"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("; 44 eBPF slots, "), "{out}");
    assert!(!out.contains("invalid"), "{out}");
    let blocks = a64_blocks(&out);
    let (ok, x86, _) = stdout(&["jit", &fixture("xdp_parser.bpf.o")]);
    assert!(ok);
    // The same eBPF instructions head both listings.
    let x86_heads: Vec<&str> = x86.lines().filter(|l| l.starts_with(";  ")).collect();
    let a64_heads: Vec<String> = blocks
        .iter()
        .map(|(slot, text, _)| format!("; {slot:4}: {text}"))
        .collect();
    assert_eq!(a64_heads, x86_heads);
    assert_eq!(blocks[0].1, "r0 = 2");
    // A block's budget check (x27 counts down; 2 instructions in this
    // block), then `mov x7, #0x2` for r0 = 2 (r0 is x7).
    let first = &blocks[0].2;
    assert_eq!(first.len(), 5, "{first:?}");
    assert_eq!(first[..2], ["mov x9, #0x2", "cmp x27, x9"], "{first:?}");
    assert!(first[2].starts_with("b.lo $+0x"), "{first:?}");
    assert_eq!(
        first[3..],
        ["sub x27, x27, x9", "mov x7, #0x2"],
        "{first:?}"
    );
    for (slot, text, insns) in &blocks {
        assert!(!insns.is_empty(), "{slot}: {text} has no A64 code");
        assert_valid_a64(text, insns);
    }
    // exit returns through the frame check to the result path.
    let exit = blocks.iter().find(|b| b.1 == "exit").unwrap();
    assert!(
        exit.2.iter().any(|i| i.starts_with("cbz x10")),
        "{:?}",
        exit.2
    );

    // Atomics, byte swaps, signed division and a bpf-to-bpf call, as raw
    // bytecode: each becomes the A64 instructions made for it.
    let src = "r1 = r10\nr1 += -8\nr2 = 1\n*(u64 *)(r10 - 8) = r2\n\
               lock *(u64 *)(r1 + 0) += r2\nr2 = atomic_fetch_xor((u64 *)(r1 + 0), r2)\n\
               r0 = cmpxchg_64(r1 + 0, r0, r2)\nr2 = xchg_64(r1 + 0, r2)\n\
               r3 = bswap32 r3\nr3 s/= r2\nr3 s%= 7\ncall f\nexit\nf:\nr0 = 1\nexit";
    let insns = bpfkit_isa::assemble(src, bpfkit_isa::Syntax::Llvm).unwrap();
    let bytes = bpfkit_isa::encode(&insns, bpfkit_isa::ByteOrder::Little);
    let dir = std::env::temp_dir().join(format!("bpfkit-jit-a64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("prog.bin");
    std::fs::write(&raw, bytes).unwrap();
    let (ok, out, err) = stdout(&["jit", raw.to_str().unwrap(), "--arch", "aarch64"]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(ok, "{err}");
    let blocks = a64_blocks(&out);
    assert_eq!(blocks.len(), insns.len(), "{out}");
    let code_of = |prefix: &str| {
        let b = blocks
            .iter()
            .find(|b| b.1.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {out}"));
        assert_valid_a64(&b.1, &b.2);
        b.2.join("; ")
    };
    assert!(code_of("lock *(u64 *)").contains("ldaddal"), "{out}");
    assert!(
        code_of("r2 = atomic_fetch_xor").contains("ldeoral"),
        "{out}"
    );
    assert!(code_of("r0 = cmpxchg_64").contains("casal"), "{out}");
    assert!(code_of("r2 = xchg_64").contains("swpal"), "{out}");
    assert!(code_of("r3 = bswap32").contains("rev w"), "{out}");
    assert!(code_of("r3 s/=").contains("sdiv x"), "{out}");
    assert!(code_of("r3 s%=").contains("msub x"), "{out}");
    // A bpf-to-bpf call asks the VM for the callee's frame (`bl` to the
    // exchange with it), then calls the address it gives.
    assert!(code_of("call").contains("bl $"), "{out}");
    assert!(code_of("call").contains("blr x12"), "{out}");
}

#[test]
fn jit_says_which_loops_have_their_checks_hoisted() {
    let copy = "
        r2 = r1
        r2 += 64
        r3 = 0
    copy:
        r4 = *(u64 *)(r1 + 0)
        *(u64 *)(r2 + 0) = r4
        r1 += 8
        r2 += 8
        r3 += 8
        if r3 < 64 goto copy
        r0 = r3
        exit";
    let insns = bpfkit_isa::assemble(copy, bpfkit_isa::Syntax::Llvm).unwrap();
    let bytes = bpfkit_isa::encode(&insns, bpfkit_isa::ByteOrder::Little);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("jit_copy_loop.bin");
    std::fs::write(&path, bytes).unwrap();
    let (ok, out, err) = stdout(&["jit", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("; 11 eBPF slots, ")
            && first.ends_with(
                " bytes of x86-64 code, 1 loop with its bounds checks hoisted (1 a memory copy)"
            ),
        "{out}"
    );
    // A program without such a loop says nothing of loops.
    let (ok, out, err) = stdout(&["jit", &fixture("xdp_parser.bpf.o")]);
    assert!(ok, "{err}");
    assert!(
        !out.lines().next().unwrap_or_default().contains("loop"),
        "{out}"
    );
}
