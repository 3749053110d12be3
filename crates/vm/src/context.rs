//! Program contexts laid out as the kernel lays them out, so clang-compiled
//! programs run unmodified.
//!
//! The kernel rewrites a program's 32-bit loads of `data`, `data_end` and
//! `data_meta` from its context into 64-bit pointer loads. The VM does the
//! equivalent at run time: for context kinds with pointer fields, 32-bit loads
//! from those offsets of the context region yield the full pointer.

/// How a program's first argument (`r1`) is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextKind {
    /// Raw bytes (tracepoints, raw tracepoints, conformance memory).
    #[default]
    Raw,
    /// `struct xdp_md`.
    Xdp,
    /// `struct __sk_buff` with data at the link-layer header (TC).
    SkBuff,
    /// `struct __sk_buff` with data at the network header: socket filters and
    /// cgroup skb programs, which run after the Ethernet header is pulled.
    SkBuffL3,
}

/// Size of `struct xdp_md`.
pub const XDP_MD_SIZE: usize = 24;
/// Size of `struct __sk_buff` (as of Linux 6.x).
pub const SK_BUFF_SIZE: usize = 192;
/// Headroom in front of XDP packet data, as `XDP_PACKET_HEADROOM`.
pub const XDP_HEADROOM: usize = 256;

/// Offsets of the pointer fields in a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointerField {
    Data,
    DataEnd,
    DataMeta,
}

impl ContextKind {
    pub(crate) fn pointer_field(self, offset: usize) -> Option<PointerField> {
        match (self, offset) {
            (ContextKind::Xdp, 0) => Some(PointerField::Data),
            (ContextKind::Xdp, 4) => Some(PointerField::DataEnd),
            (ContextKind::Xdp, 8) => Some(PointerField::DataMeta),
            (ContextKind::SkBuff | ContextKind::SkBuffL3, 76) => Some(PointerField::Data),
            (ContextKind::SkBuff | ContextKind::SkBuffL3, 80) => Some(PointerField::DataEnd),
            (ContextKind::SkBuff | ContextKind::SkBuffL3, 140) => Some(PointerField::DataMeta),
            _ => None,
        }
    }
}

/// Field offsets of `struct __sk_buff` the VM fills in.
pub mod sk_buff {
    #![allow(missing_docs)]
    pub const LEN: usize = 0;
    pub const PKT_TYPE: usize = 4;
    pub const MARK: usize = 8;
    pub const QUEUE_MAPPING: usize = 12;
    pub const PROTOCOL: usize = 16;
    pub const VLAN_PRESENT: usize = 20;
    pub const VLAN_TCI: usize = 24;
    pub const VLAN_PROTO: usize = 28;
    pub const PRIORITY: usize = 32;
    pub const INGRESS_IFINDEX: usize = 36;
    pub const IFINDEX: usize = 40;
    pub const TC_INDEX: usize = 44;
    pub const CB: usize = 48;
    pub const HASH: usize = 68;
    pub const TC_CLASSID: usize = 72;
    pub const DATA: usize = 76;
    pub const DATA_END: usize = 80;
    pub const NAPI_ID: usize = 84;
    pub const FAMILY: usize = 88;
    pub const DATA_META: usize = 140;
}

/// Field offsets of `struct xdp_md`.
pub mod xdp_md {
    #![allow(missing_docs)]
    pub const DATA: usize = 0;
    pub const DATA_END: usize = 4;
    pub const DATA_META: usize = 8;
    pub const INGRESS_IFINDEX: usize = 12;
    pub const RX_QUEUE_INDEX: usize = 16;
    pub const EGRESS_IFINDEX: usize = 20;
}

/// The packet pointers of the current run: addresses in the VM's space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PacketPointers {
    /// Base address of the whole packet buffer (headroom included).
    pub(crate) buffer: u64,
    /// Size of the whole buffer.
    pub(crate) buffer_len: u64,
    pub(crate) data_meta: u64,
    pub(crate) data: u64,
    pub(crate) data_end: u64,
}

/// `ETH_HLEN`: the shortest packet `BPF_PROG_TEST_RUN` takes.
const ETH_HLEN: usize = 14;
/// The largest skb test input: a page less `NET_SKB_PAD` and the aligned
/// `skb_shared_info` (bpf_test_init on x86-64).
const SKB_MAX_INPUT: usize = 4096 - 64 - 320;

/// The `__sk_buff` bytes a caller may set (convert___skb_to_skb): mark,
/// priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs,
/// gso_size, hwtstamp. Everything else must be zero.
const SK_BUFF_SETTABLE: [(usize, usize); 6] = [
    (sk_buff::MARK, sk_buff::MARK + 4),
    (sk_buff::PRIORITY, sk_buff::IFINDEX + 4),
    (sk_buff::CB, sk_buff::CB + 20),
    (152, 168),
    (176, 180),
    (184, 192),
];

fn invalid(reason: String) -> crate::RunError {
    crate::RunError::InvalidInput {
        errno: bpfkit_abi::errno::EINVAL,
        reason,
    }
}

/// The checks of bpf_test_init and bpf_prog_test_run_skb on packet input.
pub(crate) fn check_test_run_input(
    context: ContextKind,
    data: &[u8],
    ctx: &[u8],
) -> Result<(), crate::RunError> {
    if data.len() < ETH_HLEN {
        return Err(invalid(format!(
            "a {}-byte packet is shorter than an Ethernet header ({ETH_HLEN} bytes)",
            data.len()
        )));
    }
    if context == ContextKind::Xdp {
        return Ok(());
    }
    if data.len() > SKB_MAX_INPUT {
        return Err(invalid(format!(
            "a {}-byte packet is longer than the {SKB_MAX_INPUT} bytes an skb test run takes",
            data.len()
        )));
    }
    // bpf_prog_test_run_skb needs the whole network header of IPv4 and IPv6.
    let network = data.len() - ETH_HLEN;
    match u16::from_be_bytes([data[12], data[13]]) {
        0x0800 if network < 20 => {
            return Err(invalid(format!(
                "an IPv4 frame needs a 20-byte IP header after the Ethernet header; \
                 this one has {network} bytes"
            )))
        }
        0x86dd if network < 40 => {
            return Err(invalid(format!(
                "an IPv6 frame needs a 40-byte IPv6 header after the Ethernet header; \
                 this one has {network} bytes"
            )))
        }
        _ => {}
    }
    let ctx = &ctx[..ctx.len().min(SK_BUFF_SIZE)];
    if let Some(i) = ctx
        .iter()
        .enumerate()
        .position(|(i, &b)| b != 0 && !SK_BUFF_SETTABLE.iter().any(|&(s, e)| (s..e).contains(&i)))
    {
        return Err(invalid(format!(
            "byte {i} of the __sk_buff context is set, but only mark, priority, \
             ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size and \
             hwtstamp may be"
        )));
    }
    Ok(())
}

/// Fills the `__sk_buff` fields bpf_prog_test_run_skb derives from `frame`
/// on the loopback device; `len` is what the program sees of the packet.
pub(crate) fn fill_sk_buff(ctx: &mut [u8], frame: &[u8], len: usize) {
    let put = |ctx: &mut [u8], at: usize, v: u32| ctx[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    put(ctx, sk_buff::LEN, len as u32);
    // eth_type_trans: the loopback device's address and broadcast address
    // are all zeros, so a zero destination is PACKET_HOST (0), any other
    // multicast one (ff:ff:ff:ff:ff:ff included) PACKET_MULTICAST (2), and a
    // unicast one PACKET_OTHERHOST (3).
    let dst = &frame[..6];
    let pkt_type = if dst.iter().all(|&b| b == 0) {
        0
    } else if dst[0] & 1 != 0 {
        2
    } else {
        3
    };
    put(ctx, sk_buff::PKT_TYPE, pkt_type);
    // skb->protocol, in network order: the EtherType, or for an 802.3
    // length field ETH_P_802_3 (raw, payload starting ff ff) or ETH_P_802_2.
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let protocol = if ethertype >= 0x0600 {
        ethertype
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001
    } else {
        0x0004
    };
    ctx[sk_buff::PROTOCOL..sk_buff::PROTOCOL + 2].copy_from_slice(&protocol.to_be_bytes());
    // The loopback device, ifindex 1, unless the caller named another.
    if ctx[sk_buff::IFINDEX..sk_buff::IFINDEX + 4] == [0; 4] {
        put(ctx, sk_buff::IFINDEX, 1);
    }
}
