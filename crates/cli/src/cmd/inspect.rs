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
        "id": p.id, "type": type_name(p.prog_type), "name": p.full_name, "tag": p.tag,
        "loaded_at": p.loaded_at_unix_secs(), "uid": p.uid, "bytes_xlated": p.bytes_xlated,
        "jited": p.bytes_jited > 0, "bytes_jited": p.bytes_jited, "map_ids": p.map_ids,
        "verified_insns": p.verified_insns,
    })
}

/// `unix_secs` in the local time zone as strftime's `%FT%T%z` writes it
/// (bpftool's text `loaded_at`).
pub fn local_time_text(unix_secs: i64) -> String {
    let offset = bpfkit_kernel::time::local_utc_offset_secs(unix_secs);
    let t = unix_secs + offset;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
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

/// A program as `bpftool prog show` prints it.
pub fn program_text(p: &inspect::ProgramInfo) -> String {
    let maps: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
    let loaded = p
        .loaded_at_unix_secs()
        .map(|t| format!("loaded_at {}  ", local_time_text(t)))
        .unwrap_or_default();
    format!(
        "{}: {}  name {}  tag {}\n\t{loaded}uid {}  xlated {}B  jited {}B  map_ids {}\n",
        p.id,
        type_name(p.prog_type),
        p.full_name,
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
    use inspect::Selector;
    let what = if kind == inspect::ObjectKind::Program {
        "program"
    } else {
        "map"
    };
    let handles = if kind == inspect::ObjectKind::Program {
        "`id ID`, `tag TAG`, `name NAME` or `pinned FILE`"
    } else {
        "`id ID`, `name NAME` or `pinned FILE`"
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
        "tag" if kind == inspect::ObjectKind::Program => {
            let v = arg()?;
            let bytes = super::parse_hex(v, "tag").ok().filter(|b| b.len() == 8);
            let bytes =
                bytes.with_context(|| format!("tag `{v}` is not 16 hex digits (8 bytes)"))?;
            let mut tag = [0u8; 8];
            tag.copy_from_slice(&bytes);
            Selector::Tag(tag)
        }
        "name" => {
            let v = arg()?;
            // The kernel keeps BPF_OBJ_NAME_LEN - 1 bytes of a name, and
            // handles match on those (bpftool's map_parse_fds refuses
            // longer map names; a longer program name cannot match).
            if kind == inspect::ObjectKind::Map && v.len() > 15 {
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
        let what = if kind == inspect::ObjectKind::Program {
            "program"
        } else {
            "map"
        };
        anyhow::bail!("no {what} matches {sel}");
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
        let what = if kind == inspect::ObjectKind::Program {
            "programs"
        } else {
            "maps"
        };
        anyhow::bail!("several {what} ({}) match {sel}", fds.len());
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
