//! The values of an object's `__kconfig` externs on the running kernel: its
//! `.config` (from `/boot/config-$(uname -r)`, else `/proc/config.gz`, in
//! libbpf's order) and the values libbpf computes itself
//! ([`bpfkit_object::COMPUTED_EXTERNS`]).

use std::io::Read;

use bpfkit_abi::ProgramType;
use bpfkit_object::{KernelConfig, ObjectSpec};

use crate::error::{Error, Result};

/// `BPF_FUNC_get_attach_cookie`.
const GET_ATTACH_COOKIE: i32 = 174;

/// The running kernel's values for every `__kconfig` extern `spec` declares.
/// Only what the object uses is read or probed: an object with no `CONFIG_*`
/// extern costs no file read, and one without `LINUX_HAS_BPF_COOKIE` no probe.
pub fn kernel_config_for(spec: &ObjectSpec) -> Result<KernelConfig> {
    let names: Vec<&str> = spec.kconfig_names().collect();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| Error::sys("read /proc/sys/kernel/osrelease", e))?;
    let release = release.trim();
    let text = if names.iter().any(|n| n.starts_with("CONFIG_")) {
        config_text(release)?
    } else {
        String::new()
    };
    let mut config = KernelConfig::parse(&text).with_kernel_release(release);
    let yes_no = |b: bool| if b { "y" } else { "n" };
    if names.contains(&"LINUX_HAS_BPF_COOKIE") {
        // libbpf's probe_kern_bpf_cookie: may a tracepoint program call
        // bpf_get_attach_cookie?
        let cookie = crate::features::helper(ProgramType::Tracepoint, GET_ATTACH_COOKIE)?;
        config.set("LINUX_HAS_BPF_COOKIE", yes_no(cookie));
    }
    if names.contains(&"LINUX_HAS_SYSCALL_WRAPPER") {
        config.set("LINUX_HAS_SYSCALL_WRAPPER", yes_no(has_syscall_wrapper()?));
    }
    Ok(config)
}

/// The kernel's `.config` text: `/boot/config-RELEASE`, else
/// `/proc/config.gz` (libbpf's bpf_object__read_kconfig_file order).
fn config_text(release: &str) -> Result<String> {
    let boot = format!("/boot/config-{release}");
    if let Ok(text) = std::fs::read_to_string(&boot) {
        return Ok(text);
    }
    const PROC: &str = "/proc/config.gz";
    let gz = std::fs::read(PROC).map_err(|e| {
        Error::sys(
            format!("the kernel's config is in neither {boot} nor {PROC}: read {PROC}"),
            e,
        )
    })?;
    gunzip(&gz).map_err(|e| Error::Object(format!("{PROC}: {e}")))
}

/// Decompresses a gzip stream of UTF-8 text.
fn gunzip(gz: &[u8]) -> std::result::Result<String, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| format!("not gzip-compressed text: {e}"))?;
    Ok(text)
}

/// Whether syscalls enter through arch wrappers (`__x64_sys_bpf`), which is
/// what libbpf's probe_kern_syscall_wrapper asks. libbpf answers with a
/// kprobe; kallsyms answers the same question without one, so it also works
/// on kernels built without kprobes.
fn has_syscall_wrapper() -> Result<bool> {
    let Some(prefix) = syscall_prefix() else {
        return Ok(false);
    };
    let table = crate::ksyms::KernelSymbols::load()
        .map_err(|e| Error::sys("read /proc/kallsyms for LINUX_HAS_SYSCALL_WRAPPER", e))?;
    Ok(table.address_of(&format!("__{prefix}_sys_bpf")).is_some())
}

/// The arch prefix of syscall wrappers (libbpf's arch_specific_syscall_pfx).
fn syscall_prefix() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("x64"),
        "x86" => Some("ia32"),
        "aarch64" => Some("arm64"),
        "s390x" => Some("s390x"),
        "riscv64" => Some("riscv"),
        "arm" => Some("arm"),
        "powerpc64" | "powerpc" => Some("powerpc"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunzip_reads_config_text_and_rejects_garbage() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, b"CONFIG_HZ=250\n").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz).unwrap(), "CONFIG_HZ=250\n");
        assert!(gunzip(b"CONFIG_HZ=250").unwrap_err().contains("not gzip"));
    }
}
