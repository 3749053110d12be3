//! The cargo-fuzz target of `fuzz/`, run for a bounded number of
//! iterations on the stable toolchain (see the shared driver,
//! `crates/isa/fuzz/stable_driver.rs`), seeded from the bpf_conformance
//! programs with their memory and from the code of every committed object.

#[path = "../../isa/fuzz/stable_driver.rs"]
mod stable_driver;

#[path = "../fuzz/checks/run.rs"]
mod run_check;

use bpfkit_isa::{assemble, encode, ByteOrder, Syntax};
use stable_driver::{Shape, Target};

/// One input: the memory length byte, the memory, the code.
fn input(mem: &[u8], code: &[u8]) -> Vec<u8> {
    let mem = &mem[..mem.len().min(255)];
    let mut out = vec![mem.len() as u8];
    out.extend_from_slice(mem);
    out.extend_from_slice(code);
    out
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
        default_iters: 60_000,
        max_len: 4096,
        shape: Shape::Binary,
        // The code starts after the memory, at any alignment, but keeps
        // it through chunks of whole instructions.
        granule: 8,
        check: run_check::check,
    });
}
