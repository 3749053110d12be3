//! Counts the packets an interface receives, by IP protocol, with XDP.
//!
//! `xdp-counter IFACE` attaches, says so on stderr, and on Ctrl-C (or
//! SIGTERM) detaches and prints the counts:
//!
//! ```text
//! PROTO    PACKETS
//! icmp           3
//! udp           10
//! total bytes: 1342
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bpfkit::maps::PerCpuArray;
use bpfkit::{Xdp, XdpOptions};
use bpfkit_examples::xdp_counter::XdpCounterSkel;

fn proto_name(p: u32) -> String {
    match p {
        0 => "non-ip".into(),
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        n => format!("proto {n}"),
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let iface = std::env::args().nth(1).ok_or("usage: xdp-counter IFACE")?;
    let mut skel = XdpCounterSkel::open().load()?;
    let prog: &mut Xdp = skel.count_packets()?;
    let link = prog.attach(&iface, &XdpOptions::default())?;

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    eprintln!(
        "counting packets on {iface} ({}); Ctrl-C to stop",
        link.description()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(link);

    let packets = PerCpuArray::<_, u64>::new(skel.packets()?)?;
    println!("{:<8} {:>8}", "PROTO", "PACKETS");
    for proto in 0..256u32 {
        let n: u64 = packets.get(proto)?.iter().sum();
        if n > 0 {
            println!("{:<8} {n:>8}", proto_name(proto));
        }
    }
    println!("total bytes: {}", { skel.bss()?.total_bytes });
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("xdp-counter: {e}");
        std::process::exit(1);
    }
}
