//! A memory-safe userspace eBPF runtime: run eBPF programs with no kernel and
//! no root, for embedding and for testing BPF programs.
//!
//! A [`Program`] is decoded and checked once, then executed by an
//! interpreter over a pre-decoded form. Every load, store and atomic is
//! checked against the regions the program may touch ([`AddressSpace`]); a
//! bad access ends the run with a [`RunError`] naming the instruction, the
//! address, the size and the reason. An instruction budget stops runaway loops.
//!
//! ```
//! use bpfkit_isa::{Insn, Reg, Width, AluOp, Operand};
//! use bpfkit_vm::{Program, Vm};
//! let prog = Program::new(vec![
//!     Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(42) },
//!     Insn::Exit,
//! ]).unwrap();
//! assert_eq!(Vm::new().run(&prog, &mut []).unwrap(), 42);
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod conformance;
mod error;
mod helpers;
mod interp;
mod memory;
mod program;

pub use error::{FaultKind, LoadError, RunError};
pub use helpers::{conformance_helper, Helper, HelperContext, HelperFn, HelperRegistry};
pub use interp::{HelperOutcome, RunLimits, MAX_FRAMES, STACK_PER_FRAME};
pub use memory::{region_base, AddressSpace, Backing, Region, RegionKind, SharedBytes};
pub use program::Program;

use interp::{Environment, HelperCallError};

/// The runtime: registered helpers and run limits.
#[derive(Default)]
pub struct Vm {
    helpers: HelperRegistry,
    limits: RunLimits,
}

impl Vm {
    /// A runtime with no helpers and the default instruction budget.
    pub fn new() -> Vm {
        Vm::default()
    }

    /// A runtime set up as the bpf_conformance suite expects: helper 5
    /// returns its first argument and stops the program when it is 0.
    pub fn for_conformance() -> Vm {
        let mut vm = Vm::new();
        vm.helpers
            .register(5, "conformance_helper", conformance_helper);
        vm
    }

    /// The helper registry, to add embedder helpers.
    pub fn helpers_mut(&mut self) -> &mut HelperRegistry {
        &mut self.helpers
    }

    /// Sets the instruction budget of each run.
    pub fn set_budget(&mut self, budget: u64) {
        self.limits.budget = budget;
    }

    /// Runs `program` with `r1` pointing to a copy of `mem` and `r2` holding
    /// its length (the conformance convention); changes the program makes to
    /// the memory are copied back. Returns `r0`.
    pub fn run(&mut self, program: &Program, mem: &mut [u8]) -> Result<u64, RunError> {
        let mut space = AddressSpace::new();
        let base = if mem.is_empty() {
            0
        } else {
            space.add(RegionKind::Input, true, mem.to_vec())
        };
        let result = self.run_in(program, &mut space, [base, mem.len() as u64, 0, 0, 0]);
        if let Some(region) = space.region(0) {
            mem.copy_from_slice(&region.to_vec());
        }
        result
    }

    /// Runs `program` over an address space the caller prepared, with
    /// `r1..r5` set to `args`.
    pub fn run_in(
        &mut self,
        program: &Program,
        space: &mut AddressSpace,
        args: [u64; 5],
    ) -> Result<u64, RunError> {
        let mut env = VmEnvironment {
            helpers: &mut self.helpers,
        };
        interp::execute(program, space, &mut env, args, self.limits)
    }
}

struct VmEnvironment<'a> {
    helpers: &'a mut HelperRegistry,
}

impl Environment for VmEnvironment<'_> {
    fn call_helper(
        &mut self,
        id: i64,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let helper = self.helpers.get_mut(id).ok_or(HelperCallError::Unknown)?;
        let mut ctx = HelperContext { memory };
        (helper.func)(&mut ctx, args).map_err(|message| HelperCallError::Fault {
            name: helper.name.clone(),
            message,
        })
    }

    fn map_handle(&mut self, index: u32) -> Result<u64, HelperCallError> {
        Err(HelperCallError::Fault {
            name: "lddw".into(),
            message: format!("program refers to map {index}, but no maps are loaded"),
        })
    }

    fn map_value_addr(
        &mut self,
        index: u32,
        _offset: u32,
        _memory: &mut AddressSpace,
    ) -> Result<u64, HelperCallError> {
        self.map_handle(index)
    }
}
