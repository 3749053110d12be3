//! `bpfkit run`: run raw eBPF bytecode, or a program of a BPF object, in the
//! userspace VM.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use bpfkit_abi::MapType;
use bpfkit_object::ObjectSpec;
use bpfkit_vm::{Map, Program, TestRun, Vm};

use super::conformance::Engine;

/// Run raw eBPF bytecode or a program of a BPF object in the userspace VM.
#[derive(clap::Args)]
pub struct Args {
    /// Raw little-endian bytecode, or a clang-compiled BPF ELF object.
    file: PathBuf,
    /// Raw bytecode: memory passed in r1 (its length in r2): hex bytes, or @FILE.
    #[arg(long)]
    mem: Option<String>,
    /// Object: the program to run (may be omitted when there is only one).
    #[arg(long)]
    prog: Option<String>,
    /// Object: packet data for XDP and skb programs (a file).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Object: context bytes (`xdp_md`/`__sk_buff` fields, or a raw context; a file).
    #[arg(long)]
    ctx: Option<PathBuf>,
    /// Object: how many times to run (the mean time is printed).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Object: BTF to apply CO-RE relocations against (default: the running kernel's).
    #[arg(long)]
    btf: Option<PathBuf>,
    /// Stop after this many instructions (the VM's default ends a runaway
    /// loop in well under a second; raise it for long-running programs).
    #[arg(long, default_value_t = bpfkit_vm::DEFAULT_BUDGET)]
    budget: u64,
    /// Raw bytecode: print the memory after the run, as hex.
    #[arg(long)]
    show_mem: bool,
    /// Execution engine (the JIT by default where it has a back end).
    #[arg(long, value_enum, default_value_t = Engine::native())]
    engine: Engine,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn memory(spec: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match spec {
        None => Ok(Vec::new()),
        Some(s) if s.starts_with('@') => {
            std::fs::read(&s[1..]).with_context(|| format!("reading memory from {}", &s[1..]))
        }
        Some(s) => super::parse_hex(s, "--mem"),
    }
}

/// Runs the program.
pub fn run(args: Args) -> anyhow::Result<()> {
    let code =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    if code.starts_with(b"\x7fELF") {
        return run_object(&args, &code);
    }
    let mut program =
        Program::from_bytes(&code).with_context(|| format!("loading {}", args.file.display()))?;
    args.engine
        .prepare(&mut program)
        .map_err(|e| anyhow::anyhow!("compiling {}: {e}", args.file.display()))?;
    let mut mem = memory(args.mem.as_deref())?;
    let mut vm = Vm::new();
    vm.set_budget(args.budget);
    let r0 = vm
        .run(&program, &mut mem)
        .with_context(|| format!("running {}", args.file.display()))?;
    outln!("{r0:#x}");
    if args.show_mem {
        outln!("{}", hex(&mem));
    }
    Ok(())
}

/// Every entry of a map (ring buffers and queues are not iterable).
fn entries(map: &Map) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut key: Option<Vec<u8>> = None;
    while let Ok(Some(next)) = map.next_key(key.as_deref()) {
        if let Ok(Some(v)) = map.lookup(&next) {
            out.insert(next.clone(), v);
        }
        key = Some(next);
    }
    out
}

fn run_object(args: &Args, bytes: &[u8]) -> anyhow::Result<()> {
    let file = args.file.display();
    let mut spec = ObjectSpec::parse(bytes).with_context(|| format!("parsing {file}"))?;
    let name = match &args.prog {
        Some(p) => p.clone(),
        None if spec.programs.len() == 1 => {
            spec.programs.keys().next().cloned().unwrap_or_default()
        }
        None => bail!(
            "{file} has {} programs; choose one with --prog ({})",
            spec.programs.len(),
            spec.programs.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    if !spec.programs.contains_key(&name) {
        bail!("{file} has no program `{name}`");
    }
    if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
        let btf_path = args
            .btf
            .clone()
            .unwrap_or_else(|| "/sys/kernel/btf/vmlinux".into());
        match std::fs::read(&btf_path) {
            Ok(b) => {
                let target = bpfkit_btf::Btf::from_vec(b)
                    .with_context(|| format!("parsing {}", btf_path.display()))?;
                spec.apply_core(bpfkit_btf::TargetBtfs::new(&target))?;
            }
            Err(e) if args.btf.is_some() => bail!("reading {}: {e}", btf_path.display()),
            Err(_) => eprintln!(
                "note: no BTF at {}; CO-RE relocations keep their compiled values",
                btf_path.display()
            ),
        }
    }
    // `run` runs any program, the verifier's refusals included: the VM's
    // run-time checks end a bad access with its error. kconfig is applied
    // by the loader.
    let bpf = bpfkit::EbpfLoader::new()
        .backend(bpfkit::Backend::Vm)
        .engine(args.engine.library())
        .verify(false)
        .load_spec(spec)
        .with_context(|| format!("loading {file}"))?;
    let mut vm = bpf.vm().context("the VM backend")?;
    vm.set_budget(args.budget);
    let program = bpf
        .program(&name)?
        .vm_program()
        .context("a VM program")?
        .clone();
    let vm_maps: Vec<(String, Map)> = bpf
        .maps()
        .filter_map(|(n, m)| Some((n.to_string(), m.vm()?.clone())))
        .collect();
    let read = |p: &Option<PathBuf>| -> anyhow::Result<Vec<u8>> {
        match p {
            Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())),
            None => Ok(Vec::new()),
        }
    };
    let input = TestRun {
        data_in: read(&args.data)?,
        ctx_in: read(&args.ctx)?,
        repeat: args.repeat,
    };
    let before: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>> = vm_maps
        .iter()
        .map(|(n, m)| (n.clone(), entries(m)))
        .collect();
    let result = vm
        .test_run(&program, &input)
        .with_context(|| format!("running `{name}`"))?;
    outln!("retval: {} ({:#x})", result.retval as i64, result.retval);
    outln!(
        "duration: {} ns (mean of {})",
        result.duration.as_nanos(),
        args.repeat.max(1)
    );
    if !input.data_in.is_empty() {
        outln!("data out: {}", hex(&result.data_out));
    }
    for line in vm.take_trace() {
        outln!("trace: {}", line.trim_end());
    }
    for (map_name, map) in &vm_maps {
        match map.def().map_type {
            MapType::Ringbuf => {
                for rec in map.drain_ringbuf().unwrap_or_default() {
                    outln!("map {map_name}: record {}", hex(&rec));
                }
            }
            _ => {
                let after = entries(map);
                let old = before.get(map_name);
                for (k, v) in &after {
                    if old.and_then(|o| o.get(k)) != Some(v) {
                        outln!("map {map_name}: [{}] = {}", hex(k), hex(v));
                    }
                }
            }
        }
    }
    Ok(())
}
