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
