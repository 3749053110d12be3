//! `bpfkit gen skeleton OBJ.o`: typed Rust for a BPF object, as bpftool's
//! `gen skeleton` writes C and bpf2go writes Go.

use std::path::PathBuf;

use anyhow::Context;

/// Generate code from a BPF object.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Write a Rust skeleton (the object embedded, its types, typed access
    /// to its programs, maps and globals) to stdout.
    Skeleton(SkeletonArgs),
}

/// `gen skeleton` arguments.
#[derive(clap::Args)]
pub struct SkeletonArgs {
    /// A clang-compiled BPF ELF object.
    object: PathBuf,
    /// The skeleton's name (default: the file name before `.bpf.o`).
    #[arg(long)]
    name: Option<String>,
    /// Also generate this record type, from DWARF when BTF lacks it (repeatable).
    #[arg(long = "type", value_name = "NAME")]
    types: Vec<String>,
    /// Generate every named struct, union and enum of the object's BTF.
    #[arg(long)]
    all_types: bool,
}

/// Runs `bpfkit gen`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Skeleton(args) = cmd;
    let path = args.object.display().to_string();
    let bytes = std::fs::read(&args.object).with_context(|| format!("reading {path}"))?;
    let name = args.name.unwrap_or_else(|| {
        let file = args
            .object
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        file.trim_end_matches(".o")
            .trim_end_matches(".bpf")
            .to_string()
    });
    let code = bpfkit_gen::generate(
        &bytes,
        &bpfkit_gen::SkeletonOptions {
            name,
            embed: bpfkit_gen::Embed::Literal,
            extra_types: args.types,
            all_types: args.all_types,
        },
    )
    .with_context(|| format!("generating the skeleton of {path}"))?;
    print!("{code}");
    Ok(())
}
