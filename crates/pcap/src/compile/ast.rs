//! The syntax tree the parser builds; the code generator walks it in the
//! order bison reduces libpcap's grammar (children first, left to right).

/// Qualifier values (gencode.h's `Q_*`).
pub(crate) mod q {
    pub const DEFAULT: u8 = 0;
    pub const UNDEF: u8 = 255;
    // address qualifiers
    pub const HOST: u8 = 1;
    pub const NET: u8 = 2;
    pub const PORT: u8 = 3;
    pub const GATEWAY: u8 = 4;
    pub const PROTO: u8 = 5;
    pub const PROTOCHAIN: u8 = 6;
    pub const PORTRANGE: u8 = 7;
    // protocol qualifiers
    pub const LINK: u8 = 1;
    pub const IP: u8 = 2;
    pub const ARP: u8 = 3;
    pub const RARP: u8 = 4;
    pub const SCTP: u8 = 5;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 7;
    pub const ICMP: u8 = 8;
    pub const IGMP: u8 = 9;
    pub const IGRP: u8 = 10;
    pub const ATALK: u8 = 11;
    pub const DECNET: u8 = 12;
    pub const LAT: u8 = 13;
    pub const SCA: u8 = 14;
    pub const MOPRC: u8 = 15;
    pub const MOPDL: u8 = 16;
    pub const IPV6: u8 = 17;
    pub const ICMPV6: u8 = 18;
    pub const AH: u8 = 19;
    pub const ESP: u8 = 20;
    pub const PIM: u8 = 21;
    pub const VRRP: u8 = 22;
    pub const AARP: u8 = 23;
    pub const ISO: u8 = 24;
    pub const ESIS: u8 = 25;
    pub const ISIS: u8 = 26;
    pub const CLNP: u8 = 27;
    pub const STP: u8 = 28;
    pub const IPX: u8 = 29;
    pub const NETBEUI: u8 = 30;
    pub const ISIS_L1: u8 = 31;
    pub const ISIS_L2: u8 = 32;
    pub const ISIS_IIH: u8 = 33;
    pub const ISIS_SNP: u8 = 34;
    pub const ISIS_CSNP: u8 = 35;
    pub const ISIS_PSNP: u8 = 36;
    pub const ISIS_LSP: u8 = 37;
    pub const RADIO: u8 = 38;
    pub const CARP: u8 = 39;
    // direction qualifiers
    pub const SRC: u8 = 1;
    pub const DST: u8 = 2;
    pub const OR: u8 = 3;
    pub const AND: u8 = 4;
    pub const ADDR1: u8 = 5;
    pub const ADDR2: u8 = 6;
    pub const ADDR3: u8 = 7;
    pub const ADDR4: u8 = 8;
    pub const RA: u8 = 9;
    pub const TA: u8 = 10;
}

/// A primitive's qualifiers (gencode.h's `struct qual`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Qual {
    pub addr: u8,
    pub proto: u8,
    pub dir: u8,
}

impl Qual {
    /// grammar.y's `qerr`: what follows a primitive that has no qualifiers to pass on.
    pub const ERR: Qual = Qual {
        addr: q::UNDEF,
        proto: q::UNDEF,
        dir: q::UNDEF,
    };
}

/// What an `id` names.
#[derive(Clone, Debug)]
pub(crate) enum IdKind {
    /// An identifier (host, network, port or protocol name).
    Name(String),
    /// A bare number.
    Num(u32),
    /// `HID/NUM`.
    HidLen(String, u32),
    /// `HID mask HID`.
    HidMask(String, String),
    /// `HID`.
    Hid(String),
    /// `HID6/NUM`.
    Hid6Len(String, u32),
    /// `HID6`.
    Hid6(String),
    /// A MAC-48 address.
    Eid(String),
    /// A MAC-8 address.
    Aid(String),
}

/// Arithmetic expressions (grammar.y's `arth`).
#[derive(Clone, Debug)]
pub(crate) enum Arth {
    Num(u32),
    Len,
    /// `proto[idx : size]`
    Load(u8, Box<Arth>, u32),
    /// Binary operations folded from the left: `first op1 x1 op2 x2 ...`,
    /// each op with its BPF ALU code (a list, so long chains need no deep recursion).
    Chain(Box<Arth>, Vec<(u16, Arth)>),
    Neg(Box<Arth>),
}

/// Primitives without an `id` (grammar.y's `other` and friends).
#[derive(Clone, Debug)]
pub(crate) enum Other {
    Broadcast(u8),
    Multicast(u8),
    Less(u32),
    Greater(u32),
    Byte(u8, u32, u32),
    Inbound,
    Outbound,
    Ifindex(u32),
    Vlan(Option<u32>),
    Mpls(Option<u32>),
    Pppoed,
    Pppoes(Option<u32>),
    Geneve(Option<u32>),
    Vxlan(Option<u32>),
    PfIfname(String),
    PfRset(String),
    PfRnr(u32),
    PfSrnr(u32),
    PfReason(u32),
    PfAction(u32),
    P80211Type(u32, u32),
    P80211Dir(u32),
    Llc(Option<String>),
    LlcRnr,
    AtmType(u8),
    AtmMulti(u8),
    /// ATM field relation: field, value, jump code, reversed.
    AtmField(u8, u32, u16, bool),
    Mtp2Type(u8),
    /// MTP3 field relation: field, value, jump code, reversed.
    Mtp3Field(u8, u32, u16, bool),
}

/// Boolean filter expressions.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    /// `first op1 e1 op2 e2 ...` folded from the left; `true` is `and`.
    Chain(Box<Expr>, Vec<(bool, Expr)>),
    Not(Box<Expr>),
    /// An `id` under the qualifiers in effect where it appears.
    Id(Qual, IdKind, usize),
    /// A protocol name alone (`tcp`), at its byte position.
    ProtoAbbrev(u8, usize),
    /// `arth relop arth`: jump code, left, right, reversed.
    Relation(u16, Arth, Arth, bool, usize),
    Other(Other, usize),
}
