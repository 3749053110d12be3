//! `bpfkit filter`: compile a pcap-filter(7) expression as tcpdump does
//! (`-y`, `-s`, `-O`), show the classic program as tcpdump does (`-d`,
//! `-dd`, `-ddd`), as the eBPF it translates to (`--ebpf`), and run it over
//! a savefile (`--test`), printing each packet's result as libpcap's
//! filtertest does.
//!
//! Instead of an expression, `--program FILE` takes a ready program (a
//! `tcpdump -d` listing, `-dd` C array or `-ddd` list).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use bpfkit_isa::{cbpf, Syntax};
use bpfkit_pcap::classic::{self, Filter, Packet};
use bpfkit_pcap::compile::{CompileOptions, LinkType, NameResolver};
use clap::{ArgAction, Parser, ValueEnum};

/// Show, or test over a savefile, a classic BPF packet filter.
#[derive(Parser)]
pub struct Args {
    /// The filter expression (pcap-filter(7)); its words are joined with
    /// spaces, as tcpdump joins them.
    expression: Vec<String>,
    /// The link-layer type to compile for, by name without `DLT_` (as
    /// `tcpdump -y`); with --test the savefile's type is the default.
    #[arg(short = 'y', value_name = "DLT")]
    linktype: Option<String>,
    /// The snapshot length, which an accepting filter returns (0, or above
    /// 262144: 262144, as tcpdump); with --test the savefile's is the default.
    #[arg(short = 's', value_name = "SNAPLEN")]
    snaplen: Option<u32>,
    /// Do not run the optimizer (as `tcpdump -O`).
    #[arg(short = 'O')]
    no_optimize: bool,
    /// Resolve host, network, protocol, service and Ethernet names from
    /// ROOT/{hosts,networks,protocols,services,ethers} instead of the
    /// built-in protocol and service names.
    #[arg(long, value_name = "ROOT")]
    names: Option<PathBuf>,
    /// The classic program, instead of an expression: a `tcpdump -d`
    /// listing, `tcpdump -dd` C array or `tcpdump -ddd` decimal list.
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
    /// Whose classic machine the program is for: libpcap's userland one,
    /// which filtertest runs and which alone runs `protochain`'s backward
    /// jumps (the default for --test with the classic and vm engines), or
    /// the kernel's (the default for --ebpf and --engine kernel).
    #[arg(long, value_enum)]
    semantics: Option<Semantics>,
}

/// Whose classic machine runs the program.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Semantics {
    /// libpcap's userland bpf_filter.
    Libpcap,
    /// The kernel's socket filter.
    Kernel,
}

impl Args {
    /// `--semantics`, or the default for what the program is run by.
    fn semantics(&self, for_test: bool) -> classic::Semantics {
        match self.semantics {
            Some(Semantics::Libpcap) => classic::Semantics::Libpcap,
            Some(Semantics::Kernel) => classic::Semantics::Kernel,
            None if for_test && self.engine != Engine::Kernel => classic::Semantics::Libpcap,
            None => classic::Semantics::Kernel,
        }
    }
}

/// The eBPF translation of `insns` for `semantics`' machine.
fn translate(
    insns: &[cbpf::Insn],
    semantics: classic::Semantics,
) -> Result<Vec<bpfkit_isa::Insn>, bpfkit_pcap::translate::TranslateError> {
    match semantics {
        classic::Semantics::Kernel => bpfkit_pcap::translate::translate(insns),
        classic::Semantics::Libpcap => bpfkit_pcap::translate::translate_libpcap(insns),
    }
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

/// The largest snapshot length, libpcap's MAXIMUM_SNAPLEN, which tcpdump
/// uses for `-s 0` and by default.
pub const MAXIMUM_SNAPLEN: u32 = 262_144;

/// Runs `bpfkit filter`.
pub fn run(args: Args) -> Result<()> {
    let savefile = match &args.test {
        Some(path) => Some(read_savefile(path)?),
        None => None,
    };
    let insns = match (&args.program, args.expression.is_empty()) {
        (Some(path), true) => read_program(path)?,
        (Some(_), false) => bail!("give either a filter expression or --program, not both"),
        (None, _) => {
            let linktype = match (&args.linktype, &savefile) {
                (Some(name), _) => linktype_by_name(name)?,
                (None, Some(f)) => f.linktype,
                (None, None) => LinkType::EN10MB,
            };
            let mut opts = CompileOptions::new(linktype);
            opts.snaplen = match (args.snaplen, &savefile) {
                (Some(n), _) => adjust_snaplen(n),
                (None, Some(f)) => adjust_snaplen(f.snaplen),
                (None, None) => MAXIMUM_SNAPLEN,
            };
            // tcpdump without a device (as for -d) has netmask 0, which
            // `ip broadcast` then needs no netmask for.
            opts.netmask = 0;
            opts.optimize = !args.no_optimize;
            if let Some(f) = &savefile {
                // As pcap_compile on a savefile: BPF_OFFLINE_AF_HANDLING.
                opts.offline = true;
                opts.swapped = f.swapped;
            }
            if let Some(root) = &args.names {
                // Missing files just resolve nothing; a missing root is a mistake.
                if !root.is_dir() {
                    bail!("--names {}: not a directory", root.display());
                }
                opts.names =
                    Some(NameResolver::from_root(root).with_context(|| {
                        format!("reading the name files under {}", root.display())
                    })?);
            }
            compile_expression(&args.expression.join(" "), &opts)?
        }
    };
    run_program(insns, &args, savefile.as_ref())
}

/// Compiles `expr`; the error is libpcap's message, with the expression.
pub fn compile_expression(expr: &str, opts: &CompileOptions) -> Result<Vec<cbpf::Insn>> {
    bpfkit_pcap::compile::compile(expr, opts).map_err(|e| match e.position {
        Some(p) => anyhow!(
            "can't compile filter expression `{expr}`: {} (at byte {p})",
            e.message
        ),
        None => anyhow!("can't compile filter expression `{expr}`: {}", e.message),
    })
}

/// A link type by its `DLT_` name (`EN10MB`, `LINUX_SLL`, ...).
pub fn linktype_by_name(name: &str) -> Result<LinkType> {
    let bare = name.strip_prefix("DLT_").unwrap_or(name);
    LinkType::from_name(bare).ok_or_else(|| anyhow!("unknown link type name `{name}` for -y"))
}

/// libpcap's snapshot length for a requested one (pcap_adjust_snapshot_length):
/// 0 and anything above the maximum mean the maximum.
pub fn adjust_snaplen(n: u32) -> u32 {
    if n == 0 || n > MAXIMUM_SNAPLEN {
        MAXIMUM_SNAPLEN
    } else {
        n
    }
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
/// `savefile` is `--test`'s, already read.
pub fn run_program(insns: Vec<cbpf::Insn>, args: &Args, savefile: Option<&Savefile>) -> Result<()> {
    let show_listing = args.dump == 0 && !args.ebpf && args.test.is_none();
    match args.dump {
        0 if show_listing => out!("{}", cbpf::dump(&insns)),
        0 => {}
        1 => out!("{}", cbpf::dump(&insns)),
        2 => out!("{}", cbpf::dump_c_array(&insns)),
        _ => out!("{}", cbpf::dump_decimal(&insns)),
    }
    if args.ebpf {
        let ebpf = translate(&insns, args.semantics(false))?;
        out!("{}", bpfkit_isa::disassemble(&ebpf, Syntax::Llvm));
    }
    if let (Some(path), Some(savefile)) = (&args.test, savefile) {
        let semantics = args.semantics(true);
        let filter = match semantics {
            classic::Semantics::Kernel => Filter::new(insns.clone())?,
            classic::Semantics::Libpcap => Filter::libpcap(insns.clone())?,
        };
        let mut runner = Runner::new(&insns, args.engine, semantics)?;
        for (i, p) in savefile.packets.iter().enumerate() {
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
    fn new(
        insns: &[cbpf::Insn],
        engine: Engine,
        semantics: classic::Semantics,
    ) -> Result<Option<Runner>> {
        if engine == Engine::Classic {
            return Ok(None);
        }
        let ebpf = translate(insns, semantics)?;
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

/// A savefile's packets, with what compiling a filter for it needs.
pub struct Savefile {
    /// The link type (a `DLT_*` value, from the file's `LINKTYPE_*`).
    pub linktype: LinkType,
    /// The snapshot length in the file's header.
    pub snaplen: u32,
    /// The file's byte order differs from this host's.
    pub swapped: bool,
    /// The packets, in order.
    pub packets: Vec<SavedPacket>,
}

/// libpcap's linktype_to_dlt: the `LINKTYPE_*` values that differ from
/// Linux's `DLT_*` ones (the rest are equal).
pub fn dlt_of_linktype(linktype: u32) -> LinkType {
    LinkType(match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        n => n,
    })
}

/// Reads a pcap or pcapng savefile (the first interface's link type and
/// snapshot length for pcapng).
pub fn read_savefile(path: &Path) -> Result<Savefile> {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use pcap_file::Endianness;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display();
    let native = if cfg!(target_endian = "big") {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).with_context(|| format!("{name}: pcapng"))?;
        let swapped = r.section().endianness != native;
        let mut interface = None;
        while let Some(block) = r.next_block() {
            match block.with_context(|| format!("{name}: pcapng block"))? {
                Block::InterfaceDescription(i) => {
                    interface.get_or_insert((u32::from(i.linktype), i.snaplen));
                }
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
        let (linktype, snaplen) =
            interface.with_context(|| format!("{name}: no interface description block"))?;
        Ok(Savefile {
            linktype: dlt_of_linktype(linktype),
            snaplen,
            swapped,
            packets,
        })
    } else {
        let mut r = PcapReader::new(&bytes[..]).with_context(|| format!("{name}: pcap"))?;
        let header = r.header();
        // Raw records: some savefiles hold packets longer than their
        // snapshot length, which pcap-file's checked reader refuses.
        while let Some(p) = r.next_raw_packet() {
            let p = p.with_context(|| format!("{name}: packet {}", packets.len() + 1))?;
            packets.push(SavedPacket {
                orig_len: p.orig_len,
                data: p.data.into_owned(),
            });
        }
        Ok(Savefile {
            linktype: dlt_of_linktype(u32::from(header.datalink)),
            snaplen: header.snaplen,
            swapped: header.endianness != native,
            packets,
        })
    }
}
