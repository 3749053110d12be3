//! `bpfkit disasm`: print eBPF bytecode as assembly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bpfkit_isa::{cbpf, decode, ByteOrder, CallTarget, Insn, Syntax};
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
    /// Print jump and call targets as slot offsets (`goto +3`, `call pc+3`,
    /// as bpftool does) with `;` comments, instead of the labels and
    /// directives that make the LLVM-syntax listing `llvm-mc` input.
    #[arg(long)]
    pc_relative: bool,
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
    if data.starts_with(b"\x7fELF") {
        // An x86 object's code would otherwise "decode" as eBPF (or classic
        // BPF); say what it is, in the words `run` and `load` use.
        if let Some(machine) = elf_machine(&data) {
            if machine != object::elf::EM_BPF {
                bail!(
                    "{}: ELF machine is {machine}, not BPF ({})",
                    args.file.display(),
                    object::elf::EM_BPF
                );
            }
        }
        if args.cbpf {
            bail!(
                "{}: an eBPF ELF object; --cbpf reads raw classic BPF (struct sock_filter)",
                args.file.display()
            );
        }
    }
    let text = if args.cbpf {
        let insns = cbpf::decode(&data, ByteOrder::Little)
            .with_context(|| format!("{}: not valid classic BPF", args.file.display()))?;
        cbpf::dump(&insns)
    } else {
        // Labels only in the LLVM syntax: that listing is llvm-mc input.
        let labels = matches!(args.syntax, SyntaxArg::Llvm) && !args.pc_relative;
        render(&args.file, &data, args.syntax.into(), labels)?
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

/// The listing of a raw program or an ELF object; with `labels`, jump and
/// call targets are labels and sections are directives (see [`write_labeled`]).
fn render(path: &Path, data: &[u8], syntax: Syntax, labels: bool) -> Result<String> {
    if data.starts_with(b"\x7fELF") {
        return render_object(path, data, syntax, labels);
    }
    let insns = decode(data, ByteOrder::Little)
        .with_context(|| format!("{}: not valid eBPF bytecode", path.display()))?;
    let section = CodeSection {
        name: None,
        insns,
        relocs: BTreeMap::new(),
    };
    let mut out = String::new();
    if labels {
        write_labeled(&mut out, &[section], Symbols::default(), syntax);
    } else {
        write_insns(
            &mut out,
            &section.insns,
            syntax,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
    }
    Ok(out)
}

/// One executable section, decoded.
struct CodeSection<'a> {
    /// The section name; `None` for raw bytecode, which has no sections.
    name: Option<&'a str>,
    insns: Vec<Insn>,
    /// Relocations by slot.
    relocs: BTreeMap<usize, Reloc>,
}

/// What a relocation at an instruction refers to.
struct Reloc {
    /// The symbol's name, or its section's name for a section symbol.
    name: String,
    /// A section symbol of the code section with this position in the
    /// listing: the target is the addend, kept in the instruction itself.
    section_symbol: Option<usize>,
    /// Against a named symbol (a function, an extern), which a call can name.
    named: bool,
}

/// How a label is bound, which decides whether llvm-mc keeps a relocation
/// against it or against its section.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Binding {
    Local,
    Global,
    Weak,
}

/// Labels by (section position, slot), each name used once in the listing.
#[derive(Default)]
struct Symbols {
    at: BTreeMap<(usize, usize), Vec<(String, Binding)>>,
    used: BTreeSet<String>,
}

impl Symbols {
    /// Adds an object symbol as a label, unless its name cannot be one.
    fn add(&mut self, section: usize, slot: usize, name: &str, binding: Binding) {
        if usable_label(name) && self.used.insert(name.to_string()) {
            self.at
                .entry((section, slot))
                .or_default()
                .push((name.to_string(), binding));
        }
    }

    /// A local label at `slot`, made up (`LBB<section>_<slot>`) if the object
    /// has none: a local label is always resolved in its own section, and in
    /// another section it becomes a section-relative relocation, as clang
    /// emits for static functions.
    fn local_at(&mut self, section: usize, slot: usize) -> String {
        if let Some((name, _)) = self
            .at
            .get(&(section, slot))
            .and_then(|v| v.iter().find(|(_, b)| *b == Binding::Local))
        {
            return name.clone();
        }
        let mut name = format!("LBB{section}_{slot}");
        while self.used.contains(&name) {
            name.push('_');
        }
        self.used.insert(name.clone());
        self.at
            .entry((section, slot))
            .or_default()
            .push((name.clone(), Binding::Local));
        name
    }
}

/// A symbol name both llvm-mc and our assembler read as a label, and not
/// one they read as something else (`r1`, `exit`).
fn usable_label(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let register = name.len() > 1
        && (name.starts_with('r') || name.starts_with('w'))
        && name[1..].bytes().all(|b| b.is_ascii_digit());
    let keyword = matches!(
        name,
        "exit" | "call" | "callx" | "goto" | "gotol" | "if" | "ll" | "lock" | "kfunc" | "pc"
    );
    first_ok && rest_ok && !register && !keyword
}

/// Every executable section, with its function symbols as labels and its
/// relocations as trailing comments.
fn render_object(path: &Path, data: &[u8], syntax: Syntax, labels: bool) -> Result<String> {
    let file = object::File::parse(data)
        .with_context(|| format!("{}: not a readable ELF object", path.display()))?;
    let order = if file.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let mut sections = Vec::new();
    let mut position: BTreeMap<usize, usize> = BTreeMap::new();
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
        position.insert(section.index().0, sections.len());
        sections.push((section, name, insns));
    }
    if sections.is_empty() {
        bail!("{}: no executable sections", path.display());
    }

    // Symbols in code sections, by slot, so they print as labels. The
    // `pc+N` listing keeps to functions, as it always has.
    let mut symbols = Symbols::default();
    let mut functions: Vec<BTreeMap<usize, Vec<&str>>> = vec![BTreeMap::new(); sections.len()];
    for sym in file.symbols() {
        let Some(&pos) = sym.section_index().and_then(|i| position.get(&i.0)) else {
            continue;
        };
        let Ok(name) = sym.name() else { continue };
        if name.is_empty() || matches!(sym.kind(), SymbolKind::Section | SymbolKind::File) {
            continue;
        }
        let slot = sym.address() as usize / 8;
        if sym.kind() == SymbolKind::Text {
            functions[pos].entry(slot).or_default().push(name);
        }
        if sym.address() % 8 == 0 {
            let binding = if sym.is_weak() {
                Binding::Weak
            } else if sym.is_global() {
                Binding::Global
            } else {
                Binding::Local
            };
            symbols.add(pos, slot, name, binding);
        }
    }

    let mut code = Vec::new();
    for (section, name, insns) in sections {
        // Relocations by slot: the symbol a map reference or call resolves to.
        let mut relocs = BTreeMap::new();
        for (offset, reloc) in section.relocations() {
            let reloc = match reloc.target() {
                RelocationTarget::Symbol(idx) => match file.symbol_by_index(idx) {
                    Ok(sym) if sym.kind() == SymbolKind::Section => {
                        let sec = sym.section_index();
                        Reloc {
                            name: sec
                                .and_then(|i| file.section_by_index(i).ok())
                                .and_then(|s| s.name().ok().map(str::to_string))
                                .unwrap_or_else(|| format!("symbol #{}", idx.0)),
                            section_symbol: sec.and_then(|i| position.get(&i.0).copied()),
                            named: false,
                        }
                    }
                    Ok(sym) => Reloc {
                        name: sym
                            .name()
                            .ok()
                            .filter(|n| !n.is_empty())
                            .map_or_else(|| format!("symbol #{}", idx.0), str::to_string),
                        section_symbol: None,
                        named: sym.name().is_ok_and(|n| !n.is_empty()),
                    },
                    Err(_) => Reloc {
                        name: format!("symbol #{}", idx.0),
                        section_symbol: None,
                        named: false,
                    },
                },
                _ => Reloc {
                    name: "?".to_string(),
                    section_symbol: None,
                    named: false,
                },
            };
            relocs.insert(offset as usize / 8, reloc);
        }
        code.push(CodeSection {
            name: Some(name),
            insns,
            relocs,
        });
    }

    let mut out = String::new();
    if labels {
        write_labeled(&mut out, &code, symbols, syntax);
        return Ok(out);
    }
    for (section, functions) in code.iter().zip(&functions) {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "; section {}", section.name.unwrap_or_default());
        let relocs = section
            .relocs
            .iter()
            .map(|(slot, r)| (*slot, r.name.clone()))
            .collect();
        write_insns(&mut out, &section.insns, syntax, functions, &relocs);
    }
    Ok(out)
}

/// Where a jump or call lands, as a slot in its own section.
fn branch_target(insn: &Insn, slot: usize) -> Option<i64> {
    let rel = match *insn {
        Insn::Ja { off } => i64::from(off),
        Insn::Jmp { off, .. } => i64::from(off),
        Insn::Ja32 { imm } => i64::from(imm),
        Insn::Call(CallTarget::Local(imm)) => i64::from(imm),
        _ => return None,
    };
    Some(slot as i64 + 1 + rel)
}

/// The listing as llvm-mc input (`llvm-mc -triple bpfel -filetype=obj`
/// assembles it to the object's unrelocated code, byte for byte):
/// `.section` directives, the object's symbols as labels (`.globl` or
/// `.weak` as bound), jump and local call targets as labels (made up where
/// the object has none), relocated calls naming their symbol, and `#`
/// comments, since llvm-mc's BPF parser does not read `;`. The slot numbers
/// are numeric labels to llvm-mc and skipped by our assembler.
fn write_labeled(out: &mut String, code: &[CodeSection<'_>], mut symbols: Symbols, syntax: Syntax) {
    // Resolve every target first, so labels exist before printing.
    let mut targets: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (pos, section) in code.iter().enumerate() {
        let starts: BTreeSet<usize> = slot_starts(&section.insns).collect();
        let slots: Vec<usize> = slot_starts(&section.insns).collect();
        for (insn, &slot) in section.insns.iter().zip(&slots) {
            let Some(dest) = branch_target(insn, slot) else {
                continue;
            };
            if let Some(reloc) = section.relocs.get(&slot) {
                if !matches!(insn, Insn::Call(CallTarget::Local(_))) {
                    continue;
                }
                // A call relocated against a section symbol: REL keeps the
                // addend in the immediate, as `(offset - 8) / 8` bytes from
                // that section's start (LLVM's BPFAsmBackend::applyFixup).
                if let (Some(target_pos), Insn::Call(CallTarget::Local(imm))) =
                    (reloc.section_symbol, insn)
                {
                    let in_range = usize::try_from(i64::from(*imm) + 1)
                        .ok()
                        .filter(|d| slot_starts(&code[target_pos].insns).any(|s| s == *d));
                    if let Some(d) = in_range {
                        let label = symbols.local_at(target_pos, d);
                        targets.insert((pos, slot), label);
                    }
                } else if reloc.named && usable_label(&reloc.name) {
                    targets.insert((pos, slot), reloc.name.clone());
                }
                continue;
            }
            if let Some(d) = usize::try_from(dest).ok().filter(|d| starts.contains(d)) {
                let label = symbols.local_at(pos, d);
                targets.insert((pos, slot), label);
            }
        }
    }

    for (pos, section) in code.iter().enumerate() {
        if let Some(name) = section.name {
            if pos > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "\t.section {},\"ax\",@progbits", section_name(name));
        }
        for (insn, slot) in section.insns.iter().zip(slot_starts(&section.insns)) {
            for (label, binding) in symbols.at.get(&(pos, slot)).into_iter().flatten() {
                match binding {
                    Binding::Global => {
                        let _ = writeln!(out, "\t.globl {label}");
                    }
                    Binding::Weak => {
                        let _ = writeln!(out, "\t.weak {label}");
                    }
                    Binding::Local => {}
                }
                let _ = writeln!(out, "{label}:");
            }
            let display = insn.display(syntax);
            let target = targets.get(&(pos, slot));
            match target {
                Some(label) => {
                    let _ = write!(out, "{slot:>6}: {}", display.with_target(label));
                }
                None => {
                    let _ = write!(out, "{slot:>6}: {display}");
                }
            }
            // A relocation the label does not already name is a comment.
            if let Some(reloc) = section.relocs.get(&slot) {
                if target.is_none() {
                    let _ = write!(out, " # {}", reloc.name);
                }
            }
            out.push('\n');
        }
    }
}

/// The slot where each instruction starts.
fn slot_starts(insns: &[Insn]) -> impl Iterator<Item = usize> + '_ {
    insns.iter().scan(0, |slot, insn| {
        let at = *slot;
        *slot += insn.slots();
        Some(at)
    })
}

/// A section name as a `.section` operand: quoted unless it is a plain name.
fn section_name(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
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
