//! Real objects, as a new user meets them: the BPF objects embedded in the
//! C libbpf-tools of the Debian package `libbpf-tools` (each tool carries its
//! object in its skeleton). For every object `bpftool prog loadall` loads on
//! this kernel, `bpfkit load` loads it too and attaches every program whose
//! hook this kernel offers without user input (tracepoints, raw and BTF
//! tracepoints), leaving nothing in the kernel. Objects neither can load are
//! listed with the kernel's reason. The objects are extracted at test time
//! from the installed package, not committed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bpfkit_abi::AttachType;
use bpfkit_kernel::inspect::{ids, ObjectKind};
use bpfkit_object::{AttachTarget, ObjectSpec};

mod common;
mod libbpf_tools;

use common::BIN;
use libbpf_tools::{corpus, embedded_objects};

/// bpftool's verdict: loaded, or the last libbpf complaint.
fn bpftool_loadall(obj: &Path, pin_dir: &Path) -> Result<(), String> {
    let out = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(obj)
        .arg(pin_dir)
        .output()
        .expect("bpftool runs");
    let loaded = out.status.success() && pin_dir.exists();
    let _ = std::fs::remove_dir_all(pin_dir);
    if loaded {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(err
        .lines()
        .rfind(|l| l.starts_with("libbpf:") && !l.contains("failed to load object"))
        .unwrap_or("failed")
        .to_string())
}

/// Programs still loaded that were not before, after waiting for the
/// kernel's asynchronous release of freed ones.
fn leaked(before: &BTreeSet<u32>) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now: Vec<u32> = ids(ObjectKind::Program)
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        if now.is_empty() || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Programs whose hook this kernel offers with no user input.
fn auto_attachable(spec: &ObjectSpec) -> BTreeSet<String> {
    spec.programs
        .iter()
        .filter(|(_, p)| match &p.kind.target {
            AttachTarget::Tracepoint { .. } | AttachTarget::RawTracepoint { .. } => true,
            AttachTarget::Kernel { .. } => p.kind.attach_type == Some(AttachType::TraceRawTp),
            _ => false,
        })
        .map(|(n, _)| n.clone())
        .collect()
}

#[derive(Debug)]
struct Outcome {
    attached: BTreeSet<String>,
    not_loaded: BTreeMap<String, String>,
}

fn bpfkit_load(obj: &Path, extra: &[&str]) -> Result<Outcome, String> {
    let out = Command::new(BIN)
        .arg("load")
        .arg(obj)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", obj.display());
    let reason = |marker: &str| -> BTreeMap<String, String> {
        stderr
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("bpfkit load: `")?;
                let (name, why) = rest.split_once(marker)?;
                Some((name.to_string(), why.to_string()))
            })
            .collect()
    };
    let outcome = Outcome {
        attached: stdout
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("prog ")?;
                let (name, tail) = rest.split_once(": ")?;
                (!tail.contains("-> not attached")).then(|| name.to_string())
            })
            .collect(),
        not_loaded: reason("` not loaded: "),
    };
    if out.status.success() {
        Ok(outcome)
    } else {
        Err(stderr.trim().to_string())
    }
}

#[test]
fn libbpf_tools_objects_load_wherever_bpftool_loads_them() {
    if !common::require_bpf() {
        return;
    }
    let have_bpftool = Command::new("bpftool").arg("version").output().is_ok();
    let dir = std::env::temp_dir().join(format!("bpfkit-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = corpus(&dir);
    if objects.is_empty() || !have_bpftool {
        common::skip("libbpf-tools or bpftool is not installed (Debian: libbpf-tools bpftool)");
        return;
    }
    assert!(
        objects.len() >= 40,
        "only {} objects in the corpus",
        objects.len()
    );
    let pins = bpfkit_kernel::fs::bpffs()
        .unwrap()
        .join(format!("bpfkit-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&pins).unwrap();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    let (mut both, mut bpfkit_only, mut neither, mut attached_objects) = (0, 0, 0, 0);
    for (tool, obj) in &objects {
        let spec = ObjectSpec::from_file(obj).unwrap_or_else(|e| panic!("{tool}: {e}"));
        let before: BTreeSet<u32> = ids(ObjectKind::Program).into_iter().collect();
        let reference = bpftool_loadall(obj, &pins.join(tool));
        // Maps the object leaves to its user-space side get the size the
        // error asks for, as that side would set it: 1024 entries, values of
        // 127 stack frames.
        let mut sizes: Vec<String> = Vec::new();
        let mut loaded = bpfkit_load(obj, &["--load-only"]);
        while let Err(e) = &loaded {
            let asked = ["--map-size ", "--map-value-size "].iter().find_map(|opt| {
                let map = e.split(opt).nth(1)?.split('=').next()?;
                let value = if opt.contains("value") { 1016 } else { 1024 };
                Some(format!("{}{map}={value}", opt))
            });
            match asked {
                Some(a) if !sizes.contains(&a) => sizes.push(a),
                _ => break,
            }
            let mut args = vec!["--load-only".to_string()];
            args.extend(sizes.iter().flat_map(|s| s.split(' ').map(String::from)));
            loaded = bpfkit_load(obj, &args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let mut args = vec!["-d".to_string(), "0".to_string()];
        args.extend(sizes.iter().flat_map(|s| s.split(' ').map(String::from)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = bpfkit_load(obj, &args);
        let left = leaked(&before);
        if !left.is_empty() {
            failures.push(format!("{tool}: programs {left:?} left in the kernel"));
        }
        match (&reference, &loaded) {
            (Ok(()), Err(e)) => failures.push(format!("{tool}: bpftool loads it, bpfkit: {e}")),
            (Ok(()), Ok(_)) => both += 1,
            (Err(_), Ok(_)) => bpfkit_only += 1,
            (Err(why), Err(e)) => {
                neither += 1;
                table.push(format!(
                    "  {tool}: bpftool: {why}\n    bpfkit: {}",
                    e.lines().last().unwrap_or("")
                ));
            }
        }
        if loaded.is_err() {
            continue;
        }
        match run {
            Ok(outcome) => {
                attached_objects += 1;
                // Every program with a hook this kernel offers is attached,
                // unless it was the twin left out in favour of another.
                for name in auto_attachable(&spec) {
                    let twin = outcome
                        .not_loaded
                        .get(&name)
                        .is_some_and(|w| w.contains("twin of"));
                    if !outcome.attached.contains(&name) && !twin {
                        failures.push(format!("{tool}: `{name}` was not attached: {outcome:?}"));
                    }
                }
            }
            Err(e) => {
                // Attaching nothing is an error, and only right when no
                // program has a hook this kernel offers by itself.
                if !e.contains("nothing was attached") || !auto_attachable(&spec).is_empty() {
                    failures.push(format!("{tool}: {e}"));
                }
            }
        }
    }
    eprintln!(
        "corpus: {} objects; both load {both}, only bpfkit {bpfkit_only}, neither {neither}; \
         bpfkit attached programs of {attached_objects}",
        objects.len()
    );
    eprintln!(
        "neither loads (the kernel's reasons):\n{}",
        table.join("\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&pins).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn libbpf_tools_execsnoop_records_decode_from_btf_though_shorter_than_the_type() {
    if !common::require_bpf() {
        return;
    }
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("bpfkit-execsnoop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = common::RemoveOnDrop(dir.clone());
    let Some(bytes) = std::fs::read("/usr/sbin/execsnoop").ok() else {
        common::skip("libbpf-tools is not installed (Debian: libbpf-tools)");
        return;
    };
    let obj = dir.join("execsnoop.bpf.o");
    std::fs::write(&obj, &embedded_objects(&bytes)[0]).unwrap();
    let (mut tool, lines) = common::load_until_attached(&[
        "--event-type".as_ref(),
        "event".as_ref(),
        "-d".as_ref(),
        "10".as_ref(),
        obj.as_os_str(),
    ]);
    let echo = Command::new("/bin/echo")
        .arg("bpfkit-decoded")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = echo.id();
    let mut echo = echo;
    echo.wait().unwrap();
    // Each record is the used part of a 7,720-byte struct event.
    let line = lines
        .map(|l| l.unwrap())
        .find(|l| l.contains(&format!("pid={pid} ")))
        .expect("the exec was reported");
    let _ = Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status();
    let _ = tool.wait();
    assert!(line.starts_with("events: "), "{line}");
    assert!(line.contains("comm=\"echo\""), "{line}");
    assert!(line.contains("args_count=2"), "{line}");
    assert!(line.contains("args=\"/bin/echo\""), "{line}");
}
