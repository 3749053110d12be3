//! `bpfkit iter pin|run`: BPF iterators (`SEC("iter/...")`), as `bpftool
//! iter pin` does: pin the iterator's link in bpffs, where every read of
//! the file runs the program; or run it once and print what it wrote.

use std::path::PathBuf;

use anyhow::Context;
use bpfkit::object::ObjectSpec;
use bpfkit::{EbpfLoader, Iter};
use bpfkit_abi::AttachType;

/// BPF iterators.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Load an object's iterator program and pin its link at PATH (in
    /// bpffs); `cat PATH` then runs it. The program stays loaded until
    /// PATH is removed.
    Pin {
        /// A clang-compiled BPF object with an `iter/...` program.
        object: PathBuf,
        /// Where to pin the link (under /sys/fs/bpf).
        path: PathBuf,
        /// The iterator program, when the object has several.
        #[arg(long)]
        prog: Option<String>,
    },
    /// Load an object's iterator program, run it once and print its output.
    Run {
        /// A clang-compiled BPF object with an `iter/...` program.
        object: PathBuf,
        /// The iterator program, when the object has several.
        #[arg(long)]
        prog: Option<String>,
    },
}

/// Runs `bpfkit iter`.
pub fn run(command: Command) -> anyhow::Result<()> {
    let (object, prog, pin) = match command {
        Command::Pin { object, path, prog } => (object, prog, Some(path)),
        Command::Run { object, prog } => (object, prog, None),
    };
    let file = object.display().to_string();
    let spec = ObjectSpec::from_file(&object).with_context(|| format!("parsing {file}"))?;
    let iters: Vec<String> = spec
        .programs
        .iter()
        .filter(|(_, p)| p.kind.attach_type == Some(AttachType::TraceIter))
        .map(|(n, _)| n.clone())
        .collect();
    let name = match prog {
        Some(p) if iters.contains(&p) => p,
        Some(p) => anyhow::bail!(
            "{file} has no iterator program `{p}` (its iterators: {})",
            if iters.is_empty() {
                "none".to_string()
            } else {
                iters.join(", ")
            }
        ),
        None => match iters.as_slice() {
            [one] => one.clone(),
            [] => anyhow::bail!("{file} has no iterator program (SEC(\"iter/...\"))"),
            many => anyhow::bail!(
                "{file} has {} iterator programs; choose one with --prog ({})",
                many.len(),
                many.join(", ")
            ),
        },
    };
    if let Some(path) = &pin {
        if path.exists() {
            anyhow::bail!("{} exists already", path.display());
        }
    }
    let mut loader = EbpfLoader::new();
    for other in spec.programs.keys().filter(|n| **n != name) {
        loader.autoload(other, false);
    }
    let bpf = loader
        .keep_unsupported(true)
        .load_spec(spec)
        .with_context(|| format!("loading {file}"))?;
    let iter: &Iter = bpf.program(&name)?.try_into()?;
    let link = iter.attach()?;
    match pin {
        Some(path) => {
            link.pin(&path)?;
            outln!("pinned iterator `{name}` at {}", path.display());
        }
        None => {
            let text = iter.read(&link)?;
            out!("{}", String::from_utf8_lossy(&text));
        }
    }
    Ok(())
}
