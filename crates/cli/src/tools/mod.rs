//! The tracing tools (`bpfkit execsnoop`, ...) and what they share: stopping
//! on Ctrl-C, SIGTERM or a duration, and printing text or JSON lines.

pub mod biolatency;
pub mod execsnoop;
pub mod hist;
pub mod httpsnoop;
pub mod memleak;
pub mod net;
pub mod opensnoop;
pub mod runqlen;
pub mod skel;
pub mod solisten;
pub mod syscall_table;
pub mod syscount;
pub mod tcplife;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Tells a tool's main loop when to stop: on SIGINT, SIGTERM or when its
/// duration has passed. Dropping the tool's links then detaches everything.
#[derive(Clone)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl StopSignal {
    /// Installs handlers for SIGINT and SIGTERM; `duration` adds a deadline.
    pub fn install(duration: Option<Duration>) -> anyhow::Result<StopSignal> {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
        }
        Ok(StopSignal {
            flag,
            deadline: duration.map(|d| Instant::now() + d),
        })
    }

    /// Whether the tool should stop now.
    pub fn should_stop(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// How long the tool may still wait, capped at `max`.
    pub fn remaining(&self, max: Duration) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(max),
            None => max,
        }
    }
}

/// Where a tool's records go: aligned text columns, or one JSON object per line.
pub struct Output {
    json: bool,
    out: std::io::StdoutLock<'static>,
}

impl Output {
    /// Text output unless `json`.
    pub fn new(json: bool) -> Output {
        Output {
            json,
            out: std::io::stdout().lock(),
        }
    }

    /// Whether records are printed as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints the header line and flushes, so users and tests see at once
    /// that the tool is attached. With JSON output it goes to stderr, which
    /// keeps stdout one JSON object per line.
    pub fn header(&mut self, line: &str) -> std::io::Result<()> {
        if !self.json {
            writeln!(self.out, "{line}")?;
        } else if !line.is_empty() {
            eprintln!("{line}");
        }
        self.out.flush()
    }

    /// Prints one record: `text` in text mode, `record` as a JSON line otherwise.
    pub fn record<T: Serialize>(&mut self, text: &str, record: &T) -> std::io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, record)?;
            writeln!(self.out)?;
        } else {
            writeln!(self.out, "{text}")?;
        }
        self.out.flush()
    }

    /// Prints free text in text mode (summaries, histograms), nothing in JSON mode.
    pub fn text(&mut self, text: &str) -> std::io::Result<()> {
        if !self.json {
            write!(self.out, "{text}")?;
            self.out.flush()?;
        }
        Ok(())
    }
}

/// Runs `report` every `interval` (or once, at the end, without one) until
/// stopped or `count` reports are made; the last report comes at the stop.
/// A closed stdout ends the run quietly.
pub fn report_periodically(
    stop: &StopSignal,
    interval: Option<Duration>,
    count: Option<u64>,
    mut report: impl FnMut() -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut next = interval.map(|i| Instant::now() + i);
    let mut made = 0u64;
    loop {
        std::thread::sleep(stop.remaining(Duration::from_millis(50)));
        let stopping = stop.should_stop();
        if stopping || next.is_some_and(|n| Instant::now() >= n) {
            match report() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other?,
            }
            made += 1;
            if let (Some(n), Some(i)) = (next.as_mut(), interval) {
                *n += i;
            }
            if count.is_some_and(|c| made >= c) {
                return Ok(());
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// The local wall-clock time as `HH:MM:SS`, the way bcc's tools print it.
pub fn clock_time() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Reports lost events on stderr, so that nothing is lost silently.
pub fn report_lost(tool: &str, lost: u64) {
    if lost > 0 {
        eprintln!("{tool}: {lost} events lost (ring buffer full or reserve failed)");
    }
}

/// A tool's BPF side, loaded and attached. Dropping it detaches everything.
pub struct Loaded {
    /// The maps and programs.
    pub bpf: bpfkit::Ebpf,
    /// Its attachments; dropping them detaches.
    pub links: Vec<bpfkit::Link>,
}

impl Loaded {
    /// A loaded object, attached to nothing yet: for tools whose hooks
    /// (perf events, uprobes in a chosen process) come from their arguments.
    pub fn new(bpf: bpfkit::Ebpf) -> Loaded {
        Loaded {
            bpf,
            links: Vec::new(),
        }
    }

    /// A loaded object with every program attached where its section says;
    /// any program that cannot attach is an error.
    pub fn attached(name: &str, bpf: bpfkit::Ebpf) -> anyhow::Result<Loaded> {
        let mut tool = Loaded::new(bpf);
        tool.attach_all(name)?;
        Ok(tool)
    }

    /// Attaches every program by its section name.
    pub fn attach_all(&mut self, name: &str) -> anyhow::Result<()> {
        use anyhow::Context;
        let links = self
            .bpf
            .attach_all()
            .with_context(|| format!("{name}: attaching"))?;
        self.links.extend(links);
        Ok(())
    }

    /// Map `name` of the object.
    pub fn map(&self, name: &str) -> anyhow::Result<&bpfkit::Map> {
        Ok(self.bpf.map(name)?)
    }
}

/// Sizes the tool's event ring buffer `map` from `BPFKIT_RINGBUF_BYTES`
/// when that is set.
pub fn ring_size(loader: &mut bpfkit::EbpfLoader, map: &str) -> anyhow::Result<()> {
    if let Some(bytes) = ring_bytes_override()? {
        loader.set_max_entries(map, bytes);
    }
    Ok(())
}

/// `BPFKIT_RINGBUF_BYTES`: the size of the tools' event ring buffers, for
/// bursty workloads (larger) or for seeing loss accounting at work (one
/// page). A power of two, at least one page.
fn ring_bytes_override() -> anyhow::Result<Option<u32>> {
    let Ok(text) = std::env::var("BPFKIT_RINGBUF_BYTES") else {
        return Ok(None);
    };
    let page = 4096u64;
    // The kernel takes the size as the map's u32 max_entries, so 2 GiB is
    // the largest power of two it can be.
    let max = 1u64 << 31;
    match text.trim().parse::<u64>() {
        Ok(n) if n > max => anyhow::bail!(
            "BPFKIT_RINGBUF_BYTES={text}: more than the largest ring buffer the kernel can \
             make, {max} bytes (2 GiB)"
        ),
        Ok(n) if n >= page && n.is_power_of_two() => Ok(Some(n as u32)),
        _ => anyhow::bail!(
            "BPFKIT_RINGBUF_BYTES={text}: the ring size must be a power of two from {page} \
             bytes (a page) to {max} bytes (2 GiB)"
        ),
    }
}

/// The sum over CPUs of a per-CPU `u64` counter at index 0 (the tools' `drops`).
pub fn percpu_sum(map: &bpfkit::Map) -> u64 {
    bpfkit::maps::PerCpuArray::<_, u64>::new(map)
        .and_then(|a| a.get(0))
        .map(|v| v.iter().sum())
        .unwrap_or(0)
}

/// A record of type `T` from the front of `rec`; `None` when it is shorter.
pub fn record<T: bpfkit::Pod>(rec: &[u8]) -> Option<T> {
    bpfkit::kernel::map::from_bytes(rec.get(..std::mem::size_of::<T>())?)
}

/// A `T` of zero bytes (records for tests are built on one).
#[cfg(test)]
pub fn zeroed<T: bpfkit::Pod>() -> T {
    bpfkit::kernel::map::from_prefix(&[])
}

/// A C string from a fixed-size field.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Streams a tool's `events` ring buffer until it is told to stop: `format`
/// turns a record into its text line and JSON value, or `None` to skip it.
/// Reports the events the BPF side could not send (its `drops` counter) at the
/// end; a closed stdout (a pipe to `head`) ends the run quietly.
pub fn stream_events<E: Serialize>(
    name: &str,
    mut tool: Loaded,
    stop: &StopSignal,
    out: &mut Output,
    mut format: impl FnMut(&[u8]) -> Option<(String, E)>,
) -> anyhow::Result<()> {
    let mut reader = bpfkit::RingBuf::new(tool.bpf.take_map("events")?)?;
    let mut write_error = None;
    let mut emit = |rec: &[u8], write_error: &mut Option<std::io::Error>| {
        if let Some((text, event)) = format(rec) {
            if let Err(e) = out.record(&text, &event) {
                *write_error = Some(e);
            }
        }
    };
    while !stop.should_stop() && write_error.is_none() {
        reader.poll(stop.remaining(Duration::from_millis(100)), |rec| {
            emit(rec, &mut write_error)
        })?;
    }
    // What the kernel queued before the stop is delivered, not dropped.
    if write_error.is_none() {
        reader.consume(|rec| emit(rec, &mut write_error));
    }
    report_lost(name, percpu_sum(tool.map("drops")?));
    drop(tool);
    match write_error {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
