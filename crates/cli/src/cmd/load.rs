//! `bpfkit load OBJ.o`: load an object into the kernel, attach what its
//! section names say, and print its ring buffer records until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bpfkit_btf::record::{format_text, RecordDecoder};
use bpfkit_kernel::{inspect, Collection, LoadOptions, PerfBufReader, RingBufReader};

/// Data pages per CPU of each perf buffer (256 KiB with 4 KiB pages).
const PERF_PAGES: usize = 64;
use bpfkit_object::ObjectSpec;

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

/// Turns programs off before load: all but `--prog` ones, `--skip` ones,
/// and (with no `--prog`) the twins and programs this kernel cannot run.
/// Returns the programs left out with the reason.
fn choose_programs(spec: &mut ObjectSpec, args: &Args) -> anyhow::Result<Vec<(String, String)>> {
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
    spec.programs
        .retain(|name, _| !off.iter().any(|(n, _)| n == name));
    // Among what the user left on, keep the twin this kernel supports.
    if args.progs.is_empty() {
        let planned = bpfkit_kernel::select::plan(spec);
        spec.programs.retain(|name, _| !planned.contains_key(name));
        off.extend(planned);
    }
    if spec.programs.is_empty() {
        anyhow::bail!("no program left to load: {}", describe(&off));
    }
    Ok(off)
}

fn describe(off: &[(String, String)]) -> String {
    off.iter()
        .map(|(n, why)| format!("`{n}` ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies `--map-size NAME=N` (max_entries) or `--map-value-size NAME=N`.
fn apply_map_size(
    spec: &mut ObjectSpec,
    option: &str,
    set: &str,
    field: fn(&mut bpfkit_object::MapSpec) -> &mut u32,
) -> anyhow::Result<()> {
    let (name, n) = set
        .split_once('=')
        .with_context(|| format!("{option} {set}: expected NAME=N"))?;
    let n: u32 = n
        .trim()
        .parse()
        .with_context(|| format!("{option} {set}: `{n}` is not a whole number"))?;
    let names = spec.maps.keys().cloned().collect::<Vec<_>>().join(", ");
    let map = spec.maps.get_mut(name).with_context(|| {
        format!("{option} {set}: the object has no map `{name}` (it has: {names})")
    })?;
    *field(map) = n;
    Ok(())
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

/// Sets a global from `NAME=VALUE` (an integer or `true`/`false`, sized by its BTF type).
fn apply_set(spec: &mut ObjectSpec, set: &str) -> anyhow::Result<()> {
    let (name, value) = set
        .split_once('=')
        .with_context(|| format!("--set {set}: expected NAME=VALUE"))?;
    let v = match value {
        "true" => 1i128,
        "false" => 0,
        v => parse_int(v)?,
    };
    // Try the sizes a C scalar can have; set_global checks the real one.
    let mut last = None;
    for size in [1usize, 2, 4, 8, 16] {
        match spec.set_global(name, &v.to_le_bytes()[..size]) {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains(" bytes, the value ") => last = Some(e),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("--set {set}"))),
        }
    }
    Err(anyhow::anyhow!(
        "--set {set}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Runs `bpfkit load`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = StopSignal::install(args.duration)?;
    let path = args.object.display().to_string();
    let mut spec =
        ObjectSpec::from_file(&args.object).with_context(|| format!("parsing {path}"))?;
    for set in &args.sets {
        apply_set(&mut spec, set)?;
    }
    for set in &args.map_sizes {
        apply_map_size(&mut spec, "--map-size", set, |m| &mut m.max_entries)?;
    }
    for set in &args.map_value_sizes {
        apply_map_size(&mut spec, "--map-value-size", set, |m| &mut m.value_size)?;
    }
    let left_out = choose_programs(&mut spec, &args)?;
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
    let kconfig = bpfkit_kernel::kconfig::kernel_config_for(&spec).context("kconfig externs")?;
    spec.apply_kconfig(&kconfig).context("kconfig externs")?;
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
                bpfkit_object::dwarf::type_btf(&bytes, t)
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
    let opts = LoadOptions {
        pin_root: args.pin.as_deref(),
        pin_all_maps: args.pin.is_some(),
        ..LoadOptions::default()
    };
    let coll = Collection::load(&spec, &opts).with_context(|| format!("loading {path}"))?;
    let (links, skipped) = if args.load_only {
        (Vec::new(), Vec::new())
    } else {
        coll.auto_attach()
    };
    let mut out = Output::new(args.json);
    for (name, prog) in &coll.programs {
        let attach = links
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.description().to_string())
            .unwrap_or_else(|| "not attached".into());
        out.text(&format!(
            "prog {name}: id {} type {} -> {attach} (verifier: {} insns processed)\n",
            inspect::id_of(prog.fd())?,
            prog.prog_type(),
            prog.verifier_stats().verified_insns
        ))?;
    }
    for (name, why) in &left_out {
        eprintln!("bpfkit load: `{name}` not loaded: {why}");
    }
    for (name, why) in &skipped {
        eprintln!("bpfkit load: `{name}` not attached: {why}");
    }
    if links.is_empty() && !args.load_only {
        coll.unpin_maps();
        anyhow::bail!(
            "{path}: nothing was attached ({} loaded; see above); use --load-only to load without attaching",
            coll.programs.len()
        );
    }
    for (name, map) in &coll.maps {
        out.text(&format!(
            "map {name}: id {} type {}\n",
            inspect::id_of(map.fd())?,
            map.map_type()
        ))?;
    }
    if let Some(dir) = &args.pin {
        for name in &coll.reused_maps {
            eprintln!(
                "bpfkit load: map `{name}` reused from {}",
                bpfkit_kernel::collection::map_pin_path(dir, name).display()
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
        if coll.programs[name.as_str()].expected_attach_type()
            == Some(bpfkit_abi::AttachType::TraceIter)
        {
            let text = bpfkit_kernel::link::read_iter(link)?;
            out.text(&format!("iter {name}:\n{}", String::from_utf8_lossy(&text)))?;
        }
    }
    if args.load_only {
        return Ok(());
    }
    let of_type = |t: bpfkit_abi::MapType| -> Vec<&String> {
        coll.maps
            .iter()
            .filter(|(_, m)| m.map_type() == t)
            .map(|(n, _)| n)
            .collect()
    };
    let ringbufs = of_type(bpfkit_abi::MapType::Ringbuf);
    let perfbufs = of_type(bpfkit_abi::MapType::PerfEventArray);
    let mut reader = RingBufReader::new()?;
    for name in &ringbufs {
        reader.add(&coll.maps[name.as_str()])?;
    }
    let mut perf_readers = Vec::new();
    for name in &perfbufs {
        let r = PerfBufReader::new(&coll.maps[name.as_str()], PERF_PAGES)
            .with_context(|| format!("opening perf buffer `{name}`"))?;
        perf_readers.push((name.as_str(), r));
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
    // With perf buffers too, the ring poll is short so both are served.
    let wait = if perf_readers.is_empty() { 200 } else { 20 };
    while !stop.should_stop() {
        let mut failure = None;
        let mut emit = |map: &str, rec: &[u8]| {
            let (text, json) = render(map, rec);
            if let Err(e) = out.record(&text, &json) {
                failure = Some(e);
            }
        };
        if ringbufs.is_empty() && !perf_readers.is_empty() {
            std::thread::sleep(stop.remaining(Duration::from_millis(wait)));
        } else {
            reader.poll(
                stop.remaining(Duration::from_millis(wait)),
                &mut |ring, rec| emit(ringbufs[ring], rec),
            )?;
        }
        for (name, r) in &mut perf_readers {
            r.consume(&mut |_, rec| emit(name, rec));
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
    // Dropping the links and the collection detaches and unloads everything.
    drop(links);
    Ok(())
}
