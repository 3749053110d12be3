//! The code generator: libpcap's `gencode.c` block graph. Each test is a
//! block ending in a conditional jump; `and`/`or`/`not` wire blocks
//! together through the `sense` flag and lists threaded through unresolved
//! jump fields (`backpatch`, `merge`), exactly as libpcap does, so that the
//! optimizer and the linearisation see the same graph.

use super::ast::{q, Arth, Expr, IdKind, Other, Qual};
use super::names::{self, HostAddr, NameResolver};
use super::{CompileError, LinkType};

// Opcode pieces (pcap/bpf.h).
pub(crate) const LD: i32 = 0x00;
pub(crate) const LDX: i32 = 0x01;
pub(crate) const ST: i32 = 0x02;
pub(crate) const STX: i32 = 0x03;
pub(crate) const ALU: i32 = 0x04;
pub(crate) const JMP: i32 = 0x05;
pub(crate) const RET: i32 = 0x06;
pub(crate) const MISC: i32 = 0x07;
pub(crate) const W: i32 = 0x00;
pub(crate) const H: i32 = 0x08;
pub(crate) const B: i32 = 0x10;
pub(crate) const IMM: i32 = 0x00;
pub(crate) const ABS: i32 = 0x20;
pub(crate) const IND: i32 = 0x40;
pub(crate) const MEM: i32 = 0x60;
pub(crate) const LEN: i32 = 0x80;
pub(crate) const MSH: i32 = 0xa0;
pub(crate) const K: i32 = 0x00;
pub(crate) const X: i32 = 0x08;
pub(crate) const JA: i32 = 0x00;
pub(crate) const JEQ: i32 = 0x10;
pub(crate) const JGT: i32 = 0x20;
pub(crate) const JGE: i32 = 0x30;
pub(crate) const JSET: i32 = 0x40;
pub(crate) const ADD: i32 = 0x00;
pub(crate) const SUB: i32 = 0x10;
pub(crate) const AND: i32 = 0x50;
pub(crate) const OR: i32 = 0x40;
pub(crate) const LSH: i32 = 0x60;
pub(crate) const NEG: i32 = 0x80;
pub(crate) const TAX: i32 = 0x00;
pub(crate) const TXA: i32 = 0x80;
/// libpcap's `NOP` pseudo-opcode (the optimizer turns dead statements into it).
pub(crate) const NOP: i32 = -1;
/// Scratch memory words (`BPF_MEMWORDS`).
pub(crate) const MEMWORDS: usize = 16;

const OFFSET_NOT_SET: u32 = u32::MAX;
const PROTO_UNDEF: i32 = -1;

const ETHERMTU: u32 = 1500;
const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_ARP: u32 = 0x0806;
const ETHERTYPE_REVARP: u32 = 0x8035;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_ATALK: u32 = 0x809b;
const ETHERTYPE_AARP: u32 = 0x80f3;
const ETHERTYPE_IPX: u32 = 0x8137;
const ETHERTYPE_DN: u32 = 0x6003;
const ETHERTYPE_LAT: u32 = 0x6004;
const ETHERTYPE_SCA: u32 = 0x6007;
const ETHERTYPE_MOPDL: u32 = 0x6001;
const ETHERTYPE_MOPRC: u32 = 0x6002;
const LLCSAP_IP: u32 = 0x06;
const LLCSAP_ISONS: u32 = 0xfe;
const LLCSAP_NETBEUI: u32 = 0xf0;
const LLCSAP_IPX: u32 = 0xe0;
const LLCSAP_8021D: u32 = 0x42;
const LLCSAP_SNAP: u8 = 0xaa;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
const IPPROTO_SCTP: i32 = 132;
const IPPROTO_FRAGMENT: u32 = 44;
const ISO8473_CLNP: u32 = 0x81;
const ISO9542_ESIS: u32 = 0x82;
const ISO10589_ISIS: u32 = 0x83;
const IP6_HDRLEN: u32 = 40;

/// A statement: an opcode (or [`NOP`]) and its constant. Conditional jumps
/// inside a block's statement list (only the variable-length header
/// preambles have them) name their targets by `uid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stmt {
    pub code: i32,
    pub k: u32,
    /// Identity for in-block jump targets; 0 when nothing jumps here.
    pub uid: u32,
    /// In-block jump targets (uids) of a conditional jump statement.
    pub jt: u32,
    pub jf: u32,
}

impl Stmt {
    pub fn new(code: i32, k: u32) -> Stmt {
        Stmt {
            code,
            k,
            uid: 0,
            jt: 0,
            jf: 0,
        }
    }
}

/// What a block is known to evaluate to, for folding `and`/`or` with constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Meaning {
    Uncertain,
    True,
    False,
}

/// One basic block: side-effect statements, then a branch (or return).
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub stmts: Vec<Stmt>,
    pub s: Stmt,
    pub jt: Option<usize>,
    pub jf: Option<usize>,
    pub sense: bool,
    pub head: usize,
    pub meaning: Meaning,
}

/// Where a header starts: a constant part plus, for variable-length link
/// headers, a scratch register holding the variable part.
#[derive(Clone, Copy, Debug)]
struct AbsOffset {
    constant_part: u32,
    is_variable: bool,
    reg: Option<u32>,
}

impl AbsOffset {
    fn fixed(c: u32) -> AbsOffset {
        AbsOffset {
            constant_part: c,
            is_variable: false,
            reg: None,
        }
    }
}

/// Which header an offset is relative to (gencode.c's `enum e_offrel`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum OffRel {
    Packet,
    LinkHdr,
    PrevLinkHdr,
    PrevMplsHdr,
    Llc,
    LinkPl,
    LinkPlNoSnap,
    LinkType,
    TranIpv4,
    TranIpv6,
}

/// An arithmetic value under construction (gencode.h's `struct arth`).
struct ArthVal {
    b: Option<usize>,
    s: Vec<Stmt>,
    regno: u32,
}

type GResult<T> = Result<T, CompileError>;

/// The compiler state for one expression.
pub(crate) struct Gen<'a> {
    pub blocks: Vec<Block>,
    linktype: LinkType,
    off_linkhdr: AbsOffset,
    off_prevlinkhdr: AbsOffset,
    off_linktype: AbsOffset,
    off_linkpl: AbsOffset,
    off_nl: u32,
    off_nl_nosnap: u32,
    label_stack_depth: u32,
    vlan_stack_depth: u32,
    is_vlan_vloffset: bool,
    outermost: LinkType,
    prevlinktype: LinkType,
    is_encap: bool,
    regused: [bool; MEMWORDS],
    curreg: usize,
    pub snaplen: u32,
    netmask: u32,
    linux_ext: bool,
    offline: bool,
    swapped: bool,
    names: Option<&'a NameResolver>,
    /// Byte position of the primitive being generated, for error messages.
    pos: usize,
    /// Set by code the optimizer cannot handle (in-block jumps), as libpcap's `no_optimize`.
    pub no_optimize: bool,
    next_uid: u32,
}

fn pqkw(p: u8) -> String {
    const T: &[&str] = &[
        "", "link", "ip", "arp", "rarp", "sctp", "tcp", "udp", "icmp", "igmp", "igrp", "atalk",
        "decnet", "lat", "sca", "moprc", "mopdl", "ip6", "icmp6", "ah", "esp", "pim", "vrrp",
        "aarp", "iso", "esis", "isis", "clnp", "stp", "ipx", "netbeui", "l1", "l2", "iih", "snp",
        "csnp", "psnp", "lsp", "radio", "carp",
    ];
    T.get(p as usize)
        .filter(|s| !s.is_empty())
        .map_or(format!("<invalid proto {p}>"), |s| s.to_string())
}

fn dqkw(d: u8) -> String {
    const T: &[&str] = &[
        "",
        "src",
        "dst",
        "src or dst",
        "src and dst",
        "addr1",
        "addr2",
        "addr3",
        "addr4",
        "ra",
        "ta",
    ];
    T.get(d as usize)
        .filter(|s| !s.is_empty())
        .map_or(format!("<invalid dir {d}>"), |s| s.to_string())
}

fn tqkw(a: u8) -> String {
    const T: &[&str] = &[
        "",
        "host",
        "net",
        "port",
        "gateway",
        "proto",
        "protochain",
        "portrange",
    ];
    T.get(a as usize)
        .filter(|s| !s.is_empty())
        .map_or(format!("<invalid type {a}>"), |s| s.to_string())
}

impl<'a> Gen<'a> {
    pub fn new(
        linktype: LinkType,
        snaplen: u32,
        netmask: u32,
        linux_ext: bool,
        offline: bool,
        swapped: bool,
        names: Option<&'a NameResolver>,
    ) -> GResult<Gen<'a>> {
        let mut g = Gen {
            // Room for a typical expression's blocks without regrowing.
            blocks: Vec::with_capacity(32),
            linktype,
            off_linkhdr: AbsOffset::fixed(0),
            off_prevlinkhdr: AbsOffset::fixed(0),
            off_linktype: AbsOffset::fixed(0),
            off_linkpl: AbsOffset::fixed(0),
            off_nl: 0,
            off_nl_nosnap: 0,
            label_stack_depth: 0,
            vlan_stack_depth: 0,
            is_vlan_vloffset: false,
            outermost: linktype,
            prevlinktype: linktype,
            is_encap: false,
            regused: [false; MEMWORDS],
            curreg: 0,
            snaplen,
            netmask,
            linux_ext,
            offline,
            swapped,
            names,
            pos: 0,
            no_optimize: false,
            next_uid: 0,
        };
        g.init_linktype()?;
        Ok(g)
    }

    fn err<T>(&self, msg: impl Into<String>) -> GResult<T> {
        Err(CompileError::at(self.pos, msg.into()))
    }

    /// gencode.c `init_linktype`: header offsets per link type.
    fn init_linktype(&mut self) -> GResult<()> {
        const N: u32 = OFFSET_NOT_SET;
        let mut linkhdr = 0;
        let (lt, pl, nl, nosnap) = match self.linktype.0 {
            1 => (12, 14, 0, 3),                      // EN10MB
            7 => (2, 6, 0, 0),                        // ARCNET
            129 => (4, 8, 0, 0),                      // ARCNET_LINUX
            8 => (N, 16, 0, 0),                       // SLIP
            15 => (N, 24, 0, 0),                      // SLIP_BSDOS
            0 | 108 => (0, 4, 0, 0),                  // NULL, LOOP
            109 => (0, 12, 0, 0),                     // ENC
            9 | 166 | 104 | 112 | 50 => (2, 4, 0, 0), // PPP, PPP_PPPD, C_HDLC, HDLC, PPP_SERIAL
            51 => (6, 8, 0, 0),                       // PPP_ETHER
            16 => (5, 24, 0, 0),                      // PPP_BSDOS
            10 => (13, 13, 8, 3),                     // FDDI (no pad on Linux)
            6 => (14, 14, 8, 3),                      // IEEE802
            11 | 19 => (0, 0, 8, 3),                  // ATM_RFC1483, ATM_CLIP
            12 | 228 | 229 => (N, 0, 0, 0),           // RAW, IPV4, IPV6
            113 => (14, 16, 0, 0),                    // LINUX_SLL
            276 => (0, 20, 0, 0),                     // LINUX_SLL2
            114 => (N, 0, 0, 0),                      // LTALK
            122 => (16, 16, 8, 3),                    // IP_OVER_FC
            107 => (N, 0, 0, 0),                      // FRELAY
            138 => (16, 18, 0, 0),                    // APPLE_IP_OVER_IEEE1394
            99 => (6, 44, 0, 0),                      // SYMANTEC_FIREWALL
            226 => (1, 24, 0, N),                     // IPNET
            240 => {
                linkhdr = 4;
                (16, 18, 0, 3)
            } // NETANALYZER
            241 => {
                linkhdr = 12;
                (24, 26, 0, 3)
            } // NETANALYZER_TRANSPARENT
            281 | 284 => (16, 18, 0, 3),              // DSA_TAG_BRCM, DSA_TAG_DSA
            105 | 119 | 163 | 127 | 192 => (24, 0, 8, 3), // IEEE802_11, PRISM, AVS, RADIO, PPI
            117 => (0, 0, 0, 0),                      // PFLOG
            140 => (N, N, N, N),                      // MTP2
            134 => (4, 4, 0, N),                      // JUNIPER_MFR
            123 => (4, 4, 8, 3), // SUNATM: LLC-encapsulated payload after the 4-byte pseudo-header
            // DLT_HIGH_MATCHING_MIN..MAX: only link[] and friends.
            104..=298 => (N, N, N, N),
            other => return self.err(format!("unknown data link type {other}")),
        };
        self.off_linkhdr = AbsOffset::fixed(linkhdr);
        // Radio headers in front of 802.11 have a length of their own.
        self.off_linkhdr.is_variable = matches!(self.linktype.0, 119 | 163 | 127 | 192);
        self.off_prevlinkhdr = self.off_linkhdr;
        self.off_linktype = AbsOffset::fixed(lt);
        self.off_linkpl = AbsOffset::fixed(pl);
        self.off_linkpl.is_variable = matches!(self.linktype.0, 105 | 119 | 163 | 127 | 192 | 117);
        self.off_nl = nl;
        self.off_nl_nosnap = nosnap;
        Ok(())
    }

    // ---- blocks and the boolean wiring ----

    fn new_block(&mut self, code: i32, k: u32, stmts: Vec<Stmt>) -> usize {
        let id = self.blocks.len();
        self.blocks.push(Block {
            stmts,
            s: Stmt::new(code, k),
            jt: None,
            jf: None,
            sense: false,
            head: id,
            meaning: Meaning::Uncertain,
        });
        id
    }

    pub fn retblk(&mut self, v: u32) -> usize {
        self.new_block(RET | K, v, Vec::new())
    }

    fn backpatch(&mut self, mut list: Option<usize>, target: usize) {
        while let Some(b) = list {
            if !self.blocks[b].sense {
                list = self.blocks[b].jt;
                self.blocks[b].jt = Some(target);
            } else {
                list = self.blocks[b].jf;
                self.blocks[b].jf = Some(target);
            }
        }
    }

    fn merge(&mut self, b0: usize, b1: usize) {
        let mut p = b0;
        loop {
            let next = if !self.blocks[p].sense {
                self.blocks[p].jt
            } else {
                self.blocks[p].jf
            };
            match next {
                Some(n) => p = n,
                None => break,
            }
        }
        if !self.blocks[p].sense {
            self.blocks[p].jt = Some(b1);
        } else {
            self.blocks[p].jf = Some(b1);
        }
    }

    pub fn gen_and(&mut self, b0: usize, b1: usize) -> usize {
        if self.blocks[b0].meaning == Meaning::False {
            return b0;
        }
        if self.blocks[b1].meaning == Meaning::False {
            return b1;
        }
        if self.blocks[b0].meaning == Meaning::True {
            return b1;
        }
        if self.blocks[b1].meaning == Meaning::True {
            return b0;
        }
        let h1 = self.blocks[b1].head;
        self.backpatch(Some(b0), h1);
        self.blocks[b0].sense = !self.blocks[b0].sense;
        self.blocks[b1].sense = !self.blocks[b1].sense;
        self.merge(b1, b0);
        self.blocks[b1].sense = !self.blocks[b1].sense;
        self.blocks[b1].head = self.blocks[b0].head;
        b1
    }

    pub fn gen_or(&mut self, b0: usize, b1: usize) -> usize {
        if self.blocks[b0].meaning == Meaning::False {
            return b1;
        }
        if self.blocks[b1].meaning == Meaning::False {
            return b0;
        }
        if self.blocks[b0].meaning == Meaning::True {
            return b0;
        }
        if self.blocks[b1].meaning == Meaning::True {
            return b1;
        }
        self.blocks[b0].sense = !self.blocks[b0].sense;
        let h1 = self.blocks[b1].head;
        self.backpatch(Some(b0), h1);
        self.blocks[b0].sense = !self.blocks[b0].sense;
        self.merge(b1, b0);
        self.blocks[b1].head = self.blocks[b0].head;
        b1
    }

    pub fn gen_not(&mut self, b: usize) -> usize {
        let blk = &mut self.blocks[b];
        blk.sense = !blk.sense;
        blk.meaning = match blk.meaning {
            Meaning::True => Meaning::False,
            Meaning::False => Meaning::True,
            Meaning::Uncertain => Meaning::Uncertain,
        };
        b
    }

    /// gencode.c `finish_parse`: the accept and reject returns.
    pub fn finish(&mut self, p: usize) -> GResult<usize> {
        self.insert_compute_vloffsets(self.blocks[p].head)?;
        let mut p = p;
        if self.linktype.0 == 192 {
            // PPI: check that the per-packet DLT is IEEE802_11 (little-endian field).
            let chk = self.gen_cmp(OffRel::Packet, 4, W, 105u32.swap_bytes());
            p = self.gen_and(chk, p);
        }
        let acc = self.retblk(self.snaplen);
        self.backpatch(Some(p), acc);
        self.blocks[p].sense = !self.blocks[p].sense;
        let rej = self.retblk(0);
        self.backpatch(Some(p), rej);
        Ok(self.blocks[p].head)
    }

    fn uid(&mut self) -> u32 {
        self.next_uid += 1;
        self.next_uid
    }

    /// A statement that in-block jumps can target.
    fn target(&mut self, code: i32, k: u32) -> Stmt {
        let mut st = Stmt::new(code, k);
        st.uid = self.uid();
        st
    }

    fn jset(&mut self, k: u32, jt: u32, jf: u32) -> Stmt {
        let mut st = self.target(JMP | JSET | K, k);
        st.jt = jt;
        st.jf = jf;
        st
    }

    /// gencode.c `insert_compute_vloffsets`: the preamble computing
    /// variable header offsets, put in front of the first block.
    fn insert_compute_vloffsets(&mut self, b: usize) -> GResult<()> {
        if self.off_linkpl.reg.is_some()
            && self.off_linkhdr.is_variable
            && self.off_linkhdr.reg.is_none()
        {
            self.off_linkhdr.reg = Some(self.alloc_reg()?);
        }
        let hdr = self.off_linkhdr.reg;
        let mut s: Vec<Stmt> = match (self.outermost.0, hdr) {
            (119, _) => {
                // gen_load_prism_llprefixlen: an AVS header may stand in for the Prism one.
                self.no_optimize = true;
                match hdr {
                    Some(r) => {
                        let (t_avs, t_prism, t_st) = (self.uid(), self.uid(), self.uid());
                        let mut jeq = self.target(JMP | JEQ | K, 0x8021_1000);
                        jeq.jt = t_avs;
                        jeq.jf = t_prism;
                        let mut ld4 = Stmt::new(LD | W | ABS, 4);
                        ld4.uid = t_avs;
                        let mut ja = Stmt::new(JMP | JA | K, 1);
                        ja.jf = t_st;
                        let mut imm = Stmt::new(LD | W | IMM, 144);
                        imm.uid = t_prism;
                        let mut st = Stmt::new(ST, r);
                        st.uid = t_st;
                        vec![
                            Stmt::new(LD | W | ABS, 0),
                            Stmt::new(ALU | AND | K, 0xffff_f000),
                            jeq,
                            ld4,
                            ja,
                            imm,
                            st,
                            Stmt::new(MISC | TAX, 0),
                        ]
                    }
                    None => Vec::new(),
                }
            }
            (163, Some(r)) => vec![
                Stmt::new(LD | W | ABS, 4),
                Stmt::new(ST, r),
                Stmt::new(MISC | TAX, 0),
            ],
            (127 | 192, Some(r)) => vec![
                Stmt::new(LD | B | ABS, 3),
                Stmt::new(ALU | LSH | K, 8),
                Stmt::new(MISC | TAX, 0),
                Stmt::new(LD | B | ABS, 2),
                Stmt::new(ALU | OR | X, 0),
                Stmt::new(ST, r),
                Stmt::new(MISC | TAX, 0),
            ],
            _ => Vec::new(),
        };
        match self.outermost.0 {
            105 | 119 | 163 | 127 | 192 => s = self.load_802_11_header_len(s, b),
            117 => {
                if let Some(r) = self.off_linkpl.reg {
                    s = vec![
                        Stmt::new(LD | B | ABS, 0),
                        Stmt::new(ALU | ADD | K, 3),
                        Stmt::new(ALU | AND | K, 0xffff_fffc),
                        Stmt::new(ST, r),
                        Stmt::new(MISC | TAX, 0),
                    ];
                }
            }
            _ => {}
        }
        if s.is_empty() && self.is_vlan_vloffset {
            if self.off_linkpl.reg.is_none() {
                self.off_linkpl.reg = Some(self.alloc_reg()?);
            }
            if self.off_linktype.reg.is_none() {
                self.off_linktype.reg = Some(self.alloc_reg()?);
            }
            s = vec![
                Stmt::new(LD | W | IMM, 0),
                Stmt::new(ST, self.off_linkpl.reg.unwrap_or(0)),
                Stmt::new(ST, self.off_linktype.reg.unwrap_or(0)),
            ];
        }
        self.sprepend_to_block(s, b);
        Ok(())
    }

    /// gencode.c `gen_load_802_11_header_len`: the 802.11 header length
    /// (24, plus 2 for QoS data frames, radiotap data padding rounded up).
    fn load_802_11_header_len(&mut self, mut s: Vec<Stmt>, b: usize) -> Vec<Stmt> {
        let Some(reg) = self.off_linkpl.reg else {
            return s;
        };
        self.no_optimize = true;
        let snext = match self.blocks[b].stmts.first() {
            Some(first) if first.uid != 0 => first.uid,
            Some(_) => {
                let u = self.uid();
                self.blocks[b].stmts[0].uid = u;
                u
            }
            None => 0,
        };
        if s.is_empty() {
            s.push(Stmt::new(LDX | IMM, self.off_linkhdr.constant_part));
        }
        s.push(Stmt::new(MISC | TXA, 0));
        s.push(Stmt::new(ALU | ADD | K, 24));
        s.push(Stmt::new(ST, reg));
        s.push(Stmt::new(LD | IND | B, 0));
        let (u_ctl, u_qos, u_add) = (self.uid(), self.uid(), self.uid());
        let sj1 = self.jset(0x08, u_ctl, snext);
        s.push(sj1);
        let mut sj2 = self.jset(0x04, snext, u_qos);
        sj2.uid = u_ctl;
        s.push(sj2);
        // libpcap tests the current link type here, not the outermost one.
        let radio = self.linktype.0 == 127;
        let u_radio = if radio { self.uid() } else { snext };
        let mut sjq = self.jset(0x80, u_add, u_radio);
        sjq.uid = u_qos;
        s.push(sjq);
        let mut ld = Stmt::new(LD | MEM, reg);
        ld.uid = u_add;
        s.push(ld);
        s.push(Stmt::new(ALU | ADD | K, 2));
        s.push(Stmt::new(ST, reg));
        if radio {
            let (u_ext, u_tsft, u_b16, u_b8, u_round) =
                (self.uid(), self.uid(), self.uid(), self.uid(), self.uid());
            let mut ld4 = Stmt::new(LD | ABS | W, 4);
            ld4.uid = u_radio;
            s.push(ld4);
            s.push(self.jset(0x0200_0000, u_ext, snext));
            let mut ext = self.jset(0x0000_0080, snext, u_tsft);
            ext.uid = u_ext;
            s.push(ext);
            let mut tsft = self.jset(0x0100_0000, u_b16, u_b8);
            tsft.uid = u_tsft;
            s.push(tsft);
            let mut b16 = Stmt::new(LD | ABS | B, 16);
            b16.uid = u_b16;
            s.push(b16);
            s.push(self.jset(0x20, u_round, snext));
            let mut b8 = Stmt::new(LD | ABS | B, 8);
            b8.uid = u_b8;
            s.push(b8);
            s.push(self.jset(0x20, u_round, snext));
            let mut r = Stmt::new(LD | MEM, reg);
            r.uid = u_round;
            s.push(r);
            s.push(Stmt::new(ALU | ADD | K, 3));
            s.push(Stmt::new(ALU | AND | K, !3));
            s.push(Stmt::new(ST, reg));
        }
        s
    }

    fn gen_uncond(&mut self, rsense: bool) -> usize {
        let b = self.new_block(
            JMP | JEQ | K,
            0,
            vec![Stmt::new(LD | IMM, (!rsense) as u32)],
        );
        self.blocks[b].meaning = if rsense {
            Meaning::True
        } else {
            Meaning::False
        };
        b
    }
    fn gen_true(&mut self) -> usize {
        self.gen_uncond(true)
    }
    fn gen_false(&mut self) -> usize {
        self.gen_uncond(false)
    }

    fn sprepend_to_block(&mut self, mut s: Vec<Stmt>, b: usize) -> usize {
        if !s.is_empty() {
            s.append(&mut self.blocks[b].stmts);
            self.blocks[b].stmts = s;
            self.blocks[b].meaning = Meaning::Uncertain;
        }
        b
    }

    // ---- loads and comparisons ----

    fn abs_offset_varpart(&mut self, which: u8) -> Vec<Stmt> {
        let off = match which {
            0 => &mut self.off_linkhdr,
            1 => &mut self.off_prevlinkhdr,
            2 => &mut self.off_linktype,
            _ => &mut self.off_linkpl,
        };
        if !off.is_variable {
            return Vec::new();
        }
        let reg = match off.reg {
            Some(r) => r,
            None => {
                // allocate lazily, as gen_abs_offset_varpart does
                let r = {
                    let mut n = MEMWORDS;
                    let mut got = None;
                    while n > 0 {
                        n -= 1;
                        if self.regused[self.curreg] {
                            self.curreg = (self.curreg + 1) % MEMWORDS;
                        } else {
                            self.regused[self.curreg] = true;
                            got = Some(self.curreg as u32);
                            break;
                        }
                    }
                    got.unwrap_or(0)
                };
                let off = match which {
                    0 => &mut self.off_linkhdr,
                    1 => &mut self.off_prevlinkhdr,
                    2 => &mut self.off_linktype,
                    _ => &mut self.off_linkpl,
                };
                off.reg = Some(r);
                r
            }
        };
        vec![Stmt::new(LDX | MEM, reg)]
    }

    fn load_absoffsetrel(&mut self, mut s: Vec<Stmt>, offset: u32, size: i32) -> Vec<Stmt> {
        if !s.is_empty() {
            s.push(Stmt::new(LD | IND | size, offset));
            s
        } else {
            vec![Stmt::new(LD | ABS | size, offset)]
        }
    }

    fn loadx_iphdrlen(&mut self) -> Vec<Stmt> {
        let mut s = self.abs_offset_varpart(3);
        let c = self.off_linkpl.constant_part + self.off_nl;
        if !s.is_empty() {
            s.push(Stmt::new(LD | IND | B, c));
            s.push(Stmt::new(ALU | AND | K, 0xf));
            s.push(Stmt::new(ALU | LSH | K, 2));
            s.push(Stmt::new(ALU | ADD | X, 0));
            s.push(Stmt::new(MISC | TAX, 0));
            s
        } else {
            vec![Stmt::new(LDX | MSH | B, c)]
        }
    }

    fn load_a(&mut self, offrel: OffRel, mut offset: u32, size: i32) -> Vec<Stmt> {
        let s = match offrel {
            OffRel::Packet => Vec::new(),
            OffRel::LinkHdr => {
                offset = offset.wrapping_add(self.off_linkhdr.constant_part);
                self.abs_offset_varpart(0)
            }
            OffRel::PrevMplsHdr => {
                offset = offset.wrapping_add(
                    self.off_linkpl
                        .constant_part
                        .wrapping_add(self.off_nl)
                        .wrapping_sub(4),
                );
                self.abs_offset_varpart(3)
            }
            OffRel::PrevLinkHdr => {
                offset = offset.wrapping_add(self.off_prevlinkhdr.constant_part);
                self.abs_offset_varpart(1)
            }
            OffRel::Llc => {
                offset = offset.wrapping_add(self.off_linkpl.constant_part);
                self.abs_offset_varpart(3)
            }
            OffRel::LinkPl => {
                offset = offset.wrapping_add(self.off_linkpl.constant_part + self.off_nl);
                self.abs_offset_varpart(3)
            }
            OffRel::LinkPlNoSnap => {
                offset = offset.wrapping_add(self.off_linkpl.constant_part + self.off_nl_nosnap);
                self.abs_offset_varpart(3)
            }
            OffRel::LinkType => {
                offset = offset.wrapping_add(self.off_linktype.constant_part);
                self.abs_offset_varpart(2)
            }
            OffRel::TranIpv4 => {
                let s = self.loadx_iphdrlen();
                offset = offset.wrapping_add(self.off_linkpl.constant_part + self.off_nl);
                s
            }
            OffRel::TranIpv6 => {
                offset =
                    offset.wrapping_add(self.off_linkpl.constant_part + self.off_nl + IP6_HDRLEN);
                self.abs_offset_varpart(3)
            }
        };
        self.load_absoffsetrel(s, offset, size)
    }

    fn gen_jmp_k(&mut self, jtype: i32, v: u32, stmts: Vec<Stmt>) -> usize {
        self.new_block(JMP | jtype | K, v, stmts)
    }

    #[allow(clippy::too_many_arguments)]
    fn gen_ncmp(
        &mut self,
        offrel: OffRel,
        offset: u32,
        size: i32,
        mask: u32,
        jtype: i32,
        reverse: bool,
        v: u32,
    ) -> usize {
        let mut s = self.load_a(offrel, offset, size);
        if mask != 0xffff_ffff {
            s.push(Stmt::new(ALU | AND | K, mask));
        }
        let b = self.gen_jmp_k(jtype, v, s);
        if reverse {
            self.gen_not(b)
        } else {
            b
        }
    }

    fn gen_cmp(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JEQ, false, v)
    }
    fn gen_cmp_gt(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JGT, false, v)
    }
    fn gen_cmp_ge(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JGE, false, v)
    }
    fn gen_cmp_lt(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JGE, true, v)
    }
    fn gen_cmp_le(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JGT, true, v)
    }
    fn gen_cmp_ne(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, 0xffff_ffff, JEQ, true, v)
    }
    fn gen_mcmp(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32, mask: u32) -> usize {
        if mask == 0 {
            return if v != 0 {
                self.gen_false()
            } else {
                self.gen_true()
            };
        }
        self.gen_ncmp(offrel, offset, size, mask, JEQ, false, v)
    }

    fn gen_bcmp(&mut self, offrel: OffRel, offset: u32, v: &[u8]) -> usize {
        let mut size = v.len();
        let mut b: Option<usize> = None;
        while size >= 4 {
            let p = &v[size - 4..size];
            let val = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let tmp = self.gen_cmp(offrel, offset + size as u32 - 4, W, val);
            b = Some(match b {
                Some(b) => self.gen_and(b, tmp),
                None => tmp,
            });
            size -= 4;
        }
        while size >= 2 {
            let p = &v[size - 2..size];
            let val = u16::from_be_bytes([p[0], p[1]]) as u32;
            let tmp = self.gen_cmp(offrel, offset + size as u32 - 2, H, val);
            b = Some(match b {
                Some(b) => self.gen_and(b, tmp),
                None => tmp,
            });
            size -= 2;
        }
        if size > 0 {
            let tmp = self.gen_cmp(offrel, offset, B, v[0] as u32);
            b = Some(match b {
                Some(b) => self.gen_and(b, tmp),
                None => tmp,
            });
        }
        b.unwrap_or(0)
    }

    fn gen_set(&mut self, v: u32, s: Vec<Stmt>) -> usize {
        self.gen_jmp_k(JSET, v, s)
    }
    fn gen_unset(&mut self, v: u32, s: Vec<Stmt>) -> usize {
        let b = self.gen_set(v, s);
        self.gen_not(b)
    }

    fn assert_maxval(&self, name: &str, val: u32, max: u32) -> GResult<()> {
        if val > max {
            return self.err(format!("{name} {val} greater than maximum {max}"));
        }
        Ok(())
    }

    fn assert_nonwlan_dqual(&self, dir: u8) -> GResult<()> {
        match dir {
            q::SRC | q::DST | q::AND | q::DEFAULT | q::OR => Ok(()),
            _ => self.err(format!("'{}' is valid for 802.11 syntax only", dqkw(dir))),
        }
    }

    fn invalid_qual<T>(&self, a: &str, b: &str) -> GResult<T> {
        self.err(format!("'{a}' is not a valid qualifier for '{b}'"))
    }

    /// pcapint_datalink_val_to_string's `DLT_NAME`.
    fn dlt_name(&self) -> String {
        match self.linktype.name() {
            Some(n) => format!("DLT_{n}"),
            None => format!("DLT {}", self.linktype.0),
        }
    }

    fn fail_kw_on_dlt<T>(&self, kw: &str) -> GResult<T> {
        self.err(format!("'{kw}' not supported on {}", self.dlt_name()))
    }

    // ---- link-layer types ----

    fn gen_prevlinkhdr_check(&mut self) -> Option<usize> {
        if self.is_encap {
            // gen_encap_ll_check: an encapsulated frame has a link header.
            let (h, p) = (
                self.off_linkhdr.reg.unwrap_or(0),
                self.off_linkpl.reg.unwrap_or(0),
            );
            let b0 = self.new_block(
                JMP | JEQ | X,
                0,
                vec![Stmt::new(LD | MEM, h), Stmt::new(LDX | MEM, p)],
            );
            return Some(self.gen_not(b0));
        }
        // LANE-encapsulated Ethernet: not an LE Control frame.
        if self.prevlinktype.0 == 123 {
            return Some(self.gen_cmp_ne(OffRel::PrevLinkHdr, 4, H, 0xff00));
        }
        None
    }

    fn gen_snap(&mut self, orgcode: u32, ptype: u32) -> usize {
        let blk = [
            LLCSAP_SNAP,
            LLCSAP_SNAP,
            0x03,
            (orgcode >> 16) as u8,
            (orgcode >> 8) as u8,
            orgcode as u8,
            (ptype >> 8) as u8,
            ptype as u8,
        ];
        self.gen_bcmp(OffRel::Llc, 0, &blk)
    }

    fn gen_ether_linktype(&mut self, ll_proto: u32) -> GResult<usize> {
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.gen_cmp_le(OffRel::LinkType, 0, H, ETHERMTU);
                let b1 = self.gen_cmp(OffRel::Llc, 0, H, (ll_proto << 8) | ll_proto);
                Ok(self.gen_and(b0, b1))
            }
            LLCSAP_IPX => {
                let b0 = self.gen_cmp(OffRel::Llc, 0, B, LLCSAP_IPX);
                let b1 = self.gen_cmp(OffRel::Llc, 0, H, 0xffff);
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_snap(0, ETHERTYPE_IPX);
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_cmp_le(OffRel::LinkType, 0, H, ETHERMTU);
                let b1 = self.gen_and(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, ETHERTYPE_IPX);
                Ok(self.gen_or(b0, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.gen_cmp_le(OffRel::LinkType, 0, H, ETHERMTU);
                let b1 = if ll_proto == ETHERTYPE_ATALK {
                    self.gen_snap(0x080007, ETHERTYPE_ATALK)
                } else {
                    self.gen_snap(0, ETHERTYPE_AARP)
                };
                let b1 = self.gen_and(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, ll_proto);
                Ok(self.gen_or(b0, b1))
            }
            _ => {
                if ll_proto <= ETHERMTU {
                    self.assert_maxval("LLC DSAP", ll_proto, 255)?;
                    let b0 = self.gen_cmp_le(OffRel::LinkType, 0, H, ETHERMTU);
                    let b1 = self.gen_cmp(OffRel::LinkType, 2, B, ll_proto);
                    Ok(self.gen_and(b0, b1))
                } else {
                    self.assert_maxval("EtherType", ll_proto, 65535)?;
                    Ok(self.gen_cmp(OffRel::LinkType, 0, H, ll_proto))
                }
            }
        }
    }

    fn gen_llc_linktype(&mut self, ll_proto: u32) -> GResult<usize> {
        match ll_proto {
            LLCSAP_IP | LLCSAP_ISONS | LLCSAP_NETBEUI => {
                Ok(self.gen_cmp(OffRel::Llc, 0, H, (ll_proto << 8) | ll_proto))
            }
            LLCSAP_IPX => Ok(self.gen_cmp(OffRel::Llc, 0, B, LLCSAP_IPX)),
            ETHERTYPE_ATALK => Ok(self.gen_snap(0x080007, ETHERTYPE_ATALK)),
            _ if ll_proto <= ETHERMTU => {
                self.assert_maxval("LLC DSAP", ll_proto, 255)?;
                Ok(self.gen_cmp(OffRel::Llc, 0, B, ll_proto))
            }
            _ => {
                self.assert_maxval("EtherType", ll_proto, 65535)?;
                Ok(self.gen_cmp(OffRel::Llc, 6, H, ll_proto))
            }
        }
    }

    fn gen_linux_sll_linktype(&mut self, ll_proto: u32) -> GResult<usize> {
        const P_802_3: u32 = 1;
        const P_802_2: u32 = 4;
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, P_802_2);
                let b1 = self.gen_cmp(OffRel::Llc, 0, H, (ll_proto << 8) | ll_proto);
                Ok(self.gen_and(b0, b1))
            }
            LLCSAP_IPX => {
                let b0 = self.gen_cmp(OffRel::Llc, 0, B, LLCSAP_IPX);
                let b1 = self.gen_snap(0, ETHERTYPE_IPX);
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, P_802_2);
                let b1 = self.gen_and(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, P_802_3);
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, ETHERTYPE_IPX);
                Ok(self.gen_or(b0, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, P_802_2);
                let b1 = if ll_proto == ETHERTYPE_ATALK {
                    self.gen_snap(0x080007, ETHERTYPE_ATALK)
                } else {
                    self.gen_snap(0, ETHERTYPE_AARP)
                };
                let b1 = self.gen_and(b0, b1);
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, ll_proto);
                Ok(self.gen_or(b0, b1))
            }
            _ if ll_proto <= ETHERMTU => {
                self.assert_maxval("LLC DSAP", ll_proto, 255)?;
                let b0 = self.gen_cmp(OffRel::LinkType, 0, H, P_802_2);
                let c = self.off_linkpl.constant_part;
                let b1 = self.gen_cmp(OffRel::LinkHdr, c, B, ll_proto);
                Ok(self.gen_and(b0, b1))
            }
            _ => {
                self.assert_maxval("EtherType", ll_proto, 65535)?;
                Ok(self.gen_cmp(OffRel::LinkType, 0, H, ll_proto))
            }
        }
    }

    fn ethertype_to_ppptype(&self, ll_proto: u32) -> GResult<u32> {
        Ok(match ll_proto {
            ETHERTYPE_IP => 0x0021,
            ETHERTYPE_IPV6 => 0x0057,
            ETHERTYPE_DN => 0x0027,
            ETHERTYPE_ATALK => 0x0029,
            0x0600 => 0x0025,
            LLCSAP_ISONS => 0x0023,
            LLCSAP_8021D => 0x0031,
            LLCSAP_IPX => 0x002b,
            _ => {
                self.assert_maxval("PPP protocol", ll_proto, 65535)?;
                ll_proto
            }
        })
    }

    fn gen_ip_version(&mut self, offrel: OffRel, ver: u32) -> usize {
        self.gen_mcmp(offrel, 0, B, ver << 4, 0xf0)
    }

    fn gen_frelay_nlpid(&mut self, nlpid: u32) -> usize {
        self.gen_cmp(OffRel::LinkHdr, 2, H, 0x0300 | nlpid)
    }

    /// BSD address-family link types (NULL, LOOP, ENC): `swapped` byte order.
    fn gen_endian_linktype(&mut self, offset: u32, size: i32, v: u32, swapped: bool) -> usize {
        self.gen_cmp(
            OffRel::LinkHdr,
            offset,
            size,
            if swapped { v.swap_bytes() } else { v },
        )
    }

    fn gen_bsd_af_offline(
        &mut self,
        offset: u32,
        size: i32,
        ll_proto: u32,
        swapped: bool,
    ) -> usize {
        match ll_proto {
            ETHERTYPE_IP => self.gen_endian_linktype(offset, size, 2, swapped),
            ETHERTYPE_IPV6 => {
                let b0 = self.gen_endian_linktype(offset, size, 24, swapped);
                let b1 = self.gen_endian_linktype(offset, size, 28, swapped);
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_endian_linktype(offset, size, 30, swapped);
                self.gen_or(b0, b1)
            }
            _ => self.gen_false(),
        }
    }

    fn gen_loopback_linktype(&mut self, ll_proto: u32) -> usize {
        if !self.offline {
            let af = match ll_proto {
                ETHERTYPE_IP => 2,
                ETHERTYPE_IPV6 => 10,
                _ => return self.gen_false(),
            };
            // DLT_NULL and DLT_ENC hold the family in host order (little-endian here).
            let v = if self.linktype.0 == 108 {
                af
            } else {
                u32::to_be(af)
            };
            return self.gen_cmp(OffRel::LinkHdr, 0, W, v);
        }
        if self.linktype.0 == 108 {
            return self.gen_bsd_af_offline(0, W, ll_proto, false);
        }
        let sw = self.swapped;
        let b0 = self.gen_bsd_af_offline(0, W, ll_proto, sw);
        let b1 = self.gen_bsd_af_offline(0, W, ll_proto, !sw);
        self.gen_or(b0, b1)
    }

    fn gen_linktype(&mut self, ll_proto: u32) -> GResult<usize> {
        if self.label_stack_depth > 0 {
            return self.gen_mpls_linktype(ll_proto);
        }
        match self.linktype.0 {
            1 | 240 | 241 | 281 | 284 => {
                let b0 = if !self.is_encap {
                    self.gen_prevlinkhdr_check()
                } else {
                    None
                };
                let b1 = self.gen_ether_linktype(ll_proto)?;
                Ok(match b0 {
                    Some(b0) => self.gen_and(b0, b1),
                    None => b1,
                })
            }
            104 | 112 => {
                self.assert_maxval("HDLC protocol", ll_proto, 65535)?;
                let v = if ll_proto == LLCSAP_ISONS {
                    (ll_proto << 8) | LLCSAP_ISONS
                } else {
                    ll_proto
                };
                Ok(self.gen_cmp(OffRel::LinkType, 0, H, v))
            }
            10 | 6 | 11 | 19 | 122 => self.gen_llc_linktype(ll_proto),
            113 => self.gen_linux_sll_linktype(ll_proto),
            8 | 15 | 12 => Ok(match ll_proto {
                ETHERTYPE_IP => self.gen_ip_version(OffRel::LinkHdr, 4),
                ETHERTYPE_IPV6 => self.gen_ip_version(OffRel::LinkHdr, 6),
                _ => self.gen_false(),
            }),
            228 => Ok(if ll_proto == ETHERTYPE_IP {
                self.gen_true()
            } else {
                self.gen_false()
            }),
            229 => Ok(if ll_proto == ETHERTYPE_IPV6 {
                self.gen_true()
            } else {
                self.gen_false()
            }),
            9 | 166 | 50 | 51 => {
                let p = self.ethertype_to_ppptype(ll_proto)?;
                Ok(self.gen_cmp(OffRel::LinkType, 0, H, p))
            }
            16 => {
                if ll_proto == ETHERTYPE_IP {
                    let b0 = self.gen_cmp(OffRel::LinkType, 0, H, 0x0021);
                    let b1 = self.gen_cmp(OffRel::LinkType, 0, H, 0x002d);
                    let b1 = self.gen_or(b0, b1);
                    let b0 = self.gen_cmp(OffRel::LinkType, 0, H, 0x002f);
                    Ok(self.gen_or(b1, b0))
                } else {
                    let p = self.ethertype_to_ppptype(ll_proto)?;
                    Ok(self.gen_cmp(OffRel::LinkType, 0, H, p))
                }
            }
            0 | 108 | 109 => Ok(self.gen_loopback_linktype(ll_proto)),
            134 => Ok(self.gen_mcmp(OffRel::LinkHdr, 0, W, 0x4d47_4300, 0xffff_ff00)),
            123 => {
                let b0 = self.gen_atm_prototype(2);
                let b1 = self.gen_llc_linktype(ll_proto)?;
                Ok(self.gen_and(b0, b1))
            }
            105 | 119 | 163 | 127 | 192 => {
                let b0 = self.gen_mcmp(OffRel::LinkHdr, 0, B, 0x08, 0x0c);
                let b1 = self.gen_llc_linktype(ll_proto)?;
                Ok(self.gen_and(b0, b1))
            }
            117 => Ok(if self.offline {
                self.gen_bsd_af_offline(1, B, ll_proto, false)
            } else {
                match ll_proto {
                    ETHERTYPE_IP => self.gen_cmp(OffRel::LinkHdr, 1, B, 2),
                    ETHERTYPE_IPV6 => self.gen_cmp(OffRel::LinkHdr, 1, B, 10),
                    _ => self.gen_false(),
                }
            }),
            7 | 129 => Ok(match ll_proto {
                ETHERTYPE_IPV6 => self.gen_cmp(OffRel::LinkType, 0, B, 0xc4),
                ETHERTYPE_IP => self.gen_cmp(OffRel::LinkType, 0, B, 212),
                ETHERTYPE_ARP => self.gen_cmp(OffRel::LinkType, 0, B, 213),
                ETHERTYPE_REVARP => self.gen_cmp(OffRel::LinkType, 0, B, 214),
                ETHERTYPE_ATALK => self.gen_cmp(OffRel::LinkType, 0, B, 221),
                _ => self.gen_false(),
            }),
            114 => Ok(if ll_proto == ETHERTYPE_ATALK {
                self.gen_true()
            } else {
                self.gen_false()
            }),
            107 => Ok(match ll_proto {
                ETHERTYPE_IP => self.gen_frelay_nlpid(0xcc),
                ETHERTYPE_IPV6 => self.gen_frelay_nlpid(0x8e),
                LLCSAP_ISONS => {
                    let b0 = self.gen_frelay_nlpid(ISO8473_CLNP);
                    let b1 = self.gen_frelay_nlpid(ISO9542_ESIS);
                    let b2 = self.gen_frelay_nlpid(ISO10589_ISIS);
                    let b2 = self.gen_or(b1, b2);
                    self.gen_or(b0, b2)
                }
                _ => self.gen_false(),
            }),
            226 => Ok(match ll_proto {
                ETHERTYPE_IP => self.gen_cmp(OffRel::LinkType, 0, B, 2),
                ETHERTYPE_IPV6 => self.gen_cmp(OffRel::LinkType, 0, B, 26),
                _ => self.gen_false(),
            }),
            _ => {
                if self.off_linktype.constant_part != OFFSET_NOT_SET {
                    self.assert_maxval("EtherType", ll_proto, 65535)?;
                    return Ok(self.gen_cmp(OffRel::LinkType, 0, H, ll_proto));
                }
                self.err(format!(
                    "link-layer type filtering not implemented for {}",
                    self.dlt_name()
                ))
            }
        }
    }

    // ---- hosts ----

    fn gen_hostop(
        &mut self,
        addr: u32,
        mask: u32,
        dir: u8,
        src_off: u32,
        dst_off: u32,
    ) -> GResult<usize> {
        let offset = match dir {
            q::SRC => src_off,
            q::DST => dst_off,
            q::AND => {
                let b0 = self.gen_hostop(addr, mask, q::SRC, src_off, dst_off)?;
                let b1 = self.gen_hostop(addr, mask, q::DST, src_off, dst_off)?;
                return Ok(self.gen_and(b0, b1));
            }
            q::DEFAULT | q::OR => {
                let b0 = self.gen_hostop(addr, mask, q::SRC, src_off, dst_off)?;
                let b1 = self.gen_hostop(addr, mask, q::DST, src_off, dst_off)?;
                return Ok(self.gen_or(b0, b1));
            }
            _ => {
                return self.err(format!(
                    "internal error in gen_hostop(): dir == '{}'",
                    dqkw(dir)
                ))
            }
        };
        Ok(self.gen_mcmp(OffRel::LinkPl, offset, W, addr, mask))
    }

    fn gen_hostop6(&mut self, addr: &[u8; 16], mask: &[u8; 16], dir: u8) -> GResult<usize> {
        let offset = match dir {
            q::SRC => 8,
            q::DST => 24,
            q::AND => {
                let b0 = self.gen_hostop6(addr, mask, q::SRC)?;
                let b1 = self.gen_hostop6(addr, mask, q::DST)?;
                return Ok(self.gen_and(b0, b1));
            }
            q::DEFAULT | q::OR => {
                let b0 = self.gen_hostop6(addr, mask, q::SRC)?;
                let b1 = self.gen_hostop6(addr, mask, q::DST)?;
                return Ok(self.gen_or(b0, b1));
            }
            _ => {
                return self.err(format!(
                    "internal error in gen_hostop6(): dir == '{}'",
                    dqkw(dir)
                ))
            }
        };
        let mut b1 = self.gen_true();
        for i in (0..4).rev() {
            let a = u32::from_be_bytes([
                addr[4 * i],
                addr[4 * i + 1],
                addr[4 * i + 2],
                addr[4 * i + 3],
            ]);
            let m = u32::from_be_bytes([
                mask[4 * i],
                mask[4 * i + 1],
                mask[4 * i + 2],
                mask[4 * i + 3],
            ]);
            let b0 = self.gen_mcmp(OffRel::LinkPl, offset + 4 * i as u32, W, a, m);
            b1 = self.gen_and(b0, b1);
        }
        Ok(b1)
    }

    #[allow(clippy::too_many_arguments)]
    fn gen_host(
        &mut self,
        a: &[u32],
        m: &[u32],
        proto: u8,
        dir: u8,
        not: bool,
        context: &str,
    ) -> GResult<usize> {
        self.assert_nonwlan_dqual(dir)?;
        let (llproto, src_off, dst_off) = match proto {
            q::DEFAULT => {
                let b0 = self.gen_host(a, m, q::IP, dir, not, context)?;
                if self.label_stack_depth == 0 {
                    let b1 = self.gen_host(a, m, q::ARP, dir, not, context)?;
                    let b1 = self.gen_or(b0, b1);
                    let b0 = self.gen_host(a, m, q::RARP, dir, not, context)?;
                    return Ok(self.gen_or(b1, b0));
                }
                return Ok(b0);
            }
            q::IP => (ETHERTYPE_IP, 12, 16),
            q::RARP => (ETHERTYPE_REVARP, 14, 24),
            q::ARP => (ETHERTYPE_ARP, 14, 24),
            _ => return self.invalid_qual(&pqkw(proto), context),
        };
        let b0 = self.gen_linktype(llproto)?;
        if self.blocks[b0].meaning == Meaning::False {
            return Ok(b0);
        }
        let mut b1 = self.gen_false();
        for i in 0..a.len() {
            let h = self.gen_hostop(a[i], m[i], dir, src_off, dst_off)?;
            b1 = self.gen_or(b1, h);
        }
        let b1 = if not { self.gen_not(b1) } else { b1 };
        Ok(self.gen_and(b0, b1))
    }

    fn gen_host6(
        &mut self,
        a: &[[u8; 16]],
        m: &[[u8; 16]],
        proto: u8,
        dir: u8,
        not: bool,
        context: &str,
    ) -> GResult<usize> {
        self.assert_nonwlan_dqual(dir)?;
        if proto != q::DEFAULT && proto != q::IPV6 {
            return self.invalid_qual(&pqkw(proto), context);
        }
        let linkproto = self.gen_linktype(ETHERTYPE_IPV6)?;
        let mut host = self.gen_false();
        for i in 0..a.len() {
            let h = self.gen_hostop6(&a[i], &m[i], dir)?;
            host = self.gen_or(host, h);
        }
        let host = if not { self.gen_not(host) } else { host };
        Ok(self.gen_and(linkproto, host))
    }

    fn gen_host46_byname(
        &mut self,
        name: &str,
        proto4: u8,
        proto6: u8,
        dir: u8,
        not: bool,
    ) -> GResult<usize> {
        let context = "host <Internet hostname>";
        let addrs = self.names.map(|n| n.host(name)).unwrap_or_default();
        if addrs.is_empty() {
            return self.err(format!("unknown host '{name}'"));
        }
        let mut ret: Option<usize> = None;
        if proto4 != q::IPV6 {
            let mut v4: Vec<u32> = addrs
                .iter()
                .filter_map(|a| {
                    if let HostAddr::V4(v) = a {
                        Some(*v)
                    } else {
                        None
                    }
                })
                .collect();
            v4.sort_unstable();
            if !v4.is_empty() {
                let masks = vec![0xffff_ffff; v4.len()];
                ret = Some(self.gen_host(&v4, &masks, proto4, dir, not, context)?);
            }
        }
        if proto6 != q::ARP && proto6 != q::IP && proto6 != q::RARP {
            let mut v6: Vec<[u8; 16]> = addrs
                .iter()
                .filter_map(|a| {
                    if let HostAddr::V6(v) = a {
                        Some(*v)
                    } else {
                        None
                    }
                })
                .collect();
            v6.sort_unstable();
            if !v6.is_empty() {
                let masks = vec![[0xff; 16]; v6.len()];
                let h6 = self.gen_host6(&v6, &masks, proto6, dir, not, context)?;
                ret = Some(match ret {
                    Some(r) => self.gen_or(r, h6),
                    None => h6,
                });
            }
        }
        match ret {
            Some(r) => Ok(r),
            None => self.err(format!(
                "unknown host '{name}'{}",
                if proto4 == q::DEFAULT {
                    ""
                } else {
                    " for specified address family"
                }
            )),
        }
    }

    fn is_mac48_linktype(&self) -> bool {
        matches!(
            self.linktype.0,
            1 | 10 | 6 | 105 | 127 | 163 | 122 | 240 | 241 | 281 | 284 | 192 | 119
        )
    }

    fn gen_mac48host(&mut self, eaddr: &[u8; 6], dir: u8, keyword: &str) -> GResult<usize> {
        let (b1, src_off, dst_off) = match self.linktype.0 {
            1 | 240 | 241 | 281 | 284 => (self.gen_prevlinkhdr_check(), 6, 0),
            10 => (None, 7, 1),
            6 => (None, 8, 2),
            122 => (None, 10, 2),
            105 | 119 | 163 | 127 | 192 => return self.gen_wlanhostop(eaddr, dir),
            _ => return self.fail_kw_on_dlt(keyword),
        };
        self.assert_nonwlan_dqual(dir)?;
        let b0 = match dir {
            q::SRC => self.gen_bcmp(OffRel::LinkHdr, src_off, eaddr),
            q::DST => self.gen_bcmp(OffRel::LinkHdr, dst_off, eaddr),
            q::AND => {
                let t = self.gen_bcmp(OffRel::LinkHdr, src_off, eaddr);
                let b0 = self.gen_bcmp(OffRel::LinkHdr, dst_off, eaddr);
                self.gen_and(t, b0)
            }
            _ => {
                let t = self.gen_bcmp(OffRel::LinkHdr, src_off, eaddr);
                let b0 = self.gen_bcmp(OffRel::LinkHdr, dst_off, eaddr);
                self.gen_or(t, b0)
            }
        };
        Ok(match b1 {
            Some(b1) => self.gen_and(b1, b0),
            None => b0,
        })
    }

    fn gen_mcmp_ne(&mut self, offrel: OffRel, offset: u32, size: i32, v: u32, mask: u32) -> usize {
        self.gen_ncmp(offrel, offset, size, mask, JEQ, true, v)
    }

    /// gencode.c `gen_wlanhostop`: where an address sits depends on the frame type and DS bits.
    fn gen_wlanhostop(&mut self, e: &[u8; 6], dir: u8) -> GResult<usize> {
        let lh = OffRel::LinkHdr;
        Ok(match dir {
            q::SRC | q::DST => {
                // The address when To DS is set, when it is clear, and in
                // non-data frames (SA: 24/16/10 behind From DS; DA: 16/4/4).
                let (tods_off, notods_off, plain_off) = if dir == q::SRC {
                    (24, 16, 10)
                } else {
                    (16, 4, 4)
                };
                let s = self.load_a(lh, 1, B);
                let b1 = self.gen_set(0x01, s);
                let b0 = self.gen_bcmp(lh, tods_off, e);
                let mut b0 = self.gen_and(b1, b0);
                let s = self.load_a(lh, 1, B);
                let b2 = self.gen_unset(0x01, s);
                let b1 = self.gen_bcmp(lh, notods_off, e);
                let b1 = self.gen_and(b2, b1);
                b0 = self.gen_or(b1, b0);
                if dir == q::SRC {
                    let s = self.load_a(lh, 1, B);
                    let b1 = self.gen_set(0x02, s);
                    b0 = self.gen_and(b1, b0);
                    let s = self.load_a(lh, 1, B);
                    let b2 = self.gen_unset(0x02, s);
                    let b1 = self.gen_bcmp(lh, 10, e);
                    let b1 = self.gen_and(b2, b1);
                    b0 = self.gen_or(b1, b0);
                }
                let s = self.load_a(lh, 0, B);
                let b1 = self.gen_set(0x08, s);
                b0 = self.gen_and(b1, b0);
                let s = self.load_a(lh, 0, B);
                let b2 = self.gen_unset(0x08, s);
                let b1 = self.gen_bcmp(lh, plain_off, e);
                let b1 = self.gen_and(b2, b1);
                b0 = self.gen_or(b1, b0);
                let s = self.load_a(lh, 0, B);
                let b1 = self.gen_unset(0x04, s);
                self.gen_and(b1, b0)
            }
            q::AND => {
                let b0 = self.gen_wlanhostop(e, q::SRC)?;
                let b1 = self.gen_wlanhostop(e, q::DST)?;
                self.gen_and(b0, b1)
            }
            q::DEFAULT | q::OR => {
                let b0 = self.gen_wlanhostop(e, q::SRC)?;
                let b1 = self.gen_wlanhostop(e, q::DST)?;
                self.gen_or(b0, b1)
            }
            q::ADDR1 => self.gen_bcmp(lh, 4, e),
            q::ADDR2 | q::TA => {
                let b0 = self.gen_mcmp_ne(lh, 0, B, 0x04, 0x0c);
                let b1 = self.gen_mcmp_ne(lh, 0, B, 0xc0, 0xf0);
                let b2 = self.gen_mcmp_ne(lh, 0, B, 0xd0, 0xf0);
                let b2 = self.gen_and(b1, b2);
                let mut b2 = self.gen_or(b0, b2);
                if dir == q::TA {
                    let s = self.load_a(lh, 0, B);
                    let b1 = self.gen_set(0x08, s);
                    b2 = self.gen_and(b1, b2);
                }
                let b1 = self.gen_bcmp(lh, 10, e);
                self.gen_and(b2, b1)
            }
            q::ADDR3 => {
                let b0 = self.gen_mcmp_ne(lh, 0, B, 0x04, 0x0c);
                let b1 = self.gen_bcmp(lh, 16, e);
                self.gen_and(b0, b1)
            }
            q::ADDR4 => {
                let b0 = self.gen_mcmp(lh, 1, B, 0x03, 0x03);
                let b1 = self.gen_bcmp(lh, 24, e);
                self.gen_and(b0, b1)
            }
            q::RA => {
                let s = self.load_a(lh, 0, B);
                let b1 = self.gen_set(0x08, s);
                let b0 = self.gen_bcmp(lh, 4, e);
                self.gen_and(b1, b0)
            }
            _ => return self.err(format!("internal error in gen_wlanhostop(): dir == {dir}")),
        })
    }

    fn is_wlan(&self) -> bool {
        matches!(self.linktype.0, 105 | 119 | 163 | 127 | 192)
    }

    fn gen_mac48host_byname(&mut self, name: &str, dir: u8, context: &str) -> GResult<usize> {
        if !self.is_mac48_linktype() {
            return self.fail_kw_on_dlt(context);
        }
        let Some(e) = self.names.and_then(|n| n.ether(name)) else {
            return self.err(format!("unknown Ethernet-like host '{name}'"));
        };
        self.gen_mac48host(&e, dir, context)
    }

    fn gen_gateway(&mut self, name: &str, proto: u8) -> GResult<usize> {
        if !matches!(proto, q::DEFAULT | q::IP | q::ARP | q::RARP) {
            return self.invalid_qual(&pqkw(proto), "gateway");
        }
        if self.label_stack_depth > 0 {
            return self.err("'gateway' cannot be used within MPLS");
        }
        if self.is_encap {
            return self.err("'gateway' cannot be used within VXLAN or Geneve");
        }
        let b0 = self.gen_mac48host_byname(name, q::OR, "gateway")?;
        let b1 = self.gen_host46_byname(name, proto, q::IP, q::OR, true)?;
        Ok(self.gen_and(b0, b1))
    }

    // ---- protocols ----

    fn pq_to_ipproto(&self, p: u8) -> GResult<u32> {
        Ok(match p {
            q::AH => 51,
            q::CARP => 112,
            q::ESP => 50,
            q::ICMP => 1,
            q::ICMPV6 => 58,
            q::IGMP => 2,
            q::IGRP => 9,
            q::PIM => 103,
            q::SCTP => 132,
            q::TCP => 6,
            q::UDP => 17,
            q::VRRP => 112,
            _ => return self.err(format!("Proto qualifier '{}' has no IP protocol", pqkw(p))),
        })
    }

    fn pq_to_ethertype(&self, p: u8) -> GResult<u32> {
        Ok(match p {
            q::AARP => ETHERTYPE_AARP,
            q::ARP => ETHERTYPE_ARP,
            q::ATALK => ETHERTYPE_ATALK,
            q::DECNET => ETHERTYPE_DN,
            q::IP => ETHERTYPE_IP,
            q::IPV6 => ETHERTYPE_IPV6,
            q::LAT => ETHERTYPE_LAT,
            q::MOPDL => ETHERTYPE_MOPDL,
            q::MOPRC => ETHERTYPE_MOPRC,
            q::RARP => ETHERTYPE_REVARP,
            q::SCA => ETHERTYPE_SCA,
            _ => return self.err(format!("Proto qualifier '{}' has no EtherType", pqkw(p))),
        })
    }

    fn pq_to_llcsap(&self, p: u8) -> GResult<u32> {
        Ok(match p {
            q::IPX => LLCSAP_IPX,
            q::ISO => LLCSAP_ISONS,
            q::NETBEUI => LLCSAP_NETBEUI,
            q::STP => LLCSAP_8021D,
            _ => return self.err(format!("Proto qualifier '{}' has no LLC SAP", pqkw(p))),
        })
    }

    fn gen_ip_proto(&mut self, p: u32) -> usize {
        self.gen_cmp(OffRel::LinkPl, 9, B, p)
    }
    fn gen_ip6_proto(&mut self, p: u32) -> usize {
        self.gen_cmp(OffRel::LinkPl, 6, B, p)
    }
    fn gen_ipfrag(&mut self) -> usize {
        let s = self.load_a(OffRel::LinkPl, 6, H);
        self.gen_unset(0x1fff, s)
    }

    pub fn gen_proto_abbrev(&mut self, proto: u8) -> GResult<usize> {
        const ISIS_L1_LAN_IIH: u32 = 15;
        const ISIS_L2_LAN_IIH: u32 = 16;
        const ISIS_PTP_IIH: u32 = 17;
        const ISIS_L1_LSP: u32 = 18;
        const ISIS_L2_LSP: u32 = 20;
        const ISIS_L1_CSNP: u32 = 24;
        const ISIS_L2_CSNP: u32 = 25;
        const ISIS_L1_PSNP: u32 = 26;
        const ISIS_L2_PSNP: u32 = 27;
        let chain = |g: &mut Self, list: &[u32]| -> GResult<usize> {
            let mut b0 = g.gen_proto(list[0], q::ISIS)?;
            let mut b1 = g.gen_proto(list[1], q::ISIS)?;
            b1 = g.gen_or(b0, b1);
            for &v in &list[2..] {
                b0 = g.gen_proto(v, q::ISIS)?;
                b1 = g.gen_or(b0, b1);
            }
            Ok(b1)
        };
        match proto {
            q::SCTP | q::TCP | q::UDP | q::AH | q::ESP | q::PIM => {
                let p = self.pq_to_ipproto(proto)?;
                self.gen_proto(p, q::DEFAULT)
            }
            q::ICMP | q::IGMP | q::IGRP | q::VRRP | q::CARP => {
                let p = self.pq_to_ipproto(proto)?;
                self.gen_proto(p, q::IP)
            }
            q::ICMPV6 => {
                let p = self.pq_to_ipproto(proto)?;
                self.gen_proto(p, q::IPV6)
            }
            q::IP
            | q::ARP
            | q::RARP
            | q::ATALK
            | q::AARP
            | q::DECNET
            | q::SCA
            | q::LAT
            | q::MOPDL
            | q::MOPRC
            | q::IPV6 => {
                let e = self.pq_to_ethertype(proto)?;
                self.gen_linktype(e)
            }
            q::ISO | q::STP | q::IPX | q::NETBEUI => {
                let e = self.pq_to_llcsap(proto)?;
                self.gen_linktype(e)
            }
            q::ESIS => self.gen_proto(ISO9542_ESIS, q::ISO),
            q::ISIS => self.gen_proto(ISO10589_ISIS, q::ISO),
            q::CLNP => self.gen_proto(ISO8473_CLNP, q::ISO),
            q::ISIS_L1 => chain(
                self,
                &[
                    ISIS_L1_LAN_IIH,
                    ISIS_PTP_IIH,
                    ISIS_L1_LSP,
                    ISIS_L1_CSNP,
                    ISIS_L1_PSNP,
                ],
            ),
            q::ISIS_L2 => chain(
                self,
                &[
                    ISIS_L2_LAN_IIH,
                    ISIS_PTP_IIH,
                    ISIS_L2_LSP,
                    ISIS_L2_CSNP,
                    ISIS_L2_PSNP,
                ],
            ),
            q::ISIS_IIH => chain(self, &[ISIS_L1_LAN_IIH, ISIS_L2_LAN_IIH, ISIS_PTP_IIH]),
            q::ISIS_LSP => chain(self, &[ISIS_L1_LSP, ISIS_L2_LSP]),
            q::ISIS_SNP => chain(
                self,
                &[ISIS_L1_CSNP, ISIS_L2_CSNP, ISIS_L1_PSNP, ISIS_L2_PSNP],
            ),
            q::ISIS_CSNP => chain(self, &[ISIS_L1_CSNP, ISIS_L2_CSNP]),
            q::ISIS_PSNP => chain(self, &[ISIS_L1_PSNP, ISIS_L2_PSNP]),
            _ => self.err(format!(
                "'{}' cannot be used as an abbreviation",
                pqkw(proto)
            )),
        }
    }

    fn gen_proto(&mut self, v: u32, proto: u8) -> GResult<usize> {
        match proto {
            q::DEFAULT => {
                let b0 = self.gen_proto(v, q::IP)?;
                let b1 = self.gen_proto(v, q::IPV6)?;
                Ok(self.gen_or(b0, b1))
            }
            q::LINK => self.gen_linktype(v),
            q::IP => {
                self.assert_maxval("protocol number", v, 255)?;
                let b0 = self.gen_linktype(ETHERTYPE_IP)?;
                let b1 = self.gen_ip_proto(v);
                Ok(self.gen_and(b0, b1))
            }
            q::IPV6 => {
                self.assert_maxval("protocol number", v, 255)?;
                let b0 = self.gen_linktype(ETHERTYPE_IPV6)?;
                let b2 = self.gen_ip6_proto(IPPROTO_FRAGMENT);
                let b1 = self.gen_cmp(OffRel::LinkPl, IP6_HDRLEN, B, v);
                let b1 = self.gen_and(b2, b1);
                let b2 = self.gen_ip6_proto(v);
                let b1 = self.gen_or(b2, b1);
                Ok(self.gen_and(b0, b1))
            }
            q::ISO => {
                self.assert_maxval("ISO protocol", v, 255)?;
                match self.linktype.0 {
                    107 => Ok(self.gen_frelay_nlpid(v)),
                    104 | 112 => {
                        let b0 = self.gen_linktype((LLCSAP_ISONS << 8) | LLCSAP_ISONS)?;
                        let b1 = self.gen_cmp(OffRel::LinkPlNoSnap, 1, B, v);
                        Ok(self.gen_and(b0, b1))
                    }
                    _ => {
                        let b0 = self.gen_linktype(LLCSAP_ISONS)?;
                        let b1 = self.gen_cmp(OffRel::LinkPlNoSnap, 0, B, v);
                        Ok(self.gen_and(b0, b1))
                    }
                }
            }
            q::ISIS => {
                self.assert_maxval("IS-IS PDU type", v, 0x1f)?;
                let b0 = self.gen_proto(ISO10589_ISIS, q::ISO)?;
                let pdu_type_offset = if matches!(self.linktype.0, 104 | 112) {
                    5
                } else {
                    4
                };
                let b1 = self.gen_mcmp(OffRel::LinkPlNoSnap, pdu_type_offset, B, v, 0x1f);
                Ok(self.gen_and(b0, b1))
            }
            _ => self.invalid_qual(&pqkw(proto), "proto"),
        }
    }

    fn lookup_proto(&self, name: &str, qu: Qual) -> GResult<u32> {
        let v = match qu.proto {
            q::DEFAULT | q::IP | q::IPV6 => self.names.and_then(|n| n.protocol(name)),
            q::LINK => names::EPROTO
                .iter()
                .chain(names::LLC.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v),
            q::ISO => match name {
                "esis" => Some(ISO9542_ESIS),
                "isis" => Some(ISO10589_ISIS),
                "clnp" => Some(ISO8473_CLNP),
                _ => None,
            },
            _ => None,
        };
        match v {
            Some(v) => Ok(v),
            None if qu.proto == q::DEFAULT => {
                self.err(format!("unknown '{}' value '{name}'", tqkw(qu.addr)))
            }
            None => self.err(format!(
                "unknown '{} {}' value '{name}'",
                pqkw(qu.proto),
                tqkw(qu.addr)
            )),
        }
    }

    // ---- ports ----

    fn port_pq_to_ipproto(&self, proto: u8, kw: &str) -> GResult<i32> {
        match proto {
            q::UDP => Ok(IPPROTO_UDP),
            q::TCP => Ok(IPPROTO_TCP),
            q::SCTP => Ok(IPPROTO_SCTP),
            q::DEFAULT => Ok(PROTO_UNDEF),
            _ => self.invalid_qual(&pqkw(proto), kw),
        }
    }

    fn gen_portatom(&mut self, v6: bool, off: u32, v: u32) -> usize {
        let rel = if v6 {
            OffRel::TranIpv6
        } else {
            OffRel::TranIpv4
        };
        self.gen_cmp(rel, off, H, v)
    }

    fn gen_portrangeatom(&mut self, v6: bool, off: u32, v1: u32, v2: u32) -> usize {
        if v1 == v2 {
            return self.gen_portatom(v6, off, v1);
        }
        let rel = if v6 {
            OffRel::TranIpv6
        } else {
            OffRel::TranIpv4
        };
        let b1 = self.gen_cmp_ge(rel, off, H, v1.min(v2));
        let b2 = self.gen_cmp_le(rel, off, H, v1.max(v2));
        self.gen_and(b1, b2)
    }

    /// gen_port/gen_port6/gen_portrange/gen_portrange6.
    fn gen_port_any(
        &mut self,
        v6: bool,
        p1: u32,
        p2: u32,
        proto: i32,
        dir: u8,
        kw: &str,
    ) -> GResult<usize> {
        let b1 = match dir {
            q::SRC => self.gen_portrangeatom(v6, 0, p1, p2),
            q::DST => self.gen_portrangeatom(v6, 2, p1, p2),
            q::AND => {
                let t = self.gen_portrangeatom(v6, 0, p1, p2);
                let b1 = self.gen_portrangeatom(v6, 2, p1, p2);
                self.gen_and(t, b1)
            }
            q::DEFAULT | q::OR => {
                let t = self.gen_portrangeatom(v6, 0, p1, p2);
                let b1 = self.gen_portrangeatom(v6, 2, p1, p2);
                self.gen_or(t, b1)
            }
            _ => return self.invalid_qual(&dqkw(dir), kw),
        };
        let ipp = |g: &mut Self, p: u32| {
            if v6 {
                g.gen_ip6_proto(p)
            } else {
                g.gen_ip_proto(p)
            }
        };
        let tmp = match proto {
            IPPROTO_UDP | IPPROTO_TCP | IPPROTO_SCTP => ipp(self, proto as u32),
            _ => {
                let t = ipp(self, IPPROTO_SCTP as u32);
                let u = ipp(self, IPPROTO_UDP as u32);
                let t = self.gen_or(u, t);
                let c = ipp(self, IPPROTO_TCP as u32);
                self.gen_or(c, t)
            }
        };
        if v6 {
            let b1 = self.gen_and(tmp, b1);
            let l = self.gen_linktype(ETHERTYPE_IPV6)?;
            Ok(self.gen_and(l, b1))
        } else {
            let b0 = self.gen_ipfrag();
            let b0 = self.gen_and(tmp, b0);
            let b1 = self.gen_and(b0, b1);
            let l = self.gen_linktype(ETHERTYPE_IP)?;
            Ok(self.gen_and(l, b1))
        }
    }

    /// pcap_nametoport: a service's port and which protocol it is for.
    fn nametoport(&self, name: &str) -> Option<(u32, i32)> {
        let (t, u) = self.names.map(|n| n.service(name)).unwrap_or((None, None));
        match (t, u) {
            (Some(t), Some(u)) if t == u => Some((t as u32, PROTO_UNDEF)),
            (Some(t), _) => Some((t as u32, IPPROTO_TCP)),
            (None, Some(u)) => Some((u as u32, IPPROTO_UDP)),
            _ => None,
        }
    }

    fn stringtoport(&self, s: &str, proto: &mut i32) -> GResult<u32> {
        match super::lexer::stoul(s) {
            Ok(v) => {
                *proto = PROTO_UNDEF;
                Ok(v)
            }
            Err(e) if e.contains("overflows") => self.err(e),
            Err(_) => match self.nametoport(s) {
                Some((p, pr)) => {
                    *proto = pr;
                    Ok(p)
                }
                None => self.err(format!("'{s}' is not a valid port")),
            },
        }
    }

    // ---- arithmetic ----

    fn alloc_reg(&mut self) -> GResult<u32> {
        let mut n = MEMWORDS;
        while n > 0 {
            n -= 1;
            if self.regused[self.curreg] {
                self.curreg = (self.curreg + 1) % MEMWORDS;
            } else {
                self.regused[self.curreg] = true;
                return Ok(self.curreg as u32);
            }
        }
        self.err("too many registers needed to evaluate expression")
    }

    fn free_reg(&mut self, n: u32) {
        self.regused[n as usize] = false;
    }

    fn gen_arth_val(&mut self, a: &Arth) -> GResult<ArthVal> {
        match a {
            Arth::Num(v) => {
                let reg = self.alloc_reg()?;
                Ok(ArthVal {
                    b: None,
                    s: vec![Stmt::new(LD | IMM, *v), Stmt::new(ST, reg)],
                    regno: reg,
                })
            }
            Arth::Len => {
                let reg = self.alloc_reg()?;
                Ok(ArthVal {
                    b: None,
                    s: vec![Stmt::new(LD | LEN, 0), Stmt::new(ST, reg)],
                    regno: reg,
                })
            }
            Arth::Neg(inner) => {
                let mut a = self.gen_arth_val(inner)?;
                a.s.push(Stmt::new(LD | MEM, a.regno));
                a.s.push(Stmt::new(ALU | NEG, 0));
                a.s.push(Stmt::new(ST, a.regno));
                Ok(a)
            }
            Arth::Chain(first, rest) => {
                let mut a0 = self.gen_arth_val(first)?;
                for (code, r) in rest {
                    let a1 = self.gen_arth_val(r)?;
                    a0 = self.gen_arth(*code as i32, a0, a1)?;
                }
                Ok(a0)
            }
            Arth::Load(proto, idx, size) => {
                let mut inst = self.gen_arth_val(idx)?;
                self.gen_load(*proto, &mut inst, *size)?;
                Ok(inst)
            }
        }
    }

    /// gencode.c `gen_arth`: `a0 op a1` through the scratch registers.
    fn gen_arth(&mut self, code: i32, mut a0: ArthVal, mut a1: ArthVal) -> GResult<ArthVal> {
        let first = a1.s.first().copied();
        let imm =
            |k: &dyn Fn(u32) -> bool| matches!(first, Some(s) if s.code == LD | IMM && k(s.k));
        if code == 0x30 && imm(&|k| k == 0) {
            return self.err("division by zero");
        }
        if code == 0x90 && imm(&|k| k == 0) {
            return self.err("modulus by zero");
        }
        if (code == LSH || code == 0x70) && imm(&|k| k > 31) {
            return self.err("shift by more than 31 bits");
        }
        a1.s.push(Stmt::new(LDX | MEM, a1.regno));
        a1.s.push(Stmt::new(LD | MEM, a0.regno));
        a1.s.push(Stmt::new(ALU | X | code, 0));
        a0.s.append(&mut a1.s);
        self.free_reg(a0.regno);
        self.free_reg(a1.regno);
        let reg = self.alloc_reg()?;
        a0.s.push(Stmt::new(ST, reg));
        a0.regno = reg;
        // gen_arth keeps only a0's protocol checks; a1's are dropped.
        Ok(a0)
    }

    fn gen_load(&mut self, proto: u8, inst: &mut ArthVal, size: u32) -> GResult<()> {
        let regno = self.alloc_reg()?;
        self.free_reg(inst.regno);
        let size_code = match size {
            1 => B,
            2 => H,
            4 => W,
            _ => return self.err("data size must be 1, 2, or 4"),
        };
        let mut b: Option<usize> = None;
        let s;
        let constpart;
        match proto {
            q::LINK => {
                s = self.abs_offset_varpart(0);
                constpart = self.off_linkhdr.constant_part;
            }
            q::IP
            | q::ARP
            | q::RARP
            | q::ATALK
            | q::DECNET
            | q::SCA
            | q::LAT
            | q::MOPRC
            | q::MOPDL
            | q::IPV6 => {
                s = self.abs_offset_varpart(3);
                constpart = self.off_linkpl.constant_part + self.off_nl;
                b = Some(self.gen_proto_abbrev(proto)?);
            }
            q::SCTP
            | q::TCP
            | q::UDP
            | q::ICMP
            | q::IGMP
            | q::IGRP
            | q::PIM
            | q::VRRP
            | q::CARP => {
                s = self.loadx_iphdrlen();
                constpart = self.off_linkpl.constant_part + self.off_nl;
                let b0 = self.gen_proto_abbrev(q::IP)?;
                let p = self.pq_to_ipproto(proto)?;
                let b1 = self.gen_ip_proto(p);
                let b0 = self.gen_and(b0, b1);
                let f = self.gen_ipfrag();
                b = Some(self.gen_and(b0, f));
            }
            q::ICMPV6 => {
                let b0 = self.gen_proto_abbrev(q::IPV6)?;
                let b1 = self.gen_ip6_proto(58);
                b = Some(self.gen_and(b0, b1));
                s = self.abs_offset_varpart(3);
                constpart = self.off_linkpl.constant_part + self.off_nl + IP6_HDRLEN;
            }
            q::RADIO => {
                if !matches!(self.linktype.0, 163 | 127 | 119) {
                    return self.err("radio information not present in capture");
                }
                s = Vec::new();
                constpart = 0;
            }
            _ => {
                return self.err(format!(
                    "'{}' does not support the index operation",
                    pqkw(proto)
                ))
            }
        }
        if let Some(b) = b {
            inst.b = Some(match inst.b {
                Some(ib) => self.gen_and(ib, b),
                None => b,
            });
        }
        // gen_load_absoffsetarthrel
        let varpart = if s.is_empty() {
            vec![Stmt::new(LDX | MEM, inst.regno)]
        } else {
            let mut s = s;
            s.push(Stmt::new(LD | MEM, inst.regno));
            s.push(Stmt::new(ALU | ADD | X, 0));
            s.push(Stmt::new(MISC | TAX, 0));
            s
        };
        let mut l = self.load_absoffsetrel(varpart, constpart, size_code);
        inst.s.append(&mut l);
        inst.regno = regno;
        inst.s.push(Stmt::new(ST, regno));
        Ok(())
    }

    fn gen_relation(&mut self, code: u16, a0: &Arth, a1: &Arth, reversed: bool) -> GResult<usize> {
        let mut v0 = self.gen_arth_val(a0)?;
        let mut v1 = self.gen_arth_val(a1)?;
        v1.s.push(Stmt::new(LDX | MEM, v1.regno));
        v1.s.push(Stmt::new(LD | MEM, v0.regno));
        v0.s.append(&mut v1.s);
        let mut b = self.new_block(JMP | code as i32 | X, 0, v0.s);
        if reversed {
            b = self.gen_not(b);
        }
        self.free_reg(v0.regno);
        self.free_reg(v1.regno);
        if let Some(x) = v0.b {
            b = self.gen_and(x, b);
        }
        if let Some(x) = v1.b {
            b = self.gen_and(x, b);
        }
        Ok(b)
    }

    // ---- primitives ----

    fn gen_scode(&mut self, name: &str, qu: Qual) -> GResult<usize> {
        let proto = qu.proto;
        if proto == q::DECNET {
            return self.invalid_qual(
                "decnet",
                &tqkw(if qu.addr == q::DEFAULT {
                    q::HOST
                } else {
                    qu.addr
                }),
            );
        }
        match qu.addr {
            q::NET => {
                let Some(mut addr) = self.names.and_then(|n| n.network(name)).filter(|a| *a != 0)
                else {
                    return self.err(format!("unknown network '{name}'"));
                };
                let mut mask: u32 = 0xffff_ffff;
                while addr != 0 && (addr & 0xff00_0000) == 0 {
                    addr <<= 8;
                    mask <<= 8;
                }
                self.gen_host(
                    &[addr],
                    &[mask],
                    qu.proto,
                    qu.dir,
                    false,
                    "net <IPv4 network name>",
                )
            }
            q::DEFAULT | q::HOST => {
                if proto == q::LINK {
                    self.gen_mac48host_byname(name, qu.dir, "link host NAME")
                } else {
                    self.gen_host46_byname(name, qu.proto, qu.proto, qu.dir, false)
                }
            }
            q::PORT => {
                self.port_pq_to_ipproto(proto, "port")?;
                let Some((port, mut real)) = self.nametoport(name) else {
                    return self.err(format!("unknown port '{name}'"));
                };
                self.check_port_proto(proto, &mut real, name, "port")?;
                let b = self.gen_port_any(false, port, port, real, qu.dir, "port")?;
                let b6 = self.gen_port_any(true, port, port, real, qu.dir, "port")?;
                Ok(self.gen_or(b6, b))
            }
            q::PORTRANGE => {
                self.port_pq_to_ipproto(proto, "portrange")?;
                let Some(hy) = name.find('-') else {
                    return self.err(format!("port range '{name}' contains no hyphen"));
                };
                if name[hy + 1..].contains('-') {
                    return self.err(format!("port range '{name}' contains more than one hyphen"));
                }
                if hy == 0 {
                    return self.err(format!("port range '{name}' has no starting port"));
                }
                let mut real = PROTO_UNDEF;
                let p1 = self.stringtoport(&name[..hy], &mut real)?;
                let save = real;
                if hy + 1 == name.len() {
                    return self.err(format!("port range '{name}' has no ending port"));
                }
                let p2 = self.stringtoport(&name[hy + 1..], &mut real)?;
                if real != save {
                    real = PROTO_UNDEF;
                }
                self.check_port_proto(proto, &mut real, name, "port in range")?;
                self.assert_maxval("port number", p1, 65535)?;
                self.assert_maxval("port number", p2, 65535)?;
                let b = self.gen_port_any(false, p1, p2, real, qu.dir, "portrange")?;
                let b6 = self.gen_port_any(true, p1, p2, real, qu.dir, "portrange")?;
                Ok(self.gen_or(b6, b))
            }
            q::GATEWAY => self.gen_gateway(name, qu.proto),
            q::PROTO => {
                let v = self.lookup_proto(name, qu)?;
                self.gen_proto(v, proto)
            }
            q::PROTOCHAIN => {
                let v = self.lookup_proto(name, qu)?;
                self.gen_protochain(v, proto)
            }
            q::UNDEF => self.err("syntax error in filter expression"),
            _ => self.invalid_qual(&tqkw(qu.addr), name),
        }
    }

    fn check_port_proto(&self, proto: u8, real: &mut i32, name: &str, what: &str) -> GResult<()> {
        let (want, others): (i32, [(i32, &str); 2]) = match proto {
            q::UDP => (IPPROTO_UDP, [(IPPROTO_TCP, "tcp"), (IPPROTO_SCTP, "sctp")]),
            q::TCP => (IPPROTO_TCP, [(IPPROTO_UDP, "udp"), (IPPROTO_SCTP, "sctp")]),
            q::SCTP => (IPPROTO_SCTP, [(IPPROTO_UDP, "udp"), (IPPROTO_TCP, "tcp")]),
            _ => return Ok(()),
        };
        for (p, n) in others {
            if *real == p {
                return self.err(format!("{what} '{name}' is {n}"));
            }
        }
        *real = want;
        Ok(())
    }

    /// gencode.c `gen_protochain`: a loop in one block walking the IPv6
    /// extension headers (and IPv4/IPv6 AH) to the protocol `v`.
    fn gen_protochain(&mut self, v: u32, proto: u8) -> GResult<usize> {
        let reg2 = self.alloc_reg()?;
        match proto {
            q::IP | q::IPV6 => self.assert_maxval("protocol number", v, 255)?,
            q::DEFAULT => {
                let b0 = self.gen_protochain(v, q::IP)?;
                let b = self.gen_protochain(v, q::IPV6)?;
                return Ok(self.gen_or(b0, b));
            }
            _ => return self.invalid_qual(&pqkw(proto), "protochain"),
        }
        if self.off_linkpl.is_variable {
            return self.err("'protochain' not supported with variable length headers");
        }
        self.no_optimize = true;
        let base = self.off_linkpl.constant_part.wrapping_add(self.off_nl);
        let mut s: Vec<Stmt> = vec![Stmt::new(0, 0)]; // libpcap's dummy s[0]
        let b0 = if proto == q::IP {
            let b0 = self.gen_linktype(ETHERTYPE_IP)?;
            // Only the first statement of each list survives s[i]->next = s[i + 1].
            let l = self.load_a(OffRel::LinkPl, 9, B);
            s.push(l[0]);
            let x = self.loadx_iphdrlen();
            s.push(x[0]);
            b0
        } else {
            let b0 = self.gen_linktype(ETHERTYPE_IPV6)?;
            let l = self.load_a(OffRel::LinkPl, 6, B);
            s.push(l[0]);
            s.push(Stmt::new(LDX | IMM, IP6_HDRLEN));
            b0
        };
        let push = |g: &mut Self, s: &mut Vec<Stmt>, code: i32, k: u32| -> usize {
            let st = g.target(code, k);
            s.push(st);
            s.len() - 1
        };
        let again = s.len();
        let fix5 = push(self, &mut s, JMP | JEQ | K, v);
        let fix2 = push(self, &mut s, JMP | JEQ | K, 59);
        s[fix5].jf = s[fix2].uid;
        let mut fix3 = None;
        if proto == q::IPV6 {
            let v6start = push(self, &mut s, JMP | JEQ | K, 0);
            s[fix2].jf = s[v6start].uid;
            for k in [60, 43, 44] {
                let i = push(self, &mut s, JMP | JEQ | K, k);
                s[i - 1].jf = s[i].uid;
            }
            let v6end = s.len() - 1;
            fix3 = Some(v6end);
            let v6advance = push(self, &mut s, LD | IND | B, base);
            push(self, &mut s, ST, reg2);
            push(self, &mut s, LD | IND | B, base.wrapping_add(1));
            push(self, &mut s, ALU | ADD | K, 1);
            push(self, &mut s, ALU | 0x20 | K, 8);
            push(self, &mut s, ALU | ADD | X, 0);
            push(self, &mut s, MISC | TAX, 0);
            push(self, &mut s, LD | MEM, reg2);
            let i = s.len();
            push(
                self,
                &mut s,
                JMP | JA | K,
                (again as u32).wrapping_sub(i as u32 + 1),
            );
            for j in v6start..=v6end {
                s[j].jt = s[v6advance].uid;
            }
        } else {
            let i = push(self, &mut s, ALU | ADD | K, 0);
            s[fix2].jf = s[i].uid;
        }
        let ahcheck = push(self, &mut s, JMP | JEQ | K, 51);
        if let Some(f3) = fix3 {
            s[f3].jf = s[ahcheck].uid;
        }
        let fix4 = ahcheck;
        let i = push(self, &mut s, LD | IND | B, base);
        s[fix4].jt = s[i].uid;
        push(self, &mut s, ST, reg2);
        push(self, &mut s, MISC | TXA, 0);
        push(self, &mut s, ALU | ADD | K, 1);
        push(self, &mut s, MISC | TAX, 0);
        push(self, &mut s, LD | IND | B, base);
        push(self, &mut s, ALU | ADD | K, 2);
        push(self, &mut s, ALU | 0x20 | K, 4);
        push(self, &mut s, MISC | TAX, 0);
        push(self, &mut s, LD | MEM, reg2);
        let i = s.len();
        push(
            self,
            &mut s,
            JMP | JA | K,
            (again as u32).wrapping_sub(i as u32 + 1),
        );
        let end = push(self, &mut s, ALU | ADD | K, 0);
        s[fix2].jt = s[end].uid;
        s[fix4].jf = s[end].uid;
        s[fix5].jt = s[end].uid;
        s.remove(0);
        let b = self.gen_jmp_k(JEQ, v, s);
        self.free_reg(reg2);
        Ok(self.gen_and(b0, b))
    }

    fn gen_ncode(&mut self, s: Option<&str>, mut v: u32, qu: Qual) -> GResult<usize> {
        if qu.proto == q::DECNET {
            return self.gen_dnhost(s, v, qu);
        }
        let proto = qu.proto;
        let (vlen, idstr) = match s {
            None => (32, v.to_string()),
            Some(s) => match names::atoin(s) {
                Some((a, len)) => {
                    v = a;
                    (len, s.to_string())
                }
                None => return self.err(format!("invalid IPv4 address '{s}'")),
            },
        };
        match qu.addr {
            q::DEFAULT | q::HOST | q::NET => {
                if proto == q::LINK {
                    return self.err(format!("illegal link-layer address '{idstr}'"));
                }
                let mut mask: u32 = 0xffff_ffff;
                if s.is_none() && qu.addr == q::NET {
                    while v != 0 && (v & 0xff00_0000) == 0 {
                        v <<= 8;
                        mask <<= 8;
                    }
                } else {
                    v = v.checked_shl(32 - vlen).unwrap_or(0);
                    mask = mask.checked_shl(32 - vlen).unwrap_or(0);
                }
                let ctx = if qu.addr == q::NET {
                    "net <IPv4 address>"
                } else {
                    "host <IPv4 address>"
                };
                self.gen_host(&[v], &[mask], qu.proto, qu.dir, false, ctx)
            }
            q::PORTRANGE | q::PORT => {
                let p = self.port_pq_to_ipproto(proto, &tqkw(qu.addr))?;
                self.assert_maxval("port number", v, 65535)?;
                let kw = tqkw(qu.addr);
                let b = self.gen_port_any(false, v, v, p, qu.dir, &kw)?;
                let b6 = self.gen_port_any(true, v, v, p, qu.dir, &kw)?;
                Ok(self.gen_or(b6, b))
            }
            q::PROTO => self.gen_proto(v, proto),
            q::PROTOCHAIN => self.gen_protochain(v, proto),
            q::UNDEF => self.err("syntax error in filter expression"),
            _ => self.invalid_qual(&tqkw(qu.addr), &idstr),
        }
    }

    /// gencode.c `gen_dnhost`: a DECnet `area.node` address.
    fn gen_dnhost(&mut self, s: Option<&str>, v: u32, qu: Qual) -> GResult<usize> {
        self.assert_nonwlan_dqual(qu.dir)?;
        if qu.addr != q::DEFAULT && qu.addr != q::HOST {
            return self.invalid_qual("decnet", &tqkw(qu.addr));
        }
        let Some(s) = s else {
            return self.err(format!("invalid DECnet address '{v}'"));
        };
        let Some(addr) = names::atodn(s) else {
            return self.err(format!("invalid DECnet address '{s}'"));
        };
        let b0 = self.gen_linktype(ETHERTYPE_DN)?;
        let b1 = self.gen_dnhostop(addr, qu.dir)?;
        Ok(self.gen_and(b0, b1))
    }

    fn gen_dnhostop(&mut self, addr: u32, dir: u8) -> GResult<usize> {
        let (offset_sh, offset_lh) = match dir {
            q::DST => (1, 7),
            q::SRC => (3, 15),
            q::AND | q::DEFAULT | q::OR => {
                let b0 = self.gen_dnhostop(addr, q::SRC)?;
                let b1 = self.gen_dnhostop(addr, q::DST)?;
                return Ok(if dir == q::AND {
                    self.gen_and(b0, b1)
                } else {
                    self.gen_or(b0, b1)
                });
            }
            _ => {
                return self.err(format!(
                    "internal error in gen_dnhostop(): dir == '{}'",
                    dqkw(dir)
                ))
            }
        };
        let sw = ((addr & 0xff) << 8) | ((addr >> 8) & 0xff);
        let pl = OffRel::LinkPl;
        let tmp = self.gen_mcmp(pl, 2, H, 0x8106, 0xff07);
        let b1 = self.gen_cmp(pl, 2 + 1 + offset_lh, H, sw);
        let b1 = self.gen_and(tmp, b1);
        let tmp = self.gen_mcmp(pl, 2, B, 0x06, 0x07);
        let b2 = self.gen_cmp(pl, 2 + offset_lh, H, sw);
        let b2 = self.gen_and(tmp, b2);
        let b1 = self.gen_or(b2, b1);
        let b2 = if dir == q::DST {
            self.gen_mcmp(pl, 2, W, 0x8102_0000 | sw, 0xff07_ffff)
        } else {
            let tmp = self.gen_mcmp(pl, 2, H, 0x8102, 0xff07);
            let b2 = self.gen_cmp(pl, 2 + 1 + offset_sh, H, sw);
            self.gen_and(tmp, b2)
        };
        let b1 = self.gen_or(b2, b1);
        let b2 = if dir == q::DST {
            self.gen_mcmp(pl, 2, W, 0x0200_0000 | (sw << 8), 0x07ff_ff00)
        } else {
            let tmp = self.gen_mcmp(pl, 2, B, 0x02, 0x07);
            let b2 = self.gen_cmp(pl, 2 + offset_sh, H, sw);
            self.gen_and(tmp, b2)
        };
        Ok(self.gen_or(b2, b1))
    }

    fn gen_mcode(&mut self, s1: &str, s2: Option<&str>, masklen: u32, qu: Qual) -> GResult<usize> {
        if qu.proto == q::DECNET {
            return self.invalid_qual(
                "decnet",
                &tqkw(if qu.addr == q::DEFAULT {
                    q::HOST
                } else {
                    qu.addr
                }),
            );
        }
        let Some((n, nlen)) = names::atoin(s1) else {
            return self.err(format!("invalid IPv4 address '{s1}'"));
        };
        let n = n.checked_shl(32 - nlen).unwrap_or(0);
        let (m, idstr) = match s2 {
            Some(s2) => {
                let Some((m, mlen)) = names::atoin(s2) else {
                    return self.err(format!("invalid IPv4 address '{s2}'"));
                };
                (
                    m.checked_shl(32 - mlen).unwrap_or(0),
                    format!("{s1} mask {s2}"),
                )
            }
            None => {
                self.assert_maxval("netmask length", masklen, 32)?;
                (
                    (0xffff_ffffu64 << (32 - masklen)) as u32,
                    format!("{s1}/{masklen}"),
                )
            }
        };
        if n & !m != 0 {
            return self.err(format!("non-network bits set in \"{idstr}\""));
        }
        match qu.addr {
            q::NET => self.gen_host(&[n], &[m], qu.proto, qu.dir, false, "net <IPv4 prefix>"),
            _ => self.invalid_qual(&tqkw(qu.addr), &idstr),
        }
    }

    fn gen_mcode6(&mut self, s: &str, masklen: u32, qu: Qual) -> GResult<usize> {
        let Some(addr) = names::parse_ipv6(s) else {
            return self.err(format!("'{s}' is not a valid IPv6 address"));
        };
        if masklen > 128 {
            return self.err("mask length must be <= 128");
        }
        let mut mask = [0u8; 16];
        for (i, m) in mask.iter_mut().enumerate() {
            let bits = (masklen as i32 - 8 * i as i32).clamp(0, 8);
            *m = (0xff00u16 >> bits) as u8;
        }
        if addr.iter().zip(mask.iter()).any(|(a, m)| a & !m != 0) {
            return self.err(format!("non-network bits set in \"{s}/{masklen}\""));
        }
        match qu.addr {
            q::DEFAULT | q::HOST | q::NET => {
                if qu.addr != q::NET && masklen != 128 {
                    return self.invalid_qual("host", &format!("{s}/{masklen}"));
                }
                let ctx = if qu.addr == q::HOST {
                    "host <IPv6 address>"
                } else {
                    "net <IPv6 prefix>"
                };
                self.gen_host6(&[addr], &[mask], qu.proto, qu.dir, false, ctx)
            }
            _ => {
                if masklen == 128 {
                    self.invalid_qual(&tqkw(qu.addr), s)
                } else {
                    self.invalid_qual(&tqkw(qu.addr), &format!("{s}/{masklen}"))
                }
            }
        }
    }

    fn gen_ecode(&mut self, s: &str, qu: Qual) -> GResult<usize> {
        let context = "link host XX:XX:XX:XX:XX:XX";
        if !((qu.addr == q::HOST || qu.addr == q::DEFAULT) && qu.proto == q::LINK) {
            return self.err("Ethernet address used in non-ether expression");
        }
        if !self.is_mac48_linktype() {
            return self.fail_kw_on_dlt(context);
        }
        let Some(e) = names::atomac48(s) else {
            return self.err(format!("invalid MAC-48 address '{s}'"));
        };
        self.gen_mac48host(&e, qu.dir, context)
    }

    fn check_hid_qual(&self, q_addr: u8, what: &str) -> GResult<()> {
        let kw = match q_addr {
            q::PORT => "port",
            q::PORTRANGE => "portrange",
            q::PROTO => "proto",
            q::PROTOCHAIN => "protochain",
            _ => return Ok(()),
        };
        self.err(format!("'{kw}' qualifier applied to {what}"))
    }

    fn gen_id(&mut self, qu: Qual, id: &IdKind) -> GResult<usize> {
        match id {
            IdKind::Name(s) => self.gen_scode(s, qu),
            IdKind::Num(n) => self.gen_ncode(None, *n, qu),
            IdKind::HidLen(s, n) => {
                self.check_hid_qual(qu.addr, "IPv4 address and prefix length")?;
                self.gen_mcode(s, None, *n, qu)
            }
            IdKind::HidMask(s, m) => {
                self.check_hid_qual(qu.addr, "IPv4 address and netmask")?;
                self.gen_mcode(s, Some(m), 0, qu)
            }
            IdKind::Hid(s) => {
                self.check_hid_qual(qu.addr, "IPv4 address")?;
                self.gen_ncode(Some(s), 0, qu)
            }
            IdKind::Hid6Len(s, n) => {
                self.check_hid_qual(qu.addr, "IPv6 address and prefix length")?;
                self.gen_mcode6(s, *n, qu)
            }
            IdKind::Hid6(s) => {
                self.check_hid_qual(qu.addr, "IPv6 address")?;
                self.gen_mcode6(s, 128, qu)
            }
            IdKind::Eid(s) => self.gen_ecode(s, qu),
            IdKind::Aid(a) => {
                self.assert_nonwlan_dqual(qu.dir)?;
                if qu.addr != q::HOST && qu.addr != q::DEFAULT {
                    return self.invalid_qual(&tqkw(qu.addr), "$XX");
                }
                if qu.proto != q::LINK {
                    return self.err("'link' is the only valid proto qualifier for 'host $XX'");
                }
                let Some(v) = a
                    .strip_prefix('$')
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                else {
                    return self.err(format!("invalid MAC-8 address '{a}'"));
                };
                self.gen_mac8host(v as u32, qu.dir, "link host $XX")
            }
        }
    }

    /// gencode.c `gen_mac8host`: one-byte station addresses (ARCnet, MS/TP).
    fn gen_mac8host(&mut self, v: u32, dir: u8, context: &str) -> GResult<usize> {
        let (src_off, dst_off) = match self.linktype.0 {
            7 | 129 => (0, 1),
            165 => (4, 3),
            _ => return self.fail_kw_on_dlt(context),
        };
        let lh = OffRel::LinkHdr;
        Ok(match dir {
            q::SRC => self.gen_cmp(lh, src_off, B, v),
            q::DST => self.gen_cmp(lh, dst_off, B, v),
            q::AND => {
                let a = self.gen_cmp(lh, src_off, B, v);
                let b = self.gen_cmp(lh, dst_off, B, v);
                self.gen_and(a, b)
            }
            q::DEFAULT | q::OR => {
                let a = self.gen_cmp(lh, src_off, B, v);
                let b = self.gen_cmp(lh, dst_off, B, v);
                self.gen_or(a, b)
            }
            _ => {
                return self.err(format!(
                    "internal error in gen_mac8host(): dir == '{}'",
                    dqkw(dir)
                ))
            }
        })
    }

    fn gen_broadcast(&mut self, proto: u8) -> GResult<usize> {
        match proto {
            q::DEFAULT | q::LINK => match self.linktype.0 {
                7 | 129 => self.gen_mac8host(0, q::DST, "broadcast"),
                165 => self.gen_mac8host(0xff, q::DST, "broadcast"),
                _ => self.gen_mac48host(&[0xff; 6], q::DST, "broadcast"),
            },
            q::IP => {
                if self.netmask == 0xffff_ffff {
                    return self.err("netmask not known, so 'ip broadcast' not supported");
                }
                let b0 = self.gen_linktype(ETHERTYPE_IP)?;
                let hostmask = !self.netmask;
                let b1 = self.gen_mcmp(OffRel::LinkPl, 16, W, 0, hostmask);
                let b2 = self.gen_mcmp(OffRel::LinkPl, 16, W, hostmask, hostmask);
                let o = self.gen_or(b1, b2);
                Ok(self.gen_and(b0, o))
            }
            _ => self.invalid_qual(&pqkw(proto), "broadcast"),
        }
    }

    fn gen_mac_multicast(&mut self, offset: u32) -> usize {
        let s = self.load_a(OffRel::LinkHdr, offset, B);
        self.gen_set(1, s)
    }

    fn gen_multicast(&mut self, proto: u8) -> GResult<usize> {
        match proto {
            q::DEFAULT | q::LINK => match self.linktype.0 {
                7 | 129 => self.gen_mac8host(0, q::DST, "multicast"),
                10 => Ok(self.gen_mac_multicast(1)),
                105 | 119 | 163 | 127 | 192 => {
                    let lh = OffRel::LinkHdr;
                    let s = self.load_a(lh, 1, B);
                    let b1 = self.gen_set(0x01, s);
                    let b0 = self.gen_mac_multicast(16);
                    let b0 = self.gen_and(b1, b0);
                    let s = self.load_a(lh, 1, B);
                    let b2 = self.gen_unset(0x01, s);
                    let b1 = self.gen_mac_multicast(4);
                    let b1 = self.gen_and(b2, b1);
                    let b0 = self.gen_or(b1, b0);
                    let s = self.load_a(lh, 0, B);
                    let b1 = self.gen_set(0x08, s);
                    let b0 = self.gen_and(b1, b0);
                    let s = self.load_a(lh, 0, B);
                    let b2 = self.gen_unset(0x08, s);
                    let b1 = self.gen_mac_multicast(4);
                    let b1 = self.gen_and(b2, b1);
                    let b0 = self.gen_or(b1, b0);
                    let s = self.load_a(lh, 0, B);
                    let b1 = self.gen_unset(0x04, s);
                    Ok(self.gen_and(b1, b0))
                }
                6 | 122 => Ok(self.gen_mac_multicast(2)),
                1 | 240 | 241 | 281 | 284 => {
                    let b1 = self.gen_prevlinkhdr_check();
                    let b0 = self.gen_mac_multicast(0);
                    Ok(match b1 {
                        Some(b1) => self.gen_and(b1, b0),
                        None => b0,
                    })
                }
                _ => self.fail_kw_on_dlt("multicast"),
            },
            q::IP => {
                let b0 = self.gen_linktype(ETHERTYPE_IP)?;
                let b1 = self.gen_mcmp(OffRel::LinkPl, 16, B, 0xe0, 0xf0);
                Ok(self.gen_and(b0, b1))
            }
            q::IPV6 => {
                let b0 = self.gen_linktype(ETHERTYPE_IPV6)?;
                let b1 = self.gen_cmp(OffRel::LinkPl, 24, B, 255);
                Ok(self.gen_and(b0, b1))
            }
            _ => self.invalid_qual(&pqkw(proto), "multicast"),
        }
    }

    fn ss7kw(t: u8) -> &'static str {
        match t {
            22 => "fisu",
            23 => "lssu",
            24 => "msu",
            25 => "hfisu",
            26 => "hlssu",
            27 => "hmsu",
            1 => "sio",
            2 => "opc",
            3 => "dpc",
            4 => "sls",
            5 => "hsio",
            6 => "hopc",
            7 => "hdpc",
            _ => "hsls",
        }
    }

    fn assert_ss7(&self, kw: &str) -> GResult<()> {
        if self.linktype.0 == 140 {
            return Ok(());
        }
        self.err(format!("'{kw}' supported only on SS7"))
    }

    /// gencode.c `gen_mtp2type_abbrev` (DLT_MTP2 offsets: LI at 2, HSL LI at 4).
    fn gen_mtp2type_abbrev(&mut self, t: u8) -> GResult<usize> {
        self.assert_ss7(Self::ss7kw(t))?;
        let p = OffRel::Packet;
        Ok(match t {
            22 => self.gen_ncmp(p, 2, B, 0x3f, JEQ, false, 0),
            23 => {
                let b0 = self.gen_ncmp(p, 2, B, 0x3f, JGT, true, 2);
                let b1 = self.gen_ncmp(p, 2, B, 0x3f, JGT, false, 0);
                self.gen_and(b1, b0)
            }
            24 => self.gen_ncmp(p, 2, B, 0x3f, JGT, false, 2),
            25 => self.gen_ncmp(p, 4, H, 0xff80, JEQ, false, 0),
            26 => {
                let b0 = self.gen_ncmp(p, 4, H, 0xff80, JGT, true, 0x0100);
                let b1 = self.gen_ncmp(p, 4, H, 0xff80, JGT, false, 0);
                self.gen_and(b1, b0)
            }
            _ => self.gen_ncmp(p, 4, H, 0xff80, JGT, false, 0x0100),
        })
    }

    /// gencode.c `gen_mtp3field_code` (DLT_MTP2: SIO at 3, OPC/DPC at 4, SLS at 7; HSL adds 3).
    fn gen_mtp3field_code(
        &mut self,
        field: u8,
        v: u32,
        jtype: i32,
        reverse: bool,
    ) -> GResult<usize> {
        let kw = Self::ss7kw(field);
        self.assert_ss7(kw)?;
        let hsl = if field >= 5 { 3 } else { 0 };
        let p = OffRel::Packet;
        let swap16 = |x: u32| ((x & 0xff) << 8) | ((x & 0xff00) >> 8);
        Ok(match field {
            1 | 5 => {
                self.assert_maxval(kw, v, 255)?;
                self.gen_ncmp(p, 3 + hsl, B, u32::MAX, jtype, reverse, v)
            }
            2 | 6 => {
                self.assert_maxval(kw, v, 0x3fff)?;
                self.gen_ncmp(
                    p,
                    4 + hsl,
                    W,
                    (0x3fffu32 << 14).swap_bytes(),
                    jtype,
                    reverse,
                    (v << 14).swap_bytes(),
                )
            }
            3 | 7 => {
                self.assert_maxval(kw, v, 0x3fff)?;
                self.gen_ncmp(p, 4 + hsl, H, swap16(0x3fff), jtype, reverse, swap16(v))
            }
            _ => {
                self.assert_maxval(kw, v, 0xf)?;
                self.gen_ncmp(p, 7 + hsl, B, 0xf << 4, jtype, reverse, v << 4)
            }
        })
    }

    fn gen_just_after_mpls_stack(&mut self) -> usize {
        let s = self.load_a(OffRel::PrevMplsHdr, 2, B);
        self.gen_set(0x01, s)
    }

    fn gen_mpls_linktype(&mut self, ll_proto: u32) -> GResult<usize> {
        let ver = match ll_proto {
            ETHERTYPE_IP => 4,
            ETHERTYPE_IPV6 => 6,
            _ => return self.err("unsupported protocol over mpls"),
        };
        let b0 = self.gen_just_after_mpls_stack();
        let b1 = self.gen_ip_version(OffRel::LinkPl, ver);
        Ok(self.gen_and(b0, b1))
    }

    /// gencode.c `gen_mpls`: each `mpls` moves the payload past one label.
    fn gen_mpls(&mut self, label: Option<u32>) -> GResult<usize> {
        let mut b0 = if self.label_stack_depth > 0 {
            let b = self.gen_just_after_mpls_stack();
            self.gen_not(b)
        } else {
            match self.linktype.0 {
                104 | 112 | 1 | 240 | 241 | 281 | 284 => self.gen_linktype(0x8847)?,
                9 => self.gen_linktype(0x0281)?,
                _ => return self.fail_kw_on_dlt("mpls"),
            }
        };
        if let Some(l) = label {
            self.assert_maxval("MPLS label", l, 0xfffff)?;
            let b1 = self.gen_mcmp(OffRel::LinkPl, 0, W, l << 12, 0xfffff << 12);
            b0 = self.gen_and(b0, b1);
        }
        self.off_nl_nosnap = self.off_nl_nosnap.wrapping_add(4);
        self.off_nl = self.off_nl.wrapping_add(4);
        self.label_stack_depth += 1;
        Ok(b0)
    }

    fn gen_pppoes(&mut self, sess: Option<u32>) -> GResult<usize> {
        let mut b0 = self.gen_linktype(0x8864)?;
        if let Some(n) = sess {
            self.assert_maxval("PPPoE session number", n, 65535)?;
            let b1 = self.gen_cmp(OffRel::LinkPl, 2, H, n);
            b0 = self.gen_and(b0, b1);
        }
        // PUSH_LINKHDR(DLT_PPP, ...): PPP follows the 6-byte PPPoE header.
        self.prevlinktype = self.linktype;
        self.off_prevlinkhdr = self.off_linkhdr;
        self.linktype = LinkType(9);
        self.off_linkhdr = AbsOffset {
            constant_part: self
                .off_linkpl
                .constant_part
                .wrapping_add(self.off_nl)
                .wrapping_add(6),
            is_variable: self.off_linkpl.is_variable,
            reg: self.off_linkpl.reg,
        };
        self.is_encap = false;
        self.off_linktype = self.off_linkhdr;
        self.off_linkpl.constant_part = self.off_linkhdr.constant_part.wrapping_add(2);
        self.off_nl = 0;
        self.off_nl_nosnap = 0;
        Ok(b0)
    }

    fn gen_vlan_tpid_test(&mut self) -> GResult<usize> {
        let b0 = self.gen_linktype(0x8100)?;
        let b1 = self.gen_linktype(0x88a8)?;
        let b0 = self.gen_or(b0, b1);
        let b1 = self.gen_linktype(0x9100)?;
        Ok(self.gen_or(b0, b1))
    }

    fn gen_vlan_vid_test(&mut self, v: u32) -> GResult<usize> {
        self.assert_maxval("VLAN tag", v, 0x0fff)?;
        Ok(self.gen_mcmp(OffRel::LinkPl, 0, H, v, 0x0fff))
    }

    fn gen_vlan_no_bpf_extensions(&mut self, v: Option<u32>) -> GResult<usize> {
        let mut b0 = self.gen_vlan_tpid_test()?;
        if let Some(v) = v {
            let b1 = self.gen_vlan_vid_test(v)?;
            b0 = self.gen_and(b0, b1);
        }
        self.off_linkpl.constant_part = self.off_linkpl.constant_part.wrapping_add(4);
        self.off_linktype.constant_part = self.off_linktype.constant_part.wrapping_add(4);
        Ok(b0)
    }

    fn vloffset_add(&mut self, which_linkpl: bool, v: u32, s: &mut Vec<Stmt>) -> GResult<()> {
        let cur = if which_linkpl {
            self.off_linkpl
        } else {
            self.off_linktype
        };
        let reg = match cur.reg {
            Some(r) => r,
            None => self.alloc_reg()?,
        };
        let off = if which_linkpl {
            &mut self.off_linkpl
        } else {
            &mut self.off_linktype
        };
        off.is_variable = true;
        off.reg = Some(reg);
        s.push(Stmt::new(LD | MEM, reg));
        s.push(Stmt::new(ALU | ADD | K, v));
        s.push(Stmt::new(ST, reg));
        Ok(())
    }

    /// gencode.c `gen_vlan_bpf_extensions`: Linux strips the outer tag into
    /// ancillary data (`SKF_AD_VLAN_TAG_PRESENT`), so test both places.
    fn gen_vlan_bpf_extensions(&mut self, v: Option<u32>) -> GResult<usize> {
        const SKF_AD_OFF: u32 = 0xffff_f000;
        let b0 = self.gen_jmp_k(JEQ, 1, vec![Stmt::new(LD | B | ABS, SKF_AD_OFF + 48)]);
        let b_tpid = self.gen_vlan_tpid_test()?;
        let b_vid = match v {
            Some(v) => Some(self.gen_vlan_vid_test(v)?),
            None => None,
        };
        self.is_vlan_vloffset = true;
        let mut s = Vec::new();
        self.vloffset_add(true, 4, &mut s)?;
        self.vloffset_add(false, 4, &mut s)?;
        let head = self.blocks[b_tpid].head;
        self.sprepend_to_block(s, head);
        let mut b0 = self.gen_or(b0, b_tpid);
        if let Some(b_vid) = b_vid {
            let first = match self.blocks[b_vid].stmts.first().map(|f| f.uid) {
                Some(0) => {
                    let u = self.uid();
                    self.blocks[b_vid].stmts[0].uid = u;
                    u
                }
                Some(u) => u,
                None => 0,
            };
            let cnt = self.blocks[b_vid].stmts.len() as u32;
            let tag = self.target(LD | H | ABS, SKF_AD_OFF + 44);
            let mut jeq = Stmt::new(JMP | JEQ | K, 1);
            jeq.jt = tag.uid;
            jeq.jf = first;
            let s = vec![
                Stmt::new(LD | B | ABS, SKF_AD_OFF + 48),
                jeq,
                tag,
                Stmt::new(JMP | JA | K, cnt.wrapping_sub(1)),
            ];
            self.sprepend_to_block(s, b_vid);
            b0 = self.gen_and(b0, b_vid);
        }
        Ok(b0)
    }

    fn gen_vlan(&mut self, v: Option<u32>) -> GResult<usize> {
        if self.label_stack_depth > 0 {
            return self.err("no VLAN match after MPLS");
        }
        let b0 = match self.linktype.0 {
            1 => {
                if self.vlan_stack_depth == 0
                    && !self.off_linkhdr.is_variable
                    && self.off_linkhdr.constant_part == 0
                    && self.linux_ext
                {
                    self.gen_vlan_bpf_extensions(v)?
                } else {
                    self.gen_vlan_no_bpf_extensions(v)?
                }
            }
            240 | 241 | 281 | 284 | 105 | 119 | 163 | 127 => self.gen_vlan_no_bpf_extensions(v)?,
            _ => return self.fail_kw_on_dlt("vlan"),
        };
        self.vlan_stack_depth += 1;
        Ok(b0)
    }

    fn gen_llc(&mut self) -> GResult<usize> {
        match self.linktype.0 {
            1 | 281 | 284 => {
                let b0 = self.gen_cmp_le(OffRel::LinkType, 0, H, ETHERMTU);
                let b1 = self.gen_cmp_ne(OffRel::Llc, 0, H, 0xffff);
                Ok(self.gen_and(b0, b1))
            }
            6 | 10 | 11 => Ok(self.gen_true()),
            123 => {
                let b0 = self.gen_atm_prototype(2);
                self.linktype = self.prevlinktype;
                Ok(b0)
            }
            105 | 119 | 127 | 163 | 192 => Ok(self.gen_mcmp(OffRel::LinkHdr, 0, B, 0x08, 0x0c)),
            _ => self.fail_kw_on_dlt("llc"),
        }
    }

    /// `llc`, `llc i|s|u`, or an S or U frame subtype name.
    fn gen_llc_kind(&mut self, kind: Option<&str>) -> GResult<usize> {
        const S_SUBTYPES: &[(&str, u32)] = &[("rr", 0x01), ("rnr", 0x05), ("rej", 0x09)];
        const U_SUBTYPES: &[(&str, u32)] = &[
            ("ui", 0x03),
            ("ua", 0x63),
            ("disc", 0x43),
            ("dm", 0x0f),
            ("sabme", 0x6f),
            ("test", 0xe3),
            ("xid", 0xaf),
            ("frmr", 0x87),
        ];
        let Some(k) = kind else { return self.gen_llc() };
        let lower = k.to_ascii_lowercase();
        let find = |t: &[(&str, u32)]| t.iter().find(|(n, _)| *n == lower).map(|(_, v)| *v);
        let b0 = self.gen_llc()?;
        let b1 = match lower.as_str() {
            "i" => {
                let s = self.load_a(OffRel::Llc, 2, B);
                self.gen_unset(0x01, s)
            }
            "s" => self.gen_mcmp(OffRel::Llc, 2, B, 1, 0x03),
            "u" => self.gen_mcmp(OffRel::Llc, 2, B, 3, 0x03),
            _ => {
                if let Some(v) = find(S_SUBTYPES) {
                    self.gen_mcmp(OffRel::Llc, 2, B, v, 0x0f)
                } else if let Some(v) = find(U_SUBTYPES) {
                    self.gen_mcmp(OffRel::Llc, 2, B, v, 0xef)
                } else {
                    return self.err(format!("unknown LLC type name \"{k}\""));
                }
            }
        };
        Ok(self.gen_and(b0, b1))
    }

    fn assert_pflog(&self, kw: &str) -> GResult<()> {
        if self.linktype.0 != 117 {
            return self.err(format!("'{kw}' supported only on PFLOG linktype"));
        }
        Ok(())
    }

    fn require_basic_bpf_extensions(&self, kw: &str) -> GResult<()> {
        if self.linux_ext {
            return Ok(());
        }
        self.err(format!(
            "not a live capture, '{kw}' not supported on {}",
            self.dlt_name()
        ))
    }

    /// gencode.c `gen_inbound_outbound`: a direction field in the link
    /// header, or Linux's packet type in ancillary data.
    fn gen_inbound_outbound(&mut self, outbound: bool) -> GResult<usize> {
        let lh = OffRel::LinkHdr;
        Ok(match self.linktype.0 {
            8 => self.gen_cmp(lh, 0, B, outbound as u32),
            226 => self.gen_cmp(lh, 2, H, if outbound { 1 } else { 2 }),
            113 => {
                let b0 = self.gen_cmp(lh, 0, H, 4);
                if outbound {
                    b0
                } else {
                    self.gen_not(b0)
                }
            }
            276 => {
                let b0 = self.gen_cmp(lh, 10, B, 4);
                if outbound {
                    b0
                } else {
                    self.gen_not(b0)
                }
            }
            117 => self.gen_cmp(lh, 60, B, if outbound { 2 } else { 1 }),
            166 => self.gen_cmp(lh, 0, B, outbound as u32),
            134 => self.gen_mcmp(lh, 3, B, if outbound { 0 } else { 1 }, 0x01),
            281 => self.gen_mcmp(lh, 12, B, if outbound { 0x20 } else { 0 }, 0xe0),
            284 => self.gen_mcmp(
                lh,
                12,
                B,
                if outbound { 0x40 } else { 0 },
                if outbound { 0xc0 } else { 0x40 },
            ),
            _ => {
                self.require_basic_bpf_extensions(if outbound { "outbound" } else { "inbound" })?;
                let b0 = self.gen_cmp(lh, 0xffff_f000 + 4, H, 4);
                if outbound {
                    b0
                } else {
                    self.gen_not(b0)
                }
            }
        })
    }

    fn atmkw(t: u8) -> &'static str {
        match t {
            22 => "metac",
            23 => "bcc",
            24 => "oamf4sc",
            25 => "oamf4ec",
            26 => "sc",
            27 => "ilmic",
            28 => "oam",
            29 => "oamf4",
            30 => "lane",
            51 => "vpi",
            52 => "vci",
            70 => "connectmsg",
            _ => "metaconnect",
        }
    }

    fn assert_atm(&self, kw: &str) -> GResult<()> {
        if self.outermost.0 == 123 {
            return Ok(());
        }
        self.err(format!("'{kw}' supported only on SUNATM"))
    }

    fn gen_atm_prototype(&mut self, v: u32) -> usize {
        self.gen_mcmp(OffRel::LinkHdr, 0, B, v, 0x0f)
    }

    /// gencode.c `gen_atmfield_code`: SunATM's VPI (byte 1) and VCI (bytes 2-3).
    fn gen_atmfield_code(
        &mut self,
        field: u8,
        v: u32,
        jtype: i32,
        reverse: bool,
    ) -> GResult<usize> {
        self.assert_atm(Self::atmkw(field))?;
        if field == 51 {
            self.assert_maxval("VPI", v, 255)?;
            Ok(self.gen_ncmp(OffRel::LinkHdr, 1, B, u32::MAX, jtype, reverse, v))
        } else {
            self.assert_maxval("VCI", v, 65535)?;
            Ok(self.gen_ncmp(OffRel::LinkHdr, 2, H, u32::MAX, jtype, reverse, v))
        }
    }

    fn gen_vpi_vci(&mut self, vpi: u32, vci: u32) -> GResult<usize> {
        let b0 = self.gen_atmfield_code(51, vpi, JEQ, false)?;
        let b1 = self.gen_atmfield_code(52, vci, JEQ, false)?;
        Ok(self.gen_and(b0, b1))
    }

    fn gen_atmtype_abbrev(&mut self, t: u8) -> GResult<usize> {
        self.assert_atm(Self::atmkw(t))?;
        match t {
            22 => self.gen_vpi_vci(0, 1),
            23 => self.gen_vpi_vci(0, 2),
            24 => self.gen_vpi_vci(0, 3),
            25 => self.gen_vpi_vci(0, 4),
            26 => self.gen_vpi_vci(0, 5),
            27 => self.gen_vpi_vci(0, 16),
            _ => {
                // LANE: Ethernet follows a 2-byte LE header (PUSH_LINKHDR(DLT_EN10MB, ...)).
                let b1 = self.gen_atm_prototype(1);
                self.prevlinktype = self.linktype;
                self.off_prevlinkhdr = self.off_linkhdr;
                self.linktype = LinkType(1);
                self.off_linkhdr = AbsOffset::fixed(4 + 2);
                self.is_encap = false;
                self.off_linktype.constant_part = self.off_linkhdr.constant_part + 12;
                self.off_linkpl.constant_part = self.off_linkhdr.constant_part + 14;
                self.off_nl = 0;
                self.off_nl_nosnap = 3;
                Ok(b1)
            }
        }
    }

    fn gen_atmmulti_abbrev(&mut self, t: u8) -> GResult<usize> {
        self.assert_atm(Self::atmkw(t))?;
        let msg = |g: &mut Self, m: u32| g.gen_cmp(OffRel::LinkHdr, 4 + 5, B, m);
        match t {
            28 | 29 => {
                let b0 = self.gen_atmfield_code(52, 3, JEQ, false)?;
                let b1 = self.gen_atmfield_code(52, 4, JEQ, false)?;
                let b1 = self.gen_or(b0, b1);
                let b0 = self.gen_atmfield_code(51, 0, JEQ, false)?;
                Ok(self.gen_and(b0, b1))
            }
            _ => {
                let connect = t == 70;
                let msgs: &[u32] = if connect {
                    &[0x05, 0x02, 0x07, 0x0f, 0x4d, 0x5a]
                } else {
                    &[0x05, 0x02, 0x07, 0x4d, 0x5a]
                };
                let b0 = msg(self, msgs[0]);
                let mut b1 = msg(self, msgs[1]);
                b1 = self.gen_or(b0, b1);
                for &m in &msgs[2..] {
                    let b0 = msg(self, m);
                    b1 = self.gen_or(b0, b1);
                }
                let b0 = self.gen_atmtype_abbrev(if connect { 26 } else { 22 })?;
                Ok(self.gen_and(b0, b1))
            }
        }
    }

    /// gencode.c `gen_geneve` and `gen_vxlan`: UDP to the tunnel port over
    /// IPv4 or IPv6, then offsets moved to the inner Ethernet frame.
    fn gen_tunnel(&mut self, geneve: bool, vni: Option<u32>) -> GResult<usize> {
        let b0 = self.gen_tunnel_check(geneve, false, vni)?;
        let mut s = self.loadx_iphdrlen();
        s.push(Stmt::new(MISC | TXA, 0));
        let b1 = self.new_block(JMP | JEQ | X, 0, s);
        let v4 = self.gen_and(b0, b1);
        let b0 = self.gen_tunnel_check(geneve, true, vni)?;
        let mut s = self.abs_offset_varpart(3);
        if s.is_empty() {
            s.push(Stmt::new(LD | IMM, IP6_HDRLEN));
        } else {
            s.push(Stmt::new(LD | IMM, IP6_HDRLEN));
            s.push(Stmt::new(ALU | ADD | X, 0));
        }
        s.push(Stmt::new(MISC | TAX, 0));
        let b1 = self.new_block(JMP | JEQ | X, 0, s);
        let v6 = self.gen_and(b0, b1);
        let offs = if geneve {
            self.gen_geneve_offsets()?
        } else {
            self.gen_vxlan_offsets()?
        };
        let t = self.gen_true();
        let offsets = self.sprepend_to_block(offs, t);
        self.is_encap = true;
        let either = self.gen_or(v4, v6);
        Ok(self.gen_and(either, offsets))
    }

    fn gen_tunnel_check(&mut self, geneve: bool, v6: bool, vni: Option<u32>) -> GResult<usize> {
        let port = if geneve { 6081 } else { 4789 };
        let b0 = self.gen_port_any(v6, port, port, IPPROTO_UDP, q::DST, "port")?;
        let rel = if v6 {
            OffRel::TranIpv6
        } else {
            OffRel::TranIpv4
        };
        let b1 = if geneve {
            self.gen_mcmp(rel, 8, B, 0, 0xc0)
        } else {
            self.gen_cmp(rel, 8, B, 0x08)
        };
        let mut b0 = self.gen_and(b0, b1);
        if let Some(vni) = vni {
            self.assert_maxval(
                if geneve { "Geneve VNI" } else { "VXLAN VNI" },
                vni,
                0xff_ffff,
            )?;
            let b1 = self.gen_mcmp(rel, 12, W, vni << 8, 0xffff_ff00);
            b0 = self.gen_and(b0, b1);
        }
        Ok(b0)
    }

    /// PUSH_LINKHDR(DLT_EN10MB, variable, 0, reg) for a tunnelled frame.
    fn push_inner_ethernet(&mut self) -> GResult<u32> {
        let reg = self.alloc_reg()?;
        self.prevlinktype = self.linktype;
        self.off_prevlinkhdr = self.off_linkhdr;
        self.linktype = LinkType(1);
        self.off_linkhdr = AbsOffset {
            constant_part: 0,
            is_variable: true,
            reg: Some(reg),
        };
        self.is_encap = false;
        Ok(reg)
    }

    fn gen_geneve_offsets(&mut self) -> GResult<Vec<Stmt>> {
        let mut s = vec![
            Stmt::new(
                ALU | ADD | K,
                self.off_linkpl
                    .constant_part
                    .wrapping_add(self.off_nl)
                    .wrapping_add(8),
            ),
            Stmt::new(MISC | TAX, 0),
            Stmt::new(ALU | ADD | K, 2),
        ];
        let lt_reg = self.alloc_reg()?;
        self.off_linktype = AbsOffset {
            constant_part: 0,
            is_variable: true,
            reg: Some(lt_reg),
        };
        s.push(Stmt::new(ST, lt_reg));
        s.push(Stmt::new(LD | IND | B, 0));
        s.push(Stmt::new(ALU | AND | K, 0x3f));
        s.push(Stmt::new(ALU | 0x20 | K, 4));
        s.push(Stmt::new(ALU | ADD | K, 8));
        s.push(Stmt::new(ALU | ADD | X, 0));
        let hdr_reg = self.push_inner_ethernet()?;
        s.push(Stmt::new(ST, hdr_reg));
        self.no_optimize = true;
        s.push(Stmt::new(LD | IND | H, 2));
        s.push(Stmt::new(LDX | MEM, hdr_reg));
        let mut proto = self.target(JMP | JEQ | K, 0x6558);
        let txa = self.target(MISC | TXA, 0);
        proto.jt = txa.uid;
        let at = s.len();
        s.push(proto);
        s.push(txa);
        s.push(Stmt::new(ALU | ADD | K, 12));
        s.push(Stmt::new(ST, lt_reg));
        s.push(Stmt::new(ALU | ADD | K, 2));
        s.push(Stmt::new(MISC | TAX, 0));
        let pl_reg = self.alloc_reg()?;
        self.off_linkpl = AbsOffset {
            constant_part: 0,
            is_variable: true,
            reg: Some(pl_reg),
        };
        let stx = self.target(STX, pl_reg);
        s[at].jf = stx.uid;
        s.push(stx);
        self.off_nl = 0;
        Ok(s)
    }

    fn gen_vxlan_offsets(&mut self) -> GResult<Vec<Stmt>> {
        let mut s = vec![
            Stmt::new(
                ALU | ADD | K,
                self.off_linkpl
                    .constant_part
                    .wrapping_add(self.off_nl)
                    .wrapping_add(8),
            ),
            Stmt::new(ALU | ADD | K, 8),
        ];
        let hdr_reg = self.push_inner_ethernet()?;
        s.push(Stmt::new(ST, hdr_reg));
        s.push(Stmt::new(ALU | ADD | K, 12));
        let lt_reg = self.alloc_reg()?;
        self.off_linktype = AbsOffset {
            constant_part: 0,
            is_variable: true,
            reg: Some(lt_reg),
        };
        s.push(Stmt::new(ST, lt_reg));
        s.push(Stmt::new(ALU | ADD | K, 2));
        s.push(Stmt::new(MISC | TAX, 0));
        let pl_reg = self.alloc_reg()?;
        self.off_linkpl = AbsOffset {
            constant_part: 0,
            is_variable: true,
            reg: Some(pl_reg),
        };
        s.push(Stmt::new(STX, pl_reg));
        self.off_nl = 0;
        Ok(s)
    }

    fn gen_byteop(&mut self, op: u8, idx: u32, val: u32) -> GResult<usize> {
        self.assert_maxval("byte argument", val, 255)?;
        match op {
            b'=' => Ok(self.gen_cmp(OffRel::LinkHdr, idx, B, val)),
            b'<' => Ok(self.gen_cmp_lt(OffRel::LinkHdr, idx, B, val)),
            b'>' => Ok(self.gen_cmp_gt(OffRel::LinkHdr, idx, B, val)),
            _ => {
                let s = Stmt::new(ALU | if op == b'|' { OR } else { AND } | K, val);
                let mut s0 = self.load_a(OffRel::LinkHdr, idx, B);
                s0.push(s);
                let b = self.gen_jmp_k(JEQ, 0, s0);
                Ok(self.gen_not(b))
            }
        }
    }

    fn gen_other(&mut self, o: &Other) -> GResult<usize> {
        match o {
            Other::Broadcast(p) => self.gen_broadcast(*p),
            Other::Multicast(p) => self.gen_multicast(*p),
            Other::Less(n) => {
                let b = self.gen_jmp_k(JGT, *n, vec![Stmt::new(LD | LEN, 0)]);
                Ok(self.gen_not(b))
            }
            Other::Greater(n) => Ok(self.gen_jmp_k(JGE, *n, vec![Stmt::new(LD | LEN, 0)])),
            Other::Byte(op, idx, val) => self.gen_byteop(*op, *idx, *val),
            Other::Mtp2Type(t) => self.gen_mtp2type_abbrev(*t),
            Other::Vlan(v) => self.gen_vlan(*v),
            Other::Geneve(v) => self.gen_tunnel(true, *v),
            Other::Vxlan(v) => self.gen_tunnel(false, *v),
            Other::AtmType(t) => self.gen_atmtype_abbrev(*t),
            Other::AtmMulti(t) => self.gen_atmmulti_abbrev(*t),
            Other::AtmField(f, v, code, rev) => self.gen_atmfield_code(*f, *v, *code as i32, *rev),
            Other::Inbound => self.gen_inbound_outbound(false),
            Other::Outbound => self.gen_inbound_outbound(true),
            Other::Ifindex(i) => match self.linktype.0 {
                276 => Ok(self.gen_cmp(OffRel::LinkHdr, 4, W, *i)),
                _ => {
                    self.require_basic_bpf_extensions("ifindex")?;
                    Ok(self.gen_cmp(OffRel::LinkHdr, 0xffff_f000 + 8, W, *i))
                }
            },
            Other::PfIfname(n) => {
                self.assert_pflog("ifname")?;
                if n.len() >= 16 {
                    return self.err("ifname interface names can only be 15 characters");
                }
                Ok(self.gen_bcmp(OffRel::LinkHdr, 4, n.as_bytes()))
            }
            Other::PfRset(n) => {
                self.assert_pflog("ruleset")?;
                if n.len() >= 16 {
                    return self.err("ruleset names can only be 15 characters");
                }
                Ok(self.gen_bcmp(OffRel::LinkHdr, 20, n.as_bytes()))
            }
            Other::PfRnr(n) => {
                self.assert_pflog("rnr")?;
                Ok(self.gen_cmp(OffRel::LinkHdr, 36, W, *n))
            }
            Other::PfSrnr(n) => {
                self.assert_pflog("srnr")?;
                Ok(self.gen_cmp(OffRel::LinkHdr, 40, W, *n))
            }
            Other::PfReason(n) => {
                self.assert_pflog("reason")?;
                Ok(self.gen_cmp(OffRel::LinkHdr, 3, B, *n))
            }
            Other::PfAction(n) => {
                self.assert_pflog("action")?;
                Ok(self.gen_cmp(OffRel::LinkHdr, 2, B, *n))
            }
            Other::Llc(kind) => self.gen_llc_kind(kind.as_deref()),
            Other::LlcRnr => {
                let b0 = self.gen_llc()?;
                let b1 = self.gen_mcmp(OffRel::Llc, 2, B, 0x05, 0x0f);
                Ok(self.gen_and(b0, b1))
            }
            Other::Mpls(l) => self.gen_mpls(*l),
            Other::Pppoed => self.gen_linktype(0x8863),
            Other::Pppoes(n) => self.gen_pppoes(*n),
            Other::Mtp3Field(f, v, code, rev) => {
                self.gen_mtp3field_code(*f, *v, *code as i32, *rev)
            }
            Other::P80211Type(v, mask) => {
                if !self.is_wlan() {
                    return self.fail_kw_on_dlt("type/subtype");
                }
                Ok(self.gen_mcmp(OffRel::LinkHdr, 0, B, *v, *mask))
            }
            Other::P80211Dir(d) => {
                if !self.is_wlan() {
                    return self.fail_kw_on_dlt("dir");
                }
                Ok(self.gen_mcmp(OffRel::LinkHdr, 1, B, *d, 0x03))
            }
        }
    }

    /// Generates code for a whole expression, in bison's reduction order.
    pub fn gen_expr(&mut self, e: &Expr) -> GResult<usize> {
        match e {
            Expr::Chain(first, rest) => {
                let mut b = self.gen_expr(first)?;
                for (is_and, e) in rest {
                    let r = self.gen_expr(e)?;
                    b = if *is_and {
                        self.gen_and(b, r)
                    } else {
                        self.gen_or(b, r)
                    };
                }
                Ok(b)
            }
            Expr::Not(a) => {
                let a = self.gen_expr(a)?;
                Ok(self.gen_not(a))
            }
            Expr::Id(qu, id, pos) => {
                self.pos = *pos;
                self.gen_id(*qu, id)
            }
            Expr::ProtoAbbrev(p, pos) => {
                self.pos = *pos;
                self.gen_proto_abbrev(*p)
            }
            Expr::Relation(code, a0, a1, rev, pos) => {
                self.pos = *pos;
                self.gen_relation(*code, a0, a1, *rev)
            }
            Expr::Other(o, pos) => {
                self.pos = *pos;
                self.gen_other(o)
            }
        }
    }
}
