//! Emitting BTF with the builder, sanitizing it for older kernels, and
//! fixing up data sections.

use std::collections::HashMap;

use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{
    fixup_datasecs, sanitize, Btf, BtfBuilder, BtfFeatures, Endian, IntEncoding, Kind, Linkage,
    MemberDef, TypeData, TypeDef, TypeId, VarSecInfo,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

#[test]
fn parsed_btf_re_emits_identically_in_both_byte_orders() {
    for path in ["core/local.btf", "core/target.btf", "dump/types.btf"] {
        let btf = Btf::parse(&fixture(path)).unwrap();
        let builder = BtfBuilder::from_btf(&btf).unwrap();
        for endian in [Endian::Little, Endian::Big] {
            let again = Btf::parse(&builder.encode(endian).unwrap()).unwrap();
            assert_eq!(again.endian(), endian);
            assert_eq!(dump_raw(&again), dump_raw(&btf), "{path} {endian:?}");
        }
    }
}

struct Ids {
    int: TypeId,
    float: TypeId,
    signed_enum: TypeId,
    small_enum64: TypeId,
    big_enum64: TypeId,
    proto: TypeId,
    func: TypeId,
    var_a: TypeId,
    var_b: TypeId,
    datasec: TypeId,
    decl_tag: TypeId,
    type_tag: TypeId,
    tagged_ptr: TypeId,
}

/// One type of every kind the sanitizer rewrites.
fn modern_btf() -> (BtfBuilder, Ids) {
    let mut b = BtfBuilder::new();
    let int = b.add(TypeDef::new(
        "int",
        TypeData::Int {
            size: 4,
            encoding: IntEncoding(IntEncoding::SIGNED),
            offset: 0,
            bits: 32,
        },
    ));
    let float = b.add(TypeDef::new("double", TypeData::Float { size: 8 }));
    let signed_enum = b.add(TypeDef::new(
        "sign",
        TypeData::Enum {
            is_64: false,
            signed: true,
            size: 4,
            values: vec![("NEG".into(), -1i64 as u64), ("POS".into(), 1)],
        },
    ));
    let small_enum64 = b.add(TypeDef::new(
        "small64",
        TypeData::Enum {
            is_64: true,
            signed: false,
            size: 8,
            values: vec![("S1".into(), 1), ("S2".into(), 0xffff_ffff)],
        },
    ));
    let big_enum64 = b.add(TypeDef::new(
        "big64",
        TypeData::Enum {
            is_64: true,
            signed: false,
            size: 8,
            values: vec![("B1".into(), 1), ("B2".into(), 1 << 40)],
        },
    ));
    let proto = b.add(TypeDef::new(
        "",
        TypeData::FuncProto {
            ret: int,
            params: vec![("x".into(), int)],
        },
    ));
    let func = b.add(TypeDef::new(
        "handler",
        TypeData::Func {
            proto,
            linkage: Linkage::Global,
        },
    ));
    let var_a = b.add(TypeDef::new(
        "counter",
        TypeData::Var {
            type_id: int,
            linkage: Linkage::Global,
        },
    ));
    let var_b = b.add(TypeDef::new(
        "ratio",
        TypeData::Var {
            type_id: float,
            linkage: Linkage::Static,
        },
    ));
    let datasec = b.add(TypeDef::new(
        ".data",
        TypeData::Datasec {
            size: 16,
            vars: vec![
                VarSecInfo {
                    type_id: var_a,
                    offset: 0,
                    size: 4,
                },
                VarSecInfo {
                    type_id: var_b,
                    offset: 8,
                    size: 8,
                },
            ],
        },
    ));
    let decl_tag = b.add(TypeDef::new(
        "kfunc",
        TypeData::DeclTag {
            type_id: func,
            component: -1,
            kflag: false,
        },
    ));
    let type_tag = b.add(TypeDef::new(
        "user",
        TypeData::TypeTag {
            type_id: int,
            kflag: false,
        },
    ));
    let tagged_ptr = b.add(TypeDef::new("", TypeData::Ptr(type_tag)));
    let ids = Ids {
        int,
        float,
        signed_enum,
        small_enum64,
        big_enum64,
        proto,
        func,
        var_a,
        var_b,
        datasec,
        decl_tag,
        type_tag,
        tagged_ptr,
    };
    (b, ids)
}

#[test]
fn every_modern_kind_round_trips() {
    let (b, ids) = modern_btf();
    let btf = Btf::parse(&b.encode(Endian::Little).unwrap()).unwrap();
    let big = btf.type_by_id(ids.big_enum64).unwrap();
    assert_eq!(big.kind(), Kind::Enum64);
    assert_eq!(
        big.enum_values().map(|v| v.value).collect::<Vec<_>>(),
        [1, 1 << 40]
    );
    let sign = btf.type_by_id(ids.signed_enum).unwrap();
    assert!(sign.is_signed_enum());
    assert_eq!(sign.enum_values().next().unwrap().value as i64, -1);
    assert_eq!(btf.type_by_id(ids.float).unwrap().size(), Some(8));
    assert_eq!(
        btf.type_by_id(ids.decl_tag).unwrap().decl_tag_component(),
        Some(-1)
    );
    assert_eq!(btf.type_by_id(ids.type_tag).unwrap().name(), "user");
    // Type tags are modifiers: the pointee resolves to int.
    let pointee = btf.type_by_id(ids.tagged_ptr).unwrap().type_ref().unwrap();
    assert_eq!(btf.skip_modifiers(pointee).unwrap().id(), ids.int);
    let sec = btf.type_by_id(ids.datasec).unwrap();
    assert_eq!(
        sec.datasec_vars().map(|v| v.type_id).collect::<Vec<_>>(),
        [ids.var_a, ids.var_b]
    );
    assert_eq!(
        btf.type_by_id(ids.func).unwrap().linkage(),
        Some(Linkage::Global)
    );
}

#[test]
fn all_features_leave_btf_unchanged() {
    let (mut b, _) = modern_btf();
    let before = b.encode(Endian::Little).unwrap();
    sanitize(&mut b, &BtfFeatures::ALL);
    assert_eq!(b.encode(Endian::Little).unwrap(), before);
}

#[test]
fn sanitizing_for_the_oldest_kernels() {
    let (mut b, ids) = modern_btf();
    let count = b.len();
    sanitize(&mut b, &BtfFeatures::NONE);
    let btf = Btf::parse(&b.encode(Endian::Little).unwrap()).expect("sanitized BTF is valid");
    let t = |id| btf.type_by_id(id).unwrap();
    // Ids are stable; one placeholder type is appended for the big enum64.
    assert_eq!(btf.len(), count + 1);
    let placeholder = t(count);
    assert_eq!(
        (placeholder.kind(), placeholder.name(), placeholder.size()),
        (Kind::Int, "enum64_placeholder", Some(1))
    );

    assert_eq!(
        (
            t(ids.var_a).kind(),
            t(ids.var_a).name(),
            t(ids.var_a).size()
        ),
        (Kind::Int, "counter", Some(1))
    );
    let sec = t(ids.datasec);
    assert_eq!(
        (sec.kind(), sec.name(), sec.size()),
        (Kind::Struct, "_data", Some(16))
    );
    let members: Vec<_> = sec
        .members()
        .map(|m| (m.name, m.type_id, m.bit_offset))
        .collect();
    assert_eq!(
        members,
        [("counter", ids.var_a, 0), ("ratio", ids.var_b, 64)]
    );

    let proto = t(ids.proto);
    assert_eq!((proto.kind(), proto.size()), (Kind::Enum, Some(4)));
    assert_eq!(
        proto
            .enum_values()
            .map(|v| (v.name, v.value))
            .collect::<Vec<_>>(),
        [("x", ids.int as u64)]
    );
    assert_eq!(
        (t(ids.func).kind(), t(ids.func).type_ref()),
        (Kind::Typedef, Some(ids.proto))
    );

    let float = t(ids.float);
    assert_eq!(
        (float.kind(), float.name(), float.size(), float.vlen()),
        (Kind::Struct, "", Some(8), 0)
    );
    assert_eq!(
        (t(ids.decl_tag).kind(), t(ids.decl_tag).name()),
        (Kind::Int, "")
    );
    assert_eq!(
        (t(ids.type_tag).kind(), t(ids.type_tag).type_ref()),
        (Kind::Const, Some(ids.int))
    );

    let small = t(ids.small_enum64);
    assert_eq!((small.kind(), small.size()), (Kind::Enum, Some(8)));
    assert_eq!(
        small.enum_values().map(|v| v.value).collect::<Vec<_>>(),
        [1, 0xffff_ffff]
    );
    let big = t(ids.big_enum64);
    assert_eq!((big.kind(), big.size()), (Kind::Union, Some(8)));
    assert!(big
        .members()
        .all(|m| m.type_id == count && m.bit_offset == 0));
    assert_eq!(
        big.members().map(|m| m.name).collect::<Vec<_>>(),
        ["B1", "B2"]
    );
    assert!(
        !t(ids.signed_enum).kflag(),
        "signed enums need the enum64 feature"
    );
}

#[test]
fn only_missing_features_are_rewritten() {
    let (mut b, ids) = modern_btf();
    let features = BtfFeatures {
        func_global: false,
        type_tag: false,
        ..BtfFeatures::ALL
    };
    sanitize(&mut b, &features);
    let btf = Btf::parse(&b.encode(Endian::Big).unwrap()).unwrap();
    let func = btf.type_by_id(ids.func).unwrap();
    assert_eq!(
        (func.kind(), func.linkage()),
        (Kind::Func, Some(Linkage::Static))
    );
    assert_eq!(btf.type_by_id(ids.type_tag).unwrap().kind(), Kind::Const);
    assert_eq!(btf.type_by_id(ids.datasec).unwrap().kind(), Kind::Datasec);
    assert_eq!(btf.type_by_id(ids.big_enum64).unwrap().kind(), Kind::Enum64);
    assert_eq!(
        btf.len(),
        b.len(),
        "no placeholder without an enum64 rewrite"
    );
}

#[test]
fn datasec_sizes_and_offsets_come_from_the_elf() {
    // clang leaves .bss at size 0 with every variable at offset 0.
    let btf = Btf::parse(&fixture("core/target.btf")).unwrap();
    let mut b = BtfBuilder::from_btf(&btf).unwrap();
    let sections = HashMap::from([(".bss".to_string(), 192)]);
    let symbols: HashMap<String, u32> = [
        ("g_task", 0),
        ("g_amb_x", 168),
        ("g_amb_y", 160),
        ("g_same_a", 176),
        ("g_same_b", 184),
        ("g_state", 152),
    ]
    .into_iter()
    .map(|(n, o)| (n.to_string(), o))
    .collect();
    fixup_datasecs(&mut b, &sections, &symbols).unwrap();
    let fixed = Btf::parse(&b.encode(Endian::Little).unwrap()).unwrap();
    let bss = fixed
        .type_by_id(fixed.find_by_name_kind(".bss", Kind::Datasec).unwrap())
        .unwrap();
    assert_eq!(bss.size(), Some(192));
    let vars: Vec<_> = bss
        .datasec_vars()
        .map(|v| {
            (
                fixed.type_by_id(v.type_id).unwrap().name(),
                v.offset,
                v.size,
            )
        })
        .collect();
    assert_eq!(
        vars,
        [
            ("g_task", 0, 152),
            ("g_state", 152, 4),
            ("g_amb_y", 160, 8),
            ("g_amb_x", 168, 8),
            ("g_same_a", 176, 4),
            ("g_same_b", 184, 8)
        ]
    );

    let mut b = BtfBuilder::from_btf(&btf).unwrap();
    let err = fixup_datasecs(&mut b, &HashMap::new(), &symbols).unwrap_err();
    assert!(err.to_string().contains("\".bss\""), "{err}");
    let mut b = BtfBuilder::from_btf(&btf).unwrap();
    let err = fixup_datasecs(&mut b, &sections, &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("g_task"), "{err}");
}

#[test]
fn emission_rejects_what_btf_cannot_encode() {
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
    let members = (0..70_000)
        .map(|i| MemberDef {
            name: format!("m{i}"),
            type_id: int,
            bit_offset: 0,
            bitfield_size: 0,
        })
        .collect();
    b.add(TypeDef::new(
        "wide",
        TypeData::Composite {
            is_union: true,
            size: 4,
            members,
        },
    ));
    let err = b.encode(Endian::Little).unwrap_err();
    assert!(
        err.to_string().contains("type [2] has 70000 entries"),
        "{err}"
    );
    let mut b = BtfBuilder::new();
    b.add(TypeDef::new("bad\0name", TypeData::Float { size: 4 }));
    assert!(b.encode(Endian::Little).is_err());
}

#[test]
fn enum64_and_float_dump_to_c_that_compiles() {
    let (b, _) = modern_btf();
    let btf = Btf::parse(&b.encode(Endian::Little).unwrap()).unwrap();
    let header = dump_c_header(&btf).unwrap();
    assert!(
        header.contains("enum big64 {\n\tB1 = 1ULL,\n\tB2 = 1099511627776ULL,\n};"),
        "{header}"
    );
    assert!(header.contains(
        "enum small64 {\n\tS1 = 1ULL,\n\tS2 = 4294967295ULL,\n} __attribute__((mode(word)));"
    ));
    assert!(header.contains("enum sign {\n\tNEG = -1,\n\tPOS = 1,\n};"));
    if std::process::Command::new("clang")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: clang not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("bpfkit-btf-emit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("use.c");
    std::fs::write(&src, format!("{header}\n_Static_assert(sizeof(enum big64) == 8, \"\");\n_Static_assert(sizeof(enum small64) == 8, \"\");\nenum sign s = NEG;\n")).unwrap();
    let out = std::process::Command::new("clang")
        .args(["-target", "bpf", "-c", "-o"])
        .arg(dir.join("use.o"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn linked_datasecs_keep_their_layout() {
    let (mut b, ids) = modern_btf();
    // `.data` has size 16 already: a linker placed its variables.
    fixup_datasecs(&mut b, &HashMap::new(), &HashMap::new()).unwrap();
    let btf = Btf::parse(&b.encode(Endian::Little).unwrap()).unwrap();
    let sec = btf.type_by_id(ids.datasec).unwrap();
    assert_eq!(sec.size(), Some(16));
    assert_eq!(
        sec.datasec_vars().map(|v| v.offset).collect::<Vec<_>>(),
        [0, 8]
    );
}
