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
    /// List the BTF objects the kernel holds (vmlinux, modules, programs').
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Print every type, as a compilable C header or bpftool's raw listing.
    Dump {
        /// A raw BTF file or an ELF object with a `.BTF` section, or
        /// `id N` for a BTF object in the kernel (as `bpftool btf dump id N`).
        #[arg(num_args = 1..=2, required = true)]
        source: Vec<String>,
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
        BtfCommand::List { json } => list(json),
        BtfCommand::Dump {
            source,
            format,
            base,
        } => {
            let (btf, file) = match &source[..] {
                [kw, id] if kw == "id" => {
                    let id: u32 = id
                        .parse()
                        .with_context(|| format!("`{id}` is not a BTF object id"))?;
                    (load_by_id(id)?, PathBuf::from(format!("BTF id {id}")))
                }
                [kw, file] if kw == "file" => {
                    (load(Path::new(file), base.as_deref())?, PathBuf::from(file))
                }
                [file] => (load(Path::new(file), base.as_deref())?, PathBuf::from(file)),
                _ => bail!("expected FILE, `file FILE` or `id N`"),
            };
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

/// `bpfkit btf list`.
fn list(json: bool) -> Result<()> {
    let btfs = bpfkit_kernel::inspect::btfs();
    if json {
        let v: Vec<_> = btfs
            .iter()
            .map(|b| serde_json::json!({"id": b.id, "size": b.size, "kernel": b.kernel_btf, "name": b.name}))
            .collect();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for b in &btfs {
        let name = if b.name.is_empty() {
            String::new()
        } else {
            format!("name [{}]  ", b.name)
        };
        outln!("{}: {name}size {}B", b.id, b.size);
    }
    Ok(())
}

/// A BTF object of the kernel by id; module BTF is split on vmlinux.
fn load_by_id(id: u32) -> Result<Btf> {
    use bpfkit_kernel::sys::{fd_by_id, IdKind};
    use std::os::fd::AsFd;
    let fd = fd_by_id(IdKind::Btf, id, 0).with_context(|| format!("BTF object id {id}"))?;
    let info = bpfkit_kernel::info::BtfInfo::from_fd(fd.as_fd())?;
    let bytes = bpfkit_kernel::info::btf_bytes(fd.as_fd())?;
    let btf = if info.kernel_btf && info.name != "vmlinux" {
        Btf::parse_split(&bytes, bpfkit_kernel::btf::vmlinux()?)
    } else {
        Btf::from_vec(bytes)
    };
    btf.with_context(|| format!("parsing BTF object id {id}"))
}

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
