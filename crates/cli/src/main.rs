//! The `bpfkit` command: a thin layer over the bpfkit crates.
//!
//! Each subcommand lives in its own module under `cmd/`, exposing an `Args`
//! struct (clap) and a `run` function.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that hands back the write error (stdout closed by `| head`)
/// with `?` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

/// `print!` that hands back the write error with `?`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?;
    }};
}

mod cmd;
mod seconds;
mod tools;

/// bpfkit: an eBPF toolchain. Load BPF objects into Linux, run them in a
/// userspace VM, and trace the system with ready-made tools.
#[derive(Parser)]
#[command(name = "bpfkit", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect BTF type information (dump as C or raw).
    Btf(cmd::btf::Args),
    /// Disassemble raw eBPF bytecode or the programs of a BPF object.
    Disasm(cmd::disasm::Args),
    /// Assemble eBPF assembly into raw bytecode.
    Asm(cmd::asm::Args),
    /// Run a bpf_conformance test directory in the userspace VM.
    Conformance(cmd::conformance::Args),
    /// Act as a bpf_conformance plugin (program hex on stdin, memory hex argument).
    ConformancePlugin(cmd::conformance::PluginArgs),
    /// Run raw eBPF bytecode in the userspace VM.
    Run(cmd::run::Args),
    /// Print the x86-64 code the JIT makes of a program, with its eBPF.
    Jit(cmd::jit::Args),
    /// Verify an object's programs with bpfkit's verifier (and the kernel's).
    Verify(cmd::verify::Args),
    /// Load a BPF object into the kernel, attach it, and print its events.
    Load(cmd::load::Args),
    /// Trace new processes: TIME PCOMM PID PPID UID RET ARGS.
    Execsnoop(tools::execsnoop::Args),
    /// Trace file opens: TIME PID COMM FD ERR [FLAGS] PATH.
    Opensnoop(tools::opensnoop::Args),
    /// Count system calls by call or by process, with time spent.
    Syscount(tools::syscount::Args),
    /// Histogram of run-queue length, sampled by a perf event on every CPU.
    Runqlen(tools::runqlen::Args),
    /// Outstanding allocations older than a threshold, by call site or stack.
    Memleak(tools::memleak::Args),
    /// HTTP/1.x requests and responses of a server's accepted connections.
    Httpsnoop(tools::httpsnoop::Args),
    /// Trace listen() on IPv4/IPv6 sockets: TIME PID COMM NETNS PROTO BACKLOG ADDR PORT.
    Solisten(tools::solisten::Args),
    /// Closed TCP connections: PID COMM LADDR LPORT RADDR RPORT TX_KB RX_KB MS.
    Tcplife(tools::tcplife::Args),
    /// Block I/O latency as a power-of-two histogram, overall or per disk.
    Biolatency(tools::biolatency::Args),
    /// Show what this kernel supports and whether this process may use it.
    Feature(cmd::feature::Args),
    /// Programs loaded in the kernel: list, show, dump xlated|jited.
    #[command(subcommand)]
    Prog(cmd::prog::Command),
    /// Maps in the kernel: list, show, dump, lookup, update, delete.
    #[command(subcommand)]
    Map(cmd::map::Command),
    /// Links in the kernel.
    #[command(subcommand)]
    Link(cmd::inspect::ListCommand),
    /// BPF iterators: pin one in bpffs, or run it once.
    #[command(subcommand)]
    Iter(cmd::iter::Command),
    /// Generate code from a BPF object: `gen skeleton OBJ.o > x.skel.rs`.
    #[command(subcommand)]
    Gen(cmd::gen::Command),
    /// Classic BPF packet filters: print as tcpdump -d/-dd/-ddd, translate to eBPF, test on a savefile.
    Filter(cmd::filter::Args),
    /// Capture packets on an interface through a classic BPF filter; print, or write a pcap.
    Capture(cmd::capture::Args),
}

/// An error and its causes, as `{:#}` prints them, less any cause whose text
/// the message already holds (an error that prints its source as well as
/// returning it from `source()` would otherwise read "X: e: e").
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// bpftool takes `-j`/`-p` before the object (`bpftool -j prog show`);
/// bpfkit's inspection commands take them after it. Moves them there.
fn bpftool_order(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const OBJECTS: [&str; 4] = ["prog", "map", "link", "btf"];
    let mut leading: Vec<std::ffi::OsString> = Vec::new();
    while args.len() > 2 && matches!(args[1].to_str(), Some("-j" | "--json" | "-p" | "--pretty")) {
        leading.push(args.remove(1));
    }
    if leading.is_empty() {
        return args;
    }
    if args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| OBJECTS.contains(&a))
    {
        // After the object and its verb: `prog show -j`.
        // `-p` (pretty JSON) is bpfkit's `-j`.
        let has_json = args.iter().any(|a| a == "-j" || a == "--json");
        if !has_json {
            args.insert(3.min(args.len()), "-j".into());
        }
    } else {
        for (i, flag) in leading.into_iter().enumerate() {
            args.insert(1 + i, flag);
        }
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(bpftool_order(std::env::args_os().collect()));
    let result: anyhow::Result<()> = match cli.command {
        Command::Btf(args) => cmd::btf::run(args),
        Command::Disasm(args) => cmd::disasm::run(args),
        Command::Asm(args) => cmd::asm::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        Command::ConformancePlugin(args) => cmd::conformance::plugin(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Jit(args) => cmd::jit::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Load(args) => cmd::load::run(args),
        Command::Execsnoop(args) => tools::execsnoop::run(args),
        Command::Opensnoop(args) => tools::opensnoop::run(args),
        Command::Syscount(args) => tools::syscount::run(args),
        Command::Runqlen(args) => tools::runqlen::run(args),
        Command::Memleak(args) => tools::memleak::run(args),
        Command::Httpsnoop(args) => tools::httpsnoop::run(args),
        Command::Solisten(args) => tools::solisten::run(args),
        Command::Tcplife(args) => tools::tcplife::run(args),
        Command::Biolatency(args) => tools::biolatency::run(args),
        Command::Feature(args) => cmd::feature::run(args),
        Command::Prog(c) => cmd::prog::run(c),
        Command::Map(c) => cmd::map::run(c),
        Command::Link(c) => cmd::inspect::links(c),
        Command::Iter(c) => cmd::iter::run(c),
        Command::Gen(c) => cmd::gen::run(c),
        Command::Filter(args) => cmd::filter::run(args),
        Command::Capture(args) => cmd::capture::run(args),
    };
    let closed_stdout = |e: &anyhow::Error| {
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`| head`, `| grep -q`) is not a failure.
        Err(e) if closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpfkit: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bpftool_order;

    fn order(args: &[&str]) -> Vec<String> {
        bpftool_order(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn json_flags_before_the_object_move_after_its_verb() {
        assert_eq!(
            order(&["bpfkit", "-j", "prog", "show", "id", "3"]),
            ["bpfkit", "prog", "show", "-j", "id", "3"]
        );
        assert_eq!(
            order(&["bpfkit", "-p", "map", "list"]),
            ["bpfkit", "map", "list", "-j"]
        );
        // Repeated values are arguments, not flags, and stay.
        let update = [
            "bpfkit", "-j", "map", "update", "id", "1", "key", "0", "0", "0", "0",
        ];
        assert_eq!(
            order(&update),
            ["bpfkit", "map", "update", "-j", "id", "1", "key", "0", "0", "0", "0"]
        );
        // Anything else is left for clap to judge.
        assert_eq!(
            order(&["bpfkit", "-j", "execsnoop"]),
            ["bpfkit", "-j", "execsnoop"]
        );
        assert_eq!(
            order(&["bpfkit", "prog", "list"]),
            ["bpfkit", "prog", "list"]
        );
    }
}
