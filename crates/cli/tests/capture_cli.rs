//! `bpfkit capture` on one end of a veth pair into a network namespace,
//! with the expression `udp dst port 9999` compiled and attached as a
//! classic filter: the savefile it
//! writes holds exactly the accepted packets, read back with pcap-file and
//! with `tcpdump -r`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{skip, BIN};

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

/// A veth pair: `host` here (10.79.N.1, fd79:N::1), its peer in a new
/// network namespace (10.79.N.2, fd79:N::2). Removed on drop.
struct VethPair {
    netns: String,
    host: String,
    dir: std::path::PathBuf,
}

impl VethPair {
    fn create(n: u8) -> Option<VethPair> {
        let id = std::process::id() % 100_000;
        let pair = VethPair {
            netns: format!("bkcap{id}n{n}"),
            host: format!("bkc{id}h{n}"),
            dir: std::env::temp_dir().join(format!("bpfkit-capture-{id}-{n}")),
        };
        let peer = format!("bkc{id}p{n}");
        let setup = || -> Result<(), String> {
            std::fs::create_dir_all(&pair.dir).map_err(|e| e.to_string())?;
            ip(&["netns", "add", &pair.netns])?;
            ip(&[
                "link", "add", &pair.host, "type", "veth", "peer", "name", &peer,
            ])?;
            ip(&["link", "set", &peer, "netns", &pair.netns])?;
            ip(&["addr", "add", &format!("10.79.{n}.1/24"), "dev", &pair.host])?;
            ip(&[
                "-6",
                "addr",
                "add",
                &format!("fd79:{n}::1/64"),
                "dev",
                &pair.host,
                "nodad",
            ])?;
            ip(&["link", "set", &pair.host, "up"])?;
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &pair.netns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            exec(&["addr", "add", &format!("10.79.{n}.2/24"), "dev", &peer])?;
            exec(&[
                "-6",
                "addr",
                "add",
                &format!("fd79:{n}::2/64"),
                "dev",
                &peer,
                "nodad",
            ])?;
            exec(&["link", "set", &peer, "up"])?;
            exec(&["link", "set", "lo", "up"])
        };
        match setup() {
            Ok(()) => Some(pair),
            Err(why) => {
                skip(&format!(
                    "cannot create a veth pair into a network namespace: {why}"
                ));
                None
            }
        }
    }

    /// Sends one UDP datagram from inside the namespace (bash's /dev/udp).
    fn send_from_peer(&self, to: &str, port: u16, payload: &str) {
        let script = format!("printf {payload} > /dev/udp/{to}/{port}");
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `bpfkit capture ARGS` and returns once it says it is listening.
fn start_capture(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(BIN)
        .arg("capture")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = match stderr.read_line(&mut line) {
            Ok(n) => n,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("reading bpfkit capture's stderr: {e}");
            }
        };
        if n == 0 {
            let status = child.wait().unwrap();
            panic!("bpfkit capture exited ({status}) before listening");
        }
        if line.starts_with("listening on ") {
            return (child, stderr);
        }
    }
}

/// Waits at most `limit` for `child` to exit.
fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bpfkit capture did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rest(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn capture_writes_exactly_the_packets_the_filter_accepts() {
    if !common::require_bpf() {
        return;
    }
    let Some(pair) = VethPair::create(1) else {
        return;
    };
    let pcap = pair.dir.join("out.pcap");
    // The expression's words as separate arguments, joined as tcpdump joins them.
    let (mut child, stderr) = start_capture(&[
        "-i",
        &pair.host,
        "-c",
        "6",
        "-w",
        pcap.to_str().unwrap(),
        "udp",
        "dst",
        "port",
        "9999",
    ]);
    let udp4 = UdpSocket::bind("0.0.0.0:0").unwrap();
    let udp6 = UdpSocket::bind("[::]:0").unwrap();
    let peer4 = "10.79.1.2";
    let peer6 = "fd79:1::2";
    // Accepted (dst port 9999, IPv4 and IPv6, out and in) interleaved with
    // what the filter drops: other ports, TCP to 9999, and the ARP, NDP and
    // ICMP unreachable traffic these cause.
    udp4.send_to(b"no-01", (peer4, 9998)).unwrap();
    udp4.send_to(b"yes-1", (peer4, 9999)).unwrap();
    let _ = TcpStream::connect_timeout(
        &SocketAddr::new(peer4.parse().unwrap(), 9999),
        Duration::from_secs(2),
    );
    udp6.send_to(b"yes-2", (peer6, 9999)).unwrap();
    udp6.send_to(b"no-02", (peer6, 9998)).unwrap();
    pair.send_from_peer("10.79.1.1", 9999, "yes-3");
    pair.send_from_peer("10.79.1.1", 9997, "no-03");
    pair.send_from_peer("fd79:1::1", 9999, "yes-4");
    udp4.send_to(b"yes-5", (peer4, 9999)).unwrap();
    udp6.send_to(b"yes-6", (peer6, 9999)).unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let stdout = rest(child.stdout.take().unwrap());
    let stderr = rest(stderr);
    assert!(status.success(), "{status}: {stderr}");

    // The savefile, with pcap-file.
    let bytes = std::fs::read(&pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut payloads = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        let sliced = etherparse::SlicedPacket::from_ethernet(&p.data).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else {
            panic!("not UDP: {:02x?}", p.data);
        };
        assert_eq!(u.destination_port(), 9999);
        payloads.push(String::from_utf8(u.payload().to_vec()).unwrap());
    }
    // Outgoing and incoming packets may interleave differently.
    payloads.sort();
    assert_eq!(
        payloads,
        ["yes-1", "yes-2", "yes-3", "yes-4", "yes-5", "yes-6"]
    );

    // One summary line a packet; the counts on exit.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(
        lines.iter().all(|l| l.contains(".9999: UDP, length 5")),
        "{stdout}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" In  IP")).count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" IP6 ")).count(),
        3,
        "{stdout}"
    );
    assert!(stderr.contains("6 packets captured"), "{stderr}");
    assert!(stderr.contains("6 packets received by filter"), "{stderr}");
    assert!(stderr.contains("0 packets dropped by kernel"), "{stderr}");

    // The savefile, with tcpdump.
    match Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8(o.stdout).unwrap();
            assert_eq!(text.lines().count(), 6, "{text}");
            assert!(
                text.lines().all(|l| l.contains(".9999: UDP, length 5")),
                "{text}"
            );
        }
        Err(e) => skip(&format!(
            "tcpdump is not installed (Debian package tcpdump): {e}"
        )),
    }
}

#[test]
fn capture_stops_on_sigint_and_reports_its_counts() {
    if !common::require_bpf() {
        return;
    }
    let Some(pair) = VethPair::create(2) else {
        return;
    };
    let (mut child, stderr) = start_capture(&["-i", &pair.host]);
    // SAFETY: signalling our own child, which has not been reaped.
    let r = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(r, 0);
    let status = wait_for(&mut child, Duration::from_secs(10));
    let stderr = rest(stderr);
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("packets captured"), "{stderr}");
    assert!(stderr.contains("packets dropped by kernel"), "{stderr}");
}

/// `udp dst port 9999` over raw IPv4 (DLT_RAW: the IP header at offset 0).
const RAW_UDP_DST_9999: &str = "(000) ldb      [0]
(001) and      #0xf0
(002) jeq      #0x40            jt 3\tjf 10
(003) ldb      [9]
(004) jeq      #0x11            jt 5\tjf 10
(005) ldh      [6]
(006) jset     #0x1fff          jt 10\tjf 7
(007) ldxb     4*([0]&0xf)
(008) ldh      [x + 2]
(009) jeq      #0x270f          jt 11\tjf 10
(010) ret      #0
(011) ret      #262144
";

/// Creates tun device `name` (IFF_TUN | IFF_NO_PI) attached to the returned file.
fn open_tun(name: &str) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_NO_PI: libc::c_short = 0x1000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    // struct ifreq: the name, then the flags (the rest of the union unused).
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes), which
    // `req` is, live for the call.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) };
    if r < 0 {
        return Err(format!("TUNSETIFF: {}", std::io::Error::last_os_error()));
    }
    Ok(file)
}

/// A tun device (10.80.N.1/24) attached to an open file, which nobody
/// reads: a tun device transmits only with a reader attached (it has no
/// carrier otherwise). Removed on drop.
struct Tun {
    name: String,
    dir: std::path::PathBuf,
    _file: std::fs::File,
}

impl Tun {
    fn create(n: u8) -> Option<Tun> {
        let id = std::process::id() % 100_000;
        let name = format!("bkt{id}n{n}");
        let dir = std::env::temp_dir().join(format!("bpfkit-capture-tun-{id}-{n}"));
        let file = match open_tun(&name) {
            Ok(f) => f,
            Err(why) => {
                skip(&format!("cannot create a tun device: {why}"));
                return None;
            }
        };
        let tun = Tun {
            name,
            dir,
            _file: file,
        };
        let setup = std::fs::create_dir_all(&tun.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| ip(&["addr", "add", &format!("10.80.{n}.1/24"), "dev", &tun.name]))
            .and_then(|()| ip(&["link", "set", &tun.name, "up"]));
        match setup {
            Ok(()) => Some(tun),
            Err(why) => {
                skip(&format!("cannot configure a tun device: {why}"));
                None
            }
        }
    }
}

impl Drop for Tun {
    fn drop(&mut self) {
        // Closing the file removes the device; the folder stays.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tun device (ARPHRD_NONE) with no one reading it: what the host sends to it is
/// seen, as raw IP, by packet sockets, and written as a DLT_RAW savefile.
#[test]
fn capture_on_a_raw_ip_device_writes_raw_ip() {
    if !common::require_bpf() {
        return;
    }
    let Some(tun) = Tun::create(1) else {
        return;
    };
    let dir = &tun.dir;
    let pcap = dir.join("tun.pcap");
    // Compiled for DLT_RAW: the IP header at offset 0.
    let (mut child, stderr) = start_capture(&[
        "-i",
        &tun.name,
        "-c",
        "2",
        "-w",
        pcap.to_str().unwrap(),
        "udp dst port 9999",
    ]);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    for (port, payload) in [(9998, "no"), (9999, "tun-1"), (53, "no"), (9999, "tun-2")] {
        udp.send_to(payload.as_bytes(), ("10.80.1.2", port))
            .unwrap();
    }
    let status = wait_for(&mut child, Duration::from_secs(20));
    let stdout = rest(child.stdout.take().unwrap());
    let stderr = rest(stderr);
    assert!(status.success(), "{status}: {stderr}");
    let bytes = std::fs::read(&pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.header().datalink, pcap_file::DataLink::RAW);
    let mut payloads = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        let sliced = etherparse::SlicedPacket::from_ip(&p.data).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else {
            panic!("not UDP: {:02x?}", p.data);
        };
        assert_eq!(u.destination_port(), 9999);
        payloads.push(String::from_utf8(u.payload().to_vec()).unwrap());
    }
    assert_eq!(payloads, ["tun-1", "tun-2"]);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains("Out IP 10.80.1.1.")
                && l.contains("> 10.80.1.2.9999: UDP, length 5")),
        "{stdout}"
    );
}

/// `-s` keeps the first bytes of each packet, the savefile its wire length.
#[test]
fn snaplen_truncates_packets_and_keeps_their_wire_length() {
    if !common::require_bpf() {
        return;
    }
    let Some(tun) = Tun::create(2) else {
        return;
    };
    let listing = tun.dir.join("raw9999.txt");
    std::fs::write(&listing, RAW_UDP_DST_9999).unwrap();
    let pcap = tun.dir.join("short.pcap");
    let (mut child, stderr) = start_capture(&[
        "-i",
        &tun.name,
        "-c",
        "1",
        "-s",
        "30",
        "-w",
        pcap.to_str().unwrap(),
        "--program",
        listing.to_str().unwrap(),
    ]);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.send_to(&[0xab; 100], ("10.80.2.2", 9999)).unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let stderr = rest(stderr);
    assert!(status.success(), "{status}: {stderr}");
    let bytes = std::fs::read(&pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.header().snaplen, 30);
    // pcap-file's checked reader refuses an orig_len above the snapshot
    // length, which is what truncation makes: read the raw record.
    let p = reader.next_raw_packet().unwrap().unwrap();
    assert_eq!(p.incl_len, 30);
    assert_eq!(p.data.len(), 30);
    assert_eq!(p.orig_len, 20 + 8 + 100);
    // The UDP destination port, and the first payload bytes.
    assert_eq!(&p.data[22..24], &9999u16.to_be_bytes());
    assert_eq!(&p.data[28..30], &[0xab, 0xab]);
    assert!(reader.next_raw_packet().is_none());
    match Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
    {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.contains("10.80.2.1."), "{text}");
        }
        Err(e) => skip(&format!(
            "tcpdump is not installed (Debian package tcpdump): {e}"
        )),
    }
}

#[test]
fn an_invalid_program_is_refused_naming_the_instruction() {
    let dir = std::env::temp_dir().join(format!("bpfkit-capture-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listing = dir.join("bad.txt");
    std::fs::write(&listing, "(000) ldh [12]\n(001) st M[16]\n(002) ret #1\n").unwrap();
    let o = Command::new(BIN)
        .args(["capture", "-i", "lo", "--program"])
        .arg(&listing)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("instruction 1") && err.contains("M[16]"),
        "{err}"
    );
    let o = Command::new(BIN)
        .args(["capture", "-i", "no-such-if0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no-such-if0"), "{err}");
    // A bad expression: libpcap's reason, before anything is opened.
    let o = Command::new(BIN)
        .args(["capture", "-i", "lo", "udp", "port", "65536"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("port number 65536 greater than maximum 65535") && !err.contains("listening"),
        "{err}"
    );
}

/// `ip protochain 17` compiles to a loop the kernel refuses (a backward
/// `ja`): capture says so and filters in user space, as libpcap does, and
/// writes exactly the IPv4 UDP packets.
#[test]
fn a_filter_the_kernel_refuses_runs_in_user_space() {
    if !common::require_bpf() {
        return;
    }
    let Some(pair) = VethPair::create(6) else {
        return;
    };
    let pcap = pair.dir.join("out.pcap");
    let (mut child, stderr) = start_capture(&[
        "-i",
        &pair.host,
        "-c",
        "3",
        "-w",
        pcap.to_str().unwrap(),
        "ip",
        "protochain",
        "17",
    ]);
    let udp4 = UdpSocket::bind("0.0.0.0:0").unwrap();
    let udp6 = UdpSocket::bind("[::]:0").unwrap();
    let peer4 = "10.79.6.2";
    let peer6 = "fd79:6::2";
    udp6.send_to(b"no-01", (peer6, 9999)).unwrap();
    udp4.send_to(b"yes-1", (peer4, 9999)).unwrap();
    let _ = TcpStream::connect_timeout(
        &SocketAddr::new(peer4.parse().unwrap(), 9999),
        Duration::from_secs(2),
    );
    pair.send_from_peer("10.79.6.1", 9998, "yes-2");
    udp6.send_to(b"no-02", (peer6, 9998)).unwrap();
    udp4.send_to(b"yes-3", (peer4, 9997)).unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let stderr = rest(stderr);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("the kernel refuses this filter")
            && stderr.contains("filtering in user space"),
        "{stderr}"
    );
    let bytes = std::fs::read(&pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut payloads = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        let sliced = etherparse::SlicedPacket::from_ethernet(&p.data).unwrap();
        assert!(
            matches!(sliced.net, Some(etherparse::NetSlice::Ipv4(_))),
            "not IPv4: {:02x?}",
            p.data
        );
        let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else {
            panic!("not UDP: {:02x?}", p.data);
        };
        payloads.push(String::from_utf8(u.payload().to_vec()).unwrap());
    }
    payloads.sort();
    assert_eq!(payloads, ["yes-1", "yes-2", "yes-3"]);
}
