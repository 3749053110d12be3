//! Verified-unchecked mode: programs bpfkit's verifier accepts give the
//! same results compiled with [`bpfkit_jit::compile_verified`] (stack
//! accesses it proved in-frame emitted without bounds checks) as with the
//! checked JIT and the interpreter: r0, memory, instruction count, fault.
#![cfg(target_arch = "x86_64")]

use bpfkit_abi::ProgramType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_verifier::{Verifier, VerifyOptions};
use bpfkit_vm::{Program, Vm};

/// A small deterministic generator (xorshift64*), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random stack-heavy program: data in r1..r5, stack pointers derived
/// from r10 in r6..r8 (constant and bounded variable offsets, some out of
/// the frame so the verifier rejects them), loads, stores and arithmetic,
/// and optionally a loop and a bpf-to-bpf call that passes a pointer into
/// the caller's frame.
fn program(rng: &mut Rng) -> String {
    let mut s = String::new();
    for r in 1..=5 {
        s += &format!("r{r} = {}\n", rng.below(1 << 20) as i64 - (1 << 19));
    }
    s += "r0 = 0\n";
    let sizes = ["u8", "u16", "u32", "u64"];
    let bytes = |t: &str| match t {
        "u8" => 1,
        "u16" => 2,
        "u32" => 4,
        _ => 8,
    };
    // Stack pointers: a constant offset (occasionally past the frame), and
    // one with a bounded variable part.
    s += &format!("r6 = r10\nr6 += -{}\n", 8 * (1 + rng.below(66)));
    s += &format!("r7 = r10\nr7 += -{}\n", 8 * (1 + rng.below(64)));
    s += &format!(
        "r8 = r{}\nr8 &= {}\nr9 = r10\nr9 += -{}\nr9 += r8\n",
        1 + rng.below(5),
        [7, 15, 31, 63][rng.below(4) as usize],
        64 + 8 * rng.below(56)
    );
    // Initialise the bytes the loads may read (the verifier rejects reads
    // of uninitialised stack otherwise).
    for off in (8..=512).step_by(8) {
        if rng.below(4) != 0 {
            s += &format!("*(u64 *)(r10 - {off}) = {}\n", rng.below(1000));
        }
    }
    let looping = rng.below(3) == 0;
    if looping {
        s += "r5 = 0\nloop:\n";
    }
    for _ in 0..3 + rng.below(10) {
        let base = rng.pick(&["r6", "r7", "r9", "r10"]);
        let t = rng.pick(&sizes);
        let off = if base == "r10" {
            -(bytes(t) as i64) * (1 + rng.below(512 / bytes(t)) as i64)
        } else {
            bytes(t) as i64 * (rng.below(9) as i64 - 4)
        };
        let d = 1 + rng.below(4);
        match rng.below(5) {
            0 => s += &format!("r{d} = *({t} *)({base} {off:+})\n"),
            1 => s += &format!("*({t} *)({base} {off:+}) = r{d}\n"),
            2 => s += &format!("*({t} *)({base} {off:+}) = {}\n", rng.below(1 << 15)),
            3 => s += &format!("r0 += r{d}\n"),
            _ => s += &format!("r{d} ^= {}\n", rng.below(1 << 16)),
        }
    }
    if looping {
        s += "r5 += 1\nif r5 < 5 goto loop\n";
    }
    let call = rng.below(3) == 0;
    if call {
        s += "r1 = r7\ncall sub\n";
    }
    s += "r0 += r1\nr0 += r2\nexit\n";
    if call {
        // The callee's own frame (unchecked when proved) and the caller's
        // through r1 (checked).
        s += "sub:\n*(u64 *)(r10 - 8) = r1\nr2 = r10\nr2 += -16\n*(u64 *)(r2 + 0) = 3\n";
        s += "r0 = *(u64 *)(r2 + 0)\nr3 = *(u64 *)(r1 + 0)\nr0 += r3\nexit\n";
    }
    s
}

#[test]
fn verified_programs_agree_in_both_modes() {
    let verifier = Verifier::new(ProgramType::SocketFilter);
    let opts = VerifyOptions::default();
    let (mut accepted, mut proven_derived) = (0, 0);
    let total = 3000;
    for seed in 1..=total {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let src = program(&mut rng);
        let insns = assemble(&src, Syntax::Llvm).expect("generated program assembles");
        let interp = Program::new(insns).expect("generated program loads");
        let mut unchecked = interp.clone();
        let verdict = match bpfkit_jit::compile_verified(&mut unchecked, &verifier, &opts) {
            Ok(v) => v,
            Err(bpfkit_jit::VerifiedJitError::Rejected(_)) => continue,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        accepted += 1;
        // Proved accesses through a register other than r10 are the ones
        // this mode adds over the checked JIT's own r10 shortcut.
        let derived = interp.insns().iter().any(|i| {
            let t = i.display(Syntax::Llvm).to_string();
            t.contains("(r6") || t.contains("(r7") || t.contains("(r9") || t.contains("(r2")
        });
        if derived && verdict.stack_accesses.iter().any(|&p| p) {
            proven_derived += 1;
        }
        let mut checked = interp.clone();
        bpfkit_jit::compile(&mut checked).unwrap();
        let mut outcomes = Vec::new();
        for p in [&interp, &checked, &unchecked] {
            let mut vm = Vm::new();
            let mut mem = vec![0x5a; 16];
            let r = vm.run(p, &mut mem);
            outcomes.push((r, mem, vm.last_executed()));
        }
        assert_eq!(outcomes[0], outcomes[1], "seed {seed}: checked JIT\n{src}");
        assert_eq!(
            outcomes[0], outcomes[2],
            "seed {seed}: verified-unchecked JIT\n{src}"
        );
    }
    eprintln!("{accepted} of {total} verified, {proven_derived} with proved derived accesses");
    // The generator must exercise the mode: most programs verify, and
    // many have proved accesses through derived pointers.
    assert!(
        accepted >= total / 4,
        "only {accepted} of {total} programs verified"
    );
    assert!(
        proven_derived >= total / 8,
        "only {proven_derived} with proved derived accesses"
    );
}

#[test]
fn rejected_programs_are_not_compiled() {
    let verifier = Verifier::new(ProgramType::SocketFilter);
    let insns = assemble(
        "r1 = r10\nr1 += -520\nr0 = *(u64 *)(r1 + 0)\nexit",
        Syntax::Llvm,
    )
    .unwrap();
    let mut p = Program::new(insns).unwrap();
    match bpfkit_jit::compile_verified(&mut p, &verifier, &VerifyOptions::default()) {
        Err(bpfkit_jit::VerifiedJitError::Rejected(r)) => {
            assert_eq!(r.insn, 2, "{r}");
            assert!(r.message.contains("stack"), "{r}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(p.compiled().is_none(), "a rejected program keeps no code");
}

#[test]
fn verifier_marks_own_frame_accesses_only() {
    let verifier = Verifier::new(ProgramType::SocketFilter);
    let src = "
        r2 = r10
        r2 += -16
        *(u64 *)(r2 + 0) = 1
        r1 = r10
        r1 += -8
        *(u64 *)(r1 + 0) = 2
        call sub
        r0 = *(u64 *)(r10 - 16)
        exit
    sub:
        r0 = *(u64 *)(r1 + 0)
        exit";
    let insns = assemble(src, Syntax::Llvm).unwrap();
    let verdict = verifier
        .verify(
            bpfkit_verifier::Program::Raw(&insns),
            &VerifyOptions::default(),
        )
        .unwrap();
    let marked: Vec<usize> = (0..verdict.stack_accesses.len())
        .filter(|&i| verdict.stack_accesses[i])
        .collect();
    // Slots 2, 5 and 7 access the caller's own frame; slot 9 (in `sub`)
    // reads the caller's frame through r1, so it is not marked.
    assert_eq!(marked, vec![2, 5, 7]);
}
