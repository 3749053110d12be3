//! `bpfkit prog|map|link list -j` report what a loaded object holds, with
//! bpftool's field names (and, where bpftool is installed, its values).

use std::process::Command;

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
        eprintln!("SKIP: cannot use bpf(): {why}");
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
        _ => eprintln!("SKIP (bpftool comparison): bpftool not available"),
    }
    drop(links);
}
