//! Shared by the pcap test binaries: the shared test data (libpcap's
//! listings and savefiles), hand-built frames, and the skip rule.
#![allow(dead_code)]

use std::path::PathBuf;

use bpfkit_isa::cbpf::{self, Insn};

/// Says why a test skips. Under `CI=true` a skip fails instead: CI runs as
/// root on a kernel that allows every test, so a skip there hides a fault.
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test skipped under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// `<workspace>/../shared/pcap`, where CI keeps libpcap's test data.
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcap")
}

/// One expected `tcpdump -d` listing of filter_accept.json.
pub struct Listing {
    /// Block name and which listing (`opt`, `unopt`, `optunopt`).
    pub name: String,
    /// The link type (`EN10MB`, `RAW`, ...).
    pub dlt: String,
    /// The expressions that compile to it.
    pub aliases: Vec<String>,
    /// The listing text.
    pub text: String,
    /// The parsed program.
    pub insns: Vec<Insn>,
}

/// Every listing of filter_accept.json, parsed.
pub fn listings() -> Vec<Listing> {
    let path = shared().join("filter_accept.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared test data)", path.display()));
    let blocks: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for b in &blocks {
        let name = b["name"].as_str().unwrap();
        for field in ["opt", "unopt", "optunopt"] {
            let Some(text) = b.get(field).and_then(|v| v.as_str()) else {
                continue;
            };
            let insns = cbpf::parse_listing(text)
                .unwrap_or_else(|e| panic!("{name} ({field}): {e}\n{text}"));
            out.push(Listing {
                name: format!("{name} ({field})"),
                dlt: b["DLT"].as_str().unwrap().to_string(),
                aliases: b["aliases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
                text: text.to_string(),
                insns,
            });
        }
    }
    out
}

/// One packet of a savefile.
pub struct SavedPacket {
    /// Captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire.
    pub orig_len: u32,
}

/// A savefile's link type (LINKTYPE_* number) and packets; pcap or pcapng.
pub fn read_savefile(name: &str) -> (u32, Vec<SavedPacket>) {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let path = shared().join("savefiles").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let mut linktype = None;
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                Block::InterfaceDescription(i) => {
                    linktype.get_or_insert(u32::from(i.linktype));
                }
                Block::EnhancedPacket(p) => packets.push(SavedPacket {
                    data: p.data.to_vec(),
                    orig_len: p.original_len,
                }),
                Block::SimplePacket(p) => packets.push(SavedPacket {
                    orig_len: p.original_len,
                    data: p.data.to_vec(),
                }),
                _ => {}
            }
        }
        (linktype.expect("an interface block"), packets)
    } else {
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let linktype = u32::from(r.header().datalink);
        // Raw packets: some savefiles hold packets longer than their
        // snapshot length, which the checked reader refuses.
        while let Some(p) = r.next_raw_packet() {
            let p = p.unwrap();
            packets.push(SavedPacket {
                orig_len: p.orig_len,
                data: p.data.to_vec(),
            });
        }
        (linktype, packets)
    }
}

/// Every savefile in the shared data.
pub fn savefile_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(shared().join("savefiles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The LINKTYPE_* number of a DLT name of filter_accept.json, for the ones
/// the savefiles use.
pub fn linktype(dlt: &str) -> Option<u32> {
    Some(match dlt {
        "NULL" => 0,
        "EN10MB" => 1,
        "IEEE802" => 6,
        "ARCNET" => 7,
        "PPP" => 9,
        "FDDI" => 10,
        "RAW" => 101,
        "C_HDLC" => 104,
        "IEEE802_11" => 105,
        "LOOP" => 108,
        "LINUX_SLL" => 113,
        "PFLOG" => 117,
        "PRISM_HEADER" => 119,
        "IP_OVER_FC" => 122,
        "SUNATM" => 123,
        "IEEE802_11_RADIO" => 127,
        "ARCNET_LINUX" => 129,
        "MTP2" => 140,
        "IEEE802_11_RADIO_AVS" => 163,
        "BACNET_MS_TP" => 165,
        "PPI" => 192,
        "IPV4" => 228,
        "IPV6" => 229,
        "LINUX_SLL2" => 276,
        "DSA_TAG_BRCM" => 281,
        "DSA_TAG_DSA" => 284,
        _ => return None,
    })
}

// Frame builders. Checksums stay zero: no filter here reads them.

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const MULTICAST: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn vlan(tci: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = tci.to_be_bytes().to_vec();
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// IPv4 with `options` (a multiple of 4 bytes) and a fragment field (flags and offset).
pub fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    frag: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

pub fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

pub fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&MAC_A);
    p.extend_from_slice(&sender);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target);
    p
}

pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [192, 168, 1, 2];
pub const IP_LOCAL: [u8; 4] = [127, 0, 0, 1];
pub const IP_MCAST: [u8; 4] = [224, 0, 0, 251];

pub fn ip6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[15] = last;
    a
}

/// Ethernet frames of many kinds: IPv4 and IPv6 with TCP, UDP, ICMP,
/// options, fragments and extension headers; ARP and RARP; VLAN and QinQ;
/// 802.3/LLC; broadcast and multicast; truncated and tiny frames.
pub fn crafted_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let http = tcp(40000, 80, 0x18, b"GET / HTTP/1.0\r\n\r\n");
    let syn = tcp(1234, 22, 0x02, &[]);
    let dns = udp(5353, 53, &[0xab; 20]);
    let udp9999 = udp(1111, 9999, b"hello");
    let icmp = [8u8, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4];
    for (proto, l4) in [
        (6u8, &http),
        (6, &syn),
        (17, &dns),
        (17, &udp9999),
        (1, &icmp.to_vec()),
    ] {
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(proto, IP_A, IP_B, 0, &[], l4),
        ));
        v.push(eth(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(proto, IP_B, IP_A, 0x4000, &[], l4),
        ));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(proto, IP_A, IP_B, 0, &[1, 1, 1, 0], l4),
        ));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(proto, IP_A, IP_B, 0x2000, &[], l4),
        ));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(proto, IP_A, IP_B, 0x0010, &[], l4),
        ));
        v.push(eth(
            BROADCAST,
            MAC_A,
            0x0800,
            &ipv4(proto, IP_A, [255; 4], 0, &[], l4),
        ));
        v.push(eth(
            MULTICAST,
            MAC_A,
            0x0800,
            &ipv4(proto, IP_A, IP_MCAST, 0, &[], l4),
        ));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(proto, IP_LOCAL, IP_LOCAL, 0, &[], l4),
        ));
        let nh6 = if proto == 1 { 58 } else { proto };
        v.push(eth(MAC_A, MAC_B, 0x86dd, &ipv6(nh6, ip6(1), ip6(2), l4)));
        // Hop-by-hop options, then the transport.
        let mut hbh = vec![nh6, 0, 1, 4, 0, 0, 0, 0];
        hbh.extend_from_slice(l4);
        v.push(eth(MAC_A, MAC_B, 0x86dd, &ipv6(0, ip6(2), ip6(1), &hbh)));
        // A fragment header.
        let mut frag = vec![nh6, 0, 0, 1, 0, 0, 0, 7];
        frag.extend_from_slice(l4);
        v.push(eth(MAC_A, MAC_B, 0x86dd, &ipv6(44, ip6(3), ip6(1), &frag)));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x8100,
            &vlan(0x0064, 0x0800, &ipv4(proto, IP_A, IP_B, 0, &[], l4)),
        ));
        v.push(eth(
            MAC_A,
            MAC_B,
            0x88a8,
            &vlan(
                0x0005,
                0x8100,
                &vlan(0x2064, 0x86dd, &ipv6(nh6, ip6(1), ip6(2), l4)),
            ),
        ));
    }
    let mut ff02 = [0u8; 16];
    ff02[0] = 0xff;
    ff02[1] = 0x02;
    ff02[15] = 1;
    v.push(eth(
        [0x33, 0x33, 0, 0, 0, 1],
        MAC_A,
        0x86dd,
        &ipv6(58, ip6(1), ff02, &icmp),
    ));
    v.push(eth(BROADCAST, MAC_A, 0x0806, &arp(1, IP_A, IP_B)));
    v.push(eth(MAC_A, MAC_B, 0x0806, &arp(2, IP_B, IP_A)));
    v.push(eth(BROADCAST, MAC_A, 0x8035, &arp(3, [0; 4], [0; 4])));
    v.push(eth(
        MAC_A,
        MAC_B,
        0x8100,
        &vlan(0x0001, 0x0806, &arp(1, IP_A, IP_B)),
    ));
    // 802.3 with LLC/SNAP (IP), STP's LLC and raw IPX.
    let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    snap.extend_from_slice(&ipv4(17, IP_A, IP_B, 0, &[], &dns));
    v.push(eth(MAC_A, MAC_B, snap.len() as u16, &snap));
    let stp = [0x42u8, 0x42, 0x03, 0, 0, 0, 0, 0];
    v.push(eth(
        [0x01, 0x80, 0xc2, 0, 0, 0],
        MAC_B,
        stp.len() as u16,
        &stp,
    ));
    v.push(eth(MAC_A, MAC_B, 30, &[0xff; 30]));
    // PPPoE discovery and session (IPv4 inside).
    v.push(eth(BROADCAST, MAC_A, 0x8863, &[0x11, 0x09, 0, 0, 0, 0]));
    let mut ses = vec![0x11, 0, 0, 1, 0, 22, 0x00, 0x21];
    ses.extend_from_slice(&ipv4(17, IP_A, IP_B, 0, &[], &dns));
    v.push(eth(MAC_A, MAC_B, 0x8864, &ses));
    // MPLS with IPv4 inside, DECnet, IPX, AppleTalk, LLDP.
    let mut mpls = vec![0, 0x01, 0x01, 0x40];
    mpls.extend_from_slice(&ipv4(6, IP_A, IP_B, 0, &[], &http));
    v.push(eth(MAC_A, MAC_B, 0x8847, &mpls));
    v.push(eth(
        MAC_A,
        MAC_B,
        0x6003,
        &[0x02, 0, 0x81, 0x01, 0x04, 0x00, 0x08, 0x04],
    ));
    v.push(eth(MAC_A, MAC_B, 0x8137, &[0xff, 0xff, 0, 30, 0, 4]));
    v.push(eth(MAC_A, MAC_B, 0x809b, &[0; 16]));
    v.push(eth(
        [0x01, 0x80, 0xc2, 0, 0, 0x0e],
        MAC_B,
        0x88cc,
        &[2, 7, 4, 1, 2, 3, 4, 5, 6],
    ));
    // Truncated IPv4 and IPv6, a bare Ethernet header, fewer bytes than one.
    let full = eth(MAC_A, MAC_B, 0x0800, &ipv4(6, IP_A, IP_B, 0, &[], &http));
    for cut in [14, 20, 23, 30, 34, 36, 40, 47] {
        v.push(full[..cut].to_vec());
    }
    let full6 = eth(MAC_A, MAC_B, 0x86dd, &ipv6(17, ip6(1), ip6(2), &dns));
    for cut in [20, 54, 58] {
        v.push(full6[..cut].to_vec());
    }
    v.push(Vec::new());
    v.push(vec![0xff; 5]);
    v
}
