//! The pcap-filter(7) compiler: filter expressions to classic BPF, producing
//! the same programs as libpcap's `pcap_compile` (gencode.c and optimize.c
//! of libpcap's development version), so `tcpdump -d` listings match.
//!
//! ```
//! use bpfkit_isa::cbpf::{dump, Insn, RetVal};
//! use bpfkit_pcap::compile::{compile, CompileOptions, LinkType};
//! let prog = compile("ip", &CompileOptions::new(LinkType::EN10MB)).unwrap();
//! assert_eq!(prog.last(), Some(&Insn::Ret(RetVal::K(0))));
//! assert!(dump(&prog).starts_with("(000) ldh      [12]"));
//! ```

mod ast;
mod emit;
mod gen;
mod lexer;
mod names;
mod opt;
mod parser;

use std::fmt;

use bpfkit_isa::cbpf::{Insn, SockFilter};

pub use names::NameResolver;

/// A link-layer header type (a pcap `DLT_*` value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

/// Link types by name (without `DLT_`), with Linux's numbering.
const LINK_TYPES: &[(&str, u32)] = &[
    ("NULL", 0),
    ("EN10MB", 1),
    ("IEEE802", 6),
    ("ARCNET", 7),
    ("SLIP", 8),
    ("PPP", 9),
    ("FDDI", 10),
    ("ATM_RFC1483", 11),
    ("RAW", 12),
    ("SLIP_BSDOS", 15),
    ("PPP_BSDOS", 16),
    ("ATM_CLIP", 19),
    ("PPP_SERIAL", 50),
    ("PPP_ETHER", 51),
    ("SYMANTEC_FIREWALL", 99),
    ("C_HDLC", 104),
    ("IEEE802_11", 105),
    ("FRELAY", 107),
    ("LOOP", 108),
    ("ENC", 109),
    ("LINUX_SLL", 113),
    ("LTALK", 114),
    ("PFLOG", 117),
    ("PRISM_HEADER", 119),
    ("IP_OVER_FC", 122),
    ("SUNATM", 123),
    ("IEEE802_11_RADIO", 127),
    ("ARCNET_LINUX", 129),
    ("JUNIPER_MFR", 134),
    ("APPLE_IP_OVER_IEEE1394", 138),
    ("MTP2", 140),
    ("IEEE802_11_RADIO_AVS", 163),
    ("BACNET_MS_TP", 165),
    ("PPP_PPPD", 166),
    ("PPI", 192),
    ("IPNET", 226),
    ("IPV4", 228),
    ("IPV6", 229),
    ("NETANALYZER", 240),
    ("NETANALYZER_TRANSPARENT", 241),
    ("LINUX_SLL2", 276),
    ("DSA_TAG_BRCM", 281),
    ("DSA_TAG_DSA", 284),
];

impl LinkType {
    /// Ethernet (`DLT_EN10MB`).
    pub const EN10MB: LinkType = LinkType(1);

    /// Looks a link type up by its name without `DLT_` (`"EN10MB"`).
    pub fn from_name(name: &str) -> Option<LinkType> {
        LINK_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| LinkType(*v))
    }

    /// The name of this link type without `DLT_`, if known.
    pub fn name(self) -> Option<&'static str> {
        LINK_TYPES
            .iter()
            .find(|(_, v)| *v == self.0)
            .map(|(n, _)| *n)
    }
}

/// How to compile an expression.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The capture's link-layer header type.
    pub linktype: LinkType,
    /// What an accepting program returns (libpcap's default is 262144).
    pub snaplen: u32,
    /// The IPv4 netmask for `ip broadcast`; `0xffffffff` means unknown.
    pub netmask: u32,
    /// Run libpcap's optimizer.
    pub optimize: bool,
    /// Allow Linux BPF extensions (ancillary loads such as `vlan_tci`).
    pub linux_extensions: bool,
    /// Compile for a savefile rather than a live capture (libpcap's
    /// `BPF_OFFLINE_AF_HANDLING`): BSD loopback headers then match every
    /// OS's address-family numbers in either byte order.
    pub offline: bool,
    /// With `offline`: the savefile's byte order differs from this host's
    /// (`pcap_t`'s `swapped`), which decides the first of the two orders tried.
    pub swapped: bool,
    /// Where host, network, protocol and service names come from; without
    /// one only the built-in protocol and service names resolve.
    pub names: Option<NameResolver>,
}

impl CompileOptions {
    /// libpcap's defaults for a link type: snaplen 262144, netmask unknown, optimized.
    pub fn new(linktype: LinkType) -> CompileOptions {
        CompileOptions {
            linktype,
            snaplen: 262_144,
            netmask: 0xffff_ffff,
            optimize: true,
            linux_extensions: false,
            offline: false,
            swapped: false,
            names: None,
        }
    }
}

/// Why an expression did not compile: libpcap's reason, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// Byte offset in the expression of the token or primitive at fault, if known.
    pub position: Option<usize>,
    /// libpcap's message, e.g. "port 65536 greater than maximum 65535".
    pub message: String,
}

impl CompileError {
    pub(crate) fn at(pos: usize, message: String) -> CompileError {
        CompileError {
            position: Some(pos),
            message,
        }
    }
    pub(crate) fn whole(message: impl Into<String>) -> CompileError {
        CompileError {
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} (at byte {p})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CompileError {}

/// Compiles a pcap-filter(7) expression to classic BPF.
pub fn compile(expr: &str, opts: &CompileOptions) -> Result<Vec<Insn>, CompileError> {
    if opts.snaplen == 0 {
        return Err(CompileError::whole("snaplen of 0 rejects all packets"));
    }
    let names = match &opts.names {
        Some(n) => n,
        None => NameResolver::builtin_ref(),
    };
    let new_gen = || {
        gen::Gen::new(
            opts.linktype,
            opts.snaplen,
            opts.netmask,
            opts.linux_extensions,
            opts.offline,
            opts.swapped,
            Some(names),
        )
    };
    // libpcap generates code while it parses, so a primitive's error comes
    // before a syntax (or token) error further on: check those first.
    let earlier_error = |done: &[ast::Expr]| -> Option<CompileError> {
        done.iter()
            .find_map(|p| new_gen().and_then(|mut g| g.gen_expr(p)).err())
    };
    let toks = match lexer::lex(expr) {
        Ok(t) => t,
        Err(e) => {
            let upto = e.position.unwrap_or(0).min(expr.len());
            let done = match lexer::lex(&expr[..upto]).map(|t| parser::parse(t, upto)) {
                Ok(Err(failure)) => failure.done,
                _ => Vec::new(),
            };
            return Err(earlier_error(&done).unwrap_or(e));
        }
    };
    let tree = match parser::parse(toks, expr.len()) {
        Ok(t) => t,
        Err(failure) => return Err(earlier_error(&failure.done).unwrap_or(failure.error)),
    };
    let mut g = new_gen()?;
    let root = match tree {
        Some(e) => {
            let b = g.gen_expr(&e)?;
            g.finish(b)?
        }
        None => g.retblk(opts.snaplen),
    };
    let no_optimize = g.no_optimize;
    let mut blocks = g.blocks;
    let mut root = Some(root);
    if opts.optimize && !no_optimize {
        root = opt::optimize(&mut blocks, root.unwrap_or(0))?;
        let rejects = match root {
            None => true,
            Some(r) => blocks[r].s.code == gen::RET | gen::K && blocks[r].s.k == 0,
        };
        if rejects {
            return Err(CompileError::whole("expression rejects all packets"));
        }
    }
    let raw = emit::icode_to_fcode(&mut blocks, root.unwrap_or(0))?;
    // A loop into a sized Vec: collecting into a Result grew it step by step.
    let mut prog = Vec::with_capacity(raw.len());
    for (i, f) in raw.iter().enumerate() {
        let insn =
            Insn::decode(*f, i).map_err(|e| CompileError::whole(format!("internal error: {e}")))?;
        prog.push(insn);
    }
    Ok(prog)
}

/// The raw `struct sock_filter` program for an expression (as `pcap_compile` returns it).
pub fn compile_raw(expr: &str, opts: &CompileOptions) -> Result<Vec<SockFilter>, CompileError> {
    compile(expr, opts).map(|p| p.iter().map(Insn::encode).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The optimizer keeps its arrays per thread between compiles: a big
    /// graph, an error, then small ones must give what a fresh thread gives.
    #[test]
    fn optimizer_buffers_carry_nothing_between_compiles() {
        let opts = CompileOptions::new(LinkType::EN10MB);
        let exprs = [
            "tcp port 22",
            "icmp or arp",
            "ip6 and tcp dst port 443",
            "ether broadcast or ether multicast",
        ];
        let fresh: Vec<_> = std::thread::spawn(move || {
            let opts = CompileOptions::new(LinkType::EN10MB);
            exprs.map(|e| compile(e, &opts).unwrap())
        })
        .join()
        .unwrap()
        .into();
        let big = (0..40)
            .map(|i| format!("(tcp port {i} and ip host 10.0.0.{i})"))
            .collect::<Vec<_>>()
            .join(" or ");
        assert!(compile(&big, &opts).unwrap().len() > 200);
        // A division the optimizer finds is by zero fails in its passes,
        // leaving the arrays mid-pass.
        let err = compile("ip[2] / (len * 0) > 1 and tcp", &opts).unwrap_err();
        assert_eq!(
            (err.position, err.message.as_str()),
            (None, "division by zero")
        );
        for (e, want) in exprs.iter().zip(&fresh) {
            assert_eq!(&compile(e, &opts).unwrap(), want, "{e}");
        }
    }
}
