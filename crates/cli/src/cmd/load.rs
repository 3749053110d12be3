//! `bpfkit load OBJ.o`: load an object into the kernel, attach what its
//! section names say, and print its ring buffer records until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bpfkit::record::{format_text, RecordDecoder};
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
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Pin maps and links under this bpffs directory.
    #[arg(long)]
    pin: Option<PathBuf>,
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
    let stop = StopSignal::install(args.duration.map(Duration::from_secs_f64))?;
    let path = args.object.display().to_string();
    let mut spec =
        ObjectSpec::from_file(&args.object).with_context(|| format!("parsing {path}"))?;
    for set in &args.sets {
        apply_set(&mut spec, set)?;
    }
    spec.apply_kconfig(&bpfkit_kernel::fs::kernel_config())
        .context("kconfig externs")?;
    let decoder = match &args.event_type {
        Some(t) => {
            let btf = spec
                .btf
                .as_ref()
                .context("--event-type needs the object's BTF")?;
            Some(RecordDecoder::new(btf, t)?)
        }
        None => None,
    };
    let coll = Collection::load(&spec, &LoadOptions::default())
        .with_context(|| format!("loading {path}"))?;
    let (links, skipped) = coll.auto_attach();
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
    for (name, why) in &skipped {
        eprintln!("bpfkit load: `{name}` not attached: {why}");
    }
    for (name, map) in &coll.maps {
        out.text(&format!(
            "map {name}: id {} type {}\n",
            inspect::id_of(map.fd())?,
            map.map_type()
        ))?;
    }
    if let Some(dir) = &args.pin {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, map) in &coll.maps {
            map.pin(&dir.join(name.trim_start_matches('.')))?;
        }
        for (name, link) in &links {
            link.pin(&dir.join(format!("link_{name}")))?;
        }
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
