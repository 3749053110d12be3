//! Parses a BTF file (default `/sys/kernel/btf/vmlinux`) and reports the time
//! taken and the process's peak resident memory (`VmHWM`) against the file size.

use std::time::Instant;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/sys/kernel/btf/vmlinux".to_string());
    let before = vm_hwm_kib().unwrap_or(0);
    let bytes = std::fs::read(&path)?;
    let file_kib = bytes.len() as u64 / 1024;
    let start = Instant::now();
    let btf = bpfkit_btf::Btf::from_vec(bytes)?;
    let elapsed = start.elapsed();
    let after = vm_hwm_kib().unwrap_or(0);
    println!(
        "file:            {path} ({file_kib} KiB, {} types)",
        btf.len()
    );
    println!("parse:           {:.2} ms", elapsed.as_secs_f64() * 1e3);
    println!("VmHWM before:    {before} KiB");
    println!("VmHWM after:     {after} KiB");
    println!(
        "growth/file:     {:.2}x",
        after.saturating_sub(before) as f64 / file_kib.max(1) as f64
    );
    Ok(())
}
