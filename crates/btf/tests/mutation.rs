//! Mutated real BTF and BTF.ext never make the parsers or the queries
//! built on them panic: every outcome is a value.

use bpfkit_btf::core::{patch_insn, CoreRelocator, TargetBtfs};
use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{Btf, BtfExt};
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

/// Exercises every query on a BTF that parsed.
fn exercise(btf: &Btf) {
    for t in btf.types() {
        let _ = btf.type_size(t.id());
        let _ = btf.type_align(t.id());
        let _ = btf.resolve(t.id());
        let _ = (
            t.name(),
            t.members().count(),
            t.enum_values().count(),
            t.params().count(),
        );
        let _ = t.datasec_vars().count();
        let _ = btf.find_by_name_kind(t.name(), t.kind());
    }
    let _ = dump_raw(btf);
    let _ = dump_c_header(btf);
}

#[derive(Debug, Clone)]
enum Mutation {
    Set { at: usize, byte: u8 },
    Word { at: usize, value: u32 },
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        // Small values hit ids, counts and offsets that are nearly valid.
        (any::<usize>(), prop_oneof![0u32..64, any::<u32>()])
            .prop_map(|(at, value)| Mutation::Word { at, value }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if bytes.is_empty() {
            return;
        }
        match *m {
            Mutation::Set { at, byte } => {
                let n = bytes.len();
                bytes[at % n] = byte;
            }
            Mutation::Word { at, value } => {
                let at = (at % bytes.len()) & !3;
                let end = (at + 4).min(bytes.len());
                bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            }
            Mutation::Truncate { len } => bytes.truncate(len % (bytes.len() + 1)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_btf_never_panics(file in prop::sample::select(vec!["core/local.btf", "core/target.btf", "dump/types.btf", "core/local.be.btf"]),
                                mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = fixture(file);
        apply(&mut bytes, &mutations);
        if let Ok(btf) = Btf::parse(&bytes) {
            exercise(&btf);
        }
    }

    #[test]
    fn mutated_btf_ext_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let local = Btf::parse(&fixture("core/local.btf")).unwrap();
        let target = Btf::parse(&fixture("core/target.btf")).unwrap();
        let text = bpfkit_isa::slots(&fixture("core/local.text"), bpfkit_isa::ByteOrder::Little).unwrap();
        let mut bytes = fixture("core/local.btf.ext");
        apply(&mut bytes, &mutations);
        if let Ok(ext) = BtfExt::parse(&bytes) {
            let relocator = CoreRelocator::new(&local, TargetBtfs::new(&target));
            for section in &ext.core_relos {
                for relo in &section.records {
                    if let Ok(outcome) = relocator.relocate_record(relo) {
                        let mut insns = text.clone();
                        let _ = patch_insn(&mut insns, relo.insn_off as usize / 8, &outcome);
                    }
                }
            }
            for section in &ext.line_info {
                for line in &section.records {
                    let _ = (line.file_name(&local), line.line_text(&local));
                }
            }
        }
    }

    #[test]
    fn mutated_local_btf_relocates_without_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut bytes = fixture("core/local.btf");
        apply(&mut bytes, &mutations);
        let Ok(local) = Btf::parse(&bytes) else { return Ok(()) };
        let target = Btf::parse(&fixture("core/target.btf")).unwrap();
        let ext = BtfExt::parse(&fixture("core/local.btf.ext")).unwrap();
        let relocator = CoreRelocator::new(&local, TargetBtfs::new(&target));
        for relo in &ext.core_relos[0].records {
            let _ = relocator.relocate_record(relo);
        }
    }
}
