//! `bpfkit filter`: show a classic BPF packet filter as tcpdump does
//! (`-d`, `-dd`, `-ddd`), as the eBPF it translates to (`--ebpf`), and run it
//! over a savefile (`--test`), printing each packet's result as libpcap's
//! filtertest does.
//!
//! The program comes from `--program FILE` (a `tcpdump -d` listing, `-dd` C
//! array or `-ddd` list). Everything after that takes a `Vec<cbpf::Insn>`
//! ([`run_program`]), so a filter-expression compiler plugs in by producing one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bpfkit_isa::{cbpf, Syntax};
use bpfkit_pcap::classic::{Filter, Packet};
use clap::{ArgAction, Parser, ValueEnum};

/// Show or test a classic BPF packet filter.
#[derive(Parser)]
pub struct Args {
    /// A filter expression (pcap-filter(7)); this build has no compiler for
    /// it yet, so give the program with --program.
    expression: Vec<String>,
    /// The classic program: a `tcpdump -d` listing, `tcpdump -dd` C array or
    /// `tcpdump -ddd` decimal list.
    #[arg(long, short = 'p', value_name = "FILE")]
    program: Option<PathBuf>,
    /// Print the program as `tcpdump -d` (listing), `-dd` (C array) or `-ddd` (decimal).
    #[arg(short = 'd', action = ArgAction::Count)]
    dump: u8,
    /// Print the eBPF the program translates to (the kernel's
    /// bpf_convert_filter, loadable as a socket filter), in LLVM syntax.
    #[arg(long)]
    ebpf: bool,
    /// Run the program over each packet of this savefile (pcap or pcapng)
    /// and print its result, one line a packet.
    #[arg(long, short = 't', value_name = "FILE")]
    test: Option<PathBuf>,
    /// What runs the program for --test.
    #[arg(long, value_enum, default_value_t = Engine::Classic)]
    engine: Engine,
}

/// What runs the program over packets.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The classic interpreter (libpcap's wire length for `ld #pktlen`).
    Classic,
    /// The translated eBPF program in bpfkit's VM, as a socket filter
    /// (the captured length for `ld #pktlen`).
    Vm,
    /// The translated eBPF program in the kernel, as a socket filter run by
    /// `BPF_PROG_TEST_RUN` (the captured length for `ld #pktlen`).
    Kernel,
}

/// Runs `bpfkit filter`.
pub fn run(args: Args) -> Result<()> {
    let insns = match (&args.program, args.expression.is_empty()) {
        (Some(path), true) => read_program(path)?,
        (Some(_), false) => bail!("give either a filter expression or --program, not both"),
        (None, false) => bail!(
            "compiling filter expressions (`{}`) is not in this build; give the program \
             as a `tcpdump -d`/`-dd`/`-ddd` listing with --program FILE",
            args.expression.join(" ")
        ),
        (None, true) => bail!("no program: give --program FILE"),
    };
    run_program(insns, &args)
}

/// Reads a program in any of tcpdump's three printed forms.
pub fn read_program(path: &Path) -> Result<Vec<cbpf::Insn>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let parsed = match first {
        None => bail!("{}: empty, no instructions", path.display()),
        Some(l) if l.starts_with('(') => cbpf::parse_listing(&text),
        Some(l) if l.contains('{') || l.starts_with("struct") => cbpf::parse_c_array(&text),
        Some(_) => cbpf::parse_decimal(&text),
    };
    let insns = parsed.with_context(|| format!("{}", path.display()))?;
    if insns.is_empty() {
        bail!("{}: no instructions", path.display());
    }
    Ok(insns)
}

/// What `bpfkit filter` does with a program, however it was obtained.
pub fn run_program(insns: Vec<cbpf::Insn>, args: &Args) -> Result<()> {
    let show_listing = args.dump == 0 && !args.ebpf && args.test.is_none();
    match args.dump {
        0 if show_listing => out!("{}", cbpf::dump(&insns)),
        0 => {}
        1 => out!("{}", cbpf::dump(&insns)),
        2 => out!("{}", cbpf::dump_c_array(&insns)),
        _ => out!("{}", cbpf::dump_decimal(&insns)),
    }
    if args.ebpf {
        let ebpf = bpfkit_pcap::translate::translate(&insns)?;
        out!("{}", bpfkit_isa::disassemble(&ebpf, Syntax::Llvm));
    }
    if let Some(path) = &args.test {
        let filter = Filter::new(insns.clone())?;
        let packets = read_savefile(path)?;
        let mut runner = Runner::new(&insns, args.engine)?;
        for (i, p) in packets.iter().enumerate() {
            let result = match &mut runner {
                None => filter.run(&Packet {
                    data: &p.data,
                    wire_len: p.orig_len,
                    meta: Default::default(),
                }),
                Some(runner) => runner
                    .run(&p.data)
                    .with_context(|| format!("{} packet {}", path.display(), i + 1))?,
            };
            outln!("{result}");
        }
    }
    Ok(())
}

/// The translated program in the VM or the kernel, for `--engine vm|kernel`.
enum Runner {
    Vm {
        // Boxed: the VM is large beside a kernel program's fd.
        vm: Box<bpfkit_vm::Vm>,
        program: bpfkit_vm::Program,
    },
    Kernel(bpfkit_kernel::Program),
}

/// bpf_prog_test_run_skb hands a socket filter the data after an Ethernet
/// header; these 14 bytes go in front so that the program sees the packet
/// from its first byte (a zero destination: PACKET_HOST; EtherType 0x88b5).
const TEST_RUN_PREFIX: [u8; 14] = [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];

impl Runner {
    fn new(insns: &[cbpf::Insn], engine: Engine) -> Result<Option<Runner>> {
        if engine == Engine::Classic {
            return Ok(None);
        }
        let ebpf = bpfkit_pcap::translate::translate(insns)?;
        if engine == Engine::Kernel {
            let program = bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
                name: "bpfkit_filter",
                prog_type: bpfkit_abi::ProgramType::SocketFilter,
                expected_attach_type: None,
                insns: &ebpf,
                license: "GPL",
                kern_version: 0,
                btf: None,
                attach_btf_id: 0,
                core_relos: Vec::new(),
            })
            .context("loading the translated filter into the kernel")?;
            return Ok(Some(Runner::Kernel(program)));
        }
        let program = bpfkit_vm::Program::with_context(ebpf, bpfkit_vm::ContextKind::SkBuffL3)?;
        Ok(Some(Runner::Vm {
            vm: Box::new(bpfkit_vm::Vm::new()),
            program,
        }))
    }

    fn run(&mut self, packet: &[u8]) -> Result<u32> {
        let mut data_in = TEST_RUN_PREFIX.to_vec();
        data_in.extend_from_slice(packet);
        match self {
            Runner::Vm { vm, program } => {
                let input = bpfkit_vm::TestRun {
                    data_in,
                    ..Default::default()
                };
                Ok(vm.test_run(program, &input)?.retval as u32)
            }
            Runner::Kernel(program) => Ok(program.test_run(&data_in, &[], 1)?.retval),
        }
    }
}

/// One packet of a savefile.
pub struct SavedPacket {
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Its length on the wire.
    pub orig_len: u32,
}

/// The packets of a pcap or pcapng savefile.
pub fn read_savefile(path: &Path) -> Result<Vec<SavedPacket>> {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display();
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).with_context(|| format!("{name}: pcapng"))?;
        while let Some(block) = r.next_block() {
            match block.with_context(|| format!("{name}: pcapng block"))? {
                Block::EnhancedPacket(p) => packets.push(SavedPacket {
                    orig_len: p.original_len,
                    data: p.data.into_owned(),
                }),
                Block::SimplePacket(p) => packets.push(SavedPacket {
                    orig_len: p.original_len,
                    data: p.data.into_owned(),
                }),
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).with_context(|| format!("{name}: pcap"))?;
        // Raw records: some savefiles hold packets longer than their
        // snapshot length, which pcap-file's checked reader refuses.
        while let Some(p) = r.next_raw_packet() {
            let p = p.with_context(|| format!("{name}: packet {}", packets.len() + 1))?;
            packets.push(SavedPacket {
                orig_len: p.orig_len,
                data: p.data.into_owned(),
            });
        }
    }
    Ok(packets)
}
