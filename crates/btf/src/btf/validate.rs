//! Validation of every type record, run once at parse time: kinds, sizes,
//! flags, names and references, so that queries on a parsed [`Btf`] need
//! not re-check them.

use super::{type_err, Btf};
use crate::types::{Kind, Type};
use crate::{BtfError, TypeId};

impl Btf {
    pub(super) fn validate_types(&self) -> Result<(), BtfError> {
        // vmlinux has over 100 000 types: check halves on two threads. The
        // first half's error, if any, wins, so the error is the same as a
        // sequential check would give.
        const SPLIT_ABOVE: usize = 20_000;
        let n = self.offsets.len();
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
        if n > SPLIT_ABOVE && threads > 1 {
            let mid = n / 2;
            let (first, second) = std::thread::scope(|scope| {
                let second = scope.spawn(|| self.validate_range(mid..n));
                (self.validate_range(0..mid), second.join())
            });
            first?;
            return second.unwrap_or_else(|_| self.validate_range(mid..n));
        }
        self.validate_range(0..n)
    }

    fn validate_range(&self, range: std::ops::Range<usize>) -> Result<(), BtfError> {
        for index in range {
            let id = self.first_id + index as u32;
            let t = self.own_type(index);
            self.validate_type(&t)
                .map_err(|reason| type_err(id, self.offsets[index] as usize, reason))?;
        }
        Ok(())
    }

    fn validate_type(&self, t: &Type<'_>) -> Result<(), String> {
        let kind = t.kind;
        let info = t.info;
        if info & 0x60ff_0000 != 0 {
            return Err(format!("reserved bits set in info {info:#x}"));
        }
        let vlen = t.vlen();
        let kflag = t.kflag();
        self.check_name(t.name_off)?;
        let needs_name = matches!(
            kind,
            Kind::Fwd
                | Kind::Typedef
                | Kind::Func
                | Kind::Var
                | Kind::Datasec
                | Kind::DeclTag
                | Kind::TypeTag
                | Kind::Float
        );
        if needs_name && self.str_is_empty(t.name_off) {
            return Err(format!("{kind} without a name"));
        }
        let no_vlen = !matches!(
            kind,
            Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Func
                | Kind::FuncProto
                | Kind::Datasec
        );
        if no_vlen && vlen != 0 {
            return Err(format!("{kind} with vlen {vlen}"));
        }
        let kflag_ok = matches!(
            kind,
            Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Fwd
                | Kind::DeclTag
                | Kind::TypeTag
        );
        if kflag && !kflag_ok {
            return Err(format!("{kind} with kind_flag set"));
        }
        if kind.has_type_ref() {
            self.check_ref(t.size_or_type)?;
        }
        match kind {
            Kind::Int => {
                let int = t.int().ok_or("not an INT")?;
                if !matches!(int.size, 1 | 2 | 4 | 8 | 16) {
                    return Err(format!("INT size {}", int.size));
                }
                // The kernel's rule: offset plus width fit the storage and 128 bits.
                let end = u32::from(int.offset) + u32::from(int.bits);
                if end > 128 || end.div_ceil(8) > int.size {
                    return Err(format!(
                        "INT bits {} at offset {} exceed size {}",
                        int.bits, int.offset, int.size
                    ));
                }
                if t.word(0) & 0xf000_ff00 != 0 {
                    return Err(format!("INT data {:#x} has reserved bits set", t.word(0)));
                }
                if int.encoding.0.count_ones() > 1 {
                    return Err(format!("INT encoding {:#x}", int.encoding.0));
                }
            }
            Kind::Ptr
            | Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::TypeTag => {}
            Kind::Array => {
                let a = t.array().ok_or("not an ARRAY")?;
                self.check_ref(a.elem_type)?;
                self.check_ref(a.index_type)?;
            }
            Kind::Struct | Kind::Union => {
                // Raw reads: resolving member names here would double the parse time.
                for i in 0..vlen as usize {
                    let (name_off, type_id, raw) =
                        (t.word(i * 12), t.word(i * 12 + 4), t.word(i * 12 + 8));
                    self.check_name(name_off)?;
                    self.check_ref(type_id)?;
                    let (bit_offset, bitfield_size) = if kflag {
                        (raw & 0x00ff_ffff, raw >> 24)
                    } else {
                        (raw, 0)
                    };
                    if u64::from(bit_offset) + u64::from(bitfield_size)
                        > u64::from(t.size_or_type) * 8
                    {
                        return Err(format!(
                            "member {i} at bit {bit_offset} lies outside the {}-byte {kind}",
                            t.size_or_type
                        ));
                    }
                }
            }
            Kind::Enum | Kind::Enum64 => {
                if !matches!(t.size_or_type, 1 | 2 | 4 | 8) {
                    return Err(format!("{kind} size {}", t.size_or_type));
                }
                let stride = if kind == Kind::Enum { 8 } else { 12 };
                for i in 0..vlen as usize {
                    self.check_name(t.word(i * stride))?;
                }
            }
            Kind::Fwd => {}
            Kind::Func => {
                if vlen > 2 {
                    return Err(format!("FUNC linkage {vlen}"));
                }
                let proto = self.kind_of(t.size_or_type);
                if proto != Some(Kind::FuncProto) {
                    return Err(format!(
                        "FUNC refers to [{}], not a FUNC_PROTO",
                        t.size_or_type
                    ));
                }
            }
            Kind::FuncProto => {
                let n = vlen as usize;
                for i in 0..n {
                    let (name_off, type_id) = (t.word(i * 8), t.word(i * 8 + 4));
                    self.check_name(name_off)?;
                    self.check_ref(type_id)?;
                    if type_id == 0 && (i + 1 != n || name_off != 0) {
                        return Err(format!("parameter {i} is void"));
                    }
                }
            }
            Kind::Var => {
                if t.linkage().is_none() {
                    return Err("VAR linkage out of range".into());
                }
            }
            Kind::Datasec => {
                for v in t.datasec_vars() {
                    self.check_ref(v.type_id)?;
                    if u64::from(v.offset) + u64::from(v.size) > u64::from(t.size_or_type)
                        && t.size_or_type != 0
                    {
                        return Err(format!(
                            "variable [{}] at offset {} size {} exceeds section size {}",
                            v.type_id, v.offset, v.size, t.size_or_type
                        ));
                    }
                }
            }
            Kind::Float => {
                if !matches!(t.size_or_type, 2 | 4 | 8 | 12 | 16) {
                    return Err(format!("FLOAT size {}", t.size_or_type));
                }
            }
            Kind::DeclTag => {
                let c = t.decl_tag_component().unwrap_or(-1);
                if c < -1 {
                    return Err(format!("DECL_TAG component index {c}"));
                }
            }
            Kind::Void => return Err("VOID record".into()),
        }
        Ok(())
    }

    fn check_ref(&self, id: TypeId) -> Result<(), String> {
        if id < self.len() {
            Ok(())
        } else {
            Err(format!(
                "refers to type [{id}] but only {} types exist",
                self.len()
            ))
        }
    }

    fn check_name(&self, off: u32) -> Result<(), String> {
        if self.string_start(off).is_some() {
            Ok(())
        } else {
            Err(format!("name offset {off} is outside the string table"))
        }
    }
}
