//! User-space symbols: an ELF file's function symbols ([`ElfSymbols`], which
//! uprobes use to find a function's file offset), and address → symbol for
//! one process ([`ProcessSymbols`]: its mappings from `/proc/PID/maps`, and
//! each mapped file's symbols).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::error::{Error, Result};

/// One executable mapping of a file.
#[derive(Debug, Clone)]
struct Mapping {
    start: u64,
    end: u64,
    file_offset: u64,
    path: PathBuf,
}

/// An ELF file's function symbols (`.symtab` and `.dynsym`, so stripped
/// libraries work through their dynamic symbols), and how its file offsets
/// map to link-time addresses.
#[derive(Debug, Default)]
pub struct ElfSymbols {
    /// `(address, size, name)` sorted by address, one name per address.
    functions: Vec<(u64, u64, String)>,
    /// Every defined symbol's address by name (aliases included).
    by_name: HashMap<String, u64>,
    /// `(file offset, size, address)` of each section with file bytes.
    sections: Vec<(u64, u64, u64)>,
}

impl ElfSymbols {
    /// Reads and parses the ELF file at `path`.
    pub fn read(path: &Path) -> Result<ElfSymbols> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::sys(format!("read {} for its symbols", path.display()), e))?;
        ElfSymbols::parse(&bytes)
            .map_err(|e| Error::Object(format!("{}: not an ELF file: {e}", path.display())))
    }

    /// Parses an ELF file's bytes.
    pub fn parse(bytes: &[u8]) -> std::result::Result<ElfSymbols, object::Error> {
        let file = object::File::parse(bytes)?;
        let mut functions = Vec::new();
        let mut by_name = HashMap::new();
        for s in file.symbols().chain(file.dynamic_symbols()) {
            let (Ok(name), true) = (s.name(), s.is_definition() && s.address() != 0) else {
                continue;
            };
            by_name.entry(name.to_string()).or_insert(s.address());
            if s.kind() == SymbolKind::Text {
                functions.push((s.address(), s.size(), name.to_string()));
            }
        }
        functions.sort();
        functions.dedup_by_key(|f| f.0);
        let sections = file
            .sections()
            .filter_map(|s| {
                let (off, size) = s.file_range()?;
                Some((off, size, s.address()))
            })
            .collect();
        Ok(ElfSymbols {
            functions,
            by_name,
            sections,
        })
    }

    /// The link-time address of file offset `off`.
    pub fn address_of(&self, off: u64) -> Option<u64> {
        self.sections
            .iter()
            .find(|&&(o, size, _)| off >= o && off < o + size)
            .map(|&(o, _, addr)| off - o + addr)
    }

    /// The file offset of link-time address `addr`.
    pub fn file_offset_of(&self, addr: u64) -> Option<u64> {
        self.sections
            .iter()
            .find(|&&(_, size, a)| addr >= a && addr < a + size)
            .map(|&(o, _, a)| addr - a + o)
    }

    /// The address of symbol `name`.
    pub fn address_of_symbol(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).copied()
    }

    /// The function containing `addr`, and how far into it `addr` is.
    pub fn function_at(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.functions.partition_point(|f| f.0 <= addr);
        let (start, size, name) = self.functions.get(i.checked_sub(1)?)?;
        (*size == 0 || addr < start + size).then(|| (name.as_str(), addr - start))
    }
}

/// Symbolizes addresses of one process. Read the mappings while the
/// process lives; files are parsed on first use.
#[derive(Debug, Default)]
pub struct ProcessSymbols {
    mappings: Vec<Mapping>,
    files: HashMap<PathBuf, ElfSymbols>,
}

impl ProcessSymbols {
    /// Reads `/proc/PID/maps`; a gone process resolves nothing.
    pub fn new(pid: u32) -> ProcessSymbols {
        let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        ProcessSymbols {
            mappings: parse_maps(&text),
            files: HashMap::new(),
        }
    }

    /// Reads the process's mappings again (libraries loaded since, or the
    /// image an exec replaced), keeping the files' symbols already parsed.
    /// Mappings read before stay where no new one overlaps them: a process
    /// caught exiting lists few or none, and its addresses must still resolve.
    pub fn refresh(&mut self, pid: u32) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        self.mappings = merge_mappings(&self.mappings, parse_maps(&text));
    }

    /// `function+0xoff [file name]`, `[file name]+0xoff` when the file has no
    /// symbol there, or the hex address when nothing is mapped there.
    pub fn describe(&mut self, addr: u64) -> String {
        let Some(m) = self
            .mappings
            .iter()
            .find(|m| addr >= m.start && addr < m.end)
            .cloned()
        else {
            return format!("{addr:#x}");
        };
        let file_name = m.path.file_name().map_or_else(
            || m.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let offset = addr - m.start + m.file_offset;
        let syms = self
            .files
            .entry(m.path.clone())
            .or_insert_with(|| ElfSymbols::read(&m.path).unwrap_or_default());
        match syms.address_of(offset).and_then(|a| syms.function_at(a)) {
            Some((name, 0)) => format!("{name} [{file_name}]"),
            Some((name, off)) => format!("{name}+{off:#x} [{file_name}]"),
            None => format!("[{file_name}]+{offset:#x}"),
        }
    }
}

/// `new` mappings, then the `old` ones no new mapping overlaps.
fn merge_mappings(old: &[Mapping], mut new: Vec<Mapping>) -> Vec<Mapping> {
    let kept: Vec<Mapping> = old
        .iter()
        .filter(|o| !new.iter().any(|m| o.start < m.end && m.start < o.end))
        .cloned()
        .collect();
    new.extend(kept);
    new
}

/// The executable file mappings in `/proc/PID/maps` text.
fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let perms = f.next()?;
            let file_offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                file_offset,
                path: PathBuf::from(path),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn refreshed_mappings_keep_what_an_exiting_process_no_longer_lists() {
        let maps = |text: &str| super::parse_maps(text);
        let before = maps(
            "1000-2000 r-xp 00000000 08:01 1 /bin/app\n3000-4000 r-xp 00000000 08:01 2 /lib/libc.so.6\n",
        );
        // Exiting: libc already unmapped; then an exec moved the app.
        let merged = super::merge_mappings(&before, maps(""));
        assert_eq!(merged.len(), 2);
        let merged =
            super::merge_mappings(&merged, maps("1800-2800 r-xp 00000000 08:01 3 /bin/new\n"));
        let paths: Vec<_> = merged
            .iter()
            .map(|m| m.path.display().to_string())
            .collect();
        assert_eq!(paths, ["/bin/new", "/lib/libc.so.6"]);
    }

    use super::*;

    /// A function of this test binary, to find by address.
    #[inline(never)]
    fn bpfkit_usyms_probe_target() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn maps_lines_keep_executable_file_mappings_only() {
        let text = "\
55d0c0a00000-55d0c0a28000 r--p 00000000 08:01 1 /usr/bin/cat
55d0c0a28000-55d0c0a7d000 r-xp 00028000 08:01 1 /usr/bin/cat
7ffd5e9f0000-7ffd5ea11000 rw-p 00000000 00:00 0 [stack]
7ffd5ea11000-7ffd5ea13000 r-xp 00000000 00:00 0 [vdso]
";
        let m = parse_maps(text);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].start, m[0].file_offset), (0x55d0c0a28000, 0x28000));
    }

    #[test]
    fn resolves_a_function_of_this_process() {
        let addr = bpfkit_usyms_probe_target as fn() -> u64 as usize as u64;
        let mut syms = ProcessSymbols::new(std::process::id());
        let s = syms.describe(addr + 1);
        // The name is mangled (a Rust path with a hash) and ends in +0x1.
        assert!(
            s.contains("bpfkit_usyms_probe_target") && s.contains("+0x1 ["),
            "{s}"
        );
        assert_eq!(syms.describe(8), "0x8");
    }
}
