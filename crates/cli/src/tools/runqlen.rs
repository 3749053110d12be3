//! `bpfkit runqlen`: how many tasks wait for a CPU, sampled by a perf event
//! on every CPU, as a histogram.

use std::time::Duration;

use serde::Serialize;

use bpfkit::maps::Array;

use super::skel::runqlen::{types::runqlen_hist, RunqlenSkel};
use super::{clock_time, hist, report_periodically, Loaded, Output, StopSignal};

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

/// The histogram of `cpu` (or of all, at index 0), emptied.
fn take(hists: &Array<&bpfkit::Map, runqlen_hist>, cpu: u32) -> Vec<u64> {
    let slots = hists.get(cpu).map(|h| h.slots).unwrap_or_default();
    let _ = hists.set(cpu, &runqlen_hist { slots: [0; 32] });
    slots.to_vec()
}

fn print(
    out: &mut Output,
    map: &Array<&bpfkit::Map, runqlen_hist>,
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
    let mut open = RunqlenSkel::open();
    open.rodata.targ_per_cpu = args.per_cpu as u32;
    let mut skel = open.load()?;
    let config = bpfkit::PerfEventConfig::cpu_clock(args.frequency);
    let links = skel.runqlen_sample()?.attach_all_cpus(&config)?;
    let mut tool = Loaded::new(skel.ebpf);
    tool.links = links;
    let cpus = bpfkit::online_cpus();
    let map = Array::<_, runqlen_hist>::new(tool.map("hists")?)?;
    let mut out = Output::new(args.json);
    out.header("Sampling run queue length... Hit Ctrl-C to end.")?;
    report_periodically(&stop, args.interval, args.count, || {
        print(&mut out, &map, &args, &cpus)
    })?;
    drop(tool);
    Ok(())
}
