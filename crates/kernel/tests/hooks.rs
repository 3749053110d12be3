//! Every hook this kernel offers, attached for real and checked by the
//! activity it sees: uprobes, perf-event sampling, XDP and TC on a veth pair
//! into a network namespace, socket filters, cgroup_skb, sk_msg, and exec
//! events through a perf buffer. Each test prints why it skips when it
//! cannot run (no BPF permission, no `ip` command, no cgroup v2).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bpfkit_abi::{helper, AttachType, MapType, ProgramType};
use bpfkit_isa::{AluOp, Insn, JmpCond, MemSize, Operand, Reg, Width};
use bpfkit_kernel::link::{
    attach_cgroup, attach_perf_event_all_cpus, attach_sk_msg, attach_socket_filter, attach_tc,
    attach_uprobe, attach_xdp, detach_socket_filter, PerfEventConfig, TcDirection, TcOptions,
    UprobeTarget, XdpOptions,
};
use bpfkit_kernel::{KernelMap, MapDefinition, PerfBufReader, Program, ProgramLoad};
use common::*;

fn counter() -> KernelMap {
    KernelMap::create(&MapDefinition::new("count", MapType::Array, 4, 8, 1), None).unwrap()
}

fn count(map: &KernelMap) -> u64 {
    let v = map.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    u64::from_ne_bytes(v.try_into().unwrap())
}

fn load_as(
    name: &str,
    prog_type: ProgramType,
    attach: Option<AttachType>,
    insns: &[Insn],
) -> Program {
    Program::load(&ProgramLoad {
        name,
        prog_type,
        expected_attach_type: attach,
        insns,
        license: "GPL",
        kern_version: 0,
        btf: None,
        attach_btf_id: 0,
        core_relos: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn load_word(size: MemSize, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load {
        size,
        dst,
        src,
        off,
    }
}

/// `guards` (loads and jumps whose `off` is a placeholder) run before
/// `body`; every jump among them goes to a `return fallback` after it.
fn guarded(guards: Vec<Insn>, body: Vec<Insn>, fallback: i32) -> Vec<Insn> {
    let tail = slots(&body);
    let n = guards.len() as i16;
    let mut p: Vec<Insn> = guards
        .into_iter()
        .enumerate()
        .map(|(i, insn)| match insn {
            Insn::Jmp {
                width,
                cond,
                dst,
                src,
                ..
            } => Insn::Jmp {
                width,
                cond,
                dst,
                src,
                off: n - i as i16 - 1 + tail,
            },
            other => other,
        })
        .collect();
    p.extend(body);
    p.push(mov(Reg::R0, fallback));
    p.push(Insn::Exit);
    p
}

/// Guards that let only IPv4 UDP packets to `port` through, for a context
/// whose packet pointers are u32 fields at `data` and `data_end`.
fn udp_to_port(data: i16, data_end: i16, port: u16) -> Vec<Insn> {
    vec![
        load_word(MemSize::W, Reg::R2, Reg::R1, data),
        load_word(MemSize::W, Reg::R3, Reg::R1, data_end),
        mov_reg(Reg::R4, Reg::R2),
        add(Reg::R4, 42),
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Gt,
            dst: Reg::R4,
            src: Operand::Reg(Reg::R3),
            off: 0,
        },
        load_word(MemSize::H, Reg::R5, Reg::R2, 12),
        jmp(JmpCond::Ne, Reg::R5, 0x0008, 0),
        load_word(MemSize::B, Reg::R5, Reg::R2, 23),
        jmp(JmpCond::Ne, Reg::R5, 17, 0),
        load_word(MemSize::H, Reg::R5, Reg::R2, 36),
        jmp(JmpCond::Ne, Reg::R5, port.to_be() as i32, 0),
    ]
}

/// A function for the uprobe tests to probe: unmangled, never inlined.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bpfkit_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3) + 1
}

#[test]
fn uprobe_and_uretprobe_count_calls_of_a_function_in_this_binary() {
    require_bpf!();
    let exe = std::env::current_exe().unwrap();
    let (entries, returns, other_pid) = (counter(), counter(), counter());
    let entry_prog = load_as(
        "up_entry",
        ProgramType::Kprobe,
        None,
        &numbered(entries.as_fd(), vec![], 0),
    );
    let return_prog = load_as(
        "up_return",
        ProgramType::Kprobe,
        None,
        &numbered(returns.as_fd(), vec![], 0),
    );
    let other_prog = load_as(
        "up_other",
        ProgramType::Kprobe,
        None,
        &numbered(other_pid.as_fd(), vec![], 0),
    );
    let target = |retprobe, pid| UprobeTarget {
        binary: exe.to_string_lossy().into_owned(),
        symbol: "bpfkit_uprobe_target".into(),
        offset: 0,
        retprobe,
        pid,
    };
    let entry_link = attach_uprobe(&entry_prog, &target(false, None)).unwrap();
    let _return_link =
        attach_uprobe(&return_prog, &target(true, Some(std::process::id()))).unwrap();
    // pid 1 never runs this binary: its probe must stay silent.
    let _other_link = attach_uprobe(&other_prog, &target(false, Some(1))).unwrap();
    assert!(
        entry_link.description().starts_with("uprobe ")
            && entry_link.description().ends_with(":bpfkit_uprobe_target"),
        "{}",
        entry_link.description()
    );
    let mut sum = 0;
    for i in 0..37 {
        sum += bpfkit_uprobe_target(i);
    }
    assert_eq!(sum, (0..37).map(|i| i * 3 + 1).sum::<u64>());
    assert_eq!(count(&entries), 37);
    assert_eq!(count(&returns), 37);
    assert_eq!(count(&other_pid), 0);
    drop(entry_link);
    bpfkit_uprobe_target(1);
    assert_eq!(count(&entries), 37, "a dropped uprobe link still fires");
}

#[test]
fn uprobe_errors_name_the_missing_symbol_and_file() {
    require_bpf!();
    let c = counter();
    let prog = load_as(
        "up_err",
        ProgramType::Kprobe,
        None,
        &numbered(c.as_fd(), vec![], 0),
    );
    let exe = std::env::current_exe().unwrap();
    let err = attach_uprobe(
        &prog,
        &UprobeTarget {
            binary: exe.to_string_lossy().into_owned(),
            symbol: "no_such_function_here".into(),
            offset: 0,
            retprobe: false,
            pid: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no function `no_such_function_here`"), "{err}");
    assert!(err.contains(&*exe.to_string_lossy()), "{err}");
    let err = attach_uprobe(
        &prog,
        &UprobeTarget {
            binary: "libdoesnotexist.so.9".into(),
            symbol: "f".into(),
            offset: 0,
            retprobe: false,
            pid: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot find `libdoesnotexist.so.9`"), "{err}");
}

#[test]
fn uprobe_on_a_shared_library_found_by_name() {
    require_bpf!();
    // libc's getpid, found through this process's mappings.
    let c = counter();
    let prog = load_as(
        "up_libc",
        ProgramType::Kprobe,
        None,
        &numbered(c.as_fd(), vec![], 0),
    );
    let link = attach_uprobe(
        &prog,
        &UprobeTarget {
            binary: "libc.so.6".into(),
            symbol: "getppid".into(),
            offset: 0,
            retprobe: false,
            pid: Some(std::process::id()),
        },
    )
    .unwrap();
    assert!(
        link.description().contains("libc.so.6:getppid"),
        "{}",
        link.description()
    );
    for _ in 0..5 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    assert_eq!(count(&c), 5);
}

#[test]
fn perf_event_sampling_counts_on_every_cpu() {
    require_bpf!();
    let c = counter();
    let prog = load_as(
        "sample",
        ProgramType::PerfEvent,
        None,
        &numbered(c.as_fd(), vec![], 0),
    );
    let links = attach_perf_event_all_cpus(&prog, &PerfEventConfig::cpu_clock(1000)).unwrap();
    assert_eq!(links.len(), bpfkit_kernel::fs::online_cpus().len());
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    let samples = count(&c);
    // 300 ms of one busy CPU at 1000 Hz is about 300 samples; idle CPUs add none.
    assert!(
        samples >= 100,
        "only {samples} samples in 300 ms at 1000 Hz"
    );
    drop(links);
    let after = count(&c);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(count(&c), after, "sampling went on after detach");
}

#[test]
fn exec_events_through_a_perf_buffer() {
    require_bpf!();
    let cpus = bpfkit_kernel::fs::possible_cpus() as u32;
    let perf = KernelMap::create(
        &MapDefinition::new("execs", MapType::PerfEventArray, 4, 4, cpus),
        None,
    )
    .unwrap();
    let insns = vec![
        mov_reg(Reg::R9, Reg::R1),
        call(helper::GET_CURRENT_PID_TGID),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Rsh,
            dst: Reg::R0,
            src: Operand::Imm(32),
        },
        stx_dw(Reg::R10, -8, Reg::R0),
        mov_reg(Reg::R1, Reg::R9),
        map_fd(Reg::R2, perf.as_fd()),
        Insn::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst: Reg::R3,
            src: Operand::Imm(-1),
        },
        mov_reg(Reg::R4, Reg::R10),
        add(Reg::R4, -8),
        mov(Reg::R5, 8),
        call(helper::PERF_EVENT_OUTPUT),
        mov(Reg::R0, 0),
        Insn::Exit,
    ];
    let prog = load_as("exec_perf", ProgramType::Tracepoint, None, &insns);
    let _link = bpfkit_kernel::attach_tracepoint(&prog, "sched", "sched_process_exec").unwrap();
    let mut reader = PerfBufReader::new(&perf, 8).unwrap();
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as u64;
    child.wait().unwrap();
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen && Instant::now() < deadline {
        reader
            .poll(Duration::from_millis(100), &mut |_, rec| {
                if u64::from_ne_bytes(rec[..8].try_into().unwrap()) == pid {
                    seen = true;
                }
            })
            .unwrap();
    }
    assert!(seen, "no exec record for pid {pid} in the perf buffer");
    assert_eq!(reader.lost(), 0);
}

/// A veth pair: `host` in this namespace (10.77.N.1), `peer` in a new
/// network namespace (10.77.N.2). Removed on drop.
struct VethPair {
    netns: String,
    host: String,
    host_ip: String,
    peer_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl VethPair {
    /// `None` (with the reason printed) when the machine cannot make one.
    fn create(n: u8) -> Option<VethPair> {
        let id = std::process::id() % 100_000;
        let pair = VethPair {
            netns: format!("bpfkit{id}n{n}"),
            host: format!("bk{id}h{n}"),
            host_ip: format!("10.77.{n}.1"),
            peer_ip: format!("10.77.{n}.2"),
        };
        let peer = format!("bk{id}p{n}");
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &pair.netns])?;
            ip(&[
                "link", "add", &pair.host, "type", "veth", "peer", "name", &peer,
            ])?;
            ip(&["link", "set", &peer, "netns", &pair.netns])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/24", pair.host_ip),
                "dev",
                &pair.host,
            ])?;
            ip(&["link", "set", &pair.host, "up"])?;
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &pair.netns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            exec(&["addr", "add", &format!("{}/24", pair.peer_ip), "dev", &peer])?;
            exec(&["link", "set", &peer, "up"])?;
            exec(&["link", "set", "lo", "up"])
        };
        match setup() {
            Ok(()) => Some(pair),
            Err(why) => {
                common::skip(&format!(
                    "cannot create a veth pair into a network namespace: {why}"
                ));
                None
            }
        }
    }

    /// Sends `n` one-byte UDP datagrams from inside the namespace.
    fn send_from_peer(&self, to_port: u16, n: usize) {
        let script = format!(
            "for i in $(seq {n}); do printf x > /dev/udp/{}/{to_port}; done",
            self.host_ip
        );
        let st = Command::new("ip")
            .args(["netns", "exec", &self.netns, "bash", "-c", &script])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// Datagrams that arrive on `sock` within a short quiet period.
fn drain(sock: &UdpSocket) -> usize {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut n = 0;
    while sock.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

fn xdp_drop_prog(dropped: &KernelMap, port: u16) -> Program {
    // xdp_md: data @0, data_end @4; XDP_DROP = 1, XDP_PASS = 2.
    let insns = guarded(
        udp_to_port(0, 4, port),
        numbered(dropped.as_fd(), vec![], 1),
        2,
    );
    load_as("xdp_drop", ProgramType::Xdp, None, &insns)
}

fn check_xdp_drops(pair: &VethPair, opts: &XdpOptions, expect_link: bool) {
    let (drop_port, pass_port) = (47_001, 47_002);
    let dropped = counter();
    let prog = xdp_drop_prog(&dropped, drop_port);
    let drop_sock = UdpSocket::bind((pair.host_ip.as_str(), drop_port)).unwrap();
    let pass_sock = UdpSocket::bind((pair.host_ip.as_str(), pass_port)).unwrap();
    let link = attach_xdp(&prog, &pair.host, opts).unwrap();
    assert_eq!(link.is_bpf_link(), expect_link, "{}", link.description());
    pair.send_from_peer(drop_port, 9);
    pair.send_from_peer(pass_port, 4);
    assert_eq!(
        drain(&drop_sock),
        0,
        "XDP let a datagram to the drop port through"
    );
    assert_eq!(drain(&pass_sock), 4);
    assert_eq!(count(&dropped), 9);
    drop(link);
    pair.send_from_peer(drop_port, 2);
    assert_eq!(drain(&drop_sock), 2, "traffic still dropped after detach");
}

#[test]
fn xdp_counts_and_drops_chosen_packets_on_a_veth() {
    require_bpf!();
    let Some(pair) = VethPair::create(1) else {
        return;
    };
    check_xdp_drops(&pair, &XdpOptions::default(), true);
    // The same through netlink, as on kernels without XDP links.
    check_xdp_drops(
        &pair,
        &XdpOptions {
            force_netlink: true,
            ..Default::default()
        },
        false,
    );
}

fn check_tc_egress(pair: &VethPair, opts: &TcOptions, expect_link: bool) {
    let port = 47_010;
    let seen = counter();
    // __sk_buff: data @76, data_end @80; TC_ACT_OK = 0.
    let insns = guarded(
        udp_to_port(76, 80, port),
        numbered(seen.as_fd(), vec![], 0),
        0,
    );
    let prog = load_as("tc_count", ProgramType::SchedCls, None, &insns);
    let link = attach_tc(&prog, &pair.host, TcDirection::Egress, opts).unwrap();
    assert_eq!(link.is_bpf_link(), expect_link, "{}", link.description());
    let sock = UdpSocket::bind((pair.host_ip.as_str(), 0)).unwrap();
    for _ in 0..6 {
        sock.send_to(b"x", (pair.peer_ip.as_str(), port)).unwrap();
        sock.send_to(b"y", (pair.peer_ip.as_str(), port + 1))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(count(&seen), 6);
    drop(link);
    sock.send_to(b"x", (pair.peer_ip.as_str(), port)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(count(&seen), 6, "counting went on after detach");
}

#[test]
fn tc_egress_counts_packets_on_a_veth() {
    require_bpf!();
    let Some(pair) = VethPair::create(2) else {
        return;
    };
    check_tc_egress(&pair, &TcOptions::default(), true);
    check_tc_egress(
        &pair,
        &TcOptions {
            force_netlink: true,
            ..Default::default()
        },
        false,
    );
}

#[test]
fn socket_filter_drops_datagrams_by_source_port() {
    require_bpf!();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let blocked = UdpSocket::bind("127.0.0.1:0").unwrap();
    let allowed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let blocked_port = blocked.local_addr().unwrap().port();
    // A UDP socket's filter sees the packet from its UDP header: the source
    // port is the first two bytes. Keep everything (-1) but that port (0).
    let insns = vec![
        mov(Reg::R2, 0),
        mov_reg(Reg::R3, Reg::R10),
        add(Reg::R3, -8),
        mov(Reg::R4, 2),
        call(helper::SKB_LOAD_BYTES),
        jmp(JmpCond::Ne, Reg::R0, 0, 4),
        load_word(MemSize::H, Reg::R1, Reg::R10, -8),
        jmp(JmpCond::Ne, Reg::R1, blocked_port.to_be() as i32, 2),
        mov(Reg::R0, 0),
        Insn::Exit,
        mov(Reg::R0, -1),
        Insn::Exit,
    ];
    let prog = load_as("sock_port", ProgramType::SocketFilter, None, &insns);
    let link = attach_socket_filter(&prog, receiver.as_fd()).unwrap();
    let to = receiver.local_addr().unwrap();
    for _ in 0..5 {
        blocked.send_to(b"no", to).unwrap();
        allowed.send_to(b"yes", to).unwrap();
    }
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut from_allowed = 0;
    let mut buf = [0u8; 8];
    while let Ok((n, from)) = receiver.recv_from(&mut buf) {
        assert_ne!(from.port(), blocked_port, "a filtered datagram arrived");
        assert_eq!(&buf[..n], b"yes");
        from_allowed += 1;
    }
    assert_eq!(from_allowed, 5);
    // Dropping the link detaches the filter.
    drop(link);
    blocked.send_to(b"no", to).unwrap();
    assert_eq!(receiver.recv(&mut buf).unwrap(), 2);
    // With no filter left, detaching again says so.
    assert!(detach_socket_filter(receiver.as_fd()).is_err());
}

fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
}

#[test]
fn cgroup_skb_counts_egress_of_a_fresh_cgroup() {
    require_bpf!();
    let Some(root) = cgroup2_root() else {
        common::skip("no cgroup v2 hierarchy is mounted");
        return;
    };
    let dir = root.join(format!("bpfkit-test-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIP: cannot create cgroup {}: {e}", dir.display());
        return;
    }
    let egress = counter();
    // cgroup_skb returns 1 to let the packet go.
    let prog = load_as(
        "cg_egress",
        ProgramType::CgroupSkb,
        Some(AttachType::CgroupInetEgress),
        &numbered(egress.as_fd(), vec![], 1),
    );
    let link = attach_cgroup(&prog, &dir, None).unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    // A shell that moves itself into the cgroup, then sends 7 datagrams.
    let script = format!(
        "echo $$ > {}/cgroup.procs && for i in 1 2 3 4 5 6 7; do printf x > /dev/udp/127.0.0.1/{port}; done",
        dir.display()
    );
    let st = Command::new("bash").args(["-c", &script]).status().unwrap();
    assert!(st.success());
    assert_eq!(drain(&sink), 7);
    assert_eq!(count(&egress), 7, "egress packets of the cgroup");
    // Traffic from outside the cgroup is not counted.
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", ("127.0.0.1", port))
        .unwrap();
    assert_eq!(count(&egress), 7);
    drop(link);
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn sk_msg_verdict_sees_each_send_on_a_sockmap_socket() {
    require_bpf!();
    let sockmap = KernelMap::create(
        &MapDefinition::new("socks", MapType::Sockmap, 4, 4, 2),
        None,
    )
    .unwrap();
    let msgs = counter();
    // SK_PASS = 1.
    let prog = load_as(
        "msg_count",
        ProgramType::SkMsg,
        Some(AttachType::SkMsgVerdict),
        &numbered(msgs.as_fd(), vec![], 1),
    );
    let link = attach_sk_msg(&prog, &sockmap).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    sockmap
        .update(
            &0u32.to_ne_bytes(),
            &(client.as_raw_fd() as u32).to_ne_bytes(),
            0,
        )
        .unwrap();
    for chunk in [&b"one"[..], b"two", b"three"] {
        client.write_all(chunk).unwrap();
    }
    let mut got = vec![0u8; 11];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, b"onetwothree");
    assert_eq!(count(&msgs), 3);
    drop(link);
}

fn fixture(name: &str) -> bpfkit_object::ObjectSpec {
    bpfkit_object::ObjectSpec::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn auto_attach_follows_tp_btf_and_uprobe_section_names() {
    require_bpf!();
    use bpfkit_kernel::{Collection, LoadOptions};
    let coll = Collection::load(&fixture("autoattach.bpf.o"), &LoadOptions::default()).unwrap();
    let (links, skipped) = coll.auto_attach();
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut described: Vec<_> = links
        .iter()
        .map(|(_, l)| l.description().to_string())
        .collect();
    described.sort();
    assert_eq!(described.len(), 2);
    assert_eq!(described[0], "trace_raw_tp sched_process_exec");
    assert!(
        described[1].starts_with("uprobe /") && described[1].ends_with("libc.so.6:getppid"),
        "{}",
        described[1]
    );
    let hits = &coll.maps["hits"];
    let slot = |i: u32| {
        u64::from_ne_bytes(
            hits.lookup(&i.to_ne_bytes())
                .unwrap()
                .unwrap()
                .try_into()
                .unwrap(),
        )
    };
    Command::new("/bin/true").status().unwrap();
    for _ in 0..4 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    assert!(slot(0) >= 1, "no exec seen by tp_btf");
    // System-wide: other processes may call getppid too.
    assert!(slot(1) >= 4, "uprobe saw {} getppid calls", slot(1));
}

#[test]
fn fentry_loads_where_trampolines_exist_or_says_why_not() {
    require_bpf!();
    use bpfkit_kernel::{Collection, LoadOptions};
    let spec = fixture("fentry.bpf.o");
    let supported = bpfkit_kernel::features::fentry().unwrap();
    match Collection::load(&spec, &LoadOptions::default()) {
        Ok(coll) => {
            assert!(supported, "fentry loaded although the probe said no");
            let (links, skipped) = coll.auto_attach();
            assert!(skipped.is_empty(), "{skipped:?}");
            assert_eq!(links[0].1.description(), "trace_fentry do_unlinkat");
        }
        Err(e) => {
            assert!(!supported, "fentry is supported but the load failed: {e}");
            let msg = e.to_string();
            assert!(msg.contains("program `on_unlink`"), "{msg}");
            assert!(msg.contains("needs BPF trampolines"), "{msg}");
            eprintln!("fentry unavailable, as expected here: {msg}");
        }
    }
}
