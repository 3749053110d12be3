//! The kernel's symbols, from `/proc/kallsyms`, read once and shared by
//! everything that needs them: `__ksym` externs, the kconfig probe of
//! syscall wrappers, call-site and xlated-dump symbolization.

use std::collections::HashMap;
use std::path::Path;

/// A table of kernel symbols: code symbols sorted by address (to resolve an
/// address), and every symbol by name.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// `(address, name, module)` of code symbols, sorted by address.
    symbols: Vec<(u64, String, Option<String>)>,
    /// Every symbol's address by name (the first, for a repeated name).
    by_name: HashMap<String, u64>,
    /// Every address read as zero: the reader lacks `CAP_SYSLOG`
    /// (`kptr_restrict`).
    restricted: bool,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`. Addresses read as zero when the caller lacks
    /// `CAP_SYSLOG`; such a table resolves nothing.
    pub fn load() -> std::io::Result<KernelSymbols> {
        Self::from_file(Path::new("/proc/kallsyms"))
    }

    /// Reads a file in the `/proc/kallsyms` format.
    pub fn from_file(path: &Path) -> std::io::Result<KernelSymbols> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// Parses text in the `/proc/kallsyms` format: `address type name [module]`.
    pub fn parse(text: &str) -> KernelSymbols {
        let mut symbols = Vec::new();
        let mut by_name = HashMap::new();
        let (mut lines, mut zero) = (0usize, 0usize);
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (
                fields.next().and_then(|a| u64::from_str_radix(a, 16).ok()),
                fields.next(),
                fields.next(),
            ) else {
                continue;
            };
            lines += 1;
            if addr == 0 {
                zero += 1;
                continue;
            }
            by_name.entry(name.to_string()).or_insert(addr);
            // Only code symbols are call sites.
            if matches!(kind, "t" | "T" | "w" | "W") {
                let module = fields
                    .next()
                    .map(|m| m.trim_matches(['[', ']']).to_string());
                symbols.push((addr, name.to_string(), module));
            }
        }
        symbols.sort_by_key(|&(a, _, _)| a);
        KernelSymbols {
            symbols,
            by_name,
            restricted: lines > 0 && zero == lines,
        }
    }

    /// Whether the table is empty because every address read as zero: the
    /// reader lacks `CAP_SYSLOG` (`kptr_restrict`).
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }

    /// The symbol containing `addr`, the offset into it, and its module.
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64, Option<&str>)> {
        let i = self.symbols.partition_point(|&(a, _, _)| a <= addr);
        let (start, name, module) = self.symbols.get(i.checked_sub(1)?)?;
        Some((name.as_str(), addr - start, module.as_deref()))
    }

    /// `name+0xoff [module]`, or the hex address when unknown.
    pub fn describe(&self, addr: u64) -> String {
        let Some((name, off, module)) = self.resolve(addr) else {
            return format!("{addr:#x}");
        };
        let mut s = name.to_string();
        if off != 0 {
            s.push_str(&format!("+{off:#x}"));
        }
        if let Some(m) = module {
            s.push_str(&format!(" [{m}]"));
        }
        s
    }

    /// The symbol that starts exactly at `addr` (bpftool's
    /// `kernel_syms_search` matches whole addresses only).
    pub fn at(&self, addr: u64) -> Option<&str> {
        let i = self.symbols.partition_point(|&(a, _, _)| a < addr);
        match self.symbols.get(i) {
            Some((a, name, _)) if *a == addr => Some(name),
            _ => None,
        }
    }

    /// The address of the symbol called `name`, code or data, if there is one.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_to_the_enclosing_function() {
        let table = KernelSymbols::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81000100 t do_thing\n\
             ffffffff81000200 D some_data\n\
             ffffffffc0000000 t mod_fn\t[mymod]\n",
        );
        assert_eq!(table.describe(0xffffffff81000100), "do_thing");
        assert_eq!(table.describe(0xffffffff81000234), "do_thing+0x134");
        assert_eq!(table.describe(0xffffffffc0000010), "mod_fn+0x10 [mymod]");
        assert_eq!(table.describe(0x10), "0x10");
        assert_eq!(table.at(0xffffffff81000100), Some("do_thing"));
        assert_eq!(table.at(0xffffffff81000101), None);
        assert_eq!(table.address_of("mod_fn"), Some(0xffffffffc0000000));
        // Data symbols have an address but are no call site.
        assert_eq!(table.address_of("some_data"), Some(0xffffffff81000200));
        assert_eq!(table.describe(0xffffffff81000200), "do_thing+0x100");
        assert!(!table.is_restricted());
        let hidden = KernelSymbols::parse("0000000000000000 T _stext\n0000000000000000 t f\n");
        assert!(hidden.is_restricted() && hidden.address_of("f").is_none());
    }
}
