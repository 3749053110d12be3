//! `bpfkit memleak`: outstanding allocations older than a threshold,
//! grouped by where they were made. Kernel mode follows the kmem
//! tracepoints; with `-p PID`, uprobes on that process's libc allocator.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use bpfkit::maps::HashMap as BpfHashMap;
use bpfkit::{KernelSymbols, ProcessSymbols, RawMap};

use super::skel::memleak::{types::memleak_alloc, MemleakSkel};
use super::{clock_time, percpu_sum, report_lost, Loaded, Output, StopSignal};

/// Show outstanding memory allocations and where they were made.
#[derive(clap::Args)]
pub struct Args {
    /// Trace this process's libc allocator (malloc, calloc, realloc, free)
    /// instead of the kernel's.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only allocations older than this many seconds.
    #[arg(short = 'o', long, default_value = "0.5", value_parser = crate::seconds::duration)]
    older: Duration,
    /// Print every this many seconds.
    #[arg(default_value = "5", value_parser = crate::seconds::interval)]
    interval: Duration,
    /// Stop after this many reports.
    count: Option<u64>,
    /// How many call sites or stacks to show, most bytes first.
    #[arg(short = 'T', long, default_value_t = 10)]
    top: usize,
    /// Ignore allocations smaller than this many bytes.
    #[arg(short = 'z', long, default_value_t = 0)]
    min_size: u64,
    /// Ignore allocations larger than this many bytes.
    #[arg(short = 'Z', long, default_value_t = u64::MAX)]
    max_size: u64,
    /// Stop after this many seconds (and print a last report).
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per call site or stack.
    #[arg(long)]
    json: bool,
}

/// Outstanding allocations from one place.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Site {
    /// When the report was made.
    pub time: String,
    /// Bytes outstanding.
    pub bytes: u64,
    /// Allocations outstanding.
    pub allocations: u64,
    /// Where: the call site (kernel mode) or the user stack, innermost first.
    pub stack: Vec<String>,
}

fn stack(traces: &bpfkit::Map, id: i32) -> Vec<u64> {
    if id < 0 {
        return Vec::new();
    }
    traces
        .lookup(&(id as u32).to_ne_bytes())
        .ok()
        .flatten()
        .map(|v| {
            v.chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .take_while(|&ip| ip != 0)
                .collect()
        })
        .unwrap_or_default()
}

/// Groups the outstanding allocations older than `older_ns` by place.
fn report(
    tool: &Loaded,
    args: &Args,
    older_ns: u64,
    user: &mut Option<ProcessSymbols>,
) -> Vec<Site> {
    let (Ok(allocs), Ok(traces)) = (tool.map("allocs"), tool.map("stack_traces")) else {
        return Vec::new();
    };
    let now = bpfkit::ktime_ns();
    // Key: kernel call site, or user stack id.
    let mut groups: HashMap<(u64, i32), (u64, u64)> = HashMap::new();
    let entries = BpfHashMap::<_, u64, memleak_alloc>::new(allocs)
        .and_then(|m| m.entries())
        .unwrap_or_default();
    for (_, a) in entries {
        if now.saturating_sub(a.ts_ns) >= older_ns {
            let g = groups.entry((a.call_site, a.stack_id)).or_default();
            g.0 += a.size;
            g.1 += 1;
        }
    }
    let mut sorted: Vec<_> = groups.into_iter().collect();
    sorted.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    sorted.truncate(args.top);
    let time = clock_time();
    let kernel = if args.pid.is_none() {
        KernelSymbols::load().unwrap_or_default()
    } else {
        KernelSymbols::default()
    };
    sorted
        .into_iter()
        .map(|((call_site, stack_id), (bytes, allocations))| {
            let frames = match user.as_mut() {
                Some(syms) => stack(traces, stack_id)
                    .into_iter()
                    .map(|ip| syms.describe(ip))
                    .collect(),
                None => {
                    let mut f = vec![kernel.describe(call_site)];
                    f.extend(
                        stack(traces, stack_id)
                            .into_iter()
                            .map(|ip| kernel.describe(ip)),
                    );
                    f
                }
            };
            Site {
                time: time.clone(),
                bytes,
                allocations,
                stack: frames,
            }
        })
        .collect()
}

fn print(out: &mut Output, sites: &[Site], args: &Args) -> std::io::Result<()> {
    let what = if args.pid.is_some() {
        "stacks"
    } else {
        "call sites"
    };
    out.text(&format!(
        "[{}] Top {} {what} with outstanding allocations:\n",
        clock_time(),
        args.top
    ))?;
    for s in sites {
        let mut text = format!(
            "\t{} bytes in {} allocations from {}",
            s.bytes,
            s.allocations,
            if args.pid.is_some() {
                "stack"
            } else {
                "call site"
            }
        );
        for f in &s.stack {
            text.push_str(&format!("\n\t\t{f}"));
        }
        out.record(&text, s)?;
    }
    Ok(())
}

/// Kernel mode: the kmem tracepoints. With a pid: uprobes on the libc that
/// process uses (the tracepoint programs are not loaded).
fn attach(skel: &mut MemleakSkel, pid: Option<u32>) -> anyhow::Result<Vec<bpfkit::Link>> {
    let Some(pid) = pid else {
        return Ok(skel.attach()?);
    };
    let mut links = Vec::new();
    for (prog, symbol) in [
        ("malloc_enter", "malloc"),
        ("malloc_exit", "malloc"),
        ("calloc_enter", "calloc"),
        ("calloc_exit", "calloc"),
        ("realloc_enter", "realloc"),
        ("realloc_exit", "realloc"),
        ("free_enter", "free"),
    ] {
        let probe: &mut bpfkit::UProbe = skel.ebpf.program_mut(prog)?.try_into()?;
        links.push(
            probe
                .attach("libc.so.6", symbol, Some(pid))
                .with_context(|| {
                    format!("memleak: probing {symbol} in the libc of process {pid}")
                })?,
        );
    }
    Ok(links)
}

fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(pid) = args.pid {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            anyhow::bail!("memleak: no process with pid {pid}");
        }
    }
    let stop = StopSignal::install(args.duration)?;
    let mut open = MemleakSkel::open();
    open.rodata.min_size = args.min_size;
    open.rodata.max_size = args.max_size;
    // Only the programs of the mode chosen are loaded.
    let user_mode = [
        "malloc_enter",
        "malloc_exit",
        "calloc_enter",
        "calloc_exit",
        "realloc_enter",
        "realloc_exit",
        "free_enter",
    ];
    let kernel_mode = [
        "memleak_kmalloc",
        "memleak_kmem_cache_alloc",
        "memleak_kfree",
        "memleak_kmem_cache_free",
    ];
    let off: &[&str] = if args.pid.is_some() {
        &kernel_mode
    } else {
        &user_mode
    };
    for name in off {
        open.loader.autoload(name, false);
    }
    let mut skel = open.load()?;
    let links = attach(&mut skel, args.pid)?;
    let mut tool = Loaded::new(skel.ebpf);
    tool.links = links;
    let mut out = Output::new(args.json);
    // The target's mappings, read while it lives and before the header says
    // the tool is ready, so that a report after the target exits (even at
    // once) still names its functions.
    let mut user = args.pid.map(ProcessSymbols::new);
    out.header(&match args.pid {
        Some(pid) => format!("Attaching to pid {pid}, Ctrl-C to quit."),
        None => "Attaching to kernel allocators, Ctrl-C to quit.".to_string(),
    })?;
    let older_ns = u64::try_from(args.older.as_nanos()).unwrap_or(u64::MAX);
    let interval = args.interval;
    let mut next = Instant::now() + interval;
    let mut reports = 0u64;
    let mut mappings_read = Instant::now();
    loop {
        std::thread::sleep(stop.remaining(Duration::from_millis(50)));
        let target_gone = args.pid.is_some_and(exited);
        if let (Some(pid), Some(syms), false) = (args.pid, user.as_mut(), target_gone) {
            // Twice a second, so that mappings are current when the process
            // exits (an exec or dlopen changes them).
            if mappings_read.elapsed() >= Duration::from_millis(500) {
                syms.refresh(pid);
                mappings_read = Instant::now();
            }
        }
        if target_gone {
            eprintln!(
                "memleak: process {} exited; final report",
                args.pid.unwrap_or_default()
            );
        }
        let stopping = stop.should_stop() || target_gone;
        if stopping || Instant::now() >= next {
            let sites = report(&tool, &args, older_ns, &mut user);
            if let Err(e) = print(&mut out, &sites, &args) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    break;
                }
                return Err(e.into());
            }
            reports += 1;
            next += interval;
            if args.count.is_some_and(|c| reports >= c) {
                break;
            }
        }
        if stopping {
            break;
        }
    }
    report_lost("memleak", percpu_sum(tool.map("drops")?));
    Ok(())
}
