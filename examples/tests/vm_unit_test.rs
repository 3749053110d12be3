//! Unit-testing a BPF program without root: the XDP counter's skeleton,
//! loaded into bpfkit's VM instead of the kernel, run on crafted frames
//! with `test_run`; its maps and globals are read through the same API.

use bpfkit::maps::PerCpuArray;
use bpfkit::{Backend, Xdp};
use bpfkit_examples::xdp_counter::XdpCounterSkel;

/// An Ethernet frame carrying IPv4 with `protocol`, padded to `len` bytes.
fn ipv4_frame(protocol: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(34)];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[23] = protocol;
    f
}

fn loaded_in_vm() -> XdpCounterSkel {
    let mut open = XdpCounterSkel::open();
    open.loader.backend(Backend::Vm);
    open.load().expect("the XDP counter loads into the VM")
}

#[test]
fn counts_packets_by_ip_protocol() {
    let mut skel = loaded_in_vm();
    let xdp: &mut Xdp = skel.count_packets().unwrap();
    const XDP_PASS: u32 = 2;
    for (frame, times) in [
        (ipv4_frame(17, 60), 3), // UDP
        (ipv4_frame(6, 80), 2),  // TCP
        (vec![0u8; 20], 1),      // not IP (no EtherType 0x0800)
    ] {
        for _ in 0..times {
            let r = xdp.test_run(&frame, &[]).unwrap();
            assert_eq!(r.retval, XDP_PASS, "every packet is passed on");
            assert_eq!(r.data_out, frame, "and left as it was");
        }
    }
    let packets = PerCpuArray::<_, u64>::new(skel.packets().unwrap()).unwrap();
    let count = |proto: u32| packets.get(proto).unwrap().iter().sum::<u64>();
    assert_eq!(count(17), 3);
    assert_eq!(count(6), 2);
    assert_eq!(count(0), 1);
    assert_eq!(count(1), 0);
    assert_eq!({ skel.bss().unwrap().total_bytes }, 3 * 60 + 2 * 80 + 20);
}

#[test]
fn a_truncated_ip_header_counts_as_non_ip() {
    let skel = loaded_in_vm();
    let mut frame = ipv4_frame(17, 34);
    frame.truncate(20); // EtherType says IPv4, but the header is cut off
    let prog = skel.ebpf.program("count_packets").unwrap();
    prog.data().test_run(&frame, &[]).unwrap();
    let packets = PerCpuArray::<_, u64>::new(skel.packets().unwrap()).unwrap();
    assert_eq!(packets.get(0).unwrap().iter().sum::<u64>(), 1);
    assert_eq!(packets.get(17).unwrap().iter().sum::<u64>(), 0);
}

#[test]
fn globals_can_be_written_between_runs() {
    let mut skel = loaded_in_vm();
    let mut bss = skel.bss().unwrap();
    bss.total_bytes = 1_000;
    skel.set_bss(&bss).unwrap();
    skel.count_packets()
        .unwrap()
        .test_run(&ipv4_frame(1, 42), &[])
        .unwrap();
    assert_eq!({ skel.bss().unwrap().total_bytes }, 1_042);
    assert_eq!(skel.ebpf.global::<u64>("total_bytes").unwrap(), 1_042);
}
