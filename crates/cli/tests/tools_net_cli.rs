//! solisten, tcplife and biolatency as users run them, against activity the
//! tests make: listens with a known backlog, a loopback connection with
//! known byte counts, direct I/O to a file on a block device.

mod common;

use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A tool started with `--json`, attached.
struct Running {
    child: Child,
    /// The rest of its stderr, read as it comes so it never blocks.
    stderr: std::thread::JoinHandle<String>,
}

/// Starts a tool with `--json` and returns once it is attached: in JSON
/// mode its header line goes to stderr when it is.
fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut header = String::new();
    std::io::BufRead::read_line(&mut err, &mut header).unwrap();
    let stderr = std::thread::spawn(move || {
        let mut rest = header;
        let _ = err.read_to_string(&mut rest);
        rest
    });
    Running { child, stderr }
}

/// Stops a tool with SIGINT (it drains what the kernel has queued before
/// it exits) and returns its JSON lines.
fn finish(mut tool: Running) -> Vec<serde_json::Value> {
    Command::new("kill")
        .args(["-INT", &tool.child.id().to_string()])
        .status()
        .unwrap();
    let status = tool.child.wait().unwrap();
    let mut stdout = String::new();
    tool.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = tool.stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn listen(addr: &str, backlog: i32) -> (Socket, u16) {
    let addr: SocketAddr = addr.parse().unwrap();
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(backlog).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

#[test]
fn solisten_reports_ipv4_and_ipv6_listens_with_their_backlog() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id().to_string();
    let tool = start(&["solisten", "-p", &me, "-d", "10"]);
    let (_v4, port4) = listen("127.0.0.1:0", 7);
    let (_v6, port6) = listen("[::1]:0", 7);
    let events = finish(tool);
    let netns = std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse::<u64>()
        .unwrap();
    // Other tests of this process listen too (tcplife's): find ours by port.
    let find = |proto: &str, port: u16| {
        events
            .iter()
            .find(|e| e["proto"] == proto && e["port"] == port)
            .unwrap_or_else(|| panic!("no {proto} listen on {port} in {events:?}"))
    };
    for (e, addr, port) in [
        (find("TCPv4", port4), "127.0.0.1", port4),
        (find("TCPv6", port6), "::1", port6),
    ] {
        assert_eq!(e["pid"], std::process::id());
        assert_eq!(e["backlog"], 7);
        assert_eq!(e["addr"], addr);
        assert_eq!(e["port"], port);
        assert_eq!(e["netns"], netns);
        assert_eq!(e["ret"], 0);
    }
    // Each listen is reported once.
    let ours = events
        .iter()
        .filter(|e| e["port"] == port4 || e["port"] == port6)
        .count();
    assert_eq!(ours, 2, "{events:?}");
}

#[test]
fn solisten_text_line_has_the_columns() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id().to_string();
    let mut tool = Command::new(BIN)
        .args(["solisten", "-p", &me, "-d", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (_s, port) = listen("127.0.0.1:0", 5);
    let mut out = String::new();
    tool.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    tool.wait().unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "TIME     PID     COMM             NETNS      PROTO  BACKLOG ADDR                                    PORT"
    );
    // Other tests of this process listen too: the line of our port.
    let line = lines
        .find(|l| l.split_whitespace().last() == Some(port.to_string().as_str()))
        .unwrap_or_else(|| panic!("no event line for port {port}: {out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[1], me);
    assert_eq!(&f[4..], ["TCPv4", "5", "127.0.0.1", &port.to_string()]);
}

#[test]
fn tcplife_reports_a_loopback_session_with_its_bytes() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id().to_string();
    let tool = start(&["tcplife", "-p", &me, "-4", "-d", "10"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![0u8; 100 * 1024];
        s.read_exact(&mut got).unwrap();
        s.write_all(&[7u8; 3 * 1024]).unwrap();
        // Wait for the client's close, then close.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
    });
    let mut client = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    client.write_all(&[1u8; 100 * 1024]).unwrap();
    let mut back = vec![0u8; 3 * 1024];
    client.read_exact(&mut back).unwrap();
    drop(client);
    server.join().unwrap();
    let events = finish(tool);
    let session = |lport: u16| {
        events
            .iter()
            .find(|e| e["lport"] == lport)
            .unwrap_or_else(|| panic!("no session with local port {lport}: {events:?}"))
    };
    let c = session(client_port);
    assert_eq!(
        (c["raddr"].as_str(), c["rport"].as_u64()),
        (Some("127.0.0.1"), Some(server_port as u64))
    );
    assert_eq!(
        (c["tx_kb"].as_u64(), c["rx_kb"].as_u64()),
        (Some(100), Some(3))
    );
    // The kernel's counters (bytes_acked, bytes_received) count sequence
    // space, which may include the SYN and the FIN; bcc's tcplife reports
    // the same counters.
    let near = |v: &serde_json::Value, n: u64| {
        let v = v.as_u64().unwrap();
        assert!((n..=n + 2).contains(&v), "{v} vs {n}");
    };
    near(&c["tx_bytes"], 100 * 1024);
    near(&c["rx_bytes"], 3 * 1024);
    let s = session(server_port);
    assert_eq!(s["rport"], client_port);
    assert_eq!(
        (s["tx_kb"].as_u64(), s["rx_kb"].as_u64()),
        (Some(3), Some(100))
    );
    near(&s["rx_bytes"], 100 * 1024);
    near(&s["tx_bytes"], 3 * 1024);
    for e in [c, s] {
        assert_eq!(e["pid"], std::process::id());
        assert_eq!(e["laddr"], "127.0.0.1");
        assert!(e["ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn tcplife_names_the_server_of_a_socket_closed_with_unread_data() {
    if !require_bpf() {
        return;
    }
    let me = std::process::id().to_string();
    let tool = start(&["tcplife", "-p", &me, "-4", "-d", "10"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    client.write_all(b"never read").unwrap();
    // The data has arrived once the server side sees it readable.
    let mut peek = [0u8; 1];
    accepted.peek(&mut peek).unwrap();
    // Closing with unread data resets: ESTABLISHED -> CLOSE in this close().
    drop(accepted);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    drop(client);
    let events = finish(tool);
    let server = events
        .iter()
        .find(|e| e["lport"] == server_port)
        .unwrap_or_else(|| panic!("the reset server socket was not reported: {events:?}"));
    assert_eq!(server["pid"], std::process::id());
    let comm = std::fs::read_to_string(format!("/proc/self/task/{}/comm", current_tid())).unwrap();
    assert_eq!(server["comm"], comm.trim());
}

/// This thread's id (the comm a task's own close() reports).
fn current_tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// A writable directory on a block device (not tmpfs), if there is one.
fn block_backed_dir() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let on_block = |dir: &std::path::Path| {
        let dir = dir.canonicalize().ok()?;
        // The longest mount point containing dir decides.
        mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 2 && dir.starts_with(f[1]))
                    .then(|| (f[1].len(), f[0].starts_with("/dev/")))
            })
            .max()
            .map(|(_, block)| block)
    };
    [
        std::env::temp_dir(),
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ]
    .into_iter()
    .find(|d| on_block(d) == Some(true))
}

#[test]
fn biolatency_counts_direct_io_to_a_file() {
    if !require_bpf() {
        return;
    }
    let Some(dir) = block_backed_dir() else {
        common::skip("no writable directory on a block device for direct I/O");
        return;
    };
    let tool = start(&["biolatency", "-D", "-d", "10"]);
    let path = dir.join(format!("bpfkit-biolatency-{}", std::process::id()));
    // O_DIRECT writes of 4 KiB blocks, then reads back: each is real I/O.
    let st = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", path.display()),
            "bs=4k",
            "count=64",
            "oflag=direct,sync",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("dd")
        .args([
            &format!("if={}", path.display()),
            "of=/dev/null",
            "bs=4k",
            "iflag=direct",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(&path).unwrap();
    let hists = finish(tool);
    let total: u64 = hists.iter().map(|h| h["total"].as_u64().unwrap()).sum();
    // 64 writes and 64 reads, at least (the file system adds its own).
    assert!(total >= 128, "{total} I/Os: {hists:?}");
    for h in &hists {
        assert_eq!(h["unit"], "usecs");
        assert!(h["disk"].as_str().is_some_and(|d| !d.is_empty()));
        let buckets = h["buckets"].as_array().unwrap();
        let sum: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(sum, h["total"].as_u64().unwrap());
    }
}
