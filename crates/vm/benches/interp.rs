//! bpfkit's interpreter side by side with rbpf's, on the same bytecode.
//! Each benchmark group has a `bpfkit` and an `rbpf` entry; the hash map
//! benchmark is bpfkit's alone (rbpf has no maps). Before the measurements it
//! prints the instructions each program executes, for ns/instruction figures.

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, encode, ByteOrder, Syntax};
use bpfkit_vm::{MapDef, Program, Vm};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const PRIMES: &str = "
    r0 = 0
    r1 = 2
outer:
    if r1 >= 2000 goto done
    r2 = 2
inner:
    r3 = r2
    r3 *= r2
    if r3 > r1 goto prime
    r4 = r1
    r4 %= r2
    if r4 == 0 goto next
    r2 += 1
    goto inner
prime:
    r0 += 1
next:
    r1 += 1
    goto outer
done:
    exit";

const MEMCPY: &str = "
    r2 = r1
    r2 += 65536
    r3 = 0
copy:
    r4 = *(u64 *)(r1 + 0)
    *(u64 *)(r2 + 0) = r4
    r1 += 8
    r2 += 8
    r3 += 8
    if r3 < 65536 goto copy
    r0 = r3
    exit";

const PARSE: &str = "
    r2 = r1
    r2 += 64
    r3 = r1
    r3 += 14
    if r3 > r2 goto drop
    r4 = *(u16 *)(r1 + 12)
    if r4 != 0x8 goto drop
    r5 = *(u8 *)(r1 + 14)
    r5 &= 15
    r5 <<= 2
    r6 = r1
    r6 += 14
    r6 += r5
    r7 = r6
    r7 += 20
    if r7 > r2 goto drop
    r8 = *(u8 *)(r1 + 23)
    if r8 != 6 goto drop
    r0 = *(u16 *)(r6 + 2)
    r0 = be16 r0
    r9 = *(u8 *)(r6 + 13)
    r9 &= 18
    r0 += r9
    exit
drop:
    r0 = 0
    exit";

const HASH_COUNTER: &str = "
    r6 = 0
loop:
    r1 = r6
    r1 &= 63
    *(u32 *)(r10 - 4) = r1
    r2 = r10
    r2 += -4
    r1 = map[fd:0]
    call 1
    if r0 != 0 goto found
    *(u64 *)(r10 - 16) = 1
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r1 = map[fd:0]
    r4 = 0
    call 2
    goto next
found:
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
next:
    r6 += 1
    if r6 < 1000 goto loop
    r0 = r6
    exit";

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08; // IPv4
    p[14] = 0x45; // version 4, 20-byte header
    p[23] = 6; // TCP
    p[36] = 0x1f;
    p[37] = 0x90; // dport 8080
    p[47] = 0x12; // SYN|ACK
    p
}

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
