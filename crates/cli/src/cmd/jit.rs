//! `bpfkit jit`: the x86-64 code the JIT makes of a program, each eBPF
//! instruction followed by the machine code made from it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bpfkit_object::ObjectSpec;
use bpfkit_vm::Program;

/// Print the x86-64 code the JIT makes of a program, interleaved with the
/// eBPF instructions it comes from.
#[derive(clap::Args)]
pub struct Args {
    /// A clang-compiled BPF ELF object, or raw little-endian bytecode.
    file: PathBuf,
    /// Object: the program (may be omitted when there is only one).
    #[arg(long)]
    prog: Option<String>,
}

/// Compiles the program and prints its listing.
pub fn run(args: Args) -> anyhow::Result<()> {
    let file = args.file.display();
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {file}"))?;
    let program = if bytes.starts_with(b"\x7fELF") {
        let spec = ObjectSpec::parse(&bytes).with_context(|| format!("parsing {file}"))?;
        let name = match &args.prog {
            Some(p) => p.clone(),
            None if spec.programs.len() == 1 => {
                spec.programs.keys().next().cloned().unwrap_or_default()
            }
            None => bail!(
                "{file} has {} programs; choose one with --prog ({})",
                spec.programs.len(),
                spec.programs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        if !spec.programs.contains_key(&name) {
            bail!("{file} has no program `{name}`");
        }
        // Loaded as the library loads it into the VM (kconfig applied), for
        // the program as it will run; compiled below.
        let bpf = bpfkit::EbpfLoader::new()
            .backend(bpfkit::Backend::Vm)
            .engine(bpfkit::Engine::Interpreter)
            .verify(false)
            .load_spec(spec)
            .with_context(|| format!("loading {file}"))?;
        let program = bpf.program(&name)?.vm_program().context("a VM program")?;
        (**program).clone()
    } else {
        if args.prog.is_some() {
            bail!("{file}: --prog names a program of an ELF object; this is raw bytecode");
        }
        Program::from_bytes(&bytes).with_context(|| format!("loading {file}"))?
    };
    print(&program)
}

#[cfg(target_arch = "x86_64")]
fn print(program: &Program) -> anyhow::Result<()> {
    let code = bpfkit_jit::JitProgram::compile(program).context("compiling")?;
    outln!(
        "; {} eBPF slots, {} bytes of x86-64 code",
        program.slots(),
        code.code().len()
    );
    for line in code.listing(program).lines() {
        outln!("{line}");
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn print(_: &Program) -> anyhow::Result<()> {
    bail!("the JIT has no back end for this architecture")
}
