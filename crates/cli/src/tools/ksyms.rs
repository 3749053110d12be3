//! Kernel address → symbol, from `/proc/kallsyms`.

use std::path::Path;

/// A sorted table of kernel symbols.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// `(address, name, module)` sorted by address.
    symbols: Vec<(u64, String, Option<String>)>,
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
        let mut symbols: Vec<(u64, String, Option<String>)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
                let kind = fields.next()?;
                let name = fields.next()?;
                // Only code symbols are call sites.
                if addr == 0 || !matches!(kind, "t" | "T" | "w" | "W") {
                    return None;
                }
                let module = fields
                    .next()
                    .map(|m| m.trim_matches(['[', ']']).to_string());
                Some((addr, name.to_string(), module))
            })
            .collect();
        symbols.sort_by_key(|&(a, _, _)| a);
        KernelSymbols { symbols }
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

    /// The address of the symbol called `name`, if there is one.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.symbols
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|&(a, _, _)| a)
    }

    /// Whether the table holds any symbol.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
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
        assert_eq!(table.address_of("some_data"), None);
    }
}
