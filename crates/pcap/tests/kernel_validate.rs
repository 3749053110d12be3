//! The classic validator against the kernel's: `SO_ATTACH_FILTER` (which
//! runs bpf_check_classic) accepts exactly the programs
//! `classic::validate` accepts, over libpcap's listings and programs made
//! to break each rule.

mod common;

use std::net::UdpSocket;
use std::os::fd::AsFd;

use bpfkit_isa::cbpf::{self, Insn};
use bpfkit_kernel::packet::attach_filter;
use bpfkit_pcap::classic::validate;
use common::*;

fn kernel_accepts(sock: &UdpSocket, insns: &[Insn]) -> bool {
    match attach_filter(sock.as_fd(), insns) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(bpfkit_abi::errno::EINVAL) => false,
        Err(e) => panic!("SO_ATTACH_FILTER: {e}"),
    }
}

#[test]
fn the_kernel_accepts_exactly_the_listings_validate_accepts() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut refused = 0;
    let all = listings();
    for l in &all {
        let ours = validate(&l.insns);
        let kernel = kernel_accepts(&sock, &l.insns);
        assert_eq!(kernel, ours.is_ok(), "{}: validate says {ours:?}", l.name);
        refused += (!kernel) as usize;
    }
    // libpcap's protochain loops and its few unwritten-scratch reads.
    assert!(refused > 0 && refused * 20 < all.len(), "{refused} refused");
}

#[test]
fn the_kernel_refuses_what_validate_refuses_rule_by_rule() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cases = [
        // (listing, accepted)
        ("(000) ld #0x1\n(001) div #0\n(002) ret a\n", false),
        ("(000) ld #0x1\n(001) mod #0\n(002) ret a\n", false),
        ("(000) ld #0x1\n(001) div #3\n(002) ret a\n", true),
        ("(000) ld #0x1\n(001) lsh #31\n(002) ret a\n", true),
        ("(000) ld #0x1\n(001) lsh #32\n(002) ret a\n", false),
        ("(000) ld #0x1\n(001) rsh #40\n(002) ret a\n", false),
        ("(000) st M[15]\n(001) ld M[15]\n(002) ret a\n", true),
        ("(000) st M[16]\n(001) ret a\n", false),
        ("(000) ld M[0]\n(001) ret a\n", false),
        ("(000) ldx M[3]\n(001) ret a\n", false),
        ("(000) ld #0x1\n(001) jeq #0x1 jt 2\tjf 3\n(002) st M[0]\n(003) ld M[0]\n(004) ret a\n", false),
        ("(000) ld #0x1\n(001) st M[0]\n(002) jeq #0x1 jt 3\tjf 4\n(003) st M[0]\n(004) ld M[0]\n(005) ret a\n", true),
        ("(000) ld #0x1\n(001) jeq #0x1 jt 2\tjf 3\n(002) ret a\n", false),
        ("(000) ja 2\n(001) ret a\n", false),
        ("(000) ja 2\n(001) ret #0\n(002) ret a\n", true),
        ("(000) ld #0x1\n", false),
        ("(000) ret #0\n(001) ld #0x1\n", false),
        ("(000) ld #0x1\n(001) unimp 0xe\n", false),
        ("(000) ld [proto]\n(001) ld [vlan_tpid]\n(002) ld [random]\n(003) ret a\n", true),
        ("(000) ld [-4032]\n(001) ret a\n", false),
        ("(000) ldb [-4096]\n(001) ret a\n", true),
        ("(000) ldx #pktlen\n(001) txa\n(002) ret a\n", true),
    ];
    for (text, accepted) in cases {
        let insns = cbpf::parse_listing(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(validate(&insns).is_ok(), accepted, "validate on\n{text}");
        assert_eq!(kernel_accepts(&sock, &insns), accepted, "kernel on\n{text}");
    }
    // No instructions at all.
    assert!(validate(&[]).is_err());
    assert!(!kernel_accepts(&sock, &[]));
}
