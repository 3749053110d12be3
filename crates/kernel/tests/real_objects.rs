//! What loading real (libbpf-tools style) objects needs from the kernel
//! backend: kconfig externs as libbpf computes them, a frozen read-only
//! `.kconfig`, iterators, twin selection, unsized maps and pin reuse.

use std::path::PathBuf;

use bpfkit_kernel::{Collection, LoadOptions};
use bpfkit_object::ObjectSpec;

mod common;

fn fixture(name: &str) -> ObjectSpec {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    ObjectSpec::from_file(&p).unwrap()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn kconfig_externs_are_computed_as_libbpf_does_and_prune_dead_branches() {
    require_bpf!();
    let mut spec = fixture("kconfig.bpf.o");
    let kconfig = &spec.maps[".kconfig"];
    assert!(
        kconfig.is_read_only(),
        ".kconfig must be BPF_F_RDONLY_PROG (and so frozen), as libbpf makes it"
    );
    let config = bpfkit_kernel::kconfig::kernel_config_for(&spec).unwrap();
    spec.apply_kconfig(&config).unwrap();
    // The program dereferences ctx+4000 behind `LINUX_KERNEL_VERSION <
    // 0x10000`: the kernel accepts it only with .kconfig frozen read-only.
    let coll = Collection::load(&spec, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (_links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() };
    let bss = coll.maps[".bss"]
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let nums: Vec<u32> = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(3)
        .map(|p| p.parse().unwrap())
        .collect();
    let version = (nums[0] << 16) | (nums[1] << 8) | nums[2].min(255);
    assert_eq!(u32_at(&bss, 0), version, "LINUX_KERNEL_VERSION");
    let cookie = bpfkit_kernel::features::helper(bpfkit_abi::ProgramType::Tracepoint, 174).unwrap();
    assert_eq!(u32_at(&bss, 4), cookie as u32, "LINUX_HAS_BPF_COOKIE");
    let wrapper = std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("__x64_sys_bpf"));
    assert_eq!(u32_at(&bss, 8), wrapper as u32, "LINUX_HAS_SYSCALL_WRAPPER");
    // CONFIG_HZ from /boot/config-* or /proc/config.gz, as libbpf reads it.
    let config_hz = config.get("CONFIG_HZ").map(|v| v.parse::<u32>().unwrap());
    let has_config = std::path::Path::new("/proc/config.gz").exists()
        || std::path::Path::new(&format!("/boot/config-{}", release.trim())).exists();
    if has_config {
        let hz = config_hz.expect("CONFIG_HZ in the kernel's config");
        assert!(hz >= 100, "CONFIG_HZ {hz}");
        assert_eq!(u32_at(&bss, 12), hz, "CONFIG_HZ");
    }
}

#[test]
fn unknown_non_config_externs_are_refused_by_name() {
    let mut config = bpfkit_object::KernelConfig::default();
    config.set("CONFIG_HZ", "250");
    // kconfig.bpf.o only has known names; the rule is checked on the names
    // libbpf computes: leaving one unset is the loader's fault, and says so.
    let mut spec = fixture("kconfig.bpf.o");
    let e = spec.apply_kconfig(&config).unwrap_err().to_string();
    assert!(
        e.contains("LINUX_HAS_BPF_COOKIE") && e.contains("computed by the loader"),
        "{e}"
    );
}

#[test]
fn iterators_attach_through_link_create_and_list_this_process() {
    require_bpf!();
    let spec = fixture("iter.bpf.o");
    let coll = Collection::load(&spec, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    let text = bpfkit_kernel::link::read_iter(&links[0].1).unwrap();
    let text = String::from_utf8(text).unwrap();
    let me = std::process::id().to_string();
    assert!(
        text.lines()
            .any(|l| l.split(' ').nth(1) == Some(me.as_str())),
        "no task of pid {me} in the iterator's output:\n{}",
        &text[..text.len().min(500)]
    );
    // The main thread's line: pid == tgid, and its comm.
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let main_line = format!("{me} {me} {}", comm.trim());
    assert!(
        text.lines().any(|l| l == main_line),
        "no `{main_line}` line"
    );
}

#[test]
fn twins_keep_the_mechanism_this_kernel_supports() {
    require_bpf!();
    let spec = fixture("twins.bpf.o");
    let skip = bpfkit_kernel::select::plan(&spec);
    let tp_btf = bpfkit_kernel::btf::vmlinux()
        .unwrap()
        .find_by_name_kind("btf_trace_sched_process_exec", bpfkit_btf::Kind::Typedef)
        .is_some();
    let trampolines = bpfkit_kernel::features::fentry().unwrap();
    let kprobes = bpfkit_kernel::link::kprobes_available();
    // tp_btf is preferred to raw_tp when the kernel's BTF has the tracepoint.
    assert_eq!(skip.contains_key("exec_raw"), tp_btf, "{skip:?}");
    assert_eq!(skip.contains_key("exec_btf"), !tp_btf, "{skip:?}");
    // fentry is preferred to kprobe, and left out where trampolines are refused.
    assert_eq!(skip.contains_key("exit_fentry"), !trampolines, "{skip:?}");
    assert_eq!(
        skip.contains_key("exit_kprobe"),
        trampolines,
        "kprobes {kprobes}: {skip:?}"
    );
    if !trampolines {
        assert!(skip["exit_fentry"].contains("trampolines"), "{skip:?}");
    }
    // What is left loads: the left-out twins would have failed the object.
    let mut spec = spec;
    spec.programs.retain(|n, _| !skip.contains_key(n));
    Collection::load(&spec, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unsized_maps_say_which_option_sizes_them() {
    require_bpf!();
    let scratch = scratch_pin_dir("unsized");
    let root = scratch.0.clone();
    let opts = LoadOptions {
        pin_root: Some(&root),
        ..LoadOptions::default()
    };
    let mut spec = fixture("unsized.bpf.o");
    let e = Collection::load(&spec, &opts)
        .err()
        .expect("max_entries 0 loaded");
    let msg = e.to_string();
    assert!(
        msg.contains("`stacks`") && msg.contains("max_entries 0") && msg.contains("--map-size"),
        "{msg}"
    );
    assert!(
        !root.join("shared_counts").exists(),
        "a failed load left a pin"
    );
    spec.maps.get_mut("stacks").unwrap().max_entries = 64;
    Collection::load(&spec, &opts).unwrap_or_else(|e| panic!("{e}"));
}

/// A bpffs directory for a test's pins, removed (pins and all) when
/// dropped, also when the test fails: pins outlive the process.
struct ScratchPins(PathBuf);

impl Drop for ScratchPins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_pin_dir(what: &str) -> ScratchPins {
    let dir = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-test-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ScratchPins(dir)
}

#[test]
fn pinned_by_name_maps_are_reused_when_compatible_and_refused_when_not() {
    require_bpf!();
    let scratch = scratch_pin_dir("reuse");
    let root = scratch.0.clone();
    let opts = LoadOptions {
        pin_root: Some(&root),
        ..LoadOptions::default()
    };
    let mut spec = fixture("unsized.bpf.o");
    spec.maps.get_mut("stacks").unwrap().max_entries = 64;
    let first = Collection::load(&spec, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(first.reused_maps.is_empty());
    assert_eq!(
        first.pinned_maps.get("shared_counts"),
        Some(&root.join("shared_counts"))
    );
    assert!(
        !first.pinned_maps.contains_key("stacks"),
        "not pinned by name"
    );
    first.maps["shared_counts"]
        .update(&7u32.to_ne_bytes(), &42u64.to_ne_bytes(), 0)
        .unwrap();
    // A second load shares the first one's map, and so its contents.
    let second = Collection::load(&spec, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(second.reused_maps.contains("shared_counts"));
    assert_eq!(
        second.maps["shared_counts"].id(),
        first.maps["shared_counts"].id()
    );
    let v = second.maps["shared_counts"]
        .lookup(&7u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_ne_bytes(v.try_into().unwrap()), 42);
    // A pin of another shape is refused with the difference.
    spec.maps.get_mut("shared_counts").unwrap().max_entries = 32;
    let e = Collection::load(&spec, &opts)
        .err()
        .expect("incompatible pin reused");
    let msg = e.to_string();
    assert!(
        msg.contains("`shared_counts`") && msg.contains("max_entries 16, the object wants 32"),
        "{msg}"
    );
    drop((first, second));
}
