//! Programs using helpers, maps and contexts, written in the LLVM syntax.

use bpfkit_abi::{xdp_action, MapType};
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{
    ContextKind, FaultKind, MapDef, Program, RunError, Task, TestRun, Vm, DEFAULT_BUDGET,
    XDP_MD_SIZE,
};

fn prog(src: &str) -> Program {
    Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap()
}

fn prog_ctx(src: &str, ctx: ContextKind) -> Program {
    Program::with_context(assemble(src, Syntax::Llvm).unwrap(), ctx).unwrap()
}

#[test]
fn counter_in_a_hash_map() {
    let mut vm = Vm::new();
    let map = vm.create_map(MapDef::new(MapType::Hash, 4, 8, 16)).unwrap();
    // key = 7; v = lookup(key); if !v { update(key, 1) } else { *v += 1 }
    let p = prog(
        "*(u32 *)(r10 - 4) = 7
         r2 = r10
         r2 += -4
         r1 = map[fd:0]
         call 1
         if r0 != 0 goto found
         *(u64 *)(r10 - 16) = 1
         r2 = r10
         r2 += -4
         r3 = r10
         r3 += -16
         r1 = map[fd:0]
         r4 = 0
         call 2
         r0 = 0
         exit
         found:
         r1 = 1
         lock *(u64 *)(r0 + 0) += r1
         r0 = 0
         exit",
    );
    for _ in 0..5 {
        assert_eq!(vm.run(&p, &mut []).unwrap(), 0);
    }
    let m = vm.map(map).unwrap();
    assert_eq!(
        m.lookup(&7u32.to_ne_bytes()).unwrap(),
        Some(5u64.to_ne_bytes().to_vec())
    );
}

#[test]
fn current_task_and_trace_printk() {
    let mut vm = Vm::new();
    vm.set_current_task(Task {
        pid: 42,
        tgid: 40,
        uid: 1000,
        gid: 100,
        comm: b"bash".to_vec(),
    });
    let p = prog(
        "call 14
         r6 = r0
         r1 = 0x0a6425 ll
         *(u64 *)(r10 - 8) = r1
         r1 = r10
         r1 += -8
         r2 = 4
         r3 = r6
         r3 >>= 32
         call 6
         r0 = r6
         exit",
    );
    let r0 = vm.run(&p, &mut []).unwrap();
    assert_eq!(r0, (40 << 32) | 42);
    assert_eq!(vm.take_trace(), vec!["40\n".to_string()]);
}

#[test]
fn ring_buffer_reserve_submit_and_output() {
    let mut vm = Vm::new();
    let rb = vm
        .create_map(MapDef::new(MapType::Ringbuf, 0, 0, 4096))
        .unwrap();
    let p = prog(
        "r1 = map[fd:0]
         r2 = 8
         r3 = 0
         call 131
         if r0 == 0 goto out
         r1 = 0x1122334455667788 ll
         *(u64 *)(r0 + 0) = r1
         r1 = r0
         r2 = 0
         call 132
         *(u32 *)(r10 - 4) = 99
         r1 = map[fd:0]
         r2 = r10
         r2 += -4
         r3 = 4
         r4 = 0
         call 130
         out:
         r0 = 0
         exit",
    );
    vm.run(&p, &mut []).unwrap();
    let records = vm.map(rb).unwrap().drain_ringbuf().unwrap();
    assert_eq!(
        records,
        vec![
            0x1122334455667788u64.to_le_bytes().to_vec(),
            99u32.to_le_bytes().to_vec()
        ]
    );
}

#[test]
fn tail_call_through_a_prog_array() {
    let mut vm = Vm::new();
    let progs = vm
        .create_map(MapDef::new(MapType::ProgArray, 4, 4, 4))
        .unwrap();
    let target = prog("r0 = 77\nexit");
    vm.map(progs)
        .unwrap()
        .set_program(2, std::sync::Arc::new(target))
        .unwrap();
    let caller = |index: u32| {
        prog(&format!(
            "r2 = map[fd:0]
             r3 = {index}
             call 12
             r0 = 1
             exit"
        ))
    };
    assert_eq!(vm.run(&caller(2), &mut []).unwrap(), 77);
    assert_eq!(
        vm.run(&caller(3), &mut []).unwrap(),
        1,
        "empty slot falls through"
    );
}

#[test]
fn xdp_packet_pointers_and_bounds() {
    // Drop UDP to port 53, pass everything else; the bounds checks are the
    // program's, and reads beyond data_end would fault in the VM anyway.
    let src = "r2 = *(u32 *)(r1 + 0)
               r3 = *(u32 *)(r1 + 4)
               r4 = r2
               r4 += 38
               if r4 > r3 goto pass
               r5 = *(u8 *)(r2 + 23)
               if r5 != 17 goto pass
               r5 = *(u16 *)(r2 + 36)
               if r5 != 0x3500 goto pass
               r0 = 1
               exit
               pass:
               r0 = 2
               exit";
    let p = prog_ctx(src, ContextKind::Xdp);
    let mut pkt = vec![0u8; 42];
    pkt[12] = 0x08; // IPv4
    pkt[23] = 17; // UDP
    pkt[36] = 0;
    pkt[37] = 53; // dport 53
    let mut vm = Vm::new();
    let run = |vm: &mut Vm, data: Vec<u8>| {
        vm.test_run(
            &p,
            &TestRun {
                data_in: data,
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap()
    };
    let r = run(&mut vm, pkt.clone());
    assert_eq!(r.retval, xdp_action::DROP as u64);
    assert_eq!(r.data_out, pkt);
    assert_eq!(r.ctx_out.len(), XDP_MD_SIZE);
    pkt[37] = 54;
    assert_eq!(run(&mut vm, pkt).retval, xdp_action::PASS as u64);
    assert_eq!(
        run(&mut vm, vec![0u8; 20]).retval,
        xdp_action::PASS as u64,
        "short packet"
    );
}

#[test]
fn xdp_adjust_head_moves_data() {
    let p = prog_ctx(
        "r6 = r1
         r2 = -4
         call 44
         if r0 != 0 goto fail
         r2 = *(u32 *)(r6 + 0)
         *(u32 *)(r2 + 0) = 0x04030201
         r0 = 2
         exit
         fail:
         r0 = 0
         exit",
        ContextKind::Xdp,
    );
    let r = Vm::new()
        .test_run(
            &p,
            &TestRun {
                data_in: vec![9u8; 20],
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap();
    assert_eq!(r.retval, 2);
    assert_eq!(&r.data_out[..4], &[1, 2, 3, 4]);
    assert_eq!(r.data_out.len(), 24);
}

#[test]
fn faults_name_pc_address_size_and_reason() {
    let p = prog("r1 = 0x1000 ll\nr0 = *(u64 *)(r1 + 8)\nexit");
    match Vm::new().run(&p, &mut []) {
        Err(RunError::MemoryFault {
            pc,
            addr,
            size,
            access,
            kind,
        }) => {
            assert_eq!((pc, addr, size, access), (2, 0x1008, 8, "load"));
            assert_eq!(kind, FaultKind::Unmapped);
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    let stack_overflow = prog("*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit");
    assert!(matches!(
        Vm::new().run(&stack_overflow, &mut []),
        Err(RunError::MemoryFault {
            kind: FaultKind::OutsideStackFrame {
                frame: 0,
                offset: 0
            },
            ..
        })
    ));
}

/// The fault of `src`, run with 16 bytes of input memory (so the stack is not
/// the first region and an underflow would land in another region's range).
fn stack_fault(src: &str) -> (usize, &'static str, FaultKind) {
    match Vm::new().run(&prog(src), &mut [0; 16]) {
        Err(RunError::MemoryFault {
            pc, access, kind, ..
        }) => (pc, access, kind),
        other => panic!("expected a memory fault from {src:?}, got {other:?}"),
    }
}

#[test]
fn each_frame_has_exactly_512_bytes_of_stack() {
    // r10-512 .. r10 is the frame, as in the kernel.
    let edges = prog(
        "*(u64 *)(r10 - 512) = 5
         *(u8 *)(r10 - 1) = 2
         r0 = *(u64 *)(r10 - 512)
         r1 = *(u8 *)(r10 - 1)
         r0 += r1
         exit",
    );
    assert_eq!(Vm::new().run(&edges, &mut [0; 16]).unwrap(), 7);
    let outside = |frame, offset| FaultKind::OutsideStackFrame { frame, offset };
    assert_eq!(
        stack_fault("r0 = *(u8 *)(r10 - 513)\nexit"),
        (0, "load", outside(0, -513))
    );
    // The whole old 4 KiB stack was readable from the entry frame.
    assert_eq!(
        stack_fault("r0 = *(u64 *)(r10 - 4096)\nexit"),
        (0, "load", outside(0, -4096))
    );
    // An 8-byte access straddling the frame's lower edge.
    assert_eq!(
        stack_fault("*(u64 *)(r10 - 516) = 1\nr0 = 0\nexit"),
        (0, "store", outside(0, -516))
    );
    // Through a derived pointer, and with an atomic.
    assert_eq!(
        stack_fault("r1 = r10\nr1 += -1024\nr2 = 1\nlock *(u64 *)(r1 + 0) += r2\nr0 = 0\nexit"),
        (3, "atomic", outside(0, -1024))
    );
    let message = RunError::MemoryFault {
        pc: 0,
        addr: 0,
        size: 1,
        access: "load",
        kind: outside(0, -513),
    }
    .to_string();
    assert!(
        message.contains("r10-513") && message.contains("512 bytes"),
        "{message}"
    );
}

#[test]
fn a_callee_has_its_own_512_bytes_and_may_use_its_callers_through_a_pointer() {
    // The callee writes through a pointer into the caller's frame (allowed,
    // as in the kernel) and uses its own full frame.
    let ok = prog(
        "*(u64 *)(r10 - 8) = 40
         r1 = r10
         r1 += -8
         call f
         r0 = *(u64 *)(r10 - 8)
         exit
f:
         *(u64 *)(r10 - 512) = 2
         r2 = *(u64 *)(r1 + 0)
         r3 = *(u64 *)(r10 - 512)
         r2 += r3
         *(u64 *)(r1 + 0) = r2
         r0 = 0
         exit",
    );
    assert_eq!(Vm::new().run(&ok, &mut [0; 16]).unwrap(), 42);
    // Below the callee's frame is not its caller's frame to reach through r10.
    let below = "call f
         r0 = 0
         exit
f:
         r0 = *(u64 *)(r10 - 520)
         exit";
    assert_eq!(
        stack_fault(below),
        (
            3,
            "load",
            FaultKind::OutsideStackFrame {
                frame: 1,
                offset: -520
            }
        )
    );
    // After the callee returns, a pointer into its frame is dead.
    let dangling = "call f
         r0 = *(u64 *)(r0 + 0)
         exit
f:
         r0 = r10
         r0 += -8
         exit";
    assert_eq!(
        stack_fault(dangling),
        (
            1,
            "load",
            FaultKind::ReturnedStackFrame {
                frame: 1,
                offset: -8,
                current: 0
            }
        )
    );
}

#[test]
fn budget_stops_runaway_loops() {
    let p = prog("l:\ngoto l\nexit");
    let mut vm = Vm::new();
    vm.set_budget(1000);
    assert_eq!(
        vm.run(&p, &mut []),
        Err(RunError::BudgetExhausted {
            pc: 0,
            budget: 1000
        })
    );
}

#[test]
fn a_runaway_loop_ends_with_the_default_budget() {
    let p = prog("l:\ngoto l\nexit");
    let mut vm = Vm::new();
    let err = vm.run(&p, &mut []).unwrap_err();
    assert_eq!(
        err,
        RunError::BudgetExhausted {
            pc: 0,
            budget: DEFAULT_BUDGET
        }
    );
    assert_eq!(DEFAULT_BUDGET, 1 << 24);
    assert_eq!(vm.last_executed(), DEFAULT_BUDGET);
    let message = err.to_string();
    assert!(
        message.contains("16777216") && message.contains("Vm::set_budget"),
        "{message}"
    );
}

#[test]
fn global_data_through_map_values() {
    let mut vm = Vm::new();
    let data = vm
        .create_map(MapDef::new(MapType::Array, 4, 16, 1))
        .unwrap();
    let p = prog(
        "r1 = map[fd:0][0]+8
         r2 = *(u64 *)(r1 + 0)
         r2 += 1
         *(u64 *)(r1 + 0) = r2
         r0 = r2
         exit",
    );
    assert_eq!(vm.run(&p, &mut []).unwrap(), 1);
    assert_eq!(vm.run(&p, &mut []).unwrap(), 2);
    let value = vm
        .map(data)
        .unwrap()
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(&value[8..], &2u64.to_ne_bytes());
}

#[test]
fn skb_test_run_fills_the_fields_the_kernel_does_on_loopback() {
    // r0 = pkt_type << 16 | ifindex << 8 | len (small values).
    let p = prog_ctx(
        "r0 = *(u32 *)(r1 + 4)
         r0 <<= 16
         r2 = *(u32 *)(r1 + 40)
         r2 <<= 8
         r0 |= r2
         r2 = *(u32 *)(r1 + 0)
         r0 |= r2
         exit",
        ContextKind::SkBuffL3,
    );
    let mut frame = vec![0u8; 64];
    frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    frame[6] = 0xaa;
    frame[12] = 0x08;
    let run = |data: Vec<u8>, ctx: Vec<u8>| {
        Vm::new().test_run(
            &p,
            &TestRun {
                data_in: data,
                ctx_in: ctx,
                repeat: 1,
            },
        )
    };
    let r = run(frame.clone(), vec![]).unwrap();
    // PACKET_OTHERHOST, the loopback device, 50 bytes from the IP header.
    assert_eq!(r.retval, (3 << 16) | (1 << 8) | 50);
    assert_eq!(
        &r.data_out[..14],
        &[0; 14],
        "the Ethernet header comes back zeroed"
    );
    assert_eq!(&r.data_out[14..], &frame[14..]);
    let too_short = run(frame[..18].to_vec(), vec![]).unwrap_err();
    assert!(
        too_short
            .to_string()
            .contains("IPv4 frame needs a 20-byte IP header"),
        "{too_short}"
    );
    let mut ctx = vec![0u8; 192];
    ctx[4] = 1;
    assert!(matches!(
        run(frame, ctx),
        Err(RunError::InvalidInput { errno: 22, .. })
    ));
}
