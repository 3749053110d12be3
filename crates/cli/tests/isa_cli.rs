//! `bpfkit disasm` and `bpfkit asm` end to end.

use std::path::PathBuf;
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
        text.contains("; section .text\nsum3:\n     0: w6 = w3\n"),
        "{text}"
    );
    assert!(text.contains("square:\n     6: w0 = w1\n"), "{text}");
    assert!(
        text.contains("; section tracepoint/syscalls/sys_enter_getpid\ncalls:\n     0: call 5\n")
    );
    assert!(
        text.contains("    12: r1 = 7142819119629625712 ll\n    14: "),
        "{text}"
    );
    assert!(text.contains("    25: call pc-1 ; sum3\n"), "{text}");

    let maps = ok_stdout(&["disasm".as_ref(), fixture("maps.bpf.o").as_os_str()]);
    assert!(maps.contains("     9: r1 = 0 ll ; counts\n"), "{maps}");
}

#[test]
fn readme_quick_start_fixture_disassembles() {
    let text = ok_stdout(&["disasm".as_ref(), fixture("alu.bpf.o").as_os_str()]);
    assert!(text.starts_with("; section xdp\nalu:\n"), "{text}");
    assert!(text.contains("r3 = be64 r3"), "{text}");
}

#[test]
fn asm_then_disasm_round_trips_in_both_syntaxes() {
    for syntax in ["llvm", "ubpf"] {
        let listing = ok_stdout(&[
            "disasm".as_ref(),
            "--syntax".as_ref(),
            syntax.as_ref(),
            fixture("atomics.bpf.o").as_os_str(),
        ]);
        // The listing, minus its section header, is assembler input.
        let source = scratch(&format!("atomics.{syntax}.s"));
        std::fs::write(&source, listing.replace("; section xdp\n", "")).unwrap();
        let bin = scratch(&format!("atomics.{syntax}.bin"));
        ok_stdout(&[
            "asm".as_ref(),
            "--syntax".as_ref(),
            syntax.as_ref(),
            source.as_os_str(),
            "-o".as_ref(),
            bin.as_os_str(),
        ]);
        let again = ok_stdout(&[
            "disasm".as_ref(),
            "--syntax".as_ref(),
            syntax.as_ref(),
            bin.as_os_str(),
        ]);
        // Same instructions; only the object's labels and relocation notes are gone.
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with(' '))
                .map(|l| l.split(" ;").next().unwrap().to_string())
                .collect()
        };
        assert_eq!(strip(&again), strip(&listing), "{syntax}");
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
