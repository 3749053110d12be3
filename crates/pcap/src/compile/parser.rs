//! A recursive-descent parser for libpcap's grammar (`grammar.y.in`).
//!
//! The grammar is LALR(1) with a few places where bison decides by a later
//! token (an `id` versus a `term` after `and`/`or`, a parenthesised
//! expression versus parenthesised arithmetic); the parser tries the
//! alternative bison would take and backtracks, which is cheap because it
//! only builds a tree.

use super::ast::{q, Arth, Expr, IdKind, Other, Qual};
use super::lexer::{Tok, Token};
use super::CompileError;

pub(crate) const JEQ: u16 = 0x10;
pub(crate) const JGT: u16 = 0x20;
pub(crate) const JGE: u16 = 0x30;

/// A parse error with the primitives completed before it, in the order
/// bison would have reduced them (and libpcap generated code for them).
pub(crate) struct ParseFailure {
    pub error: CompileError,
    pub done: Vec<Expr>,
}

/// Parses a whole filter expression; `None` for an empty one.
pub(crate) fn parse(toks: Vec<Token>, src_len: usize) -> Result<Option<Expr>, ParseFailure> {
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        src_len,
        depth: Default::default(),
        done: Vec::new(),
    };
    let result = p.expr(Qual::ERR).and_then(|(e, _)| {
        if p.pos != p.toks.len() {
            Err(p.syntax())
        } else {
            Ok(e)
        }
    });
    match result {
        Ok(e) => Ok(Some(e)),
        Err(error) => Err(ParseFailure {
            error,
            done: p.done,
        }),
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    src_len: usize,
    /// Current nesting of parentheses, `not`s and operands.
    depth: std::rc::Rc<std::cell::Cell<usize>>,
    /// Primitives completed so far (see [`ParseFailure`]).
    done: Vec<Expr>,
}

/// Nesting deeper than this is rejected rather than risking the stack.
const MAX_DEPTH: usize = 200;

/// One level of nesting, given back when dropped (also on errors and backtracking).
struct DepthGuard(std::rc::Rc<std::cell::Cell<usize>>);

impl Drop for DepthGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A chain of `and`/`or`s, or its only element.
fn chain(first: Expr, rest: Vec<(bool, Expr)>) -> Expr {
    if rest.is_empty() {
        first
    } else {
        Expr::Chain(Box::new(first), rest)
    }
}

type PResult<T> = Result<T, CompileError>;

/// Protocol qualifier keywords (grammar.y's `pname`).
fn pname(kw: &str) -> Option<u8> {
    Some(match kw {
        "link" => q::LINK,
        "ip" => q::IP,
        "arp" => q::ARP,
        "rarp" => q::RARP,
        "sctp" => q::SCTP,
        "tcp" => q::TCP,
        "udp" => q::UDP,
        "icmp" => q::ICMP,
        "igmp" => q::IGMP,
        "igrp" => q::IGRP,
        "pim" => q::PIM,
        "vrrp" => q::VRRP,
        "carp" => q::CARP,
        "atalk" => q::ATALK,
        "aarp" => q::AARP,
        "decnet" => q::DECNET,
        "lat" => q::LAT,
        "sca" => q::SCA,
        "mopdl" => q::MOPDL,
        "moprc" => q::MOPRC,
        "ip6" => q::IPV6,
        "icmp6" => q::ICMPV6,
        "ah" => q::AH,
        "esp" => q::ESP,
        "iso" => q::ISO,
        "esis" => q::ESIS,
        "isis" => q::ISIS,
        "l1" => q::ISIS_L1,
        "l2" => q::ISIS_L2,
        "iih" => q::ISIS_IIH,
        "lsp" => q::ISIS_LSP,
        "snp" => q::ISIS_SNP,
        "psnp" => q::ISIS_PSNP,
        "csnp" => q::ISIS_CSNP,
        "clnp" => q::CLNP,
        "stp" => q::STP,
        "ipx" => q::IPX,
        "netbeui" => q::NETBEUI,
        "radio" => q::RADIO,
        _ => return None,
    })
}

fn aqual(kw: &str) -> Option<u8> {
    Some(match kw {
        "host" => q::HOST,
        "net" => q::NET,
        "port" => q::PORT,
        "portrange" => q::PORTRANGE,
        _ => return None,
    })
}

fn simple_dqual(kw: &str) -> Option<u8> {
    Some(match kw {
        "src" => q::SRC,
        "dst" => q::DST,
        "addr1" => q::ADDR1,
        "addr2" => q::ADDR2,
        "addr3" => q::ADDR3,
        "addr4" => q::ADDR4,
        "ra" => q::RA,
        "ta" => q::TA,
        _ => return None,
    })
}

fn is_head_start(kw: &str) -> bool {
    simple_dqual(kw).is_some()
        || aqual(kw).is_some()
        || matches!(kw, "proto" | "protochain" | "gateway")
}

/// 802.11 frame types (grammar.y's `ieee80211_types`).
const WLAN_TYPES: &[(&str, u32)] = &[
    ("data", 0x08),
    ("mgt", 0x00),
    ("management", 0x00),
    ("ctl", 0x04),
    ("control", 0x04),
];
const WLAN_MGT: &[(&str, u32)] = &[
    ("assocreq", 0x00),
    ("assoc-req", 0x00),
    ("assocresp", 0x10),
    ("assoc-resp", 0x10),
    ("reassocreq", 0x20),
    ("reassoc-req", 0x20),
    ("reassocresp", 0x30),
    ("reassoc-resp", 0x30),
    ("probereq", 0x40),
    ("probe-req", 0x40),
    ("proberesp", 0x50),
    ("probe-resp", 0x50),
    ("beacon", 0x80),
    ("atim", 0x90),
    ("disassoc", 0xa0),
    ("disassociation", 0xa0),
    ("auth", 0xb0),
    ("authentication", 0xb0),
    ("deauth", 0xc0),
    ("deauthentication", 0xc0),
];
const WLAN_CTL: &[(&str, u32)] = &[
    ("bar", 0x80),
    ("ba", 0x90),
    ("ps-poll", 0xa0),
    ("rts", 0xb0),
    ("cts", 0xc0),
    ("ack", 0xd0),
    ("cf-end", 0xe0),
    ("cf-end-ack", 0xf0),
];
const WLAN_DATA: &[(&str, u32)] = &[
    ("data", 0x00),
    ("data-cf-ack", 0x10),
    ("data-cf-poll", 0x20),
    ("data-cf-ack-poll", 0x30),
    ("null", 0x40),
    ("cf-ack", 0x50),
    ("cf-poll", 0x60),
    ("cf-ack-poll", 0x70),
    ("qos-data", 0x80),
    ("qos-data-cf-ack", 0x90),
    ("qos-data-cf-poll", 0xa0),
    ("qos-data-cf-ack-poll", 0xb0),
    ("qos", 0xc0),
    ("qos-cf-poll", 0xe0),
    ("qos-cf-ack-poll", 0xf0),
];

fn wlan_subtypes(ty: u32) -> &'static [(&'static str, u32)] {
    match ty {
        0x00 => WLAN_MGT,
        0x04 => WLAN_CTL,
        _ => WLAN_DATA,
    }
}

fn str2tok(s: &str, t: &[(&str, u32)]) -> Option<u32> {
    t.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.kind)
    }
    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src_len, |t| t.pos)
    }
    /// Records a completed primitive.
    fn done(&mut self, e: Expr) -> Expr {
        self.done.push(e.clone());
        e
    }

    fn deeper(&self) -> PResult<DepthGuard> {
        let d = self.depth.get() + 1;
        self.depth.set(d);
        let guard = DepthGuard(self.depth.clone());
        if d > MAX_DEPTH {
            return Err(CompileError::at(
                self.here(),
                format!("can't parse filter expression: nested more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(guard)
    }

    fn syntax(&self) -> CompileError {
        CompileError::at(
            self.here(),
            "can't parse filter expression: syntax error".to_string(),
        )
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Kw(k)) if *k == kw)
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(k)) if *k == p)
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let y = self.is_kw(kw);
        if y {
            self.pos += 1;
        }
        y
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        let y = self.is_punct(p);
        if y {
            self.pos += 1;
        }
        y
    }
    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }
    fn num(&mut self) -> PResult<u32> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                let n = *n;
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.syntax()),
        }
    }
    /// `pnum: NUM | '(' pnum ')'`, if one starts here.
    fn try_pnum(&mut self) -> Option<u32> {
        let save = self.pos;
        let mut depth = 0;
        while self.eat_punct("(") {
            depth += 1;
        }
        if let Some(Tok::Num(n)) = self.peek() {
            let n = *n;
            self.pos += 1;
            let mut ok = true;
            for _ in 0..depth {
                ok &= self.eat_punct(")");
            }
            if ok {
                return Some(n);
            }
        }
        self.pos = save;
        None
    }

    fn at_boolean_end(&self) -> bool {
        matches!(
            self.peek(),
            None | Some(Tok::Kw("and")) | Some(Tok::Kw("or")) | Some(Tok::Punct(")"))
        )
    }

    fn expr(&mut self, q0: Qual) -> PResult<(Expr, Qual)> {
        let (first, mut qual) = self.term(q0)?;
        let mut rest: Vec<(bool, Expr)> = Vec::new();
        loop {
            let is_and = if self.eat_kw("and") {
                true
            } else if self.eat_kw("or") {
                false
            } else {
                break;
            };
            let (save, mark) = (self.pos, self.done.len());
            let rhs = match self.id(qual) {
                Ok(id) if self.at_boolean_end() => (id, qual),
                _ => {
                    self.pos = save;
                    self.done.truncate(mark);
                    self.term(qual)?
                }
            };
            rest.push((is_and, rhs.0));
            qual = rhs.1;
        }
        Ok((chain(first, rest), qual))
    }

    fn term(&mut self, q0: Qual) -> PResult<(Expr, Qual)> {
        let _depth = self.deeper()?;
        if self.eat_kw("not") {
            let (e, qual) = self.term(q0)?;
            return Ok((Expr::Not(Box::new(e)), qual));
        }
        self.rterm(q0)
    }

    fn relation(&mut self) -> PResult<Expr> {
        let start = self.here();
        let a0 = self.arth(0)?;
        let (code, rev) = match self.peek() {
            Some(Tok::Punct(">")) => (JGT, false),
            Some(Tok::Punct(">=")) => (JGE, false),
            Some(Tok::Punct("=")) => (JEQ, false),
            Some(Tok::Punct("<=")) => (JGT, true),
            Some(Tok::Punct("<")) => (JGE, true),
            Some(Tok::Punct("!=")) => (JEQ, true),
            _ => return Err(self.syntax()),
        };
        self.pos += 1;
        let a1 = self.arth(0)?;
        Ok(self.done(Expr::Relation(code, a0, a1, rev, start)))
    }

    fn rterm(&mut self, q0: Qual) -> PResult<(Expr, Qual)> {
        let start = self.here();
        let tok = self.peek().cloned().ok_or_else(|| self.syntax())?;
        match tok {
            Tok::Punct("(") => {
                let (save, mark) = (self.pos, self.done.len());
                if let Ok(rel) = self.relation() {
                    return Ok((rel, Qual::ERR));
                }
                self.pos = save + 1;
                self.done.truncate(mark);
                let (e, _) = self.expr(q0)?;
                self.expect_punct(")")?;
                Ok((e, q0))
            }
            Tok::Num(_) | Tok::Punct("-") | Tok::Kw("len") => Ok((self.relation()?, Qual::ERR)),
            Tok::Kw(kw) => {
                if let Some(p) = pname(kw) {
                    match self.peek_at(1) {
                        Some(Tok::Kw(k)) if is_head_start(k) => {
                            self.pos += 1;
                            self.head_id(p)
                        }
                        Some(Tok::Punct("[")) => Ok((self.relation()?, Qual::ERR)),
                        Some(Tok::Kw("broadcast")) => {
                            self.pos += 2;
                            Ok((
                                self.done(Expr::Other(Other::Broadcast(p), start)),
                                Qual::ERR,
                            ))
                        }
                        Some(Tok::Kw("multicast")) => {
                            self.pos += 2;
                            Ok((
                                self.done(Expr::Other(Other::Multicast(p), start)),
                                Qual::ERR,
                            ))
                        }
                        Some(Tok::Kw("type" | "subtype" | "dir")) => {
                            self.pos += 1;
                            Ok((self.p80211(start)?, Qual::ERR))
                        }
                        _ => {
                            self.pos += 1;
                            Ok((self.done(Expr::ProtoAbbrev(p, start)), Qual::ERR))
                        }
                    }
                } else if is_head_start(kw) {
                    self.head_id(q::DEFAULT)
                } else {
                    Ok((self.other(kw, start)?, Qual::ERR))
                }
            }
            _ => Err(self.syntax()),
        }
    }

    /// `head id` after the protocol qualifier.
    fn head_id(&mut self, proto: u8) -> PResult<(Expr, Qual)> {
        let mut dir = q::DEFAULT;
        let mut addr = q::DEFAULT;
        if let Some(Tok::Kw(k)) = self.peek().cloned() {
            if k == "src" || k == "dst" {
                self.pos += 1;
                dir = if k == "src" { q::SRC } else { q::DST };
                let other = if k == "src" { "dst" } else { "src" };
                if matches!(self.peek(), Some(Tok::Kw("or" | "and")))
                    && matches!(self.peek_at(1), Some(Tok::Kw(o)) if *o == other)
                {
                    dir = if self.is_kw("or") { q::OR } else { q::AND };
                    self.pos += 2;
                }
            } else if let Some(d) = simple_dqual(k) {
                self.pos += 1;
                dir = d;
            }
        }
        match self.peek().cloned() {
            Some(Tok::Kw(k)) if aqual(k).is_some() => {
                addr = aqual(k).unwrap_or(q::DEFAULT);
                self.pos += 1;
            }
            Some(Tok::Kw("proto")) if dir == q::DEFAULT => {
                addr = q::PROTO;
                self.pos += 1;
            }
            Some(Tok::Kw("protochain")) if dir == q::DEFAULT => {
                addr = q::PROTOCHAIN;
                self.pos += 1;
            }
            Some(Tok::Kw("gateway")) if dir == q::DEFAULT => {
                addr = q::GATEWAY;
                self.pos += 1;
            }
            _ => {
                if dir == q::DEFAULT {
                    return Err(self.syntax());
                }
            }
        }
        let qual = Qual { addr, proto, dir };
        let id = self.id(qual)?;
        Ok((id, qual))
    }

    /// grammar.y's `id` under inherited qualifiers.
    fn id(&mut self, qual: Qual) -> PResult<Expr> {
        let _depth = self.deeper()?;
        let start = self.here();
        let tok = self.peek().cloned().ok_or_else(|| self.syntax())?;
        let kind = match tok {
            Tok::Num(n) => {
                self.pos += 1;
                IdKind::Num(n)
            }
            Tok::Id(s) => {
                self.pos += 1;
                IdKind::Name(s)
            }
            Tok::Hid(s) => {
                self.pos += 1;
                if self.eat_punct("/") {
                    IdKind::HidLen(s, self.num()?)
                } else if self.eat_kw("mask") {
                    match self.peek().cloned() {
                        Some(Tok::Hid(m)) => {
                            self.pos += 1;
                            IdKind::HidMask(s, m)
                        }
                        _ => return Err(self.syntax()),
                    }
                } else {
                    IdKind::Hid(s)
                }
            }
            Tok::Hid6(s) => {
                self.pos += 1;
                if self.eat_punct("/") {
                    IdKind::Hid6Len(s, self.num()?)
                } else {
                    IdKind::Hid6(s)
                }
            }
            Tok::Eid(s) => {
                self.pos += 1;
                IdKind::Eid(s)
            }
            Tok::Aid(s) => {
                self.pos += 1;
                IdKind::Aid(s)
            }
            Tok::Kw("not") => {
                self.pos += 1;
                let inner = self.id(qual)?;
                return Ok(Expr::Not(Box::new(inner)));
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let first = self.id(qual)?;
                let mut rest = Vec::new();
                loop {
                    let is_and = if self.eat_kw("and") {
                        true
                    } else if self.eat_kw("or") {
                        false
                    } else {
                        break;
                    };
                    rest.push((is_and, self.id(qual)?));
                }
                let e = chain(first, rest);
                self.expect_punct(")")?;
                return Ok(e);
            }
            _ => return Err(self.syntax()),
        };
        Ok(self.done(Expr::Id(qual, kind, start)))
    }

    fn arth(&mut self, min_bp: u8) -> PResult<Arth> {
        let _depth = self.deeper()?;
        let first = self.arth_primary()?;
        let mut rest: Vec<(u16, Arth)> = Vec::new();
        loop {
            let (code, bp, always) = match self.peek() {
                Some(Tok::Punct("|")) => (0x40, 1, false),
                Some(Tok::Punct("&")) => (0x50, 2, false),
                Some(Tok::Punct("<<")) => (0x60, 3, false),
                Some(Tok::Punct(">>")) => (0x70, 3, false),
                Some(Tok::Punct("+")) => (0x00, 4, false),
                Some(Tok::Punct("-")) => (0x10, 4, false),
                Some(Tok::Punct("*")) => (0x20, 5, false),
                Some(Tok::Punct("/")) => (0x30, 5, false),
                // '%' and '^' have no declared precedence: bison always shifts them.
                Some(Tok::Punct("%")) => (0x90, 0, true),
                Some(Tok::Punct("^")) => (0xa0, 0, true),
                _ => break,
            };
            if !always && bp <= min_bp {
                break;
            }
            self.pos += 1;
            let rhs = self.arth(bp)?;
            rest.push((code, rhs));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Arth::Chain(Box::new(first), rest)
        })
    }

    fn arth_primary(&mut self) -> PResult<Arth> {
        let tok = self.peek().cloned().ok_or_else(|| self.syntax())?;
        match tok {
            Tok::Num(n) => {
                self.pos += 1;
                Ok(Arth::Num(n))
            }
            Tok::Kw("len") => {
                self.pos += 1;
                Ok(Arth::Len)
            }
            Tok::Punct("-") => {
                self.pos += 1;
                Ok(Arth::Neg(Box::new(self.arth(6)?)))
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let a = self.arth(0)?;
                self.expect_punct(")")?;
                Ok(a)
            }
            Tok::Kw(kw) => {
                let p = pname(kw).ok_or_else(|| self.syntax())?;
                self.pos += 1;
                self.expect_punct("[")?;
                let idx = self.arth(0)?;
                let size = if self.eat_punct(":") { self.num()? } else { 1 };
                self.expect_punct("]")?;
                Ok(Arth::Load(p, Box::new(idx), size))
            }
            _ => Err(self.syntax()),
        }
    }

    fn opt_pnum(&mut self) -> Option<u32> {
        self.try_pnum()
    }

    fn id_text(&mut self) -> PResult<String> {
        match self.peek().cloned() {
            Some(Tok::Id(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.syntax()),
        }
    }

    fn other(&mut self, kw: &'static str, start: usize) -> PResult<Expr> {
        self.pos += 1;
        let o =
            match kw {
                "broadcast" => Other::Broadcast(q::DEFAULT),
                "multicast" => Other::Multicast(q::DEFAULT),
                "less" => Other::Less(self.num()?),
                "greater" => Other::Greater(self.num()?),
                "byte" => {
                    let idx = self.num()?;
                    let op = match self.peek() {
                        Some(Tok::Punct("&")) => b'&',
                        Some(Tok::Punct("|")) => b'|',
                        Some(Tok::Punct("<")) => b'<',
                        Some(Tok::Punct(">")) => b'>',
                        Some(Tok::Punct("=")) => b'=',
                        _ => return Err(self.syntax()),
                    };
                    self.pos += 1;
                    Other::Byte(op, idx, self.num()?)
                }
                "inbound" => Other::Inbound,
                "outbound" => Other::Outbound,
                "ifindex" => Other::Ifindex(self.num()?),
                "vlan" => Other::Vlan(self.opt_pnum()),
                "mpls" => Other::Mpls(self.opt_pnum()),
                "pppoed" => Other::Pppoed,
                "pppoes" => Other::Pppoes(self.opt_pnum()),
                "geneve" => Other::Geneve(self.opt_pnum()),
                "vxlan" => Other::Vxlan(self.opt_pnum()),
                "ifname" => Other::PfIfname(self.id_text()?),
                "rset" => Other::PfRset(self.id_text()?),
                "rnr" => Other::PfRnr(self.num()?),
                "srnr" => Other::PfSrnr(self.num()?),
                "reason" => match self.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        self.pos += 1;
                        Other::PfReason(n)
                    }
                    Some(Tok::Id(s)) => {
                        self.pos += 1;
                        Other::PfReason(super::names::pf_reason(&s).ok_or_else(|| {
                            CompileError::at(start, format!("unknown PF reason \"{s}\""))
                        })?)
                    }
                    _ => return Err(self.syntax()),
                },
                "action" => {
                    let s = self.id_text()?;
                    Other::PfAction(super::names::pf_action(&s).ok_or_else(|| {
                        CompileError::at(start, format!("unknown PF action \"{s}\""))
                    })?)
                }
                "type" | "subtype" | "dir" => {
                    self.pos -= 1;
                    return self.p80211(start);
                }
                "llc" => {
                    if self.eat_kw("rnr") {
                        Other::LlcRnr
                    } else if let Some(Tok::Id(s)) = self.peek().cloned() {
                        self.pos += 1;
                        Other::Llc(Some(s))
                    } else {
                        Other::Llc(None)
                    }
                }
                "lane" => Other::AtmType(30),
                "metac" => Other::AtmType(22),
                "bcc" => Other::AtmType(23),
                "oamf4ec" => Other::AtmType(25),
                "oamf4sc" => Other::AtmType(24),
                "sc" => Other::AtmType(26),
                "ilmic" => Other::AtmType(27),
                "oam" => Other::AtmMulti(28),
                "oamf4" => Other::AtmMulti(29),
                "connectmsg" => Other::AtmMulti(70),
                "metaconnect" => Other::AtmMulti(71),
                "vpi" | "vci" => {
                    let field = if kw == "vpi" { 51 } else { 52 };
                    return self
                        .field_value(start, |v, code, rev| Other::AtmField(field, v, code, rev));
                }
                "fisu" => Other::Mtp2Type(22),
                "lssu" => Other::Mtp2Type(23),
                "msu" => Other::Mtp2Type(24),
                "hfisu" => Other::Mtp2Type(25),
                "hlssu" => Other::Mtp2Type(26),
                "hmsu" => Other::Mtp2Type(27),
                "sio" | "opc" | "dpc" | "sls" | "hsio" | "hopc" | "hdpc" | "hsls" => {
                    let field = match kw {
                        "sio" => 1,
                        "opc" => 2,
                        "dpc" => 3,
                        "sls" => 4,
                        "hsio" => 5,
                        "hopc" => 6,
                        "hdpc" => 7,
                        _ => 8,
                    };
                    return self
                        .field_value(start, |v, code, rev| Other::Mtp3Field(field, v, code, rev));
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.syntax());
                }
            };
        Ok(self.done(Expr::Other(o, start)))
    }

    /// `atmvalue` / `mtp3value`: NUM, relop NUM, or a parenthesised `or` list of NUMs.
    fn field_value(&mut self, start: usize, mk: impl Fn(u32, u16, bool) -> Other) -> PResult<Expr> {
        let rel = match self.peek() {
            Some(Tok::Punct(">")) => Some((JGT, false)),
            Some(Tok::Punct(">=")) => Some((JGE, false)),
            Some(Tok::Punct("=")) => Some((JEQ, false)),
            Some(Tok::Punct("<=")) => Some((JGT, true)),
            Some(Tok::Punct("<")) => Some((JGE, true)),
            Some(Tok::Punct("!=")) => Some((JEQ, true)),
            _ => None,
        };
        if let Some((code, rev)) = rel {
            self.pos += 1;
            let v = self.num()?;
            return Ok(self.done(Expr::Other(mk(v, code, rev), start)));
        }
        if self.eat_punct("(") {
            let first = Expr::Other(mk(self.num()?, JEQ, false), start);
            let first = self.done(first);
            let mut rest = Vec::new();
            while self.eat_kw("or") {
                let v = self.num()?;
                let e = self.done(Expr::Other(mk(v, JEQ, false), start));
                rest.push((false, e));
            }
            let e = chain(first, rest);
            self.expect_punct(")")?;
            return Ok(e);
        }
        let v = self.num()?;
        Ok(self.done(Expr::Other(mk(v, JEQ, false), start)))
    }

    fn p80211(&mut self, start: usize) -> PResult<Expr> {
        let err = |m: String| CompileError::at(start, m);
        if self.eat_kw("type") {
            let ty = match self.peek().cloned() {
                Some(Tok::Num(n)) => {
                    self.pos += 1;
                    if n & !0x0c != 0 {
                        return Err(err(format!("invalid 802.11 type value 0x{n:02x}")));
                    }
                    n
                }
                Some(Tok::Id(s)) => {
                    self.pos += 1;
                    str2tok(&s, WLAN_TYPES)
                        .ok_or_else(|| err(format!("unknown 802.11 type name \"{s}\"")))?
                }
                _ => return Err(self.syntax()),
            };
            if self.eat_kw("subtype") {
                let st = match self.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        self.pos += 1;
                        if n & !0xf0 != 0 {
                            return Err(err(format!("invalid 802.11 subtype value 0x{n:02x}")));
                        }
                        n
                    }
                    Some(Tok::Id(s)) => {
                        self.pos += 1;
                        if ![0x00, 0x04, 0x08].contains(&ty) {
                            return Err(err("unknown 802.11 type".to_string()));
                        }
                        str2tok(&s, wlan_subtypes(ty))
                            .ok_or_else(|| err(format!("unknown 802.11 subtype name \"{s}\"")))?
                    }
                    _ => return Err(self.syntax()),
                };
                return Ok(self.done(Expr::Other(Other::P80211Type(ty | st, 0xfc), start)));
            }
            return Ok(self.done(Expr::Other(Other::P80211Type(ty, 0x0c), start)));
        }
        if self.eat_kw("subtype") {
            let s = self.id_text()?;
            for (ty, table) in [(0x00, WLAN_MGT), (0x04, WLAN_CTL), (0x08, WLAN_DATA)] {
                if let Some(st) = str2tok(&s, table) {
                    return Ok(self.done(Expr::Other(Other::P80211Type(st | ty, 0xfc), start)));
                }
            }
            return Err(err("unknown 802.11 type name".to_string()));
        }
        if self.eat_kw("dir") {
            let d = match self.peek().cloned() {
                Some(Tok::Num(n)) => {
                    self.pos += 1;
                    if n & !0x03 != 0 {
                        return Err(err(format!("invalid 802.11 direction value 0x{n:x}")));
                    }
                    n
                }
                Some(Tok::Id(s)) => {
                    self.pos += 1;
                    match s.to_ascii_lowercase().as_str() {
                        "nods" => 0,
                        "tods" => 1,
                        "fromds" => 2,
                        "dstods" => 3,
                        _ => return Err(err("unknown 802.11 direction".to_string())),
                    }
                }
                _ => return Err(self.syntax()),
            };
            return Ok(self.done(Expr::Other(Other::P80211Dir(d), start)));
        }
        Err(self.syntax())
    }
}
