//! `bpfkit runqlen`: how many tasks wait for a CPU, sampled by a perf event
//! on every CPU, as a histogram.

use std::time::Duration;

use serde::Serialize;

use super::{clock_time, hist, load_unattached, report_periodically, Output, StopSignal};

/// The compiled BPF side (bpf/runqlen.bpf.c).
const OBJECT: &[u8] = include_bytes!("../../../../bpf/obj/runqlen.bpf.o");
/// Slots per histogram (`RUNQLEN_SLOTS` in bpf/include/runqlen.h).
const SLOTS: usize = 32;

/// Sample the run-queue length of every CPU and print its histogram.
#[derive(clap::Args)]
pub struct Args {
    /// Samples per second on each CPU.
    #[arg(short = 'F', long = "frequency", default_value_t = 99)]
    frequency: u64,
    /// One histogram per CPU.
    #[arg(short = 'C', long = "cpus")]
    per_cpu: bool,
    /// Print a timestamp with each histogram.
    #[arg(short = 'T', long)]
    timestamp: bool,
    /// Print and reset every this many seconds (default: once, at the end).
    #[arg(value_parser = crate::seconds::interval)]
    interval: Option<Duration>,
    /// Stop after this many intervals.
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per histogram.
    #[arg(long)]
    json: bool,
}

/// One histogram as JSON.
#[derive(Debug, Serialize)]
pub struct Histogram {
    /// When it was printed.
    pub time: String,
    /// The CPU (with `-C`), or none for all CPUs together.
    pub cpu: Option<u32>,
    /// What the buckets count.
    pub unit: &'static str,
    /// `slots[n]` samples found `n` tasks waiting (the last slot: that many or more).
    pub slots: Vec<u64>,
    /// Samples taken.
    pub samples: u64,
}

fn take(map: &bpfkit_kernel::KernelMap, cpu: u32) -> Vec<u64> {
    let key = cpu.to_ne_bytes();
    let slots = map
        .lookup(&key)
        .ok()
        .flatten()
        .map(|v| {
            v.chunks_exact(8)
                .take(SLOTS)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        })
        .unwrap_or_else(|| vec![0; SLOTS]);
    let _ = map.update(&key, &[0u8; SLOTS * 8], 0);
    slots
}

fn print(
    out: &mut Output,
    map: &bpfkit_kernel::KernelMap,
    args: &Args,
    cpus: &[usize],
) -> std::io::Result<()> {
    let time = clock_time();
    if args.timestamp {
        out.text(&format!("{time}\n"))?;
    }
    let rows: Vec<Option<u32>> = if args.per_cpu {
        cpus.iter().map(|&c| Some(c as u32)).collect()
    } else {
        vec![None]
    };
    for cpu in rows {
        let slots = take(map, cpu.unwrap_or(0));
        if let Some(c) = cpu {
            out.text(&format!("\ncpu = {c}\n"))?;
        }
        out.text(&hist::format_linear(&slots, "runqlen"))?;
        let h = Histogram {
            time: time.clone(),
            cpu,
            unit: "runqlen",
            samples: slots.iter().sum(),
            slots,
        };
        if out.is_json() {
            out.record("", &h)?;
        }
    }
    out.text("\n")
}

/// The kernel refuses sampling faster than `kernel.perf_event_max_sample_rate`
/// with a bare EINVAL; say so before trying.
fn check_sample_rate(hz: u64) -> anyhow::Result<()> {
    const KNOB: &str = "/proc/sys/kernel/perf_event_max_sample_rate";
    let Some(max) = std::fs::read_to_string(KNOB)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    if hz > max {
        anyhow::bail!(
            "runqlen: -F {hz} is above this kernel's perf_event_max_sample_rate ({max} Hz, \
             {KNOB}); choose at most {max}, or raise the limit with \
             `sysctl kernel.perf_event_max_sample_rate={hz}`"
        );
    }
    Ok(())
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.frequency == 0 {
        anyhow::bail!("runqlen: the sampling frequency (-F) must be at least 1 Hz");
    }
    check_sample_rate(args.frequency)?;
    let stop = StopSignal::install(args.duration)?;
    let mut tool = load_unattached(
        "runqlen",
        OBJECT,
        &[("targ_per_cpu", (args.per_cpu as u32).to_ne_bytes().to_vec())],
    )?;
    let prog = &tool.collection.programs["runqlen_sample"];
    let config = bpfkit_kernel::link::PerfEventConfig::cpu_clock(args.frequency);
    tool.links = bpfkit_kernel::link::attach_perf_event_all_cpus(prog, &config)?;
    let cpus = bpfkit_kernel::fs::online_cpus();
    let map = &tool.collection.maps["hists"];
    let mut out = Output::new(args.json);
    out.header("Sampling run queue length... Hit Ctrl-C to end.")?;
    report_periodically(&stop, args.interval, args.count, || {
        print(&mut out, map, &args, &cpus)
    })?;
    drop(tool);
    Ok(())
}
