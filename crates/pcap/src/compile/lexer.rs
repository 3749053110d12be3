//! The pcap-filter(7) lexer, mirroring libpcap's `scanner.l`: flex picks the
//! longest match, and among equally long matches the earliest rule, so
//! keywords win over identifiers of the same length.

use std::sync::OnceLock;

use super::CompileError;

/// One token with the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub pos: usize,
}

/// Token kinds (the grammar's terminals).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A keyword, by its canonical spelling (e.g. `"link"` for `ether`).
    Kw(&'static str),
    /// One of `+ - * / % : [ ] ! < > ( ) & | ^ =` or `>= <= != << >>`.
    Punct(&'static str),
    /// A number (decimal, octal or hex), or a named constant (`tcp-syn`).
    Num(u32),
    /// An identifier (a name), with a leading backslash removed.
    Id(String),
    /// A dotted IPv4 address or prefix (`10.1`, `1.2.3.4`).
    Hid(String),
    /// An IPv6 address.
    Hid6(String),
    /// A MAC-48 address.
    Eid(String),
    /// A MAC-8 address (`$ab`).
    Aid(String),
}

/// (spelling, canonical keyword). The canonical name is what the parser matches.
const KEYWORDS: &[(&str, &str)] = &[
    ("dst", "dst"),
    ("src", "src"),
    ("link", "link"),
    ("ether", "link"),
    ("ppp", "link"),
    ("slip", "link"),
    ("fddi", "link"),
    ("tr", "link"),
    ("wlan", "link"),
    ("arp", "arp"),
    ("rarp", "rarp"),
    ("ip", "ip"),
    ("sctp", "sctp"),
    ("tcp", "tcp"),
    ("udp", "udp"),
    ("icmp", "icmp"),
    ("igmp", "igmp"),
    ("igrp", "igrp"),
    ("pim", "pim"),
    ("vrrp", "vrrp"),
    ("carp", "carp"),
    ("radio", "radio"),
    ("ip6", "ip6"),
    ("icmp6", "icmp6"),
    ("ah", "ah"),
    ("esp", "esp"),
    ("atalk", "atalk"),
    ("aarp", "aarp"),
    ("decnet", "decnet"),
    ("lat", "lat"),
    ("sca", "sca"),
    ("moprc", "moprc"),
    ("mopdl", "mopdl"),
    ("iso", "iso"),
    ("esis", "esis"),
    ("es-is", "esis"),
    ("isis", "isis"),
    ("is-is", "isis"),
    ("l1", "l1"),
    ("l2", "l2"),
    ("iih", "iih"),
    ("lsp", "lsp"),
    ("snp", "snp"),
    ("csnp", "csnp"),
    ("psnp", "psnp"),
    ("clnp", "clnp"),
    ("stp", "stp"),
    ("ipx", "ipx"),
    ("netbeui", "netbeui"),
    ("host", "host"),
    ("net", "net"),
    ("mask", "mask"),
    ("port", "port"),
    ("portrange", "portrange"),
    ("proto", "proto"),
    ("protochain", "protochain"),
    ("gateway", "gateway"),
    ("type", "type"),
    ("subtype", "subtype"),
    ("direction", "dir"),
    ("dir", "dir"),
    ("address1", "addr1"),
    ("addr1", "addr1"),
    ("address2", "addr2"),
    ("addr2", "addr2"),
    ("address3", "addr3"),
    ("addr3", "addr3"),
    ("address4", "addr4"),
    ("addr4", "addr4"),
    ("ra", "ra"),
    ("ta", "ta"),
    ("less", "less"),
    ("greater", "greater"),
    ("byte", "byte"),
    ("broadcast", "broadcast"),
    ("multicast", "multicast"),
    ("and", "and"),
    ("or", "or"),
    ("not", "not"),
    ("len", "len"),
    ("length", "len"),
    ("inbound", "inbound"),
    ("outbound", "outbound"),
    ("ifindex", "ifindex"),
    ("vlan", "vlan"),
    ("mpls", "mpls"),
    ("pppoed", "pppoed"),
    ("pppoes", "pppoes"),
    ("geneve", "geneve"),
    ("vxlan", "vxlan"),
    ("lane", "lane"),
    ("llc", "llc"),
    ("metac", "metac"),
    ("bcc", "bcc"),
    ("oam", "oam"),
    ("oamf4", "oamf4"),
    ("oamf4ec", "oamf4ec"),
    ("oamf4sc", "oamf4sc"),
    ("sc", "sc"),
    ("ilmic", "ilmic"),
    ("vpi", "vpi"),
    ("vci", "vci"),
    ("connectmsg", "connectmsg"),
    ("metaconnect", "metaconnect"),
    ("on", "ifname"),
    ("ifname", "ifname"),
    ("rset", "rset"),
    ("ruleset", "rset"),
    ("rnr", "rnr"),
    ("rulenum", "rnr"),
    ("srnr", "srnr"),
    ("subrulenum", "srnr"),
    ("reason", "reason"),
    ("action", "action"),
    ("fisu", "fisu"),
    ("lssu", "lssu"),
    ("lsu", "lssu"),
    ("msu", "msu"),
    ("hfisu", "hfisu"),
    ("hlssu", "hlssu"),
    ("hmsu", "hmsu"),
    ("sio", "sio"),
    ("opc", "opc"),
    ("dpc", "dpc"),
    ("sls", "sls"),
    ("hsio", "hsio"),
    ("hopc", "hopc"),
    ("hdpc", "hdpc"),
    ("hsls", "hsls"),
];

/// Named numeric constants (scanner.l's `icmptype`, `tcp-syn`, ...).
const NAMED_NUMS: &[(&str, u32)] = &[
    ("icmptype", 0),
    ("icmpcode", 1),
    ("icmp-echoreply", 0),
    ("icmp-unreach", 3),
    ("icmp-sourcequench", 4),
    ("icmp-redirect", 5),
    ("icmp-echo", 8),
    ("icmp-routeradvert", 9),
    ("icmp-routersolicit", 10),
    ("icmp-timxceed", 11),
    ("icmp-paramprob", 12),
    ("icmp-tstamp", 13),
    ("icmp-tstampreply", 14),
    ("icmp-ireq", 15),
    ("icmp-ireqreply", 16),
    ("icmp-maskreq", 17),
    ("icmp-maskreply", 18),
    ("icmp6type", 0),
    ("icmp6code", 1),
    ("icmp6-destinationunreach", 1),
    ("icmp6-packettoobig", 2),
    ("icmp6-timeexceeded", 3),
    ("icmp6-parameterproblem", 4),
    ("icmp6-echo", 128),
    ("icmp6-echoreply", 129),
    ("icmp6-multicastlistenerquery", 130),
    ("icmp6-multicastlistenerreportv1", 131),
    ("icmp6-multicastlistenerdone", 132),
    ("icmp6-routersolicit", 133),
    ("icmp6-routeradvert", 134),
    ("icmp6-neighborsolicit", 135),
    ("icmp6-neighboradvert", 136),
    ("icmp6-redirect", 137),
    ("icmp6-routerrenum", 138),
    ("icmp6-nodeinformationquery", 139),
    ("icmp6-nodeinformationresponse", 140),
    ("icmp6-ineighbordiscoverysolicit", 141),
    ("icmp6-ineighbordiscoveryadvert", 142),
    ("icmp6-multicastlistenerreportv2", 143),
    ("icmp6-homeagentdiscoveryrequest", 144),
    ("icmp6-homeagentdiscoveryreply", 145),
    ("icmp6-mobileprefixsolicit", 146),
    ("icmp6-mobileprefixadvert", 147),
    ("icmp6-certpathsolicit", 148),
    ("icmp6-certpathadvert", 149),
    ("icmp6-multicastrouteradvert", 151),
    ("icmp6-multicastroutersolicit", 152),
    ("icmp6-multicastrouterterm", 153),
    ("tcpflags", 13),
    ("tcp-fin", 0x01),
    ("tcp-syn", 0x02),
    ("tcp-rst", 0x04),
    ("tcp-push", 0x08),
    ("tcp-ack", 0x10),
    ("tcp-urg", 0x20),
    ("tcp-ece", 0x40),
    ("tcp-cwr", 0x80),
];

/// A word table sorted by spelling, each spelling kept once (the first, as
/// a linear `find` would), with where each first byte's entries start: the
/// lexer looks words up at every token, and linear scans over the tables
/// were a hot spot.
struct WordTable<T: 'static> {
    sorted: Vec<(&'static str, T)>,
    /// `sorted[by_first[c]..by_first[c + 1]]` are the entries starting with byte `c`.
    by_first: Vec<usize>,
}

impl<T: Copy> WordTable<T> {
    fn new(table: &[(&'static str, T)]) -> WordTable<T> {
        let mut sorted = table.to_vec();
        sorted.sort_by_key(|e| e.0);
        sorted.dedup_by_key(|e| e.0);
        let by_first = (0..=256)
            .map(|c| sorted.partition_point(|e| usize::from(e.0.as_bytes()[0]) < c))
            .collect();
        WordTable { sorted, by_first }
    }

    fn entries(&self, first: u8) -> &[(&'static str, T)] {
        let c = usize::from(first);
        &self.sorted[self.by_first[c]..self.by_first[c + 1]]
    }

    /// The value of the word `w`.
    fn get(&self, w: &str) -> Option<T> {
        let e = self.entries(*w.as_bytes().first()?);
        e.binary_search_by(|e| e.0.cmp(w)).ok().map(|i| e[i].1)
    }

    /// The length of the longest entry that `s[..max]` starts with.
    fn longest_prefix(&self, s: &[u8], max: usize) -> Option<usize> {
        self.entries(*s.first()?)
            .iter()
            .filter(|e| e.0.len() <= max && s.starts_with(e.0.as_bytes()))
            .map(|e| e.0.len())
            .max()
    }
}

fn keywords() -> &'static WordTable<&'static str> {
    static T: OnceLock<WordTable<&'static str>> = OnceLock::new();
    T.get_or_init(|| WordTable::new(KEYWORDS))
}

fn named_nums() -> &'static WordTable<u32> {
    static T: OnceLock<WordTable<u32>> = OnceLock::new();
    T.get_or_init(|| WordTable::new(NAMED_NUMS))
}

/// How many bytes at the start of `s` satisfy `ok`.
fn run_of(s: &[u8], ok: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|c| ok(**c)).count()
}

fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Length of `{N}` at the start of `s`: decimal digits, or 0x + hex digits.
fn match_n(s: &[u8]) -> Option<usize> {
    if s.len() >= 3 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') && hex(s[2]) {
        let n = s[2..].iter().take_while(|c| hex(**c)).count();
        return Some(2 + n);
    }
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    (n > 0).then_some(n)
}

/// Whether all of `s` is `{N}` (the flex rule matches exactly these).
fn full_n(s: &[u8]) -> bool {
    match_n(s) == Some(s.len())
}

/// Whether all of `s` is `{N}.{N}`, `{N}.{N}.{N}` or `{N}.{N}.{N}.{N}`.
fn full_hid(s: &[u8]) -> bool {
    let parts = s.split(|c| *c == b'.');
    (2..=4).contains(&parts.clone().count()) && { parts }.all(full_n)
}

/// Whether all of `s` is a 1–4 digit hex group `{W}`.
fn full_w(s: &[u8]) -> bool {
    (1..=4).contains(&s.len()) && s.iter().all(|c| hex(*c))
}

/// Whether all of `s` matches scanner.l's `{V6}` forms.
fn full_v6(s: &[u8]) -> bool {
    // An optional trailing dotted quad of {N} counts as two groups.
    let (head, tail_groups) = match s.iter().rposition(|c| *c == b':') {
        Some(i) if s[i + 1..].contains(&b'.') => {
            let quad = &s[i + 1..];
            let mut parts = quad.split(|c| *c == b'.');
            if parts.clone().count() != 4 || !parts.all(full_n) {
                return false;
            }
            (&s[..=i], 2usize)
        }
        _ => (s, 0usize),
    };
    let text = head;
    let dc = text.windows(2).filter(|w| w == b"::").count();
    if dc > 1 {
        return false;
    }
    if dc == 0 {
        // Plain form: W:W:...; with a quad the head ends in ':'.
        let body = if tail_groups > 0 {
            match text.strip_suffix(b":") {
                Some(b) => b,
                None => return false,
            }
        } else {
            text
        };
        let mut groups = body.split(|c| *c == b':');
        return groups.clone().count() + tail_groups == 8 && groups.all(full_w);
    }
    let i = text.windows(2).position(|w| w == b"::").unwrap_or(0);
    let left = &text[..i];
    let mut right = &text[i + 2..];
    if tail_groups > 0 {
        if right.is_empty() {
            // "::1.2.3.4" or "W::1.2.3.4"
        } else {
            match right.strip_suffix(b":") {
                Some(r) => right = r,
                None => return false,
            }
        }
    }
    // The groups on each side of "::" (none when the side is empty).
    let groups = |side: &[u8]| -> Option<usize> {
        if side.is_empty() {
            return Some(0);
        }
        let mut g = side.split(|c| *c == b':');
        let n = g.clone().count();
        g.all(full_w).then_some(n)
    };
    let (Some(nl), Some(nr)) = (groups(left), groups(right)) else {
        return false;
    };
    let total = nl + nr + tail_groups;
    // "::" stands for at least one group; the flex forms allow up to 7 explicit groups.
    total <= 7
}

/// Whether all of `s` matches scanner.l's `{MAC}`.
fn full_mac(s: &[u8]) -> bool {
    // Every form but the 12-digit one has a separator: most words have none.
    if s.len() != 12 && !s.iter().any(|c| matches!(c, b':' | b'-' | b'.')) {
        return false;
    }
    let b = |g: &[u8]| (1..=2).contains(&g.len()) && g.iter().all(|c| hex(*c));
    let b2 = |g: &[u8]| g.len() == 4 && g.iter().all(|c| hex(*c));
    for sep in [b':', b'-', b'.'] {
        let mut parts = s.split(|c| *c == sep);
        if parts.clone().count() == 6 && parts.all(b) {
            return true;
        }
    }
    let mut parts = s.split(|c| *c == b'.');
    if parts.clone().count() == 3 && parts.all(b2) {
        return true;
    }
    s.len() == 12 && s.iter().all(|c| hex(*c))
}

/// Whether all of `s` matches `{B}:+({B}:+)+` (an invalid MAC-like string).
fn full_bad_mac(s: &[u8]) -> bool {
    // Groups of 1-2 hex digits, each followed by one or more ':'; at least two.
    let mut i = 0;
    let mut groups = 0;
    while i < s.len() {
        let n = s[i..].iter().take_while(|c| hex(**c)).count();
        if !(1..=2).contains(&n) {
            return false;
        }
        i += n;
        let colons = s[i..].iter().take_while(|c| **c == b':').count();
        if colons == 0 {
            return false;
        }
        i += colons;
        groups += 1;
    }
    groups >= 2
}

fn id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.'
}

/// Length of the ID rule `[A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?` at the start.
fn match_id(s: &[u8]) -> usize {
    if s.is_empty() || !s[0].is_ascii_alphanumeric() {
        return 0;
    }
    let run = 1 + s[1..].iter().take_while(|c| id_char(**c)).count();
    // The last character may not be '-' or '_'.
    let mut n = run;
    while n > 1 && (s[n - 1] == b'-' || s[n - 1] == b'_') {
        n -= 1;
    }
    n
}

/// Longest prefix of `s` (up to `max`) accepted by `full`.
fn longest(s: &[u8], max: usize, full: impl Fn(&[u8]) -> bool) -> usize {
    (1..=max.min(s.len()))
        .rev()
        .find(|&n| full(&s[..n]))
        .unwrap_or(0)
}

/// Converts the text of a `{N}` match as libpcap's `stoulen` does.
pub(crate) fn stoul(text: &str) -> Result<u32, String> {
    let b = text.as_bytes();
    if b.len() >= 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        let mut n: u32 = 0;
        for &c in &b[2..] {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| format!("number {text} contains non-hex digit"))?;
            if n > 0x0fff_ffff {
                return Err(format!("hexadecimal number {text} overflows 32 bits"));
            }
            n = (n << 4) + d;
        }
        Ok(n)
    } else if b.first() == Some(&b'0') {
        let mut n: u32 = 0;
        for &c in &b[1..] {
            if !(b'0'..=b'7').contains(&c) {
                return Err(format!("number {text} contains non-octal digit"));
            }
            if n > 0o3777777777 {
                return Err(format!("octal number {text} overflows 32 bits"));
            }
            n = (n << 3) + (c - b'0') as u32;
        }
        Ok(n)
    } else {
        let mut n: u32 = 0;
        for &c in b {
            if !c.is_ascii_digit() {
                return Err(format!("number {text} contains non-decimal digit"));
            }
            let d = (c - b'0') as u32;
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(d))
                .ok_or_else(|| format!("decimal number {text} overflows 32 bits"))?;
        }
        Ok(n)
    }
}

/// Splits `src` into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, CompileError> {
    let s = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if matches!(c, b' ' | b'\r' | b'\n' | b'\t') {
            i += 1;
            continue;
        }
        let rest = &s[i..];
        // Candidate matches in scanner.l rule order: (length, rule index).
        let mut best: (usize, usize) = (0, usize::MAX);
        let mut consider = |len: usize, rule: usize| {
            if len > best.0 || (len == best.0 && len > 0 && rule < best.1) {
                best = (len, rule);
            }
        };
        // Rule 0: keywords (exact text, followed by anything).
        let idlen = match_id(rest);
        let run = rest.iter().take_while(|c| id_char(**c)).count();
        if let Some(n) = keywords().longest_prefix(rest, run) {
            consider(n, 0);
        }
        // Rule 1: single-character punctuation; rule 2: two-character operators.
        if b"+-*/%:[]!<>()&|^=".contains(&c) {
            consider(1, 1);
        }
        if rest.starts_with(b"&&") || rest.starts_with(b"||") {
            // and|"&&", or|"||": keyword rules, listed before the punctuation
            consider(2, 0);
        }
        if rest.len() >= 2
            && [b">=", b"<=", b"!=", b"==", b"<<", b">>"].contains(&&[rest[0], rest[1]])
        {
            consider(2, 2);
        }
        // Rule 3: $B (MAC-8).
        if c == b'$' {
            let n = rest[1..].iter().take(2).take_while(|c| hex(**c)).count();
            if n > 0 {
                consider(1 + n, 3);
            }
        }
        // Each address rule only tries prefixes within the run of the
        // characters it can match at all (a MAC is at most 17 long): the
        // same longest match, without testing every prefix of every word.
        let mac_run = run_of(rest, |c| hex(c) || matches!(c, b':' | b'.' | b'-')).min(17);
        consider(longest(rest, mac_run, full_mac), 4);
        if let Some(n) = match_n(rest) {
            consider(n, 5);
        }
        let hid_run = run_of(rest, |c| hex(c) || matches!(c, b'.' | b'x' | b'X'));
        if rest[..hid_run].contains(&b'.') {
            consider(longest(rest, hid_run, full_hid), 6);
        }
        let v6_run = run_of(rest, |c| hex(c) || matches!(c, b':' | b'.' | b'x' | b'X'));
        if rest[..v6_run].contains(&b':') {
            consider(longest(rest, v6_run, full_v6), 7);
            let bad_mac_run = run_of(rest, |c| hex(c) || c == b':');
            consider(longest(rest, bad_mac_run, full_bad_mac), 8);
        }
        if let Some(n) = named_nums().longest_prefix(rest, run) {
            consider(n, 9);
        }
        consider(idlen, 10);
        if c == b'\\' {
            let n = rest[1..]
                .iter()
                .take_while(|c| !matches!(c, b' ' | b'!' | b'(' | b')' | b'\n' | b'\t'))
                .count();
            if n > 0 {
                consider(1 + n, 11);
            }
        }
        let (len, rule) = best;
        if len == 0 {
            // flex's catch-all rule returns LEX_ERROR, which bison reports as a syntax error.
            return Err(CompileError::at(
                i,
                "can't parse filter expression: syntax error".to_string(),
            ));
        }
        let text = &src[i..i + len];
        let kind = match rule {
            0 => match text {
                "&&" => Tok::Kw("and"),
                "||" => Tok::Kw("or"),
                _ => Tok::Kw(keywords().get(text).unwrap_or("")),
            },
            1 | 2 => {
                const P: [&str; 23] = [
                    "+", "-", "*", "/", "%", ":", "[", "]", "!", "<", ">", "(", ")", "&", "|", "^",
                    "=", ">=", "<=", "!=", "==", "<<", ">>",
                ];
                let p = P.iter().find(|p| **p == text).copied().unwrap_or("=");
                if p == "==" {
                    Tok::Punct("=")
                } else if p == "!" {
                    Tok::Kw("not")
                } else {
                    Tok::Punct(p)
                }
            }
            3 => Tok::Aid(text.to_string()),
            4 => Tok::Eid(text.to_string()),
            5 => Tok::Num(stoul(text).map_err(|e| CompileError::at(i, e))?),
            6 => Tok::Hid(text.to_string()),
            7 => {
                if super::names::parse_ipv6(text).is_none() {
                    return Err(CompileError::at(i, format!("invalid IPv6 address {text}")));
                }
                Tok::Hid6(text.to_string())
            }
            8 => {
                return Err(CompileError::at(
                    i,
                    format!("invalid Ethernet address {text}"),
                ));
            }
            9 => Tok::Num(named_nums().get(text).unwrap_or(0)),
            10 => Tok::Id(text.to_string()),
            _ => Tok::Id(text[1..].to_string()),
        };
        out.push(Token { kind, pos: i });
        i += len;
    }
    Ok(out)
}
