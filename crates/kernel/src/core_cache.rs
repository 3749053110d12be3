//! A disk cache of CO-RE results, so a tool that starts again on the same
//! kernel skips reading and parsing the kernel's BTF (most of its startup).
//!
//! The key hashes what the relocation depends on: the object's programs
//! (instructions and CO-RE records) and BTF, and the kernel's identity (its
//! build id, the size of vmlinux BTF, the modules' BTF). The value is each
//! program's relocated instructions. Every failure to read or write the cache
//! falls back to relocating as usual: the cache can make a load faster, never
//! make it fail. `BPFKIT_NO_CORE_CACHE=1` turns it off;
//! `BPFKIT_CORE_CACHE_DIR` moves it (default `$XDG_CACHE_HOME/bpfkit/core`
//! or `~/.cache/bpfkit/core`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use bpfkit_isa::{decode, encode, ByteOrder};
use bpfkit_object::ObjectSpec;

const MAGIC: &[u8] = b"bpfkit-core-cache-1\n";

/// Where one object's relocated programs are cached for this kernel.
#[derive(Debug)]
pub(crate) struct CoreCache {
    path: PathBuf,
}

fn cache_dir() -> Option<PathBuf> {
    if std::env::var_os("BPFKIT_NO_CORE_CACHE").is_some_and(|v| v != "0") {
        return None;
    }
    if let Some(dir) = std::env::var_os("BPFKIT_CORE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("bpfkit").join("core"))
}

/// What identifies the running kernel's BTF without reading vmlinux's: the
/// kernel's build id (in `/sys/kernel/notes`), so an entry outlives reboots
/// into the same kernel, else this boot's id; the size of vmlinux BTF; and
/// every module's BTF, which is small, by content.
fn kernel_identity(h: &mut impl Hasher) -> Option<()> {
    match std::fs::read("/sys/kernel/notes") {
        Ok(notes) if !notes.is_empty() => notes.hash(h),
        _ => std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()?
            .trim()
            .hash(h),
    }
    std::fs::metadata("/sys/kernel/btf/vmlinux")
        .ok()?
        .len()
        .hash(h);
    for module in crate::btf::module_names() {
        module.hash(h);
        std::fs::read(format!("/sys/kernel/btf/{module}"))
            .unwrap_or_default()
            .hash(h);
    }
    Some(())
}

fn key(spec: &ObjectSpec, salt: &str) -> Option<u64> {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    kernel_identity(&mut h)?;
    spec.btf.as_ref().map(|b| b.raw_bytes()).hash(&mut h);
    for (name, prog) in &spec.programs {
        name.hash(&mut h);
        encode(&prog.insns, ByteOrder::Little).hash(&mut h);
        format!("{:?}", prog.core_relos).hash(&mut h);
    }
    Some(h.finish())
}

impl CoreCache {
    /// The cache entry of `spec` on this kernel, in `dir` or the default
    /// place, or `None` when caching is off or the kernel cannot be identified.
    pub(crate) fn for_spec(spec: &ObjectSpec, dir: Option<&std::path::Path>) -> Option<CoreCache> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => cache_dir()?,
        };
        // Two independent 64-bit hashes: a 128-bit name.
        let name = format!("{:016x}{:016x}", key(spec, "a")?, key(spec, "b")?);
        Some(CoreCache {
            path: dir.join(name),
        })
    }

    /// Replaces the programs' instructions with the cached relocated ones;
    /// `false` (and `spec` untouched) when there is no usable entry.
    pub(crate) fn apply(&self, spec: &mut ObjectSpec) -> bool {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return false;
        };
        let Some(programs) = parse(&bytes) else {
            return false;
        };
        let matches = programs.len() == spec.programs.len()
            && programs
                .iter()
                .all(|(name, _)| spec.programs.contains_key(name));
        if !matches {
            return false;
        }
        for (name, insns) in programs {
            if let Some(p) = spec.programs.get_mut(&name) {
                p.insns = insns;
            }
        }
        true
    }

    /// Records the relocated programs of `spec`. Errors are ignored.
    pub(crate) fn store(&self, spec: &ObjectSpec) {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(spec.programs.len() as u32).to_le_bytes());
        for (name, prog) in &spec.programs {
            let code = encode(&prog.insns, ByteOrder::Little);
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(code.len() as u32).to_le_bytes());
            out.extend_from_slice(&code);
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // Write aside, then rename: a reader never sees half an entry.
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &out).is_ok() && std::fs::rename(&tmp, &self.path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// The entries of a cache file, or `None` if it is not one.
fn parse(bytes: &[u8]) -> Option<Vec<(String, Vec<bpfkit_isa::Insn>)>> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0xff; 4])) as usize;
    let count = u32_of(take(4)?);
    let mut out = Vec::new();
    for _ in 0..count {
        let name_len = u32_of(take(4)?);
        let name = String::from_utf8(take(name_len)?.to_vec()).ok()?;
        let code_len = u32_of(take(4)?);
        let insns = decode(take(code_len)?, ByteOrder::Little).ok()?;
        out.push((name, insns));
    }
    take(1).is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_files_are_not_entries() {
        assert!(parse(b"something else").is_none());
        let mut good = MAGIC.to_vec();
        good.extend_from_slice(&1u32.to_le_bytes());
        good.extend_from_slice(&1u32.to_le_bytes());
        good.push(b'p');
        let exit = encode(&[bpfkit_isa::Insn::Exit], ByteOrder::Little);
        good.extend_from_slice(&(exit.len() as u32).to_le_bytes());
        good.extend_from_slice(&exit);
        assert_eq!(parse(&good).unwrap()[0].0, "p");
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(parse(&longer).is_none());
    }
}
