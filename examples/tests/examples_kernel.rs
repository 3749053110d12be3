//! The kernel examples, run as a user runs them: each binary is started,
//! its readiness line awaited, activity made, and its output checked.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Skips a test on a machine without bpf(); under CI=true that fails.
fn require_bpf() -> bool {
    match bpfkit::kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "under CI=true a kernel test may not skip: cannot use bpf(): {why}"
            );
            println!("SKIP: cannot use bpf(): {why}");
            false
        }
    }
}

fn interrupt(child: &Child) {
    // kill(1) sends the signal a Ctrl-C would.
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn bootstrap_reports_the_exec_and_exit_of_a_process() {
    if !require_bpf() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("TIME     EVENT COMM"), "{header}");
    // Attached before the header is printed: this process is seen.
    let mut probe = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let pid = probe.id().to_string();
    probe.wait().unwrap();
    let (mut exec, mut exit) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(3) == Some(&pid.as_str()) {
            match fields[1] {
                "EXEC" => exec = Some(line.clone()),
                "EXIT" => exit = Some(line.clone()),
                _ => {}
            }
        }
        if exit.is_some() || Instant::now() > deadline {
            break;
        }
    }
    interrupt(&child);
    assert!(
        child.wait().unwrap().success(),
        "Ctrl-C ends bootstrap cleanly"
    );
    let exec = exec.expect("an EXEC line for the shell");
    assert!(exec.ends_with("/sh") || exec.contains("/bin/sh"), "{exec}");
    let exit = exit.expect("an EXIT line for the shell");
    assert!(exit.contains("[3]"), "exit code 3 reported: {exit}");
}

#[test]
fn uprobe_sees_every_call_with_its_arguments_and_result() {
    if !require_bpf() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_uprobe"))
        .arg("4")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "add(0, 1) = 1\nadd(1, 2) = 3\nadd(2, 3) = 5\nadd(3, 4) = 7\n\
         bpfkit_example_add was called 4 times\n"
    );
}

/// A veth pair: `host` here (10.78.N.1), its peer in a new network
/// namespace (10.78.N.2). Removed on drop.
struct VethPair {
    netns: String,
    host: String,
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
    fn create() -> Result<VethPair, String> {
        let id = std::process::id() % 100_000;
        let pair = VethPair {
            netns: format!("bkex{id}"),
            host: format!("bkex{id}h"),
        };
        let peer = format!("bkex{id}p");
        ip(&["netns", "add", &pair.netns])?;
        ip(&[
            "link", "add", &pair.host, "type", "veth", "peer", "name", &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &pair.netns])?;
        ip(&["addr", "add", "10.78.1.1/24", "dev", &pair.host])?;
        ip(&["link", "set", &pair.host, "up"])?;
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &pair.netns, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        ns(&["addr", "add", "10.78.1.2/24", "dev", &peer])?;
        ns(&["link", "set", &peer, "up"])?;
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

#[test]
fn xdp_counter_counts_udp_packets_on_a_veth() {
    if !require_bpf() {
        return;
    }
    let pair = match VethPair::create() {
        Ok(p) => p,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "under CI=true a kernel test may not skip: {why}"
            );
            println!("SKIP: cannot make a veth pair: {why}");
            return;
        }
    };
    let receiver = UdpSocket::bind("10.78.1.1:47123").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xdp-counter"))
        .arg(&pair.host)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut ready = String::new();
    stderr.read_line(&mut ready).unwrap();
    assert!(ready.starts_with("counting packets on"), "{ready}");
    let script = "for i in $(seq 10); do printf x > /dev/udp/10.78.1.1/47123; done";
    let st = Command::new("ip")
        .args(["netns", "exec", &pair.netns, "bash", "-c", script])
        .status()
        .unwrap();
    assert!(st.success());
    // Each datagram received went through XDP first.
    let mut buf = [0u8; 8];
    for _ in 0..10 {
        receiver.recv(&mut buf).unwrap();
    }
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let udp: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("udp "))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no udp line in:\n{stdout}"));
    assert_eq!(udp, 10, "{stdout}");
    let bytes: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("total bytes: "))
        .map(|n| n.parse().unwrap())
        .unwrap();
    // 10 frames of 14 + 20 + 8 + 1 bytes, plus whatever else arrived.
    assert!(bytes >= 10 * 43, "{stdout}");
}
