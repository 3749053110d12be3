//! `bpfkit solisten`: sockets put into listening state, with the address,
//! port, backlog and network namespace (the seed's example for nc and redis).

use std::time::Duration;

use serde::Serialize;

use super::net::{addr_text, AF_INET6};
use super::skel::solisten::{types::solisten_event, SolistenSkel};
use super::{c_str, clock_time, record, ring_size, stream_events, Loaded, Output, StopSignal};

/// Trace listen() on IPv4 and IPv6 sockets.
#[derive(clap::Args)]
pub struct Args {
    /// Only this process id.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only this network namespace (its inode number, as `ls -L -i /proc/PID/ns/net` shows).
    #[arg(long)]
    netns: Option<u32>,
    /// Also show listen() calls that failed.
    #[arg(short = 'x', long)]
    failed: bool,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// One listen() call.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ListenEvent {
    /// Wall-clock time.
    pub time: String,
    /// Process id.
    pub pid: u32,
    /// Command.
    pub comm: String,
    /// Network namespace inode.
    pub netns: u32,
    /// `TCPv4`, `TCPv6`, or the protocol number.
    pub proto: String,
    /// Backlog passed to listen().
    pub backlog: i32,
    /// Local address.
    pub addr: String,
    /// Local port.
    pub port: u16,
    /// 0, or the negative errno listen() returned.
    pub ret: i32,
}

fn protocol(family: u16, protocol: u16) -> String {
    let v = if family == AF_INET6 { "v6" } else { "v4" };
    match protocol {
        6 => format!("TCP{v}"),
        132 => format!("SCTP{v}"),
        262 => format!("MPTCP{v}"),
        p => format!("{p}{v}"),
    }
}

/// Decodes one record.
pub fn decode(rec: &[u8], time: String) -> Option<ListenEvent> {
    let e: solisten_event = record(rec)?;
    Some(ListenEvent {
        time,
        pid: e.pid,
        comm: c_str(&e.comm),
        netns: e.netns,
        proto: protocol(e.family, e.protocol),
        backlog: e.backlog,
        addr: addr_text(e.family, &e.addr),
        port: e.port,
        ret: e.ret,
    })
}

const HEADER: &str = "TIME     PID     COMM             NETNS      PROTO  BACKLOG ADDR                                    PORT";

/// The text line of an event.
pub fn format_line(e: &ListenEvent) -> String {
    let mut s = format!(
        "{:<8} {:<7} {:<16} {:<10} {:<6} {:<7} {:<39} {:<5}",
        e.time, e.pid, e.comm, e.netns, e.proto, e.backlog, e.addr, e.port
    )
    .trim_end()
    .to_string();
    if e.ret != 0 {
        s.push_str(&format!(
            " (failed: {})",
            std::io::Error::from_raw_os_error(-e.ret)
        ));
    }
    s
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let mut open = SolistenSkel::open();
    open.rodata.targ_pid = args.pid.unwrap_or(0);
    ring_size(&mut open.loader, "events")?;
    let tool = Loaded::attached("solisten", open.load()?.ebpf)?;
    let mut out = Output::new(args.json);
    out.header(HEADER)?;
    stream_events("solisten", tool, &stop, &mut out, |rec| {
        let e = decode(rec, clock_time())?;
        if args.netns.is_some_and(|n| n != e.netns) || (e.ret != 0 && !args.failed) {
            return None;
        }
        Some((format_line(&e), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_listen_decodes_and_prints_in_columns() {
        let mut ev: solisten_event = crate::tools::zeroed();
        ev.pid = 4242;
        ev.backlog = 7;
        ev.netns = 4026531840;
        ev.family = 10;
        ev.port = 6379;
        ev.protocol = 6;
        ev.addr[15] = 1;
        ev.comm[..5].copy_from_slice(b"redis");
        let rec = bpfkit::kernel::map::bytes_of(&ev);
        let e = decode(rec, "12:00:00".into()).unwrap();
        assert_eq!(
            (e.proto.as_str(), e.addr.as_str(), e.port, e.backlog),
            ("TCPv6", "::1", 6379, 7)
        );
        assert_eq!(
            format_line(&e),
            "12:00:00 4242    redis            4026531840 TCPv6  7       ::1                                     6379"
        );
        assert!(decode(&rec[..rec.len() - 1], String::new()).is_none());
    }
}
