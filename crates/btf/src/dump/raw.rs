//! bpftool's raw listing: one line per type, one indented line per member,
//! value, parameter or section variable.

use std::fmt::{self, Write};

use crate::{Btf, Kind, Type};

fn quoted(name: &str) -> &str {
    if name.is_empty() {
        "(anon)"
    } else {
        name
    }
}

/// Writes one type as `bpftool btf dump ... format raw` does, without a
/// trailing newline.
pub fn write_raw_type(out: &mut impl Write, btf: &Btf, t: &Type<'_>) -> fmt::Result {
    let r = t.size_or_type();
    write!(out, "[{}] {} '{}'", t.id(), t.kind(), quoted(t.name()))?;
    match t.kind() {
        Kind::Void => {}
        Kind::Int => {
            if let Some(i) = t.int() {
                let enc = match i.encoding.0 {
                    0 => "(none)",
                    1 => "SIGNED",
                    2 => "CHAR",
                    4 => "BOOL",
                    _ => "UNKN",
                };
                write!(
                    out,
                    " size={} bits_offset={} nr_bits={} encoding={enc}",
                    i.size, i.offset, i.bits
                )?;
            }
        }
        Kind::Ptr
        | Kind::Const
        | Kind::Volatile
        | Kind::Restrict
        | Kind::Typedef
        | Kind::TypeTag => {
            write!(out, " type_id={r}")?;
        }
        Kind::Array => {
            if let Some(a) = t.array() {
                write!(
                    out,
                    " type_id={} index_type_id={} nr_elems={}",
                    a.elem_type, a.index_type, a.nelems
                )?;
            }
        }
        Kind::Struct | Kind::Union => {
            write!(out, " size={r} vlen={}", t.vlen())?;
            for m in t.members() {
                write!(
                    out,
                    "\n\t'{}' type_id={} bits_offset={}",
                    quoted(m.name),
                    m.type_id,
                    m.bit_offset
                )?;
                if m.bitfield_size != 0 {
                    write!(out, " bitfield_size={}", m.bitfield_size)?;
                }
            }
        }
        Kind::Enum | Kind::Enum64 => {
            let signed = t.kflag();
            let enc = if signed { "SIGNED" } else { "UNSIGNED" };
            write!(out, " encoding={enc} size={r} vlen={}", t.vlen())?;
            for v in t.enum_values() {
                let name = quoted(v.name);
                match (t.kind() == Kind::Enum64, signed) {
                    (false, true) => write!(out, "\n\t'{name}' val={}", v.value as u32 as i32)?,
                    (false, false) => write!(out, "\n\t'{name}' val={}", v.value as u32)?,
                    (true, true) => write!(out, "\n\t'{name}' val={}LL", v.value as i64)?,
                    (true, false) => write!(out, "\n\t'{name}' val={}ULL", v.value)?,
                }
            }
        }
        Kind::Fwd => {
            let fwd_kind = if t.kflag() { "union" } else { "struct" };
            write!(out, " fwd_kind={fwd_kind}")?;
        }
        Kind::Func => {
            let linkage = t.linkage().map_or("UNKN", |l| l.func_str());
            write!(out, " type_id={r} linkage={linkage}")?;
        }
        Kind::FuncProto => {
            write!(out, " ret_type_id={r} vlen={}", t.vlen())?;
            for p in t.params() {
                write!(out, "\n\t'{}' type_id={}", quoted(p.name), p.type_id)?;
            }
        }
        Kind::Var => {
            let linkage = t.linkage().map_or("UNKN", |l| l.var_str());
            write!(out, " type_id={r}, linkage={linkage}")?;
        }
        Kind::Datasec => {
            write!(out, " size={r} vlen={}", t.vlen())?;
            for v in t.datasec_vars() {
                write!(
                    out,
                    "\n\ttype_id={} offset={} size={}",
                    v.type_id, v.offset, v.size
                )?;
                if let Ok(var) = btf.type_by_id(v.type_id) {
                    write!(out, " ({} '{}')", var.kind(), quoted(var.name()))?;
                }
            }
        }
        Kind::Float => write!(out, " size={r}")?,
        Kind::DeclTag => {
            write!(
                out,
                " type_id={r} component_idx={}",
                t.decl_tag_component().unwrap_or(-1)
            )?;
        }
    }
    Ok(())
}

/// Every type of `btf` in bpftool's raw format, one per line.
pub fn dump_raw(btf: &Btf) -> String {
    let mut out = String::with_capacity(btf.raw_bytes().len() * 4);
    for t in btf.types() {
        // Writing to a String cannot fail.
        let _ = write_raw_type(&mut out, btf, &t);
        out.push('\n');
    }
    out
}
