//! `bpfkit load OBJ.o`: load an object into the kernel, attach what its
//! section names say, and print its ring buffer records until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bpfkit::record::{format_text, RecordDecoder};
use bpfkit_kernel::{inspect, Collection, LoadOptions, RingBufReader};
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
    #[arg(long)]
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
            "prog {name}: id {} type {} -> {attach}\n",
            inspect::id_of(prog.fd())?,
            prog.prog_type()
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
    let ringbufs: Vec<&String> = coll
        .maps
        .iter()
        .filter(|(_, m)| m.map_type() == bpfkit_abi::MapType::Ringbuf)
        .map(|(n, _)| n)
        .collect();
    let mut reader = RingBufReader::new()?;
    for name in &ringbufs {
        reader.add(&coll.maps[name.as_str()])?;
    }
    out.header("")?;
    while !stop.should_stop() {
        let mut failure = None;
        reader.poll(
            stop.remaining(Duration::from_millis(200)),
            &mut |ring, rec| {
                let map = ringbufs[ring];
                let (text, json) = match &decoder {
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
                };
                if let Err(e) = out.record(&text, &json) {
                    failure = Some(e);
                }
            },
        )?;
        if let Some(e) = failure {
            // A closed stdout (a pipe to `head`) ends the run quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e.into());
        }
    }
    // Dropping the links and the collection detaches and unloads everything.
    drop(links);
    Ok(())
}
