//! `bpfkit tcplife`: one line per closed TCP connection with its ends,
//! bytes each way and lifetime, from `sock:inet_sock_set_state`.

use std::time::Duration;

use serde::Serialize;

use super::net::{addr_text, AF_INET, AF_INET6};
use super::skel::tcplife::{types::tcplife_event, TcplifeSkel};
use super::{c_str, clock_time, record, ring_size, stream_events, Loaded, Output, StopSignal};

/// Trace TCP connections as they close: ends, bytes and duration.
#[derive(clap::Args)]
pub struct Args {
    /// Only this process id.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only IPv4.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,
    /// Only IPv6.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Only connections with this local port (repeatable).
    #[arg(short = 'L', long = "localport")]
    local_ports: Vec<u16>,
    /// Only connections with this remote port (repeatable).
    #[arg(short = 'D', long = "remoteport")]
    remote_ports: Vec<u16>,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// One finished connection.
#[derive(Debug, Serialize, PartialEq)]
pub struct Session {
    /// Wall-clock time it closed.
    pub time: String,
    /// Process that opened or closed it (0 if unknown).
    pub pid: u32,
    /// Its command.
    pub comm: String,
    /// 4 or 6.
    pub ip: u8,
    /// Local address.
    pub laddr: String,
    /// Local port.
    pub lport: u16,
    /// Remote address.
    pub raddr: String,
    /// Remote port.
    pub rport: u16,
    /// Bytes sent and acknowledged.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Kilobytes sent (as bcc prints them).
    pub tx_kb: u64,
    /// Kilobytes received.
    pub rx_kb: u64,
    /// Lifetime in milliseconds.
    pub ms: f64,
}

/// Decodes one record.
pub fn decode(rec: &[u8], time: String) -> Option<Session> {
    let e: tcplife_event = record(rec)?;
    Some(Session {
        time,
        pid: e.pid,
        comm: c_str(&e.comm),
        ip: if e.family == AF_INET6 { 6 } else { 4 },
        laddr: addr_text(e.family, &e.laddr),
        lport: e.lport,
        raddr: addr_text(e.family, &e.raddr),
        rport: e.rport,
        tx_bytes: e.tx_bytes,
        rx_bytes: e.rx_bytes,
        tx_kb: e.tx_bytes / 1024,
        rx_kb: e.rx_bytes / 1024,
        ms: e.duration_ns as f64 / 1e6,
    })
}

const HEADER: &str = "PID     COMM             LADDR                   LPORT RADDR                   RPORT TX_KB RX_KB MS";

/// The text line of a session.
pub fn format_line(s: &Session) -> String {
    format!(
        "{:<7} {:<16} {:<23} {:<5} {:<23} {:<5} {:<5} {:<5} {:.2}",
        s.pid, s.comm, s.laddr, s.lport, s.raddr, s.rport, s.tx_kb, s.rx_kb, s.ms
    )
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let family: u16 = match (args.ipv4, args.ipv6) {
        (true, _) => AF_INET,
        (_, true) => AF_INET6,
        _ => 0,
    };
    let mut open = TcplifeSkel::open();
    open.rodata.targ_pid = args.pid.unwrap_or(0);
    open.rodata.targ_family = family;
    ring_size(&mut open.loader, "events")?;
    let tool = Loaded::attached("tcplife", open.load()?.ebpf)?;
    let mut out = Output::new(args.json);
    out.header(HEADER)?;
    stream_events("tcplife", tool, &stop, &mut out, |rec| {
        let s = decode(rec, clock_time())?;
        let port_ok = |ports: &[u16], p: u16| ports.is_empty() || ports.contains(&p);
        if !port_ok(&args.local_ports, s.lport) || !port_ok(&args.remote_ports, s.rport) {
            return None;
        }
        Some((format_line(&s), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_decodes_with_both_ends_and_sizes() {
        let mut e: tcplife_event = crate::tools::zeroed();
        e.duration_ns = 12_500_000;
        e.rx_bytes = 3072;
        e.tx_bytes = 102_400;
        e.pid = 99;
        e.family = 2;
        e.lport = 8080;
        e.rport = 51000;
        e.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.raddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        e.comm[..4].copy_from_slice(b"curl");
        let s = decode(bpfkit::kernel::map::bytes_of(&e), String::new()).unwrap();
        assert_eq!((s.tx_kb, s.rx_kb, s.ip), (100, 3, 4));
        assert_eq!(
            format_line(&s),
            "99      curl             127.0.0.1               8080  10.0.0.2                51000 100   3     12.50"
        );
    }
}
