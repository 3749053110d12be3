//! Loading BTF into the kernel.

use std::os::fd::OwnedFd;

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
