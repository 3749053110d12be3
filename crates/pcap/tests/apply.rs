//! filter_apply.json: every expression compiled for its savefile (the
//! file's link type, snapshot length and byte order, as libpcap's
//! filtertest compiles it), optimized and unoptimized, and run over every
//! packet of the savefile through the classic interpreter and through its
//! eBPF translation in bpfkit's VM, gives libpcap's result for each packet.

mod common;

use std::collections::BTreeMap;

use bpfkit_isa::cbpf;
use bpfkit_pcap::classic::{Filter, Packet, Semantics};
use bpfkit_pcap::compile::{compile, CompileOptions, LinkType, NameResolver};
use bpfkit_pcap::translate::{translate, translate_libpcap};
use bpfkit_vm::{ContextKind, Program as VmProgram, TestRun, Vm};
use common::shared;
use serde_json::Value;

/// The 14 bytes put in front of each packet for a socket filter's test run,
/// which hands the program the data after an Ethernet header: with them it
/// sees the packet itself from offset 0 (as differential.rs does).
const PREFIX: [u8; 14] = [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];

/// A savefile as pcap_open_offline presents it to pcap_compile.
struct Savefile {
    /// `DLT_*` (libpcap's linktype_to_dlt of the file's `LINKTYPE_*`).
    dlt: u32,
    /// pcap_snapshot: the header's, 0 and oversized ones meaning 262144.
    snaplen: u32,
    /// The file's byte order is not this host's.
    swapped: bool,
    /// Captured bytes and wire length of each packet.
    packets: Vec<(Vec<u8>, u32)>,
}

/// libpcap's linktype_to_dlt: the `LINKTYPE_*` values that differ from
/// Linux's `DLT_*` ones.
fn dlt_of(linktype: u32) -> u32 {
    match linktype {
        100 => 11,
        101 => 12,
        102 => 15,
        103 => 16,
        106 => 19,
        n => n,
    }
}

fn read_savefile(name: &str) -> Savefile {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use pcap_file::Endianness;
    let native = if cfg!(target_endian = "big") {
        Endianness::Big
    } else {
        Endianness::Little
    };
    // pcap_adjust_snapshot_length.
    let adjust = |n: u32| if n == 0 || n > 262_144 { 262_144 } else { n };
    let path = shared().join("savefiles").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let swapped = r.section().endianness != native;
        let mut interface = None;
        while let Some(block) = r.next_block() {
            match block.unwrap_or_else(|e| panic!("{name}: {e}")) {
                Block::InterfaceDescription(i) => {
                    interface.get_or_insert((u32::from(i.linktype), i.snaplen));
                }
                Block::EnhancedPacket(p) => packets.push((p.data.to_vec(), p.original_len)),
                Block::SimplePacket(p) => packets.push((p.data.to_vec(), p.original_len)),
                _ => {}
            }
        }
        let (linktype, snaplen) = interface.expect("an interface block");
        Savefile {
            dlt: dlt_of(linktype),
            snaplen: adjust(snaplen),
            swapped,
            packets,
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let header = r.header();
        // Raw records: some savefiles hold packets longer than their
        // snapshot length, which pcap-file's checked reader refuses.
        while let Some(p) = r.next_raw_packet() {
            let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
            packets.push((p.data.to_vec(), p.orig_len));
        }
        Savefile {
            dlt: dlt_of(u32::from(header.datalink)),
            snaplen: adjust(header.snaplen),
            swapped: header.endianness != native,
            packets,
        }
    }
}

/// One classic machine and its eBPF translation, loaded for the VM.
struct Engines {
    classic: Filter,
    ebpf: VmProgram,
}

impl Engines {
    /// Both engines for `insns` under `semantics`, or why the classic
    /// validation refuses the program.
    fn new(insns: &[cbpf::Insn], semantics: Semantics, tag: &str) -> Result<Engines, String> {
        let (classic, ebpf) = match semantics {
            Semantics::Kernel => (Filter::new(insns.to_vec()), translate(insns)),
            Semantics::Libpcap => (Filter::libpcap(insns.to_vec()), translate_libpcap(insns)),
        };
        let classic = classic.map_err(|e| e.to_string())?;
        let ebpf = ebpf.unwrap_or_else(|e| panic!("{tag}: translate: {e}"));
        let ebpf = VmProgram::with_context(ebpf, ContextKind::SkBuffL3)
            .unwrap_or_else(|e| panic!("{tag}: VM: {e}"));
        Ok(Engines { classic, ebpf })
    }

    /// Each packet's result from the classic machine and from the VM.
    fn run(&self, vm: &mut Vm, packets: &[(Vec<u8>, u32)], tag: &str) -> [Vec<u32>; 2] {
        let mut classic_got = Vec::new();
        let mut vm_got = Vec::new();
        for (data, wire_len) in packets {
            classic_got.push(self.classic.run(&Packet {
                data,
                wire_len: *wire_len,
                meta: Default::default(),
            }));
            let mut data_in = PREFIX.to_vec();
            data_in.extend_from_slice(data);
            let input = TestRun {
                data_in,
                ..TestRun::default()
            };
            let r = vm
                .test_run(&self.ebpf, &input)
                .unwrap_or_else(|e| panic!("{tag}: VM run: {e}"));
            vm_got.push(r.retval as u32);
        }
        [classic_got, vm_got]
    }
}

/// Every block runs on libpcap's machine, the reference the results come
/// from; and on the kernel's, which refuses exactly the 13 `protochain`
/// blocks (their `ja` jumps back, which bpf_check_classic refuses).
#[test]
fn every_filter_gives_libpcaps_result_on_every_packet() {
    let path = shared().join("filter_apply.json");
    let blocks: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the shared test data)", path.display())),
    )
    .unwrap();
    let names = NameResolver::from_root(shared().join("names")).expect("read names/");
    let mut vm = Vm::new();
    // (block, optimized?) pairs run through both engines, per semantics.
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    let mut verdicts = 0usize; // per-packet results compared, per engine
    let mut kernel_refused = Vec::new();
    let mut failures = Vec::new();
    let mut per_dlt: BTreeMap<String, usize> = BTreeMap::new();
    for b in &blocks {
        let name = b["name"].as_str().unwrap();
        let expr = b["expr"].as_str().unwrap();
        let file = read_savefile(b["savefile"].as_str().unwrap());
        let want: Vec<u32> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(want.len(), file.packets.len(), "{name}: result count");
        let mut opts = CompileOptions::new(LinkType(file.dlt));
        opts.snaplen = file.snaplen;
        opts.offline = true;
        opts.swapped = file.swapped;
        // Blocks that TESTrun may skip for want of system name files get
        // them from names/; the rest resolve the same either way.
        opts.names = Some(names.clone());
        if let Some(m) = b.get("netmask").and_then(Value::as_str) {
            let o: Vec<u32> = m.split('.').map(|x| x.parse().unwrap()).collect();
            opts.netmask = o.iter().fold(0, |acc, x| acc << 8 | x);
        }
        for optimize in [true, false] {
            opts.optimize = optimize;
            let tag = format!("{name} ({})", if optimize { "opt" } else { "unopt" });
            let insns = match compile(expr, &opts) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!("{tag}: `{expr}` does not compile: {e}"));
                    continue;
                }
            };
            for (label, semantics) in [
                ("libpcap", Semantics::Libpcap),
                ("kernel", Semantics::Kernel),
            ] {
                let engines = match Engines::new(&insns, semantics, &tag) {
                    Ok(e) => e,
                    Err(e) if semantics == Semantics::Kernel && expr.contains("protochain") => {
                        assert!(e.contains("jumps back"), "{tag}: {e}");
                        kernel_refused.push(tag.clone());
                        continue;
                    }
                    Err(e) => {
                        failures.push(format!("{tag}: the {label} machine refuses it: {e}"));
                        continue;
                    }
                };
                let [classic_got, vm_got] = engines.run(&mut vm, &file.packets, &tag);
                if classic_got != want {
                    failures.push(format!(
                        "{tag}: {label} classic gives {classic_got:?}, libpcap {want:?}"
                    ));
                }
                if vm_got != want {
                    failures.push(format!(
                        "{tag}: {label} eBPF in the VM gives {vm_got:?}, libpcap {want:?}"
                    ));
                }
                *runs.entry(label).or_default() += 1;
                verdicts += want.len();
            }
            *per_dlt
                .entry(LinkType(file.dlt).name().unwrap_or("?").to_string())
                .or_default() += 1;
        }
    }
    eprintln!(
        "filter_apply.json: {} blocks; (block, opt/unopt) runs through the classic interpreter \
         and the VM per semantics: {runs:?}; {verdicts} packet results each; by link type: \
         {per_dlt:?}",
        blocks.len()
    );
    eprintln!(
        "the kernel's machine refuses {}: {}",
        kernel_refused.len(),
        kernel_refused.join(", ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(runs["libpcap"], 2 * blocks.len());
    let protochain = blocks
        .iter()
        .filter(|b| b["expr"].as_str().unwrap().contains("protochain"))
        .count();
    assert_eq!(protochain, 13);
    assert_eq!(kernel_refused.len(), 2 * protochain, "{kernel_refused:?}");
    assert_eq!(runs["kernel"], 2 * blocks.len() - kernel_refused.len());
}
