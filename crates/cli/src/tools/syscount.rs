//! `bpfkit syscount`: count system calls, by call or by process, with the time spent.

use std::time::Duration;

use serde::Serialize;

use bpfkit::maps::HashMap;

use super::skel::syscount::{types::syscount_value, SyscountSkel};
use super::{c_str, clock_time, report_periodically, syscall_table, Loaded, Output, StopSignal};

/// Count system calls: the top N by count, per interval or at the end.
#[derive(clap::Args)]
pub struct Args {
    /// Only this process id.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Count by process instead of by system call.
    #[arg(short = 'P', long)]
    process: bool,
    /// Show the time spent in the calls (microseconds).
    #[arg(short = 'L', long)]
    latency: bool,
    /// How many rows to print.
    #[arg(short = 'T', long, default_value_t = 10)]
    top: usize,
    /// Print and reset every this many seconds.
    #[arg(short = 'i', long, value_parser = crate::seconds::interval)]
    interval: Option<Duration>,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per row.
    #[arg(long)]
    json: bool,
}

/// One row of the summary.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Row {
    /// When the interval ended.
    pub time: String,
    /// System call name (by-syscall mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// Process id and command (by-process mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Command of the process (by-process mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Calls.
    pub count: u64,
    /// Microseconds spent in them.
    pub total_us: u64,
}

fn drain(map: &bpfkit::Map, by_process: bool, time: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let Ok(counts) = HashMap::<_, u32, syscount_value>::new(map) else {
        return rows;
    };
    for (id, v) in counts.entries().unwrap_or_default() {
        let _ = counts.remove(&id);
        rows.push(Row {
            time: time.to_string(),
            syscall: (!by_process).then(|| {
                syscall_table::name(id)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("[{id}]"))
            }),
            pid: by_process.then_some(id),
            comm: by_process.then(|| c_str(&v.comm)),
            count: v.count,
            total_us: v.total_ns / 1000,
        });
    }
    rows.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.syscall.cmp(&b.syscall))
            .then(a.pid.cmp(&b.pid))
    });
    rows
}

fn print(out: &mut Output, rows: &[Row], args: &Args) -> std::io::Result<()> {
    out.text(&format!("[{}]\n", clock_time()))?;
    let first = if args.process {
        format!("{:<7} {:<16}", "PID", "COMM")
    } else {
        format!("{:<22}", "SYSCALL")
    };
    out.text(&format!(
        "{first} {:>8}{}\n",
        "COUNT",
        if args.latency {
            format!(" {:>12}", "TIME (us)")
        } else {
            String::new()
        }
    ))?;
    for r in rows.iter().take(args.top) {
        let first = match (&r.syscall, r.pid) {
            (Some(s), _) => format!("{s:<22}"),
            (None, Some(p)) => format!("{p:<7} {:<16}", r.comm.as_deref().unwrap_or("")),
            _ => String::new(),
        };
        let lat = if args.latency {
            format!(" {:>12}", r.total_us)
        } else {
            String::new()
        };
        out.record(&format!("{first} {:>8}{lat}", r.count), r)?;
    }
    out.text("\n")
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let mut open = SyscountSkel::open();
    open.rodata.targ_pid = args.pid.unwrap_or(0);
    open.rodata.by_process = args.process as u32;
    let tool = Loaded::attached("syscount", open.load()?.ebpf)?;
    let counts = tool.map("counts")?;
    let mut out = Output::new(args.json);
    out.header("Tracing syscalls... Ctrl-C to end.")?;
    report_periodically(&stop, args.interval, None, || {
        let rows = drain(counts, args.process, &clock_time());
        print(&mut out, &rows, &args)
    })?;
    drop(tool);
    Ok(())
}
