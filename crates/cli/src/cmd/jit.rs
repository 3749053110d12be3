//! `bpfkit jit`: the x86-64 or A64 code the JIT makes of a program, each
//! eBPF instruction followed by the machine code made from it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bpfkit_object::ObjectSpec;
use bpfkit_vm::Program;

/// Print the x86-64 or A64 code the JIT makes of a program, interleaved
/// with the eBPF instructions it comes from.
#[derive(clap::Args)]
pub struct Args {
    /// A clang-compiled BPF ELF object, or raw little-endian bytecode.
    file: PathBuf,
    /// Object: the program (may be omitted when there is only one).
    #[arg(long)]
    prog: Option<String>,
    /// The back end whose code to print.
    #[arg(long, value_enum, default_value_t = Arch::X86_64)]
    arch: Arch,
}

/// The JIT's back ends.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Arch {
    /// x86-64, the code `bpfkit run --engine jit` runs on this machine.
    #[value(name = "x86_64", alias = "x86-64")]
    X86_64,
    /// ARM64 (A64), the code `bpfkit run --engine jit-arm64` runs under
    /// qemu-aarch64 (helpers, maps and frames asked of the VM).
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
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
    match args.arch {
        Arch::X86_64 => print(&program),
        Arch::Aarch64 => print_a64(&program),
    }
}

/// The A64 code of `program`, in the layout of the x86-64 listing:
/// `; SLOT: eBPF` before the code made from each instruction, then
/// `OFFSET  INSTRUCTION`, decoded with yaxpeax-arm.
fn print_a64(program: &Program) -> anyhow::Result<()> {
    let code = bpfkit_jit::a64::compile_hosted(program).context("compiling to A64")?;
    outln!(
        "; {} eBPF slots, {} bytes of A64 code",
        program.slots(),
        code.words.len() * 4
    );
    for line in a64_listing(program, &code).lines() {
        outln!("{line}");
    }
    Ok(())
}

/// The listing of [`print_a64`].
fn a64_listing(program: &Program, code: &bpfkit_jit::a64::A64Code) -> String {
    use std::fmt::Write;
    use yaxpeax_arch::{Decoder, U8Reader};
    let mut headers: Vec<Option<String>> = vec![None; code.words.len() + 1];
    let mut slot = 0usize;
    for insn in program.insns() {
        if let Some(Some(at)) = code.starts.get(slot) {
            let text = format!("; {slot:4}: {}", insn.display(bpfkit_isa::Syntax::Llvm));
            // Instructions made into no code share the next one's offset.
            let h = headers[*at].get_or_insert_with(String::new);
            if !h.is_empty() {
                h.push('\n');
            }
            h.push_str(&text);
        }
        slot += insn.slots();
    }
    let decoder = yaxpeax_arm::armv8::a64::InstDecoder::default();
    let mut out = String::from("; prologue\n");
    for (i, word) in code.words.iter().enumerate() {
        if i == code.exits {
            out.push_str("; exit paths\n");
        }
        if let Some(h) = &headers[i] {
            let _ = writeln!(out, "{h}");
        }
        let bytes = word.to_le_bytes();
        let text = match decoder.decode(&mut U8Reader::new(&bytes)) {
            Ok(insn) => insn.to_string(),
            Err(e) => format!(".word {word:#010x} (invalid: {e})"),
        };
        let _ = writeln!(out, "    {:6x}  {text}", i * 4);
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn print(program: &Program) -> anyhow::Result<()> {
    let code = bpfkit_jit::JitProgram::compile(program).context("compiling")?;
    let mut loops = match code.strided_loops() {
        0 => String::new(),
        1 => ", 1 loop with its bounds checks hoisted".to_string(),
        n => format!(", {n} loops with their bounds checks hoisted"),
    };
    if code.copy_loops() > 0 {
        loops += &format!(" ({} a memory copy)", code.copy_loops());
    }
    outln!(
        "; {} eBPF slots, {} bytes of x86-64 code{loops}",
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
