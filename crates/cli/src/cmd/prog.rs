//! `bpfkit prog list|show|dump`: programs loaded in the kernel, as bpftool
//! shows them (`-j`: JSON with bpftool's field names).

use std::os::fd::AsFd;

use anyhow::Context;
use bpfkit_isa::{encode, ByteOrder, Insn, Syntax};
use bpfkit_kernel::info::{program_jited, program_xlated, ProgramInfo};
use bpfkit_kernel::sys::{fd_by_id, IdKind};

use super::inspect::{program_json, program_text};

/// What to do with programs.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List every program.
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show one program.
    Show {
        /// Program id.
        id: u32,
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Dump a program's translated instructions or JIT-compiled code.
    Dump {
        /// `xlated` (the instructions as the verifier left them) or `jited`.
        #[arg(value_enum)]
        what: Dump,
        /// Program id.
        id: u32,
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
    },
}

/// Which code of a program to dump.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Dump {
    /// Translated BPF instructions.
    Xlated,
    /// Machine code from the JIT.
    Jited,
}

fn open(id: u32) -> anyhow::Result<std::os::fd::OwnedFd> {
    fd_by_id(IdKind::Prog, id, 0).with_context(|| format!("program id {id}"))
}

/// Lines like bpftool's: `   0: (b7) r0 = 0`, numbered by instruction slot,
/// with map references shown by id.
pub fn xlated_lines(insns: &[Insn]) -> Vec<String> {
    let mut slot = 0;
    insns
        .iter()
        .map(|insn| {
            let opcode = encode(std::slice::from_ref(insn), ByteOrder::Little)
                .first()
                .copied()
                .unwrap_or(0);
            let text = insn
                .display(Syntax::Llvm)
                .to_string()
                .replace("map[fd:", "map[id:");
            let line = format!("{slot:>4}: ({opcode:02x}) {text}");
            slot += insn.slots();
            line
        })
        .collect()
}

/// Runs `bpfkit prog`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List { json } => super::inspect::progs(json),
        Command::Show { id, json } => {
            let info = ProgramInfo::from_fd(open(id)?.as_fd())?;
            if json {
                println!("{}", program_json(&info));
            } else {
                print!("{}", program_text(&info));
            }
            Ok(())
        }
        Command::Dump { what, id, json } => {
            let fd = open(id)?;
            match what {
                Dump::Xlated => {
                    let lines = xlated_lines(&program_xlated(fd.as_fd())?);
                    if json {
                        println!("{}", serde_json::to_string(&lines)?);
                    } else {
                        for l in lines {
                            println!("{l}");
                        }
                    }
                }
                Dump::Jited => {
                    let code = program_jited(fd.as_fd())?;
                    if code.is_empty() {
                        anyhow::bail!("program id {id} has no JIT-compiled code (the JIT is off, or it runs interpreted)");
                    }
                    if json {
                        let bytes: Vec<String> =
                            code.iter().map(|b| format!("0x{b:02x}")).collect();
                        println!(
                            "{}",
                            serde_json::json!({ "bytes": code.len(), "code": bytes })
                        );
                    } else {
                        for (i, chunk) in code.chunks(16).enumerate() {
                            let hex: Vec<String> =
                                chunk.iter().map(|b| format!("{b:02x}")).collect();
                            println!("{:>6x}: {}", i * 16, hex.join(" "));
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
