//! tracefs and bpffs: found, or mounted when absent and we may.

use std::ffi::CString;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn is_mounted(path: &Path, fstype: &str) -> bool {
    std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let mut f = l.split_whitespace();
                let (_, mnt, ty) = (f.next(), f.next(), f.next());
                mnt == path.to_str() && ty == Some(fstype)
            })
        })
        .unwrap_or(false)
}

fn mount(fstype: &str, path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .map_err(|e| Error::sys(format!("create {}", path.display()), e))?;
    let src = CString::new(fstype)
        .map_err(|_| Error::Object(format!("file system type {fstype:?} has a NUL byte")))?;
    let target = c_path(path)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(Error::sys(
            format!("mount {fstype} on {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The tracefs mount point, mounting it at /sys/kernel/tracing when absent.
pub fn tracefs() -> Result<PathBuf> {
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let p = Path::new(p);
        if p.join("events").is_dir() {
            return Ok(p.to_path_buf());
        }
    }
    let p = Path::new("/sys/kernel/tracing");
    if !is_mounted(p, "tracefs") {
        mount("tracefs", p)?;
    }
    Ok(p.to_path_buf())
}

/// The bpffs mount point, mounting it at /sys/fs/bpf when absent.
pub fn bpffs() -> Result<PathBuf> {
    let p = Path::new("/sys/fs/bpf");
    if !is_mounted(p, "bpf") {
        mount("bpf", p)?;
    }
    Ok(p.to_path_buf())
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Object(format!("path {} has a NUL byte", path.display())))
}

/// Pins a map, program, link or BTF object at `path`, which must be inside a
/// bpffs (see [`bpffs`]); the object then outlives this process.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    crate::sys::obj_pin(fd, &c_path(path)?)
        .map_err(|e| Error::sys(format!("pin at {}", path.display()), e))
}

/// Opens the object pinned at `path` (`flags`: 0, `sys::flags::RDONLY` or `WRONLY`).
pub fn open_pinned(path: &Path, flags: u32) -> Result<OwnedFd> {
    crate::sys::obj_get(&c_path(path)?, flags)
        .map_err(|e| Error::sys(format!("open pinned {}", path.display()), e))
}

/// The number of possible CPUs (per-CPU map values and perf buffers); 1 if
/// sysfs cannot say. Code that sizes kernel-written buffers by it uses
/// [`try_possible_cpus`], which fails instead of guessing.
pub fn possible_cpus() -> usize {
    try_possible_cpus().unwrap_or(1)
}

/// The number of possible CPUs, from `/sys/devices/system/cpu/possible`.
pub fn try_possible_cpus() -> Result<usize> {
    const PATH: &str = "/sys/devices/system/cpu/possible";
    let text = std::fs::read_to_string(PATH).map_err(|e| Error::sys(format!("read {PATH}"), e))?;
    parse_cpu_list(text.trim())
        .last()
        .map(|&c| c + 1)
        .ok_or_else(|| Error::Object(format!("{PATH} holds no CPU list: {text:?}")))
}

/// The online CPUs.
pub fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| parse_cpu_list(s.trim()))
        .unwrap_or_else(|_| vec![0])
}

/// Parses a CPU list like `0-3,5,7-8`.
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(
            super::parse_cpu_list("0-3,5,7-8"),
            vec![0, 1, 2, 3, 5, 7, 8]
        );
        assert_eq!(super::parse_cpu_list("0"), vec![0]);
    }
}
