//! `bpfkit map list|show|dump|lookup|update|delete`: maps in the kernel,
//! with bpftool's syntax for keys and values (`key 0x01 0 0 0`, or
//! `key hex 01 00 00 00`) and its output shapes (`-j`: bpftool's JSON).

use anyhow::{bail, Context};
use bpfkit_abi::update_flags;
use std::os::fd::AsFd;

use bpfkit_kernel::inspect::{MapInfo, ObjectKind};
use bpfkit_kernel::KernelMap;
use serde_json::{json, Value};

use super::inspect::{map_json, map_text, no_more, open_all, open_one, parse_selector, take_json};

/// What to do with maps. MAP is `id ID`, `name NAME`, `pinned FILE` or a
/// bare id, as in bpftool.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List every map.
    List {
        /// JSON output (bpftool's field names).
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show maps: `show [MAP]`; every match is shown.
    Show {
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The map handle (none: every map).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Print every entry: `dump MAP`.
    Dump {
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The map handle.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Print one entry: `lookup MAP key BYTES...`.
    Lookup {
        /// JSON output.
        #[arg(short = 'j', long)]
        json: bool,
        /// The map handle, `key` and its bytes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Write one entry: `update MAP key BYTES... value BYTES... [any|exist|noexist]`.
    Update {
        /// The map handle, `key`, its bytes, `value`, its bytes, and an optional flag.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Remove one entry: `delete MAP key BYTES...`.
    Delete {
        /// The map handle, `key` and its bytes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
    },
}

/// Parses the bytes after `key` or `value`: each word one byte, decimal or
/// `0x` hex, or after `hex` two-digit hex words; stops at a keyword.
fn parse_bytes<'a>(
    what: &str,
    words: &mut std::iter::Peekable<impl Iterator<Item = &'a String>>,
) -> anyhow::Result<Vec<u8>> {
    let hex = words.next_if(|w| *w == "hex").is_some();
    let mut out = Vec::new();
    while let Some(w) =
        words.next_if(|w| !matches!(w.as_str(), "key" | "value" | "any" | "exist" | "noexist"))
    {
        let byte = if hex {
            u8::from_str_radix(w, 16)
        } else if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
            u8::from_str_radix(h, 16)
        } else {
            w.parse::<u8>()
        };
        out.push(
            byte.with_context(|| format!("{what}: `{w}` is not a byte (0-255, or 0x00-0xff)"))?,
        );
    }
    if out.is_empty() {
        bail!("{what}: no bytes given");
    }
    Ok(out)
}

/// The pieces of `key ... [value ...] [flag]`.
struct EntryWords {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    flags: u64,
}

fn parse_entry(words: &[String], want_value: bool) -> anyhow::Result<EntryWords> {
    let mut it = words.iter().peekable();
    if it.next().map(String::as_str) != Some("key") {
        bail!("expected `key BYTES...`");
    }
    let key = parse_bytes("key", &mut it)?;
    let value = if want_value {
        if it.next().map(String::as_str) != Some("value") {
            bail!("expected `value BYTES...` after the key");
        }
        Some(parse_bytes("value", &mut it)?)
    } else {
        None
    };
    let flags = match it.next().map(String::as_str) {
        None | Some("any") => update_flags::ANY,
        Some("noexist") => update_flags::NOEXIST,
        Some("exist") => update_flags::EXIST,
        Some(other) => bail!("unexpected `{other}` (flags are any, exist, noexist)"),
    };
    if let Some(extra) = it.next() {
        bail!("unexpected `{extra}` after the entry");
    }
    Ok(EntryWords { key, value, flags })
}

/// The one map the handle at the front of `words` names, and the words after it.
fn open_one_map(words: &[String]) -> anyhow::Result<(KernelMap, &[String])> {
    let (sel, rest) = parse_selector(words, ObjectKind::Map)?;
    let map = KernelMap::from_fd(open_one(ObjectKind::Map, &sel)?)
        .with_context(|| format!("map {sel}"))?;
    Ok((map, rest))
}

fn check_size(what: &str, got: usize, want: usize) -> anyhow::Result<()> {
    if got != want {
        bail!("{what} has {got} bytes; this map's {what}s have {want}");
    }
    Ok(())
}

fn hex_words(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_bytes(b: &[u8]) -> Value {
    Value::Array(
        b.iter()
            .map(|x| Value::String(format!("0x{x:02x}")))
            .collect(),
    )
}

/// Bytes of one CPU's copy of a per-CPU map's value.
fn percpu_slot(map: &KernelMap) -> usize {
    map.value_size().next_multiple_of(8)
}

/// One entry as bpftool's JSON: `value`, or per-CPU `values`.
fn entry_json(map: &KernelMap, key: &[u8], value: &[u8]) -> Value {
    if map.value_copies() > 1 {
        let values: Vec<Value> = value
            .chunks(percpu_slot(map))
            .enumerate()
            .map(|(cpu, v)| json!({"cpu": cpu, "value": json_bytes(&v[..map.value_size()])}))
            .collect();
        json!({"key": json_bytes(key), "values": values})
    } else {
        json!({"key": json_bytes(key), "value": json_bytes(value)})
    }
}

/// One entry as bpftool's text.
fn entry_text(map: &KernelMap, key: &[u8], value: &[u8]) -> String {
    if map.value_copies() > 1 {
        let mut s = format!("key:\n{}\n", hex_words(key));
        for (cpu, v) in value.chunks(percpu_slot(map)).enumerate() {
            s.push_str(&format!(
                "value (CPU {cpu:02}): {}\n",
                hex_words(&v[..map.value_size()])
            ));
        }
        s
    } else {
        format!("key: {}  value: {}\n", hex_words(key), hex_words(value))
    }
}

/// Every entry of `map`, in key order as the kernel iterates.
fn entries(map: &KernelMap) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let id = map.id();
    use bpfkit_abi::MapType;
    if matches!(
        map.map_type(),
        MapType::Ringbuf | MapType::UserRingbuf | MapType::BloomFilter | MapType::Arena
    ) {
        anyhow::bail!(
            "map id {id} (`{}`) is a {} map, which has no keys to iterate: {}",
            map.name(),
            map.map_type(),
            match map.map_type() {
                MapType::Ringbuf => "its records are consumed by a reader (bpfkit load reads them)",
                MapType::BloomFilter => "it can only be asked whether it may hold a value",
                _ => "its contents are not reached by key",
            }
        );
    }
    let mut entries = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    while let Some(next) = map
        .next_key(key.as_deref())
        .with_context(|| format!("map id {id}"))?
    {
        // An entry deleted between next_key and lookup is skipped.
        if let Some(value) = map.lookup(&next).with_context(|| format!("map id {id}"))? {
            entries.push((next.clone(), value));
        }
        key = Some(next);
    }
    Ok(entries)
}

/// Runs `bpfkit map`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List { json } => super::inspect::maps(json),
        Command::Show { json, mut words } => {
            let json = take_json(&mut words) || json;
            if words.is_empty() {
                return super::inspect::maps(json);
            }
            let (sel, rest) = parse_selector(&words, ObjectKind::Map)?;
            no_more(rest)?;
            let infos = open_all(ObjectKind::Map, &sel)?
                .iter()
                .map(|fd| MapInfo::from_fd(fd.as_fd()))
                .collect::<Result<Vec<_>, _>>()?;
            // One match prints an object, several an array, as bpftool does.
            if json && infos.len() == 1 {
                outln!("{}", map_json(&infos[0]));
            } else if json {
                let v: Vec<_> = infos.iter().map(map_json).collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else {
                for info in &infos {
                    out!("{}", map_text(info));
                }
            }
            Ok(())
        }
        Command::Dump { json, mut words } => {
            let json = take_json(&mut words) || json;
            let (sel, rest) = parse_selector(&words, ObjectKind::Map)?;
            no_more(rest)?;
            let maps = open_all(ObjectKind::Map, &sel)?
                .into_iter()
                .map(KernelMap::from_fd)
                .collect::<Result<Vec<_>, _>>()?;
            let several = maps.len() > 1;
            let mut all_json = Vec::new();
            for map in &maps {
                let entries = entries(map)?;
                if json {
                    let v: Vec<Value> =
                        entries.iter().map(|(k, v)| entry_json(map, k, v)).collect();
                    if several {
                        // Several dumps are wrapped with what each map is, as bpftool does.
                        let info = MapInfo::from_fd(map.fd().as_fd())?;
                        let head = map_json(&info);
                        all_json.push(json!({
                            "id": head["id"], "type": head["type"], "name": head["name"],
                            "flags": head["flags"], "elements": v,
                        }));
                    } else {
                        outln!("{}", serde_json::to_string(&v)?);
                    }
                    continue;
                }
                if several {
                    let info = MapInfo::from_fd(map.fd().as_fd())?;
                    outln!("{}", map_text(&info).lines().next().unwrap_or_default());
                }
                for (k, v) in &entries {
                    out!("{}", entry_text(map, k, v));
                }
                outln!(
                    "Found {} element{}",
                    entries.len(),
                    if entries.len() == 1 { "" } else { "s" }
                );
            }
            if several && json {
                outln!("{}", serde_json::to_string(&all_json)?);
            }
            Ok(())
        }
        Command::Lookup { json, mut words } => {
            let json = take_json(&mut words) || json;
            let (map, rest) = open_one_map(&words)?;
            let id = map.id();
            let e = parse_entry(rest, false)?;
            check_size("key", e.key.len(), map.key_size())?;
            match map.lookup(&e.key).with_context(|| format!("map id {id}"))? {
                Some(value) if json => outln!("{}", entry_json(&map, &e.key, &value)),
                Some(value) => out!("{}", entry_text(&map, &e.key, &value)),
                None => bail!("map id {id}: no entry with key {}", hex_words(&e.key)),
            }
            Ok(())
        }
        Command::Update { words } => {
            let (map, rest) = open_one_map(&words)?;
            let id = map.id();
            let e = parse_entry(rest, true)?;
            let value = e.value.unwrap_or_default();
            check_size("key", e.key.len(), map.key_size())?;
            check_size("value", value.len(), map.value_size())?;
            // Per-CPU maps take one 8-aligned copy per CPU: the same on each.
            let value = if map.value_copies() > 1 {
                let slot = percpu_slot(&map);
                let mut all = Vec::with_capacity(map.value_copies() * slot);
                for _ in 0..map.value_copies() {
                    all.extend_from_slice(&value);
                    all.resize(all.len() + slot - value.len(), 0);
                }
                all
            } else {
                value
            };
            map.update(&e.key, &value, e.flags)
                .with_context(|| format!("map id {id}: update key {}", hex_words(&e.key)))?;
            Ok(())
        }
        Command::Delete { words } => {
            let (map, rest) = open_one_map(&words)?;
            let id = map.id();
            let e = parse_entry(rest, false)?;
            check_size("key", e.key.len(), map.key_size())?;
            map.delete(&e.key)
                .with_context(|| format!("map id {id}: delete key {}", hex_words(&e.key)))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn keys_values_and_flags_parse_like_bpftool() {
        let e = parse_entry(&words("key 0x01 2 0 0 value hex ff 00 noexist"), true).unwrap();
        assert_eq!(e.key, [1, 2, 0, 0]);
        assert_eq!(e.value.unwrap(), [0xff, 0]);
        assert_eq!(e.flags, update_flags::NOEXIST);
        let e = parse_entry(&words("key hex 0a 0b"), false).unwrap();
        assert_eq!(e.key, [10, 11]);
        for bad in [
            "key",
            "value 1",
            "key 256",
            "key 1 bogus",
            "key 1 any extra",
        ] {
            assert!(parse_entry(&words(bad), false).is_err(), "{bad}");
        }
        assert!(parse_entry(&words("key 1"), true).is_err(), "missing value");
    }
}
