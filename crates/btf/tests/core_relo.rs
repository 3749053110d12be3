//! CO-RE relocations of a clang-compiled program (fixtures/core/local.c)
//! against a "kernel" with moved, resized, flavored and missing fields
//! (fixtures/core/target.c). Every expected value below follows from the
//! two C layouts; the comments show the arithmetic.

use bpfkit_btf::core::{patch_insn, POISON_HELPER_ID};
use bpfkit_btf::{
    Btf, BtfExt, CoreError, CoreOutcome, CoreReloKind, CoreRelocator, Kind, TargetBtfs,
};
use bpfkit_isa::{ByteOrder, RawInsn};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/core");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

struct Fixture {
    local: Btf,
    target: Btf,
    ext: BtfExt,
}

fn fixture(be: bool) -> Fixture {
    let sfx = if be { ".be" } else { "" };
    Fixture {
        local: Btf::parse(&read(&format!("local{sfx}.btf"))).unwrap(),
        target: Btf::parse(&read("target.btf")).unwrap(),
        ext: BtfExt::parse(&read(&format!("local{sfx}.btf.ext"))).unwrap(),
    }
}

/// Relocates every record and returns (instruction index, kind, outcome).
fn relocate_all(f: &Fixture) -> Vec<(usize, CoreReloKind, Result<CoreOutcome, CoreError>)> {
    let relocator = CoreRelocator::new(&f.local, TargetBtfs::new(&f.target));
    let records = f.ext.core_relos_for(&f.local, "raw_tp/fixture").unwrap();
    records
        .iter()
        .map(|r| {
            (
                r.insn_off as usize / 8,
                r.kind,
                relocator.relocate_record(r),
            )
        })
        .collect()
}

fn outcome_at(
    all: &[(usize, CoreReloKind, Result<CoreOutcome, CoreError>)],
    insn: usize,
) -> (CoreReloKind, &Result<CoreOutcome, CoreError>) {
    let (_, kind, res) = all
        .iter()
        .find(|(i, _, _)| *i == insn)
        .unwrap_or_else(|| panic!("no relocation at insn {insn}"));
    (*kind, res)
}

fn values(
    all: &[(usize, CoreReloKind, Result<CoreOutcome, CoreError>)],
    insn: usize,
) -> (CoreReloKind, u64, u64) {
    let (kind, res) = outcome_at(all, insn);
    let o = res.as_ref().unwrap_or_else(|e| panic!("insn {insn}: {e}"));
    assert!(!o.poison, "insn {insn} unexpectedly poisoned");
    (kind, o.orig_val, o.new_val)
}

fn poisoned(
    all: &[(usize, CoreReloKind, Result<CoreOutcome, CoreError>)],
    insn: usize,
) -> CoreReloKind {
    let (kind, res) = outcome_at(all, insn);
    assert!(
        res.as_ref().unwrap().poison,
        "insn {insn} should be poisoned"
    );
    kind
}

#[test]
fn every_relocation_kind_against_moved_fields() {
    use CoreReloKind::*;
    let f = fixture(false);
    let all = relocate_all(&f);
    let target_task = f.target.find_by_name_kind("task", Kind::Struct).unwrap();
    let local_task = f.local.find_by_name_kind("task", Kind::Struct).unwrap();

    // task.pid: local offset 0; target after state(8) + inner(16) + tgid(4).
    assert_eq!(values(&all, 0), (FieldByteOffset, 0, 28));
    // in.a: local 8 + 0; target inner at 8, a at 12 inside it.
    assert_eq!(values(&all, 2), (FieldByteOffset, 8, 20));
    // arr[2]: local 24 + 2*8; target 40 + 2*8.
    assert_eq!(values(&all, 4), (FieldByteOffset, 40, 56));
    // char comm[16] grew to comm[32].
    assert_eq!(values(&all, 6), (FieldByteSize, 16, 32));
    // `missing` is not in the target: exists 1 -> 0, its offset poisons.
    assert_eq!(values(&all, 8), (FieldExists, 1, 0));
    assert_eq!(poisoned(&all, 10), FieldByteOffset);
    // Bitfield flags: local `unsigned :3` at bit 128, target `int :4` at bit 263.
    // Loads are 4-byte aligned words: 16 -> 32.
    assert_eq!(values(&all, 12), (FieldByteOffset, 16, 32));
    assert_eq!(values(&all, 14), (FieldByteSize, 4, 4));
    assert_eq!(values(&all, 16), (FieldSigned, 0, 1));
    // lshift = 64 - (bit_off + bits - byte_off*8): 64-3 = 61; 64-(263+4-256) = 53.
    assert_eq!(values(&all, 18), (FieldLShiftU64, 61, 53));
    // rshift = 64 - bits.
    assert_eq!(values(&all, 20), (FieldRShiftU64, 61, 60));
    // mode: local 5 bits at 131 (64-8 = 56, 59); target 7 bits at 256 (57, 57).
    assert_eq!(values(&all, 22), (FieldLShiftU64, 56, 57));
    assert_eq!(values(&all, 24), (FieldRShiftU64, 59, 57));
    // task___v2 is a flavor of task: its pid relocates like task's.
    assert_eq!(values(&all, 26), (FieldByteOffset, 0, 28));
    // Type ids: local stays local, target is the target's task.
    assert_eq!(
        values(&all, 28),
        (TypeIdLocal, local_task as u64, local_task as u64)
    );
    assert_eq!(
        values(&all, 31),
        (TypeIdTarget, local_task as u64, target_task as u64)
    );
    assert_eq!(values(&all, 34), (TypeExists, 1, 1));
    assert_eq!(values(&all, 36), (TypeSize, 80, 152));
    assert_eq!(values(&all, 38), (TypeExists, 1, 0));
    // enum state: ST_B 2 -> 20; ST_GONE disappears.
    assert_eq!(values(&all, 40), (EnumvalValue, 2, 20));
    assert_eq!(values(&all, 43), (EnumvalExists, 1, 0));
    assert_eq!(poisoned(&all, 46), EnumvalValue);
    // same___a and same___b both have v at 0: they agree.
    assert_eq!(values(&all, 49), (FieldByteOffset, 0, 0));
    // amb___x has x at 0, amb___y at 4: an error, not a guess.
    match outcome_at(&all, 51).1 {
        Err(CoreError::Ambiguous { .. }) => {}
        other => panic!("expected ambiguity, got {other:?}"),
    }
    // Plain loads: tgid 4 -> 24; start 72 -> 136 growing 4 -> 8 bytes.
    assert_eq!(values(&all, 53), (FieldByteOffset, 4, 24));
    let start = outcome_at(&all, 54).1.as_ref().unwrap();
    assert_eq!(
        (
            start.orig_val,
            start.new_val,
            start.orig_size,
            start.new_size
        ),
        (72, 136, 4, 8)
    );
    assert!(
        !start.fail_memsz_adjust,
        "unsigned integers may change load size"
    );
    // sgn: signed int grew to long: the load cannot be adjusted.
    let sgn = outcome_at(&all, 56).1.as_ref().unwrap();
    assert_eq!((sgn.orig_val, sgn.new_val), (76, 144));
    assert!(sgn.fail_memsz_adjust);
    assert_eq!(all.len(), 27, "every relocation is asserted above");
}

#[test]
fn big_endian_shifts_follow_the_byte_order() {
    use CoreReloKind::*;
    let f = fixture(true);
    let all = relocate_all(&f);
    // Big-endian lshift = (8 - byte_sz)*8 + (bit_off - byte_off*8); the
    // target here is little-endian BTF, computed with its own order.
    assert_eq!(values(&all, 18).0, FieldLShiftU64);
    assert_eq!(values(&all, 18).1, 32);
    assert_eq!(values(&all, 22).1, 32 + 3);
    // Byte-order independent values agree with the little-endian object.
    assert_eq!(values(&all, 0), (FieldByteOffset, 0, 28));
    assert_eq!(values(&all, 36), (TypeSize, 80, 152));
}

fn program() -> Vec<RawInsn> {
    bpfkit_isa::slots(&read("local.text"), ByteOrder::Little).unwrap()
}

#[test]
fn patching_rewrites_checks_and_poisons() {
    let f = fixture(false);
    let all = relocate_all(&f);
    let mut insns = program();
    let original = insns.clone();
    for (index, _, res) in &all {
        let Ok(outcome) = res else { continue };
        patch_insn(&mut insns, *index, outcome).unwrap_or_else(|e| panic!("insn {index}: {e}"));
    }
    // r2 = 0 became r2 = 28.
    assert_eq!(insns[0].imm, 28);
    // Bitfield byte size: clang wrote 8, libbpf's rule gives 4; bitfields are not validated.
    assert_eq!(original[14].imm, 8);
    assert_eq!(insns[14].imm, 4);
    // ld_imm64 type id: both halves written.
    let target_task = f.target.find_by_name_kind("task", Kind::Struct).unwrap();
    assert_eq!((insns[31].imm, insns[32].imm), (target_task as i32, 0));
    // Poisoned: a call to helper 0xbad2310; ld_imm64 loses both slots.
    for i in [10, 46, 47, 56] {
        assert_eq!(
            (insns[i].code, insns[i].imm),
            (0x85, POISON_HELPER_ID),
            "insn {i}"
        );
    }
    // The ambiguous relocation left its instruction untouched.
    assert_eq!(insns[51], original[51]);
    // Load size follows the field: u32 -> u64 at offset 136.
    assert_eq!(insns[54].code, 0x79);
    assert_eq!(insns[54].off, 136);
    assert_eq!(insns[53].off, 24);
    assert_eq!(insns[53].code, 0x61);
}

#[test]
fn patching_rejects_an_unexpected_original_value() {
    let f = fixture(false);
    let all = relocate_all(&f);
    let mut insns = program();
    insns[0].imm = 7;
    let (_, res) = outcome_at(&all, 0);
    let err = patch_insn(&mut insns, 0, res.as_ref().unwrap()).unwrap_err();
    assert!(matches!(err, CoreError::Patch { insn: 0, .. }), "{err}");
    assert_eq!(insns[0].imm, 7, "nothing written on error");
}

#[test]
fn type_matches_is_stricter_than_exists() {
    let f = fixture(false);
    let relocator = CoreRelocator::new(&f.local, TargetBtfs::new(&f.target));
    let task = f.local.find_by_name_kind("task", Kind::Struct).unwrap();
    let same = f.local.find_by_name_kind("same", Kind::Struct).unwrap();
    let state = f.local.find_by_name_kind("state", Kind::Enum).unwrap();
    // task's layout differs (e.g. `missing`), so it exists but does not match.
    let exists = relocator
        .relocate(task, "0", CoreReloKind::TypeExists)
        .unwrap();
    let matches = relocator
        .relocate(task, "0", CoreReloKind::TypeMatches)
        .unwrap();
    assert_eq!((exists.new_val, matches.new_val), (1, 0));
    // `struct same { int v; }` matches both same___a and same___b.
    let m = relocator
        .relocate(same, "0", CoreReloKind::TypeMatches)
        .unwrap();
    assert_eq!(m.new_val, 1);
    // enum state has ST_GONE, which the target lacks.
    let m = relocator
        .relocate(state, "0", CoreReloKind::TypeMatches)
        .unwrap();
    assert_eq!(m.new_val, 0);
}

#[test]
fn invalid_access_strings_are_errors() {
    let f = fixture(false);
    let relocator = CoreRelocator::new(&f.local, TargetBtfs::new(&f.target));
    let task = f.local.find_by_name_kind("task", Kind::Struct).unwrap();
    for access in ["", ":0", "0:99", "0:x", "0:6:9", "0:0:1"] {
        let r = relocator.relocate(task, access, CoreReloKind::FieldByteOffset);
        assert!(
            matches!(r, Err(CoreError::InvalidSpec { .. })),
            "{access:?}: {r:?}"
        );
    }
    let r = relocator.relocate(task, "1", CoreReloKind::TypeSize);
    assert!(matches!(r, Err(CoreError::InvalidSpec { .. })));
    // Array access with a bitfield kind is not meaningful.
    let r = relocator.relocate(task, "0:6:1", CoreReloKind::FieldLShiftU64);
    assert!(matches!(r, Err(CoreError::InvalidSpec { .. })), "{r:?}");
}

#[test]
fn essential_names_strip_one_flavor() {
    use bpfkit_btf::core::essential_name;
    assert_eq!(essential_name("task_struct___v2"), "task_struct");
    assert_eq!(essential_name("task_struct"), "task_struct");
    assert_eq!(essential_name("a___b___c"), "a___b");
    assert_eq!(essential_name("a____b"), "a____b");
    assert_eq!(essential_name("___x"), "___x");
    assert_eq!(essential_name("x___"), "x___");
}

/// libbpf 1.1 relocating the same object against the same target
/// (fixtures/core/local.libbpf.txt, made by libbpf_relo.c in regen.sh):
/// every value it patched, every instruction it poisoned, and the
/// ambiguity it stopped at must come out the same here.
#[test]
fn agrees_with_libbpf() {
    let f = fixture(false);
    let all = relocate_all(&f);
    let log = String::from_utf8(read("local.libbpf.txt")).unwrap();
    let mut checked = 0;
    for line in log.lines() {
        let insn = |marker: &str| -> usize {
            let rest = &line[line.find(marker).unwrap() + marker.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        if line.contains("patched insn") {
            let insn = insn("patched insn #");
            let (_, orig, new) = values(&all, insn);
            // libbpf logs the value found in the instruction, then the new one.
            let nums: Vec<u64> = line
                .rsplit(' ')
                .take(3)
                .filter_map(|w| w.parse().ok())
                .collect();
            assert_eq!(new, nums[0], "{line}");
            let validated = outcome_at(&all, insn).1.as_ref().unwrap().validate;
            if validated {
                assert_eq!(orig, nums[1], "{line}");
            }
        } else if line.contains("substituting insn") {
            let insn = insn("substituting insn #");
            // ld_imm64 poisoning covers the second slot too.
            let first = if all.iter().any(|(i, _, _)| *i == insn) {
                insn
            } else {
                insn - 1
            };
            poisoned(&all, first);
        } else if line.contains("ambiguity") {
            let relo: usize = insn("relo #");
            let records = f.ext.core_relos_for(&f.local, "raw_tp/fixture").unwrap();
            let at = records[relo].insn_off as usize / 8;
            assert!(
                matches!(outcome_at(&all, at).1, Err(CoreError::Ambiguous { .. })),
                "{line}"
            );
        } else {
            panic!("unexpected reference line {line:?}");
        }
        checked += 1;
    }
    assert_eq!(
        checked, 25,
        "every relocation libbpf reached, poisoned ld_imm64 twice"
    );
}
