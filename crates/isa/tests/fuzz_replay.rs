//! The cargo-fuzz targets of `fuzz/`, run for a bounded number of
//! iterations on the stable toolchain (see `fuzz/stable_driver.rs`), seeded
//! from every committed object's code, the `tcpdump -ddd` fixtures, the
//! `llvm-objdump` listings and the bpf_conformance programs.

#[path = "../fuzz/stable_driver.rs"]
mod stable_driver;

#[path = "../fuzz/checks/assemble.rs"]
mod assemble_check;
#[path = "../fuzz/checks/cbpf.rs"]
mod cbpf_check;
#[path = "../fuzz/checks/decode.rs"]
mod decode_check;

use bpfkit_isa::{assemble, decode, disassemble, encode, ByteOrder, Syntax};
use stable_driver::{Shape, Target};

/// Code seeds: the code sections of every fixture object, cut into windows
/// of 64 instructions (a whole program of thousands makes each iteration
/// slow without reaching more of the decoder), and every conformance
/// program, assembled and encoded in both byte orders.
fn code_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (path, bytes) in stable_driver::fixture_objects() {
        let sections = stable_driver::elf_sections(&bytes)
            .unwrap_or_else(|| panic!("{}: not ELF64", path.display()));
        for (_, flags, data) in sections {
            if flags & stable_driver::SHF_EXECINSTR != 0 {
                seeds.extend(data.chunks(512).map(<[u8]>::to_vec));
            }
        }
    }
    for case in stable_driver::conformance_cases() {
        if let Ok(insns) = assemble(&case.asm, Syntax::Ubpf) {
            seeds.push(encode(&insns, ByteOrder::Little));
            seeds.push(encode(&insns, ByteOrder::Big));
        }
    }
    seeds
}

#[test]
fn fuzz_decode() {
    stable_driver::run(Target {
        name: "decode",
        seeds: code_seeds(),
        dictionary: vec![
            vec![0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // lddw
            vec![0x95, 0, 0, 0, 0, 0, 0, 0],                         // exit
            vec![0x85, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff],          // call -1 (local)
            vec![0xdb, 0x12, 0, 0, 0xf1, 0, 0, 0],                   // atomic cmpxchg
        ],
        default_iters: 1_000_000,
        max_len: 4096,
        shape: Shape::Binary,
        granule: 8,
        fixup: None,
        check: decode_check::check,
    });
}

#[test]
fn fuzz_cbpf() {
    let dir = stable_driver::repo_root().join("crates/isa/tests/fixtures/cbpf");
    let mut seeds = Vec::new();
    for path in stable_driver::files_under(&dir, ".ddd") {
        let text = std::fs::read_to_string(&path).unwrap();
        // `tcpdump -ddd`: a count, then `code jt jf k` in decimal.
        let mut le = Vec::new();
        let mut be = Vec::new();
        for line in text.lines().skip(1) {
            let f: Vec<u32> = line
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            let [code, jt, jf, k] = f[..] else {
                panic!("{}: bad line {line:?}", path.display())
            };
            le.extend((code as u16).to_le_bytes());
            be.extend((code as u16).to_be_bytes());
            for out in [&mut le, &mut be] {
                out.extend([jt as u8, jf as u8]);
            }
            le.extend(k.to_le_bytes());
            be.extend(k.to_be_bytes());
        }
        seeds.push(le);
        seeds.push(be);
    }
    assert!(seeds.len() >= 40, "cBPF fixtures missing");
    stable_driver::run(Target {
        name: "cbpf",
        seeds,
        dictionary: vec![
            vec![0x06, 0, 0, 0, 0xff, 0xff, 0, 0],    // ret #65535
            vec![0x20, 0, 0, 0, 0, 0xf0, 0xff, 0xff], // ld [SKF_AD_OFF]
        ],
        default_iters: 600_000,
        max_len: 4096,
        shape: Shape::Binary,
        granule: 8,
        fixup: None,
        check: cbpf_check::check,
    });
}

#[test]
fn fuzz_assemble() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for case in stable_driver::conformance_cases() {
        seeds.push(case.asm.into_bytes());
    }
    // The LLVM-syntax text of the objdump listings, in windows of 40 lines.
    let fixtures = stable_driver::repo_root().join("crates/isa/tests/fixtures");
    for path in stable_driver::files_under(&fixtures, "") {
        if !path.to_string_lossy().contains(".objdump") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.splitn(3, '\t').nth(2))
            .collect();
        for window in lines.chunks(40) {
            seeds.push(window.join("\n").into_bytes());
        }
    }
    // Both syntaxes' printing of every other code seed (in its byte order).
    let programs: Vec<_> = code_seeds()
        .iter()
        .filter_map(|code| {
            decode(code, ByteOrder::Little)
                .or_else(|_| decode(code, ByteOrder::Big))
                .ok()
        })
        .collect();
    for insns in programs.iter().step_by(2) {
        for syntax in [Syntax::Ubpf, Syntax::Llvm] {
            seeds.push(disassemble(&insns[..insns.len().min(40)], syntax).into_bytes());
        }
    }
    let dictionary = [
        "r0",
        "r10",
        "r11",
        "w1",
        "%r1",
        "%r10",
        "+=",
        "= ",
        "s>>=",
        "-=",
        "*(u64 *)",
        "*(u8 *)",
        "(r1 + 0x7fff)",
        "[%r1+0x8000]",
        "[%r10-8]",
        "lddw",
        "ldxdw",
        "stxw",
        "mov32",
        "lock ",
        "cmpxchg",
        "goto +",
        "goto -",
        "call ",
        "callx",
        "exit",
        "if ",
        "ll",
        "0x",
        "-0x",
        "0xffffffffffffffff",
        "18446744073709551616",
        "-2147483649",
        "2147483648",
        "65536",
        "-32769",
        "be16",
        "le64",
        "bswap32",
        "(s8)",
        "may_goto",
        "<LBB0_1>",
        "\n",
        ";",
        "#",
        "//",
        ",",
        ":",
        "(",
        ")",
        "[",
        "]",
        " ",
    ];
    stable_driver::run(Target {
        name: "assemble",
        seeds,
        dictionary: dictionary.iter().map(|t| t.as_bytes().to_vec()).collect(),
        default_iters: 600_000,
        max_len: 4096,
        shape: Shape::Text,
        granule: 1,
        fixup: None,
        check: assemble_check::check,
    });
}

// Regressions: inputs the drivers found, kept as plain tests.

/// `ldh [12]` with 0x7f in the opcode's high byte decoded as `ldh [12]`,
/// losing the byte, so re-encoding gave different bytes.
#[test]
fn cbpf_opcode_with_a_high_byte_is_unknown() {
    let input = [0x28, 0x7f, 0, 0, 0x0c, 0, 0, 0];
    let err = bpfkit_isa::cbpf::decode(&input, ByteOrder::Little).unwrap_err();
    assert_eq!(
        err.kind,
        bpfkit_isa::cbpf::DecodeErrorKind::UnknownOpcode(0x7f28)
    );
    assert_eq!(err.to_string(), "cBPF instruction 0: unknown opcode 0x7f28");
    assert!(!cbpf_check::check(&input));
}

/// The driver itself: a check that panics on some input fails the run, and
/// the report names the panic and gives the input as hex to replay it.
#[test]
fn driver_reports_a_finding_with_its_input() {
    fn check(data: &[u8]) -> bool {
        assert!(!data.starts_with(&[0xde, 0xad]), "found the marker");
        true
    }
    let run = std::panic::catch_unwind(|| {
        stable_driver::run(Target {
            name: "selftest",
            seeds: vec![vec![0xde, 0xad, 0x01], vec![0x00]],
            dictionary: Vec::new(),
            default_iters: 100,
            max_len: 64,
            shape: Shape::Binary,
            granule: 1,
            fixup: None,
            check,
        })
    });
    let report = *run.unwrap_err().downcast::<String>().unwrap();
    assert!(report.starts_with("fuzz selftest: "), "{report}");
    assert!(report.contains("found the marker"), "{report}");
    // The shortest input that hit it is kept; seeds run first, so the
    // 3-byte seed (iteration 0) is at most as long as anything found.
    assert!(report.contains("BPFKIT_FUZZ_INPUT=dead"), "{report}");
}

/// An input that takes longer than the limit is a finding, reported with
/// its time and input, though nothing panicked.
#[test]
fn driver_reports_a_slow_input() {
    fn check(data: &[u8]) -> bool {
        if data == [0x5a, 0x5a] {
            // Slowness itself is what is under test.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        true
    }
    let run = std::panic::catch_unwind(|| {
        stable_driver::run_with_slow_limit(
            Target {
                name: "selftest_slow",
                seeds: vec![vec![0x5a, 0x5a]],
                dictionary: Vec::new(),
                default_iters: 20,
                max_len: 64,
                shape: Shape::Binary,
                granule: 1,
                fixup: None,
                check,
            },
            std::time::Duration::from_millis(20),
        )
    });
    let report = *run.unwrap_err().downcast::<String>().unwrap();
    assert!(report.contains("- slow: "), "{report}");
    assert!(report.contains("(limit 20ms)"), "{report}");
    assert!(report.contains("BPFKIT_FUZZ_INPUT=5a5a"), "{report}");
}

/// Iteration `i` of a base seed is the same input however often it is
/// made, which is what makes `BPFKIT_FUZZ_SEED` + `BPFKIT_FUZZ_ITER` a replay.
#[test]
fn mutations_are_a_function_of_seed_and_iteration() {
    let seeds: Vec<Vec<u8>> = code_seeds().into_iter().take(8).collect();
    let a = stable_driver::Rng::new(7, 1234).next();
    let b = stable_driver::Rng::new(7, 1234).next();
    assert_eq!(a, b);
    assert_ne!(a, stable_driver::Rng::new(7, 1235).next());
    let mut inputs = Vec::new();
    for _ in 0..2 {
        let m = stable_driver::Mutator::for_test(seeds.clone(), 7);
        inputs.push((0..200).map(|i| m.input(i)).collect::<Vec<_>>());
    }
    assert_eq!(inputs[0], inputs[1]);
    assert_eq!(inputs[0][0], seeds[0], "seeds come first, unchanged");
    assert!(
        inputs[0][8..].iter().any(|m| !seeds.contains(m)),
        "no mutation changed anything"
    );
}
