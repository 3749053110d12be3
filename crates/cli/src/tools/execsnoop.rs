//! `bpfkit execsnoop`: trace new processes (execve), with their arguments.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{
    attach_all, c_str, clock_time, load_unattached, stream_events, u32_at, Output, StopSignal,
};

/// The compiled BPF side (bpf/execsnoop.bpf.c, rebuilt by bpf/build.sh).
const OBJECT: &[u8] = include_bytes!("../../../../bpf/obj/execsnoop.bpf.o");
/// Most arguments the BPF side captures (EXECSNOOP_MAX_ARGS).
const MAX_ARGS: u32 = 20;
/// Offset of `args` in `struct execsnoop_event` (bpf/include/execsnoop.h).
const ARGS_OFFSET: usize = 48;

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
    if rec.len() < ARGS_OFFSET {
        return None;
    }
    let args_size = (u32_at(rec, 20) as usize).min(rec.len() - ARGS_OFFSET);
    let args_count = u32_at(rec, 16) as usize;
    let args: Vec<String> = rec[ARGS_OFFSET..ARGS_OFFSET + args_size]
        .split(|&b| b == 0)
        .take(args_count)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(ExecEvent {
        time,
        comm: c_str(&rec[32..48]),
        pid: u32_at(rec, 0),
        ppid: u32_at(rec, 4),
        uid: u32_at(rec, 8),
        ret: u32_at(rec, 12) as i32,
        args,
        truncated: u32_at(rec, 24) != 0,
    })
}

/// The text line for an event, in the header's columns.
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
    let mut tool = load_unattached(
        "execsnoop",
        OBJECT,
        &[
            (
                "filter_cgroup",
                (cgroup_dir.is_some() as u32).to_ne_bytes().to_vec(),
            ),
            (
                "targ_uid",
                args.uid.unwrap_or(u32::MAX).to_ne_bytes().to_vec(),
            ),
            (
                "include_failed",
                (args.failed as u32).to_ne_bytes().to_vec(),
            ),
            ("max_args", args.max_args.to_ne_bytes().to_vec()),
        ],
    )?;
    // The filter's cgroup is in place before anything is attached.
    if let Some(dir) = &cgroup_dir {
        let fd = std::os::fd::AsRawFd::as_raw_fd(dir) as u32;
        tool.collection.maps["cgroup_filter"]
            .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), 0)
            .context(
                "--cgroup: storing the cgroup in the filter map (is it a cgroup v2 directory?)",
            )?;
    }
    attach_all("execsnoop", &mut tool)?;
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
        let mut rec = vec![0u8; ARGS_OFFSET];
        rec[0..4].copy_from_slice(&42u32.to_ne_bytes());
        rec[4..8].copy_from_slice(&1u32.to_ne_bytes());
        rec[16..20].copy_from_slice(&3u32.to_ne_bytes());
        let args = b"/bin/echo\0hi\0there\0";
        rec[20..24].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        rec[24..28].copy_from_slice(&1u32.to_ne_bytes());
        rec[32..36].copy_from_slice(b"echo");
        rec.extend_from_slice(args);
        let e = decode(&rec, "12:00:00".into()).unwrap();
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
