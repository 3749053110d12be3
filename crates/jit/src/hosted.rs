//! The ARM64 back end as a VM engine: a program's A64 code runs under
//! qemu-aarch64, and whatever is not plain code — helpers, maps, call
//! frames, context and packet loads, callbacks, tail calls, how a run
//! ends — it asks the VM for, through the same [`Machine`] the x86-64 back
//! end calls into. So `Vm::run`, `Vm::test_run` and object loading run a
//! program on ARM64 code with the VM's registry, maps and errors.
//!
//! The executable holds a copy of every region of the run's address space
//! (its arena) and a region table like the standalone executable's, so
//! loads and stores are checked inline against the same regions. At each
//! request it writes the request and the arena to standard output; the VM
//! copies the writable regions back, does what was asked, and replies
//! with the registers it changed, a new table and the regions' bytes
//! (regions the VM added, values a helper wrote). A run that ends, by its
//! exit or by a fault the executable found, is a request too: the VM builds
//! the same `RunError` the interpreter would from the pc, the faulting
//! address and the program's instruction there.
//!
//! Each run starts qemu: this back end is for checking the A64 code, not
//! for speed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::Arc;

use bpfkit_vm::engine::{AtomicKind, CallStep, CompiledCode, Flow, Halt, Machine, Op};
use bpfkit_vm::{region_base, Program, RunError};

use crate::a64::{self, A64Code, FaultKind, Request};
use crate::blocks::{access, AccessKind};
use crate::qemu::Qemu;
use crate::JitError;

/// A program's hosted A64 code, run under qemu by the VM's runs.
#[derive(Debug)]
pub struct A64Program {
    ops: Vec<Op>,
    code: A64Code,
    qemu: Arc<Qemu>,
}

impl A64Program {
    /// Compiles `program` to hosted A64 code, to run under `qemu`.
    pub fn compile(program: &Program, qemu: Arc<Qemu>) -> Result<A64Program, JitError> {
        Ok(A64Program {
            ops: program.ops().to_vec(),
            code: a64::compile_hosted(program)?,
            qemu,
        })
    }

    /// The generated code.
    pub fn code(&self) -> &A64Code {
        &self.code
    }
}

/// Compiles `program` to hosted A64 code and attaches it, so that the VM's
/// runs of the program execute it under `qemu`.
pub fn compile_a64(program: &mut Program, qemu: &Arc<Qemu>) -> Result<(), JitError> {
    let code = A64Program::compile(program, qemu.clone())?;
    program.set_compiled(Some(Arc::new(code)));
    Ok(())
}

fn engine_error(reason: impl Into<String>) -> RunError {
    RunError::Engine {
        reason: reason.into(),
    }
}

/// Where each region of the address space lies in the executable's arena.
#[derive(Default)]
struct Layout {
    /// Per region index: arena offset, length, whether writable.
    places: Vec<Place>,
}

struct Place {
    offset: usize,
    len: usize,
    writable: bool,
}

/// The region table and the arena for the address space as it is now.
fn lay_out(machine: &mut Machine<'_>) -> Result<(Layout, Vec<u8>, Vec<u8>), RunError> {
    let memory = machine.memory();
    if memory.len() > a64::HOSTED_REGIONS {
        return Err(engine_error(format!(
            "{} regions; the ARM64 executable's table holds {}",
            memory.len(),
            a64::HOSTED_REGIONS
        )));
    }
    let mut layout = Layout::default();
    let mut table = Vec::with_capacity(memory.len() * 32);
    let mut arena = Vec::new();
    for index in 0..memory.len() {
        let Some(region) = memory.region(index) else {
            break;
        };
        let offset = arena.len();
        let bytes = region.to_vec();
        table.extend(a64::table_entry(
            a64::ARENA_ADDR + offset as u64,
            bytes.len() as u64,
            region.writable,
        ));
        layout.places.push(Place {
            offset,
            len: bytes.len(),
            writable: region.writable,
        });
        arena.extend_from_slice(&bytes);
        arena.resize(arena.len().next_multiple_of(16), 0);
    }
    if arena.len() as u64 > a64::ARENA_CAPACITY {
        return Err(engine_error(format!(
            "{} bytes of regions; the ARM64 executable's arena holds {}",
            arena.len(),
            a64::ARENA_CAPACITY
        )));
    }
    Ok((layout, table, arena))
}

/// Copies what the executable may have written (its writable regions)
/// back into the address space.
fn write_back(machine: &mut Machine<'_>, layout: &Layout, arena: &[u8]) -> Result<(), RunError> {
    for (index, place) in layout.places.iter().enumerate() {
        if !place.writable || place.len == 0 {
            continue;
        }
        let bytes = arena
            .get(place.offset..place.offset + place.len)
            .ok_or_else(|| engine_error("the executable sent back a short arena"))?;
        machine
            .memory()
            .write(region_base(index), bytes)
            .map_err(|e| engine_error(format!("writing back region {index}: {e}")))?;
    }
    Ok(())
}

/// What the VM answers a request with.
struct Reply {
    /// r0..r5 as they are after the request.
    regs: [u64; 6],
    /// The address to call and the callee's r10, when there is a call.
    call: Option<(u64, u64)>,
    /// The value an `lddw` or a context load gives.
    value: u64,
}

/// A running executable: killed, reaped and its file removed on drop.
struct Process {
    child: Child,
    path: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        // An executable that already exited makes kill fail, harmlessly.
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_file(&self.path).ok();
    }
}

/// A running executable and the pipes to it (closed before it is killed).
struct Session {
    to: ChildStdin,
    from: ChildStdout,
    process: Process,
}

impl Session {
    fn read_words<const N: usize>(&mut self) -> Result<[u64; N], RunError> {
        let mut bytes = vec![0u8; 8 * N];
        self.read_exact(&mut bytes)?;
        let mut words = [0u64; N];
        for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
        }
        Ok(words)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), RunError> {
        if self.from.read_exact(buf).is_ok() {
            return Ok(());
        }
        let status = self.process.child.wait().map(|s| s.to_string());
        Err(engine_error(format!(
            "qemu-aarch64 stopped mid-run ({})",
            status.unwrap_or_else(|e| e.to_string())
        )))
    }

    fn send(&mut self, reply: &[u64], table: &[u8], arena: &[u8]) -> Result<(), RunError> {
        let mut out: Vec<u8> = reply.iter().flat_map(|w| w.to_le_bytes()).collect();
        out.extend_from_slice(table);
        out.extend_from_slice(arena);
        self.to
            .write_all(&out)
            .map_err(|e| engine_error(format!("writing to qemu-aarch64: {e}")))
    }
}

impl CompiledCode for A64Program {
    fn run(&self, machine: &mut Machine<'_>, args: [u64; 5]) -> Result<Flow, RunError> {
        // Code attached to another program would run that program's
        // instructions with this one's maps and frames: refuse it.
        if machine.program().ops() != self.ops.as_slice() {
            return Err(RunError::Internal { pc: 0 });
        }
        let (mut layout, table, arena) = lay_out(machine)?;
        let mut first = [0u64; a64::REPLY_WORDS];
        first[a64::REPLY_ARGS as usize..a64::REPLY_ARGS as usize + 5].copy_from_slice(&args);
        first[a64::REPLY_FP as usize] = machine.frame_pointer();
        first[a64::REPLY_BUDGET as usize] = machine.remaining();
        let (exe, code_addr) = a64::hosted_executable(&self.code, &table, &first, &arena);
        let (child, path) = self
            .qemu
            .spawn(&exe)
            .map_err(|e| engine_error(e.to_string()))?;
        let mut process = Process { child, path };
        let (Some(to), Some(from)) = (process.child.stdin.take(), process.child.stdout.take())
        else {
            return Err(engine_error("qemu-aarch64 started without pipes"));
        };
        let mut sent_entries = layout.places.len();
        let mut session = Session { to, from, process };
        loop {
            let request = session.read_words::<{ a64::REQUEST_WORDS }>()?;
            let mut arena = vec![0u8; request[16] as usize];
            session.read_exact(&mut arena)?;
            write_back(machine, &layout, &arena)?;
            machine.set_remaining(request[15]);
            let Some(what) = Request::from_code(request[0]) else {
                return Err(engine_error(format!("unknown request {}", request[0])));
            };
            if what == Request::Exit {
                return Ok(Flow::Exit(request[4]));
            }
            let reply = match self.serve(machine, what, request, code_addr) {
                Ok(reply) => reply,
                Err(halt) => return halt.into_result(),
            };
            let (next, table, arena) = lay_out(machine)?;
            layout = next;
            let mut words = [0u64; a64::REPLY_WORDS];
            words[0] = reply.regs[0];
            words[a64::REPLY_ARGS as usize..a64::REPLY_ARGS as usize + 5]
                .copy_from_slice(&reply.regs[1..6]);
            if let Some((addr, fp)) = reply.call {
                words[1] = 1;
                words[2] = addr;
                words[a64::REPLY_FP as usize] = fp;
            }
            words[a64::REPLY_BUDGET as usize] = machine.remaining();
            words[a64::REPLY_ARENA as usize] = arena.len() as u64;
            words[a64::REPLY_VALUE as usize] = reply.value;
            // Entries past the regions there are now zero those of regions
            // gone since the last reply.
            let entries = layout.places.len().max(sent_entries);
            let mut table = table;
            table.resize(entries * 32, 0);
            sent_entries = layout.places.len();
            words[a64::REPLY_TABLE as usize] = entries as u64;
            session.send(&words, &table, &arena)?;
        }
    }
}

impl A64Program {
    /// Does what `request` (words: what, pc, two operands, r0..r10)
    /// asks.
    fn serve(
        &self,
        machine: &mut Machine<'_>,
        what: Request,
        request: [u64; a64::REQUEST_WORDS],
        code_addr: u64,
    ) -> Result<Reply, Halt> {
        let pc = request[1] as usize;
        let regs = &request[4..15];
        let mut reply = Reply {
            regs: [regs[0], regs[1], regs[2], regs[3], regs[4], regs[5]],
            call: None,
            value: 0,
        };
        let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
        let (a, b) = (request[2], request[3]);
        let op = self.ops.get(pc).copied();
        let slot_addr = |slot: usize| -> Result<u64, Halt> {
            match self.code.starts.get(slot) {
                Some(Some(start)) => Ok(code_addr + 4 * *start as u64),
                _ => Err(Halt::from(RunError::Internal { pc })),
            }
        };
        let step = |reply: &mut Reply, machine: &mut Machine<'_>, step: CallStep| {
            match step {
                CallStep::Return(v) => reply.regs[0] = v,
                CallStep::Call { target, args } => {
                    if let Some(args) = args {
                        reply.regs[1..6].copy_from_slice(&args);
                    }
                    reply.call = Some((slot_addr(target)?, machine.frame_pointer()));
                }
            }
            Ok::<(), Halt>(())
        };
        match what {
            Request::Exit => {}
            Request::End => return Err(end(machine, op, pc, a, b)),
            Request::Helper => reply.regs[0] = machine.call_helper(pc, a as i32, args)?,
            Request::MapHandle => reply.value = machine.map_handle(pc, a as u32)?,
            Request::MapValue => reply.value = machine.map_value_addr(pc, a as u32, b as u32)?,
            Request::LoadContext => reply.value = machine.load_context32(pc, a)?,
            Request::Packet => {
                let (size, off) = match op {
                    Some(Op::LdAbs(size, imm)) => (size, imm as i64 as u64),
                    Some(Op::LdInd(size, s, imm)) => (
                        size,
                        (regs[s as usize % 11] as u32 as u64).wrapping_add(imm as i64 as u64),
                    ),
                    _ => return Err(Halt::from(RunError::Internal { pc })),
                };
                reply.regs[0] = machine.packet_load(size, off)?;
            }
            Request::Enter => {
                let Some(Op::CallLocal(target)) = op else {
                    return Err(Halt::from(RunError::Internal { pc }));
                };
                let fp = machine.enter_frame(pc)?;
                reply.call = Some((slot_addr(target as usize)?, fp));
            }
            Request::Leave => {
                machine.leave_frame();
            }
            Request::Callx => {
                let s = machine.callx(pc, a, args)?;
                step(&mut reply, machine, s)?;
            }
            Request::CallbackStart => {
                let s = machine.start_callback(pc, a as i32, args)?;
                step(&mut reply, machine, s)?;
            }
            Request::CallbackReturned => {
                let s = machine.callback_returned(regs[0])?;
                step(&mut reply, machine, s)?;
            }
        }
        Ok(reply)
    }
}

/// How a run the executable ended at `pc` with fault kind `kind` (at
/// guest address `addr` for a memory fault) ends in the VM: the error the
/// machine gives for the same access, which the executable found outside
/// every region. A machine that allows it means the two disagree.
fn end(machine: &mut Machine<'_>, op: Option<Op>, pc: usize, addr: u64, kind: u64) -> Halt {
    let internal = || Halt::from(RunError::Internal { pc });
    match FaultKind::from_code(kind) {
        Some(FaultKind::Budget) => machine.budget_exhausted(pc),
        Some(FaultKind::Memory) => {
            let failed = match op {
                // Adding 0 changes nothing, should the machine allow it.
                Some(Op::Atomic(_, _, dw, ..)) => {
                    machine.atomic(pc, AtomicKind::Add, dw, addr, 0, 0).err()
                }
                Some(op) => match access(&op) {
                    Some(acc) if matches!(acc.kind, AccessKind::Load { .. }) => {
                        machine.load(pc, addr, acc.size as usize).err()
                    }
                    Some(acc) => machine.store(pc, addr, acc.size as usize, 0).err(),
                    None => None,
                },
                None => None,
            };
            failed.unwrap_or_else(internal)
        }
        _ => internal(),
    }
}
