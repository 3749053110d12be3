//! `bpfkit load OBJ.o`: load an object into the kernel, attach what its
//! section names say, and print its ring buffer records until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bpfkit::btf::record::{format_text, RecordDecoder};
use bpfkit::object::ObjectSpec;
use bpfkit::{EbpfLoader, PerfBuf, Program, RingBuf};

/// Data pages per CPU of each perf buffer (256 KiB with 4 KiB pages).
const PERF_PAGES: usize = 64;

use crate::tools::{Output, StopSignal};

/// Load a BPF object into the kernel, attach it, and print its events.
#[derive(clap::Args)]
pub struct Args {
    /// A clang-compiled BPF ELF object.
    object: PathBuf,
    /// Set a `.rodata` constant before loading (`const volatile` knobs), as NAME=VALUE.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Decode ring buffer records as this struct from the object's BTF.
    #[arg(long)]
    event_type: Option<String>,
    /// Print records as JSON lines.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds (default: until Ctrl-C or SIGTERM).
    #[arg(short = 'd', long, value_parser = crate::seconds::duration)]
    duration: Option<Duration>,
    /// Pin maps and links under this bpffs directory, as bpftool's `prog
    /// loadall OBJ DIR pinmaps DIR`: map NAME at DIR/NAME (`.bss` at
    /// DIR/bss), reusing a compatible map already pinned there; each link at
    /// DIR/link_PROG. Pinned maps, and programs whose links are pinned, stay
    /// in the kernel after bpfkit exits, until the pins are removed.
    #[arg(long)]
    pin: Option<PathBuf>,
    /// Load and attach only this program (repeatable); the others are not loaded.
    #[arg(long = "prog", value_name = "NAME")]
    progs: Vec<String>,
    /// Do not load this program (repeatable).
    #[arg(long = "skip", value_name = "NAME")]
    skips: Vec<String>,
    /// Set a map's max_entries before loading, as NAME=N (for maps the
    /// object leaves unsized, such as stack trace maps).
    #[arg(long = "map-size", value_name = "NAME=N")]
    map_sizes: Vec<String>,
    /// Set a map's value size in bytes before loading, as NAME=N (a stack
    /// trace map the object leaves unsized holds depth × 8 bytes).
    #[arg(long = "map-value-size", value_name = "NAME=N")]
    map_value_sizes: Vec<String>,
    /// Load only: attach nothing, and exit once loaded.
    #[arg(long)]
    load_only: bool,
}

/// Turns programs off before load: all but `--prog` ones and `--skip` ones.
/// (With no `--prog`, the loader also leaves out the twins and programs this
/// kernel cannot run, each with its reason.)
fn choose_programs(
    spec: &ObjectSpec,
    args: &Args,
    loader: &mut EbpfLoader,
) -> anyhow::Result<Vec<(String, String)>> {
    for name in args.progs.iter().chain(&args.skips) {
        if !spec.programs.contains_key(name) {
            anyhow::bail!(
                "the object has no program `{name}` (it has: {})",
                spec.programs.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut off: Vec<(String, String)> = Vec::new();
    for name in spec.programs.keys() {
        if !args.progs.is_empty() && !args.progs.contains(name) {
            off.push((name.clone(), "not chosen with --prog".into()));
        } else if args.skips.contains(name) {
            off.push((name.clone(), "--skip".into()));
        }
    }
    if off.len() == spec.programs.len() {
        anyhow::bail!("no program left to load: {}", describe(&off));
    }
    for (name, _) in &off {
        loader.autoload(name, false);
    }
    // --prog means: this one, even if the kernel prefers its twin.
    loader.keep_unsupported(!args.progs.is_empty());
    Ok(off)
}

fn describe(off: &[(String, String)]) -> String {
    off.iter()
        .map(|(n, why)| format!("`{n}` ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `--map-size NAME=N` or `--map-value-size NAME=N`, checking that
/// the object has the map.
fn map_size<'a>(spec: &ObjectSpec, option: &str, set: &'a str) -> anyhow::Result<(&'a str, u32)> {
    let (name, n) = set
        .split_once('=')
        .with_context(|| format!("{option} {set}: expected NAME=N"))?;
    let n: u32 = n
        .trim()
        .parse()
        .with_context(|| format!("{option} {set}: `{n}` is not a whole number"))?;
    if !spec.maps.contains_key(name) {
        let names = spec.maps.keys().cloned().collect::<Vec<_>>().join(", ");
        anyhow::bail!("{option} {set}: the object has no map `{name}` (it has: {names})");
    }
    Ok((name, n))
}

fn parse_int(s: &str) -> anyhow::Result<i128> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = match t.strip_prefix("0x") {
        Some(h) => i128::from_str_radix(h, 16),
        None => t.parse::<i128>(),
    }
    .with_context(|| format!("`{s}` is not a number"))?;
    Ok(if neg { -v } else { v })
}

/// Sets a global from `NAME=VALUE`: an integer or `true`/`false`, as the
/// unsigned integer of the variable's size in BTF.
fn apply_set(spec: &ObjectSpec, set: &str, loader: &mut EbpfLoader) -> anyhow::Result<()> {
    let (name, value) = set
        .split_once('=')
        .with_context(|| format!("--set {set}: expected NAME=VALUE"))?;
    let v = match value {
        "true" => 1i128,
        "false" => 0,
        v => parse_int(v).with_context(|| format!("--set {set}"))?,
    };
    let vars = spec.global_variables();
    let var = vars.iter().find(|g| g.name == name).with_context(|| {
        format!(
            "--set {set}: the object has no global `{name}` (it has: {})",
            vars.iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    match var.size {
        1 => loader.set_global(name, &(v as u8)),
        2 => loader.set_global(name, &(v as u16)),
        4 => loader.set_global(name, &(v as u32)),
        8 => loader.set_global(name, &(v as u64)),
        16 => loader.set_global(name, &(v as u128)),
        n => anyhow::bail!("--set {set}: `{name}` is {n} bytes, not an integer"),
    };
    Ok(())
}

/// What bpfkit's own verifier says of the program the kernel rejected:
/// its rejection (instruction, disassembly, C line, reason, state), or that
/// it accepts the program. It checks the program as the kernel saw it, with
/// kconfig values and CO-RE relocations applied when this machine has them.
fn bpfkit_diagnosis(spec: &ObjectSpec, program: &str) -> String {
    // The kernel keeps at most 15 bytes of a program's name (`BPF_OBJ_NAME_LEN`).
    let Some(name) = spec
        .programs
        .keys()
        .find(|n| n.as_str() == program)
        .or_else(|| spec.programs.keys().find(|n| n.starts_with(program)))
    else {
        return format!("bpfkit's verifier: the object has no program `{program}` to check");
    };
    let mut seen = spec.clone();
    if let Ok(config) = bpfkit_kernel::kconfig::kernel_config_for(&seen) {
        // Unset externs only make the diagnosis less precise.
        let _ = seen.apply_kconfig(&config);
    }
    let has_core = !seen.programs[name].core_relos.is_empty();
    if let (true, Ok(vmlinux)) = (has_core, bpfkit_kernel::btf::vmlinux()) {
        let modules = bpfkit_kernel::btf::modules();
        let targets = modules
            .iter()
            .fold(bpfkit_btf::TargetBtfs::new(&vmlinux), |t, m| {
                t.with_module(m)
            });
        if let Err(e) = seen.apply_core(targets) {
            return format!("bpfkit's verifier: not run, CO-RE relocations failed: {e}");
        }
    }
    let prog = &seen.programs[name];
    let verdict = bpfkit_verifier::Verifier::new(prog.kind.prog_type).verify(
        bpfkit_verifier::Program::Object {
            object: &seen,
            program: prog,
        },
        &bpfkit_verifier::VerifyOptions::default(),
    );
    match verdict {
        Err(rejection) => format!("bpfkit's verifier: rejects `{name}` at {rejection}"),
        Ok(v) => format!(
            "bpfkit's verifier: accepts `{name}` ({} instructions processed): the kernel's \
             reason is one bpfkit's verifier does not model",
            v.processed_insns
        ),
    }
}

/// Runs `bpfkit load`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let path = args.object.display().to_string();
    let spec = ObjectSpec::from_file(&args.object).with_context(|| format!("parsing {path}"))?;
    let mut loader = EbpfLoader::new();
    for set in &args.sets {
        apply_set(&spec, set, &mut loader)?;
    }
    for set in &args.map_sizes {
        let (name, n) = map_size(&spec, "--map-size", set)?;
        loader.set_max_entries(name, n);
    }
    for set in &args.map_value_sizes {
        let (name, n) = map_size(&spec, "--map-value-size", set)?;
        loader.set_value_size(name, n);
    }
    let mut left_out = choose_programs(&spec, &args, &mut loader)?;
    if let Some(dir) = &args.pin {
        // Refuse before loading anything rather than leave half a pin set.
        for name in spec.programs.keys() {
            let path = dir.join(format!("link_{name}"));
            if path.exists() && !args.load_only {
                anyhow::bail!(
                    "{} exists: an earlier `bpfkit load --pin` left `{name}` attached; remove \
                     that pin (which detaches it) before attaching it again",
                    path.display()
                );
            }
        }
    }
    // The record type from the object's BTF, or else from its DWARF (clang
    // leaves out of BTF a type only written through a reserved pointer).
    let in_btf = |t: &str| {
        spec.btf
            .as_ref()
            .is_some_and(|b| RecordDecoder::new(b, t).is_ok())
    };
    let dwarf_btf = match &args.event_type {
        Some(t) if !in_btf(t) => {
            let bytes = std::fs::read(&args.object).with_context(|| format!("reading {path}"))?;
            Some(
                bpfkit::object::dwarf::type_btf(&bytes, t)
                    .with_context(|| format!("{path}: reading `{t}` from DWARF"))?
                    .with_context(|| {
                        format!(
                            "--event-type {t}: {path} has no struct, union or typedef `{t}` in its \
                             BTF, nor in DWARF (build the object with -g and keep its debug info)"
                        )
                    })?,
            )
        }
        _ => None,
    };
    let decoder = match &args.event_type {
        Some(t) => {
            let btf = dwarf_btf
                .as_ref()
                .or(spec.btf.as_ref())
                .context("--event-type needs the object's BTF or DWARF")?;
            Some(RecordDecoder::new(btf, t)?)
        }
        None => None,
    };
    if let Some(dir) = &args.pin {
        loader.pin_root(dir).pin_all_maps(true);
    }
    let mut bpf = match loader.load_spec(spec.clone()) {
        Ok(bpf) => bpf,
        Err(bpfkit::Error::Kernel(e @ bpfkit_kernel::Error::Verifier { .. })) => {
            let bpfkit_kernel::Error::Verifier { program, .. } = &e else {
                unreachable!("matched as a verifier rejection above")
            };
            let diagnosis = bpfkit_diagnosis(&spec, program);
            return Err(anyhow::anyhow!("{e}\n{diagnosis}"))
                .with_context(|| format!("loading {path}"));
        }
        Err(e) => return Err(e).with_context(|| format!("loading {path}")),
    };
    left_out.extend(bpf.left_out().iter().cloned());
    let attached = if args.load_only {
        bpfkit::AutoAttached::default()
    } else {
        bpf.auto_attach()
    };
    let links = attached.links;
    let mut out = Output::new(args.json);
    for (name, prog) in bpf.programs() {
        let attach = links
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.description().to_string())
            .unwrap_or_else(|| "not attached".into());
        let k = prog.kernel().context("a kernel program")?;
        out.text(&format!(
            "prog {name}: id {} type {} -> {attach} (verifier: {} insns processed)\n",
            k.id(),
            k.prog_type(),
            k.verifier_stats().verified_insns
        ))?;
    }
    for (name, why) in &left_out {
        eprintln!("bpfkit load: `{name}` not loaded: {why}");
    }
    for (name, why) in &attached.skipped {
        eprintln!("bpfkit load: `{name}` not attached: {why}");
    }
    if links.is_empty() && !args.load_only {
        bpf.unpin_maps();
        anyhow::bail!(
            "{path}: nothing was attached ({} loaded; see above); use --load-only to load without attaching",
            bpf.programs().count()
        );
    }
    for (name, map) in bpf.maps() {
        let id = map.kernel().map(|m| m.id()).unwrap_or_default();
        out.text(&format!("map {name}: id {id} type {}\n", map.map_type()))?;
    }
    if let Some(dir) = &args.pin {
        for name in &bpf.reused_maps() {
            eprintln!(
                "bpfkit load: map `{name}` reused from {}",
                bpfkit::map_pin_path(dir, name).display()
            );
        }
        for (name, link) in &links {
            let at = dir.join(format!("link_{name}"));
            link.pin(&at)?;
            eprintln!(
                "bpfkit load: `{name}` stays attached after exit ({} pinned at {}; remove it to detach)",
                link.description(),
                at.display()
            );
        }
        eprintln!(
            "bpfkit load: maps stay pinned under {} after exit",
            dir.display()
        );
    }
    for (name, link) in &links {
        if let Ok(Program::Iter(iter)) = bpf.program(name) {
            let text = iter.read(link)?;
            out.text(&format!("iter {name}:\n{}", String::from_utf8_lossy(&text)))?;
        }
    }
    if args.load_only {
        return Ok(());
    }
    let of_type = |bpf: &bpfkit::Ebpf, t: bpfkit::abi::MapType| -> Vec<String> {
        bpf.maps()
            .filter(|(_, m)| m.map_type() == t)
            .map(|(n, _)| n.to_string())
            .collect()
    };
    let mut rings = Vec::new();
    for name in of_type(&bpf, bpfkit::abi::MapType::Ringbuf) {
        rings.push((name.clone(), RingBuf::new(bpf.take_map(&name)?)?));
    }
    let mut perf_readers = Vec::new();
    for name in of_type(&bpf, bpfkit::abi::MapType::PerfEventArray) {
        let r = PerfBuf::new(bpf.take_map(&name)?, PERF_PAGES)
            .with_context(|| format!("opening perf buffer `{name}`"))?;
        perf_readers.push((name, r));
    }
    out.header("")?;
    let render = |map: &str, rec: &[u8]| -> (String, serde_json::Value) {
        match &decoder {
            Some(d) => match d.decode(rec) {
                Ok(v) => (
                    format!("{map}: {}", format_text(&v)),
                    serde_json::json!({"map": map, "event": v}),
                ),
                Err(e) => (
                    format!("{map}: undecodable record: {e}"),
                    serde_json::json!({"map": map, "error": e.to_string()}),
                ),
            },
            None => {
                let hex: String = rec
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    format!("{map}: {hex}"),
                    serde_json::json!({"map": map, "data": hex}),
                )
            }
        }
    };
    // With several buffers, each wait is short so that all are served.
    let wait = if rings.len() + perf_readers.len() > 1 {
        20
    } else {
        200
    };
    while !stop.should_stop() {
        let mut failure = None;
        let mut emit = |map: &str, rec: &[u8]| {
            let (text, json) = render(map, rec);
            if let Err(e) = out.record(&text, &json) {
                failure = Some(e);
            }
        };
        let timeout = stop.remaining(Duration::from_millis(wait));
        for (name, r) in &mut rings {
            r.poll(timeout, |rec| emit(name, rec))?;
        }
        for (name, r) in &mut perf_readers {
            r.poll(timeout, |_, rec| emit(name, rec))?;
        }
        if let Some(e) = failure {
            // A closed stdout (a pipe to `head`) ends the run quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e.into());
        }
    }
    for (name, r) in &perf_readers {
        if r.lost() > 0 {
            eprintln!(
                "bpfkit load: perf buffer `{name}`: {} records lost",
                r.lost()
            );
        }
    }
    // Dropping the links and the object detaches and unloads everything.
    drop(links);
    Ok(())
}
