//! `bpfkit solisten`: sockets put into listening state, with the address,
//! port, backlog and network namespace (the seed's example for nc and redis).

use std::time::Duration;

use serde::Serialize;

use super::net::{addr_text, u16_at, AF_INET6};
use super::{c_str, clock_time, load_tool, stream_events, u32_at, Output, StopSignal};

/// The compiled BPF side (bpf/solisten.bpf.c).
const OBJECT: &[u8] = include_bytes!("../../../../bpf/obj/solisten.bpf.o");
/// `struct solisten_event` (bpf/include/solisten.h).
const EVENT_SIZE: usize = 64;

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
    if rec.len() < EVENT_SIZE {
        return None;
    }
    let family = u16_at(rec, 24);
    Some(ListenEvent {
        time,
        pid: u32_at(rec, 0),
        comm: c_str(&rec[48..64]),
        netns: u32_at(rec, 20),
        proto: protocol(family, u16_at(rec, 28)),
        backlog: u32_at(rec, 16) as i32,
        addr: addr_text(family, &rec[32..48]),
        port: u16_at(rec, 26),
        ret: u32_at(rec, 8) as i32,
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
    let tool = load_tool(
        "solisten",
        OBJECT,
        &[("targ_pid", args.pid.unwrap_or(0).to_ne_bytes().to_vec())],
    )?;
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
        let mut rec = vec![0u8; EVENT_SIZE];
        rec[0..4].copy_from_slice(&4242u32.to_ne_bytes());
        rec[16..20].copy_from_slice(&7i32.to_ne_bytes());
        rec[20..24].copy_from_slice(&4026531840u32.to_ne_bytes());
        rec[24..26].copy_from_slice(&10u16.to_ne_bytes());
        rec[26..28].copy_from_slice(&6379u16.to_ne_bytes());
        rec[28..30].copy_from_slice(&6u16.to_ne_bytes());
        rec[47] = 1;
        rec[48..53].copy_from_slice(b"redis");
        let e = decode(&rec, "12:00:00".into()).unwrap();
        assert_eq!(
            (e.proto.as_str(), e.addr.as_str(), e.port, e.backlog),
            ("TCPv6", "::1", 6379, 7)
        );
        assert_eq!(
            format_line(&e),
            "12:00:00 4242    redis            4026531840 TCPv6  7       ::1                                     6379"
        );
        assert!(decode(&rec[..63], String::new()).is_none());
    }
}
