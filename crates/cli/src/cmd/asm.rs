//! `bpfkit asm`: assemble eBPF assembly into raw bytecode.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bpfkit_isa::{assemble, encode, ByteOrder};
use clap::Parser;

use super::disasm::SyntaxArg;

/// Assemble a text file into raw little-endian eBPF bytecode.
#[derive(Parser)]
pub struct Args {
    /// Assembly source, one instruction per line.
    file: PathBuf,
    /// Assembly syntax.
    #[arg(long, short, value_enum, default_value_t = SyntaxArg::Llvm)]
    syntax: SyntaxArg,
    /// Where to write the bytecode.
    #[arg(long, short)]
    output: PathBuf,
}

/// Runs `bpfkit asm`.
pub fn run(args: Args) -> Result<()> {
    let source = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let insns = assemble(&source, args.syntax.into())
        .map_err(|e| anyhow::anyhow!("{}:{e}", args.file.display()))?;
    if insns.is_empty() {
        // An empty program is never loadable; writing an empty file would
        // only move the error to whatever reads it.
        anyhow::bail!("{}: empty input, no instructions", args.file.display());
    }
    std::fs::write(&args.output, encode(&insns, ByteOrder::Little))
        .with_context(|| format!("writing {}", args.output.display()))
}
