//! The C and raw dumps, checked against bpftool's output for the same BTF
//! and, where clang is installed, by compiling the generated headers.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{Btf, Kind};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

fn fixture_text(path: &str) -> String {
    String::from_utf8(fixture(path)).unwrap()
}

#[test]
fn raw_dump_matches_bpftool() {
    for (btf, reference) in [
        ("dump/types.btf", "dump/types.bpftool.raw"),
        ("core/target.btf", "core/target.bpftool.raw"),
        ("core/local.btf", "core/local.bpftool.raw"),
    ] {
        let btf = Btf::parse(&fixture(btf)).unwrap();
        assert_eq!(dump_raw(&btf), fixture_text(reference), "{reference}");
    }
}

#[test]
fn big_endian_raw_dump_matches_little_endian() {
    let le = Btf::parse(&fixture("core/local.btf")).unwrap();
    let be = Btf::parse(&fixture("core/local.be.btf")).unwrap();
    assert_eq!(dump_raw(&le), dump_raw(&be));
}

/// The reference was made by bpftool 7.1 (libbpf 1.1), which predates the
/// `__ksym`/`__weak` preamble and `mode(word)` on 8-byte enums whose values
/// fit 32 bits; newer bpftool writes both, as we do.
fn as_libbpf_1_1(header: &str) -> String {
    let preamble =
        "#ifndef __ksym\n#define __ksym __attribute__((section(\".ksyms\")))\n#endif\n\n\
                    #ifndef __weak\n#define __weak __attribute__((weak))\n#endif\n\n";
    header
        .replacen(preamble, "", 1)
        .replace(" __attribute__((mode(word)))", "")
}

#[test]
fn c_dump_matches_bpftool() {
    let btf = Btf::parse(&fixture("dump/types.btf")).unwrap();
    let header = dump_c_header(&btf).unwrap();
    assert!(
        header.contains("} __attribute__((mode(word)));"),
        "8-byte enum keeps its size"
    );
    assert_eq!(as_libbpf_1_1(&header), fixture_text("dump/types.bpftool.h"));
}

#[test]
fn c_dump_orders_definitions_before_use() {
    let btf = Btf::parse(&fixture("dump/types.btf")).unwrap();
    let header = dump_c_header(&btf).unwrap();
    let pos = |needle: &str| {
        header
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    // node_a embeds nothing but points at node_b; node_b embeds node_a.
    assert!(pos("struct node_b;") < pos("struct node_a {"));
    assert!(pos("struct node_a {") < pos("struct node_b {"));
    assert!(pos("typedef unsigned int u32;") < pos("struct bits {"));
    assert!(pos("struct opaque;") < pos("struct everything {"));
    assert!(header.contains("\tvoid (* (*ret_fp)(int))(long);\n"));
    assert!(header.contains("\tint (*fparr[2])(void);\n"));
    assert!(header.contains("} __attribute__((packed));"));
}

fn tool(name: &str) -> Option<PathBuf> {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from(name))
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfkit-btf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn compile(dir: &Path, source: &str) -> Result<PathBuf, String> {
    let src = dir.join("prog.bpf.c");
    let obj = dir.join("prog.bpf.o");
    std::fs::write(&src, source).unwrap();
    let out = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(obj)
}

/// A record's name, size, and members as (name, bit offset, bitfield size).
type Layout = (String, u32, Vec<(String, u32, u32)>);

/// Every named struct or union of `btf`.
fn layouts(btf: &Btf) -> Vec<Layout> {
    let mut out: Vec<_> = btf
        .types()
        .filter(|t| t.kind().is_composite() && !t.name().is_empty())
        .map(|t| {
            let members = t
                .members()
                .map(|m| (m.name.to_string(), m.bit_offset, m.bitfield_size))
                .collect();
            (t.name().to_string(), t.size().unwrap_or(0), members)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn c_dump_compiles_back_to_the_same_layouts() {
    if tool("clang").is_none() || tool("llvm-objcopy").is_none() {
        eprintln!("SKIP: clang or llvm-objcopy not installed");
        return;
    }
    let btf = Btf::parse(&fixture("dump/types.btf")).unwrap();
    let dir = scratch_dir("roundtrip");
    std::fs::write(dir.join("types.h"), dump_c_header(&btf).unwrap()).unwrap();
    // Globals of each top-level type make clang emit them all.
    let mut source = String::from("#include \"types.h\"\n");
    for t in btf.types().filter(|t| t.kind() == Kind::Var) {
        let var_type = btf.type_by_id(t.type_ref().unwrap()).unwrap();
        let keyword = match var_type.kind() {
            Kind::Struct => "struct ",
            Kind::Union => "union ",
            Kind::Enum => "enum ",
            _ => "",
        };
        source.push_str(&format!("{keyword}{} {};\n", var_type.name(), t.name()));
    }
    let obj = compile(&dir, &source)
        .unwrap_or_else(|e| panic!("generated header does not compile:\n{e}"));
    let btf_out = dir.join("out.btf");
    let status = Command::new("llvm-objcopy")
        .arg(format!("--dump-section=.BTF={}", btf_out.display()))
        .arg(&obj)
        .arg("/dev/null")
        .status()
        .unwrap();
    assert!(status.success());
    let again = Btf::parse(&std::fs::read(&btf_out).unwrap()).unwrap();
    assert_eq!(layouts(&again), layouts(&btf));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vmlinux_header_compiles_with_clang() {
    let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("SKIP: /sys/kernel/btf/vmlinux not readable");
        return;
    };
    if tool("clang").is_none() {
        eprintln!("SKIP: clang not installed");
        return;
    }
    let btf = Btf::from_vec(bytes).unwrap();
    let dir = scratch_dir("vmlinux");
    std::fs::write(dir.join("vmlinux.h"), dump_c_header(&btf).unwrap()).unwrap();
    let program = r#"#include "vmlinux.h"
#define SEC(name) __attribute__((section(name), used))

SEC("tp_btf/sched_switch")
int on_switch(unsigned long long *ctx)
{
	struct task_struct *next = (struct task_struct *)ctx[2];
	struct sk_buff *skb = 0;
	enum bpf_map_type type = BPF_MAP_TYPE_HASH;
	/* kfuncs come from the dumped prototypes. */
	struct task_struct *held = bpf_task_acquire(next);
	if (held)
		bpf_task_release(held);
	return next->pid + next->mm->map_count + (skb ? skb->len : 0) + type +
	       __builtin_preserve_field_info(next->__state, 1);
}

char LICENSE[] SEC("license") = "GPL";
"#;
    let obj = compile(&dir, program)
        .unwrap_or_else(|e| panic!("program does not compile against the dump:\n{e}"));
    assert!(std::fs::metadata(obj).unwrap().len() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The type definitions of a header, in order, without the `mode(...)`
/// attributes newer libbpf adds to sized enums.
fn definitions(header: &str) -> Vec<String> {
    header
        .split("\n\n")
        .map(str::trim_start)
        .filter(|block| {
            ["struct ", "union ", "enum ", "typedef "]
                .iter()
                .any(|k| block.starts_with(k))
        })
        .map(|block| {
            block
                .replace(" __attribute__((mode(byte)))", "")
                .replace(" __attribute__((mode(word)))", "")
        })
        .collect()
}

#[test]
fn vmlinux_c_dump_matches_bpftool() {
    let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("SKIP: /sys/kernel/btf/vmlinux not readable");
        return;
    };
    let Ok(reference) = Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "c",
        ])
        .output()
    else {
        eprintln!("SKIP: bpftool not installed");
        return;
    };
    assert!(reference.status.success());
    let theirs = definitions(&String::from_utf8(reference.stdout).unwrap());
    let ours = definitions(&dump_c_header(&Btf::from_vec(bytes).unwrap()).unwrap());
    assert!(theirs.len() > 1000);
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "definition #{i} differs");
    }
}
