//! Declarators: the C spelling of a name with its type, built from the
//! chain of pointers, qualifiers, arrays and prototypes down to a base type
//! (`void (*(*f)(int))(long)`), as libbpf's `btf_dump` writes them.

use std::fmt::Write as _;

use super::{CDumper, MAX_NESTING};
use crate::{BtfError, Kind, TypeId};

impl CDumper<'_> {
    /// Writes the declaration of `name` with type `id`: the base type, then
    /// the declarator built from pointers, qualifiers, arrays and function
    /// prototypes on the way to it.
    pub(super) fn emit_type_decl(
        &mut self,
        id: TypeId,
        name: &str,
        level: usize,
    ) -> Result<(), BtfError> {
        self.enter(id)?;
        let frame = self.decl_stack.len();
        let result = self.push_decl_chain(id).and_then(|()| {
            let mut top = self.decl_stack.len();
            self.emit_type_chain(frame, &mut top, name, level)
        });
        self.decl_stack.truncate(frame);
        self.depth -= 1;
        result
    }

    /// Pushes the types from `id` down to the base type of a declaration.
    pub(super) fn push_decl_chain(&mut self, mut id: TypeId) -> Result<(), BtfError> {
        let start = id;
        for _ in 0..MAX_NESTING {
            self.decl_stack.push(id);
            if id == 0 {
                return Ok(());
            }
            let t = self.ty(id)?;
            match t.kind() {
                Kind::Ptr
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::FuncProto
                | Kind::TypeTag => id = t.size_or_type(),
                Kind::Array => id = t.array().map_or(0, |a| a.elem_type),
                _ => return Ok(()),
            }
        }
        Err(BtfError::ReferenceLoop {
            id: start,
            limit: MAX_NESTING,
        })
    }

    /// Writes qualifiers at the top of the chain (they precede a base type).
    pub(super) fn emit_mods(&mut self, frame: usize, top: &mut usize) -> Result<(), BtfError> {
        while *top > frame {
            let t = self.ty(self.decl_stack[*top - 1])?;
            match t.kind() {
                Kind::Volatile => {
                    out!(self, "volatile ");
                }
                Kind::Const => {
                    out!(self, "const ");
                }
                Kind::Restrict => {
                    out!(self, "restrict ");
                }
                _ => return Ok(()),
            }
            *top -= 1;
        }
        Ok(())
    }

    /// Drops qualifiers the compiler put on arrays and function pointers,
    /// which C cannot express there.
    pub(super) fn drop_mods(&mut self, frame: usize, top: &mut usize) -> Result<(), BtfError> {
        while *top > frame {
            let t = self.ty(self.decl_stack[*top - 1])?;
            if !matches!(
                t.kind(),
                Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
            ) {
                return Ok(());
            }
            *top -= 1;
        }
        Ok(())
    }

    pub(super) fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        let sep = if !name.is_empty() && !last_was_ptr {
            " "
        } else {
            ""
        };
        out!(self, "{sep}{name}");
    }

    /// Pops the declaration chain from the base type outwards.
    pub(super) fn emit_type_chain(
        &mut self,
        frame: usize,
        top: &mut usize,
        fname: &str,
        level: usize,
    ) -> Result<(), BtfError> {
        let mut last_was_ptr = true;
        while *top > frame {
            *top -= 1;
            let id = self.decl_stack[*top];
            if id == 0 {
                self.emit_mods(frame, top)?;
                out!(self, "void");
                last_was_ptr = false;
                continue;
            }
            let t = self.ty(id)?;
            match t.kind() {
                Kind::Int | Kind::Float => {
                    self.emit_mods(frame, top)?;
                    out!(self, "{}", t.name());
                }
                Kind::Struct | Kind::Union => {
                    self.emit_mods(frame, top)?;
                    if t.name_off() == 0 {
                        self.emit_struct_def(&t, level)?;
                    } else {
                        self.emit_struct_fwd(&t);
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    self.emit_mods(frame, top)?;
                    if t.name_off() == 0 {
                        self.emit_enum_def(&t, level);
                    } else {
                        let name = self.tag_name(&t);
                        out!(self, "enum {name}");
                    }
                }
                Kind::Fwd => {
                    self.emit_mods(frame, top)?;
                    self.emit_fwd_def(&t);
                }
                Kind::Typedef => {
                    self.emit_mods(frame, top)?;
                    let name = self.ident_name(&t);
                    out!(self, "{name}");
                }
                Kind::Ptr => {
                    out!(self, "{}", if last_was_ptr { "*" } else { " *" });
                }
                Kind::Volatile => {
                    out!(self, " volatile");
                }
                Kind::Const => {
                    out!(self, " const");
                }
                Kind::Restrict => {
                    out!(self, " restrict");
                }
                Kind::TypeTag => {
                    self.emit_mods(frame, top)?;
                    if t.kflag() {
                        out!(self, " __attribute__(({}))", t.name());
                    } else {
                        out!(self, " __attribute__((btf_type_tag(\"{}\")))", t.name());
                    }
                }
                Kind::Array => {
                    let nelems = t.array().map_or(0, |a| a.nelems);
                    self.drop_mods(frame, top)?;
                    if *top == frame {
                        self.emit_name(fname, last_was_ptr);
                        out!(self, "[{nelems}]");
                        return Ok(());
                    }
                    let next = self.ty(self.decl_stack[*top - 1])?;
                    let multidim = next.kind() == Kind::Array;
                    if !fname.is_empty() && !last_was_ptr {
                        out!(self, " ");
                    }
                    if !multidim {
                        out!(self, "(");
                    }
                    self.emit_type_chain(frame, top, fname, level)?;
                    if !multidim {
                        out!(self, ")");
                    }
                    out!(self, "[{nelems}]");
                    return Ok(());
                }
                Kind::FuncProto => {
                    self.drop_mods(frame, top)?;
                    if *top > frame {
                        out!(self, " (");
                        self.emit_type_chain(frame, top, fname, level)?;
                        out!(self, ")");
                    } else {
                        self.emit_name(fname, last_was_ptr);
                    }
                    out!(self, "(");
                    let n = t.vlen() as usize;
                    // Clang writes `f(void)` as one void parameter.
                    if n == 0 || (n == 1 && t.params().next().is_some_and(|p| p.type_id == 0)) {
                        out!(self, "void)");
                        return Ok(());
                    }
                    for (i, p) in t.params().enumerate() {
                        if i > 0 {
                            out!(self, ", ");
                        }
                        if i + 1 == n && p.type_id == 0 {
                            out!(self, "...");
                            break;
                        }
                        self.emit_type_decl(p.type_id, p.name, level)?;
                    }
                    out!(self, ")");
                    return Ok(());
                }
                Kind::Void | Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => {
                    return Err(BtfError::Dump {
                        id,
                        reason: format!("{} in a declaration", t.kind()),
                    });
                }
            }
            last_was_ptr = t.kind() == Kind::Ptr;
        }
        self.emit_name(fname, last_was_ptr);
        Ok(())
    }
}
