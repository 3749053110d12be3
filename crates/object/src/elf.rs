//! The parts of an ELF object the spec is built from, read once with the
//! `object` crate into plain tables.

use object::{
    Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionFlags,
    SectionIndex, SymbolKind, SymbolSection,
};

use crate::error::{section_err, ObjectError};

/// `EM_BPF`.
const EM_BPF: u16 = 247;
const SHF_EXECINSTR: u64 = 0x4;

/// One section.
pub(crate) struct Section<'a> {
    pub(crate) index: usize,
    pub(crate) name: String,
    /// Contents; zero-filled sections (`.bss`) have `None`.
    pub(crate) data: Option<&'a [u8]>,
    pub(crate) size: u64,
    pub(crate) exec: bool,
}

/// What kind of symbol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SymKind {
    Func,
    Object,
    Section,
    Other,
}

/// One symbol.
#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    pub(crate) name: String,
    /// Section index, `None` for undefined (extern) and absolute symbols.
    pub(crate) section: Option<usize>,
    pub(crate) value: u64,
    pub(crate) size: u64,
    pub(crate) kind: SymKind,
    pub(crate) weak: bool,
    pub(crate) undefined: bool,
}

/// One relocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reloc {
    pub(crate) offset: u64,
    pub(crate) symbol: usize,
    pub(crate) r_type: u32,
}

pub(crate) struct Elf<'a> {
    pub(crate) little_endian: bool,
    pub(crate) sections: Vec<Section<'a>>,
    pub(crate) symbols: Vec<Option<Symbol>>,
    /// Relocations by the index of the section they apply to, sorted by offset.
    pub(crate) relocs: std::collections::BTreeMap<usize, Vec<Reloc>>,
}

impl<'a> Elf<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Elf<'a>, ObjectError> {
        let file = object::File::parse(bytes)?;
        let machine = match &file {
            object::File::Elf64(f) => f.elf_header().e_machine.get(f.endian()),
            object::File::Elf32(f) => f.elf_header().e_machine.get(f.endian()),
            _ => return Err(section_err("-", "not an ELF file")),
        };
        if machine != EM_BPF {
            return Err(ObjectError::NotBpf(machine));
        }
        let mut sections = Vec::new();
        for s in file.sections() {
            let name = s.name().unwrap_or("").to_string();
            let exec = matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & SHF_EXECINSTR != 0);
            let data = if s.kind() == object::SectionKind::UninitializedData {
                None
            } else {
                Some(
                    s.data()
                        .map_err(|e| section_err(&name, format!("unreadable contents: {e}")))?,
                )
            };
            sections.push(Section {
                index: s.index().0,
                name,
                data,
                size: s.size(),
                exec,
            });
        }
        let max_sym = file.symbols().map(|s| s.index().0 + 1).max().unwrap_or(0);
        let mut symbols = vec![None; max_sym];
        for s in file.symbols() {
            let section = match s.section() {
                SymbolSection::Section(SectionIndex(i)) => Some(i),
                _ => None,
            };
            let kind = match s.kind() {
                SymbolKind::Text => SymKind::Func,
                SymbolKind::Data => SymKind::Object,
                SymbolKind::Section => SymKind::Section,
                _ => SymKind::Other,
            };
            // Section symbols are named after their section.
            let name = match (kind, section) {
                (SymKind::Section, Some(i)) => sections
                    .iter()
                    .find(|sec: &&Section| sec.index == i)
                    .map(|sec| sec.name.clone())
                    .unwrap_or_default(),
                _ => s.name().unwrap_or("").to_string(),
            };
            symbols[s.index().0] = Some(Symbol {
                name,
                section,
                value: s.address(),
                size: s.size(),
                kind,
                weak: s.is_weak(),
                undefined: s.is_undefined(),
            });
        }
        let mut relocs: std::collections::BTreeMap<usize, Vec<Reloc>> = Default::default();
        for s in file.sections() {
            let mut list = Vec::new();
            for (offset, r) in s.relocations() {
                let RelocationTarget::Symbol(sym) = r.target() else {
                    continue;
                };
                let r_type = match r.flags() {
                    RelocationFlags::Elf { r_type } => r_type,
                    _ => 0,
                };
                list.push(Reloc {
                    offset,
                    symbol: sym.0,
                    r_type,
                });
            }
            if !list.is_empty() {
                list.sort_by_key(|r| r.offset);
                relocs.insert(s.index().0, list);
            }
        }
        Ok(Elf {
            little_endian: file.is_little_endian(),
            sections,
            symbols,
            relocs,
        })
    }

    pub(crate) fn section(&self, index: usize) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.index == index)
    }

    pub(crate) fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub(crate) fn symbol(&self, index: usize) -> Option<&Symbol> {
        self.symbols.get(index).and_then(Option::as_ref)
    }

    /// Symbols defined in section `index`, sorted by value then name.
    pub(crate) fn symbols_in(&self, index: usize) -> Vec<&Symbol> {
        let mut v: Vec<&Symbol> = self
            .symbols
            .iter()
            .flatten()
            .filter(|s| s.section == Some(index) && s.kind != SymKind::Section)
            .collect();
        v.sort_by(|a, b| (a.value, &a.name).cmp(&(b.value, &b.name)));
        v
    }

    pub(crate) fn u32_at(&self, bytes: &[u8], off: usize) -> Option<u32> {
        let b: [u8; 4] = bytes.get(off..off + 4)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
}
