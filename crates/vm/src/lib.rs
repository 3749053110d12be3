//! A memory-safe userspace eBPF runtime: run eBPF programs with no kernel and
//! no root, for embedding and for testing BPF programs.
//!
//! A [`Program`] is decoded and checked once, then executed by an interpreter
//! over a pre-decoded form. Every load, store and atomic is checked against
//! the regions the program may touch ([`AddressSpace`]); a bad access ends the
//! run with a [`RunError`] naming the instruction, the address, the size and
//! the reason; each call frame has the kernel's 512 bytes of stack. The
//! loader refuses what the kernel refuses before verification (bad jump and
//! call targets, jumps between subprograms), and an instruction budget
//! ([`DEFAULT_BUDGET`]) stops runaway loops. [`maps`] gives the kernel's map
//! types with the kernel's semantics, and the built-in helpers use the
//! kernel's ids and error codes, including the ones that call back into the
//! program (`bpf_loop`, `bpf_for_each_map_elem`).
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

mod builtins;
pub mod conformance;
mod context;
pub mod engine;
mod error;
mod helpers;
mod interp;
pub mod maps;
mod memory;
pub mod object;
mod program;
mod workspace;

use std::time::{Duration, Instant};

pub use context::{sk_buff, xdp_md, ContextKind, SK_BUFF_SIZE, XDP_HEADROOM, XDP_MD_SIZE};
pub use error::{FaultKind, LoadError, RunError};
pub use helpers::{conformance_helper, Helper, HelperContext, HelperFn, HelperRegistry};
pub use interp::{
    HelperOutcome, RunLimits, DEFAULT_BUDGET, MAX_FRAMES, MAX_TAIL_CALLS, STACK_PER_FRAME,
};
pub use maps::{Map, MapDef, MapError};
pub use memory::{
    region_base, AddressSpace, Backing, HeldBytes, OwnedView, Region, RegionKind, SharedBytes,
};
pub use program::Program;

use builtins::RunEnv;
use context::PacketPointers;
use interp::Stack;
use workspace::{RunSpace, Workspace};

/// The task a program sees as "current" (`bpf_get_current_pid_tgid` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Thread id (the kernel's `pid`).
    pub pid: u32,
    /// Process id (the kernel's `tgid`).
    pub tgid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Command name, up to 15 bytes.
    pub comm: Vec<u8>,
}

impl Default for Task {
    fn default() -> Self {
        Task {
            pid: 1,
            tgid: 1,
            uid: 0,
            gid: 0,
            comm: b"bpfkit-vm".to_vec(),
        }
    }
}

/// State the built-in helpers use.
pub(crate) struct VmState {
    pub(crate) task: Task,
    /// What `bpf_get_current_task` returns: an address in probe memory, or 0.
    pub(crate) task_addr: u64,
    pub(crate) cpu: u32,
    pub(crate) trace: Vec<String>,
    pub(crate) probe_memory: Vec<(u64, Vec<u8>)>,
    pub(crate) builtins: bool,
    started: Instant,
    random: u64,
}

impl VmState {
    pub(crate) fn clock_ns(&self) -> u64 {
        // Monotonic, starting at one second so that 0 never looks like a time.
        1_000_000_000 + self.started.elapsed().as_nanos() as u64
    }

    pub(crate) fn next_random(&mut self) -> u32 {
        // xorshift64*: fast, and deterministic per VM for reproducible tests.
        let mut x = self.random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// The runtime: maps, helpers, the current task and CPU, run limits.
pub struct Vm {
    parts: RunParts,
    maps: Vec<Map>,
    ncpus: usize,
    /// The address space of [`Vm::run`], reused across runs so that a run
    /// allocates nothing and, over input of one length, keeps its layout.
    scratch: Workspace,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

/// Input of [`Vm::test_run`], mirroring `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// Packet data (XDP, skb programs), or the context bytes for raw programs
    /// when `ctx_in` is empty.
    pub data_in: Vec<u8>,
    /// Context bytes: `xdp_md`/`__sk_buff` fields to start from, or the raw context.
    pub ctx_in: Vec<u8>,
    /// How many times to run (at least once).
    pub repeat: u32,
}

/// Output of [`Vm::test_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunResult {
    /// `r0` of the last run.
    pub retval: u64,
    /// The packet after the last run (between `data` and `data_end`).
    pub data_out: Vec<u8>,
    /// The context after the last run.
    pub ctx_out: Vec<u8>,
    /// Mean duration of one run.
    pub duration: Duration,
}

impl Vm {
    /// A runtime with the built-in helpers, one virtual CPU and the default budget.
    pub fn new() -> Vm {
        Vm {
            parts: RunParts {
                helpers: HelperRegistry::default(),
                limits: RunLimits::default(),
                state: VmState {
                    task: Task::default(),
                    task_addr: 0,
                    cpu: 0,
                    trace: Vec::new(),
                    probe_memory: Vec::new(),
                    builtins: true,
                    started: Instant::now(),
                    random: 0x9e37_79b9_7f4a_7c15,
                },
                last_executed: 0,
                stack: Stack::default(),
            },
            maps: Vec::new(),
            ncpus: 1,
            scratch: Workspace::new(AddressSpace::new()),
        }
    }

    /// A runtime set up as the bpf_conformance suite expects: only helper 5,
    /// which returns its first argument and stops the program when it is 0.
    pub fn for_conformance() -> Vm {
        let mut vm = Vm::new();
        vm.parts.state.builtins = false;
        vm.parts
            .helpers
            .register(5, "conformance_helper", conformance_helper);
        vm
    }

    /// The helper registry, to add embedder helpers (they take precedence
    /// over built-ins with the same id).
    pub fn helpers_mut(&mut self) -> &mut HelperRegistry {
        // A lookup compiled code remembered may not be what a new helper
        // gives.
        self.scratch.forget_engine_state();
        &mut self.parts.helpers
    }

    /// Instructions the last run executed (for measurements).
    pub fn last_executed(&self) -> u64 {
        self.parts.last_executed
    }

    /// Sets the instruction budget of each run: a run that executes more
    /// instructions stops with [`RunError::BudgetExhausted`]. The default is
    /// [`DEFAULT_BUDGET`] (2^24); raise it for programs that iterate longer.
    pub fn set_budget(&mut self, budget: u64) {
        self.parts.limits.budget = budget;
    }

    /// Sets the number of virtual CPUs per-CPU maps created later keep values for.
    pub fn set_cpus(&mut self, ncpus: usize) {
        self.ncpus = ncpus.max(1);
    }

    /// Sets the CPU the next runs execute on (`bpf_get_smp_processor_id`).
    pub fn set_current_cpu(&mut self, cpu: u32) {
        self.parts.state.cpu = cpu.min(self.ncpus as u32 - 1);
        // Lookups in per-CPU maps compiled code remembered were another
        // CPU's.
        self.scratch.forget_engine_state();
    }

    /// Sets the task programs see as current.
    pub fn set_current_task(&mut self, task: Task) {
        self.parts.state.task = task;
    }

    /// Sets what `bpf_get_current_task` returns: typically an address given
    /// to [`Vm::add_probe_memory`] holding a `task_struct` image.
    pub fn set_current_task_addr(&mut self, addr: u64) {
        self.parts.state.task_addr = addr;
    }

    /// Makes `bytes` readable by `bpf_probe_read*` at address `addr`.
    pub fn add_probe_memory(&mut self, addr: u64, bytes: Vec<u8>) {
        self.parts.state.probe_memory.push((addr, bytes));
    }

    /// Takes the lines programs printed with `bpf_trace_printk`.
    pub fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.parts.state.trace)
    }

    /// Creates a map; programs refer to it as `lddw rX, map[index]`
    /// (`Imm64::MapFd(index)` or `MapIdx(index)`). Returns its index.
    pub fn create_map(&mut self, def: MapDef) -> Result<u32, MapError> {
        let map = Map::new(def, self.ncpus)?;
        self.maps.push(map);
        Ok(self.maps.len() as u32 - 1)
    }

    /// The map at `index`.
    pub fn map(&self, index: u32) -> Option<&Map> {
        self.maps.get(index as usize)
    }

    /// Runs `program` with `r1` pointing to a copy of `mem` and `r2` holding
    /// its length (the conformance convention); changes the program makes to
    /// the memory are copied back. Returns `r0`.
    ///
    /// Runs over memory of one length reuse one address space, layout and
    /// all (its entry frame stays, only the bytes programs may have written
    /// zeroed): compiled code keeps its tables of it from run to run, so a
    /// short program over a small buffer is cheapest run this way. Map
    /// values a run looked up stay in the space for the next (up to 128),
    /// at the same addresses, as values stay put in the kernel while their
    /// elements live; compiled code keeps its lookups of them too.
    pub fn run(&mut self, program: &Program, mem: &mut [u8]) -> Result<u64, RunError> {
        // The scratch space keeps its input region (and its buffer) between
        // runs, so a run only copies the bytes in and out.
        let base = self.scratch.set_input(mem);
        let result = run_program(
            &mut self.parts,
            &self.maps,
            program,
            self.scratch.run_space(),
            [base, mem.len() as u64, 0, 0, 0],
            0,
            &mut None,
        );
        if !mem.is_empty() {
            self.scratch.space.copy_region_to(0, mem);
        }
        result
    }

    /// Runs `program` as [`Vm::run`] does, over `mem` itself rather than a
    /// copy: the vector is lent to the run as its input region and given
    /// back afterwards, so a run over a large buffer copies nothing. What
    /// `mem` holds afterwards, after a fault too, is what it would hold
    /// after [`Vm::run`]: the bytes as the program left them.
    pub fn run_vec(&mut self, program: &Program, mem: &mut Vec<u8>) -> Result<u64, RunError> {
        let len = mem.len() as u64;
        let (base, spare) = self.scratch.lend_input(mem);
        let result = run_program(
            &mut self.parts,
            &self.maps,
            program,
            self.scratch.run_space(),
            [base, len, 0, 0, 0],
            0,
            &mut None,
        );
        self.scratch.return_input(mem, spare);
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
        // The caller may change the space before the next run: no state
        // of it is kept, and the frames leave it as they found it.
        let mut frames = std::mem::take(&mut self.parts.stack);
        let result = run_program(
            &mut self.parts,
            &self.maps,
            program,
            RunSpace {
                space,
                frames: &mut frames,
                engine: None,
            },
            args,
            0,
            &mut None,
        );
        self.parts.stack = frames;
        result
    }

    /// Runs `program` as `BPF_PROG_TEST_RUN` does: builds its context from
    /// `input` (an `xdp_md` or `__sk_buff` over the packet, or raw bytes),
    /// runs it `repeat` times, and returns the last result with the mean time.
    ///
    /// Packet input is checked and the `__sk_buff` filled as the kernel's
    /// bpf_prog_test_run_skb does on the loopback device: a frame shorter
    /// than an Ethernet header, an IPv4 or IPv6 frame too short for its
    /// network header, or context fields the kernel does not let the caller
    /// set give [`RunError::InvalidInput`] with `EINVAL`; `pkt_type` is what
    /// eth_type_trans makes of the destination address, `ifindex` is 1
    /// unless the context names another device (which the VM does not
    /// check), and an L3 program's output frame has a zeroed Ethernet header.
    pub fn test_run(
        &mut self,
        program: &Program,
        input: &TestRun,
    ) -> Result<TestRunResult, RunError> {
        let repeat = input.repeat.max(1);
        let mut run = TestRunSpace::new(program.context(), input)?;
        // As bpf_test_run: every repetition runs on the same context and
        // packet, set up once, and what the last one leaves is the output.
        let started = Instant::now();
        let mut r0 = 0;
        for _ in 0..repeat {
            r0 = self.test_run_once(program, &mut run)?;
        }
        let elapsed = started.elapsed() / repeat;
        let (data_out, ctx_out) = run.output();
        Ok(TestRunResult {
            retval: r0,
            data_out,
            ctx_out,
            duration: elapsed,
        })
    }

    fn test_run_once(
        &mut self,
        program: &Program,
        run: &mut TestRunSpace,
    ) -> Result<u64, RunError> {
        // A helper may move the packet's bounds (bpf_xdp_adjust_head): the
        // next repetition starts from where this one left them.
        run_program(
            &mut self.parts,
            &self.maps,
            program,
            run.work.run_space(),
            run.args,
            run.ctx_base,
            &mut run.packet,
        )
    }
}

/// The parts of a [`Vm`] a run uses besides its maps, apart so that a run
/// can borrow them and the VM's scratch address space at once.
struct RunParts {
    helpers: HelperRegistry,
    limits: RunLimits,
    state: VmState,
    last_executed: u64,
    /// Frames of runs over spaces the caller prepared ([`Vm::run_in`]),
    /// whose buffers are reused across runs so that a run allocates nothing.
    stack: Stack,
}

/// Runs `program` over `run` with `r1..r5` = `args`; `packet` is where the
/// packet lies on entry, and afterwards where the run left it.
fn run_program(
    parts: &mut RunParts,
    maps: &[Map],
    program: &Program,
    run: RunSpace<'_>,
    args: [u64; 5],
    ctx_base: u64,
    packet: &mut Option<PacketPointers>,
) -> Result<u64, RunError> {
    let limits = parts.limits;
    let mut env = RunEnv {
        state: &mut parts.state,
        helpers: &mut parts.helpers,
        maps,
        context: program.context(),
        ctx_base,
        packet: *packet,
        reservations: Vec::new(),
        tail_calls: 0,
        free_keys: Vec::new(),
    };
    let result = interp::execute(
        program,
        run.space,
        &mut env,
        args,
        limits,
        &mut parts.last_executed,
        run.frames,
        run.engine,
    );
    if env.packet.is_some() {
        *packet = env.packet;
    }
    result
}

/// The memory a test run's repetitions share: the context and packet
/// `BPF_PROG_TEST_RUN` builds once from its input.
struct TestRunSpace {
    work: Workspace,
    ctx_base: u64,
    packet: Option<PacketPointers>,
    /// r1..r5 on entry.
    args: [u64; 5],
    /// Bytes of link-layer header an L3 program does not see.
    l2_len: usize,
}

impl TestRunSpace {
    fn new(context: ContextKind, input: &TestRun) -> Result<TestRunSpace, RunError> {
        let mut space = AddressSpace::new();
        match context {
            ContextKind::Raw => {
                let ctx = if input.ctx_in.is_empty() {
                    &input.data_in
                } else {
                    &input.ctx_in
                };
                let base = space.add(RegionKind::Context, true, ctx.clone());
                Ok(TestRunSpace {
                    work: Workspace::new(space),
                    ctx_base: base,
                    packet: None,
                    args: [base, ctx.len() as u64, 0, 0, 0],
                    l2_len: 0,
                })
            }
            ContextKind::Xdp | ContextKind::SkBuff | ContextKind::SkBuffL3 => {
                let (ctx_size, headroom, tailroom) = match context {
                    ContextKind::Xdp => (XDP_MD_SIZE, XDP_HEADROOM, 256),
                    _ => (SK_BUFF_SIZE, 0, 0),
                };
                // Socket filters and cgroup skb programs see the packet from the
                // network header, as after the kernel's eth_type_trans pull.
                let l2_len = if context == ContextKind::SkBuffL3 {
                    input.data_in.len().min(14)
                } else {
                    0
                };
                context::check_test_run_input(context, &input.data_in, &input.ctx_in)?;
                let payload = &input.data_in[l2_len..];
                let mut ctx = vec![0u8; ctx_size];
                let n = input.ctx_in.len().min(ctx_size);
                ctx[..n].copy_from_slice(&input.ctx_in[..n]);
                if context != ContextKind::Xdp {
                    context::fill_sk_buff(&mut ctx, &input.data_in, payload.len());
                }
                let ctx_base = space.add(RegionKind::Context, context != ContextKind::Xdp, ctx);
                let mut buffer = vec![0u8; headroom + payload.len() + tailroom];
                buffer[headroom..headroom + payload.len()].copy_from_slice(payload);
                let buffer_len = buffer.len() as u64;
                let buf = space.add(RegionKind::Packet, true, buffer);
                let data = buf + headroom as u64;
                Ok(TestRunSpace {
                    work: Workspace::new(space),
                    ctx_base,
                    packet: Some(PacketPointers {
                        buffer: buf,
                        buffer_len,
                        data_meta: data,
                        data,
                        data_end: data + payload.len() as u64,
                    }),
                    args: [ctx_base, 0, 0, 0, 0],
                    l2_len,
                })
            }
        }
    }

    /// The packet and context after the last run.
    fn output(&self) -> (Vec<u8>, Vec<u8>) {
        let ctx_out = self
            .work
            .space
            .region(0)
            .map(Region::to_vec)
            .unwrap_or_default();
        let Some(p) = self.packet else {
            return (Vec::new(), ctx_out);
        };
        // bpf_prog_test_run_skb pushes a zeroed link-layer header back
        // in front of what an L3 program saw.
        let mut data_out = vec![0; self.l2_len];
        data_out.extend(
            self.work
                .space
                .read(p.data, (p.data_end - p.data) as usize)
                .unwrap_or_default(),
        );
        (data_out, ctx_out)
    }
}
