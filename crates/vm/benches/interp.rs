//! bpfkit's interpreter side by side with rbpf's, on the same bytecode.
//! Each benchmark group has a `bpfkit` and an `rbpf` entry; the hash map
//! benchmark is bpfkit's alone (rbpf has no maps). Before the measurements it
//! prints the instructions each program executes, for ns/instruction figures.

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, encode, ByteOrder, Syntax};
use bpfkit_vm::{MapDef, Program, Vm};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

mod common;
use common::workloads::*;

fn program(src: &str) -> (Program, Vec<u8>) {
    let insns = assemble(src, Syntax::Llvm).expect("benchmark program assembles");
    let bytes = encode(&insns, ByteOrder::Little);
    (Program::new(insns).expect("benchmark program loads"), bytes)
}

fn side_by_side(c: &mut Criterion, name: &str, src: &str, mem: Vec<u8>) {
    let (prog, bytes) = program(src);
    let mut vm = Vm::new();
    let mut m = mem.clone();
    let ours = vm.run(&prog, &mut m).expect("bpfkit runs");
    let insns = vm.last_executed();
    let rbpf_vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf loads");
    let mut m = mem.clone();
    let theirs = rbpf_vm.execute_program(&mut m).expect("rbpf runs");
    assert_eq!(
        ours, theirs,
        "{name}: both interpreters compute the same result"
    );
    println!("{name}: {insns} instructions per run");
    let mut group = c.benchmark_group(name);
    let mut m = mem.clone();
    group.bench_function("bpfkit", |b| {
        b.iter(|| vm.run(black_box(&prog), black_box(&mut m)).unwrap())
    });
    let mut m = mem;
    group.bench_function("rbpf", |b| {
        b.iter(|| rbpf_vm.execute_program(black_box(&mut m)).unwrap())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    side_by_side(c, "primes", PRIMES, Vec::new());
    side_by_side(c, "memcpy_64k", MEMCPY, vec![7u8; 2 * 65536]);
    side_by_side(c, "packet_parse", PARSE, packet());

    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Hash, 4, 8, 64)).unwrap();
    let (prog, _) = program(HASH_COUNTER);
    vm.run(&prog, &mut []).unwrap();
    println!("hash_counter: {} instructions per run", vm.last_executed());
    c.bench_function("hash_counter/bpfkit", |b| {
        b.iter(|| vm.run(black_box(&prog), &mut []).unwrap())
    });
}

criterion_group!(interp, benches);
criterion_main!(interp);
