//! Programs: each function of a program section, with the subprograms it
//! calls appended, call offsets fixed, and every reference to a map, global
//! variable or extern recorded as a pending relocation.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bpfkit_btf::{Btf, BtfExt, CoreRelo, FuncInfo, LineInfo};
use bpfkit_isa::{decode_slots, opcode, ByteOrder, Insn, RawInsn};

use crate::elf::{Elf, SymKind, Symbol};
use crate::error::{at, ObjectError};
use crate::maps::is_data_section;

/// `R_BPF_64_64`: a 64-bit immediate (`lddw`).
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_ABS64`: a 64-bit data word (map-in-map and prog array inits).
pub const R_BPF_64_ABS64: u32 = 2;
/// `R_BPF_64_ABS32`: a 32-bit data word (DWARF, BTF).
pub const R_BPF_64_ABS32: u32 = 3;
/// `R_BPF_64_NODYLD32`: a 32-bit data word the loader ignores (.BTF.ext).
pub const R_BPF_64_NODYLD32: u32 = 4;
/// `R_BPF_64_32`: a call's 32-bit immediate.
pub const R_BPF_64_32: u32 = 10;

/// What an instruction refers to, to be resolved when the program is loaded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RelocTarget {
    /// `lddw rX, &map`: the map of this name.
    Map(String),
    /// `lddw rX, &var`: byte `offset` in element 0 of this global data map
    /// (`.data`, `.rodata`, `.bss`, `.kconfig`...).
    MapValue {
        /// Map (section) name.
        map: String,
        /// Offset in the value.
        offset: u32,
    },
    /// A `__ksym` extern: a kernel variable (`lddw`) or kfunc (`call`).
    Ksym {
        /// Symbol name.
        name: String,
        /// `true` for a kfunc call.
        is_func: bool,
    },
}

/// A pending relocation of one instruction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relocation {
    /// Slot index of the instruction in the program.
    pub insn: usize,
    /// What it refers to.
    pub target: RelocTarget,
}

/// A function: a FUNC symbol's range in an executable section.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    section: usize,
    start: usize,
    len: usize,
}

/// The linked form of one program, before it is placed in an `ProgramSpec`.
pub(crate) struct Linked {
    pub(crate) insns: Vec<Insn>,
    pub(crate) relocations: Vec<Relocation>,
    pub(crate) func_info: Vec<FuncInfo>,
    pub(crate) line_info: Vec<LineInfo>,
    pub(crate) core_relos: Vec<CoreRelo>,
}

pub(crate) struct Linker<'e, 'a> {
    elf: &'e Elf<'a>,
    slots: BTreeMap<usize, Vec<RawInsn>>,
    functions: Vec<Function>,
    kconfig: BTreeMap<String, u32>,
    map_sections: BTreeSet<usize>,
}

fn is_call(r: RawInsn) -> bool {
    r.code == opcode::jmp::CALL | opcode::class::JMP
}

impl<'e, 'a> Linker<'e, 'a> {
    pub(crate) fn new(
        elf: &'e Elf<'a>,
        kconfig: BTreeMap<String, u32>,
    ) -> Result<Self, ObjectError> {
        let order = if elf.little_endian {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        };
        let mut slots = BTreeMap::new();
        let mut functions = Vec::new();
        for s in elf.sections.iter().filter(|s| s.exec) {
            let data = s.data.unwrap_or(&[]);
            let raw = bpfkit_isa::slots(data, order)
                .map_err(|len| at(&s.name, "-", len as u64, "size is not a multiple of 8"))?;
            let syms: Vec<&Symbol> = elf
                .symbols_in(s.index)
                .into_iter()
                .filter(|sym| sym.kind == SymKind::Func)
                .collect();
            if syms.is_empty() && !raw.is_empty() {
                functions.push(Function {
                    name: s.name.clone(),
                    section: s.index,
                    start: 0,
                    len: raw.len(),
                });
            }
            for sym in syms {
                let start = (sym.value / 8) as usize;
                let len = if sym.size > 0 {
                    (sym.size / 8) as usize
                } else {
                    raw.len().saturating_sub(start)
                };
                if sym.value % 8 != 0 || start + len > raw.len() {
                    return Err(at(
                        &s.name,
                        &sym.name,
                        sym.value,
                        "function lies outside its section",
                    ));
                }
                functions.push(Function {
                    name: sym.name.clone(),
                    section: s.index,
                    start,
                    len,
                });
            }
            slots.insert(s.index, raw);
        }
        let map_sections = elf
            .sections
            .iter()
            .filter(|s| s.name == ".maps" || s.name == "maps")
            .map(|s| s.index)
            .collect();
        Ok(Linker {
            elf,
            slots,
            functions,
            kconfig,
            map_sections,
        })
    }

    /// The entry functions of program sections: `(function name, section name)`.
    pub(crate) fn entry_points(&self) -> Vec<(String, usize)> {
        self.functions
            .iter()
            .filter(|f| {
                self.elf
                    .section(f.section)
                    .is_some_and(|s| s.name != ".text")
            })
            .map(|f| (f.name.clone(), f.section))
            .collect()
    }

    fn function_at(&self, section: usize, slot: usize) -> Option<usize> {
        self.functions
            .iter()
            .position(|f| f.section == section && slot >= f.start && slot < f.start + f.len)
    }

    fn reloc_at(&self, section: usize, slot: usize) -> Option<(crate::elf::Reloc, &Symbol)> {
        let list = self.elf.relocs.get(&section)?;
        let off = slot as u64 * 8;
        let i = list.binary_search_by_key(&off, |r| r.offset).ok()?;
        let r = list[i];
        Some((r, self.elf.symbol(r.symbol)?))
    }

    fn section_name(&self, index: usize) -> &str {
        self.elf
            .section(index)
            .map(|s| s.name.as_str())
            .unwrap_or("?")
    }

    /// Links the program whose entry is function `name` in `section`.
    pub(crate) fn link(
        &self,
        name: &str,
        section: usize,
        btf: Option<&Btf>,
        ext: Option<&BtfExt>,
    ) -> Result<Linked, ObjectError> {
        let entry = self
            .functions
            .iter()
            .position(|f| f.name == name && f.section == section)
            .ok_or_else(|| at(self.section_name(section), name, 0, "no such function"))?;
        // Breadth-first over calls and function pointers, entry first.
        let mut layout: Vec<usize> = vec![entry];
        let mut queue = VecDeque::from([entry]);
        // (function, slot in section) → (target function, target slot)
        let mut calls: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
        while let Some(fi) = queue.pop_front() {
            let f = &self.functions[fi];
            let raw = &self.slots[&f.section];
            let sec_name = self.section_name(f.section).to_string();
            let mut i = f.start;
            while i < f.start + f.len {
                let r = raw[i];
                let reloc = self.reloc_at(f.section, i);
                let code_target = if is_call(r) && r.src == opcode::call_src::LOCAL {
                    match reloc {
                        // A call to an undefined (extern) symbol is a kfunc
                        // call: a __ksym relocation, resolved at load time.
                        Some((_, sym)) if sym.undefined => None,
                        Some((_, sym)) => {
                            let sec = sym.section.ok_or_else(|| {
                                at(
                                    &sec_name,
                                    &f.name,
                                    i as u64 * 8,
                                    format!("call to `{}`, which is in no section", sym.name),
                                )
                            })?;
                            Some((sec, (sym.value / 8) as i64 + r.imm as i64 + 1))
                        }
                        None => Some((f.section, i as i64 + r.imm as i64 + 1)),
                    }
                } else if r.code == opcode::LD_IMM64 {
                    match reloc {
                        Some((_, sym))
                            if sym
                                .section
                                .and_then(|s| self.elf.section(s))
                                .is_some_and(|s| s.exec) =>
                        {
                            let sec = sym.section.unwrap_or(0);
                            Some((sec, ((sym.value as i64) + r.imm as i64) / 8))
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                if let Some((tsec, tslot)) = code_target {
                    let target_fn = usize::try_from(tslot)
                        .ok()
                        .and_then(|t| self.function_at(tsec, t).map(|fi| (fi, t)))
                        .ok_or_else(|| {
                            at(
                                &sec_name,
                                &f.name,
                                i as u64 * 8,
                                format!("call target {tslot} is in no function"),
                            )
                        })?;
                    calls.insert((fi, i), target_fn);
                    if !layout.contains(&target_fn.0) {
                        layout.push(target_fn.0);
                        queue.push_back(target_fn.0);
                    }
                }
                i += if r.code == opcode::LD_IMM64 { 2 } else { 1 };
            }
        }
        // Place the functions and build the program.
        let mut base = BTreeMap::new();
        let mut out: Vec<RawInsn> = Vec::new();
        for &fi in &layout {
            let f = &self.functions[fi];
            base.insert(fi, out.len());
            out.extend_from_slice(&self.slots[&f.section][f.start..f.start + f.len]);
        }
        let final_pos = |fi: usize, slot: usize| base[&fi] + slot - self.functions[fi].start;
        let mut relocations = Vec::new();
        for &fi in &layout {
            let f = &self.functions[fi];
            let sec_name = self.section_name(f.section).to_string();
            let mut i = f.start;
            while i < f.start + f.len {
                let pos = final_pos(fi, i);
                let r = out[pos];
                if let Some(&(tf, tslot)) = calls.get(&(fi, i)) {
                    let target = final_pos(tf, tslot) as i64;
                    if is_call(r) {
                        out[pos].imm = (target - (pos as i64 + 1)) as i32;
                    } else {
                        // Function pointer: lddw with BPF_PSEUDO_FUNC.
                        out[pos].src = opcode::pseudo::FUNC;
                        out[pos].imm = (target - (pos as i64 + 1)) as i32;
                        // A truncated lddw is reported by the decoder below.
                        if let Some(tail) = out.get_mut(pos + 1) {
                            tail.imm = 0;
                        }
                    }
                } else if let Some((rel, sym)) = self.reloc_at(f.section, i) {
                    if let Some(t) = self.data_target(&sec_name, &f.name, i, r, rel.r_type, sym)? {
                        if r.code == opcode::LD_IMM64 {
                            // The offset now lives in the relocation; clear the addend.
                            out[pos].imm = 0;
                            if let Some(tail) = out.get_mut(pos + 1) {
                                tail.imm = 0;
                            }
                        }
                        relocations.push(Relocation {
                            insn: pos,
                            target: t,
                        });
                    }
                }
                i += if r.code == opcode::LD_IMM64 { 2 } else { 1 };
            }
        }
        let insns = decode_slots(&out).map_err(|e| {
            at(
                self.section_name(self.functions[entry].section),
                name,
                e.index as u64 * 8,
                e.kind.to_string(),
            )
        })?;
        let (func_info, line_info, core_relos) = match (btf, ext) {
            (Some(btf), Some(ext)) => self.ext_records(btf, ext, &layout, &base),
            _ => (Vec::new(), Vec::new(), Vec::new()),
        };
        Ok(Linked {
            insns,
            relocations,
            func_info,
            line_info,
            core_relos,
        })
    }

    /// What a relocated instruction refers to, if it is data (not code).
    fn data_target(
        &self,
        sec_name: &str,
        func: &str,
        slot: usize,
        r: RawInsn,
        r_type: u32,
        sym: &Symbol,
    ) -> Result<Option<RelocTarget>, ObjectError> {
        let err = |why: String| at(sec_name, func, slot as u64 * 8, why);
        if is_call(r) {
            // A call to an extern is a kfunc call.
            return if sym.undefined {
                Ok(Some(RelocTarget::Ksym {
                    name: sym.name.clone(),
                    is_func: true,
                }))
            } else {
                Err(err(format!(
                    "call relocation against data symbol `{}`",
                    sym.name
                )))
            };
        }
        if r.code != opcode::LD_IMM64 {
            return Err(err(format!(
                "relocation type {r_type} against `{}` on an instruction that is neither lddw nor call",
                sym.name
            )));
        }
        if sym.undefined {
            return Ok(Some(match self.kconfig.get(&sym.name) {
                Some(&offset) => RelocTarget::MapValue {
                    map: ".kconfig".into(),
                    offset,
                },
                None => RelocTarget::Ksym {
                    name: sym.name.clone(),
                    is_func: false,
                },
            }));
        }
        let Some(sec) = sym.section else {
            return Err(err(format!(
                "relocation against absolute symbol `{}`",
                sym.name
            )));
        };
        if self.map_sections.contains(&sec) {
            return Ok(Some(RelocTarget::Map(sym.name.clone())));
        }
        let data_sec = self.section_name(sec);
        if is_data_section(data_sec) {
            let offset = sym.value as i64 + r.imm as i64;
            let offset = u32::try_from(offset)
                .map_err(|_| err(format!("offset {offset} into `{data_sec}` is out of range")))?;
            return Ok(Some(RelocTarget::MapValue {
                map: data_sec.to_string(),
                offset,
            }));
        }
        Err(err(format!(
            "relocation against `{}` in unsupported section `{data_sec}`",
            sym.name
        )))
    }

    #[allow(clippy::type_complexity)]
    fn ext_records(
        &self,
        btf: &Btf,
        ext: &BtfExt,
        layout: &[usize],
        base: &BTreeMap<usize, usize>,
    ) -> (Vec<FuncInfo>, Vec<LineInfo>, Vec<CoreRelo>) {
        // BTF.ext offsets are bytes from the start of a section; the spec's
        // are instruction indexes in the linked program.
        let place = |sec: usize, byte_off: u32| -> Option<u32> {
            let slot = (byte_off / 8) as usize;
            let fi = *layout.iter().find(|&&fi| {
                let f = &self.functions[fi];
                f.section == sec && slot >= f.start && slot < f.start + f.len
            })?;
            Some((base[&fi] + slot - self.functions[fi].start) as u32)
        };
        let sections: BTreeSet<usize> = layout
            .iter()
            .map(|&fi| self.functions[fi].section)
            .collect();
        let mut func_info = Vec::new();
        let mut line_info = Vec::new();
        let mut core_relos = Vec::new();
        for &sec in &sections {
            let name = self.section_name(sec);
            for rec in ext.func_info_for(btf, name).unwrap_or(&[]) {
                if let Some(off) = place(sec, rec.insn_off) {
                    func_info.push(FuncInfo {
                        insn_off: off,
                        ..*rec
                    });
                }
            }
            for rec in ext.line_info_for(btf, name).unwrap_or(&[]) {
                if let Some(off) = place(sec, rec.insn_off) {
                    line_info.push(LineInfo {
                        insn_off: off,
                        ..*rec
                    });
                }
            }
            for rec in ext.core_relos_for(btf, name).unwrap_or(&[]) {
                if let Some(off) = place(sec, rec.insn_off) {
                    core_relos.push(CoreRelo {
                        insn_off: off,
                        ..*rec
                    });
                }
            }
        }
        func_info.sort_by_key(|r| r.insn_off);
        line_info.sort_by_key(|r| r.insn_off);
        core_relos.sort_by_key(|r| r.insn_off);
        (func_info, line_info, core_relos)
    }
}
