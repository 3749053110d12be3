//! Loading BTF into the kernel.

use std::os::fd::OwnedFd;

use crate::error::{Error, Result};
use crate::sys::{bpf_fd, cmd, Attr};

/// Loads a BTF blob (`BPF_BTF_LOAD`); on failure the error carries the kernel's log.
pub fn load_btf(blob: &[u8]) -> Result<OwnedFd> {
    let attempt = |log: &mut [u8], level: u32| {
        let mut attr = Attr::default()
            .ptr(0, blob.as_ptr())
            .u32(16, blob.len() as u32);
        if level > 0 {
            attr = attr
                .ptr(8, log.as_ptr())
                .u32(20, log.len() as u32)
                .u32(24, level);
        }
        bpf_fd(cmd::BTF_LOAD, &mut attr)
    };
    match attempt(&mut [], 0) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let mut log = vec![0u8; 1 << 20];
            let _ = attempt(&mut log, 1);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            Err(Error::sys(format!("load BTF ({last})"), e))
        }
    }
}
