//! The cargo-fuzz targets of `fuzz/`, run for a bounded number of
//! iterations on the stable toolchain (see the shared driver,
//! `crates/isa/fuzz/stable_driver.rs`), seeded from the BTF fixtures and the
//! `.BTF` and `.BTF.ext` sections of every committed object.

#[path = "../../isa/fuzz/stable_driver.rs"]
mod stable_driver;

#[path = "../fuzz/checks/btf_ext_parse.rs"]
mod btf_ext_parse_check;
#[path = "../fuzz/checks/btf_parse.rs"]
mod btf_parse_check;
#[path = "../fuzz/checks/core_relo.rs"]
mod core_relo_check;
#[allow(clippy::duplicate_mod)] // The checks include it too.
#[path = "../../isa/fuzz/error_message.rs"]
mod error_message;

use bpfkit_btf::{Btf, BtfExt};
use stable_driver::{Shape, Target};

/// (`.BTF`, `.BTF.ext` if any) of every fixture object, then the committed
/// `.btf` / `.btf.ext` fixture files.
fn btf_blobs() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for (path, bytes) in stable_driver::fixture_objects() {
        let sections = stable_driver::elf_sections(&bytes)
            .unwrap_or_else(|| panic!("{}: not ELF64", path.display()));
        let find = |name: &str| {
            sections
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, d)| d.clone())
        };
        if let Some(btf) = find(".BTF") {
            out.push((btf, find(".BTF.ext")));
        }
    }
    let dir = stable_driver::repo_root().join("crates/btf/tests/fixtures");
    for path in stable_driver::files_under(&dir, ".btf") {
        let btf = std::fs::read(&path).unwrap();
        let ext = std::fs::read(path.with_extension("btf.ext")).ok();
        out.push((btf, ext));
    }
    assert!(out.len() > 10, "BTF fixtures missing");
    out
}

/// Tokens of the BTF wire format: the magic both ways, header length,
/// `info` words of each kind (kind in bits 24..29, kind_flag in bit 31).
fn btf_dictionary() -> Vec<Vec<u8>> {
    let mut d = vec![
        vec![0x9f, 0xeb, 1, 0],
        vec![0xeb, 0x9f, 1, 0],
        24u32.to_le_bytes().to_vec(),
        32u32.to_le_bytes().to_vec(),
    ];
    for kind in 0..=20u32 {
        d.push((kind << 24).to_le_bytes().to_vec());
        d.push(((kind << 24) | (1 << 31) | 1).to_le_bytes().to_vec());
        d.push((kind << 24).to_be_bytes().to_vec());
    }
    d
}

/// Makes a mutated `.BTF` header agree with the blob's length again (24-byte
/// header, types then strings), keeping the type section's length where it
/// fits, and NUL-delimits the string table: most mutations otherwise only
/// reach the header and string table checks.
fn fix_btf_header(blob: &mut [u8]) {
    let word = |b: &[u8], at: usize, big: bool| {
        let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let big = match blob.get(..2) {
        Some([0x9f, 0xeb]) => false,
        Some([0xeb, 0x9f]) => true,
        _ => return,
    };
    if blob.len() < 24 {
        return;
    }
    let body = (blob.len() - 24) as u32;
    let type_len = (word(blob, 12, big).min(body)) & !3;
    for (at, value) in [
        (4, 24),
        (8, 0),
        (12, type_len),
        (16, type_len),
        (20, body - type_len),
    ] {
        let bytes = if big {
            u32::to_be_bytes(value)
        } else {
            u32::to_le_bytes(value)
        };
        blob[at..at + 4].copy_from_slice(&bytes);
    }
    // The string table starts and ends with NUL.
    if body > type_len {
        blob[24 + type_len as usize] = 0;
        let last = blob.len() - 1;
        blob[last] = 0;
    }
}

#[test]
fn fuzz_btf_parse() {
    stable_driver::run(Target {
        name: "btf_parse",
        seeds: btf_blobs().into_iter().map(|(btf, _)| btf).collect(),
        dictionary: btf_dictionary(),
        default_iters: 30_000,
        max_len: 1 << 16,
        shape: Shape::Binary,
        granule: 1,
        fixup: Some(|blob| fix_btf_header(blob)),
        check: btf_parse_check::check,
    });
}

#[test]
fn fuzz_btf_ext_parse() {
    let seeds = btf_blobs()
        .into_iter()
        .filter_map(|(btf, ext)| Some(btf_ext_parse_check::join(&ext?, &btf)))
        .collect();
    stable_driver::run(Target {
        name: "btf_ext_parse",
        seeds,
        dictionary: btf_dictionary(),
        default_iters: 40_000,
        max_len: 1 << 16,
        shape: Shape::Binary,
        granule: 1,
        fixup: Some(|input| {
            if let Some((ext, _)) = btf_ext_parse_check::split(input) {
                let at = 4 + ext.len();
                fix_btf_header(&mut input[at..]);
            }
        }),
        check: btf_ext_parse_check::check,
    });
}

#[test]
fn fuzz_core_relo() {
    // Every relocation record the local fixture's compiler wrote.
    let dir = stable_driver::repo_root().join("crates/btf/tests/fixtures/core");
    let local = Btf::parse(&std::fs::read(dir.join("local.btf")).unwrap()).unwrap();
    let ext = BtfExt::parse(&std::fs::read(dir.join("local.btf.ext")).unwrap()).unwrap();
    let mut seeds = Vec::new();
    let mut dictionary = Vec::new();
    for section in &ext.core_relos {
        for relo in &section.records {
            let access = relo.access_str(&local).unwrap();
            let mut seed = (relo.type_id as u16).to_le_bytes().to_vec();
            seed.push(relo.kind as u8);
            seed.push((relo.insn_off / 8) as u8);
            seed.extend_from_slice(access.as_bytes());
            seeds.push(seed);
            dictionary.push(access.as_bytes().to_vec());
        }
    }
    assert!(seeds.len() > 10, "local.btf.ext has too few CO-RE records");
    dictionary.extend([":", "0", "1", "4294967295", "-1", "00", ":0:0:0"].map(|t| t.into()));
    stable_driver::run(Target {
        name: "core_relo",
        seeds,
        dictionary,
        default_iters: 200_000,
        max_len: 256,
        shape: Shape::Binary,
        granule: 1,
        fixup: None,
        check: core_relo_check::check,
    });
}

// Regressions: inputs the fuzzers found, kept as plain tests.

/// libFuzzer (`core_relo`, 65k executions) found an access string that
/// itself repeats `": "`-separated text; the error quotes it, which the
/// clean-message check took for the message repeating a clause. Quoted
/// input no longer counts.
#[test]
fn an_error_quoting_repetitive_input_is_clean() {
    let found = "02fddededede10c83a20dededededededededede01dedededede392f10c83a20\
                 30dedededede10c83a20dededededededededede01dedededede10c83a20dede\
                 dededededededede01dedededede10c83a20dededededededededede01dedede\
                 dede392f10c8dedede392f10c83a2030dedededede10c83a20dedededededede\
                 dedede01dedededede392fdede30392fdede30";
    let found: Vec<u8> = (0..found.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&found[i..i + 2], 16).unwrap())
        .collect();
    assert!(!core_relo_check::check(&found));
}

/// The clean-message check still catches a message that repeats a clause
/// (where its quoting is unambiguous) or its source.
#[test]
fn repeated_clauses_outside_quotes_are_caught() {
    #[derive(Debug)]
    struct Message(&'static str, Option<Box<Message>>);
    impl std::fmt::Display for Message {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Message {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|m| m as _)
        }
    }
    let clean = |m: &Message| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            error_message::assert_clean(m)
        }))
        .is_ok()
    };
    assert!(clean(&Message("section `x`: bad: worse", None)));
    assert!(clean(&Message("access \"a: a\" is bad", None)));
    assert!(clean(&Message("name `a: a` is bad", None)));
    assert!(clean(&Message("value `x`: 5: 5: y` is bad", None)));
    assert!(!clean(&Message("BTF: bad: bad", None)));
    assert!(!clean(&Message("access \"a\": bad: bad", None)));
    assert!(!clean(&Message("", None)));
    let wrapped = Message("ELF: no magic", Some(Box::new(Message("no magic", None))));
    assert!(!clean(&wrapped));
}
