//! Classic BPF as libpcap and the kernel use it: the pcap-filter(7)
//! language compiled to classic BPF with libpcap's code generator and
//! optimizer ([`compile`]), a classic BPF interpreter ([`classic`]), and the
//! kernel's classic-to-eBPF translation ([`translate`]), including seccomp's
//! flavour ([`seccomp`]).
//!
//! The crate is pure: no I/O on the system. Name resolution reads files only
//! through a caller-given root.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod classic;
pub mod compile;
pub mod seccomp;
pub mod translate;
