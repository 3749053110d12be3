//! Record types from DWARF where BTF lacks them (`bpfkit_object::dwarf`).

use std::path::PathBuf;

use bpfkit_btf::Kind;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_record_type_only_dwarf_describes_becomes_btf_with_its_layout() {
    let elf = fixture("dwarf_event.bpf.o");
    let spec = bpfkit_object::ObjectSpec::parse(&elf).unwrap();
    let local = spec.btf.as_ref().unwrap();
    assert!(
        local.find_by_name_kind("event", Kind::Struct).is_none(),
        "the fixture's point: clang left `struct event` out of BTF"
    );
    let btf = bpfkit_object::dwarf::type_btf(&elf, "event")
        .unwrap()
        .expect("struct event in DWARF");
    let id = btf.find_by_name_kind("event", Kind::Struct).unwrap();
    let event = btf.type_by_id(id).unwrap();
    // The layout C gives it (offsetof, in bits), and sizeof.
    assert_eq!(btf.type_size(id).unwrap(), 56);
    let members: Vec<(String, u32)> = event
        .members()
        .map(|m| (m.name.to_string(), m.bit_offset))
        .collect();
    assert_eq!(
        members,
        [
            ("pid", 0),
            ("stamp", 64),
            ("pad", 128),
            ("flags", 256),
            ("comm", 288),
            ("data", 416)
        ]
        .map(|(n, o)| (n.to_string(), o))
    );
    let flags = btf.find_by_name_kind("flags", Kind::Struct).unwrap();
    let bits: Vec<(String, u32, u32)> = btf
        .type_by_id(flags)
        .unwrap()
        .members()
        .map(|m| (m.name.to_string(), m.bit_offset, m.bitfield_size))
        .collect();
    assert_eq!(
        bits,
        [("exited".to_string(), 0, 1), ("level".to_string(), 1, 3)]
    );
    assert!(bpfkit_object::dwarf::type_btf(&elf, "nosuch")
        .unwrap()
        .is_none());
}

#[test]
fn an_object_without_dwarf_has_no_dwarf_types() {
    // The other fixtures are stripped of DWARF.
    let elf = fixture("bootstrap.bpf.o");
    assert!(bpfkit_object::dwarf::type_btf(&elf, "event")
        .unwrap()
        .is_none());
    assert!(bpfkit_object::dwarf::type_btf(b"not an elf", "event").is_err());
}
