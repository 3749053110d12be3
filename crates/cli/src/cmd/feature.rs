//! `bpfkit feature`: what this kernel and this process can do with BPF.

use serde::Serialize;

/// Show what this kernel supports and whether this process may use it.
#[derive(clap::Args)]
pub struct Args {
    /// JSON output.
    #[arg(short = 'j', long)]
    json: bool,
}

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

/// Prints the features.
pub fn run(args: Args) -> anyhow::Result<()> {
    let features = probe();
    if args.json {
        outln!("{}", serde_json::to_string(&features)?);
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
