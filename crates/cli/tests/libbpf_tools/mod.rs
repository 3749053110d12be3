//! The libbpf-tools corpus: the BPF objects embedded in the C tools of the
//! Debian package `libbpf-tools` (each tool carries its object in its
//! skeleton), extracted at test time from the installed package.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The BPF ELF objects embedded in `binary`: each starts with an ELF
/// header for EM_BPF and ends with its section header table.
pub fn embedded_objects(binary: &[u8]) -> Vec<Vec<u8>> {
    const MAGIC: &[u8] = b"\x7fELF\x02\x01";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = binary[at..]
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .map(|p| p + at)
    {
        at = i + 1;
        let field = |off: usize, n: usize| binary.get(i + off..i + off + n);
        let u16_at = |off| field(off, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if u16_at(18) != Some(247) {
            continue;
        }
        let (Some(shoff), Some(shentsize), Some(shnum)) = (
            field(0x28, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap())),
            u16_at(0x3a),
            u16_at(0x3c),
        ) else {
            continue;
        };
        let end = i as u64 + shoff + u64::from(shentsize) * u64::from(shnum);
        if let Some(obj) = binary.get(i..end as usize) {
            out.push(obj.to_vec());
        }
    }
    out
}

/// The libbpf-tools binaries the package installed.
pub fn libbpf_tools() -> Option<Vec<PathBuf>> {
    let out = Command::new("dpkg")
        .args(["-L", "libbpf-tools"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("/usr/sbin/"))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    Some(files)
}

/// The corpus: one object per distinct content, named after the first tool
/// that carries it.
pub fn corpus(dir: &Path) -> Vec<(String, PathBuf)> {
    let Some(tools) = libbpf_tools() else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut objects = Vec::new();
    for tool in tools {
        let Ok(bytes) = std::fs::read(&tool) else {
            continue;
        };
        let name = tool.file_name().unwrap().to_string_lossy().into_owned();
        for (n, obj) in embedded_objects(&bytes).into_iter().enumerate() {
            if !seen.insert(obj.clone()) {
                continue;
            }
            let file = dir.join(format!(
                "{name}{}.bpf.o",
                if n == 0 { String::new() } else { n.to_string() }
            ));
            std::fs::write(&file, &obj).unwrap();
            objects.push((name.clone(), file));
        }
    }
    objects
}
