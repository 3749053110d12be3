//! `bpfkit execsnoop`: trace new processes (execve), with their arguments.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::skel::execsnoop::{types::execsnoop_event, ExecsnoopSkel};
use super::{c_str, clock_time, ring_size, stream_events, Loaded, Output, StopSignal};

/// Most arguments the BPF side captures (EXECSNOOP_MAX_ARGS).
const MAX_ARGS: u32 = 20;

/// Trace exec() calls: TIME PCOMM PID PPID UID RET ARGS.
#[derive(clap::Args)]
pub struct Args {
    /// Include failed exec()s.
    #[arg(short = 'x', long)]
    failed: bool,
    /// Only this user id.
    #[arg(short = 'u', long)]
    uid: Option<u32>,
    /// Only commands whose name matches this regular expression.
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// Only commands whose arguments match this regular expression.
    #[arg(short = 'l', long)]
    line: Option<String>,
    /// Only execs by this process or its children.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only processes in this cgroup v2 directory (or below it).
    #[arg(long)]
    cgroup: Option<std::path::PathBuf>,
    /// Arguments to capture (1..=20); longer command lines end with "...".
    #[arg(long, default_value_t = MAX_ARGS, value_parser = clap::value_parser!(u32).range(1..=20))]
    max_args: u32,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
}

/// One exec, as printed.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExecEvent {
    /// Wall-clock time.
    pub time: String,
    /// Command name after the exec.
    pub comm: String,
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// User id.
    pub uid: u32,
    /// Return value of execve (0, or -errno).
    pub ret: i32,
    /// Arguments, the first being the file executed.
    pub args: Vec<String>,
    /// More arguments were passed than captured.
    pub truncated: bool,
}

/// Decodes a `struct execsnoop_event` record.
pub fn decode(rec: &[u8], time: String) -> Option<ExecEvent> {
    // The program sends the fixed part and only the argument bytes used.
    let fixed = std::mem::offset_of!(execsnoop_event, args);
    if rec.len() < fixed {
        return None;
    }
    let e: execsnoop_event = bpfkit::kernel::map::from_prefix(rec);
    let args_size = (e.args_size as usize).min(rec.len() - fixed);
    let args: Vec<String> = e.args[..args_size.min(e.args.len())]
        .split(|&b| b == 0)
        .take(e.args_count as usize)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(ExecEvent {
        time,
        comm: c_str(&e.comm),
        pid: e.pid,
        ppid: e.ppid,
        uid: e.uid,
        ret: e.retval,
        args,
        truncated: e.truncated != 0,
    })
}

pub fn format_line(e: &ExecEvent) -> String {
    let mut args = e.args.join(" ");
    if e.truncated {
        args.push_str(" ...");
    }
    format!(
        "{:<8} {:<16} {:<7} {:<7} {:<6} {:>3} {}",
        e.time, e.comm, e.pid, e.ppid, e.uid, e.ret, args
    )
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
    let line_re = args
        .line
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("-l")?;
    // The cgroup directory is opened before loading, so a bad path fails fast.
    let cgroup_dir = args
        .cgroup
        .as_ref()
        .map(|p| std::fs::File::open(p).with_context(|| format!("--cgroup {}", p.display())))
        .transpose()?;
    let mut open = ExecsnoopSkel::open();
    open.rodata.filter_cgroup = cgroup_dir.is_some() as u32;
    open.rodata.targ_uid = args.uid.unwrap_or(u32::MAX);
    open.rodata.include_failed = args.failed as u32;
    open.rodata.max_args = args.max_args;
    ring_size(&mut open.loader, "events")?;
    let mut tool = Loaded::new(open.load()?.ebpf);
    // The filter's cgroup is in place before anything is attached.
    if let Some(dir) = &cgroup_dir {
        let fd = std::os::fd::AsRawFd::as_raw_fd(dir) as u32;
        bpfkit::RawMap::update(
            tool.map("cgroup_filter")?,
            &0u32.to_ne_bytes(),
            &fd.to_ne_bytes(),
            0,
        )
        .context("--cgroup: storing the cgroup in the filter map (is it a cgroup v2 directory?)")?;
    }
    tool.attach_all("execsnoop")?;
    let mut out = Output::new(args.json);
    out.header(&format!(
        "{:<8} {:<16} {:<7} {:<7} {:<6} {:>3} {}",
        "TIME", "PCOMM", "PID", "PPID", "UID", "RET", "ARGS"
    ))?;
    stream_events("execsnoop", tool, &stop, &mut out, |rec| {
        let e = decode(rec, clock_time())?;
        if args.pid.is_some_and(|p| e.pid != p && e.ppid != p) {
            return None;
        }
        if name_re.as_ref().is_some_and(|re| !re.is_match(&e.comm)) {
            return None;
        }
        if line_re
            .as_ref()
            .is_some_and(|re| !re.is_match(&e.args.join(" ")))
        {
            return None;
        }
        Some((format_line(&e), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_formats_a_record() {
        let args = b"/bin/echo\0hi\0there\0";
        let mut ev: execsnoop_event = crate::tools::zeroed();
        ev.pid = 42;
        ev.ppid = 1;
        ev.args_count = 3;
        ev.args_size = args.len() as u32;
        ev.truncated = 1;
        ev.comm[..4].copy_from_slice(b"echo");
        ev.args[..args.len()].copy_from_slice(args);
        // Sent as far as the arguments go, as the BPF side does.
        let fixed = std::mem::offset_of!(execsnoop_event, args);
        let rec = &bpfkit::kernel::map::bytes_of(&ev)[..fixed + args.len()];
        let e = decode(rec, "12:00:00".into()).unwrap();
        assert_eq!(e.args, vec!["/bin/echo", "hi", "there"]);
        assert_eq!(
            format_line(&e),
            "12:00:00 echo             42      1       0        0 /bin/echo hi there ..."
        );
        assert!(
            decode(&rec[..10], String::new()).is_none(),
            "short records are skipped"
        );
    }
}
