//! BTF to C: type definitions in an order a C compiler accepts.
//!
//! Two passes, as in libbpf's `btf_dump.c`: a depth-first ordering that
//! distinguishes *strong* dependencies (a type embedded by value must be
//! complete first) from *weak* ones (behind a pointer, a forward
//! declaration suffices), then emission that writes forward declarations
//! only where a weak cycle needs one. Anonymous structs, unions and enums
//! are written inline where they are used. Declarators (pointers, arrays,
//! function pointers, qualifiers) are built from the chain of BTF types
//! between a name and its base type. Identifiers that would collide get a
//! `___N` suffix.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::{Btf, BtfError, Kind, Type, TypeId};

const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t";

fn indent(level: usize) -> &'static str {
    &TABS[..level.min(TABS.len())]
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Order {
    #[default]
    NotOrdered,
    Ordering,
    Ordered,
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Emit {
    #[default]
    NotEmitted,
    Emitting,
    Emitted,
}

#[derive(Clone, Copy, Default)]
struct TypeState {
    order: Order,
    emit: Emit,
    fwd_emitted: bool,
    name_resolved: bool,
    referenced: bool,
}

/// Which namespace a name is deduplicated in: struct/union/enum tags, or
/// ordinary identifiers (typedefs and enumerators).
#[derive(Clone, Copy)]
enum Namespace {
    Tags,
    Idents,
}

/// Writes C definitions of BTF types, tracking what has been written so
/// each definition appears once.
pub struct CDumper<'a> {
    btf: &'a Btf,
    states: Vec<TypeState>,
    /// Names that had to be made unique, by type id.
    renamed: HashMap<TypeId, String>,
    tag_names: HashMap<String, usize>,
    ident_names: HashMap<String, usize>,
    emit_queue: Vec<TypeId>,
    decl_stack: Vec<TypeId>,
    /// Alignments of composites, computed once per dump.
    aligns: HashMap<TypeId, u32>,
    /// Current recursion depth, bounded so malformed BTF cannot exhaust the stack.
    depth: usize,
    output_limit: usize,
    steps_left: usize,
    out: String,
}

/// Deeper nesting than this (real kernels stay below 30) is malformed BTF.
const MAX_NESTING: usize = 256;

/// Anonymous records are written out at every use, so BTF that reuses them
/// in a deep DAG could demand output exponential in its size. Output is
/// capped at this many bytes plus [`OUTPUT_PER_INPUT_BYTE`] per input byte
/// (a kernel's header is under 2 bytes per input byte).
const OUTPUT_BASE: usize = 1 << 20;
const OUTPUT_PER_INPUT_BYTE: usize = 32;

/// For the same reason, the walk over types is capped at this many steps
/// plus [`STEPS_PER_TYPE`] per type (a kernel needs under 10 per type).
const STEPS_BASE: usize = 1 << 20;
const STEPS_PER_TYPE: usize = 256;

/// Appends formatted text to the dumper's output.
macro_rules! out {
    ($d:expr, $($arg:tt)*) => {
        // Writing to a String cannot fail.
        let _ = write!($d.out, $($arg)*);
    };
}

mod decl;
mod defs;

impl<'a> CDumper<'a> {
    /// A dumper for `btf` with nothing written yet.
    pub fn new(btf: &'a Btf) -> CDumper<'a> {
        let n = btf.len() as usize;
        let mut states = vec![TypeState::default(); n];
        states[0].order = Order::Ordered;
        states[0].emit = Emit::Emitted;
        for t in btf.all_types() {
            mark_referenced(&t, &mut states);
        }
        CDumper {
            btf,
            states,
            renamed: HashMap::new(),
            tag_names: HashMap::new(),
            ident_names: HashMap::new(),
            emit_queue: Vec::new(),
            decl_stack: Vec::new(),
            aligns: HashMap::new(),
            depth: 0,
            output_limit: OUTPUT_BASE
                .saturating_add(btf.raw_bytes().len().saturating_mul(OUTPUT_PER_INPUT_BYTE)),
            steps_left: STEPS_BASE.saturating_add(n.saturating_mul(STEPS_PER_TYPE)),
            out: String::new(),
        }
    }

    /// Writes type `id` and every type it needs that was not written yet.
    pub fn dump_type(&mut self, id: TypeId) -> Result<(), BtfError> {
        self.btf.type_by_id(id)?;
        self.emit_queue.clear();
        self.order(id, false)?;
        let queue = std::mem::take(&mut self.emit_queue);
        for &queued in &queue {
            self.emit(queued, 0)?;
        }
        self.emit_queue = queue;
        Ok(())
    }

    /// Writes every type.
    pub fn dump_all(&mut self) -> Result<(), BtfError> {
        for id in 1..self.btf.len() {
            self.dump_type(id)?;
        }
        Ok(())
    }

    /// Writes an `extern ... __weak __ksym;` prototype for every function
    /// tagged `bpf_kfunc` (the kernel's BPF-callable functions), as bpftool
    /// does; `BPF_NO_KFUNC_PROTOTYPES` turns them off.
    pub fn dump_kfunc_prototypes(&mut self) -> Result<(), BtfError> {
        let btf = self.btf;
        let kfuncs = btf.all_types().filter(|t| {
            t.kind() == Kind::DeclTag
                && t.decl_tag_component() == Some(-1)
                && t.name() == "bpf_kfunc"
        });
        let mut protos = Vec::new();
        for tag in kfuncs {
            let func = self.ty(tag.size_or_type())?;
            if func.kind() == Kind::Func {
                protos.push(func);
            }
        }
        if protos.is_empty() {
            return Ok(());
        }
        out!(
            self,
            "\n/* BPF kfuncs */\n#ifndef BPF_NO_KFUNC_PROTOTYPES\n"
        );
        for func in protos {
            out!(self, "extern ");
            self.emit_type_decl(func.size_or_type(), func.name(), 0)?;
            out!(self, " __weak __ksym;\n");
        }
        out!(self, "#endif\n\n");
        Ok(())
    }

    /// The text written so far.
    pub fn output(&self) -> &str {
        &self.out
    }

    /// Consumes the dumper, returning the text written.
    pub fn finish(self) -> String {
        self.out
    }

    fn ty(&self, id: TypeId) -> Result<Type<'a>, BtfError> {
        self.btf.type_by_id(id)
    }

    fn state(&mut self, id: TypeId) -> &mut TypeState {
        // Ids come from validated records, so they are in range.
        let i = (id as usize).min(self.states.len() - 1);
        &mut self.states[i]
    }

    /// Topological ordering. Returns whether `id` is part of a strong link
    /// (must be complete where it is used) or may be forward-declared.
    fn order(&mut self, id: TypeId, through_ptr: bool) -> Result<bool, BtfError> {
        self.enter(id)?;
        let strong = self.order_inner(id, through_ptr);
        self.depth -= 1;
        strong
    }

    fn enter(&mut self, id: TypeId) -> Result<(), BtfError> {
        self.steps_left = self
            .steps_left
            .checked_sub(1)
            .ok_or_else(|| BtfError::Dump {
                id,
                reason: "C dump needs too many steps: anonymous types are reused too often".into(),
            })?;
        if self.depth >= MAX_NESTING {
            return Err(BtfError::ReferenceLoop {
                id,
                limit: MAX_NESTING,
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn check_output_size(&self, id: TypeId) -> Result<(), BtfError> {
        if self.out.len() <= self.output_limit {
            return Ok(());
        }
        Err(BtfError::Dump {
            id,
            reason: format!(
                "C output exceeds {} bytes: padding or reused anonymous types too large",
                self.output_limit
            ),
        })
    }

    fn align(&mut self, id: TypeId) -> u32 {
        self.btf
            .type_align_cached(id, &mut self.aligns)
            .unwrap_or(1)
    }

    fn order_inner(&mut self, id: TypeId, through_ptr: bool) -> Result<bool, BtfError> {
        if self.state(id).order == Order::Ordered {
            return Ok(true);
        }
        let t = self.ty(id)?;
        let named = t.name_off() != 0;
        if self.state(id).order == Order::Ordering {
            if t.kind().is_composite() && through_ptr && named {
                return Ok(false);
            }
            return Err(BtfError::Dump {
                id,
                reason: "unsatisfiable type cycle".into(),
            });
        }
        match t.kind() {
            Kind::Int | Kind::Float => {
                self.state(id).order = Order::Ordered;
                Ok(false)
            }
            Kind::Ptr => {
                let strong = self.order(t.size_or_type(), true)?;
                self.state(id).order = Order::Ordered;
                Ok(strong)
            }
            Kind::Array => {
                let elem = t.array().map_or(0, |a| a.elem_type);
                self.order(elem, false)
            }
            Kind::Struct | Kind::Union => {
                // A named struct behind a pointer only needs a forward
                // declaration; an anonymous one is defined inline, so its
                // members are strong dependencies of the user.
                if through_ptr && named {
                    return Ok(false);
                }
                self.state(id).order = Order::Ordering;
                for m in t.members() {
                    self.order(m.type_id, false)?;
                }
                if named {
                    self.emit_queue.push(id);
                }
                self.state(id).order = Order::Ordered;
                Ok(true)
            }
            Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                // Named enums and top-level anonymous enums (constants) are
                // definitions of their own; referenced anonymous ones are inline.
                if named || !self.state(id).referenced {
                    self.emit_queue.push(id);
                }
                self.state(id).order = Order::Ordered;
                Ok(true)
            }
            Kind::Typedef => {
                let strong = self.order(t.size_or_type(), through_ptr)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.emit_queue.push(id);
                self.state(id).order = Order::Ordered;
                Ok(true)
            }
            Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.order(t.size_or_type(), through_ptr)
            }
            Kind::FuncProto => {
                let mut strong = self.order(t.size_or_type(), through_ptr)?;
                for p in t.params() {
                    strong |= self.order(p.type_id, through_ptr)?;
                }
                Ok(strong)
            }
            Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag | Kind::Void => {
                self.state(id).order = Order::Ordered;
                Ok(false)
            }
        }
    }

    /// Emits `id` and what it needs. `container` is the named struct being
    /// defined (0 at top level): references to it need no forward declaration.
    fn emit(&mut self, id: TypeId, container: TypeId) -> Result<(), BtfError> {
        self.enter(id)?;
        let result = self.emit_inner(id, container);
        self.depth -= 1;
        result
    }

    fn emit_inner(&mut self, id: TypeId, container: TypeId) -> Result<(), BtfError> {
        let top_level = container == 0;
        if self.state(id).emit == Emit::Emitted {
            return Ok(());
        }
        let t = self.ty(id)?;
        if self.state(id).emit == Emit::Emitting {
            if self.state(id).fwd_emitted {
                return Ok(());
            }
            match t.kind() {
                Kind::Struct | Kind::Union => {
                    if id == container {
                        return Ok(());
                    }
                    if t.name_off() == 0 {
                        return Err(BtfError::Dump {
                            id,
                            reason: "anonymous struct/union loop".into(),
                        });
                    }
                    self.emit_struct_fwd(&t);
                    out!(self, ";\n\n");
                    self.state(id).fwd_emitted = true;
                }
                Kind::Typedef => {
                    // A typedef can be declared early for uses behind pointers.
                    if !is_builtin_va_list(&t) {
                        self.emit_typedef_def(&t, 0)?;
                        out!(self, ";\n\n");
                    }
                    self.state(id).fwd_emitted = true;
                }
                _ => {}
            }
            return Ok(());
        }
        match t.kind() {
            Kind::Int | Kind::Float => self.state(id).emit = Emit::Emitted,
            Kind::Enum | Kind::Enum64 => {
                if top_level {
                    self.emit_enum_def(&t, 0);
                    out!(self, ";\n\n");
                }
                self.state(id).emit = Emit::Emitted;
            }
            Kind::Ptr | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.emit(t.size_or_type(), container)?;
            }
            Kind::Array => {
                let elem = t.array().map_or(0, |a| a.elem_type);
                self.emit(elem, container)?;
            }
            Kind::Fwd => {
                self.emit_fwd_def(&t);
                out!(self, ";\n\n");
                self.state(id).emit = Emit::Emitted;
            }
            Kind::Typedef => {
                self.state(id).emit = Emit::Emitting;
                self.emit(t.size_or_type(), id)?;
                if !self.state(id).fwd_emitted && !is_builtin_va_list(&t) {
                    self.emit_typedef_def(&t, 0)?;
                    out!(self, ";\n\n");
                }
                self.state(id).emit = Emit::Emitted;
            }
            Kind::Struct | Kind::Union => {
                self.state(id).emit = Emit::Emitting;
                let named = t.name_off() != 0;
                if top_level || !named {
                    // Members are written out in full: their types need
                    // definitions or forward declarations first.
                    let inner = if named { id } else { container };
                    for m in t.members() {
                        self.emit(m.type_id, inner)?;
                    }
                } else if !self.state(id).fwd_emitted && id != container {
                    self.emit_struct_fwd(&t);
                    out!(self, ";\n\n");
                    self.state(id).fwd_emitted = true;
                }
                if top_level {
                    self.emit_struct_def(&t, 0)?;
                    out!(self, ";\n\n");
                    self.state(id).emit = Emit::Emitted;
                } else {
                    self.state(id).emit = Emit::NotEmitted;
                }
            }
            Kind::FuncProto => {
                self.emit(t.size_or_type(), container)?;
                for p in t.params() {
                    self.emit(p.type_id, container)?;
                }
            }
            Kind::Void | Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => {}
        }
        Ok(())
    }
}

fn is_builtin_va_list(t: &Type<'_>) -> bool {
    t.name() == "__builtin_va_list"
}

fn mark_referenced(t: &Type<'_>, states: &mut [TypeState]) {
    let mut mark = |id: TypeId| {
        if let Some(s) = states.get_mut(id as usize) {
            s.referenced = true;
        }
    };
    match t.kind() {
        Kind::Volatile
        | Kind::Const
        | Kind::Restrict
        | Kind::Ptr
        | Kind::Typedef
        | Kind::Func
        | Kind::Var
        | Kind::DeclTag
        | Kind::TypeTag => mark(t.size_or_type()),
        Kind::Array => {
            if let Some(a) = t.array() {
                mark(a.index_type);
                mark(a.elem_type);
            }
        }
        Kind::Struct | Kind::Union => t.members().for_each(|m| mark(m.type_id)),
        Kind::FuncProto => t.params().for_each(|p| mark(p.type_id)),
        Kind::Datasec => t.datasec_vars().for_each(|v| mark(v.type_id)),
        _ => {}
    }
}

/// A complete header for `btf`, framed like `bpftool btf dump ... format
/// c`: include guard, `preserve_access_index` applied to every record (so
/// field accesses get CO-RE relocations), `__ksym`/`__weak` helpers, every
/// type, then prototypes of the kernel functions BPF programs may call.
pub fn dump_c_header(btf: &Btf) -> Result<String, BtfError> {
    let mut d = CDumper::new(btf);
    d.out.push_str(concat!(
        "#ifndef __VMLINUX_H__\n",
        "#define __VMLINUX_H__\n",
        "\n",
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n",
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n",
        "#endif\n",
        "\n",
        "#ifndef __ksym\n",
        "#define __ksym __attribute__((section(\".ksyms\")))\n",
        "#endif\n",
        "\n",
        "#ifndef __weak\n",
        "#define __weak __attribute__((weak))\n",
        "#endif\n",
        "\n",
    ));
    d.dump_all()?;
    d.dump_kfunc_prototypes()?;
    d.out.push_str(concat!(
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n",
        "#pragma clang attribute pop\n",
        "#endif\n",
        "\n",
        "#endif /* __VMLINUX_H__ */\n",
    ));
    Ok(d.finish())
}

/// The C spelling of type `id` alone, as in a cast: `unsigned long long`,
/// `const char *`, `struct event`.
pub fn type_name(btf: &Btf, id: TypeId) -> Result<String, BtfError> {
    let mut d = CDumper::new(btf);
    d.emit_type_decl(id, "", 0)?;
    Ok(d.finish().trim_end().to_string())
}
