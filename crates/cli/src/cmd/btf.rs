//! `bpfkit btf`: inspect BTF type information.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::Btf;
use clap::{Parser, Subcommand, ValueEnum};

/// Inspect BTF: raw blobs (such as /sys/kernel/btf/vmlinux) or the `.BTF`
/// section of a BPF object file.
#[derive(Parser)]
pub struct Args {
    #[command(subcommand)]
    command: BtfCommand,
}

#[derive(Subcommand)]
enum BtfCommand {
    /// Print every type, as a compilable C header or bpftool's raw listing.
    Dump {
        /// A raw BTF file or an ELF object with a `.BTF` section.
        file: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Format::Raw)]
        format: Format,
        /// Base BTF for split BTF (kernel module BTF needs
        /// /sys/kernel/btf/vmlinux, which is the default for files under
        /// /sys/kernel/btf/).
        #[arg(long, short = 'B')]
        base: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A C header like `bpftool btf dump ... format c`.
    C,
    /// One line per type like `bpftool btf dump ... format raw`.
    Raw,
}

/// Runs `bpfkit btf`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        BtfCommand::Dump { file, format, base } => {
            let btf = load(&file, base.as_deref())?;
            let text = match format {
                Format::C => {
                    dump_c_header(&btf).with_context(|| format!("dumping {}", file.display()))?
                }
                Format::Raw => dump_raw(&btf),
            };
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                // A closed pipe (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing to stdout"),
            }
        }
    }
}

const SYS_BTF: &str = "/sys/kernel/btf";

fn load(file: &Path, base: Option<&Path>) -> Result<Btf> {
    let bytes = btf_bytes(file)?;
    let base = match base {
        Some(b) => Some(b.to_path_buf()),
        None if file.parent() == Some(Path::new(SYS_BTF))
            && file.file_name() != Some("vmlinux".as_ref()) =>
        {
            Some(Path::new(SYS_BTF).join("vmlinux"))
        }
        None => None,
    };
    let btf = match base {
        Some(base_path) => {
            let base_btf = Btf::from_vec(btf_bytes(&base_path)?)
                .with_context(|| format!("parsing base BTF {}", base_path.display()))?;
            Btf::parse_split(&bytes, Arc::new(base_btf))
        }
        None => Btf::from_vec(bytes),
    };
    btf.with_context(|| format!("parsing BTF from {}", file.display()))
}

/// The BTF blob in `file`: the file itself, or its `.BTF` section if it is ELF.
fn btf_bytes(file: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if !data.starts_with(b"\x7fELF") {
        return Ok(data);
    }
    use object::{Object, ObjectSection};
    let elf =
        object::File::parse(&*data).with_context(|| format!("parsing ELF {}", file.display()))?;
    let Some(section) = elf.section_by_name(".BTF") else {
        bail!("{} has no .BTF section", file.display());
    };
    let bytes = section
        .data()
        .with_context(|| format!("reading .BTF of {}", file.display()))?;
    Ok(bytes.to_vec())
}
