//! `bpfkit biolatency`: block I/O latency as a power-of-two histogram,
//! overall or per disk, from the block_rq raw tracepoints.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::hist::{format_log2, log2_buckets, Bucket};
use super::skel::biolatency::types::{biolatency_hist, biolatency_key};
use super::skel::biolatency::BiolatencySkel;
use super::{clock_time, report_periodically, Loaded, Output, StopSignal};

/// The histograms by disk, as the BPF side keeps them.
type Hists<'a> = bpfkit::maps::HashMap<&'a bpfkit::Map, biolatency_key, biolatency_hist>;

/// Summarize block device I/O latency as a histogram.
#[derive(clap::Args)]
pub struct Args {
    /// One histogram per disk.
    #[arg(short = 'D', long = "disks")]
    per_disk: bool,
    /// Milliseconds instead of microseconds.
    #[arg(short = 'm', long)]
    milliseconds: bool,
    /// Include the time queued in the I/O scheduler.
    #[arg(short = 'Q', long)]
    queued: bool,
    /// Only this disk (a name under /sys/block, e.g. `vda`).
    #[arg(long)]
    disk: Option<String>,
    /// Print a timestamp with each histogram.
    #[arg(short = 'T', long)]
    timestamp: bool,
    /// Print every this many seconds (default: once, at the end).
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
    /// The disk with `-D`, else none.
    pub disk: Option<String>,
    /// `usecs` or `msecs`.
    pub unit: &'static str,
    /// I/Os measured.
    pub total: u64,
    /// The non-empty range of power-of-two buckets.
    pub buckets: Vec<Bucket>,
}

/// Block devices by kernel `dev_t` (`major << 20 | minor`), from sysfs.
fn disks() -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(dev) = std::fs::read_to_string(entry.path().join("dev")) else {
            continue;
        };
        if let Some((major, minor)) = dev.trim().split_once(':') {
            if let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) {
                out.insert(major << 20 | minor, name);
            }
        }
    }
    out
}

/// Every disk's histogram, emptied.
fn take(hists: &Hists<'_>) -> Vec<(u32, Vec<u64>)> {
    let mut out: Vec<(u32, Vec<u64>)> = hists
        .entries()
        .unwrap_or_default()
        .into_iter()
        .map(|(key, h)| {
            let _ = hists.remove(&key);
            (key.dev, h.slots.to_vec())
        })
        .collect();
    out.sort_by_key(|(dev, _)| *dev);
    out
}

fn print(
    out: &mut Output,
    map: &Hists<'_>,
    args: &Args,
    names: &HashMap<u32, String>,
) -> std::io::Result<()> {
    let time = clock_time();
    if args.timestamp {
        out.text(&format!("{time}\n"))?;
    }
    let unit = if args.milliseconds { "msecs" } else { "usecs" };
    for (dev, slots) in take(map) {
        let disk = args.per_disk.then(|| {
            names
                .get(&dev)
                .cloned()
                .unwrap_or_else(|| format!("{}:{}", dev >> 20, dev & 0xfffff))
        });
        if let Some(d) = &disk {
            out.text(&format!("\ndisk = {d}\n"))?;
        }
        out.text(&format_log2(&slots, unit))?;
        if out.is_json() {
            let h = Histogram {
                time: time.clone(),
                disk,
                unit,
                total: slots.iter().sum(),
                buckets: log2_buckets(&slots),
            };
            out.record("", &h)?;
        }
    }
    out.text("\n")
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let names = disks();
    let dev = match &args.disk {
        None => 0,
        Some(d) => *names
            .iter()
            .find(|(_, n)| *n == d)
            .map(|(dev, _)| dev)
            .ok_or_else(|| {
                anyhow::anyhow!("biolatency: no block device named `{d}` in /sys/class/block")
            })?,
    };
    let stop = StopSignal::install(args.duration)?;
    let mut open = BiolatencySkel::open();
    open.rodata.targ_per_disk = args.per_disk as u32;
    open.rodata.targ_ms = args.milliseconds as u32;
    open.rodata.targ_queued = args.queued as u32;
    open.rodata.targ_dev = dev;
    let tool = Loaded::attached("biolatency", open.load()?.ebpf)?;
    let map = Hists::new(tool.map("hists")?)?;
    let mut out = Output::new(args.json);
    out.header("Tracing block device I/O... Hit Ctrl-C to end.")?;
    report_periodically(&stop, args.interval, args.count, || {
        print(&mut out, &map, &args, &names)
    })?;
    drop(tool);
    Ok(())
}
