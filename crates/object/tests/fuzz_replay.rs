//! The cargo-fuzz targets of `fuzz/`, run for a bounded number of
//! iterations on the stable toolchain (see the shared driver,
//! `crates/isa/fuzz/stable_driver.rs`), seeded from every committed BPF
//! object, for the section name parser from their section names, and for
//! the `.config` parser from configs naming the globals fixture's kconfig
//! externs.

#[path = "../../isa/fuzz/stable_driver.rs"]
mod stable_driver;

#[path = "../fuzz/checks/kconfig.rs"]
mod kconfig_check;
#[path = "../fuzz/checks/parse_elf.rs"]
mod parse_elf_check;
#[path = "../fuzz/checks/section_name.rs"]
mod section_name_check;

use stable_driver::{Shape, Target};

#[test]
fn fuzz_parse_elf() {
    let seeds = stable_driver::fixture_objects()
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    stable_driver::run(Target {
        name: "parse_elf",
        seeds,
        dictionary: vec![
            b"\x7fELF\x02\x01\x01\x00".to_vec(),
            247u16.to_le_bytes().to_vec(), // EM_BPF
            b".BTF\0".to_vec(),
            b".BTF.ext\0".to_vec(),
            b".maps\0".to_vec(),
            b".kconfig\0".to_vec(),
            b"license\0".to_vec(),
            b"xdp\0".to_vec(),
            b"kprobe/\0".to_vec(),
            b".rodata\0".to_vec(),
        ],
        default_iters: 100_000,
        max_len: 1 << 17,
        shape: Shape::Binary,
        granule: 1,
        fixup: None,
        check: parse_elf_check::check,
    });
}

#[test]
fn fuzz_kconfig() {
    let seeds: Vec<Vec<u8>> = [
        "6.18.44-fc\n# comment\nCONFIG_BPF=y\nCONFIG_HZ=250\n# CONFIG_KPROBES is not set\n\
         CONFIG_LOCALVERSION=\"-x\"\n",
        "6.1.0\nCONFIG_BPF_SYSCALL=y\nCONFIG_HZ=1000\n",
        "5.15.0-generic\n# CONFIG_BPF_SYSCALL is not set\nCONFIG_HZ=0x64\n",
        "4.19.255\nCONFIG_BPF_SYSCALL=m\nCONFIG_HZ=y\n",
        "\nCONFIG_BPF_SYSCALL=n\n  CONFIG_HZ = 300  \n",
    ]
    .map(|s| s.as_bytes().to_vec())
    .into();
    let dictionary = [
        "CONFIG_HZ",
        "CONFIG_BPF_SYSCALL",
        "LINUX_KERNEL_VERSION",
        "CONFIG_",
        "=y",
        "=m",
        "=n",
        "=",
        "# ",
        " is not set",
        "\"",
        "0x",
        "-",
        "\n",
        "\r\n",
        "4294967295",
        "18446744073709551616",
        "99999999999999999999999999999999999999999",
    ];
    stable_driver::run(Target {
        name: "kconfig",
        seeds,
        dictionary: dictionary.iter().map(|t| t.as_bytes().to_vec()).collect(),
        default_iters: 200_000,
        max_len: 4096,
        shape: Shape::Text,
        granule: 1,
        fixup: None,
        check: kconfig_check::check,
    });
}

#[test]
fn fuzz_section_name() {
    // Every section name of every committed object.
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for (_, bytes) in stable_driver::fixture_objects() {
        for (name, _, _) in stable_driver::elf_sections(&bytes).unwrap_or_default() {
            if !seeds.contains(&name.as_bytes().to_vec()) {
                seeds.push(name.into_bytes());
            }
        }
    }
    let dictionary = [
        "kprobe/",
        "kretprobe/",
        "kprobe.multi/",
        "ksyscall/",
        "uprobe/",
        "uretprobe.s/",
        "uprobe.multi/",
        "usdt/",
        "tp/",
        "tracepoint/",
        "raw_tp/",
        "raw_tracepoint.w/",
        "tp_btf/",
        "fentry/",
        "fexit.s/",
        "fmod_ret/",
        "freplace/",
        "lsm/",
        "lsm.s/",
        "lsm_cgroup/",
        "iter/",
        "iter.s/",
        "struct_ops/",
        "struct_ops.s/",
        "xdp",
        "xdp.frags/",
        "tc",
        "tcx/ingress",
        "netkit/peer",
        "cgroup/connect4",
        "cgroup_skb/egress",
        "sk_lookup",
        "socket",
        "sk_reuseport/migrate",
        "syscall",
        "perf_event",
        "/",
        "//",
        ":",
        "::",
        "+",
        "+0x10",
        "+18446744073709551616",
        "0x",
        ".s",
        "/usr/lib/libc.so.6:malloc",
    ];
    stable_driver::run(Target {
        name: "section_name",
        seeds,
        dictionary: dictionary.iter().map(|t| t.as_bytes().to_vec()).collect(),
        default_iters: 200_000,
        max_len: 512,
        shape: Shape::Text,
        granule: 1,
        fixup: None,
        check: section_name_check::check,
    });
}

// Regressions: inputs the drivers found, kept as plain tests.

/// The empty input's error printed its cause twice through `{:#}` (the
/// `bpfkit` binary's format): "not a readable ELF object: Could not read
/// file magic: Could not read file magic". The cause is now part of the
/// message only, not also its `source()`.
#[test]
fn wrapped_errors_are_printed_once() {
    use std::error::Error as _;
    let err = bpfkit_object::ObjectSpec::parse(&[]).unwrap_err();
    assert!(err.source().is_none(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not a readable ELF object: Could not read file magic"
    );
    let btf = bpfkit_object::ObjectError::from(bpfkit_btf::BtfError::NoSuchType { id: 7 });
    assert!(btf.source().is_none());
    assert_eq!(btf.to_string(), "BTF: BTF type id 7 does not exist");
    assert!(!parse_elf_check::check(&[]));
}

/// Parses a committed fixture object.
fn parse_fixture(name: &str) -> Result<bpfkit_object::ObjectSpec, String> {
    let path = stable_driver::repo_root()
        .join("crates/object/tests/fixtures")
        .join(name);
    bpfkit_object::ObjectSpec::parse(&std::fs::read(path).unwrap()).map_err(|e| e.to_string())
}

/// `__int128` kconfig externs were laid out as 16-byte integers, and
/// filling one indexed 16 bytes of an 8-byte i64: a panic. Rejected now,
/// as libbpf's find_kcfg_type() rejects it.
#[test]
fn kconfig_integer_wider_than_8_bytes_is_an_error() {
    assert_eq!(
        parse_fixture("kconfig_int128.bpf.o").unwrap_err(),
        "section `.kconfig`: extern `CONFIG_WIDE` has a type kconfig values cannot have \
         (a 16-byte integer; kconfig integers have 1, 2, 4 or 8 bytes)"
    );
}

/// `char CONFIG_X[0]` underflowed `len - 1` when filled: a panic.
#[test]
fn kconfig_empty_char_array_is_an_error() {
    assert_eq!(
        parse_fixture("kconfig_empty_string.bpf.o").unwrap_err(),
        "section `.kconfig`: extern `CONFIG_EMPTY` has a type kconfig values cannot have \
         (a char array of length 0)"
    );
}

/// Two 2 GiB char arrays overflowed the u32 layout offset: a panic.
#[test]
fn kconfig_externs_past_4_gib_are_an_error() {
    assert_eq!(
        parse_fixture("kconfig_huge.bpf.o").unwrap_err(),
        "section `.kconfig`: 4294967296 bytes of externs do not fit a map value"
    );
}

/// libFuzzer (`kconfig`) found `.config` values with backticks and `": "`
/// in them; errors quote the value in backticks, which made its text look
/// like repeated clauses of the message. Messages with backtick quoting
/// are no longer compared clause by clause.
#[test]
fn an_error_quoting_a_value_with_backticks_is_clean() {
    let found = [
        "352e31740a434f4e4649475f485a312e6a676e6f43000000437e0a434f4e4649\
                 475f485a3d35603a49464e20475f485a3d3d35603a49464e20475f485a3d3560\
                 3a203d303d78606060606860606060603d313d78606060606860606060603a20\
                 3d303d7860606060606860606060602e64617461406860606060606060606060\
                 606060606060203a203a20203a2020202020202020203c006060606842002020\
                 2020202420202020606060606040686060606060606060606060606060606020\
                 3a203a203a202020202020202020203c00606060684200202020202024202020\
                 2020606060",
        "780a434f4e4649475f485a3d2d3642455342455300000000006b636f6ed3a0d1\
                 af4f4e00004f5f485a3d2d3642455342455300000000006b636f6ed3a0d1af4f\
                 4e00004f4e2e6b636f00000a434f4e4649473d6f430000000a434f4e4649475f\
                 485a3d32603a20203a203d2020d1af4f4ed1af4f4e4a2e6b73206ed3a0d1af00\
                 00002e69636f6ed1a04f4e2e6b636f6ed3a006000000d1af4f4e002e6b636f4e\
                 2e6b636f66d3a0d1af2e6b636f6ed3a03b4e003a2020353a2020353a203d7860\
                 60603d303d35603d606078603d6060606c606060606070606060004f4e2e6b63\
                 6f6e00006ed1a0d1af4f4e4f2e6b636f6ed3a0d1af0000002e6069636f6ed1a0\
                 d1af4e4e2e6b636ed1a0",
    ];
    for found in found {
        let found: Vec<u8> = (0..found.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&found[i..i + 2], 16).unwrap())
            .collect();
        assert!(!kconfig_check::check(&found));
    }
}
