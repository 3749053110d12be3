//! The cargo-fuzz targets of `fuzz/`, run for a bounded number of
//! iterations on the stable toolchain (see the shared driver,
//! `crates/isa/fuzz/stable_driver.rs`), seeded from the bpf_conformance
//! programs with their memory and from the code of every committed object,
//! and, for the `.data` parser, from the suite's files.

#[path = "../../isa/fuzz/stable_driver.rs"]
mod stable_driver;

#[path = "../fuzz/checks/conformance_case.rs"]
mod conformance_case_check;
#[path = "../fuzz/checks/run.rs"]
mod run_check;

use bpfkit_isa::{assemble, decode, encode, ByteOrder, Syntax};
use stable_driver::{Shape, Target};

/// One input: the memory length byte, the memory, the code.
fn input(mem: &[u8], code: &[u8]) -> Vec<u8> {
    let mem = &mem[..mem.len().min(255)];
    let mut out = vec![mem.len() as u8];
    out.extend_from_slice(mem);
    out.extend_from_slice(code);
    out
}

/// Repairs a mutated input's code so that more of it loads: slots that do
/// not decode become `r0 = imm` (keeping their immediate), and the last
/// becomes `exit`. Without it, nine in ten inputs stop at the loader's
/// strict decoding and the interpreter is what goes untested.
fn repair_code(input: &mut [u8]) {
    let Some(&mem_len) = input.first() else {
        return;
    };
    let start = 1 + usize::from(mem_len).min(input.len() - 1);
    let end = start + (input.len() - start) / 8 * 8;
    let mut at = start;
    while at < end {
        let wide = input[at] == 0x18 && at + 16 <= end;
        let len = if wide { 16 } else { 8 };
        if decode(&input[at..at + len], ByteOrder::Little).is_err() {
            input[at..at + 4].copy_from_slice(&[0xb7, 0, 0, 0]);
            if wide {
                input[at + 8..at + 16].copy_from_slice(&[0xb7, 0, 0, 0, 0, 0, 0, 0]);
            }
        }
        at += len;
    }
    if end >= start + 8 {
        input[end - 8..end].copy_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    }
}

#[test]
fn fuzz_run() {
    let mut seeds = Vec::new();
    for case in stable_driver::conformance_cases() {
        if let Ok(insns) = assemble(&case.asm, Syntax::Ubpf) {
            seeds.push(input(&case.mem, &encode(&insns, ByteOrder::Little)));
        }
    }
    // Object code, in windows of 64 instructions: calls to helpers and map
    // loads the runtime may not have, but real instruction mixes.
    for (_, bytes) in stable_driver::fixture_objects() {
        for (_, flags, data) in stable_driver::elf_sections(&bytes).unwrap_or_default() {
            if flags & stable_driver::SHF_EXECINSTR != 0 {
                for code in data.chunks(512) {
                    seeds.push(input(&[0; 64], code));
                }
            }
        }
    }
    stable_driver::run(Target {
        name: "run",
        seeds,
        dictionary: vec![
            vec![0x95, 0, 0, 0, 0, 0, 0, 0],                // exit
            vec![0x05, 0, 0xff, 0xff, 0, 0, 0, 0],          // goto -1
            vec![0x85, 0, 0, 0, 5, 0, 0, 0],                // call 5
            vec![0x85, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff], // call -1 (local)
            vec![0x79, 0xa0, 0xf8, 0xff, 0, 0, 0, 0],       // r0 = *(u64 *)(r10 - 8)
            vec![0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0],       // *(u64 *)(r10 - 8) = r1
            vec![0x61, 0x10, 0, 0, 0, 0, 0, 0],             // r0 = *(u32 *)(r1 + 0)
        ],
        default_iters: 1_000_000,
        max_len: 4096,
        shape: Shape::Binary,
        // The code starts after the memory, at any alignment, but keeps
        // it through chunks of whole instructions.
        granule: 8,
        fixup: Some(|input| repair_code(input)),
        check: run_check::check,
    });
}

#[test]
fn fuzz_conformance_case() {
    let dir = stable_driver::repo_root().join("../shared/conformance/bpf_conformance/tests");
    let mut seeds: Vec<Vec<u8>> = stable_driver::files_under(&dir, ".data")
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    // Without the suite (it lives outside the repository), one case of
    // each section kind.
    seeds.push(b"-- asm\nmov %r0, 1\nexit\n-- mem\n00 ff\n-- result\n0x1\n".to_vec());
    seeds.push(b"-- raw\n0xb7000000000000ff\n0x95 # exit\n-- error\nboom\n".to_vec());
    let dictionary = [
        "-- asm\n",
        "-- raw\n",
        "-- mem\n",
        "-- result\n",
        "-- error\n",
        "-- ",
        "0x",
        "0X",
        "-",
        "#",
        "\n",
        " ",
        "ff",
        "18446744073709551615",
        "18446744073709551616",
    ];
    stable_driver::run(Target {
        name: "conformance_case",
        seeds,
        dictionary: dictionary.iter().map(|t| t.as_bytes().to_vec()).collect(),
        default_iters: 200_000,
        max_len: 8192,
        shape: Shape::Text,
        granule: 1,
        fixup: None,
        check: conformance_case_check::check,
    });
}

// Regressions: inputs the drivers found, kept as plain tests.

/// `bpf_get_current_comm(buf, size)` allocated a `size`-byte buffer before
/// checking the destination: size 0xffffffff80000010 (`r2 = -2147483632`)
/// panicked with "capacity overflow", and a few GiB would have aborted on
/// allocation. The destination is checked first now; the run faults.
#[test]
fn get_current_comm_with_a_huge_size_faults() {
    use bpfkit_vm::{Program, Vm};
    let text = "r1 = r10\nr1 += -16\nr2 = -2147483632\ncall 16\nexit";
    let program = Program::new(assemble(text, Syntax::Llvm).unwrap()).unwrap();
    let err = Vm::new().run(&program, &mut []).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("bpf_get_current_comm")
            && message.contains("writing 18446744071562067984 bytes"),
        "{message}"
    );
    // A size that fits the stack still writes the NUL-padded name, over
    // whatever was there: "bpfkit-vm" is 9 bytes, so of the 16, bytes 8..16
    // read as u64 are "m" (0x6d) and zeros.
    let text = "r1 = -1\n*(u64 *)(r10 - 8) = r1\nr1 = r10\nr1 += -16\nr2 = 16\ncall 16\n\
                r0 = *(u64 *)(r10 - 8)\nexit";
    let program = Program::new(assemble(text, Syntax::Llvm).unwrap()).unwrap();
    assert_eq!(Vm::new().run(&program, &mut []), Ok(0x6d));

    // The input the driver found (`call 16` with that size, among others).
    let found = "4000000000000000000000000000000000000000000000000000000000000000\
                 0000000000000000000000000000000000000000000000000000000000000000\
                 001501040000000000bf710000000000000701000010000000b7020000100000\
                 808500000010000000b701000001000000db17000000000000db670800000000\
                 00b7000000000000009500000000000000";
    let found: Vec<u8> = (0..found.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&found[i..i + 2], 16).unwrap())
        .collect();
    assert!(run_check::check(&found));
}

/// A program reading below its own 512-byte frame (which the kernel's
/// verifier rejects) once saw what the previous run on the same runtime
/// left there. Found by the repeatability check at 1.66M iterations; each
/// frame is now a region of its own, so the access faults, every run alike.
#[test]
fn a_run_does_not_see_the_previous_runs_stack() {
    use bpfkit_vm::{FaultKind, Program, RunError, Vm};
    let text = "r0 = *(u32 *)(r10 - 520)\nr1 = 1\n*(u32 *)(r10 - 520) = r1\nexit";
    let program = Program::new(assemble(text, Syntax::Llvm).unwrap()).unwrap();
    let mut vm = Vm::for_conformance();
    for _ in 0..2 {
        match vm.run(&program, &mut []) {
            Err(RunError::MemoryFault {
                pc: 0,
                kind:
                    FaultKind::OutsideStackFrame {
                        frame: 0,
                        offset: -520,
                    },
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
