//! The benchmark programs the interpreter (vm/benches/interp.rs) and the JIT
//! (jit/benches/jit.rs) both run, with their inputs.

pub const PRIMES: &str = "
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

pub const MEMCPY: &str = "
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

pub const PARSE: &str = "
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

pub const HASH_COUNTER: &str = "
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

pub fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08; // IPv4
    p[14] = 0x45; // version 4, 20-byte header
    p[23] = 6; // TCP
    p[36] = 0x1f;
    p[37] = 0x90; // dport 8080
    p[47] = 0x12; // SYN|ACK
    p
}
