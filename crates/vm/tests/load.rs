//! Programs the loader refuses, as the kernel refuses them at load time
//! (kernel/bpf/verifier.c check_subprogs), whether or not a verifier runs.

use bpfkit_isa::{assemble, AluOp, CallTarget, Imm64, Insn, Operand, Reg, Syntax, Width};
use bpfkit_vm::{LoadError, Program, Vm};

fn load(src: &str) -> Result<Program, LoadError> {
    Program::new(assemble(src, Syntax::Llvm).unwrap())
}

fn mov(dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src: Operand::Imm(imm),
    }
}

#[test]
fn a_jump_from_a_subprogram_into_the_main_program_is_refused() {
    // uBPF's err-call-invalid-jump shape: the callee jumps back to the
    // start of main, which recursed until the call depth ran out.
    let err = load(
        "start:
         r0 = 0
         call f
         exit
f:
         goto start
         exit",
    )
    .unwrap_err();
    assert_eq!(
        err,
        LoadError::JumpLeavesSubprogram {
            pc: 3,
            target: 0,
            start: 3,
            end: 5
        }
    );
    let message = err.to_string();
    assert!(
        message.starts_with("instruction 3: jump to 0 leaves its subprogram"),
        "{message}"
    );
}

#[test]
fn a_jump_from_the_main_program_into_a_subprogram_is_refused() {
    let err = load(
        "if r1 == 0 goto f
         call f
         exit
f:
         r0 = 1
         exit",
    )
    .unwrap_err();
    assert_eq!(
        err,
        LoadError::JumpLeavesSubprogram {
            pc: 0,
            target: 3,
            start: 0,
            end: 3
        }
    );
}

#[test]
fn a_subprogram_reached_only_through_lddw_func_has_bounds_too() {
    // r1 = f (BPF_PSEUDO_FUNC) makes slot 4 a subprogram start, so the jump
    // at 3 from main into it is refused.
    let insns = vec![
        Insn::LdImm64 {
            dst: Reg::R1,
            imm: Imm64::Func(3),
        },
        mov(Reg::R0, 0),
        Insn::Ja { off: 0 },
        Insn::Exit,
    ];
    assert_eq!(
        Program::new(insns).unwrap_err(),
        LoadError::JumpLeavesSubprogram {
            pc: 3,
            target: 4,
            start: 0,
            end: 4
        }
    );
}

#[test]
fn a_subprogram_may_not_fall_through_into_the_next() {
    let err = load(
        "call f
         exit
f:
         r0 = 1
         call g
         r0 = 2
g:
         exit",
    )
    .unwrap_err();
    assert_eq!(err, LoadError::FallsIntoSubprogram { pc: 4, next: 5 });
    let err = load("r0 = 0\ncall f\nexit\nf:\nr0 = 1").unwrap_err();
    assert_eq!(err, LoadError::FallsOffEnd { pc: 3 });
}

#[test]
fn call_targets_must_start_an_instruction() {
    // Past the end.
    let past = vec![Insn::Call(CallTarget::Local(5)), Insn::Exit];
    assert_eq!(
        Program::new(past).unwrap_err(),
        LoadError::BadCallTarget { pc: 0, target: 6 }
    );
    // Before the start.
    let before = vec![
        mov(Reg::R0, 0),
        Insn::Call(CallTarget::Local(-3)),
        Insn::Exit,
    ];
    assert_eq!(
        Program::new(before).unwrap_err(),
        LoadError::BadCallTarget { pc: 1, target: -1 }
    );
    // Into the second slot of an lddw.
    let inside = vec![
        Insn::Call(CallTarget::Local(2)),
        Insn::Exit,
        Insn::LdImm64 {
            dst: Reg::R0,
            imm: Imm64::Value(7),
        },
        Insn::Exit,
    ];
    let err = Program::new(inside).unwrap_err();
    assert_eq!(err, LoadError::BadCallTarget { pc: 0, target: 3 });
    assert_eq!(
        err.to_string(),
        "instruction 0: call target 3 is outside the program or inside lddw"
    );
    // lddw rX, func with a bad target.
    let func = vec![
        Insn::LdImm64 {
            dst: Reg::R1,
            imm: Imm64::Func(9),
        },
        Insn::Exit,
    ];
    assert_eq!(
        Program::new(func).unwrap_err(),
        LoadError::BadCallTarget { pc: 0, target: 10 }
    );
}

#[test]
fn well_formed_subprograms_load_and_run() {
    let p = load(
        "r1 = 20
         call double
         r0 += 2
         exit
double:
         if r1 > 100 goto big
         r0 = r1
         r0 += r1
         exit
big:
         r0 = 0
         exit",
    )
    .unwrap();
    assert_eq!(Vm::new().run(&p, &mut []).unwrap(), 42);
}

#[test]
fn every_committed_clang_object_passes_the_subprogram_checks() {
    // Clang's output always keeps to the kernel's rules, so none of the
    // committed objects (test fixtures and the tools' programs) may trip them.
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for dir in ["crates/object/tests/fixtures", "bpf/obj"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "o"))
            .collect();
        paths.sort();
        for path in paths {
            let spec = match bpfkit_object::ObjectSpec::from_file(&path) {
                Ok(spec) => spec,
                // The kconfig_* fixtures are objects the parser must refuse.
                Err(_)
                    if path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("kconfig_")) =>
                {
                    continue
                }
                Err(e) => panic!("{}: {e}", path.display()),
            };
            for (name, p) in &spec.programs {
                match Program::new(p.insns.clone()) {
                    Ok(_) | Err(LoadError::Unsupported { .. }) => checked += 1,
                    Err(e) => panic!("{}: program {name}: {e}", path.display()),
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} programs found");
}
