//! A userspace eBPF verifier modelled on the kernel's (kernel/bpf/verifier.c).
//!
//! [`Verifier::verify`] explores every path of a program over an abstract
//! state (per register: not initialized, a scalar with a tnum and signed and
//! unsigned bounds at 64 and 32 bits, or a typed pointer; per stack byte:
//! invalid, data, zero or part of a spilled register), pruning paths whose
//! state a finished one subsumes, and either accepts it with a [`Verdict`] or
//! rejects it with a [`Rejection`] naming the instruction, its disassembly,
//! the C source line when the object has line info, the reason, the register
//! state and the path that led there.
//!
//! It is pure and deterministic: no system calls, and the same input gives
//! the same answer. It is privileged by default, as root loading through
//! `bpf()` is; [`VerifyOptions::unprivileged`] adds the rules the kernel
//! applies without `CAP_BPF`/`CAP_PERFMON`.
//!
//! What it does not model (a program using these is rejected, saying so,
//! where the kernel may accept it): kfuncs other than those in
//! `bpfkit_abi::KFUNCS` (task and cgroup references, RCU read sections),
//! `callx`, spin locks beyond their argument type, dynptrs, open-coded
//! iterators, `may_goto`, BTF-typed pointers beyond "a task, a cgroup or a
//! kernel object that may be read" (fields are not checked against BTF, and
//! a pointer read from an object is untrusted even where the kernel's
//! `BTF_TYPE_SAFE_RCU` lists make it an RCU pointer), global (BTF-verified)
//! subprograms as separate units, and the kernel's dynamic precision
//! tracking: a static pass stands in for it, so bpfkit explores more states
//! and widens caller scalars when a callback runs again. The differential test
//! (`tests/kernel_diff.rs`) measures the agreement with a running kernel.
//!
//! ```
//! use bpfkit_abi::ProgramType;
//! use bpfkit_isa::{assemble, Syntax};
//! use bpfkit_verifier::{Program, Verifier, VerifyOptions};
//! let ok = assemble("r0 = 2\nexit", Syntax::Llvm)?;
//! let v = Verifier::new(ProgramType::Xdp);
//! assert!(v.verify(Program::Raw(&ok), &VerifyOptions::default()).is_ok());
//! let bad = assemble("r0 = *(u32 *)(r1 + 100)\nexit", Syntax::Llvm)?;
//! let err = v.verify(Program::Raw(&bad), &VerifyOptions::default()).unwrap_err();
//! assert_eq!(err.insn, 0);
//! assert!(err.message.contains("invalid bpf_context access"), "{}", err.message);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cfg;
mod check;
pub mod ctx;
pub mod liveness;
pub mod scalar;
pub mod state;
pub mod tnum;

use bpfkit_abi::{AttachType, MapType, ProgramType};
use bpfkit_isa::{Insn, Syntax};
use bpfkit_object::{ObjectSpec, ProgramSpec, RelocTarget};
use std::collections::HashMap;
use std::fmt;

pub use ctx::{tracepoint_ctx_size, CtxField, CtxLayout, FieldKind};
pub use scalar::Scalar;
pub use state::{RegState, RegType, SlotByte};
pub use tnum::Tnum;

/// The kernel's `BPF_COMPLEXITY_LIMIT_INSNS`.
pub const COMPLEXITY_LIMIT_INSNS: u64 = 1_000_000;

/// What the verifier knows about a map a program refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Name, for messages.
    pub name: String,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Programs may not write its values (`BPF_F_RDONLY_PROG`, frozen `.rodata`).
    pub read_only: bool,
    /// The contents of element 0 when it is read-only and known (`.rodata`):
    /// loads from it give constants, as the kernel's `bpf_map_direct_read`.
    pub frozen_data: Option<Vec<u8>>,
}

impl MapInfo {
    /// A map with no known contents.
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapInfo {
        MapInfo {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            read_only: false,
            frozen_data: None,
        }
    }
}

/// Registers and stack bytes to start from instead of the kernel's entry
/// state (r1 = context, r10 = frame pointer), for test harnesses such as PREVAIL's.
#[derive(Debug, Clone, Default)]
pub struct EntryState {
    /// Registers to set, by number.
    pub regs: Vec<(u8, RegState)>,
    /// Stack bytes to set, by offset below the frame pointer (-512..=-1).
    pub stack: Vec<(i16, SlotByte)>,
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Apply the rules for loaders without `CAP_BPF`/`CAP_PERFMON`: no pointer
    /// leaks, no pointer comparisons, no reads of uninitialized stack, no loops.
    pub unprivileged: bool,
    /// Record a kernel-style trace of every instruction processed.
    pub log: bool,
    /// Give up after this many processed instructions.
    pub max_insns: u64,
    /// Division by a possibly-zero register is allowed (eBPF defines it); off
    /// for harnesses that demand a proof it does not happen.
    pub allow_div_by_zero: bool,
    /// The program's license is GPL-compatible.
    pub gpl: bool,
    /// Maps the program refers to. Raw programs use `lddw rX, map_fd N` /
    /// `map_by_idx N` with N an index into this list; objects fill it from the object.
    pub maps: Vec<MapInfo>,
    /// Size of a tracepoint context from the event's format, or of a raw
    /// tracepoint's arguments (8 bytes each).
    pub ctx_size: Option<u32>,
    /// A context layout overriding the program type's.
    pub ctx_layout: Option<CtxLayout>,
    /// The expected attach type (return value ranges depend on it).
    pub attach_type: Option<AttachType>,
    /// Start from this state instead of the kernel's.
    pub entry: Option<EntryState>,
    /// A raw program's load carries BTF `func_info` records (callbacks need
    /// them; objects say so themselves).
    pub func_info: bool,
    /// Names of the kernel functions a raw program calls, by the BTF id in
    /// its `call` instructions (objects name them in their `__ksym`
    /// externs). The caller resolves them in the kernel's BTF.
    pub kfunc_names: Vec<(u32, String)>,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            unprivileged: false,
            log: false,
            max_insns: COMPLEXITY_LIMIT_INSNS,
            allow_div_by_zero: true,
            gpl: true,
            maps: Vec::new(),
            ctx_size: None,
            ctx_layout: None,
            attach_type: None,
            entry: None,
            func_info: false,
            kfunc_names: Vec::new(),
        }
    }
}

/// A program to verify.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// Raw instructions; maps are those of [`VerifyOptions::maps`].
    Raw(&'a [Insn]),
    /// A program of an object, with its maps, relocations, license and line info.
    Object {
        /// The object.
        object: &'a ObjectSpec,
        /// One of its programs.
        program: &'a ProgramSpec,
    },
}

/// A C source line, from the object's BTF line info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// File name as the compiler recorded it.
    pub file: String,
    /// Line number, from 1.
    pub line: u32,
    /// Column, from 1 (0 when unknown).
    pub column: u32,
    /// The text of the line.
    pub text: String,
}

impl fmt::Display for SourceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.file.rsplit('/').next().unwrap_or(&self.file);
        write!(f, "{base}:{}", self.line)
    }
}

/// A program the verifier accepts.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Instructions processed over all paths (the kernel's `insn_processed`).
    pub processed_insns: u64,
    /// States remembered for pruning.
    pub total_states: usize,
    /// Stack bytes each subprogram uses.
    pub stack_depth: Vec<u32>,
    /// r0 to r10 at program exit, joined over every path that reached it
    /// (`None` when no path does).
    pub exit_regs: Option<Vec<RegState>>,
    /// The kernel-style trace, when asked for.
    pub log: String,
    /// Per slot: whether it is a memory access whose base, on every path
    /// explored, pointed into the running function's own stack frame, the
    /// access within its 512 bytes (what a JIT may emit without a bounds
    /// check).
    pub stack_accesses: Vec<bool>,
}

/// Why a program is rejected.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Slot index of the instruction (as the kernel counts: `lddw` takes two).
    pub insn: usize,
    /// Its disassembly (LLVM syntax), empty when the program did not decode.
    pub disasm: String,
    /// The C source line, when the object has line info.
    pub line: Option<SourceLine>,
    /// The reason, in plain words.
    pub message: String,
    /// The registers (and non-empty stack slots) of the innermost frame when it failed.
    pub state: String,
    /// The slots of the branches taken to get there, in order (the last 64).
    pub path: Vec<usize>,
    /// Instructions processed before the rejection.
    pub processed_insns: u64,
    /// The kernel-style trace, when asked for.
    pub log: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn {}: {}", self.insn, self.disasm)?;
        if let Some(l) = &self.line {
            write!(f, "\n  at {l}: {}", l.text.trim())?;
        }
        write!(f, "\n  {}", self.message)?;
        if !self.state.is_empty() {
            write!(f, "\n  state: {}", self.state)?;
        }
        if !self.path.is_empty() {
            let p: Vec<String> = self.path.iter().map(|p| p.to_string()).collect();
            write!(f, "\n  path: {}", p.join(" -> "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

/// Verifies programs of one program type.
#[derive(Debug, Clone)]
pub struct Verifier {
    prog_type: ProgramType,
}

/// Slot-indexed program with the information the checker needs.
pub(crate) struct Loaded {
    pub slots: Vec<Option<Insn>>,
    pub maps: Vec<MapInfo>,
    /// lddw slot → (map index, value offset for `MapValue`).
    pub map_refs: HashMap<usize, (usize, Option<u32>)>,
    pub lines: Vec<Option<SourceLine>>,
    pub gpl: bool,
    pub ctx_size: Option<u32>,
    pub attach_type: Option<AttachType>,
    /// The load carries BTF func_info.
    pub func_info: bool,
    /// Slot of each kfunc call → the kfunc's name, where known.
    pub kfuncs: HashMap<usize, String>,
}

impl Verifier {
    /// A verifier for programs of type `prog_type`.
    pub fn new(prog_type: ProgramType) -> Verifier {
        Verifier { prog_type }
    }

    /// The program type it checks.
    pub fn program_type(&self) -> ProgramType {
        self.prog_type
    }

    /// Verifies a program.
    pub fn verify(
        &self,
        program: Program<'_>,
        opts: &VerifyOptions,
    ) -> Result<Verdict, Box<Rejection>> {
        let loaded = match program {
            Program::Raw(insns) => load_raw(insns, opts),
            Program::Object { object, program } => load_object(object, program, opts),
        };
        check::run(self.prog_type, &loaded, opts)
    }
}

fn slots_of(insns: &[Insn]) -> Vec<Option<Insn>> {
    let mut slots = Vec::with_capacity(insns.len());
    for i in insns {
        slots.push(Some(*i));
        if i.slots() == 2 {
            slots.push(None);
        }
    }
    slots
}

fn load_raw(insns: &[Insn], opts: &VerifyOptions) -> Loaded {
    let slots = slots_of(insns);
    let lines = vec![None; slots.len()];
    let kfuncs = slots
        .iter()
        .enumerate()
        .filter_map(|(pc, i)| match i {
            Some(Insn::Call(bpfkit_isa::CallTarget::Kfunc { btf_id, .. })) => opts
                .kfunc_names
                .iter()
                .find(|(id, _)| *id as i32 == *btf_id)
                .map(|(_, name)| (pc, name.clone())),
            _ => None,
        })
        .collect();
    Loaded {
        kfuncs,
        slots,
        maps: opts.maps.clone(),
        map_refs: HashMap::new(),
        lines,
        gpl: opts.gpl,
        ctx_size: opts.ctx_size,
        attach_type: opts.attach_type,
        func_info: opts.func_info,
    }
}

/// The license strings the kernel's `license_is_gpl_compatible` accepts.
fn gpl_compatible(l: &str) -> bool {
    matches!(
        l,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

fn load_object(object: &ObjectSpec, program: &ProgramSpec, opts: &VerifyOptions) -> Loaded {
    let mut slots = slots_of(&program.insns);
    let mut kfuncs = HashMap::new();
    // A kfunc call reads as a bpf-to-bpf call until it is relocated.
    for r in &program.relocations {
        if let RelocTarget::Ksym {
            is_func: true,
            name,
            ..
        } = &r.target
        {
            if let Some(Some(Insn::Call(_))) = slots.get(r.insn) {
                slots[r.insn] = Some(Insn::Call(bpfkit_isa::CallTarget::Kfunc {
                    btf_id: 0,
                    module: 0,
                }));
                kfuncs.insert(r.insn, name.clone());
            }
        }
    }
    let mut maps = opts.maps.clone();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut map_refs = HashMap::new();
    for r in &program.relocations {
        let (name, offset) = match &r.target {
            RelocTarget::Map(m) => (m.as_str(), None),
            RelocTarget::MapValue { map, offset } => (map.as_str(), Some(*offset)),
            RelocTarget::Ksym { .. } => continue,
        };
        let Some(spec) = object.maps.get(name) else {
            continue;
        };
        let idx = *index.entry(name).or_insert_with(|| {
            let read_only = spec.map_flags & bpfkit_abi::map_flags::RDONLY_PROG != 0
                || name.starts_with(".rodata");
            maps.push(MapInfo {
                name: name.to_string(),
                map_type: spec.map_type,
                key_size: spec.key_size,
                value_size: spec.value_size,
                max_entries: spec.max_entries,
                read_only,
                frozen_data: if read_only { spec.data.clone() } else { None },
            });
            maps.len() - 1
        });
        map_refs.insert(r.insn, (idx, offset));
    }
    let mut lines = vec![None; slots.len()];
    if let Some(btf) = &object.btf {
        let mut recs = program.line_info.clone();
        recs.sort_by_key(|r| r.insn_off);
        for (k, rec) in recs.iter().enumerate() {
            let start = rec.insn_off as usize;
            let end = recs
                .get(k + 1)
                .map(|r| r.insn_off as usize)
                .unwrap_or(slots.len());
            let file = rec.file_name(btf).unwrap_or("").to_string();
            let text = rec.line_text(btf).unwrap_or("").to_string();
            let line = SourceLine {
                file,
                line: rec.line,
                column: rec.col,
                text,
            };
            for slot in lines.iter_mut().take(end.min(slots.len())).skip(start) {
                *slot = Some(line.clone());
            }
        }
    }
    let ctx_size = opts.ctx_size;
    Loaded {
        slots,
        maps,
        map_refs,
        lines,
        gpl: gpl_compatible(&object.license),
        ctx_size,
        attach_type: opts.attach_type.or(program.kind.attach_type),
        func_info: !program.func_info.is_empty() && object.btf.is_some(),
        kfuncs,
    }
}

/// The LLVM-syntax disassembly of one instruction.
pub(crate) fn disasm(insn: &Insn) -> String {
    insn.display(Syntax::Llvm).to_string()
}
