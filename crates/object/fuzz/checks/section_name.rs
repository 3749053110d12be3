//! Any text as a program section name (`SEC("...")`): interpreting it
//! never panics, and every name it extracts (function, binary, tracepoint,
//! kernel object) is text of the section name, not invented.
//!
//! Shared by the cargo-fuzz target `section_name` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_object::{parse_section, AttachTarget};

/// Checks one input; panics on a finding. True if it names a program section.
pub fn check(data: &[u8]) -> bool {
    let Ok(name) = std::str::from_utf8(data) else {
        return false;
    };
    let Some(kind) = parse_section(name) else {
        return false;
    };
    let parts: Vec<&str> = match &kind.target {
        AttachTarget::Unspecified => vec![],
        AttachTarget::Tracepoint { category, name } => vec![category, name],
        AttachTarget::RawTracepoint { name } => vec![name],
        AttachTarget::Kprobe { function, .. } => vec![function],
        AttachTarget::Ksyscall { syscall, .. } => vec![syscall],
        AttachTarget::Uprobe {
            binary, function, ..
        } => vec![binary, function],
        AttachTarget::Usdt {
            binary,
            provider,
            name,
        } => vec![binary, provider, name],
        AttachTarget::Kernel { name } => vec![name],
    };
    for part in parts {
        assert!(name.contains(part), "{part:?} is not in {name:?}: {kind:?}");
    }
    true
}
