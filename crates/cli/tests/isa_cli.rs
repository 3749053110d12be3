//! `bpfkit disasm` and `bpfkit asm` end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../isa/tests/fixtures")
        .join(name)
}

fn bpfkit(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(args)
        .output()
        .unwrap()
}

fn ok_stdout(args: &[&std::ffi::OsStr]) -> String {
    let out = bpfkit(args);
    assert!(
        out.status.success(),
        "bpfkit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("isa_cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn disasm_of_an_object_lists_sections_symbols_and_relocations() {
    let text = ok_stdout(&["disasm".as_ref(), fixture("calls.bpf.o").as_os_str()]);
    assert!(
        text.starts_with(
            "\t.section .text,\"ax\",@progbits\n\t.globl sum3\nsum3:\n     0: w6 = w3\n"
        ),
        "{text}"
    );
    // A call inside the section names its target; `square` is static.
    assert!(text.contains("     2: call square\n"), "{text}");
    assert!(text.contains("square:\n     6: w0 = w1\n"), "{text}");
    assert!(
        text.contains(
            "\t.section \"tracepoint/syscalls/sys_enter_getpid\",\"ax\",@progbits\n\t.globl calls\ncalls:\n     0: call 5\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    12: r1 = 7142819119629625712 ll\n    14: "),
        "{text}"
    );
    // Relocated calls: against the global `sum3`, and against `.text` + 48
    // bytes, which is the static `square`.
    assert!(text.contains("    25: call sum3\n"), "{text}");
    assert!(text.contains("    28: call square\n"), "{text}");

    let maps = ok_stdout(&["disasm".as_ref(), fixture("maps.bpf.o").as_os_str()]);
    assert!(maps.contains("     9: r1 = 0 ll # counts\n"), "{maps}");
    assert!(maps.contains("    12: if r0 == 0 goto LBB0_2\n"), "{maps}");

    // The bpftool-like form, on request.
    let text = ok_stdout(&[
        "disasm".as_ref(),
        "--pc-relative".as_ref(),
        fixture("calls.bpf.o").as_os_str(),
    ]);
    assert!(
        text.contains("; section .text\nsum3:\n     0: w6 = w3\n"),
        "{text}"
    );
    assert!(text.contains("     2: call pc+3\n"), "{text}");
    assert!(text.contains("square:\n     6: w0 = w1\n"), "{text}");
    assert!(
        text.contains("; section tracepoint/syscalls/sys_enter_getpid\ncalls:\n     0: call 5\n")
    );
    assert!(text.contains("    25: call pc-1 ; sum3\n"), "{text}");
    let maps = ok_stdout(&[
        "disasm".as_ref(),
        "--pc-relative".as_ref(),
        fixture("maps.bpf.o").as_os_str(),
    ]);
    assert!(maps.contains("     9: r1 = 0 ll ; counts\n"), "{maps}");
    assert!(maps.contains("    12: if r0 == 0 goto +4\n"), "{maps}");
}

#[test]
fn readme_quick_start_fixture_disassembles() {
    let text = ok_stdout(&["disasm".as_ref(), fixture("alu.bpf.o").as_os_str()]);
    assert!(
        text.starts_with("\t.section xdp,\"ax\",@progbits\n\t.globl alu\nalu:\n"),
        "{text}"
    );
    assert!(text.contains("r3 = be64 r3"), "{text}");
}

/// The bytes of an object's section, unrelocated.
fn section_bytes(object_path: &Path, section: &str) -> Vec<u8> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(object_path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sec = file
        .section_by_name(section)
        .unwrap_or_else(|| panic!("{}: no section {section}", object_path.display()));
    sec.data().unwrap().to_vec()
}

#[test]
fn asm_then_disasm_round_trips_in_both_syntaxes() {
    for (syntax, mode) in [
        ("llvm", None),
        ("llvm", Some("--pc-relative")),
        ("ubpf", None),
    ] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["disasm".as_ref(), "--syntax".as_ref()];
        args.push(syntax.as_ref());
        args.extend(mode.map(std::ffi::OsStr::new));
        let object_path = fixture("atomics.bpf.o");
        args.push(object_path.as_os_str());
        let listing = ok_stdout(&args);
        // The listing, directives and labels included, is assembler input.
        let tag = format!("{syntax}{}", mode.unwrap_or(""));
        let source = scratch(&format!("atomics.{tag}.s"));
        std::fs::write(&source, &listing).unwrap();
        let bin = scratch(&format!("atomics.{tag}.bin"));
        ok_stdout(&[
            "asm".as_ref(),
            "--syntax".as_ref(),
            syntax.as_ref(),
            source.as_os_str(),
            "-o".as_ref(),
            bin.as_os_str(),
        ]);
        assert_eq!(
            std::fs::read(&bin).unwrap(),
            section_bytes(&object_path, "xdp"),
            "{tag}"
        );
        let mut args: Vec<&std::ffi::OsStr> = vec!["disasm".as_ref(), "--syntax".as_ref()];
        args.push(syntax.as_ref());
        args.extend(mode.map(std::ffi::OsStr::new));
        args.push(bin.as_os_str());
        let again = ok_stdout(&args);
        // Same instructions; only the object's symbols and relocation notes
        // are gone (a jump target's label is made up from its slot).
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with(' '))
                .map(|l| l.split([';', '#']).next().unwrap().trim_end().to_string())
                .map(|l| match l.split_once(" goto LBB") {
                    Some((head, _)) => format!("{head} goto <label>"),
                    None => l,
                })
                .collect()
        };
        assert_eq!(strip(&again), strip(&listing), "{tag}");
    }
}

#[test]
fn errors_name_file_line_and_column() {
    let source = scratch("bad.s");
    std::fs::write(&source, "w0 = 1\nif r1 ~ 2 goto +1\nexit\n").unwrap();
    let out = bpfkit(&[
        "asm".as_ref(),
        source.as_os_str(),
        "-o".as_ref(),
        scratch("bad.bin").as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.s:2:7: expected a comparison"), "{err}");

    let not_code = scratch("odd.bin");
    std::fs::write(&not_code, [0x95u8, 0, 0]).unwrap();
    let out = bpfkit(&["disasm".as_ref(), not_code.as_os_str()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid eBPF bytecode"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn disasm_cbpf_prints_like_tcpdump() {
    // `tcpdump -ddd ip`, as struct sock_filter bytes.
    let filters: [(u16, u8, u8, u32); 4] = [
        (40, 0, 0, 12),
        (21, 0, 1, 2048),
        (6, 0, 0, 262144),
        (6, 0, 0, 0),
    ];
    let bytes: Vec<u8> = filters
        .iter()
        .flat_map(|&(code, jt, jf, k)| {
            let mut b = code.to_le_bytes().to_vec();
            b.extend([jt, jf]);
            b.extend(k.to_le_bytes());
            b
        })
        .collect();
    let file = scratch("ip.cbpf");
    std::fs::write(&file, bytes).unwrap();
    let text = ok_stdout(&["disasm".as_ref(), "--cbpf".as_ref(), file.as_os_str()]);
    assert_eq!(
        text,
        "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n"
    );
}

/// `bpfkit disasm FILE` fails, and its stderr.
fn disasm_error(file: &std::path::Path) -> String {
    let out = bpfkit(&["disasm".as_ref(), file.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "disasm {} succeeded: {}",
        file.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn disasm_refuses_an_elf_for_another_machine() {
    // Issue 10: an x86-64 executable failed with a misleading "not a whole
    // number of 8-byte instructions", an x86-64 object disassembled as eBPF.
    let exe = std::path::Path::new("/bin/true");
    if exe.is_file() {
        let err = disasm_error(exe);
        assert!(err.contains("ELF machine is "), "{err}");
        assert!(err.contains(", not BPF (247)"), "{err}");
    } else {
        eprintln!("SKIP /bin/true half: /bin/true does not exist");
    }

    let source = scratch("native.c");
    std::fs::write(&source, "int add(int a, int b) { return a + b; }\n").unwrap();
    let obj = scratch("native.o");
    match Command::new("cc")
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&obj)
        .output()
    {
        Ok(out) if out.status.success() => {
            let err = disasm_error(&obj);
            // x86-64 is 62; other hosts have their own number, never 247.
            let machine = if cfg!(target_arch = "x86_64") {
                "62"
            } else {
                ""
            };
            assert!(
                err.contains(&format!("native.o: ELF machine is {machine}")),
                "{err}"
            );
            assert!(err.contains(", not BPF (247)"), "{err}");
            // Nor is it classic BPF.
            let out = bpfkit(&["disasm".as_ref(), "--cbpf".as_ref(), obj.as_os_str()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(err.contains(", not BPF (247)"), "{err}");
        }
        Ok(out) => eprintln!(
            "SKIP native object half: cc -c failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("SKIP native object half: cannot run cc: {e}"),
    }
}

#[test]
fn empty_input_is_an_error_for_disasm_cbpf_and_asm() {
    // Issue 10: each of these exited 0 with no output.
    let empty = scratch("empty");
    std::fs::write(&empty, b"").unwrap();
    let want = format!("{}: empty input, no instructions", empty.display());
    for args in [
        vec!["disasm".as_ref(), empty.as_os_str()],
        vec!["disasm".as_ref(), "--cbpf".as_ref(), empty.as_os_str()],
        vec![
            "asm".as_ref(),
            empty.as_os_str(),
            "-o".as_ref(),
            scratch("empty.bin").as_os_str(),
        ],
    ] {
        let out = bpfkit(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    // Only comments is no program either, and no output file is written.
    let comments = scratch("comments.s");
    std::fs::write(&comments, "; nothing here\n\n").unwrap();
    let bin = scratch("comments.bin");
    let _ = std::fs::remove_file(&bin);
    let out = bpfkit(&[
        "asm".as_ref(),
        comments.as_os_str(),
        "-o".as_ref(),
        bin.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("comments.s: empty input, no instructions")
    );
    assert!(!bin.exists());
}

/// The newest `llvm-mc` on PATH and its major version.
fn newest_llvm_mc() -> Option<(String, u32)> {
    let mut best: Option<(String, u32)> = None;
    let names = (14..=30)
        .rev()
        .map(|v| format!("llvm-mc-{v}"))
        .chain(["llvm-mc".to_string()]);
    for name in names {
        let Ok(out) = Command::new(&name).arg("--version").output() else {
            continue;
        };
        // "Debian LLVM version 14.0.6", "Ubuntu LLVM version 19.1.7".
        let text = String::from_utf8_lossy(&out.stdout);
        let major = text
            .split("LLVM version ")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        if let Some(major) = major {
            if best.as_ref().is_none_or(|(_, b)| major > *b) {
                best = Some((name, major));
            }
        }
    }
    best
}

/// Every committed BPF object: the crates' test fixtures and bpf/obj.
fn all_fixture_objects() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![root.join("bpf/obj")];
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(krate.unwrap().path().join("tests/fixtures"));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let wanted = if dir.ends_with("bpf/obj") {
                name.ends_with(".o")
            } else {
                name.ends_with(".bpf.o")
            };
            if wanted {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Code sections of an ELF object, by name, unrelocated.
fn code_sections(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    use object::{Object, ObjectSection, SectionFlags};
    let file = object::File::parse(data).unwrap();
    file.sections()
        .filter(|s| {
            matches!(s.flags(), SectionFlags::Elf { sh_flags }
                if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0)
                && s.size() > 0
        })
        .map(|s| (s.name().unwrap().to_string(), s.data().unwrap().to_vec()))
        .collect()
}

/// Instructions LLVM before 18 cannot assemble: cpu v4 ones, and the
/// fetch/xchg/cmpxchg atomics LLVM 14's parser does not read back.
fn needs_newer_llvm(code: &[(String, Vec<u8>)]) -> bool {
    use bpfkit_isa::{decode, AluOp, AtomicOp, ByteOrder, Endian, Insn};
    code.iter().any(|(_, bytes)| {
        decode(bytes, ByteOrder::Little).unwrap().iter().any(|i| {
            matches!(
                i,
                Insn::Alu {
                    op: AluOp::Movsx(_) | AluOp::Sdiv | AluOp::Smod,
                    ..
                } | Insn::LoadSx { .. }
                    | Insn::Ja32 { .. }
                    | Insn::End {
                        kind: Endian::Swap,
                        ..
                    }
                    | Insn::Atomic {
                        op: AtomicOp::Add { fetch: true }
                            | AtomicOp::Or { fetch: true }
                            | AtomicOp::And { fetch: true }
                            | AtomicOp::Xor { fetch: true }
                            | AtomicOp::Xchg
                            | AtomicOp::Cmpxchg,
                        ..
                    }
            )
        })
    })
}

#[test]
fn llvm_syntax_listing_reassembles_with_llvm_mc_byte_for_byte() {
    // Issue 10: `call pc+N` assembled as a relocation against a symbol `pc`.
    let Some((llvm_mc, major)) = newest_llvm_mc() else {
        eprintln!("SKIP: no llvm-mc on PATH (tried llvm-mc-30 .. llvm-mc-14, llvm-mc)");
        return;
    };
    let objects = all_fixture_objects();
    assert!(objects.len() >= 20, "fixtures not found: {objects:?}");
    let mut compared = 0;
    for path in &objects {
        let original = std::fs::read(path).unwrap();
        let want = code_sections(&original);
        let listing = ok_stdout(&["disasm".as_ref(), path.as_os_str()]);
        let stem = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = scratch(&format!("mc-{stem}.s"));
        let assembled = scratch(&format!("mc-{stem}.o"));
        std::fs::write(&source, &listing).unwrap();
        let out = Command::new(&llvm_mc)
            .args(["-triple", "bpfel", "-filetype=obj"])
            .arg(&source)
            .arg("-o")
            .arg(&assembled)
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if major < 18 && needs_newer_llvm(&want) {
                eprintln!(
                    "SKIP {stem}: {llvm_mc} is LLVM {major}, which cannot assemble its cpu v4 or \
                     atomic fetch instructions: {}",
                    err.lines().next().unwrap_or("")
                );
                continue;
            }
            panic!("{llvm_mc} rejects the listing of {stem}:\n{err}\n{listing}");
        }
        let got = code_sections(&std::fs::read(&assembled).unwrap());
        for (name, bytes) in &want {
            let Some((_, again)) = got.iter().find(|(n, _)| n == name) else {
                panic!("{stem}: llvm-mc output has no section {name}:\n{listing}");
            };
            if again != bytes {
                let slot = bytes
                    .chunks(8)
                    .zip(again.chunks(8))
                    .position(|(a, b)| a != b)
                    .unwrap_or(bytes.len().min(again.len()) / 8);
                panic!(
                    "{stem} section {name}: llvm-mc's bytes differ from the object's at slot \
                     {slot} ({} vs {} bytes)\n{listing}",
                    again.len(),
                    bytes.len()
                );
            }
        }
        compared += 1;
    }
    eprintln!(
        "{compared} of {} objects reassembled identically with {llvm_mc}",
        objects.len()
    );
    assert!(compared > 0);
}
