//! The JIT side by side with bpfkit's interpreter, rbpf's JIT and native
//! code, on the VM's interpreter benchmarks (crates/vm/benches/interp.rs:
//! the same four programs). "native" is the same algorithm written in Rust
//! and compiled by rustc (not clang-compiled C, which would need a C
//! toolchain at build time); rbpf has no maps, so the hash map counter has
//! no rbpf entry, and its native entry uses a std HashMap.
//!
//! Run with `cargo bench -p bpfkit-jit`; it prints each program's
//! instruction count first, and criterion's figures per engine after.

use std::collections::HashMap;

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, encode, ByteOrder, Syntax};
use bpfkit_vm::{MapDef, Program, Vm};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

#[path = "../../vm/benches/common/mod.rs"]
mod common;
use common::workloads::*;

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

fn side_by_side(
    c: &mut Criterion,
    name: &str,
    src: &str,
    mem: Vec<u8>,
    native: fn(&mut [u8]) -> u64,
) {
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
    let mut m = mem.clone();
    assert_eq!(native(&mut m), ours, "{name}: native code agrees");
    println!("{name}: {insns} instructions per run");
    let mut group = c.benchmark_group(name);
    let mut m = mem.clone();
    group.bench_function("bpfkit-interp", |b| {
        b.iter(|| vm.run(black_box(&interp), black_box(&mut m)).unwrap())
    });
    group.bench_function("bpfkit-jit", |b| {
        b.iter(|| vm.run(black_box(&jit), black_box(&mut m)).unwrap())
    });
    group.bench_function("rbpf-jit", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe { rbpf_vm.execute_program_jit(black_box(&mut m)) }.unwrap())
    });
    let mut m = mem;
    group.bench_function("native", |b| b.iter(|| native(black_box(&mut m))));
    group.finish();
}

fn benches(c: &mut Criterion) {
    side_by_side(c, "primes", PRIMES, Vec::new(), |_| native_primes());
    side_by_side(c, "memcpy_64k", MEMCPY, vec![7u8; 2 * 65536], native_memcpy);
    side_by_side(c, "packet_parse", PARSE, packet(), |p| native_parse(p));

    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Hash, 4, 8, 64)).unwrap();
    let (interp, jit, _) = program(HASH_COUNTER);
    vm.run(&interp, &mut []).unwrap();
    println!("hash_counter: {} instructions per run", vm.last_executed());
    let mut group = c.benchmark_group("hash_counter");
    group.bench_function("bpfkit-interp", |b| {
        b.iter(|| vm.run(black_box(&interp), &mut []).unwrap())
    });
    group.bench_function("bpfkit-jit", |b| {
        b.iter(|| vm.run(black_box(&jit), &mut []).unwrap())
    });
    let mut map = HashMap::new();
    group.bench_function("native", |b| {
        b.iter(|| native_hash_counter(black_box(&mut map)))
    });
    group.finish();
}

criterion_group!(jit, benches);
criterion_main!(jit);
