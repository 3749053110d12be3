//! `bpfkit disasm`: print eBPF bytecode as assembly.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bpfkit_isa::{cbpf, decode, ByteOrder, Insn, Syntax};
use clap::{Parser, ValueEnum};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionFlags, SymbolKind};

/// Disassemble raw eBPF bytecode or every program section of a BPF ELF object.
#[derive(Parser)]
pub struct Args {
    /// Raw bytecode (8-byte instructions, little-endian) or an ELF object.
    file: PathBuf,
    /// Assembly syntax.
    #[arg(long, short, value_enum, default_value_t = SyntaxArg::Llvm)]
    syntax: SyntaxArg,
    /// FILE is classic BPF (an array of `struct sock_filter`, little-endian):
    /// print it as `tcpdump -d` does.
    #[arg(long, conflicts_with = "syntax")]
    cbpf: bool,
}

/// The `--syntax` values shared by `disasm` and `asm`.
#[derive(Clone, Copy, ValueEnum)]
pub enum SyntaxArg {
    /// `r0 = *(u32 *)(r1 + 4)`, as llvm-objdump and bpftool print.
    Llvm,
    /// `ldxw %r0, [%r1+4]`, as uBPF and bpf_conformance write.
    Ubpf,
}

impl From<SyntaxArg> for Syntax {
    fn from(s: SyntaxArg) -> Syntax {
        match s {
            SyntaxArg::Llvm => Syntax::Llvm,
            SyntaxArg::Ubpf => Syntax::Ubpf,
        }
    }
}

/// Runs `bpfkit disasm`.
pub fn run(args: Args) -> Result<()> {
    let data =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    if data.is_empty() {
        // Printing nothing and exiting 0 would hide a truncated or wrong file.
        bail!("{}: empty input, no instructions", args.file.display());
    }
    let text = if args.cbpf {
        let insns = cbpf::decode(&data, ByteOrder::Little)
            .with_context(|| format!("{}: not valid classic BPF", args.file.display()))?;
        cbpf::dump(&insns)
    } else {
        render(&args.file, &data, args.syntax.into())?
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// The listing of a raw program or an ELF object.
fn render(path: &Path, data: &[u8], syntax: Syntax) -> Result<String> {
    if data.starts_with(b"\x7fELF") {
        return render_object(path, data, syntax);
    }
    let insns = decode(data, ByteOrder::Little)
        .with_context(|| format!("{}: not valid eBPF bytecode", path.display()))?;
    let mut out = String::new();
    write_insns(&mut out, &insns, syntax, &BTreeMap::new(), &BTreeMap::new());
    Ok(out)
}

/// Every executable section, with its function symbols as labels and its
/// relocations as trailing comments.
fn render_object(path: &Path, data: &[u8], syntax: Syntax) -> Result<String> {
    // An x86 object's code would otherwise "decode" as eBPF; say what it is,
    // in the words `run` and `load` use.
    if let Some(machine) = elf_machine(data) {
        if machine != object::elf::EM_BPF {
            bail!(
                "{}: ELF machine is {machine}, not BPF ({})",
                path.display(),
                object::elf::EM_BPF
            );
        }
    }
    let file = object::File::parse(data)
        .with_context(|| format!("{}: not a readable ELF object", path.display()))?;
    let order = if file.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let mut out = String::new();
    let mut any = false;
    for section in file.sections() {
        let executable = matches!(section.flags(), SectionFlags::Elf { sh_flags }
            if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0);
        if !executable || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or("<unnamed>");
        let bytes = section
            .data()
            .with_context(|| format!("{}: reading section {name}", path.display()))?;
        let insns =
            decode(bytes, order).with_context(|| format!("{}: section {name}", path.display()))?;

        // Function symbols by slot, so they print as labels.
        let mut labels: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for sym in file.symbols() {
            if sym.section_index() == Some(section.index()) && sym.kind() == SymbolKind::Text {
                if let Ok(sym_name) = sym.name() {
                    labels
                        .entry(sym.address() as usize / 8)
                        .or_default()
                        .push(sym_name);
                }
            }
        }
        // Relocations by slot: the symbol a map reference or call resolves to.
        let mut relocs: BTreeMap<usize, String> = BTreeMap::new();
        for (offset, reloc) in section.relocations() {
            let target = match reloc.target() {
                RelocationTarget::Symbol(idx) => file
                    .symbol_by_index(idx)
                    .ok()
                    .and_then(|s| s.name().ok().map(str::to_string))
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        let s = file.symbol_by_index(idx).ok()?;
                        let sec = file.section_by_index(s.section_index()?).ok()?;
                        sec.name().ok().map(str::to_string)
                    })
                    .unwrap_or_else(|| format!("symbol #{}", idx.0)),
                _ => "?".to_string(),
            };
            relocs.insert(offset as usize / 8, target);
        }

        if any {
            out.push('\n');
        }
        let _ = writeln!(out, "; section {name}");
        write_insns(&mut out, &insns, syntax, &labels, &relocs);
        any = true;
    }
    if !any {
        bail!("{}: no executable sections", path.display());
    }
    Ok(out)
}

/// `e_machine` of an ELF header, read in the byte order `EI_DATA` names;
/// `None` when the header is too short or names no known byte order.
fn elf_machine(data: &[u8]) -> Option<u16> {
    let bytes = [*data.get(18)?, *data.get(19)?];
    match data.get(5)? {
        1 => Some(u16::from_le_bytes(bytes)),
        2 => Some(u16::from_be_bytes(bytes)),
        _ => None,
    }
}

fn write_insns(
    out: &mut String,
    insns: &[Insn],
    syntax: Syntax,
    labels: &BTreeMap<usize, Vec<&str>>,
    relocs: &BTreeMap<usize, String>,
) {
    let mut slot = 0;
    for insn in insns {
        for label in labels.get(&slot).into_iter().flatten() {
            let _ = writeln!(out, "{label}:");
        }
        let _ = write!(out, "{slot:>6}: {}", insn.display(syntax));
        if let Some(target) = relocs.get(&slot) {
            let _ = write!(out, " ; {target}");
        }
        out.push('\n');
        slot += insn.slots();
    }
}
