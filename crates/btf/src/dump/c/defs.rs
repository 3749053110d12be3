//! Definitions: unique names, structs and unions with explicit padding,
//! enums, typedefs and forward declarations.

use std::fmt::Write as _;

use super::{indent, CDumper, Namespace};
use crate::{BtfError, Kind, Type, TypeId};

impl<'a> CDumper<'a> {
    /// The unique name of a type in `ns`, with a `___N` suffix from the
    /// second definition of a name on.
    pub(super) fn resolved_name(&mut self, t: &Type<'_>, ns: Namespace) -> String {
        let id = t.id();
        if t.name_off() == 0 {
            return String::new();
        }
        let name = t.name();
        if self.state(id).name_resolved {
            return self
                .renamed
                .get(&id)
                .cloned()
                .unwrap_or_else(|| name.to_string());
        }
        self.state(id).name_resolved = true;
        // Forward declarations and empty enums do not define the name.
        if t.kind() == Kind::Fwd || (t.kind() == Kind::Enum && t.vlen() == 0) {
            return name.to_string();
        }
        let dups = self.count_name(ns, name);
        if dups > 1 {
            let unique = format!("{name}___{dups}");
            self.renamed.insert(id, unique.clone());
            unique
        } else {
            name.to_string()
        }
    }

    pub(super) fn count_name(&mut self, ns: Namespace, name: &str) -> usize {
        let map = match ns {
            Namespace::Tags => &mut self.tag_names,
            Namespace::Idents => &mut self.ident_names,
        };
        let n = map.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    pub(super) fn tag_name(&mut self, t: &Type<'_>) -> String {
        self.resolved_name(t, Namespace::Tags)
    }

    pub(super) fn ident_name(&mut self, t: &Type<'_>) -> String {
        self.resolved_name(t, Namespace::Idents)
    }

    pub(super) fn emit_struct_fwd(&mut self, t: &Type<'_>) {
        let name = self.tag_name(t);
        let kw = if t.kind() == Kind::Union {
            "union"
        } else {
            "struct"
        };
        let sep = if t.name_off() != 0 { " " } else { "" };
        out!(self, "{kw}{sep}{name}");
    }

    pub(super) fn emit_fwd_def(&mut self, t: &Type<'_>) {
        let name = self.tag_name(t);
        let kw = if t.kflag() { "union" } else { "struct" };
        out!(self, "{kw} {name}");
    }

    pub(super) fn emit_typedef_def(&mut self, t: &Type<'_>, level: usize) -> Result<(), BtfError> {
        let name = self.ident_name(t);
        // Old GCC emits `__gnuc_va_list` as a typedef of void.
        if t.size_or_type() == 0 && name == "__gnuc_va_list" {
            out!(self, "typedef __builtin_va_list __gnuc_va_list");
            return Ok(());
        }
        out!(self, "typedef ");
        self.emit_type_decl(t.size_or_type(), &name, level)
    }

    pub(super) fn emit_enum_def(&mut self, t: &Type<'_>, level: usize) {
        let name = self.tag_name(t);
        let sep = if t.name_off() != 0 { " " } else { "" };
        out!(self, "enum{sep}{name}");
        if t.vlen() == 0 {
            return;
        }
        out!(self, " {{");
        let signed = t.kflag();
        let is64 = t.kind() == Kind::Enum64;
        let mut high_bits = false;
        for v in t.enum_values() {
            let dups = self.count_name(Namespace::Idents, v.name);
            let pfx = indent(level + 1);
            let suffix = if dups > 1 {
                format!("___{dups}")
            } else {
                String::new()
            };
            high_bits |= v.value >> 32 != 0 && is64;
            match (is64, signed) {
                (false, false) => {
                    out!(self, "\n{pfx}{}{suffix} = {},", v.name, v.value as u32);
                }
                (false, true) => {
                    out!(
                        self,
                        "\n{pfx}{}{suffix} = {},",
                        v.name,
                        v.value as u32 as i32
                    );
                }
                (true, false) => {
                    out!(self, "\n{pfx}{}{suffix} = {}ULL,", v.name, v.value);
                }
                (true, true) => {
                    out!(self, "\n{pfx}{}{suffix} = {}LL,", v.name, v.value as i64);
                }
            }
        }
        out!(self, "\n{}}}", indent(level));
        match t.size() {
            Some(1) => {
                out!(self, " __attribute__((mode(byte)))");
            }
            // An 8-byte enum whose values all fit 32 bits would otherwise
            // be given 4 bytes by the compiler.
            Some(8) if !high_bits => {
                out!(self, " __attribute__((mode(word)))");
            }
            _ => {}
        }
    }

    pub(super) fn emit_struct_def(&mut self, t: &Type<'a>, level: usize) -> Result<(), BtfError> {
        self.check_output_size(t.id())?;
        let is_struct = t.kind() == Kind::Struct;
        let align = self.align(t.id());
        let packed = is_struct && self.is_struct_packed(t);
        let name = self.tag_name(t);
        let kw = if is_struct { "struct" } else { "union" };
        let sep = if t.name_off() != 0 { " " } else { "" };
        out!(self, "{kw}{sep}{name} {{");
        let mut off: u64 = 0;
        let mut prev_bitfield = false;
        for m in t.members() {
            let m_off = u64::from(m.bit_offset);
            let m_align = if packed { 1 } else { self.align(m.type_id) };
            let in_bitfield = prev_bitfield && m.bitfield_size != 0;
            self.emit_bit_padding(t.id(), off, m_off, m_align, in_bitfield, level + 1)?;
            out!(self, "\n{}", indent(level + 1));
            self.emit_type_decl(m.type_id, m.name, level + 1)?;
            if m.bitfield_size != 0 {
                out!(self, ": {}", m.bitfield_size);
                off = m_off + u64::from(m.bitfield_size);
                prev_bitfield = true;
            } else {
                let size = self.btf.type_size(m.type_id).unwrap_or(0);
                off = m_off + u64::from(size) * 8;
                prev_bitfield = false;
            }
            out!(self, ";");
        }
        if is_struct {
            let end = u64::from(t.size().unwrap_or(0)) * 8;
            self.emit_bit_padding(t.id(), off, end, align, false, level + 1)?;
        }
        if t.vlen() != 0 || t.size().unwrap_or(0) != 0 {
            out!(self, "\n{}}}", indent(level));
        } else {
            out!(self, "}}");
        }
        if packed {
            out!(self, " __attribute__((packed))");
        }
        Ok(())
    }

    /// Whether a struct's layout can only be produced with `packed`: a
    /// member at an offset its alignment does not allow, or a size that is
    /// not a multiple of the alignment.
    pub(super) fn is_struct_packed(&mut self, t: &Type<'_>) -> bool {
        let mut max_align = 1;
        for m in t.members() {
            let align = self.align(m.type_id);
            if m.bitfield_size == 0 && m.bit_offset % (8 * align) != 0 {
                return true;
            }
            max_align = max_align.max(align);
        }
        t.size().unwrap_or(0) % max_align != 0
    }

    /// Fills the gap between bit `cur` and bit `next` with anonymous
    /// bitfields (`long: 64;`), relying on natural alignment where that
    /// places the next member correctly and forcing it with `type: 0;`
    /// where it does not.
    pub(super) fn emit_bit_padding(
        &mut self,
        id: TypeId,
        mut cur: u64,
        next: u64,
        next_align: u32,
        in_bitfield: bool,
        level: usize,
    ) -> Result<(), BtfError> {
        const PADS: [(&str, u64); 4] = [("long", 64), ("int", 32), ("short", 16), ("char", 8)];
        if cur >= next {
            return Ok(());
        }
        let pfx = indent(level);
        let (mut pad_type, mut pad_bits) = PADS[3];
        let mut new_off = 0;
        for (name, bits) in PADS {
            pad_type = name;
            pad_bits = bits;
            new_off = cur.div_ceil(bits) * bits;
            if new_off <= next {
                break;
            }
        }
        if new_off > cur && new_off <= next {
            let align_bits = u64::from(next_align.max(1)) * 8;
            let needs_mark = in_bitfield
                || (new_off == next && cur.div_ceil(align_bits) * align_bits != new_off)
                || (new_off != next && next - new_off <= new_off - cur);
            if needs_mark {
                let width = if in_bitfield { new_off - cur } else { 0 };
                out!(self, "\n{pfx}{pad_type}: {width};");
            }
            cur = new_off;
        }
        while cur != next {
            self.check_output_size(id)?;
            let bits = (next - cur).min(pad_bits);
            if bits == pad_bits {
                out!(self, "\n{pfx}{pad_type}: {pad_bits};");
                cur += bits;
                continue;
            }
            // The remainder: the smallest type that holds it.
            for &(name, width) in PADS.iter().rev() {
                if width >= bits {
                    pad_type = name;
                    pad_bits = width;
                    out!(self, "\n{pfx}{pad_type}: {bits};");
                    cur += bits;
                    break;
                }
            }
        }
        Ok(())
    }
}
