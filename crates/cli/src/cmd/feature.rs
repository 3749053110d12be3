//! `bpfkit feature`: what this kernel and this process can do with BPF.

use serde::Serialize;

/// Show what this kernel supports and whether this process may use it.
#[derive(clap::Args)]
pub struct Args {
    /// JSON output.
    #[arg(short = 'j', long)]
    json: bool,
    /// Also list the helper ids programs of this type may call (e.g.
    /// `kprobe`, `xdp`), probed one by one.
    #[arg(long, value_name = "PROGRAM_TYPE")]
    helpers: Option<String>,
}

/// Highest helper id probed (the kernel has about 210).
const MAX_HELPER: i32 = 240;

#[derive(Serialize)]
struct Feature {
    name: &'static str,
    available: bool,
    detail: String,
}

fn probe() -> Vec<Feature> {
    let bpf = bpfkit_kernel::check_bpf_access();
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux");
    let tracefs = bpfkit_kernel::fs::tracefs();
    let kprobe = bpfkit_kernel::link::kprobe_unavailable_reason();
    vec![
        Feature {
            name: "bpf_syscall",
            available: bpf.is_ok(),
            detail: bpf
                .err()
                .unwrap_or_else(|| "this process can create maps and load programs".into()),
        },
        Feature {
            name: "vmlinux_btf",
            available: btf.exists(),
            detail: if btf.exists() {
                "CO-RE relocations resolve against /sys/kernel/btf/vmlinux".into()
            } else {
                "no /sys/kernel/btf/vmlinux: CO-RE needs a BTF file (--btf)".into()
            },
        },
        Feature {
            name: "tracefs",
            available: tracefs.is_ok(),
            detail: match tracefs {
                Ok(p) => format!("tracepoints under {}", p.display()),
                Err(e) => e.to_string(),
            },
        },
        Feature {
            name: "kprobes",
            available: kprobe.is_none(),
            detail: kprobe.unwrap_or_else(|| "kprobe PMU or kprobe_events present".into()),
        },
        Feature {
            name: "possible_cpus",
            available: true,
            detail: bpfkit_kernel::fs::possible_cpus().to_string(),
        },
    ]
}

fn names<T: Copy>(
    all: &[(T, bool)],
    ok: bool,
    name: impl Fn(T) -> &'static str,
) -> Vec<&'static str> {
    all.iter()
        .filter(|(_, y)| *y == ok)
        .map(|(t, _)| name(*t))
        .collect()
}

/// Program types, map types and attach kinds, when bpf() is usable.
fn kinds(features: &mut Vec<Feature>) -> Option<serde_json::Value> {
    use bpfkit_kernel::features;
    let report = features::report().ok()?;
    features.push(Feature {
        name: "uprobes",
        available: features::uprobe_pmu(),
        detail: "uprobe PMU (/sys/bus/event_source/devices/uprobe)".into(),
    });
    for (name, available, what) in [
        (
            "fentry",
            report.fentry,
            "BPF trampolines: fentry/fexit/fmod_ret/LSM programs",
        ),
        (
            "tcx",
            report.tcx,
            "tcx links for TC programs (else clsact + cls_bpf via netlink)",
        ),
        (
            "xdp_link",
            report.xdp_link,
            "XDP links (else netlink attachment)",
        ),
    ] {
        features.push(Feature {
            name,
            available,
            detail: what.into(),
        });
    }
    let prog_yes = names(&report.program_types, true, |t| t.name());
    let prog_no = names(&report.program_types, false, |t| t.name());
    let map_yes = names(&report.map_types, true, |t| t.name());
    let map_no = names(&report.map_types, false, |t| t.name());
    features.push(Feature {
        name: "prog_types",
        available: !prog_yes.is_empty(),
        detail: format!(
            "{} (refused: {})",
            prog_yes.join(" "),
            none_if_empty(&prog_no)
        ),
    });
    features.push(Feature {
        name: "map_types",
        available: !map_yes.is_empty(),
        detail: format!(
            "{} (refused: {})",
            map_yes.join(" "),
            none_if_empty(&map_no)
        ),
    });
    Some(serde_json::json!({
        "program_types": prog_yes, "program_types_refused": prog_no,
        "map_types": map_yes, "map_types_refused": map_no,
    }))
}

fn none_if_empty(v: &[&str]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

/// Prints the features.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut features = probe();
    let helper_type = match &args.helpers {
        Some(name) => Some(bpfkit_abi::ProgramType::from_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "--helpers: `{name}` is not a program type (kprobe, xdp, sched_cls, ...)"
            )
        })?),
        None => None,
    };
    let bpf_ok = features.first().is_some_and(|f| f.available);
    let kinds = if bpf_ok { kinds(&mut features) } else { None };
    if let Some(t) = helper_type.filter(|_| bpf_ok) {
        let ids: Vec<String> = (1..=MAX_HELPER)
            .filter(|&h| bpfkit_kernel::features::helper(t, h).unwrap_or(false))
            .map(|h| h.to_string())
            .collect();
        features.push(Feature {
            name: "helpers",
            available: !ids.is_empty(),
            detail: format!("{} for {}: {}", ids.len(), t.name(), ids.join(" ")),
        });
    }
    if args.json {
        outln!(
            "{}",
            serde_json::json!({"features": features, "kinds": kinds})
        );
    } else {
        for f in &features {
            outln!(
                "{:<14} {:<4} {}",
                f.name,
                if f.available { "yes" } else { "no" },
                f.detail
            );
        }
    }
    Ok(())
}
