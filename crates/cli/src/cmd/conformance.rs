//! `bpfkit conformance` and `bpfkit conformance-plugin`: the bpf_conformance
//! suite, run directly or driven by the suite's own runner.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use bpfkit_vm::conformance::{self, Verdict};
use bpfkit_vm::{Program, Vm};

use super::parse_hex;

/// Run every `.data` file of a bpf_conformance (or uBPF) test directory,
/// subdirectories included.
#[derive(clap::Args)]
pub struct Args {
    /// Directory of `.data` files (bpf_conformance's or uBPF's `tests/`).
    dir: PathBuf,
    /// Execution engine (the JIT by default where it has a back end);
    /// `jit-arm64` runs each program through the ARM64 back end under
    /// qemu-aarch64.
    #[arg(long, value_enum, default_value_t = SuiteEngine::native())]
    engine: SuiteEngine,
}

/// The engines the suite runs on: those of `bpfkit run`, and the ARM64
/// back end, which runs only as a static aarch64 executable under qemu.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SuiteEngine {
    /// The pre-decoded, memory-checked interpreter.
    #[value(alias = "interp")]
    Interpreter,
    /// The x86-64 JIT, with the interpreter's checks and errors.
    Jit,
    /// The ARM64 JIT, each program run under qemu-aarch64 (package qemu-user).
    JitArm64,
}

impl SuiteEngine {
    /// The JIT on x86-64, the interpreter elsewhere.
    fn native() -> SuiteEngine {
        match Engine::native() {
            Engine::Jit => SuiteEngine::Jit,
            Engine::Interpreter => SuiteEngine::Interpreter,
            Engine::JitArm64 => SuiteEngine::JitArm64,
        }
    }
}

/// Execution engines.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Engine {
    /// The pre-decoded, memory-checked interpreter.
    #[value(alias = "interp")]
    Interpreter,
    /// The x86-64 JIT, with the interpreter's checks and errors.
    Jit,
    /// The ARM64 back end, its code run under qemu-aarch64 (package
    /// qemu-user) with the VM's helpers and maps; each run starts qemu.
    JitArm64,
}

impl Engine {
    /// The JIT on x86-64, the interpreter elsewhere.
    pub fn native() -> Engine {
        match bpfkit_jit::Engine::native() {
            bpfkit_jit::Engine::Jit => Engine::Jit,
            bpfkit_jit::Engine::Interpreter => Engine::Interpreter,
            bpfkit_jit::Engine::JitArm64 => Engine::JitArm64,
        }
    }

    /// The library's name for this engine.
    pub fn library(self) -> bpfkit::Engine {
        match self {
            Engine::Interpreter => bpfkit::Engine::Interpreter,
            Engine::Jit => bpfkit::Engine::Jit,
            Engine::JitArm64 => bpfkit::Engine::JitArm64,
        }
    }

    /// Prepares a loaded program to run on this engine.
    pub fn prepare(self, program: &mut Program) -> Result<(), String> {
        self.library().prepare(program).map_err(|e| e.to_string())
    }
}

/// Runs the suite; prints each failure and skip, then the
/// `N passed, M failed, K skipped` line (CI parses its `N passed, M failed`).
pub fn run(args: Args) -> anyhow::Result<()> {
    let reading = || format!("reading {}", args.dir.display());
    let outcomes = match args.engine {
        SuiteEngine::JitArm64 => {
            let qemu = bpfkit_jit::qemu::Qemu::find()?;
            qemu.conformance_dir(&args.dir).with_context(reading)?
        }
        SuiteEngine::Interpreter => {
            conformance::run_dir_with(&args.dir, &|p| Engine::Interpreter.prepare(p))
                .with_context(reading)?
        }
        SuiteEngine::Jit => conformance::run_dir_with(&args.dir, &|p| Engine::Jit.prepare(p))
            .with_context(reading)?,
    };
    if outcomes.is_empty() {
        bail!("no .data files in {}", args.dir.display());
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for o in &outcomes {
        match &o.result {
            Ok(Verdict::Passed) => passed += 1,
            Ok(Verdict::Skipped(why)) => {
                skipped += 1;
                outln!("SKIP {}: {why}", o.path.display());
            }
            Err(why) => {
                failed += 1;
                // Errors of reading the file name it themselves.
                let path = o.path.display().to_string();
                let why = why.to_string();
                let why = why.strip_prefix(&format!("{path}: ")).unwrap_or(&why);
                outln!("FAIL {path}: {why}");
            }
        }
    }
    outln!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        bail!("{failed} conformance tests failed");
    }
    Ok(())
}

/// The bpf_conformance plugin protocol: the program as hex on standard input,
/// the memory as a hex argument; prints r0 in hex.
#[derive(clap::Args)]
pub struct PluginArgs {
    /// Input memory as hex bytes (may be empty).
    memory: Option<String>,
    /// The program as hex, instead of standard input.
    #[arg(long)]
    program: Option<String>,
}

/// Runs one program for the suite's runner.
pub fn plugin(args: PluginArgs) -> anyhow::Result<()> {
    let program_hex = match args.program {
        Some(p) => p,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the program from standard input")?;
            s
        }
    };
    let code = parse_hex(&program_hex, "program")?;
    let mut memory = parse_hex(args.memory.as_deref().unwrap_or(""), "memory")?;
    let program = Program::from_bytes(&code)?;
    let mut vm = Vm::for_conformance();
    vm.set_budget(1 << 28);
    let r0 = vm.run(&program, &mut memory)?;
    outln!("{r0:x}");
    Ok(())
}
