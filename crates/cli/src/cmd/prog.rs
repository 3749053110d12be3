//! `bpfkit prog list|show|dump`: programs loaded in the kernel, as bpftool
//! shows them (`-j`: JSON with bpftool's field names).

use std::os::fd::{AsFd, BorrowedFd};

use bpfkit_kernel::info::{
    program_debug_info, program_jited, program_jited_ksyms, program_xlated_bytes, ProgramInfo,
};
use bpfkit_kernel::inspect::ObjectKind;

use bpfkit_kernel::ksyms::KernelSymbols;

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

/// What names the calls of a dump: the kernel's symbols, `__bpf_call_base`
/// (helper and kfunc calls are offsets from it once verified), the
/// addresses of the program's JIT-compiled functions, and the helper names.
#[derive(Default)]
pub struct CallNames {
    /// Symbols from /proc/kallsyms (empty when unreadable).
    pub symbols: KernelSymbols,
    /// Address of `__bpf_call_base`.
    pub call_base: u64,
    /// Addresses of the JIT-compiled functions, by subprogram index.
    pub jited_ksyms: Vec<u64>,
    /// `bpf_` + name by helper id (the kernel's `func_id_str`), read from
    /// the kernel's BTF only if a call still names a helper by id (a
    /// verified program's rarely do), since parsing it takes a while.
    pub helpers: std::cell::OnceCell<Vec<Option<String>>>,
}

/// `bpf_` + name by helper id from `enum bpf_func_id` in the kernel's BTF.
fn helper_names() -> Vec<Option<String>> {
    let mut helpers = Vec::new();
    let Ok(btf) = bpfkit_kernel::btf::vmlinux() else {
        return helpers;
    };
    let Some(id) = btf.find_by_name_kind("bpf_func_id", bpfkit_btf::Kind::Enum) else {
        return helpers;
    };
    for v in btf
        .type_by_id(id)
        .map(|t| t.enum_values())
        .into_iter()
        .flatten()
    {
        let (Some(name), Ok(i)) = (v.name.strip_prefix("BPF_FUNC_"), usize::try_from(v.value))
        else {
            continue;
        };
        if i < 4096 {
            if helpers.len() <= i {
                helpers.resize(i + 1, None);
            }
            helpers[i] = Some(format!("bpf_{name}"));
        }
    }
    helpers
}

impl CallNames {
    /// What this kernel and this program offer: kallsyms and the JIT
    /// symbols (helper names come later, if needed).
    pub fn for_program(fd: BorrowedFd<'_>) -> CallNames {
        let symbols = KernelSymbols::load().unwrap_or_default();
        let call_base = symbols.address_of("__bpf_call_base").unwrap_or(0);
        CallNames {
            symbols,
            call_base,
            jited_ksyms: program_jited_ksyms(fd).unwrap_or_default(),
            helpers: std::cell::OnceCell::new(),
        }
    }

    /// The name of helper `id`, if the kernel has one by that number.
    fn helper(&self, id: i32) -> Option<&str> {
        // Verified calls hold offsets from the call base, far above any id.
        let id = usize::try_from(id).ok().filter(|&i| i < 4096)?;
        self.helpers.get_or_init(helper_names).get(id)?.as_deref()
    }
}

/// The raw fields of one instruction slot (native byte order, as the
/// kernel hands translated instructions back).
#[derive(Clone, Copy)]
struct RawInsn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl RawInsn {
    fn new(b: &[u8]) -> RawInsn {
        let regs = b[1];
        let (dst, src) = if cfg!(target_endian = "little") {
            (regs & 0xf, regs >> 4)
        } else {
            (regs >> 4, regs & 0xf)
        };
        RawInsn {
            code: b[0],
            dst,
            src,
            off: i16::from_ne_bytes([b[2], b[3]]),
            imm: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_MAP_VALUE: u8 = 2;
const PSEUDO_MAP_IDX_VALUE: u8 = 6;
const PSEUDO_FUNC: u8 = 4;
const PSEUDO_CALL: u8 = 1;

/// A call's target as the kernel's `__func_get_name` with bpftool's
/// `print_call` callback names it: a helper id the kernel still shows by
/// number by its name; otherwise the address (the call base plus the
/// offset, or for a bpf-to-bpf call the JIT symbol of subprogram `imm`)
/// looked up exactly in kallsyms.
fn call_target(insn: RawInsn, names: &CallNames) -> String {
    if insn.src == 0 {
        if let Some(name) = names.helper(insn.imm) {
            return name.to_string();
        }
    }
    let mut address = names.call_base.wrapping_add(insn.imm as i64 as u64);
    if insn.src == PSEUDO_CALL {
        if let Some(&a) = usize::try_from(insn.imm)
            .ok()
            .and_then(|i| names.jited_ksyms.get(i))
        {
            address = a;
        }
    }
    let sym = names.symbols.at(address);
    if insn.src == PSEUDO_CALL {
        // bpftool's print_call_pcrel: no address for interpreted programs.
        return match (names.jited_ksyms.is_empty(), sym) {
            (true, _) => format!("{:+}", insn.imm),
            (false, Some(s)) => format!("{:+}#{s}", insn.imm),
            (false, None) => format!("{:+}#{address:#x}", insn.imm),
        };
    }
    match sym {
        Some(s) => s.to_string(),
        None => format!("{address:#x}"),
    }
}

const LDST: [&str; 4] = ["u32", "u16", "u8", "u64"];
const LDSX: [&str; 4] = ["s32", "s16", "s8", "BUG"];

/// `bpf_alu_string`, by operation (`code >> 4`).
fn alu_op(op: u8) -> &'static str {
    [
        "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian",
        "", "",
    ][usize::from(op & 0xf)]
}

/// `bpf_jmp_string`, by operation.
fn jmp_op(op: u8) -> &'static str {
    [
        "jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", "",
        "",
    ][usize::from(op & 0xf)]
}

/// One instruction in the kernel's verifier-log syntax (kernel/bpf/disasm.c
/// `print_bpf_insn`, with bpftool's `print_imm` and `print_call` callbacks),
/// the syntax bpftool's `prog dump xlated` prints. `next` is the second slot
/// of a 64-bit immediate load.
fn kernel_syntax(insn: RawInsn, next: Option<RawInsn>, names: &CallNames) -> String {
    let code = insn.code;
    let class = code & 7;
    let op = code >> 4;
    let x = code & 8 != 0;
    let size = usize::from((code >> 3) & 3);
    let mode = code & 0xe0;
    let (d, s, off, imm) = (insn.dst, insn.src, insn.off, insn.imm);
    let text = match class {
        // BPF_ALU, BPF_ALU64
        4 | 7 => {
            let r = if class == 4 { 'w' } else { 'r' };
            if op == 0xd {
                if class == 7 {
                    format!("r{d} = bswap{imm} r{d}")
                } else {
                    format!("r{d} = {}{imm} r{d}", if x { "be" } else { "le" })
                }
            } else if op == 0x8 {
                format!("{r}{d} = -{r}{d}")
            } else if code == 0xbf && off == 1 {
                let imm = imm as u32;
                format!(
                    "r{d} = addr_space_cast(r{s}, {}, {})",
                    imm >> 16,
                    imm & 0xffff
                )
            } else if code == 0xbf && off == -1 {
                format!("r{d} = &(void __percpu *)(r{s})")
            } else {
                let signed_div = matches!(op, 0x3 | 0x9) && off == 1;
                let opname = match (signed_div, op) {
                    (true, 0x3) => "s/=",
                    (true, _) => "s%=",
                    _ => alu_op(op),
                };
                if x {
                    let movsx = match (op, off) {
                        (0xb, 8) => "(s8)",
                        (0xb, 16) => "(s16)",
                        (0xb, 32) => "(s32)",
                        _ => "",
                    };
                    format!("{r}{d} {opname} {movsx}{r}{s}")
                } else {
                    format!("{r}{d} {opname} {imm}")
                }
            }
        }
        // BPF_STX
        3 => {
            let sz = LDST[size];
            let w = if size == 3 { "64" } else { "" };
            const FETCH: i32 = 1;
            match (mode, imm) {
                (0x60, _) => format!("*({sz} *)(r{d} {off:+}) = r{s}"),
                (0xc0, 0x00 | 0x40 | 0x50 | 0xa0) => {
                    format!(
                        "lock *({sz} *)(r{d} {off:+}) {} r{s}",
                        alu_op((imm >> 4) as u8)
                    )
                }
                (0xc0, 0x01 | 0x41 | 0x51 | 0xa1) => {
                    let name = match imm & !FETCH {
                        0x00 => "add",
                        0x40 => "or",
                        0x50 => "and",
                        _ => "xor",
                    };
                    format!("r{s} = atomic{w}_fetch_{name}(({sz} *)(r{d} {off:+}), r{s})")
                }
                (0xc0, 0xf1) => format!("r0 = atomic{w}_cmpxchg(({sz} *)(r{d} {off:+}), r0, r{s})"),
                (0xc0, 0xe1) => format!("r{s} = atomic{w}_xchg(({sz} *)(r{d} {off:+}), r{s})"),
                (0xc0, 0x100) => format!("r{d} = load_acquire(({sz} *)(r{s} {off:+}))"),
                (0xc0, 0x110) => format!("store_release(({sz} *)(r{d} {off:+}), r{s})"),
                _ => return format!("BUG_{code:02x}"),
            }
        }
        // BPF_ST
        2 => match mode {
            0x60 => format!("*({} *)(r{d} {off:+}) = {imm}", LDST[size]),
            // BPF_NOSPEC, a kernel-internal speculation barrier.
            0xc0 => "nospec".to_string(),
            _ => return format!("BUG_st_{code:02x}"),
        },
        // BPF_LDX
        1 => match mode {
            0x60 => format!("r{d} = *({} *)(r{s} {off:+})", LDST[size]),
            0x80 => format!("r{d} = *({} *)(r{s} {off:+})", LDSX[size]),
            _ => return format!("BUG_ldx_{code:02x}"),
        },
        // BPF_LD
        0 => match mode {
            0x20 => format!("r0 = *({} *)skb[{imm}]", LDST[size]),
            0x40 => format!("r0 = *({} *)skb[r{s} + {imm}]", LDST[size]),
            0x00 if size == 3 => {
                let hi = next.map_or(0, |n| n.imm);
                let value = match s {
                    PSEUDO_MAP_FD => format!("map[id:{}]", imm as u32),
                    PSEUDO_MAP_VALUE => format!("map[id:{}][0]+{}", imm as u32, hi as u32),
                    PSEUDO_MAP_IDX_VALUE => format!("map[idx:{}]+{}", imm as u32, hi as u32),
                    PSEUDO_FUNC => format!("subprog[{imm:+}]"),
                    _ => format!(
                        "{:#x}",
                        (u64::from(hi as u32) << 32) | u64::from(imm as u32)
                    ),
                };
                format!("r{d} = {value}")
            }
            _ => return format!("BUG_ld_{code:02x}"),
        },
        // BPF_JMP, BPF_JMP32
        _ => {
            let r = if class == 6 { 'w' } else { 'r' };
            if op == 0x8 {
                let target = call_target(insn, names);
                if s == PSEUDO_CALL {
                    format!("call pc{target}")
                } else {
                    // Helpers and kfuncs (src 2) alike: a kfunc's imm is an
                    // offset from the call base once fixed up.
                    format!("call {target}#{imm}")
                }
            } else if code == 0x05 {
                format!("goto pc{off:+}")
            } else if code == 0xe5 && s == 0 {
                format!("may_goto pc{off:+}")
            } else if code == 0x06 {
                format!("gotol pc{imm:+}")
            } else if code == 0x95 {
                "exit".to_string()
            } else if x {
                format!("if {r}{d} {} {r}{s} goto pc{off:+}", jmp_op(op))
            } else {
                format!("if {r}{d} {} {:#x} goto pc{off:+}", jmp_op(op), imm)
            }
        }
    };
    format!("({code:02x}) {text}")
}

/// The instructions of a translated program in bpftool's syntax, each with
/// the slot it starts at (a 64-bit immediate load takes two).
pub fn xlated_insns(code: &[u8], names: &CallNames) -> Vec<(usize, String)> {
    let mut insns = Vec::new();
    let slots: Vec<RawInsn> = code.chunks_exact(8).map(RawInsn::new).collect();
    let mut i = 0;
    while i < slots.len() {
        let insn = slots[i];
        let wide = insn.code == 0x18;
        let text = kernel_syntax(insn, slots.get(i + 1).copied().filter(|_| wide), names);
        insns.push((i, text));
        i += if wide { 2 } else { 1 };
    }
    insns
}

/// What a program's BTF says about its instructions: where each function
/// starts and its type, and their source lines.
pub struct SourceInfo {
    btf: bpfkit_btf::Btf,
    /// `[insn_off, type_id]` per function.
    funcs: Vec<[u32; 2]>,
    /// `[insn_off, file_name_off, line_off, line_col]` per line record.
    lines: Vec<[u32; 4]>,
}

/// The notes bpftool prints before one instruction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InsnNotes {
    /// The function's prototype, at its first instruction.
    pub proto: Option<String>,
    /// The source line, where a line record starts here.
    pub src: Option<String>,
}

impl SourceInfo {
    /// The BTF notes of the program behind `fd`; `None` when it has no BTF.
    pub fn for_program(fd: BorrowedFd<'_>, info: &ProgramInfo) -> Option<SourceInfo> {
        if info.btf_id == 0 {
            return None;
        }
        let btf = bpfkit_kernel::info::btf_by_id(info.btf_id).ok()?;
        let debug = program_debug_info(fd).ok()?;
        Some(SourceInfo {
            btf,
            funcs: debug.funcs,
            lines: debug.lines,
        })
    }

    /// The notes of each of `insns` (from [`xlated_insns`]), found as
    /// bpftool's `dump_xlated_plain` finds them: function records in order,
    /// line records with libbpf's `bpf_prog_linfo__lfind`.
    pub fn notes(&self, insns: &[(usize, String)]) -> Vec<InsnNotes> {
        let mut func = 0;
        let mut skip = 0;
        insns
            .iter()
            .map(|&(slot, _)| {
                let mut notes = InsnNotes::default();
                if let Some(&[off, type_id]) = self.funcs.get(func) {
                    if off as usize == slot {
                        notes.proto = btf_type_only(&self.btf, type_id).filter(|p| !p.is_empty());
                        func += 1;
                    }
                }
                if let Some(rec) = linfo_find(&self.lines, slot, skip) {
                    notes.src = self
                        .btf
                        .str_at(rec[2])
                        .ok()
                        .map(|l| l.trim_start().to_string());
                    skip += 1;
                }
                notes
            })
            .collect()
    }
}

impl SourceInfo {
    /// The prototype of function `index`, as bpftool heads it.
    fn proto(&self, index: usize) -> Option<String> {
        let &[_, type_id] = self.funcs.get(index)?;
        btf_type_only(&self.btf, type_id).filter(|p| !p.is_empty())
    }

    /// The source line to print before each of `insns` of function `f`,
    /// found as bpftool finds them with libbpf's
    /// `bpf_prog_linfo__lfind_addr_func`: among the function's line records
    /// past the `skip` already printed, the last whose code starts at or
    /// before the instruction, if the first of them does.
    fn jited_lines(
        &self,
        layout: &bpfkit_kernel::info::JitedLayout,
        f: &JitedFunction,
        insns: &[X86Insn],
    ) -> Vec<Option<String>> {
        let Some(base) = f
            .address
            .filter(|_| layout.line_addrs.len() == self.lines.len())
        else {
            return vec![None; insns.len()];
        };
        let end = base + f.len as u64;
        // This function's records, as libbpf's dissect_jited_func splits them.
        let records: Vec<(u64, &[u32; 4])> = layout
            .line_addrs
            .iter()
            .zip(&self.lines)
            .filter(|(&a, _)| (base..end).contains(&a))
            .map(|(&a, r)| (a, r))
            .collect();
        let mut skip = 0;
        insns
            .iter()
            .map(|insn| {
                let addr = base + insn.pc as u64;
                let rest = records.get(skip..).filter(|r| !r.is_empty())?;
                if addr < rest[0].0 {
                    return None;
                }
                let n = rest.partition_point(|&(a, _)| a <= addr);
                skip += 1;
                let line = self.btf.str_at(rest[n - 1].1[2]).ok()?.trim_start();
                (!line.is_empty()).then(|| line.to_string())
            })
            .collect()
    }
}

/// libbpf's `bpf_prog_linfo__lfind`: past the first `skip` records, the
/// last one starting at or before `slot`, if it starts at `slot`.
fn linfo_find(lines: &[[u32; 4]], slot: usize, skip: usize) -> Option<&[u32; 4]> {
    let rest = lines.get(skip..).filter(|r| !r.is_empty())?;
    let at_or_before = rest.partition_point(|r| r[0] as usize <= slot);
    let rec = rest.get(at_or_before.checked_sub(1)?)?;
    (rec[0] as usize == slot).then_some(rec)
}

/// A type as bpftool's `btf_dumper_type_only` writes it (`int f(void * ctx)`
/// for a function); `None` for kinds it cannot write.
fn btf_type_only(btf: &bpfkit_btf::Btf, id: u32) -> Option<String> {
    let mut out = String::new();
    type_only_into(btf, id, &mut out, 0)?;
    Some(out)
}

/// bpftool's `__btf_dumper_type_only`, appending to `out`.
fn type_only_into(btf: &bpfkit_btf::Btf, id: u32, out: &mut String, depth: u32) -> Option<()> {
    use bpfkit_btf::Kind;
    if depth > 64 {
        return None;
    }
    if id == 0 {
        out.push_str("void ");
        return Some(());
    }
    let t = btf.type_by_id(id).ok()?;
    let inner = |out: &mut String| type_only_into(btf, t.type_ref().unwrap_or(0), out, depth + 1);
    match t.kind() {
        Kind::Int | Kind::Typedef | Kind::Float => out.push_str(&format!("{} ", t.name())),
        Kind::Struct => out.push_str(&format!("struct {} ", t.name())),
        Kind::Union => out.push_str(&format!("union {} ", t.name())),
        Kind::Enum | Kind::Enum64 => out.push_str(&format!("enum {} ", t.name())),
        Kind::Array => {
            let a = t.array()?;
            type_only_into(btf, a.elem_type, out, depth + 1)?;
            out.push_str(&format!("[{}]", a.nelems));
        }
        Kind::Ptr => {
            inner(out)?;
            out.push_str("* ");
        }
        Kind::Fwd => out.push_str(&format!(
            "{} {} ",
            if t.fwd_is_union() { "union" } else { "struct" },
            t.name()
        )),
        Kind::Volatile => {
            out.push_str("volatile ");
            inner(out)?;
        }
        Kind::Const => {
            out.push_str("const ");
            inner(out)?;
        }
        Kind::Restrict => {
            out.push_str("restrict ");
            inner(out)?;
        }
        Kind::FuncProto => func_into(btf, id, None, out, depth)?,
        Kind::Func => func_into(btf, t.type_ref()?, Some(t.name()), out, depth)?,
        Kind::Var => {
            if t.linkage() == Some(bpfkit_btf::Linkage::Static) {
                out.push_str("static ");
            }
            inner(out)?;
            out.push_str(&format!(" {}", t.name()));
        }
        Kind::Datasec => out.push_str(&format!("section (\"{}\") ", t.name())),
        _ => return None,
    }
    Some(())
}

/// bpftool's `btf_dump_func`: `RET NAME(TYPE NAME, ...)`.
fn func_into(
    btf: &bpfkit_btf::Btf,
    proto: u32,
    name: Option<&str>,
    out: &mut String,
    depth: u32,
) -> Option<()> {
    let p = btf.type_by_id(proto).ok()?;
    type_only_into(btf, p.type_ref().unwrap_or(0), out, depth + 1)?;
    out.push_str(name.unwrap_or_default());
    out.push('(');
    for (i, param) in p.params().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if param.type_id == 0 {
            out.push_str("...");
            continue;
        }
        type_only_into(btf, param.type_id, out, depth + 1)?;
        if param.name_off != 0 {
            out.push_str(param.name);
        } else if out.ends_with(' ') {
            // An unnamed parameter drops the space its type left.
            out.pop();
        }
    }
    out.push(')');
    Some(())
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
            let (sel, mut rest) = parse_selector(&words, ObjectKind::Program)?;
            // bpftool's `opcodes`: each instruction's bytes too (jited only).
            let opcodes =
                matches!(what, Dump::Jited) && rest.first().is_some_and(|w| w == "opcodes");
            if opcodes {
                rest = &rest[1..];
            }
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
                    Dump::Xlated => dump_xlated(fd.as_fd(), &info, json)?,
                    Dump::Jited => dump_jited(fd.as_fd(), &info, json, opcodes)?,
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

/// Prints (text) or returns (JSON) one program's translated instructions,
/// with the prototypes and source lines of its BTF, as bpftool does.
fn dump_xlated(
    fd: BorrowedFd<'_>,
    info: &ProgramInfo,
    json: bool,
) -> anyhow::Result<Option<serde_json::Value>> {
    let insns = xlated_insns(&program_xlated_bytes(fd)?, &CallNames::for_program(fd));
    let notes = match SourceInfo::for_program(fd, info) {
        Some(source) => source.notes(&insns),
        None => insns.iter().map(|_| InsnNotes::default()).collect(),
    };
    if json {
        // bpftool's objects: "proto", "src" where there are, and "disasm".
        let objects: Vec<serde_json::Value> = insns
            .iter()
            .zip(&notes)
            .map(|((_, text), n)| {
                let mut o = serde_json::Map::new();
                if let Some(p) = &n.proto {
                    o.insert("proto".into(), p.clone().into());
                }
                if let Some(s) = &n.src {
                    o.insert("src".into(), s.clone().into());
                }
                o.insert("disasm".into(), text.clone().into());
                serde_json::Value::Object(o)
            })
            .collect();
        return Ok(Some(serde_json::Value::Array(objects)));
    }
    for ((slot, text), n) in insns.iter().zip(&notes) {
        if let Some(p) = &n.proto {
            outln!("{p}:");
        }
        if let Some(s) = &n.src {
            outln!("; {s}");
        }
        outln!("{slot:>4}: {text}");
    }
    Ok(None)
}

/// Prints (text) or returns (JSON) one program's machine code,
/// disassembled as bpftool's `prog dump jited` disassembles it with libbfd
/// (`disasm_print_insn` in bpftool's jit_disasm.c): each function headed by
/// its BTF prototype and its kernel symbol, each instruction as
/// `%4x:\t` + AT&T syntax, source lines from the kernel's `jited_line_info`
/// before the instructions they begin, and with `opcodes` the bytes of each
/// instruction on a line of their own.
fn dump_jited(
    fd: BorrowedFd<'_>,
    info: &ProgramInfo,
    json: bool,
    opcodes: bool,
) -> anyhow::Result<Option<serde_json::Value>> {
    let id = info.id;
    let code = program_jited(fd)?;
    if code.is_empty() {
        anyhow::bail!(
            "program id {id} has no JIT-compiled code (the JIT is off, or it runs interpreted)"
        );
    }
    if !cfg!(target_arch = "x86_64") {
        anyhow::bail!("program id {id}: bpfkit disassembles only x86-64 JIT code");
    }
    let layout = bpfkit_kernel::info::program_jited_layout(fd).unwrap_or_default();
    let funcs = jited_functions(&code, &layout);
    let symbols = KernelSymbols::load().unwrap_or_default();
    let source = SourceInfo::for_program(fd, info);
    let mut all_json = Vec::new();
    for (i, f) in funcs.iter().enumerate() {
        let bytes = &code[f.start..f.start + f.len];
        let insns = disassemble_x86(bytes, f.address.unwrap_or(0));
        let notes = source
            .as_ref()
            .map(|s| s.jited_lines(&layout, f, &insns))
            .unwrap_or_else(|| vec![None; insns.len()]);
        let proto = source.as_ref().and_then(|s| s.proto(i));
        let name = match f.address {
            Some(a) => symbols
                .at(a)
                .map(str::to_string)
                .unwrap_or_else(|| format!("0x{a:016x}")),
            None => "unknown".to_string(),
        };
        if json {
            let insns: Vec<serde_json::Value> = insns
                .iter()
                .zip(&notes)
                .map(|(insn, src)| insn.json(src.as_deref(), bytes, opcodes))
                .collect();
            if !f.headed {
                return Ok(Some(serde_json::Value::Array(insns)));
            }
            let mut o = serde_json::Map::new();
            if let Some(p) = &proto {
                o.insert("proto".into(), p.clone().into());
            }
            o.insert("name".into(), name.into());
            o.insert("insns".into(), insns.into());
            all_json.push(serde_json::Value::Object(o));
            continue;
        }
        if f.headed {
            if let Some(p) = &proto {
                outln!("{p}:");
            }
            outln!("{name}:");
        }
        for (insn, src) in insns.iter().zip(&notes) {
            if let Some(s) = src {
                outln!("; {s}");
            }
            outln!("{:4x}:\t{}", insn.pc, insn.text);
            if opcodes {
                let hex: String = bytes[insn.pc..insn.pc + insn.len]
                    .iter()
                    .map(|b| format!("{b:02x} "))
                    .collect();
                outln!("\t{hex}");
            }
        }
        if f.headed {
            outln!();
        }
    }
    Ok(json.then_some(serde_json::Value::Array(all_json)))
}

/// One JIT-compiled function: where its code starts in the program's
/// code, its length, its kernel address, and whether bpftool heads it
/// with its name (it does whenever the kernel reports function lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
struct JitedFunction {
    start: usize,
    len: usize,
    address: Option<u64>,
    headed: bool,
}

/// The functions of `code` by the kernel's `jited_func_lens`; the whole
/// code as one function when the lengths are missing or do not add up to
/// the code's length.
fn jited_functions(code: &[u8], layout: &bpfkit_kernel::info::JitedLayout) -> Vec<JitedFunction> {
    let lens = &layout.func_lens;
    let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
    if lens.is_empty() || total != code.len() as u64 {
        return vec![JitedFunction {
            start: 0,
            len: code.len(),
            address: layout.ksyms.first().copied(),
            headed: false,
        }];
    }
    let mut start = 0;
    lens.iter()
        .enumerate()
        .map(|(i, &len)| {
            let f = JitedFunction {
                start,
                len: len as usize,
                address: layout.ksyms.get(i).copied(),
                headed: true,
            };
            start += len as usize;
            f
        })
        .collect()
}

/// One decoded x86-64 instruction: offset in its function, length, text as
/// objdump prints it, and the mnemonic and operands apart (bpftool's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
struct X86Insn {
    pc: usize,
    len: usize,
    text: String,
    operation: String,
    operands: Vec<String>,
}

impl X86Insn {
    /// bpftool's JSON object for an instruction.
    fn json(&self, src: Option<&str>, bytes: &[u8], opcodes: bool) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        if let Some(s) = src {
            o.insert("src".into(), s.into());
        }
        o.insert("pc".into(), format!("0x{:x}", self.pc).into());
        o.insert("operation".into(), self.operation.clone().into());
        // bpftool writes one null for an instruction without operands.
        let operands = if self.operands.is_empty() {
            vec![serde_json::Value::Null]
        } else {
            self.operands.iter().map(|s| s.clone().into()).collect()
        };
        o.insert("operands".into(), operands.into());
        if opcodes {
            let hex: Vec<serde_json::Value> = bytes[self.pc..self.pc + self.len]
                .iter()
                .map(|b| format!("0x{b:02x}").into())
                .collect();
            o.insert("opcodes".into(), hex.into());
        }
        serde_json::Value::Object(o)
    }
}

/// Disassembles one function's code in AT&T syntax laid out as objdump
/// (and so bpftool with libbfd) lays it out: the mnemonic padded to six
/// columns and a space, operands without spaces after commas, lowercase
/// hex. Branch targets are absolute, from the function's kernel `address`.
fn disassemble_x86(bytes: &[u8], address: u64) -> Vec<X86Insn> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, FormatterOutput, GasFormatter};
    struct Text(String);
    impl FormatterOutput for Text {
        fn write(&mut self, text: &str, _kind: iced_x86::FormatterTextKind) {
            self.0.push_str(text);
        }
    }
    let mut formatter = GasFormatter::new();
    let options = formatter.options_mut();
    options.set_first_operand_char_index(7);
    options.set_uppercase_hex(false);
    options.set_space_after_operand_separator(false);
    options.set_small_hex_numbers_in_decimal(false);
    options.set_show_zero_displacements(true);
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut insns = Vec::new();
    while decoder.can_decode() {
        let pc = decoder.position();
        let insn = decoder.decode();
        let mut text = String::new();
        formatter.format(&insn, &mut text);
        let mut operation = Text(String::new());
        formatter.format_mnemonic(&insn, &mut operation);
        let operands = (0..formatter.operand_count(&insn))
            .filter_map(|i| {
                let mut op = Text(String::new());
                formatter.format_operand(&insn, &mut op, i).ok()?;
                Some(op.0)
            })
            .filter(|op| !op.is_empty())
            .collect();
        insns.push(X86Insn {
            pc,
            len: insn.len(),
            text: text.trim_end().to_string(),
            operation: operation.0.trim_end().to_string(),
            operands,
        });
    }
    insns
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `prog dump xlated` prints them without BTF notes.
    fn xlated_lines(code: &[u8], names: &CallNames) -> Vec<String> {
        xlated_insns(code, names)
            .into_iter()
            .map(|(i, text)| format!("{i:>4}: {text}"))
            .collect()
    }

    fn slot(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = dst | (src << 4);
        b[2..4].copy_from_slice(&off.to_ne_bytes());
        b[4..8].copy_from_slice(&imm.to_ne_bytes());
        b
    }

    #[test]
    fn xlated_lines_print_the_kernel_syntax_bpftool_prints() {
        let names = CallNames {
            symbols: KernelSymbols::parse(
                "ffffffff81000000 T __bpf_call_base\n\
                 ffffffff81041000 T bpf_get_current_pid_tgid\n\
                 ffffffffc0001000 t bpf_prog_0123456789abcdef_sub\t[bpf]\n",
            ),
            call_base: 0xffffffff81000000,
            jited_ksyms: vec![0xffffffffc0000000, 0xffffffffc0001000],
            helpers: vec![None, Some("bpf_map_lookup_elem".to_string())].into(),
        };
        let mut code = Vec::new();
        for s in [
            slot(0x85, 0, 0, 0, 0x41000), // helper, by address
            slot(0x85, 0, 0, 0, 1),       // helper still by id
            slot(0x85, 0, 1, 3, 1),       // bpf-to-bpf, subprogram 1
            slot(0x85, 0, 2, 0, 0x7000),  // kfunc with no symbol
            slot(0x18, 1, 2, 0, 5),       // map value ...
            slot(0x00, 0, 0, 0, 8),       // ... at offset 8
            slot(0x63, 10, 0, -4, 0),     // *(u32 *)(r10 -4) = r0
            slot(0x61, 1, 1, 0, 0),       // r1 = *(u32 *)(r1 +0)
            slot(0x5d, 1, 0, 23, 0),      // if r1 != r0 goto pc+23
            slot(0x35, 0, 0, 3, 1),       // if r0 >= 0x1 goto pc+3
            slot(0x07, 2, 0, 0, -8),      // r2 += -8
            slot(0xdb, 0, 1, 0, 0),       // lock add
            slot(0xbf, 0, 0, -1, 0),      // per-CPU address
            slot(0xbc, 1, 2, 8, 0),       // w1 = (s8)w2
            slot(0x05, 0, 0, -2, 0),      // goto pc-2
            slot(0x95, 0, 0, 0, 0),
        ] {
            code.extend_from_slice(&s);
        }
        let lines = xlated_lines(&code, &names);
        let want = [
            "   0: (85) call bpf_get_current_pid_tgid#266240",
            "   1: (85) call bpf_map_lookup_elem#1",
            "   2: (85) call pc+1#bpf_prog_0123456789abcdef_sub",
            "   3: (85) call 0xffffffff81007000#28672",
            "   4: (18) r1 = map[id:5][0]+8",
            "   6: (63) *(u32 *)(r10 -4) = r0",
            "   7: (61) r1 = *(u32 *)(r1 +0)",
            "   8: (5d) if r1 != r0 goto pc+23",
            "   9: (35) if r0 >= 0x1 goto pc+3",
            "  10: (07) r2 += -8",
            "  11: (db) lock *(u64 *)(r0 +0) += r1",
            "  12: (bf) r0 = &(void __percpu *)(r0)",
            "  13: (bc) w1 = (s8)w2",
            "  14: (05) goto pc-2",
            "  15: (95) exit",
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn every_instruction_class_prints_as_the_kernel_prints_it() {
        let names = CallNames::default();
        let cases: [([u8; 8], &str); 16] = [
            (slot(0xd7, 3, 0, 0, 32), "(d7) r3 = bswap32 r3"),
            (slot(0xdc, 3, 0, 0, 16), "(dc) r3 = be16 r3"),
            (slot(0x87, 2, 0, 0, 0), "(87) r2 = -r2"),
            (slot(0x3f, 1, 2, 1, 0), "(3f) r1 s/= r2"),
            (slot(0x97, 1, 0, 1, 7), "(97) r1 s%= 7"),
            (
                slot(0xc3, 1, 2, 8, 0x01),
                "(c3) r2 = atomic_fetch_add((u32 *)(r1 +8), r2)",
            ),
            (
                slot(0xdb, 1, 2, 0, 0xe1),
                "(db) r2 = atomic64_xchg((u64 *)(r1 +0), r2)",
            ),
            (
                slot(0xdb, 1, 2, 0, 0xf1),
                "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)",
            ),
            (slot(0xdb, 1, 2, 0, 0x50), "(db) lock *(u64 *)(r1 +0) &= r2"),
            (slot(0x91, 0, 1, -2, 0), "(91) r0 = *(s8 *)(r1 -2)"),
            (slot(0x72, 10, 0, -8, -1), "(72) *(u8 *)(r10 -8) = -1"),
            (slot(0x2e, 1, 2, -5, 0), "(2e) if w1 > w2 goto pc-5"),
            (slot(0x06, 0, 0, 0, 70000), "(06) gotol pc+70000"),
            (slot(0xe5, 0, 0, 4, 0), "(e5) may_goto pc+4"),
            (slot(0x30, 0, 0, 0, 12), "(30) r0 = *(u8 *)skb[12]"),
            (slot(0xc2, 0, 0, 0, 0), "(c2) nospec"),
        ];
        for (bytes, want) in cases {
            assert_eq!(xlated_insns(&bytes, &names)[0].1, want);
        }
        // A plain 64-bit constant, and a subprogram address.
        let mut wide = slot(0x18, 2, 0, 0, 0x5678).to_vec();
        wide.extend_from_slice(&slot(0, 0, 0, 0, 0x1234));
        assert_eq!(xlated_insns(&wide, &names)[0].1, "(18) r2 = 0x123400005678");
        let mut func = slot(0x18, 2, 4, 0, 3).to_vec();
        func.extend_from_slice(&slot(0, 0, 0, 0, 0));
        assert_eq!(xlated_insns(&func, &names)[0].1, "(18) r2 = subprog[+3]");
    }

    #[test]
    fn jited_code_is_laid_out_as_objdump_lays_it_out() {
        // push %rbp; mov %rsp,%rbp; sub $0x8,%rsp; mov %edi,-0x4(%rbp);
        // call (to 0x1000 from 0xc00, written as libbfd writes addresses:
        // 16 digits); leave; ret
        let code = [
            0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x08, 0x89, 0x7d, 0xfc, 0xe8, 0xf0, 0x03,
            0x00, 0x00, 0xc9, 0xc3,
        ];
        let insns = disassemble_x86(&code, 0xc00);
        let text: Vec<String> = insns
            .iter()
            .map(|i| format!("{:4x}:\t{}", i.pc, i.text))
            .collect();
        assert_eq!(
            text,
            [
                "   0:\tpush   %rbp",
                "   1:\tmov    %rsp,%rbp",
                "   4:\tsub    $0x8,%rsp",
                "   8:\tmov    %edi,-0x4(%rbp)",
                "   b:\tcall   0x0000000000001000",
                "  10:\tleave",
                "  11:\tret",
            ]
        );
        assert_eq!(
            insns[3].json(None, &code, true),
            serde_json::json!({"pc": "0x8", "operation": "mov",
                "operands": ["%edi", "-0x4(%rbp)"], "opcodes": ["0x89", "0x7d", "0xfc"]})
        );
        assert_eq!(
            insns[6].json(Some("}"), &code, false),
            serde_json::json!({"src": "}", "pc": "0x11", "operation": "ret", "operands": [null]})
        );
        // Lengths that do not add up to the code: one unheaded listing.
        let layout = bpfkit_kernel::info::JitedLayout {
            ksyms: vec![0xc00, 0x2000],
            func_lens: vec![10, 10],
            line_addrs: vec![],
        };
        assert_eq!(jited_functions(&code, &layout).len(), 1);
        assert!(!jited_functions(&code, &layout)[0].headed);
        let layout = bpfkit_kernel::info::JitedLayout {
            func_lens: vec![11, 7],
            ..layout
        };
        let funcs = jited_functions(&code, &layout);
        assert_eq!(
            funcs[1],
            JitedFunction {
                start: 11,
                len: 7,
                address: Some(0x2000),
                headed: true
            }
        );
    }

    #[test]
    fn line_records_are_found_as_libbpf_finds_them() {
        // Records at slots 0, 0, 3, 5: the second of two at one slot wins,
        // and each found record is skipped past afterwards.
        let lines = [[0, 0, 1, 0], [0, 0, 2, 0], [3, 0, 3, 0], [5, 0, 4, 0]];
        assert_eq!(linfo_find(&lines, 0, 0), Some(&[0, 0, 2, 0]));
        assert_eq!(linfo_find(&lines, 1, 1), None);
        assert_eq!(linfo_find(&lines, 3, 1), Some(&[3, 0, 3, 0]));
        assert_eq!(linfo_find(&lines, 4, 2), None);
        assert_eq!(linfo_find(&lines, 5, 2), Some(&[5, 0, 4, 0]));
        assert_eq!(linfo_find(&lines, 6, 4), None);
        // Past the skipped records, an earlier slot finds nothing.
        assert_eq!(linfo_find(&lines, 0, 2), None);
    }
}
