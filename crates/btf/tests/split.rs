//! Split BTF (kernel module BTF): ids and string offsets continue from a
//! base, and CO-RE falls back to modules only when vmlinux has no candidate.

use std::sync::Arc;

use bpfkit_btf::dump::dump_raw;
use bpfkit_btf::{
    Btf, BtfBuilder, CoreReloKind, CoreRelocator, Endian, IntEncoding, Kind, MemberDef, TargetBtfs,
    TypeData, TypeDef,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn base() -> Arc<Btf> {
    Arc::new(Btf::parse(&std::fs::read(format!("{FIXTURES}/core/target.btf")).unwrap()).unwrap())
}

/// Module BTF on top of `base`: `struct modonly { long pad; int m; }` and a
/// typedef `task_t` of the base's `struct task`, whose name reuses the base's
/// string "task" — as pahole writes module BTF.
fn module_blob(base: &Btf) -> Vec<u8> {
    let base_strings = {
        let raw = base.raw_bytes();
        u32::from_le_bytes(raw[20..24].try_into().unwrap())
    };
    let long = base.find_by_name_kind("long", Kind::Int).unwrap();
    let int = base.find_by_name_kind("int", Kind::Int).unwrap();
    let task = base.find_by_name_kind("task", Kind::Struct).unwrap();
    let strings = b"modonly\0pad\0m\0task_t\0";
    let s = |local: u32| base_strings + local;
    let mut types: Vec<u32> = vec![
        // [n] STRUCT 'modonly' size=16 vlen=2
        s(0),
        (4 << 24) | 2,
        16,
        s(8),
        long,
        0,
        s(12),
        int,
        64,
        // [n+1] TYPEDEF 'task_t' -> base task
        s(14),
        8 << 24,
        task,
    ];
    let body: Vec<u8> = types.drain(..).flat_map(u32::to_le_bytes).collect();
    let mut blob = vec![0x9f, 0xeb, 1, 0];
    for w in [
        24u32,
        0,
        body.len() as u32,
        body.len() as u32,
        strings.len() as u32,
    ] {
        blob.extend_from_slice(&w.to_le_bytes());
    }
    blob.extend_from_slice(&body);
    blob.extend_from_slice(strings);
    blob
}

#[test]
fn split_btf_continues_ids_and_strings() {
    let base = base();
    let module = Btf::parse_split(&module_blob(&base), base.clone()).unwrap();
    assert_eq!(module.first_id(), base.len());
    assert_eq!(module.len(), base.len() + 2);
    let modonly = module.find_by_name_kind("modonly", Kind::Struct).unwrap();
    assert_eq!(modonly, base.len());
    let t = module.type_by_id(modonly).unwrap();
    assert_eq!(
        t.members().map(|m| m.name).collect::<Vec<_>>(),
        ["pad", "m"]
    );
    assert_eq!(module.type_size(modonly).unwrap(), 16);
    // Base types are reachable through the split BTF.
    let task_t = module.find_by_name_kind("task_t", Kind::Typedef).unwrap();
    assert_eq!(module.resolve(task_t).unwrap().name(), "task");
    assert_eq!(module.type_size(task_t).unwrap(), 152);
    assert_eq!(
        module.find_by_name_kind("task", Kind::Struct),
        base.find_by_name_kind("task", Kind::Struct)
    );
    // The raw listing covers only the module's own types, numbered after the base.
    let listing = dump_raw(&module);
    assert!(
        listing.starts_with(&format!(
            "[{}] STRUCT 'modonly' size=16 vlen=2\n",
            base.len()
        )),
        "{listing}"
    );
    // A reference past the end of the combined id space is invalid.
    let mut blob = module_blob(&base);
    blob[24 + 12 + 4..24 + 12 + 8].copy_from_slice(&(base.len() + 5).to_le_bytes());
    assert!(Btf::parse_split(&blob, base.clone()).is_err());
}

#[test]
fn core_falls_back_to_module_btf() {
    let base = base();
    let module = Btf::parse_split(&module_blob(&base), base.clone()).unwrap();
    let mut b = BtfBuilder::new();
    let int = b.add(TypeDef::new(
        "int",
        TypeData::Int {
            size: 4,
            encoding: IntEncoding(1),
            offset: 0,
            bits: 32,
        },
    ));
    let members = vec![MemberDef {
        name: "m".into(),
        type_id: int,
        bit_offset: 0,
        bitfield_size: 0,
    }];
    let local_mod = b.add(TypeDef::new(
        "modonly",
        TypeData::Composite {
            is_union: false,
            size: 4,
            members,
        },
    ));
    let members = vec![MemberDef {
        name: "pid".into(),
        type_id: int,
        bit_offset: 0,
        bitfield_size: 0,
    }];
    let local_task = b.add(TypeDef::new(
        "task",
        TypeData::Composite {
            is_union: false,
            size: 4,
            members,
        },
    ));
    let local = Btf::parse(&b.encode(Endian::Little).unwrap()).unwrap();

    let targets = TargetBtfs::new(&base).with_module(&module);
    let relocator = CoreRelocator::new(&local, targets);
    let m = relocator
        .relocate(local_mod, "0:0", CoreReloKind::FieldByteOffset)
        .unwrap();
    assert_eq!((m.orig_val, m.new_val), (0, 8));
    assert_eq!(
        m.target,
        Some((
            1,
            module.find_by_name_kind("modonly", Kind::Struct).unwrap()
        ))
    );
    // vmlinux has `task`: modules are not consulted.
    let t = relocator
        .relocate(local_task, "0:0", CoreReloKind::FieldByteOffset)
        .unwrap();
    assert_eq!((t.new_val, t.target.map(|(btf, _)| btf)), (28, Some(0)));
    // Without the module, the field is unresolvable: poison.
    let alone = CoreRelocator::new(&local, TargetBtfs::new(&base));
    assert!(
        alone
            .relocate(local_mod, "0:0", CoreReloKind::FieldByteOffset)
            .unwrap()
            .poison
    );
}
