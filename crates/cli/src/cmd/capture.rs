//! `bpfkit capture`: capture packets on an interface through an
//! `AF_PACKET` socket with a classic BPF filter attached (a pcap-filter(7)
//! expression compiled for the interface's link type, or a ready program),
//! print a one-line
//! summary of each, optionally write them to a pcap savefile, and report
//! the kernel's counts on exit (as tcpdump does).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bpfkit_isa::cbpf;
use bpfkit_kernel::packet::{pkt_type, PacketSocket};
use bpfkit_pcap::classic::{self, ValidateErrorKind};
use clap::Parser;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// The snapshot length tcpdump uses by default (and for `-s 0`), and its
/// largest (libpcap's MAXIMUM_SNAPLEN).
const DEFAULT_SNAPLEN: u32 = 262_144;

/// Capture packets on an interface.
#[derive(Parser)]
pub struct Args {
    /// The filter expression (pcap-filter(7)), compiled for the interface's
    /// link type and attached in the kernel; its words are joined with
    /// spaces, as tcpdump joins them. Without one (or --program) every
    /// packet is captured.
    expression: Vec<String>,
    /// The interface to capture on.
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: String,
    /// Write the packets to this pcap savefile.
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<PathBuf>,
    /// Stop after this many packets.
    #[arg(short = 'c', value_name = "COUNT")]
    count: Option<u64>,
    /// Keep at most this many bytes of each packet (0, or above 262144: 262144).
    #[arg(short = 's', value_name = "SNAPLEN", default_value_t = DEFAULT_SNAPLEN)]
    snaplen: u32,
    /// The classic filter program, instead of an expression: a `tcpdump -d`
    /// listing, `-dd` C array or `-ddd` decimal list.
    #[arg(long, value_name = "LISTING")]
    program: Option<PathBuf>,
}

/// Runs `bpfkit capture`.
pub fn run(args: Args) -> Result<()> {
    let filter = match (&args.program, args.expression.is_empty()) {
        (Some(_), false) => bail!("give either a filter expression or --program, not both"),
        (Some(path), true) => Some(super::filter::read_program(path)?),
        (None, true) => None,
        (None, false) => {
            let link = LinkType::of(&args.interface)?;
            let mut opts = bpfkit_pcap::compile::CompileOptions::new(link.dlt());
            opts.snaplen = super::filter::adjust_snaplen(args.snaplen);
            // As libpcap on a live Linux socket: VLAN tags are in the
            // packet's metadata (SKF_AD_VLAN_TAG*), not its bytes, since the
            // kernel strips them (BPF_SPECIAL_VLAN_HANDLING).
            opts.linux_extensions = true;
            // tcpdump's netmask when the device's is unknown.
            opts.netmask = 0;
            let expr = args.expression.join(" ");
            Some(super::filter::compile_expression(&expr, &opts)?)
        }
    };
    capture(filter, &args)
}

/// Captures the packets `filter` accepts (every packet without one); the
/// filter is checked first as the kernel will check it, which would only
/// say EINVAL. A filter only libpcap's machine runs (`protochain`'s backward
/// jumps) runs in user space instead, as libpcap falls back to when the
/// kernel refuses a filter.
pub fn capture(filter: Option<Vec<cbpf::Insn>>, args: &Args) -> Result<()> {
    let mut userland = None;
    let filter = match filter {
        Some(insns) => match classic::validate(&insns) {
            Ok(()) => Some(insns),
            Err(e) if matches!(e.kind, ValidateErrorKind::JumpsBack { .. }) => {
                let f = classic::Filter::libpcap(insns).map_err(|_| e.clone())?;
                userland = Some((f, e));
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // As tcpdump: 0 and anything above the maximum mean the maximum.
    let snaplen = match args.snaplen {
        0 => DEFAULT_SNAPLEN,
        n => n.min(DEFAULT_SNAPLEN),
    };
    let ifindex = bpfkit_kernel::sys::net::ifindex(&args.interface)
        .with_context(|| format!("interface {}", args.interface))?;
    let link = LinkType::of(&args.interface)?;
    let sock = PacketSocket::open(ifindex, filter.as_deref())
        .with_context(|| format!("capturing on {}", args.interface))?;
    sock.set_read_timeout(Duration::from_millis(100))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut writer = match &args.write {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let header = pcap_file::pcap::PcapHeader {
                snaplen,
                datalink: link.datalink(),
                ..Default::default()
            };
            Some(
                pcap_file::pcap::PcapWriter::with_header(std::io::BufWriter::new(file), header)
                    .with_context(|| format!("writing {}", path.display()))?,
            )
        }
        None => None,
    };
    // The readiness line tcpdump prints: the filter is attached by now.
    eprintln!(
        "listening on {}, link-type {}, snapshot length {snaplen} bytes",
        args.interface,
        link.name()
    );
    if let Some((_, why)) = &userland {
        eprintln!(
            "warning: the kernel refuses this filter ({why}); filtering in user space, as \
             libpcap does"
        );
    }
    let mut buf = vec![0u8; snaplen as usize];
    let mut captured = 0u64;
    let result: Result<()> = (|| {
        while !stop.load(Ordering::Relaxed) && args.count.is_none_or(|c| captured < c) {
            let Some(r) = sock.recv(&mut buf)? else {
                continue;
            };
            let data = &buf[..r.captured];
            if let Some((f, _)) = &userland {
                let packet = classic::Packet {
                    data,
                    wire_len: r.wire_len as u32,
                    meta: Default::default(),
                };
                if f.run(&packet) == 0 {
                    continue;
                }
            }
            captured += 1;
            let line = summary(link, data, r.wire_len, r.timestamp, r.pkt_type);
            outln!("{line}");
            if let Some(w) = &mut writer {
                let p = pcap_file::pcap::PcapPacket::new(r.timestamp, r.wire_len as u32, data);
                w.write_packet(&p).context("writing the savefile")?;
            }
        }
        Ok(())
    })();
    if let Some(w) = writer {
        w.into_writer().flush().context("writing the savefile")?;
    }
    eprintln!("{captured} packets captured");
    // PACKET_STATISTICS resets on read: one read at the end gives the totals.
    match sock.statistics() {
        Ok(stats) => {
            eprintln!("{} packets received by filter", stats.packets);
            eprintln!("{} packets dropped by kernel", stats.drops);
        }
        Err(e) => eprintln!("the kernel's packet counts are unavailable: {e}"),
    }
    result
}

/// A one-line description in tcpdump's manner:
/// `12:00:01.123456 IP 10.0.0.1.5353 > 10.0.0.2.53: UDP, length 20`.
pub fn summary(
    link: LinkType,
    data: &[u8],
    wire_len: usize,
    timestamp: Duration,
    kind: u8,
) -> String {
    let time =
        chrono::DateTime::from_timestamp(timestamp.as_secs() as i64, timestamp.subsec_nanos())
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%H:%M:%S%.6f")
                    .to_string()
            })
            .unwrap_or_default();
    let direction = if kind == pkt_type::OUTGOING {
        "Out"
    } else {
        "In "
    };
    format!("{time} {direction} {}", describe(link, data, wire_len))
}

/// What a `SOCK_RAW` packet socket's frames start with, from the device's
/// ARPHRD_* type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// An Ethernet header (Ethernet devices, veth, loopback).
    Ethernet,
    /// The IP header (ARPHRD_NONE: tun, WireGuard).
    RawIp,
}

impl LinkType {
    /// The link type of interface `name` (`/sys/class/net/NAME/type`).
    pub fn of(name: &str) -> Result<LinkType> {
        let path = format!("/sys/class/net/{name}/type");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        match text.trim().parse::<u32>() {
            // ARPHRD_ETHER, ARPHRD_LOOPBACK
            Ok(1 | 772) => Ok(LinkType::Ethernet),
            // ARPHRD_NONE
            Ok(65534) => Ok(LinkType::RawIp),
            _ => bail!(
                "interface {name} has link type ARPHRD {}, which capture does not handle \
                 (Ethernet, loopback and raw IP devices only)",
                text.trim()
            ),
        }
    }

    /// The `DLT_*` a filter is compiled for.
    fn dlt(self) -> bpfkit_pcap::compile::LinkType {
        match self {
            LinkType::Ethernet => bpfkit_pcap::compile::LinkType::EN10MB,
            // DLT_RAW on Linux.
            LinkType::RawIp => bpfkit_pcap::compile::LinkType(12),
        }
    }

    fn datalink(self) -> pcap_file::DataLink {
        match self {
            LinkType::Ethernet => pcap_file::DataLink::ETHERNET,
            LinkType::RawIp => pcap_file::DataLink::RAW,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::RawIp => "RAW (Raw IP)",
        }
    }
}

fn describe(link: LinkType, data: &[u8], wire_len: usize) -> String {
    let sliced = match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(data),
        LinkType::RawIp => SlicedPacket::from_ip(data),
    };
    let Ok(p) = sliced else {
        return format!("truncated or unparsed frame, length {wire_len}");
    };
    let (family, src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            "IP",
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            "IP6",
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        None => {
            let ethertype = match &p.link {
                Some(etherparse::LinkSlice::Ethernet2(e)) => e.ether_type().0,
                _ => 0,
            };
            let name = match ethertype {
                0x0806 => "ARP",
                0x8035 => "RARP",
                0x88cc => "LLDP",
                _ => "ethertype",
            };
            return format!("{name} {ethertype:#06x}, length {wire_len}");
        }
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => format!(
            "{family} {src}.{} > {dst}.{}: UDP, length {}",
            u.source_port(),
            u.destination_port(),
            u.payload().len()
        ),
        Some(TransportSlice::Tcp(t)) => {
            let flags: String = [
                (t.syn(), 'S'),
                (t.fin(), 'F'),
                (t.rst(), 'R'),
                (t.psh(), 'P'),
                (t.ack(), '.'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            format!(
                "{family} {src}.{} > {dst}.{}: Flags [{flags}], length {}",
                t.source_port(),
                t.destination_port(),
                t.payload().len()
            )
        }
        Some(TransportSlice::Icmpv4(_)) => {
            format!("{family} {src} > {dst}: ICMP, length {wire_len}")
        }
        Some(TransportSlice::Icmpv6(_)) => {
            format!("{family} {src} > {dst}: ICMP6, length {wire_len}")
        }
        None => format!("{family} {src} > {dst}: length {wire_len}"),
    }
}
