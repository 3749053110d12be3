//! `bpfkit opensnoop`: trace open() and openat() calls.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::skel::opensnoop::{types::opensnoop_event, OpensnoopSkel};
use super::{c_str, clock_time, record, ring_size, stream_events, Loaded, Output, StopSignal};

/// Trace file opens: TIME PID COMM FD ERR [FLAGS] PATH.
#[derive(clap::Args)]
pub struct Args {
    /// Only failed opens.
    #[arg(short = 'x', long)]
    failed: bool,
    /// Only this process id.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only this user id.
    #[arg(short = 'u', long)]
    uid: Option<u32>,
    /// Only commands whose name matches this regular expression.
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// Show the open flags (octal) too.
    #[arg(short = 'e', long)]
    extended: bool,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
}

/// One open, as printed.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct OpenEvent {
    /// Wall-clock time.
    pub time: String,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// User id.
    pub uid: u32,
    /// Command name.
    pub comm: String,
    /// File descriptor, or -1 on failure.
    pub fd: i32,
    /// errno on failure, else 0.
    pub err: i32,
    /// Open flags.
    pub flags: u32,
    /// The path as passed.
    pub path: String,
}

/// Decodes a `struct opensnoop_event`.
pub fn decode(rec: &[u8], time: String) -> Option<OpenEvent> {
    let e: opensnoop_event = record(rec)?;
    Some(OpenEvent {
        time,
        pid: e.pid,
        tid: e.tid,
        uid: e.uid,
        comm: c_str(&e.comm),
        fd: if e.ret >= 0 { e.ret } else { -1 },
        err: if e.ret < 0 { -e.ret } else { 0 },
        flags: e.flags,
        path: c_str(&e.path),
    })
}

fn header(extended: bool) -> String {
    if extended {
        format!(
            "{:<8} {:<7} {:<16} {:>4} {:>3} {:>8} {}",
            "TIME", "PID", "COMM", "FD", "ERR", "FLAGS", "PATH"
        )
    } else {
        format!(
            "{:<8} {:<7} {:<16} {:>4} {:>3} {}",
            "TIME", "PID", "COMM", "FD", "ERR", "PATH"
        )
    }
}

/// The text line for an event.
pub fn format_line(e: &OpenEvent, extended: bool) -> String {
    if extended {
        format!(
            "{:<8} {:<7} {:<16} {:>4} {:>3} {:>08o} {}",
            e.time, e.pid, e.comm, e.fd, e.err, e.flags, e.path
        )
    } else {
        format!(
            "{:<8} {:<7} {:<16} {:>4} {:>3} {}",
            e.time, e.pid, e.comm, e.fd, e.err, e.path
        )
    }
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let name_re = args
        .name
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("-n")?;
    let mut open = OpensnoopSkel::open();
    open.rodata.targ_pid = args.pid.unwrap_or(0);
    open.rodata.targ_uid = args.uid.unwrap_or(u32::MAX);
    open.rodata.failed_only = args.failed as u32;
    ring_size(&mut open.loader, "events")?;
    let tool = Loaded::attached("opensnoop", open.load()?.ebpf)?;
    let mut out = Output::new(args.json);
    out.header(&header(args.extended))?;
    stream_events("opensnoop", tool, &stop, &mut out, |rec| {
        let e = decode(rec, clock_time())?;
        if name_re.as_ref().is_some_and(|re| !re.is_match(&e.comm)) {
            return None;
        }
        Some((format_line(&e, args.extended), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_opens_show_errno_and_no_fd() {
        let mut ev: opensnoop_event = crate::tools::zeroed();
        ev.pid = 7;
        ev.ret = -2;
        ev.flags = 0o100;
        ev.comm[..3].copy_from_slice(b"cat");
        ev.path[..5].copy_from_slice(b"/nope");
        let e = decode(bpfkit::kernel::map::bytes_of(&ev), "10:00:00".into()).unwrap();
        assert_eq!((e.fd, e.err), (-1, 2));
        assert_eq!(
            format_line(&e, false),
            "10:00:00 7       cat                -1   2 /nope"
        );
        assert_eq!(
            format_line(&e, true),
            "10:00:00 7       cat                -1   2 00000100 /nope"
        );
    }
}
