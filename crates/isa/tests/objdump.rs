//! Clang-compiled objects against the committed `llvm-objdump -d` output
//! (see tests/fixtures/regen.sh): our LLVM-syntax disassembly must print
//! what objdump prints, and our assembler must read what objdump prints back
//! into the very instruction in the object.
//!
//! Lines are compared instruction by instruction with white space collapsed
//! and objdump's address, raw-byte and `<label>` columns removed. Documented
//! differences, mapped before comparing:
//! - objdump prints bpf-to-bpf calls as `call N`, like helper calls; we print
//!   bpftool's `call pc+N` so that the text assembles back to the same call.
//! - LLVM 14 prints `<unknown>` for 32-bit fetch/xchg/cmpxchg atomics unless
//!   run with `--mattr=+alu32`; for those the alu32 listing is the reference.
//! - LLVM 19 (used for the cpu v4 fixture) prints numbers in hex where LLVM 14
//!   and we print decimal; its hex literals are converted before comparing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bpfkit_isa::{assemble, decode, ByteOrder, CallTarget, Insn, Syntax};
use object::{Object, ObjectSection, SectionFlags};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Instruction texts per section name, in order, from an objdump listing.
fn objdump_listing(file: &str) -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(fixtures().join(file)).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Disassembly of section ") {
            section = name.trim_end_matches(':').to_string();
            out.entry(section.clone()).or_default();
            continue;
        }
        // `      12:\t18 01 ...\tr1 = 0 ll`: the instruction is the last column.
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || !cols[0].trim_end().ends_with(':') {
            continue;
        }
        out.get_mut(&section)
            .expect("instruction before any section header")
            .push(normalize(cols[cols.len() - 1]));
    }
    out
}

fn normalize(s: &str) -> String {
    // Drop a trailing jump-target annotation such as ` <LBB0_2>` (but not
    // the `<` of `w7 <<= 2` or `if w3 < w5`).
    let s = s.trim_end();
    let s = match s.rfind(" <") {
        Some(i) if s.ends_with('>') && !s[i + 2..].contains(' ') => &s[..i],
        _ => s,
    };
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rewrites LLVM 19's hex literals (`0x3e8`, `-0x8`) in decimal.
fn hex_to_decimal(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let digits = rest[i + 2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .map_or(rest.len() - i - 2, |n| n);
        let value = u64::from_str_radix(&rest[i + 2..i + 2 + digits], 16).unwrap();
        out.push_str(&value.to_string());
        rest = &rest[i + 2 + digits..];
    }
    out.push_str(rest);
    out
}

/// The decoded instructions of every executable section of an object.
fn program_sections(object_file: &str) -> Vec<(String, Vec<Insn>)> {
    let data = fs::read(fixtures().join(object_file)).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut out = Vec::new();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        if sh_flags & u64::from(object::elf::SHF_EXECINSTR) == 0 || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap().to_string();
        let insns = decode(section.data().unwrap(), ByteOrder::Little)
            .unwrap_or_else(|e| panic!("{object_file} {name}: {e}"));
        out.push((name, insns));
    }
    assert!(!out.is_empty(), "{object_file}: no executable sections");
    out
}

/// Compares one object with its listing; `fallback` is consulted where the
/// listing says `<unknown>`, `numbers` rewrites the listing's literals.
fn check(name: &str, listing: &str, fallback: Option<&str>, numbers: fn(&str) -> String) {
    let expected = objdump_listing(listing);
    let fallback = fallback.map(objdump_listing);
    for (sname, insns) in program_sections(&format!("{name}.bpf.o")) {
        let want = &expected[&sname];
        assert_eq!(insns.len(), want.len(), "{name} {sname}: instruction count");
        for (i, insn) in insns.iter().enumerate() {
            let mut reference = want[i].clone();
            if reference == "<unknown>" {
                reference = fallback.as_ref().expect("an alu32 listing")[&sname][i].clone();
            }
            let what = format!("{name} {sname} instruction {i}: `{reference}`");

            // objdump's text assembles to the instruction in the object,
            // except for local calls, which objdump prints like helper calls.
            let from_objdump = assemble(&reference, Syntax::Llvm)
                .unwrap_or_else(|e| panic!("{what} does not assemble: {e}"));
            if let Insn::Call(CallTarget::Local(rel)) = insn {
                assert_eq!(
                    from_objdump,
                    [Insn::Call(CallTarget::Helper(*rel))],
                    "{what}"
                );
            } else {
                assert_eq!(from_objdump, [*insn], "{what}");
            }

            let mut reference = numbers(&reference);
            if let Insn::Call(CallTarget::Local(rel)) = insn {
                assert_eq!(reference, format!("call {rel}"), "{what}");
                reference = format!("call pc{rel:+}");
            }
            let ours = normalize(&insn.display(Syntax::Llvm).to_string());
            assert_eq!(ours, reference, "{what}");
        }
    }
}

fn check_llvm14(name: &str) {
    check(
        name,
        &format!("{name}.objdump"),
        Some(&format!("{name}.alu32.objdump")),
        str::to_string,
    );
}

#[test]
fn alu_matches_objdump() {
    check_llvm14("alu");
}

#[test]
fn calls_matches_objdump() {
    check_llvm14("calls");
}

#[test]
fn maps_matches_objdump() {
    check_llvm14("maps");
}

#[test]
fn atomics_matches_objdump() {
    check_llvm14("atomics");
}

#[test]
fn legacy_matches_objdump() {
    check_llvm14("legacy");
}

#[test]
fn cpu_v4_matches_llvm19_objdump() {
    check("v4", "v4.objdump19", None, hex_to_decimal);
}
