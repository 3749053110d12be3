//! Address parsing and name resolution (libpcap's `nametoaddr.c`), reading
//! only files under a caller-given root.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;

/// Looks up host, Ethernet, network, protocol and service names in files
/// laid out like `/etc`: `hosts`, `ethers`, `networks`, `protocols`,
/// `services` under one root directory. Missing files resolve nothing.
/// Protocol and service names that libpcap's tests rely on are built in.
#[derive(Clone, Debug, Default)]
pub struct NameResolver {
    hosts: Vec<(String, HostAddr)>,
    ethers: Vec<(String, [u8; 6])>,
    networks: Vec<(String, u32)>,
    protocols: HashMap<String, u32>,
    /// name → (tcp port, udp port)
    services: HashMap<String, (Option<u16>, Option<u16>)>,
}

/// One address a host name resolves to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum HostAddr {
    V4(u32),
    V6([u8; 16]),
}

/// Built-in IP protocol numbers (the usual `/etc/protocols` entries).
const PROTOCOLS: &[(&str, u32)] = &[
    ("ip", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("st", 5),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("udp", 17),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("skip", 57),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("sctp", 132),
    ("fc", 133),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
];

/// Built-in services: (name, tcp port, udp port).
const SERVICES: &[(&str, Option<u16>, Option<u16>)] = &[
    ("ftp-data", Some(20), None),
    ("ftp", Some(21), None),
    ("ssh", Some(22), None),
    ("telnet", Some(23), None),
    ("smtp", Some(25), None),
    ("domain", Some(53), Some(53)),
    ("bootps", None, Some(67)),
    ("bootpc", None, Some(68)),
    ("tftp", None, Some(69)),
    ("http", Some(80), None),
    ("pop3", Some(110), None),
    ("ntp", None, Some(123)),
    ("snmp", Some(161), Some(161)),
    ("https", Some(443), None),
];

/// libpcap's built-in EtherType names (`eproto_db`).
pub(crate) const EPROTO: &[(&str, u32)] = &[
    ("aarp", 0x80f3),
    ("arp", 0x0806),
    ("atalk", 0x809b),
    ("decnet", 0x6003),
    ("ip", 0x0800),
    ("ip6", 0x86dd),
    ("lat", 0x6004),
    ("lldp", 0x88cc),
    ("loopback", 0x9000),
    ("mopdl", 0x6001),
    ("moprc", 0x6002),
    ("rarp", 0x8035),
    ("sca", 0x6007),
    ("slow", 0x8809),
];

/// libpcap's built-in LLC SAP names (`llc_db`).
pub(crate) const LLC: &[(&str, u32)] = &[
    ("iso", 0xfe),
    ("stp", 0x42),
    ("ipx", 0xe0),
    ("netbeui", 0xf0),
];

impl NameResolver {
    /// A resolver with only the built-in protocol and service names.
    pub fn builtin() -> NameResolver {
        NameResolver::builtin_ref().clone()
    }

    /// The built-in resolver, built once: `compile` without a resolver uses
    /// it, and building its tables on every call cost more than compiling
    /// a short expression.
    pub(crate) fn builtin_ref() -> &'static NameResolver {
        static BUILTIN: OnceLock<NameResolver> = OnceLock::new();
        BUILTIN.get_or_init(NameResolver::build_builtin)
    }

    fn build_builtin() -> NameResolver {
        let mut r = NameResolver::default();
        for (n, v) in PROTOCOLS {
            r.protocols.insert(n.to_string(), *v);
        }
        for (n, t, u) in SERVICES {
            r.services.insert(n.to_string(), (*t, *u));
        }
        r
    }

    /// Reads `hosts`, `ethers`, `networks`, `protocols` and `services` under
    /// `root` (each optional) on top of the built-in names.
    pub fn from_root(root: impl AsRef<Path>) -> std::io::Result<NameResolver> {
        let root = root.as_ref();
        let mut r = NameResolver::builtin();
        let read = |name: &str| -> std::io::Result<String> {
            match std::fs::read_to_string(root.join(name)) {
                Ok(s) => Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(e) => Err(e),
            }
        };
        for line in read("hosts")?.lines() {
            let mut f = line.split('#').next().unwrap_or("").split_whitespace();
            let Some(addr) = f.next() else { continue };
            let a = if let Ok(v4) = addr.parse::<Ipv4Addr>() {
                HostAddr::V4(u32::from(v4))
            } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
                HostAddr::V6(v6.octets())
            } else {
                continue;
            };
            for name in f {
                r.hosts.push((name.to_string(), a));
            }
        }
        for line in read("ethers")?.lines() {
            let mut f = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(mac), Some(name)) = (f.next(), f.next()) else {
                continue;
            };
            if let Some(m) = atomac48(mac) {
                r.ethers.push((name.to_string(), m));
            }
        }
        for line in read("networks")?.lines() {
            let mut f = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(name), Some(num)) = (f.next(), f.next()) else {
                continue;
            };
            if let Some(n) = inet_network(num) {
                r.networks.push((name.to_string(), n));
                for alias in f {
                    r.networks.push((alias.to_string(), n));
                }
            }
        }
        for line in read("protocols")?.lines() {
            let mut f = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(name), Some(num)) = (f.next(), f.next()) else {
                continue;
            };
            if let Ok(n) = num.parse() {
                r.protocols.insert(name.to_string(), n);
                for alias in f {
                    r.protocols.insert(alias.to_string(), n);
                }
            }
        }
        for line in read("services")?.lines() {
            let mut f = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(name), Some(pp)) = (f.next(), f.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let mut names = vec![name.to_string()];
            names.extend(f.map(str::to_string));
            for n in names {
                let e = r.services.entry(n).or_insert((None, None));
                match proto {
                    "tcp" if e.0.is_none() => e.0 = Some(port),
                    "udp" if e.1.is_none() => e.1 = Some(port),
                    _ => {}
                }
            }
        }
        Ok(r)
    }

    /// All addresses of a host name (names compare case-insensitively, as the resolver does).
    pub(crate) fn host(&self, name: &str) -> Vec<HostAddr> {
        self.hosts
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
            .collect()
    }

    /// The MAC-48 address of a name in `ethers`.
    pub(crate) fn ether(&self, name: &str) -> Option<[u8; 6]> {
        self.ethers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }

    /// A network number from `networks`.
    pub(crate) fn network(&self, name: &str) -> Option<u32> {
        self.networks
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }

    /// An IP protocol number.
    pub(crate) fn protocol(&self, name: &str) -> Option<u32> {
        self.protocols.get(name).copied()
    }

    /// A service's (tcp, udp) ports.
    pub(crate) fn service(&self, name: &str) -> (Option<u16>, Option<u16>) {
        self.services.get(name).copied().unwrap_or((None, None))
    }
}

/// glibc's `inet_network`: dotted parts, the last part in the low byte.
fn inet_network(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut v: u32 = 0;
    for p in parts {
        let n: u32 = p.parse().ok()?;
        if n > 255 {
            return None;
        }
        v = (v << 8) | n;
    }
    Some(v)
}

/// `inet_pton(AF_INET6, ...)`.
pub(crate) fn parse_ipv6(s: &str) -> Option<[u8; 16]> {
    s.parse::<Ipv6Addr>().ok().map(|a| a.octets())
}

/// libpcap's `pcapint_atoin`: a dotted IPv4 address or prefix, and its length in bits.
pub(crate) fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut len = 0;
    for part in s.split('.') {
        let mut n: u32 = 0;
        for c in part.bytes() {
            if n > 25 {
                return None;
            }
            n = n * 10 + (c.wrapping_sub(b'0')) as u32;
        }
        if n > 255 {
            return None;
        }
        addr = (addr << 8) | n;
        len += 8;
        if len > 32 {
            return None;
        }
    }
    Some((addr, len))
}

/// libpcap's `pcapint_atomac48`.
pub(crate) fn atomac48(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    let x = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let pair = |i: usize| Some(x(b[i])? << 4 | x(b[i + 1])?);
    if b.len() == 12 && b.iter().all(|c| c.is_ascii_hexdigit()) {
        let mut m = [0u8; 6];
        for (k, o) in m.iter_mut().enumerate() {
            *o = pair(2 * k)?;
        }
        return Some(m);
    }
    if b.len() == 14 && b[4] == b'.' && b[9] == b'.' {
        let idx = [0, 2, 5, 7, 10, 12];
        if b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 9 || c.is_ascii_hexdigit())
        {
            let mut m = [0u8; 6];
            for (k, o) in m.iter_mut().enumerate() {
                *o = pair(idx[k])?;
            }
            return Some(m);
        }
    }
    // x or xx, six times, with one separator out of ":.-".
    let sep = *b.iter().find(|c| !c.is_ascii_hexdigit())?;
    if !b":.-".contains(&sep) {
        return None;
    }
    let parts: Vec<&str> = s.split(sep as char).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        if !(1..=2).contains(&p.len()) || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// libpcap's `pcapint_atodn`: a DECnet `area.node` address (area < 64, node < 1024).
pub(crate) fn atodn(s: &str) -> Option<u32> {
    let (area, node) = s.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !digits(area) || !digits(node) {
        return None;
    }
    let area: u32 = area.parse().ok().filter(|a| *a <= 63)?;
    let node: u32 = node.parse().ok().filter(|n| *n <= 1023)?;
    Some(area << 10 | node)
}

/// PF reason names (OpenBSD's `PFRES_NAMES`).
pub(crate) fn pf_reason(s: &str) -> Option<u32> {
    const R: &[&str] = &[
        "match",
        "bad-offset",
        "fragment",
        "short",
        "normalize",
        "memory",
        "bad-timestamp",
        "congestion",
        "ip-option",
        "proto-cksum",
        "state-mismatch",
        "state-insert",
        "state-limit",
        "src-limit",
        "synproxy",
    ];
    R.iter()
        .position(|r| r.eq_ignore_ascii_case(s))
        .map(|p| p as u32)
}

/// PF action names.
pub(crate) fn pf_action(s: &str) -> Option<u32> {
    Some(match s.to_ascii_lowercase().as_str() {
        "pass" | "accept" => 0,
        "drop" | "block" => 1,
        "scrub" => 2,
        "noscrub" => 3,
        "nat" => 4,
        "nonat" => 5,
        "binat" => 6,
        "nobinat" => 7,
        "rdr" => 8,
        "nordr" => 9,
        "synproxy-drop" => 10,
        _ => return None,
    })
}
