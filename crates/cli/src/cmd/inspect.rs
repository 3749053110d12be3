//! `bpfkit prog|map|link list`: what the kernel holds, as bpftool shows it
//! (with `-j`, JSON whose field names follow bpftool's).

use bpfkit_kernel::inspect;
use serde_json::json;

/// What to list.
#[derive(clap::Subcommand)]
pub enum ListCommand {
    /// List every object of this kind.
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
}

/// `enum bpf_link_type` names, as bpftool prints them.
fn link_type_name(t: u32) -> String {
    const NAMES: [&str; 15] = [
        "unspec",
        "raw_tracepoint",
        "tracing",
        "cgroup",
        "iter",
        "netns",
        "xdp",
        "perf_event",
        "kprobe_multi",
        "struct_ops",
        "netfilter",
        "tcx",
        "uprobe_multi",
        "netkit",
        "sockmap",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| t.to_string(), |n| n.to_string())
}

fn type_name<T: std::fmt::Display>(t: Option<T>) -> String {
    t.map_or_else(|| "unknown".to_string(), |t| t.to_string())
}

/// A program's fields under bpftool's JSON names.
pub fn program_json(p: &inspect::ProgramInfo) -> serde_json::Value {
    json!({
        "id": p.id, "type": type_name(p.prog_type), "name": p.name, "tag": p.tag,
        "loaded_at": p.load_time_ns, "uid": p.uid, "bytes_xlated": p.bytes_xlated,
        "jited": p.bytes_jited > 0, "bytes_jited": p.bytes_jited, "map_ids": p.map_ids,
        "verified_insns": p.verified_insns,
    })
}

/// A program as `bpftool prog show` prints it.
pub fn program_text(p: &inspect::ProgramInfo) -> String {
    let maps: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
    format!(
        "{}: {}  name {}  tag {}\n\tuid {}  xlated {}B  jited {}B  map_ids {}\n",
        p.id,
        type_name(p.prog_type),
        p.name,
        p.tag,
        p.uid,
        p.bytes_xlated,
        p.bytes_jited,
        if maps.is_empty() {
            "-".into()
        } else {
            maps.join(",")
        }
    )
}

/// `bpfkit prog list`.
pub fn progs(json: bool) -> anyhow::Result<()> {
    let progs = inspect::programs();
    if json {
        let v: Vec<_> = progs.iter().map(program_json).collect();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for p in &progs {
        out!("{}", program_text(p));
    }
    Ok(())
}

/// A map's fields under bpftool's JSON names.
pub fn map_json(m: &inspect::MapInfo) -> serde_json::Value {
    json!({
        "id": m.id, "type": type_name(m.map_type), "name": m.name, "flags": m.flags,
        "bytes_key": m.key_size, "bytes_value": m.value_size, "max_entries": m.max_entries,
    })
}

/// A map as `bpftool map show` prints it.
pub fn map_text(m: &inspect::MapInfo) -> String {
    format!(
        "{}: {}  name {}  flags {:#x}\n\tkey {}B  value {}B  max_entries {}\n",
        m.id,
        type_name(m.map_type),
        m.name,
        m.flags,
        m.key_size,
        m.value_size,
        m.max_entries
    )
}

/// `bpfkit map list`.
pub fn maps(json: bool) -> anyhow::Result<()> {
    let maps = inspect::maps();
    if json {
        let v: Vec<_> = maps.iter().map(map_json).collect();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for m in &maps {
        out!("{}", map_text(m));
    }
    Ok(())
}

/// `bpfkit link list`.
pub fn links(cmd: ListCommand) -> anyhow::Result<()> {
    let ListCommand::List { json } = cmd;
    let links = inspect::links();
    if json {
        let v: Vec<_> = links
            .iter()
            .map(|l| json!({"id": l.id, "type": link_type_name(l.link_type), "prog_id": l.prog_id}))
            .collect();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for l in &links {
        outln!(
            "{}: {}  prog {}",
            l.id,
            link_type_name(l.link_type),
            l.prog_id
        );
    }
    Ok(())
}
