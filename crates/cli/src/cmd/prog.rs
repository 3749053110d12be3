//! `bpfkit prog list|show|dump`: programs loaded in the kernel, as bpftool
//! shows them (`-j`: JSON with bpftool's field names).

use std::os::fd::AsFd;

use anyhow::Context;
use bpfkit_isa::{decode, ByteOrder, Syntax};
use bpfkit_kernel::info::{program_jited, program_xlated_bytes, ProgramInfo};
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
/// with map references shown by id. The kernel's rewrites may use encodings
/// of its own (per-CPU address moves, for one) that are not in the
/// instruction set: those print as their raw fields.
pub fn xlated_lines(code: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut slot = 0;
    while slot * 8 < code.len() {
        let at = slot * 8;
        let opcode = code[at];
        let width = if opcode == 0x18 { 16 } else { 8 };
        let bytes = &code[at..(at + width).min(code.len())];
        let text = match decode(bytes, ByteOrder::Little).as_deref() {
            Ok([insn]) => insn
                .display(Syntax::Llvm)
                .to_string()
                .replace("map[fd:", "map[id:"),
            _ => {
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("<kernel-internal: {}>", hex.join(" "))
            }
        };
        lines.push(format!("{slot:>4}: ({opcode:02x}) {text}"));
        slot += width / 8;
    }
    lines
}

/// Runs `bpfkit prog`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List { json } => super::inspect::progs(json),
        Command::Show { id, json } => {
            let info = ProgramInfo::from_fd(open(id)?.as_fd())?;
            if json {
                outln!("{}", program_json(&info));
            } else {
                out!("{}", program_text(&info));
            }
            Ok(())
        }
        Command::Dump { what, id, json } => {
            let fd = open(id)?;
            match what {
                Dump::Xlated => {
                    let lines = xlated_lines(&program_xlated_bytes(fd.as_fd())?);
                    if json {
                        outln!("{}", serde_json::to_string(&lines)?);
                    } else {
                        for l in lines {
                            outln!("{l}");
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
                        outln!(
                            "{}",
                            serde_json::json!({ "bytes": code.len(), "code": bytes })
                        );
                    } else {
                        for (i, chunk) in code.chunks(16).enumerate() {
                            let hex: Vec<String> =
                                chunk.iter().map(|b| format!("{b:02x}")).collect();
                            outln!("{:>6x}: {}", i * 16, hex.join(" "));
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlated_lines_number_slots_and_keep_unknown_encodings() {
        let mut code = Vec::new();
        // r1 = map[id:5] ll; r0 = &percpu(r0) (kernel-internal); exit
        code.extend_from_slice(&[0x18, 0x11, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        code.extend_from_slice(&[0xbf, 0x00, 0xff, 0xff, 0, 0, 0, 0]);
        code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
        let lines = xlated_lines(&code);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "   0: (18) r1 = map[id:5]");
        assert_eq!(
            lines[1],
            "   2: (bf) <kernel-internal: bf 00 ff ff 00 00 00 00>"
        );
        assert_eq!(lines[2], "   3: (95) exit");
    }
}
