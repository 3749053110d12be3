//! `bpfkit run`: run raw eBPF bytecode in the userspace VM.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bpfkit_vm::{Program, Vm};

/// Run raw eBPF bytecode in the userspace VM and print r0.
#[derive(clap::Args)]
pub struct Args {
    /// Raw little-endian bytecode (8 bytes per instruction).
    file: PathBuf,
    /// Memory passed in r1 (its length in r2): hex bytes, or @FILE for a file's bytes.
    #[arg(long)]
    mem: Option<String>,
    /// Stop after this many instructions.
    #[arg(long, default_value_t = 1 << 32)]
    budget: u64,
    /// Print the memory after the run, as hex.
    #[arg(long)]
    show_mem: bool,
}

fn memory(spec: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match spec {
        None => Ok(Vec::new()),
        Some(s) if s.starts_with('@') => {
            std::fs::read(&s[1..]).with_context(|| format!("reading memory from {}", &s[1..]))
        }
        Some(s) => {
            let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if digits.len() % 2 != 0 {
                bail!("--mem: odd number of hex digits");
            }
            (0..digits.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&digits[i..i + 2], 16)
                        .with_context(|| format!("--mem: `{}` is not hex", &digits[i..i + 2]))
                })
                .collect()
        }
    }
}

/// Runs the program.
pub fn run(args: Args) -> anyhow::Result<()> {
    let code =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    if code.starts_with(b"\x7fELF") {
        bail!(
            "{} is an ELF object; `bpfkit run` takes raw bytecode \
             (extract a program with `bpfkit asm`, or run objects through the library)",
            args.file.display()
        );
    }
    let program =
        Program::from_bytes(&code).with_context(|| format!("loading {}", args.file.display()))?;
    let mut mem = memory(args.mem.as_deref())?;
    let mut vm = Vm::new();
    vm.set_budget(args.budget);
    let r0 = vm
        .run(&program, &mut mem)
        .with_context(|| format!("running {}", args.file.display()))?;
    println!("{r0:#x}");
    if args.show_mem {
        let hex: Vec<String> = mem.iter().map(|b| format!("{b:02x}")).collect();
        println!("{}", hex.join(" "));
    }
    Ok(())
}
