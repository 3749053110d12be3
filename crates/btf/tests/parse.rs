//! Parsing, validation and queries on real BTF: the committed fixtures (both
//! byte orders), `.BTF.ext`, and the running kernel's vmlinux when present.

use bpfkit_btf::{Btf, BtfError, BtfExt, CoreReloKind, Endian, Kind, Linkage};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

#[test]
fn both_byte_orders_decode_to_the_same_types() {
    let le = Btf::parse(&fixture("core/local.btf")).unwrap();
    let be = Btf::parse(&fixture("core/local.be.btf")).unwrap();
    assert_eq!((le.endian(), be.endian()), (Endian::Little, Endian::Big));
    assert_eq!(le.len(), be.len());
    for (a, b) in le.types().zip(be.types()) {
        assert_eq!(
            (a.kind(), a.name(), a.vlen(), a.size_or_type()),
            (b.kind(), b.name(), b.vlen(), b.size_or_type())
        );
        assert!(a.members().eq(b.members()));
        assert!(a.enum_values().eq(b.enum_values()));
        assert!(a.params().eq(b.params()));
    }
}

#[test]
fn struct_members_sizes_and_alignment() {
    let btf = Btf::parse(&fixture("dump/types.btf")).unwrap();
    let id = btf.find_by_name_kind("bits", Kind::Struct).unwrap();
    let bits = btf.type_by_id(id).unwrap();
    let members: Vec<_> = bits
        .members()
        .map(|m| (m.name, m.bit_offset, m.bitfield_size))
        .collect();
    assert_eq!(
        members,
        [
            ("a", 0, 3),
            ("b", 3, 13),
            ("c", 32, 7),
            ("d", 64, 40),
            ("e", 104, 2)
        ]
    );
    assert_eq!(btf.type_size(id).unwrap(), 16);
    assert_eq!(btf.type_align(id).unwrap(), 8);

    let packed = btf.find_by_name_kind("packed", Kind::Struct).unwrap();
    assert_eq!(btf.type_size(packed).unwrap(), 7);
    assert_eq!(btf.type_align(packed).unwrap(), 1);

    let everything = btf
        .type_by_id(btf.find_by_name_kind("everything", Kind::Struct).unwrap())
        .unwrap();
    // `int matrix[2][3]`: arrays multiply through.
    let matrix = everything.member_by_name("matrix").unwrap();
    // After `int cv` (padded to 8), `int *cp` and `const char *strs[3]`.
    assert_eq!(matrix.bit_offset, (8 + 8 + 24) * 8);
    assert!(
        everything.member_by_name("lo").is_none(),
        "anonymous members are not searched"
    );
    assert_eq!(btf.type_size(matrix.type_id).unwrap(), 24);
    // `const volatile int cv` resolves to int through both qualifiers.
    let cv = everything.member(0).unwrap();
    assert_eq!(btf.skip_modifiers(cv.type_id).unwrap().name(), "int");
    // `handler_fn handler`: typedef of a pointer to a prototype.
    let handler = everything.members().find(|m| m.name == "handler").unwrap();
    let ptr = btf.resolve(handler.type_id).unwrap();
    assert_eq!(ptr.kind(), Kind::Ptr);
    let proto = btf.type_by_id(ptr.type_ref().unwrap()).unwrap();
    assert_eq!(proto.kind(), Kind::FuncProto);
    let params: Vec<_> = proto.params().map(|p| p.type_id == 0).collect();
    assert_eq!(
        params,
        [false, false, true],
        "trailing void parameter is `...`"
    );
    // Flexible array member has 0 elements and size 0.
    let flex = everything.members().last().unwrap();
    assert_eq!(
        btf.type_by_id(flex.type_id)
            .unwrap()
            .array()
            .unwrap()
            .nelems,
        0
    );
    assert_eq!(
        btf.type_size(everything.id()).unwrap(),
        everything.size().unwrap()
    );
}

#[test]
fn lookups_by_name_and_kind() {
    let btf = Btf::parse(&fixture("core/target.btf")).unwrap();
    let state = btf.find_by_name_kind("state", Kind::Enum).unwrap();
    let values: Vec<_> = btf
        .type_by_id(state)
        .unwrap()
        .enum_values()
        .map(|v| (v.name, v.value))
        .collect();
    assert_eq!(values, [("ST_B", 20), ("ST_A", 10)]);
    assert_eq!(btf.find_by_name_kind("state", Kind::Struct), None);
    assert_eq!(btf.find_by_name_kind("nothere", Kind::Struct), None);
    assert_eq!(btf.ids_by_name("int").len(), 1);
    let g_task = btf.find_by_name_kind("g_task", Kind::Var).unwrap();
    let var = btf.type_by_id(g_task).unwrap();
    assert_eq!(var.linkage(), Some(Linkage::Global));
    assert_eq!(btf.type_size(g_task).unwrap(), 152);
    let bss = btf
        .type_by_id(btf.find_by_name_kind(".bss", Kind::Datasec).unwrap())
        .unwrap();
    let sizes: Vec<_> = bss.datasec_vars().map(|v| v.size).collect();
    assert_eq!(sizes, [152, 8, 8, 4, 8, 4]);
    assert!(matches!(
        btf.type_by_id(btf.len()),
        Err(BtfError::NoSuchType { .. })
    ));
}

#[test]
fn btf_ext_records_resolve_against_btf() {
    let btf = Btf::parse(&fixture("core/local.btf")).unwrap();
    let ext = BtfExt::parse(&fixture("core/local.btf.ext")).unwrap();
    let funcs = ext.func_info_for(&btf, "raw_tp/fixture").unwrap();
    assert_eq!(funcs.len(), 1);
    let func = btf.type_by_id(funcs[0].type_id).unwrap();
    assert_eq!(
        (func.kind(), func.name(), funcs[0].insn_off),
        (Kind::Func, "prog", 0)
    );

    let source = std::fs::read_to_string(format!("{FIXTURES}/core/local.c")).unwrap();
    let lines = ext.line_info_for(&btf, "raw_tp/fixture").unwrap();
    let first = &lines[0];
    assert!(first.file_name(&btf).unwrap().ends_with("local.c"));
    let text = first.line_text(&btf).unwrap();
    let line_no = source.lines().position(|l| l == text).unwrap() as u32 + 1;
    assert_eq!(first.line, line_no);
    for l in lines {
        let text = l.line_text(&btf).unwrap();
        assert_eq!(
            source.lines().nth(l.line as usize - 1),
            Some(text),
            "line {}",
            l.line
        );
        assert!(
            l.col as usize <= text.len() + 1,
            "column {} beyond line {}",
            l.col,
            l.line
        );
    }

    let relos = ext.core_relos_for(&btf, "raw_tp/fixture").unwrap();
    assert_eq!(relos.len(), 27);
    assert_eq!(relos[0].access_str(&btf).unwrap(), "0:0");
    assert_eq!(relos[0].kind, CoreReloKind::FieldByteOffset);
    assert_eq!(ext.core_relo_rec_size, 16);

    let be = BtfExt::parse(&fixture("core/local.be.btf.ext")).unwrap();
    assert_eq!(be.endian, Endian::Big);
    assert_eq!(be.core_relos[0].records.len(), 27);
    assert_eq!(be.line_info[0].records, ext.line_info[0].records);
}

/// Writes `value` into the little-endian u32 at `at`.
fn poke(blob: &mut [u8], at: usize, value: u32) {
    blob[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn malformed_btf_is_an_error_naming_type_and_reason() {
    let good = fixture("core/target.btf");
    // Type [1] (struct task) starts right after the 24-byte header.
    type Corruption = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Corruption, &str)> = vec![
        ("bad magic", Box::new(|b| b[0] = 0), "bad magic"),
        (
            "truncated header",
            Box::new(|b| b.truncate(10)),
            "truncated",
        ),
        ("version", Box::new(|b| b[2] = 2), "version 2"),
        (
            "type section overflow",
            Box::new(|b| poke(b, 12, 1 << 30)),
            "exceeds",
        ),
        (
            "unknown kind",
            Box::new(|b| b[24 + 7] = 30),
            "unknown kind 30",
        ),
        (
            "member type",
            Box::new(|b| poke(b, 24 + 12 + 4, 999)),
            "refers to type [999]",
        ),
        (
            "name offset",
            Box::new(|b| poke(b, 24, 1 << 20)),
            "outside the string table",
        ),
        (
            "member past end",
            Box::new(|b| poke(b, 24 + 8, 4)),
            "lies outside",
        ),
        (
            "string table end",
            Box::new(|b| {
                let n = b.len();
                b[n - 1] = b'x';
            }),
            "does not end with NUL",
        ),
    ];
    for (what, corrupt, reason) in cases {
        let mut blob = good.clone();
        corrupt(&mut blob);
        let err = Btf::parse(&blob).expect_err(what).to_string();
        assert!(err.contains(reason), "{what}: {err}");
    }
    let mut blob = good.clone();
    poke(&mut blob, 24 + 12 + 4, 999);
    match Btf::parse(&blob) {
        Err(BtfError::InvalidType {
            id: 1, offset: 24, ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

fn vmlinux() -> Option<Btf> {
    match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(bytes) => Some(Btf::from_vec(bytes).expect("vmlinux BTF parses")),
        Err(e) => {
            eprintln!("SKIP: /sys/kernel/btf/vmlinux: {e}");
            None
        }
    }
}

#[test]
fn vmlinux_queries() {
    let Some(btf) = vmlinux() else { return };
    assert!(btf.len() > 10_000);
    let task = btf.find_by_name_kind("task_struct", Kind::Struct).unwrap();
    let t = btf.type_by_id(task).unwrap();
    assert_eq!(btf.type_size(task).unwrap(), t.size().unwrap());
    assert!(t.members().any(|m| m.name == "pid"));
    // `struct list_head` is two pointers on every architecture BPF runs on.
    let list = btf.find_by_name_kind("list_head", Kind::Struct).unwrap();
    assert_eq!(
        (btf.type_size(list).unwrap(), btf.type_align(list).unwrap()),
        (16, 8)
    );
    let u64_id = btf.find_by_name_kind("u64", Kind::Typedef).unwrap();
    let int = btf.resolve(u64_id).unwrap().int().unwrap();
    assert_eq!((int.size, int.encoding.is_signed()), (8, false));
    // Every struct's and union's size resolves to its recorded size.
    for t in btf.all_types().filter(|t| t.kind().is_composite()) {
        assert_eq!(btf.type_size(t.id()).unwrap(), t.size().unwrap());
    }
    // Functions have no size: an error value.
    let func = btf.find_by_name_kind("schedule", Kind::Func).unwrap();
    assert!(matches!(
        btf.type_size(func),
        Err(BtfError::UnexpectedKind { .. })
    ));
    let kinds: std::collections::BTreeSet<_> = btf.types().map(|t| t.kind()).collect();
    for k in [
        Kind::Int,
        Kind::Struct,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
    ] {
        assert!(kinds.contains(&k), "{k} missing from vmlinux");
    }
}
