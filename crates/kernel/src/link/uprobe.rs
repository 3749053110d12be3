//! Uprobes and uretprobes: a function of an executable or shared library,
//! found by symbol in its ELF symbol tables and turned into a file offset.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::Link;
use crate::error::{Error, Result};
use crate::prog::Program;
use crate::sys::{perf_event_open, PerfEventAttr};

/// Where a uprobe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UprobeTarget {
    /// The executable or library: a path, or a bare library name
    /// (`libc.so.6`) looked up in the process's maps or the library dirs.
    pub binary: String,
    /// The function; empty to probe `offset` into the file.
    pub symbol: String,
    /// Offset from the symbol, or into the file when `symbol` is empty.
    pub offset: u64,
    /// A uretprobe (fires on return).
    pub retprobe: bool,
    /// Only this process; every process running the binary when `None`.
    pub pid: Option<u32>,
}

const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Finds the file behind `name`: a path is taken as it is; a bare name is
/// looked for in `pid`'s mapped files (so `libc` finds the libc that
/// process uses), then in the usual library directories, then on `PATH`.
pub fn resolve_binary(name: &str, pid: Option<u32>) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.exists() {
            Ok(p)
        } else {
            Err(Error::Object(format!(
                "uprobe target {name} does not exist"
            )))
        };
    }
    if let Some(pid) = pid {
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
                let file = path.rsplit('/').next().unwrap_or(path);
                let matches = file == name
                    || (file.starts_with(name)
                        && file[name.len()..].starts_with(['.', '-'].as_slice()));
                if matches && path.starts_with('/') {
                    return Ok(PathBuf::from(path));
                }
            }
        }
    }
    let path_var = std::env::var("PATH").unwrap_or_default();
    let dirs = LIBRARY_DIRS
        .iter()
        .map(|d| d.to_string())
        .chain(path_var.split(':').map(str::to_string));
    for dir in dirs {
        let candidate = Path::new(&dir).join(name);
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(Error::Object(format!(
        "cannot find `{name}`: not a path, not mapped by the process, and not in the library directories or PATH"
    )))
}

/// The file offset of `symbol` in the ELF file at `path`: its address made
/// relative to the section that holds it. Both `.symtab` and `.dynsym` are
/// searched, so stripped libraries work through their dynamic symbols.
pub fn symbol_file_offset(path: &Path, symbol: &str) -> Result<u64> {
    let syms = crate::usyms::ElfSymbols::read(path)?;
    let addr = syms.address_of_symbol(symbol).ok_or_else(|| {
        Error::Object(format!(
            "{}: no function `{symbol}` in its symbol tables",
            path.display()
        ))
    })?;
    syms.file_offset_of(addr).ok_or_else(|| {
        Error::Object(format!(
            "{}: `{symbol}` lives in no section with file bytes",
            path.display()
        ))
    })
}

/// The `uprobe` PMU's type and the config bit that makes a probe a retprobe.
fn uprobe_pmu() -> Result<(u32, u64)> {
    let dir = Path::new("/sys/bus/event_source/devices/uprobe");
    let type_ = std::fs::read_to_string(dir.join("type"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            Error::Unsupported(
                "uprobes are not available: this kernel has no uprobe PMU \
                 (/sys/bus/event_source/devices/uprobe; CONFIG_UPROBE_EVENTS)"
                    .into(),
            )
        })?;
    // "config:0": the bit number after the colon.
    let bit = std::fs::read_to_string(dir.join("format/retprobe"))
        .ok()
        .and_then(|f| f.trim().strip_prefix("config:")?.parse::<u32>().ok())
        .unwrap_or(0);
    Ok((type_, 1 << bit))
}

/// Attaches a `kprobe`-type program as a uprobe or uretprobe.
pub fn attach_uprobe(prog: &Program, target: &UprobeTarget) -> Result<Link> {
    let path = resolve_binary(&target.binary, target.pid)?;
    let offset = if target.symbol.is_empty() {
        target.offset
    } else {
        symbol_file_offset(&path, &target.symbol)? + target.offset
    };
    let (pmu, retprobe_bit) = uprobe_pmu()?;
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Object("uprobe path has a NUL byte".into()))?;
    let attr = PerfEventAttr {
        type_: pmu,
        config: if target.retprobe { retprobe_bit } else { 0 },
        config1: c_path.as_ptr() as u64,
        config2: offset,
        sample_period_or_freq: 1,
        ..Default::default()
    };
    let kind = if target.retprobe {
        "uretprobe"
    } else {
        "uprobe"
    };
    let at = if target.symbol.is_empty() {
        format!("{}+{:#x}", path.display(), offset)
    } else if target.offset != 0 {
        format!("{}:{}+{:#x}", path.display(), target.symbol, target.offset)
    } else {
        format!("{}:{}", path.display(), target.symbol)
    };
    let description = match target.pid {
        Some(pid) => format!("{kind} {at} (pid {pid})"),
        None => format!("{kind} {at}"),
    };
    // The program hangs off the probe's trace event, which fires on every
    // CPU; the perf event only has to exist, so for "every process" it is
    // opened on CPU 0 (pid -1 with cpu -1 is refused), as libbpf does.
    let (pid, cpu) = match target.pid {
        Some(pid) => (pid as i32, -1),
        None => (-1, 0),
    };
    let event = perf_event_open(&attr, pid, cpu)
        .map_err(|e| Error::sys(format!("perf_event_open for {description}"), e))?;
    drop(c_path);
    super::perf_event::attach_to_event(prog, event, description)
}
