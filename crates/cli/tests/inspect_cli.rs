//! `bpfkit prog|map|link list -j` report what a loaded object holds, with
//! bpftool's field names (and, where bpftool is installed, its values).

use std::os::fd::AsFd;
use std::process::Command;

use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_bpfkit");

fn json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lists_report_a_loaded_object() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let path = format!(
        "{}/../kernel/tests/fixtures/counter.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    let coll = bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap();
    let (links, _) = coll.auto_attach();
    let prog_id = bpfkit_kernel::inspect::id_of(coll.programs["count_getpid"].fd()).unwrap();
    let calls_id = bpfkit_kernel::inspect::id_of(coll.maps["calls"].fd()).unwrap();

    let progs = json(&["prog", "list", "-j"]);
    let p = progs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == prog_id)
        .expect("our program");
    assert_eq!(p["name"], "count_getpid");
    assert_eq!(p["type"], "tracepoint");
    assert!(p["map_ids"].as_array().unwrap().contains(&calls_id.into()));
    assert!(p["bytes_xlated"].as_u64().unwrap() > 0);

    let maps = json(&["map", "list", "-j"]);
    let m = maps
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == calls_id)
        .expect("our map");
    assert_eq!(
        (m["name"].as_str(), m["type"].as_str()),
        (Some("calls"), Some("array"))
    );
    assert_eq!(
        (
            m["bytes_key"].as_u64(),
            m["bytes_value"].as_u64(),
            m["max_entries"].as_u64()
        ),
        (Some(4), Some(8), Some(1))
    );

    let all_links = json(&["link", "list", "-j"]);
    let l = all_links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["prog_id"] == prog_id)
        .expect("our link");
    assert_eq!(l["type"], "perf_event");

    match Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &prog_id.to_string()])
        .output()
    {
        Ok(out) if out.status.success() => {
            let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            for field in [
                "id",
                "type",
                "name",
                "tag",
                "bytes_xlated",
                "bytes_jited",
                "map_ids",
            ] {
                assert_eq!(p[field], theirs[field], "{field} differs from bpftool");
            }
        }
        _ => common::skip("bpftool comparison: bpftool not available"),
    }
    drop(links);
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bpftool_json(args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new("bpftool").arg("-j").args(args).output().ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn map_update_lookup_dump_delete_agree_with_bpftool() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    use bpfkit_kernel::{KernelMap, MapDefinition};
    let map = KernelMap::create(
        &MapDefinition::new("cli_hash", bpfkit_abi::MapType::Hash, 4, 8, 8),
        None,
    )
    .unwrap();
    let id = map.id().to_string();
    let (ok, _, err) = run(&[
        "map", "update", &id, "key", "1", "0", "0", "0", "value", "hex", "2a", "00", "00", "00",
        "00", "00", "00", "00",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "map", "update", &id, "key", "0x02", "0", "0", "0", "value", "7", "0", "0", "0", "0", "0",
        "0", "0", "noexist",
    ]);
    assert!(ok, "{err}");
    // The map itself sees the writes.
    assert_eq!(
        map.lookup(&1u32.to_ne_bytes()).unwrap().unwrap(),
        42u64.to_ne_bytes()
    );
    // noexist on a present key fails with the kernel's reason.
    let (ok, _, err) = run(&[
        "map", "update", &id, "key", "2", "0", "0", "0", "value", "7", "0", "0", "0", "0", "0",
        "0", "0", "noexist",
    ]);
    assert!(!ok && err.contains("File exists"), "{err}");

    let (ok, out, _) = run(&["map", "lookup", &id, "key", "1", "0", "0", "0"]);
    assert!(ok);
    assert_eq!(out, "key: 01 00 00 00  value: 2a 00 00 00 00 00 00 00\n");
    let lookup = json(&["map", "lookup", &id, "-j", "key", "1", "0", "0", "0"]);
    assert_eq!(lookup["value"][0], "0x2a");

    let dump = json(&["map", "dump", &id, "-j"]);
    assert_eq!(dump.as_array().unwrap().len(), 2);
    if let Some(reference) = bpftool_json(&["map", "dump", "id", &id]) {
        let key = |v: &serde_json::Value| v["key"].to_string();
        let mut ours = dump.as_array().unwrap().clone();
        let mut theirs = reference.as_array().unwrap().clone();
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
        assert_eq!(ours, theirs, "bpfkit and bpftool dump differently");
    } else {
        eprintln!("bpftool not installed: dump not compared with it");
    }
    let (ok, out, _) = run(&["map", "dump", &id]);
    assert!(ok && out.ends_with("Found 2 elements\n"), "{out}");

    let (ok, _, err) = run(&["map", "delete", &id, "key", "1", "0", "0", "0"]);
    assert!(ok, "{err}");
    assert!(map.lookup(&1u32.to_ne_bytes()).unwrap().is_none());
    let (ok, _, err) = run(&["map", "lookup", &id, "key", "1", "0", "0", "0"]);
    assert!(
        !ok && err.contains("no entry with key 01 00 00 00"),
        "{err}"
    );
    // Sizes are checked before the kernel is asked.
    let (ok, _, err) = run(&["map", "lookup", &id, "key", "1", "0"]);
    assert!(
        !ok && err.contains("key has 2 bytes; this map's keys have 4"),
        "{err}"
    );
    let (ok, _, err) = run(&["map", "show", "4294967295"]);
    assert!(!ok && err.contains("map id 4294967295"), "{err}");
}

#[test]
fn prog_show_and_dump_xlated_describe_a_loaded_program() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let path = format!(
        "{}/../kernel/tests/fixtures/counter.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = unix_now();
    let coll = bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap();
    let after = unix_now();
    let prog = &coll.programs["count_getpid"];
    let id = prog.id().to_string();
    let show = json(&["prog", "show", &id, "-j"]);
    assert_eq!(show["name"], "count_getpid");
    assert_eq!(show["id"], prog.id());
    // loaded_at is a date (seconds since the epoch), as bpftool prints it.
    let loaded_at = show["loaded_at"].as_u64().unwrap();
    assert!(
        (before.saturating_sub(1)..=after + 1).contains(&loaded_at),
        "loaded_at {loaded_at} not within the load ({before}..={after})"
    );
    let (ok, text, _) = run(&["prog", "dump", "xlated", &id]);
    assert!(ok);
    let lines: Vec<&str> = text.lines().collect();
    // The function's prototype and source lines come from its BTF.
    assert_eq!(lines[0], "int count_getpid(void * ctx):", "{text}");
    assert!(lines[1].starts_with("; __u32 tgid = "), "{text}");
    assert!(lines[2].starts_with("   0: ("), "{text}");
    assert_eq!(
        lines.last().unwrap().split(") ").nth(1),
        Some("exit"),
        "{text}"
    );
    let calls_id = coll.maps["calls"].id();
    assert!(
        text.contains(&format!("map[id:{calls_id}]")),
        "map reference by id: {text}"
    );
    // Helper calls are named from kallsyms, as bpftool names them.
    assert!(
        text.contains("(85) call bpf_get_current_pid_tgid#"),
        "helper by name: {text}"
    );
    assert!(
        text.contains("(85) call bpf_ringbuf_output#"),
        "helper by name: {text}"
    );
    assert_xlated_matches_bpftool(prog.id());
    let (ok, jited, err) = run(&["prog", "dump", "jited", &id]);
    assert!(ok, "{err}");
    // Disassembled as bpftool does (prog_jited_cli.rs checks the code).
    assert!(jited.contains("\n   0:\t"), "{jited}");
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    use bpfkit_kernel::{KernelMap, MapDefinition};
    // 4096 entries print far more than a pipe holds.
    let map = KernelMap::create(
        &MapDefinition::new("cli_big", bpfkit_abi::MapType::Array, 4, 8, 4096),
        None,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["map", "dump", &map.id().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    // The read end is closed now, as after `| head -1`.
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, "key: 00 00 00 00  value: 00 00 00 00 00 00 00 00\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn feature_lists_program_and_map_types_and_helpers() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let v = json(&["feature", "-j", "--helpers", "xdp"]);
    let kinds = &v["kinds"];
    let has = |list: &str, name: &str| kinds[list].as_array().unwrap().iter().any(|x| x == name);
    assert!(has("program_types", "xdp") && has("program_types", "tracepoint"));
    assert!(has("map_types", "ringbuf") && has("map_types", "hash"));
    let features = v["features"].as_array().unwrap();
    let helpers = features
        .iter()
        .find(|f| f["name"] == "helpers")
        .expect("helper line");
    let ids: Vec<&str> = helpers["detail"]
        .as_str()
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .collect();
    // map_lookup_elem (1) and xdp_adjust_head (44) are XDP helpers;
    // skb_load_bytes (26), for socket buffers, is not.
    assert!(ids.contains(&"1") && ids.contains(&"44"), "{ids:?}");
    assert!(!ids.contains(&"26"), "{ids:?}");
    let (ok, _, err) = run(&["feature", "--helpers", "nope"]);
    assert!(!ok && err.contains("`nope` is not a program type"), "{err}");
}

#[test]
fn programs_and_maps_are_named_by_id_tag_name_or_pin() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let path = format!(
        "{}/../kernel/tests/fixtures/counter.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    // Two copies: the same name and tag twice.
    let a = bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap();
    let b = bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap();
    let (pa, pb) = (
        a.programs["count_getpid"].id(),
        b.programs["count_getpid"].id(),
    );
    let ma = a.maps["calls"].id();
    let id = pa.to_string();

    for handle in [vec!["id", id.as_str()], vec![id.as_str()]] {
        let mut args = vec!["prog", "show"];
        args.extend(&handle);
        args.push("-j");
        let v = json(&args);
        assert_eq!(v["id"], pa, "{handle:?}");
    }
    let tag = json(&["prog", "show", "id", &id, "-j"])["tag"]
        .as_str()
        .unwrap()
        .to_string();
    // A name or tag several programs share shows them all, as an array.
    for handle in [["name", "count_getpid"], ["tag", tag.as_str()]] {
        let v = json(&["prog", "show", handle[0], handle[1], "-j"]);
        let ids: Vec<u64> = v
            .as_array()
            .unwrap_or_else(|| panic!("{handle:?}: {v}"))
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        assert!(
            ids.contains(&pa.into()) && ids.contains(&pb.into()),
            "{handle:?}: {ids:?}"
        );
    }
    let (ok, text, err) = run(&["prog", "dump", "xlated", "name", "count_getpid"]);
    assert!(ok, "{err}");
    assert!(
        text.contains(&format!("{pa}: tracepoint  name count_getpid"))
            && text.contains(&format!("{pb}: tracepoint  name count_getpid")),
        "each dump is headed by its program: {text}"
    );
    // A single-object command refuses a handle several maps match (other
    // processes may hold more maps of this name than our two).
    let (ok, _, err) = run(&["map", "lookup", "name", "calls", "key", "0", "0", "0", "0"]);
    assert!(
        !ok && err.contains("several maps (") && err.contains(") match name calls"),
        "{err}"
    );
    let v = json(&[
        "map",
        "lookup",
        "id",
        &ma.to_string(),
        "key",
        "0",
        "0",
        "0",
        "0",
        "-j",
    ]);
    assert_eq!(v["value"].as_array().unwrap().len(), 8);
    let (ok, _, err) = run(&["prog", "show", "name", "no_such_prog"]);
    assert!(
        !ok && err.contains("no program matches name no_such_prog"),
        "{err}"
    );

    // A pinned map is found by its path, and is not a program.
    let dir = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit_inspect_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = common::RemoveOnDrop(dir.clone());
    let pin = dir.join("calls");
    a.maps["calls"].pin(&pin).unwrap();
    let pin_s = pin.to_str().unwrap();
    let v = json(&["map", "show", "pinned", pin_s, "-j"]);
    let (ok, _, err) = run(&[
        "map", "update", "pinned", pin_s, "key", "0", "0", "0", "0", "value", "9", "0", "0", "0",
        "0", "0", "0", "0",
    ]);
    let (pok, _, perr) = run(&["prog", "show", "pinned", pin_s]);
    // And a pinned link by its path.
    let (links, _) = a.auto_attach();
    let link_pin = dir.join("link");
    links[0].1.pin(&link_pin).unwrap();
    let link = json(&["link", "show", "pinned", link_pin.to_str().unwrap(), "-j"]);
    std::fs::remove_file(&link_pin).unwrap();
    assert_eq!(link["prog_id"], pa, "{link}");
    std::fs::remove_file(&pin).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(v["id"], ma);
    assert!(ok, "{err}");
    assert_eq!(
        a.maps["calls"]
            .lookup(&0u32.to_ne_bytes())
            .unwrap()
            .unwrap(),
        9u64.to_ne_bytes()
    );
    assert!(
        !pok && perr.contains("is not a program but a map"),
        "{perr}"
    );
}

/// Loads one of the tools' committed objects (no attaching).
fn load_tool_object(name: &str) -> bpfkit_kernel::Collection {
    let path = format!("{}/../../bpf/obj/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    let kconfig = bpfkit_kernel::kconfig::kernel_config_for(&spec).unwrap();
    spec.apply_kconfig(&kconfig).unwrap();
    bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap()
}

#[test]
fn names_the_kernel_truncated_are_shown_whole_from_btf() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    // execsnoop_enter_at is 18 bytes; the kernel keeps "execsnoop_enter",
    // which is also the whole name of its sibling.
    let coll = load_tool_object("execsnoop.bpf.o");
    let long = coll.programs["execsnoop_enter_at"].id();
    let short = coll.programs["execsnoop_enter"].id();
    let v = json(&["prog", "show", "id", &long.to_string(), "-j"]);
    assert_eq!(v["name"], "execsnoop_enter_at");
    let v = json(&["prog", "show", "id", &short.to_string(), "-j"]);
    assert_eq!(v["name"], "execsnoop_enter");
    let (ok, text, err) = run(&["prog", "show", &long.to_string()]);
    assert!(ok, "{err}");
    assert!(
        text.starts_with(&format!(
            "{long}: tracepoint  name execsnoop_enter_at  tag "
        )),
        "{text}"
    );
    // Handles match the kernel's name, as bpftool's do: both programs.
    let v = json(&["prog", "show", "name", "execsnoop_enter", "-j"]);
    let ids: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert!(
        ids.contains(&long.into()) && ids.contains(&short.into()),
        "{ids:?}"
    );
}

/// Whether bpftool is installed; under CI (`CI=true`) its absence fails the
/// test, since .ci/run installs it; elsewhere it is a reported skip.
fn have_bpftool(what: &str) -> bool {
    let found = Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "bpftool is not installed, and CI must compare {what} with it"
        );
        eprintln!("SKIP ({what} not compared with bpftool): bpftool is not installed");
    }
    found
}

/// bpftool older than 7.4 ignores the kernel's per-CPU address move
/// (`BPF_ADDR_PERCPU`, kernel 6.8) and prints it as a plain move; the
/// kernel's own disassembler, which bpfkit follows, prints the address form.
fn older_bpftool_percpu_move(ours: &str, theirs: &str) -> bool {
    let Some(rest) = ours.strip_prefix("(bf) r") else {
        return false;
    };
    let Some((dst, src)) = rest.split_once(" = &(void __percpu *)(r") else {
        return false;
    };
    theirs == format!("(bf) r{dst} = r{}", src.trim_end_matches(')'))
}

/// `prog dump xlated` of program `id` is bpftool's, as JSON (every
/// instruction's "proto", "src" and "disasm") and as text, line for line.
fn assert_xlated_matches_bpftool(id: u32) {
    let id = id.to_string();
    let ours = json(&["prog", "dump", "xlated", "id", &id, "-j"]);
    let (ok, ours_text, err) = run(&["prog", "dump", "xlated", "id", &id]);
    assert!(ok, "{err}");
    if !have_bpftool("the xlated dump") {
        return;
    }
    let theirs = bpftool_json(&["prog", "dump", "xlated", "id", &id]).expect("bpftool dump");
    let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    assert_eq!(
        ours.len(),
        theirs.len(),
        "program {id}: {ours:#?}\n{theirs:#?}"
    );
    for (o, t) in ours.iter().zip(theirs) {
        let (od, td) = (o["disasm"].as_str().unwrap(), t["disasm"].as_str().unwrap());
        assert!(
            od == td || older_bpftool_percpu_move(od, td),
            "program {id}: bpfkit `{od}`, bpftool `{td}`"
        );
        for field in ["proto", "src"] {
            assert_eq!(
                o.get(field),
                t.get(field),
                "program {id}: {field} of `{td}`"
            );
        }
    }
    let out = Command::new("bpftool")
        .args(["prog", "dump", "xlated", "id", &id])
        .output()
        .unwrap();
    let theirs_text = String::from_utf8_lossy(&out.stdout);
    let (ours_lines, theirs_lines): (Vec<&str>, Vec<&str>) =
        (ours_text.lines().collect(), theirs_text.lines().collect());
    assert_eq!(
        ours_lines.len(),
        theirs_lines.len(),
        "program {id}:\n{ours_text}\n{theirs_text}"
    );
    for (o, t) in ours_lines.iter().zip(&theirs_lines) {
        let same_insn = o
            .split_once(": ")
            .zip(t.split_once(": "))
            .is_some_and(|((on, ot), (tn, tt))| on == tn && older_bpftool_percpu_move(ot, tt));
        assert!(
            o == t || same_insn,
            "program {id}: bpfkit `{o}`, bpftool `{t}`"
        );
    }
}

#[test]
fn kfunc_calls_are_named_like_bpftool_names_them() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let path = format!(
        "{}/../kernel/tests/fixtures/kfunc.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec = bpfkit_object::ObjectSpec::from_file(path.as_ref()).unwrap();
    let coll = bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap();
    let id = coll.programs["find_task"].id();
    let (ok, text, err) = run(&["prog", "dump", "xlated", "id", &id.to_string()]);
    assert!(ok, "{err}");
    assert!(text.contains("(85) call bpf_task_from_pid#"), "{text}");
    assert!(text.contains("(85) call bpf_task_release#"), "{text}");
    assert_xlated_matches_bpftool(id);
    // The tools' programs: per-CPU maps, inlined helpers, many branches.
    for object in ["execsnoop.bpf.o", "syscount.bpf.o", "tcplife.bpf.o"] {
        let coll = load_tool_object(object);
        for prog in coll.programs.values() {
            assert_xlated_matches_bpftool(prog.id());
        }
    }
}

/// Fields bpftool prints that bpfkit may lack or print with another value,
/// each with the reason. Anything else bpftool prints must be there, equal.
const BPFTOOL_FIELDS_ALLOWED_TO_DIFFER: &[(&str, &str, &str)] = &[
    (
        "prog",
        "run_time_ns",
        "grows while kernel.bpf_stats_enabled is on, between the two reads",
    ),
    ("prog", "run_cnt", "grows like run_time_ns"),
];

/// What differs between bpfkit's and bpftool's JSON for one object.
fn json_differences(kind: &str, what: &str, ours: &Value, theirs: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fields) = theirs.as_object() else {
        return vec![format!("{what}: bpftool printed {theirs}")];
    };
    for (field, want) in fields {
        if BPFTOOL_FIELDS_ALLOWED_TO_DIFFER
            .iter()
            .any(|(k, f, _)| *k == kind && f == field)
        {
            continue;
        }
        match ours.get(field) {
            None => problems.push(format!("{what}: bpfkit lacks `{field}` (bpftool: {want})")),
            Some(got) if got == want => {}
            // Both compute the boot time from two clock reads of their own:
            // a load near a second's edge may land one second apart.
            Some(got)
                if field == "loaded_at"
                    && got
                        .as_i64()
                        .zip(want.as_i64())
                        .is_some_and(|(a, b)| (a - b).abs() <= 1) => {}
            Some(got) => problems.push(format!(
                "{what}: `{field}` is {got} in bpfkit, {want} in bpftool"
            )),
        }
    }
    problems
}

/// `bpfkit load OBJ` in the background, ready once it has printed its
/// programs and maps (the blank line it prints before any records).
struct BackgroundLoad {
    child: std::process::Child,
    /// `(name, id)` of each program.
    progs: Vec<(String, u32)>,
    /// `(name, id)` of each map.
    maps: Vec<(String, u32)>,
}

impl BackgroundLoad {
    fn start(object: &str) -> BackgroundLoad {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .args(["load", object, "-d", "120"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (mut progs, mut maps) = (Vec::new(), Vec::new());
        for line in stdout.lines() {
            let line = line.unwrap();
            if line.is_empty() {
                return BackgroundLoad { child, progs, maps };
            }
            // "prog NAME: id N type ..." / "map NAME: id N type ..."
            let mut words = line.split_whitespace();
            let (Some(kind), Some(name), Some("id"), Some(id)) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                continue;
            };
            let entry = (name.trim_end_matches(':').to_string(), id.parse().unwrap());
            match kind {
                "prog" => progs.push(entry),
                "map" => maps.push(entry),
                _ => {}
            }
        }
        let status = child.wait().unwrap();
        panic!("bpfkit load {object} ended before it was ready: {status}");
    }
}

impl Drop for BackgroundLoad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_json_field_bpftool_prints_bpfkit_prints_alike() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    if !have_bpftool("prog/map show and link list -j") {
        return;
    }
    let fixture = |name: &str| {
        format!(
            "{}/../kernel/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    };
    // One object through the loader, the rest through the library: maps
    // of several kinds (array, ringbuf, hash, percpu, .rodata frozen, .bss),
    // programs with long names, and perf_event and raw_tracepoint links.
    let loader = BackgroundLoad::start(&fixture("counter.bpf.o"));
    assert!(!loader.progs.is_empty() && !loader.maps.is_empty());
    let mut prog_ids: Vec<u32> = loader.progs.iter().map(|p| p.1).collect();
    let mut map_ids: Vec<u32> = loader.maps.iter().map(|m| m.1).collect();
    let spec = bpfkit_object::ObjectSpec::from_file(fixture("autoattach.bpf.o").as_ref()).unwrap();
    let mut colls = vec![bpfkit_kernel::Collection::load(&spec, &Default::default()).unwrap()];
    colls.push(load_tool_object("execsnoop.bpf.o"));
    colls.push(load_tool_object("biolatency.bpf.o"));
    let mut links = Vec::new();
    for coll in &colls {
        let (attached, _) = coll.auto_attach();
        links.extend(attached);
        prog_ids.extend(coll.programs.values().map(|p| p.id()));
        map_ids.extend(coll.maps.values().map(|m| m.id()));
    }

    let mut problems = Vec::new();
    for id in &prog_ids {
        let id = id.to_string();
        let ours = json(&["prog", "show", "id", &id, "-j"]);
        let theirs = bpftool_json(&["prog", "show", "id", &id]).expect("bpftool prog show");
        problems.extend(json_differences(
            "prog",
            &format!("prog {id}"),
            &ours,
            &theirs,
        ));
    }
    for id in &map_ids {
        let id = id.to_string();
        let ours = json(&["map", "show", "id", &id, "-j"]);
        let theirs = bpftool_json(&["map", "show", "id", &id]).expect("bpftool map show");
        problems.extend(json_differences(
            "map",
            &format!("map {id}"),
            &ours,
            &theirs,
        ));
    }
    let ours = json(&["link", "list", "-j"]);
    let theirs = bpftool_json(&["link", "list"]).expect("bpftool link list");
    let ours_of = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|l| prog_ids.iter().any(|&p| l["prog_id"] == p))
            .cloned()
            .collect()
    };
    let (ours, theirs) = (ours_of(&ours), ours_of(&theirs));
    let kinds: std::collections::BTreeSet<&str> =
        theirs.iter().filter_map(|l| l["type"].as_str()).collect();
    assert!(
        kinds.contains("perf_event") && kinds.contains("raw_tracepoint"),
        "links of both kinds: {kinds:?}"
    );
    for link in &theirs {
        let what = format!("link {}", link["id"]);
        match ours.iter().find(|l| l["id"] == link["id"]) {
            Some(mine) => problems.extend(json_differences("link", &what, mine, link)),
            None => problems.push(format!("{what}: not in bpfkit link list")),
        }
        // `link show id N` prints the one link.
        let id = link["id"].to_string();
        let one = json(&["link", "show", "id", &id, "-j"]);
        let theirs_one = bpftool_json(&["link", "show", "id", &id]).expect("bpftool link show");
        problems.extend(json_differences(
            "link",
            &format!("link show {id}"),
            &one,
            &theirs_one,
        ));
    }
    assert!(
        problems.is_empty(),
        "bpfkit's -j differs from bpftool's:\n{}",
        problems.join("\n")
    );
    drop(links);
    drop(loader);
}

#[test]
fn bpf_to_bpf_calls_name_the_called_function_like_bpftool() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        common::skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    // call pc+1 (a subprogram); exit; subprogram: r0 = 0; exit.
    let code: [u8; 32] = [
        0x85, 0x10, 0, 0, 1, 0, 0, 0, //
        0x95, 0, 0, 0, 0, 0, 0, 0, //
        0xb7, 0, 0, 0, 0, 0, 0, 0, //
        0x95, 0, 0, 0, 0, 0, 0, 0,
    ];
    let insns = bpfkit_isa::decode(&code, bpfkit_isa::ByteOrder::Little).unwrap();
    let prog = bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
        name: "subprog_call",
        prog_type: bpfkit_abi::ProgramType::SocketFilter,
        expected_attach_type: None,
        insns: &insns,
        license: "GPL",
        kern_version: 0,
        btf: None,
        attach_btf_id: 0,
        core_relos: Vec::new(),
    })
    .unwrap();
    let (ok, text, err) = run(&["prog", "dump", "xlated", "id", &prog.id().to_string()]);
    assert!(ok, "{err}");
    let first = text.lines().next().unwrap();
    let jited = bpfkit_kernel::info::ProgramInfo::from_fd(prog.fd().as_fd())
        .unwrap()
        .bytes_jited
        > 0;
    if jited {
        // The subprogram's JIT symbol, bpf_prog_<tag>_F (the kernel's name
        // for an unnamed subprogram).
        assert!(
            first.starts_with("   0: (85) call pc+1#bpf_prog_"),
            "{text}"
        );
    } else {
        assert_eq!(first, "   0: (85) call pc+1", "{text}");
    }
    assert_xlated_matches_bpftool(prog.id());
}
