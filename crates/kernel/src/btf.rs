//! BTF and the kernel: loading an object's BTF, and reading the kernel's
//! own (vmlinux and module BTF, parsed once per process).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use bpfkit_btf::Btf;

use crate::error::{Error, Result};
use crate::prog::with_growing_log;
use crate::sys;

/// Loads a BTF blob (`BPF_BTF_LOAD`). On rejection, loads again with the
/// kernel's BTF log and returns its last complaint and the whole log.
pub fn load_btf(blob: &[u8]) -> Result<OwnedFd> {
    let first = match sys::btf_load(blob, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let (r, log) = with_growing_log(1, |l| sys::btf_load(blob, Some(l)));
    match r {
        Ok(fd) => Ok(fd),
        Err(_) if !log.trim().is_empty() => Err(Error::Btf {
            message: crate::prog::last_complaint(&log),
            log,
        }),
        Err(_) => Err(Error::sys("load BTF", first)),
    }
}

/// Where the kernel publishes its BTF: `vmlinux` and one file per module.
const KERNEL_BTF_DIR: &str = "/sys/kernel/btf";

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), parsed once per
/// process and shared.
pub fn vmlinux() -> Result<Arc<Btf>> {
    static VMLINUX: OnceLock<std::result::Result<Arc<Btf>, String>> = OnceLock::new();
    VMLINUX
        .get_or_init(|| {
            let path = Path::new(KERNEL_BTF_DIR).join("vmlinux");
            let unreadable = |e: std::io::Error| {
                format!(
                    "the kernel's BTF ({}) cannot be read: {e}; this kernel was built \
                     without CONFIG_DEBUG_INFO_BTF, so CO-RE and BTF-typed hooks are unavailable",
                    path.display()
                )
            };
            let file = std::fs::File::open(&path).map_err(unreadable)?;
            let len = file.metadata().map_err(unreadable)?.len() as usize;
            // Kernels from 6.16 let the file be mapped; copying from the
            // mapping is several times faster than read() through sysfs.
            // SAFETY: the kernel generates /sys/kernel/btf/* once; nothing
            // writes to or truncates it while it is mapped here.
            let mapped = unsafe { crate::sys::mmap::ReadOnlyFile::map(file.as_fd(), len) };
            let bytes = match mapped {
                Ok(mapping) => mapping.as_ref().to_vec(),
                Err(_) => std::fs::read(&path).map_err(unreadable)?,
            };
            Btf::from_vec(bytes)
                .map(Arc::new)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .clone()
        .map_err(Error::Unsupported)
}

/// The names of the kernel modules that publish BTF.
pub fn module_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(KERNEL_BTF_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "vmlinux")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A module's split BTF (`/sys/kernel/btf/<module>`, on top of vmlinux),
/// parsed once per process and shared.
pub fn module(name: &str) -> Result<Arc<Btf>> {
    static MODULES: OnceLock<Mutex<HashMap<String, Arc<Btf>>>> = OnceLock::new();
    let cache = MODULES.get_or_init(Default::default);
    if let Some(btf) = cache.lock().ok().and_then(|c| c.get(name).cloned()) {
        return Ok(btf);
    }
    let path = Path::new(KERNEL_BTF_DIR).join(name);
    let bytes =
        std::fs::read(&path).map_err(|e| Error::sys(format!("read {}", path.display()), e))?;
    let btf = Btf::parse_split(&bytes, vmlinux()?)
        .map(Arc::new)
        .map_err(|e| Error::Object(format!("{}: {e}", path.display())))?;
    if let Ok(mut c) = cache.lock() {
        c.insert(name.to_string(), Arc::clone(&btf));
    }
    Ok(btf)
}

/// Every module's BTF (for CO-RE candidates outside vmlinux). Modules whose
/// BTF does not parse are skipped: one bad module must not stop a load
/// whose types are elsewhere.
pub fn modules() -> Vec<Arc<Btf>> {
    module_names()
        .iter()
        .filter_map(|n| module(n).ok())
        .collect()
}
