//! Clang-compiled objects (crates/object/tests/fixtures) run in the VM.

use std::path::PathBuf;

use bpfkit_abi::xdp_action;
use bpfkit_object::{KernelConfig, ObjectSpec};
use bpfkit_vm::{Task, TestRun, Vm};

fn fixture(name: &str) -> ObjectSpec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../object/tests/fixtures")
        .join(name);
    ObjectSpec::from_file(&path).unwrap()
}

fn ipv4_packet(proto: u8, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 14 + 20 + 8];
    p[12] = 0x08; // EtherType IPv4
    p[14] = 0x45; // version 4, IHL 5
    p[23] = proto;
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    p
}

fn count(vm: &Vm, obj: &bpfkit_vm::object::LoadedObject, map: &str, key: u32) -> u64 {
    let v = vm
        .map(obj.maps[map])
        .unwrap()
        .lookup(&key.to_ne_bytes())
        .unwrap()
        .unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

#[test]
fn xdp_parser_counts_and_drops_the_chosen_port() {
    let mut spec = fixture("xdp_parser.bpf.o");
    // Override the .rodata knob before load, as a skeleton would.
    spec.maps.get_mut(".rodata").unwrap().data = Some(5353u16.to_ne_bytes().to_vec());
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    let prog = &obj.programs["xdp_parser"];
    let run = |vm: &mut Vm, pkt: Vec<u8>| {
        vm.test_run(
            prog,
            &TestRun {
                data_in: pkt,
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap()
        .retval
    };
    assert_eq!(run(&mut vm, ipv4_packet(17, 5353)), xdp_action::DROP as u64);
    assert_eq!(run(&mut vm, ipv4_packet(17, 53)), xdp_action::PASS as u64);
    assert_eq!(run(&mut vm, ipv4_packet(6, 5353)), xdp_action::PASS as u64);
    let mut ethernet_only = vec![0u8; 14];
    ethernet_only[12] = 0x08;
    assert_eq!(
        run(&mut vm, ethernet_only),
        xdp_action::PASS as u64,
        "runt frame: an Ethernet header only"
    );
    // Shorter than an Ethernet header: BPF_PROG_TEST_RUN refuses it.
    let runt = vm.test_run(
        prog,
        &TestRun {
            data_in: vec![0u8; 10],
            ctx_in: vec![],
            repeat: 1,
        },
    );
    assert!(
        matches!(runt, Err(bpfkit_vm::RunError::InvalidInput { errno, .. }) if errno == bpfkit_abi::errno::EINVAL),
        "{runt:?}"
    );
    assert_eq!(count(&vm, &obj, "proto_count", 17), 2);
    assert_eq!(count(&vm, &obj, "proto_count", 6), 1);
    assert_eq!(count(&vm, &obj, "proto_count", 1), 0);
}

#[test]
fn socket_filter_keeps_only_its_port() {
    let spec = fixture("socket.bpf.o");
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    let prog = &obj.programs["udp_port_filter"];
    let mut run = |pkt: Vec<u8>| {
        vm.test_run(
            prog,
            &TestRun {
                data_in: pkt,
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap()
        .retval
    };
    assert_eq!(
        run(ipv4_packet(17, 7777)),
        28,
        "whole packet from the IP header on"
    );
    assert_eq!(run(ipv4_packet(17, 7778)), 0);
    assert_eq!(run(ipv4_packet(6, 7777)), 0);
}

#[test]
fn maps_fixture_tail_calls_through_its_static_prog_array() {
    let spec = fixture("maps.bpf.o");
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    let r = vm
        .test_run(
            &obj.programs["use_maps"],
            &TestRun {
                data_in: ipv4_packet(6, 80),
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap();
    assert_eq!(
        r.retval,
        xdp_action::PASS as u64,
        "tail call reached tail_target"
    );
    let queue = vm.map(obj.maps["queue"]).unwrap();
    assert_eq!(queue.pop().unwrap(), Some(7u32.to_ne_bytes().to_vec()));
    let events = vm.map(obj.maps["events"]).unwrap().drain_ringbuf().unwrap();
    assert_eq!(events, vec![7u32.to_ne_bytes().to_vec()]);
    let outer = vm.map(obj.maps["outer"]).unwrap();
    let inner_id = vm.map(obj.maps["inner"]).unwrap().id();
    assert_eq!(
        outer.lookup(&1u32.to_ne_bytes()).unwrap(),
        Some(inner_id.to_ne_bytes().to_vec())
    );
}

#[test]
fn globals_subprograms_and_kconfig() {
    let mut spec = fixture("globals.bpf.o");
    let config =
        KernelConfig::parse("CONFIG_BPF_SYSCALL=y\nCONFIG_HZ=250\n").with_kernel_release("6.18.0");
    spec.apply_kconfig(&config).unwrap();
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    // second: scale(zeroed) + CONFIG_HZ = (0 * limit + custom) + 250
    let r = vm
        .test_run(&obj.programs["second"], &TestRun::default())
        .unwrap();
    assert_eq!(r.retval, 9 + 250);
    // first: counter = scale(counter) = 5 * limit + custom = 219, zeroed++,
    // bpf_for_each_map_elem(&values, add_one) adds 1 to each of the 8
    // values, and returns LINUX_KERNEL_VERSION > 0 && CONFIG_BPF_SYSCALL.
    let global = |vm: &Vm, map: &str| {
        let v = vm
            .map(obj.maps[map])
            .unwrap()
            .lookup(&0u32.to_ne_bytes())
            .unwrap()
            .unwrap();
        u64::from_ne_bytes(v[..8].try_into().unwrap())
    };
    for run in 1..=2u64 {
        let r = vm
            .test_run(&obj.programs["first"], &TestRun::default())
            .unwrap();
        assert_eq!(r.retval, 1);
        assert_eq!(global(&vm, ".bss"), run, "zeroed");
        for i in 0..8u32 {
            assert_eq!(
                count(&vm, &obj, "values", i),
                run,
                "values[{i}] after run {run}"
            );
        }
    }
    assert_eq!(
        global(&vm, ".data"),
        (5 * 42 + 9) * 42 + 9,
        "counter after two runs"
    );
    // A strong kconfig extern that the config lacks is an error naming it.
    let mut spec = fixture("globals.bpf.o");
    let e = spec.apply_kconfig(&KernelConfig::default()).unwrap_err();
    assert!(e.to_string().contains("LINUX_KERNEL_VERSION"), "{e}");
}

#[test]
fn libbpf_bootstrap_minimal_prints_for_its_pid() {
    let mut spec = fixture("minimal.bpf.o");
    spec.maps.get_mut(".bss").unwrap().data = Some(4242i32.to_ne_bytes().to_vec());
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    vm.set_current_task(Task {
        pid: 4242,
        tgid: 4242,
        ..Task::default()
    });
    vm.test_run(&obj.programs["handle_tp"], &TestRun::default())
        .unwrap();
    assert_eq!(
        vm.take_trace(),
        vec!["BPF triggered from PID 4242.\n".to_string()]
    );
    vm.set_current_task(Task {
        pid: 1,
        tgid: 1,
        ..Task::default()
    });
    vm.test_run(&obj.programs["handle_tp"], &TestRun::default())
        .unwrap();
    assert!(vm.take_trace().is_empty(), "other pids are filtered out");
}

#[test]
fn libbpf_bootstrap_exec_event_reaches_the_ring_buffer() {
    let spec = fixture("bootstrap.bpf.o");
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    vm.set_current_task(Task {
        pid: 77,
        tgid: 77,
        comm: b"true".to_vec(),
        ..Task::default()
    });
    // The tracepoint context: common fields, then __data_loc_filename
    // pointing at the file name stored after them.
    let mut ctx = vec![0u8; 64];
    let name = b"/bin/true\0";
    ctx[4..8].copy_from_slice(&(((name.len() as u32) << 16) | 16).to_ne_bytes());
    ctx[16..16 + name.len()].copy_from_slice(name);
    let r = vm
        .test_run(
            &obj.programs["handle_exec"],
            &TestRun {
                data_in: vec![],
                ctx_in: ctx,
                repeat: 1,
            },
        )
        .unwrap();
    assert_eq!(r.retval, 0);
    let events = vm.map(obj.maps["rb"]).unwrap().drain_ringbuf().unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(i32::from_ne_bytes(e[0..4].try_into().unwrap()), 77, "pid");
    assert_eq!(&e[24..28], b"true", "comm");
    assert_eq!(&e[40..49], b"/bin/true", "filename");
    let start = vm
        .map(obj.maps["exec_start"])
        .unwrap()
        .lookup(&77i32.to_ne_bytes())
        .unwrap();
    assert!(start.is_some(), "exec time recorded");
}
