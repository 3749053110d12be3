//! `bpfkit httpsnoop`: HTTP/1.x exchanges on the connections a server
//! accepts, from the accept4/read/recvfrom/write/sendto/close tracepoints.
//! The BPF side sends what each call moved; requests and responses are
//! parsed here, so split reads and keep-alive connections come out whole.
//! Connections are followed by (pid, fd), as the seed design keys them: a
//! server that reads one dup() of a socket and writes another is not seen.

mod exchange;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Serialize;

use super::skel::httpsnoop::{types::httpsnoop_event, HttpsnoopSkel};
use super::{
    c_str, clock_time, percpu_sum, record, report_lost, ring_size, Loaded, Output, StopSignal,
};
use exchange::{Exchange, Io, Tracker};
/// `HTTPSNOOP_MAX_DATA`.
const MAX_DATA: u32 = 4096;

/// Trace HTTP/1.x requests and responses of accepted connections.
#[derive(clap::Args)]
pub struct Args {
    /// Only this server process.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Only connections accepted on this local port.
    #[arg(long)]
    port: Option<u16>,
    /// Print the request and response headers.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// One JSON object per exchange.
    #[arg(long)]
    json: bool,
}

/// One exchange as printed.
#[derive(Debug, Serialize)]
pub struct Event {
    /// When it completed.
    pub time: String,
    /// Server process.
    pub pid: u32,
    /// Server command.
    pub comm: String,
    /// Server's fd of the connection.
    pub fd: i32,
    /// Client address and port.
    pub client: String,
    /// Request and response.
    #[serde(flatten)]
    pub exchange: Exchange,
    /// Latency in milliseconds.
    pub latency_ms: f64,
}

/// A record's fixed part.
/// One system call's record: `struct httpsnoop_event`, then the bytes moved.
struct Record<'a> {
    event: httpsnoop_event,
    comm: String,
    data: &'a [u8],
}

fn decode(rec: &[u8]) -> Option<Record<'_>> {
    let event: httpsnoop_event = record(rec)?;
    let start = std::mem::size_of::<httpsnoop_event>();
    Some(Record {
        comm: c_str(&event.comm),
        data: rec.get(start..start + event.data_len as usize)?,
        event,
    })
}

fn client(family: u16, addr: &[u8], port: u16) -> String {
    match family {
        2 => format!(
            "{}:{port}",
            Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
        ),
        10 => {
            let a: [u8; 16] = addr.try_into().unwrap_or([0; 16]);
            format!("[{}]:{port}", Ipv6Addr::from(a))
        }
        _ => "?".to_string(),
    }
}

fn header() -> String {
    format!(
        "{:<8} {:<7} {:<16} {:<4} {:<21} {:<7} {:<24} {:>6} {:>10} {:>9} {:>10}",
        "TIME",
        "PID",
        "COMM",
        "FD",
        "CLIENT",
        "METHOD",
        "PATH",
        "STATUS",
        "LATENCY_MS",
        "REQ_BYTES",
        "RESP_BYTES"
    )
}

fn line(e: &Event, verbose: bool) -> String {
    let x = &e.exchange;
    let mut s = format!(
        "{:<8} {:<7} {:<16} {:<4} {:<21} {:<7} {:<24} {:>6} {:>10.3} {:>9} {:>10}",
        e.time,
        e.pid,
        e.comm,
        e.fd,
        e.client,
        x.method,
        x.path,
        x.status,
        e.latency_ms,
        x.req_bytes,
        x.resp_bytes
    );
    if verbose {
        for h in &x.req_headers {
            s.push_str(&format!("\n    > {h}"));
        }
        for h in &x.resp_headers {
            s.push_str(&format!("\n    < {h}"));
        }
    }
    s
}

/// Per connection: the client and command, kept from its accept.
type Peers = std::collections::HashMap<(u32, i32), (String, String)>;

fn event(peers: &Peers, key: (u32, i32), exchange: Exchange) -> Event {
    let (client, comm) = peers.get(&key).cloned().unwrap_or_default();
    Event {
        time: clock_time(),
        pid: key.0,
        comm,
        fd: key.1,
        client,
        latency_ms: exchange.latency_ns as f64 / 1e6,
        exchange,
    }
}

/// Runs the tool.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let max_bytes: u32 = if args.verbose { MAX_DATA } else { 512 };
    let mut open = HttpsnoopSkel::open();
    open.rodata.targ_pid = args.pid.unwrap_or(0);
    open.rodata.targ_lport = args.port.unwrap_or(0);
    open.rodata.max_bytes = max_bytes;
    ring_size(&mut open.loader, "events")?;
    let mut tool = Loaded::attached("httpsnoop", open.load()?.ebpf)?;
    let mut out = Output::new(args.json);
    out.header(&header())?;
    let mut reader = bpfkit::RingBuf::new(tool.bpf.take_map("events")?)?;
    let mut tracker = Tracker::default();
    let mut peers = Peers::new();
    let mut done = Vec::new();
    let mut write_error = None;
    while !stop.should_stop() && write_error.is_none() {
        reader.poll(stop.remaining(Duration::from_millis(100)), |rec| {
            let Some(r) = decode(rec) else { return };
            let e = &r.event;
            let key = (e.pid, e.fd);
            let peer = || (client(e.family, &e.raddr, e.rport), r.comm.clone());
            let io = match e.kind {
                0 => {
                    peers.insert(key, peer());
                    return;
                }
                1 => Io::Read {
                    len: e.len as u64,
                    data: r.data,
                },
                2 => Io::Write {
                    len: e.len as u64,
                    data: r.data,
                },
                _ => Io::Close,
            };
            peers.entry(key).or_insert_with(peer);
            if let Some(x) = tracker.feed(key, e.ts_ns, io, args.verbose) {
                done.push(event(&peers, key, x));
            }
            if e.kind == 3 {
                peers.remove(&key);
            }
        })?;
        for e in done.drain(..) {
            if let Err(err) = out.record(&line(&e, args.verbose), &e) {
                write_error = Some(err);
                break;
            }
        }
    }
    if write_error.is_none() {
        for (key, x) in tracker.drain(args.verbose) {
            let e = event(&peers, key, x);
            if let Err(err) = out.record(&line(&e, args.verbose), &e) {
                write_error = Some(err);
                break;
            }
        }
    }
    report_lost("httpsnoop", percpu_sum(tool.map("drops")?));
    match write_error {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
