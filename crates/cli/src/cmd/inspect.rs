//! `bpfkit prog|map|link list`, `link show`: what the kernel holds, as
//! bpftool shows it (with `-j`, JSON whose field names follow bpftool's),
//! and the object handles (`id ID`, `tag TAG`, `name NAME`, `pinned FILE`)
//! the prog and map commands take.

use bpfkit_kernel::inspect;
use serde_json::json;

/// What to do with links. LINK is `id ID`, `pinned FILE` or a bare id, as
/// in bpftool.
#[derive(clap::Subcommand)]
pub enum ListCommand {
    /// List every link.
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show links: `show [LINK]`.
    Show {
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The link handle (none: every link).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
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

/// A program's fields under bpftool's JSON names, each present when
/// bpftool prints it (print_prog_header_json, print_prog_json); bpfkit
/// adds `verified_insns`.
pub fn program_json(p: &inspect::ProgramInfo) -> serde_json::Value {
    let mut v = serde_json::Map::new();
    v.insert("id".into(), p.id.into());
    v.insert("type".into(), type_name(p.prog_type).into());
    if !p.name.is_empty() {
        v.insert("name".into(), p.full_name.clone().into());
    }
    v.insert("tag".into(), p.tag.clone().into());
    v.insert("gpl_compatible".into(), p.gpl_compatible.into());
    if p.run_time_ns != 0 {
        v.insert("run_time_ns".into(), p.run_time_ns.into());
        v.insert("run_cnt".into(), p.run_cnt.into());
    }
    if p.recursion_misses != 0 {
        v.insert("recursion_misses".into(), p.recursion_misses.into());
    }
    if let Some(t) = p.loaded_at_unix_secs() {
        v.insert("loaded_at".into(), t.into());
        v.insert("uid".into(), p.uid.into());
    }
    v.insert("bytes_xlated".into(), p.bytes_xlated.into());
    v.insert("jited".into(), (p.bytes_jited > 0).into());
    if p.bytes_jited > 0 {
        v.insert("bytes_jited".into(), p.bytes_jited.into());
    }
    if let Some(m) = p.memlock {
        v.insert("bytes_memlock".into(), m.into());
    }
    if !p.map_ids.is_empty() {
        v.insert("map_ids".into(), p.map_ids.clone().into());
    }
    if p.btf_id != 0 {
        v.insert("btf_id".into(), p.btf_id.into());
    }
    v.insert("verified_insns".into(), p.verified_insns.into());
    serde_json::Value::Object(v)
}

/// `unix_secs` in the local time zone as strftime's `%FT%T%z` writes it
/// (bpftool's text `loaded_at`).
pub fn local_time_text(unix_secs: i64) -> String {
    let offset = bpfkit_kernel::time::local_utc_offset_secs(unix_secs);
    let t = unix_secs + offset;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (sign, off) = if offset < 0 {
        ('-', -offset)
    } else {
        ('+', offset)
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{sign}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 3600,
        off / 60 % 60
    )
}

/// A program as `bpftool prog show` prints it (print_prog_plain).
pub fn program_text(p: &inspect::ProgramInfo) -> String {
    let mut s = format!("{}: {}  ", p.id, type_name(p.prog_type));
    if !p.name.is_empty() {
        s.push_str(&format!("name {}  ", p.full_name));
    }
    s.push_str(&format!("tag {}", p.tag));
    if p.gpl_compatible {
        s.push_str("  gpl");
    }
    if p.run_time_ns != 0 {
        s.push_str(&format!(
            " run_time_ns {} run_cnt {}",
            p.run_time_ns, p.run_cnt
        ));
    }
    if p.recursion_misses != 0 {
        s.push_str(&format!(" recursion_misses {}", p.recursion_misses));
    }
    s.push('\n');
    if let Some(t) = p.loaded_at_unix_secs() {
        s.push_str(&format!(
            "\tloaded_at {}  uid {}\n",
            local_time_text(t),
            p.uid
        ));
    }
    s.push_str(&format!("\txlated {}B", p.bytes_xlated));
    if p.bytes_jited > 0 {
        s.push_str(&format!("  jited {}B", p.bytes_jited));
    } else {
        s.push_str("  not jited");
    }
    if let Some(m) = p.memlock {
        s.push_str(&format!("  memlock {m}B"));
    }
    if !p.map_ids.is_empty() {
        let maps: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
        s.push_str(&format!("  map_ids {}", maps.join(",")));
    }
    if p.btf_id != 0 {
        s.push_str(&format!("\n\tbtf_id {}", p.btf_id));
    }
    s.push('\n');
    s
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

/// A map's fields under bpftool's JSON names, each present when bpftool
/// prints it (show_map_close_json).
pub fn map_json(m: &inspect::MapInfo) -> serde_json::Value {
    let mut v = serde_json::Map::new();
    v.insert("id".into(), m.id.into());
    v.insert("type".into(), type_name(m.map_type).into());
    if !m.name.is_empty() {
        v.insert("name".into(), m.name.clone().into());
    }
    v.insert("flags".into(), m.flags.into());
    v.insert("bytes_key".into(), m.key_size.into());
    v.insert("bytes_value".into(), m.value_size.into());
    v.insert("max_entries".into(), m.max_entries.into());
    if let Some(b) = m.memlock {
        v.insert("bytes_memlock".into(), b.into());
    }
    if m.map_type == Some(bpfkit_abi::MapType::ProgArray) {
        if let Some(t) = m.owner_prog_type {
            let name = bpfkit_abi::ProgramType::from_u32(t);
            v.insert(
                "owner_prog_type".into(),
                name.map_or_else(|| t.into(), |n| n.name().into()),
            );
        }
        if let Some(j) = m.owner_jited {
            v.insert("owner_jited".into(), j.into());
        }
    }
    v.insert("frozen".into(), u32::from(m.frozen.unwrap_or(false)).into());
    if m.btf_id != 0 {
        v.insert("btf_id".into(), m.btf_id.into());
    }
    serde_json::Value::Object(v)
}

/// A map as `bpftool map show` prints it (show_map_close_plain).
pub fn map_text(m: &inspect::MapInfo) -> String {
    let mut s = format!("{}: {}  ", m.id, type_name(m.map_type));
    if !m.name.is_empty() {
        s.push_str(&format!("name {}  ", m.name));
    }
    s.push_str(&format!(
        "flags {:#x}\n\tkey {}B  value {}B  max_entries {}",
        m.flags, m.key_size, m.value_size, m.max_entries
    ));
    if let Some(b) = m.memlock {
        s.push_str(&format!("  memlock {b}B"));
    }
    let frozen = m.frozen.unwrap_or(false);
    if m.btf_id != 0 || frozen {
        s.push_str("\n\t");
    }
    if m.btf_id != 0 {
        s.push_str(&format!("btf_id {}", m.btf_id));
    }
    if frozen {
        s.push_str(if m.btf_id != 0 { "  frozen" } else { "frozen" });
    }
    s.push('\n');
    s
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

/// `enum bpf_attach_type` by name, as bpftool prints it.
fn attach_type_name(t: u32) -> serde_json::Value {
    bpfkit_abi::AttachType::from_u32(t).map_or_else(|| t.into(), |a| a.name().into())
}

/// A link's fields under bpftool's JSON names (show_link_close_json).
pub fn link_json(l: &inspect::LinkInfo) -> serde_json::Value {
    use bpfkit_kernel::info::LinkTarget;
    let mut v = json!({"id": l.id, "type": link_type_name(l.link_type), "prog_id": l.prog_id});
    match &l.target {
        LinkTarget::RawTracepoint { tp_name } => v["tp_name"] = tp_name.clone().into(),
        LinkTarget::Tracing {
            attach_type,
            target_obj_id,
            target_btf_id,
        } => {
            // bpftool names the attached program's type too.
            let prog_type =
                bpfkit_kernel::sys::fd_by_id(bpfkit_kernel::sys::IdKind::Prog, l.prog_id, 0)
                    .ok()
                    .and_then(|fd| {
                        inspect::ProgramInfo::from_fd(std::os::fd::AsFd::as_fd(&fd)).ok()
                    })
                    .map(|p| type_name(p.prog_type));
            if let Some(t) = prog_type {
                v["prog_type"] = t.into();
            }
            v["attach_type"] = attach_type_name(*attach_type);
            v["target_obj_id"] = (*target_obj_id).into();
            v["target_btf_id"] = (*target_btf_id).into();
        }
        LinkTarget::Cgroup {
            cgroup_id,
            attach_type,
        } => {
            v["attach_type"] = attach_type_name(*attach_type);
            v["cgroup_id"] = (*cgroup_id).into();
        }
        LinkTarget::Netns {
            netns_ino,
            attach_type,
        } => {
            v["netns_ino"] = (*netns_ino).into();
            v["attach_type"] = attach_type_name(*attach_type);
        }
        LinkTarget::Other => {}
    }
    v
}

/// A link as `bpftool link list` prints it (show_link_close_plain).
pub fn link_text(l: &inspect::LinkInfo) -> String {
    let v = link_json(l);
    let mut s = format!(
        "{}: {}  prog {}  ",
        l.id,
        link_type_name(l.link_type),
        l.prog_id
    );
    let field = |k: &str| match &v[k] {
        serde_json::Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    if let Some(tp) = v.get("tp_name") {
        s.push_str(&format!("\n\ttp '{}'  ", tp.as_str().unwrap_or_default()));
    } else if v.get("target_obj_id").is_some() {
        s.push_str(&format!(
            "\n\tprog_type {}  attach_type {}  \n\ttarget_obj_id {}  target_btf_id {}  ",
            field("prog_type"),
            field("attach_type"),
            field("target_obj_id"),
            field("target_btf_id")
        ));
    } else if v.get("cgroup_id").is_some() {
        s.push_str(&format!(
            "\n\tcgroup_id {}  attach_type {}  ",
            field("cgroup_id"),
            field("attach_type")
        ));
    } else if v.get("netns_ino").is_some() {
        s.push_str(&format!(
            "\n\tnetns_ino {}  attach_type {}  ",
            field("netns_ino"),
            field("attach_type")
        ));
    }
    s.push('\n');
    s
}

/// `bpfkit link list`.
pub fn links(cmd: ListCommand) -> anyhow::Result<()> {
    let (json, links) = match cmd {
        ListCommand::List { json } => (json, inspect::links()),
        ListCommand::Show { json, mut words } => {
            let json = take_json(&mut words) || json;
            if words.is_empty() {
                (json, inspect::links())
            } else {
                let (sel, rest) = parse_selector(&words, inspect::ObjectKind::Link)?;
                no_more(rest)?;
                let fd = open_one(inspect::ObjectKind::Link, &sel)?;
                let link = inspect::LinkInfo::from_fd(std::os::fd::AsFd::as_fd(&fd))?;
                // One link prints as an object, as bpftool's `link show LINK` does.
                if json {
                    outln!("{}", link_json(&link));
                } else {
                    out!("{}", link_text(&link));
                }
                return Ok(());
            }
        }
    };
    if json {
        let v: Vec<_> = links.iter().map(link_json).collect();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for l in &links {
        out!("{}", link_text(l));
    }
    Ok(())
}

/// What an object of `kind` is called in messages.
fn kind_name(kind: inspect::ObjectKind) -> &'static str {
    match kind {
        inspect::ObjectKind::Program => "program",
        inspect::ObjectKind::Map => "map",
        inspect::ObjectKind::Link => "link",
        inspect::ObjectKind::Btf => "BTF object",
    }
}

/// Takes `-j`/`--json` out of `words`, wherever it is (bpftool accepts it
/// anywhere on the line); says whether it was there.
pub fn take_json(words: &mut Vec<String>) -> bool {
    let before = words.len();
    words.retain(|w| w != "-j" && w != "--json");
    words.len() != before
}

/// Parses the object handle at the front of `words` as bpftool's
/// `PROG := { id ID | pinned FILE | tag TAG | name NAME }` (and `MAP`, which
/// has no tag), or a bare id; returns it and the words after it.
pub fn parse_selector(
    words: &[String],
    kind: inspect::ObjectKind,
) -> anyhow::Result<(inspect::Selector, &[String])> {
    use anyhow::{bail, Context};
    use inspect::{ObjectKind, Selector};
    let what = kind_name(kind);
    let handles = match kind {
        ObjectKind::Program => "`id ID`, `tag TAG`, `name NAME` or `pinned FILE`",
        ObjectKind::Map => "`id ID`, `name NAME` or `pinned FILE`",
        _ => "`id ID` or `pinned FILE`",
    };
    let Some(first) = words.first() else {
        bail!("no {what} given: expected {handles}");
    };
    if let Ok(id) = first.parse::<u32>() {
        return Ok((Selector::Id(id), &words[1..]));
    }
    let arg = || {
        words
            .get(1)
            .with_context(|| format!("`{first}` needs a value: expected {handles}"))
    };
    let sel = match first.as_str() {
        "id" => {
            let v = arg()?;
            Selector::Id(
                v.parse()
                    .with_context(|| format!("{what} id `{v}` is not a number"))?,
            )
        }
        "tag" if kind == ObjectKind::Program => {
            let v = arg()?;
            let bytes = super::parse_hex(v, "tag").ok().filter(|b| b.len() == 8);
            let bytes =
                bytes.with_context(|| format!("tag `{v}` is not 16 hex digits (8 bytes)"))?;
            let mut tag = [0u8; 8];
            tag.copy_from_slice(&bytes);
            Selector::Tag(tag)
        }
        "name" if matches!(kind, ObjectKind::Program | ObjectKind::Map) => {
            let v = arg()?;
            // The kernel keeps BPF_OBJ_NAME_LEN - 1 bytes of a name, and
            // handles match on those (bpftool's map_parse_fds refuses
            // longer map names; a longer program name cannot match).
            if kind == ObjectKind::Map && v.len() > 15 {
                bail!("map name `{v}` is longer than the kernel's 15 bytes");
            }
            Selector::Name(v.clone())
        }
        "pinned" => Selector::Pinned(arg()?.into()),
        other => bail!("expected {handles}, not `{other}`"),
    };
    Ok((sel, &words[2..]))
}

/// Opens every object `sel` names; none is an error naming the handle.
pub fn open_all(
    kind: inspect::ObjectKind,
    sel: &inspect::Selector,
) -> anyhow::Result<Vec<std::os::fd::OwnedFd>> {
    let fds = inspect::open_matching(kind, sel)?;
    if fds.is_empty() {
        anyhow::bail!("no {} matches {sel}", kind_name(kind));
    }
    Ok(fds)
}

/// Opens the one object `sel` names: several matches are an error, as in
/// bpftool's `prog_parse_fd`/`map_parse_fd` ("several ... match this handle").
pub fn open_one(
    kind: inspect::ObjectKind,
    sel: &inspect::Selector,
) -> anyhow::Result<std::os::fd::OwnedFd> {
    let mut fds = open_all(kind, sel)?;
    if fds.len() > 1 {
        anyhow::bail!("several {}s ({}) match {sel}", kind_name(kind), fds.len());
    }
    Ok(fds.remove(0))
}

/// Fails on words left after a complete command.
pub fn no_more(rest: &[String]) -> anyhow::Result<()> {
    match rest.first() {
        Some(w) => anyhow::bail!("unexpected `{w}`"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inspect::{ObjectKind, Selector};

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn handles_parse_as_bpftool_spells_them() {
        let prog = ObjectKind::Program;
        let w = words("id 7 key 1");
        let (sel, rest) = parse_selector(&w, prog).unwrap();
        assert_eq!((sel, rest), (Selector::Id(7), &w[2..]));
        let w = words("7");
        assert_eq!(parse_selector(&w, prog).unwrap().0, Selector::Id(7));
        let w = words("tag 0fcd0509694908ac");
        assert_eq!(
            parse_selector(&w, prog).unwrap().0,
            Selector::Tag([0x0f, 0xcd, 0x05, 0x09, 0x69, 0x49, 0x08, 0xac])
        );
        let w = words("name count_getpid");
        assert_eq!(
            parse_selector(&w, prog).unwrap().0,
            Selector::Name("count_getpid".into())
        );
        let w = words("pinned /sys/fs/bpf/x");
        assert_eq!(
            parse_selector(&w, ObjectKind::Map).unwrap().0,
            Selector::Pinned("/sys/fs/bpf/x".into())
        );
        for (bad, kind, why) in [
            ("", prog, "no program given"),
            ("id", prog, "`id` needs a value"),
            ("id x", prog, "program id `x` is not a number"),
            ("tag 12", prog, "not 16 hex digits"),
            ("tag 0fcd0509694908ac", ObjectKind::Map, "not `tag`"),
            ("name sixteen_chars_xx", ObjectKind::Map, "longer than"),
            ("bogus 1", prog, "not `bogus`"),
            (
                "name x",
                ObjectKind::Link,
                "expected `id ID` or `pinned FILE`, not `name`",
            ),
        ] {
            let w = words(bad);
            let err = parse_selector(&w, kind).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn load_times_print_as_dates() {
        // The machine's zone may not be UTC: compare the clock part only
        // where it is, and the shape everywhere.
        let text = local_time_text(1_796_117_161);
        assert_eq!(text.len(), "2026-12-01T09:26:01+0000".len(), "{text}");
        if bpfkit_kernel::time::local_utc_offset_secs(1_796_117_161) == 0 {
            assert_eq!(text, "2026-12-01T09:26:01+0000");
            assert_eq!(local_time_text(951_782_400), "2000-02-29T00:00:00+0000");
            assert_eq!(local_time_text(0), "1970-01-01T00:00:00+0000");
        }
    }

    #[test]
    fn json_flag_is_taken_from_anywhere() {
        let mut w = words("id 3 -j");
        assert!(take_json(&mut w));
        assert_eq!(w, words("id 3"));
        let mut w = words("id 3");
        assert!(!take_json(&mut w));
    }
}
