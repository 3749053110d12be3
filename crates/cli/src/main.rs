//! The `bpfkit` command: a thin layer over the bpfkit crates.
//!
//! Each subcommand lives in its own module under `cmd/`, exposing an `Args`
//! struct (clap) and a `run` function.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
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
    /// Print the version and exit (placeholder until the first tools land).
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Version => {
            println!("bpfkit {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpfkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
