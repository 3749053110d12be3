//! Hostile command lines: every seconds option, environment knobs and error
//! texts give a clear error, never a panic or a repeated clause.

use std::process::Command;

mod common;

use common::BIN;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    (out.status.code(), stderr)
}

#[test]
fn seconds_options_refuse_nan_inf_and_huge_values_before_loading() {
    let cases: &[&[&str]] = &[
        &["execsnoop", "-d"],
        &["opensnoop", "-d"],
        &["syscount", "-d"],
        &["syscount", "-i"],
        &["solisten", "-d"],
        &["tcplife", "-d"],
        &["httpsnoop", "-d"],
        &["memleak", "-d"],
        &["memleak", "--older"],
        &["runqlen", "-d"],
        &["biolatency", "-d"],
        &["load", "/nonexistent.o", "-d"],
    ];
    for case in cases {
        for bad in ["nan", "inf", "1e300", "-1"] {
            // `-d=-1`, so that clap does not take -1 for a flag.
            let (flag, rest) = case.split_last().unwrap();
            let joined = format!("{flag}={bad}");
            let mut args = rest.to_vec();
            args.push(&joined);
            let (code, stderr) = run(&args, &[]);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("seconds"), "{args:?}: {stderr}");
        }
    }
    // Positional intervals too, and no interval of zero.
    for args in [
        &["runqlen", "nan"][..],
        &["biolatency", "inf"],
        &["memleak", "1e300"],
        &["syscount", "-i", "0"],
        &["runqlen", "0"],
    ] {
        let (code, stderr) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn environment_and_rate_limits_are_named() {
    if !common::require_bpf() {
        return;
    }
    let (code, stderr) = run(
        &["execsnoop", "-d", "0"],
        &[("BPFKIT_RINGBUF_BYTES", "1099511627776")],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("2 GiB"), "{stderr}");
    let max: u64 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let too_fast = (max + 1).to_string();
    let (code, stderr) = run(&["runqlen", "-F", &too_fast, "-d", "0"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("perf_event_max_sample_rate"), "{stderr}");
}

#[test]
fn errors_name_the_file_and_never_repeat_a_clause() {
    let dir = std::env::temp_dir().join(format!("bpfkit-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.o");
    std::fs::write(&garbage, b"\x7fELF\x02\x01\x01garbage").unwrap();
    let cases = [
        (vec!["load", dir.to_str().unwrap()], "Is a directory"),
        (vec!["load", "/nonexistent.o"], "No such file"),
        (
            vec!["load", garbage.to_str().unwrap()],
            "not a readable ELF object",
        ),
        (vec!["run", "/bin/true"], "not BPF"),
    ];
    for (args, expect) in cases {
        let (code, stderr) = run(&args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("section `-`"), "{args:?}: {stderr}");
        // No clause of the message stands twice ("X: e: e").
        let clauses: Vec<&str> = stderr.trim().split(": ").collect();
        for w in clauses.windows(2) {
            assert_ne!(w[0], w[1], "{args:?}: {stderr}");
        }
        let text = stderr.trim();
        for c in &clauses[1..] {
            assert!(
                text.matches(c).count() == 1 || c.len() < 8,
                "{args:?}: `{c}` twice in {stderr}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_runaway_loop_ends_quickly_and_says_how_to_raise_the_budget() {
    let dir = std::env::temp_dir().join(format!("bpfkit-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("loop.bin");
    // ja -1: jumps to itself forever.
    std::fs::write(&prog, [0x05, 0, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
    let (code, stderr) = run(&["run", prog.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    // The VM's default budget, sized to end a runaway loop in well under a
    // second, not the 2^32 that took 12 s.
    assert!(
        stderr.contains(&format!("budget of {}", bpfkit_vm::DEFAULT_BUDGET)),
        "{stderr}"
    );
    assert!(stderr.contains("--budget"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dumping_a_ring_buffer_says_it_has_no_keys() {
    if !common::require_bpf() {
        return;
    }
    use bpfkit_kernel::{KernelMap, MapDefinition};
    let def = MapDefinition::new("hostile_rb", bpfkit_abi::MapType::Ringbuf, 0, 0, 4096);
    let map = KernelMap::create(&def, None).unwrap();
    // The library's own error: the errno once, with a name for ENOTSUPP.
    let e = map.next_key(None).unwrap_err().to_string();
    assert!(
        e.contains("ENOTSUPP") && e.matches("524").count() == 1,
        "{e}"
    );
    let (code, stderr) = run(&["map", "dump", "id", &map.id().to_string()], &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("ringbuf map, which has no keys to iterate"),
        "{stderr}"
    );
    assert!(!stderr.contains("Unknown error"), "{stderr}");
}

#[test]
fn assembler_range_errors_read_as_english() {
    let dir = std::env::temp_dir().join(format!("bpfkit-asm-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("big.s");
    std::fs::write(&src, "r0 = 99999999999999999999999\nexit\n").unwrap();
    let out = dir.join("big.bin");
    let (code, stderr) = run(
        &["asm", src.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("big.s:1:6: "), "{stderr}");
    assert!(stderr.contains("does not fit in an integer"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conformance_failures_name_the_file_once() {
    let dir = std::env::temp_dir().join(format!("bpfkit-cf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = common::RemoveOnDrop(dir.clone());
    std::fs::write(
        dir.join("bad.data"),
        "-- asm\nmov %r0, 1\nexit\n-- mem\nzz\n-- result\n0x1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["conformance", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = dir.join("bad.data").display().to_string();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .expect("a FAIL line");
    assert_eq!(line.matches(path.as_str()).count(), 1, "{line}");
    assert!(line.contains("`zz` is not hex"), "{line}");
}
