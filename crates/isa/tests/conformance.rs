//! The bpf_conformance suite's `-- asm` programs, read from /work/shared.

use std::fs;
use std::path::{Path, PathBuf};

use bpfkit_isa::{assemble, decode, disassemble, encode, ByteOrder, Insn, Syntax};

fn suite_dir() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/bpf_conformance");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: {} not found", dir.display());
        None
    }
}

/// The body of the `-- name` section of a bpf_conformance `.data` file.
fn section(text: &str, name: &str) -> Option<String> {
    let header = format!("-- {name}");
    let mut lines = text.lines();
    lines.by_ref().find(|l| l.trim_end() == header)?;
    Some(
        lines
            .take_while(|l| !l.starts_with("-- "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    files
}

/// `-- raw` sections list one little-endian 64-bit slot per line as hex.
fn raw_bytes(raw: &str) -> Vec<u8> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .flat_map(|l| {
            let v = u64::from_str_radix(l.trim_start_matches("0x"), 16).unwrap();
            v.to_le_bytes()
        })
        .collect()
}

fn round_trips(insns: &[Insn], what: &str) {
    for syntax in [Syntax::Ubpf, Syntax::Llvm] {
        let text = disassemble(insns, syntax);
        let back = assemble(&text, syntax).unwrap_or_else(|e| {
            panic!("{what}: {syntax:?} disassembly does not assemble: {e}\n{text}")
        });
        assert_eq!(back, insns, "{what}: {syntax:?} round trip\n{text}");
    }
}

#[test]
fn every_conformance_program_assembles() {
    let Some(dir) = suite_dir() else { return };
    let files = data_files(&dir.join("tests"));
    assert!(files.len() >= 313, "found only {} programs", files.len());
    let mut with_raw = 0;
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let asm = section(&text, "asm").unwrap_or_else(|| panic!("{name}: no -- asm"));
        let insns = assemble(&asm, Syntax::Ubpf).unwrap_or_else(|e| panic!("{name}:{e}"));
        assert!(!insns.is_empty(), "{name}: empty program");
        let bytes = encode(&insns, ByteOrder::Little);
        assert_eq!(decode(&bytes, ByteOrder::Little).unwrap(), insns, "{name}");
        if let Some(raw) = section(&text, "raw") {
            assert_eq!(
                bytes,
                raw_bytes(&raw),
                "{name}: assembled bytes differ from -- raw"
            );
            with_raw += 1;
        }
        round_trips(&insns, &name);
    }
    assert!(with_raw >= 1);
}

/// Assembler-level failures in negative/: bad mnemonics, registers, operand
/// counts, out-of-range literals, undefined labels, malformed `lock`.
#[test]
fn negative_programs_that_are_assembler_errors_are_rejected() {
    let Some(dir) = suite_dir() else { return };
    let neg = dir.join("negative");
    let expected_errors = [
        ("invalid_imm32_dec_range.data", 5),
        ("invalid_imm32_hex_range.data", 5),
        ("invalid_label.data", 4),
        ("invalid_lock.data", 4),
        ("invalid_lock2.data", 4),
        ("invalid_mnemonic.data", 5),
        ("invalid_offset.data", 4),
        ("invalid_offset_range.data", 5),
        ("invalid_operand_count.data", 4),
        ("invalid_register.data", 4),
    ];
    for (file, line) in expected_errors {
        let text = fs::read_to_string(neg.join(file)).unwrap();
        let asm = section(&text, "asm").unwrap();
        let err = assemble(&asm, Syntax::Ubpf).expect_err(file);
        // Sections start after the `-- asm` header, on line 4 of the file.
        assert_eq!(err.line + 3, line, "{file}: {err}");
    }
    // Negative files whose program is valid text (they fail later, at
    // verification or execution) must still assemble.
    for file in ["error.data", "incorrect_return_value_high_bits.data"] {
        let text = fs::read_to_string(neg.join(file)).unwrap();
        assemble(&section(&text, "asm").unwrap(), Syntax::Ubpf).expect(file);
    }
}

/// The `unused-*` negative files are raw bytecode with a non-zero reserved
/// field: the strict decoder must reject every one of them.
#[test]
fn negative_raw_programs_do_not_decode() {
    let Some(dir) = suite_dir() else { return };
    let mut count = 0;
    for path in data_files(&dir.join("negative")) {
        let text = fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("unused-") {
            continue;
        }
        let raw = section(&text, "raw").unwrap_or_else(|| panic!("{name}: no -- raw"));
        let bytes: Vec<u8> = raw
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        let err = decode(&bytes, ByteOrder::Little).expect_err(&name);
        assert_eq!(err.index, 0, "{name}: {err}");
        count += 1;
    }
    assert!(count >= 40, "only {count} unused-* files");
}
