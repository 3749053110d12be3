//! `bpfkit prog list|show|dump`: programs loaded in the kernel, as bpftool
//! shows them (`-j`: JSON with bpftool's field names).

use std::os::fd::{AsFd, BorrowedFd};

use bpfkit_isa::{decode, ByteOrder, Syntax};
use bpfkit_kernel::info::{program_jited, program_xlated_bytes, ProgramInfo};
use bpfkit_kernel::inspect::ObjectKind;

use super::inspect::{no_more, open_all, parse_selector, program_json, program_text, take_json};

/// What to do with programs.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List every program.
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show programs: `show [PROG]`, PROG being `id ID`, `tag TAG`,
    /// `name NAME`, `pinned FILE` or a bare id; every match is shown.
    Show {
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The program handle (none: every program).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Dump a program's translated instructions or JIT-compiled code:
    /// `dump xlated|jited PROG`.
    Dump {
        /// `xlated` (the instructions as the verifier left them) or `jited`.
        #[arg(value_enum)]
        what: Dump,
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The program handle: `id ID`, `tag TAG`, `name NAME`, `pinned FILE` or an id.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
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
        Command::Show { json, mut words } => {
            let json = take_json(&mut words) || json;
            if words.is_empty() {
                return super::inspect::progs(json);
            }
            let (sel, rest) = parse_selector(&words, ObjectKind::Program)?;
            no_more(rest)?;
            let infos = open_all(ObjectKind::Program, &sel)?
                .iter()
                .map(|fd| ProgramInfo::from_fd(fd.as_fd()))
                .collect::<Result<Vec<_>, _>>()?;
            // One match prints an object, several an array, as bpftool does.
            if json && infos.len() == 1 {
                outln!("{}", program_json(&infos[0]));
            } else if json {
                let v: Vec<_> = infos.iter().map(program_json).collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else {
                for info in &infos {
                    out!("{}", program_text(info));
                }
            }
            Ok(())
        }
        Command::Dump {
            what,
            json,
            mut words,
        } => {
            let json = take_json(&mut words) || json;
            let (sel, rest) = parse_selector(&words, ObjectKind::Program)?;
            no_more(rest)?;
            let fds = open_all(ObjectKind::Program, &sel)?;
            let several = fds.len() > 1;
            let mut all_json = Vec::new();
            for fd in &fds {
                let info = ProgramInfo::from_fd(fd.as_fd())?;
                if several && !json {
                    // bpftool heads each of several dumps with the program's first show line.
                    outln!("{}", program_text(&info).lines().next().unwrap_or_default());
                }
                let body = match what {
                    Dump::Xlated => dump_xlated(fd.as_fd(), json)?,
                    Dump::Jited => dump_jited(fd.as_fd(), info.id, json)?,
                };
                if several && json {
                    let key = if matches!(what, Dump::Xlated) {
                        "insns"
                    } else {
                        "code"
                    };
                    let mut head = serde_json::json!({
                        "id": info.id, "type": program_json(&info)["type"],
                        "name": program_json(&info)["name"], "tag": info.tag,
                        "gpl_compatible": info.gpl_compatible,
                    });
                    head[key] = body.unwrap_or_default();
                    all_json.push(head);
                } else if let Some(v) = body {
                    outln!("{v}");
                }
            }
            if several && json {
                outln!("{}", serde_json::to_string(&all_json)?);
            }
            Ok(())
        }
    }
}

/// Prints (text) or returns (JSON) one program's translated instructions.
fn dump_xlated(fd: BorrowedFd<'_>, json: bool) -> anyhow::Result<Option<serde_json::Value>> {
    let lines = xlated_lines(&program_xlated_bytes(fd)?);
    if json {
        return Ok(Some(serde_json::to_value(&lines)?));
    }
    for l in lines {
        outln!("{l}");
    }
    Ok(None)
}

/// Prints (text) or returns (JSON) one program's machine code.
fn dump_jited(
    fd: BorrowedFd<'_>,
    id: u32,
    json: bool,
) -> anyhow::Result<Option<serde_json::Value>> {
    let code = program_jited(fd)?;
    if code.is_empty() {
        anyhow::bail!(
            "program id {id} has no JIT-compiled code (the JIT is off, or it runs interpreted)"
        );
    }
    if json {
        let bytes: Vec<String> = code.iter().map(|b| format!("0x{b:02x}")).collect();
        return Ok(Some(
            serde_json::json!({ "bytes": code.len(), "code": bytes }),
        ));
    }
    for (i, chunk) in code.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        outln!("{:>6x}: {}", i * 16, hex.join(" "));
    }
    Ok(None)
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
