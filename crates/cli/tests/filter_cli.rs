//! `bpfkit filter`: tcpdump's three program formats reproduced exactly,
//! the eBPF translation printed, and programs run over savefiles with the
//! results libpcap's filter tests expect.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{skip, BIN};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcap")
}

fn bpfkit(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("filter").args(args).output().unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// `tcpdump FLAG EXPR` (Ethernet assumed), or None when tcpdump is absent.
fn tcpdump(flag: &str, expr: &str) -> Option<String> {
    let o = Command::new("tcpdump").arg(flag).arg(expr).output().ok()?;
    assert!(
        o.status.success(),
        "tcpdump {flag} {expr}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8(o.stdout).unwrap())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("bpfkit-filter-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn d_dd_and_ddd_print_exactly_what_tcpdump_prints() {
    let exprs = [
        "tcp",
        "udp port 53",
        "ip[2:2] > 100 and len < 50",
        "vlan 100 and ip",
        "tcp[tcpflags] & tcp-syn != 0 and ip6 or ip6 and udp",
        "arp or rarp",
        "ether broadcast or ether multicast",
        "icmp[icmptype] == icmp-echo",
        "not (tcp port 22 or udp portrange 1000-2000)",
    ];
    if tcpdump("-d", "tcp").is_none() {
        skip("tcpdump is not installed (Debian package tcpdump)");
        return;
    }
    let dir = TempDir::new("formats");
    for expr in exprs {
        let want: Vec<String> = ["-d", "-dd", "-ddd"]
            .iter()
            .map(|f| tcpdump(f, expr).unwrap())
            .collect();
        // Each of the three forms is a program input, and prints as all three.
        for (i, input) in want.iter().enumerate() {
            let program = dir.file(&format!("p{i}"), input);
            for (flag, expected) in ["-d", "-dd", "-ddd"].iter().zip(&want) {
                let got = stdout(&bpfkit(&["--program", &program, flag]));
                assert_eq!(&got, expected, "{expr}: {flag} from input form {i}");
            }
        }
    }
}

#[test]
fn ebpf_prints_the_translation_in_llvm_syntax() {
    let dir = TempDir::new("ebpf");
    let listing = "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 5\n\
                   (002) ldb      [23]\n(003) jeq      #0x11            jt 4\tjf 5\n\
                   (004) ret      #262144\n(005) ret      #0\n";
    let program = dir.file("udp4", listing);
    let text = stdout(&bpfkit(&["--program", &program, "--ebpf"]));
    let insns = bpfkit_isa::cbpf::parse_listing(listing).unwrap();
    let want = bpfkit_pcap::translate::translate(&insns).unwrap();
    let got = bpfkit_isa::assemble(&text, bpfkit_isa::Syntax::Llvm)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(got, want, "{text}");
    assert!(text.contains("skb[12]"), "{text}");
}

/// filter_apply.json's results for `ip`, `arp` and `ip6` on Ethernet
/// savefiles, with filter_accept.json's listings for them: each engine
/// (classic, VM, kernel) accepts exactly the packets libpcap accepts.
#[test]
fn test_runs_the_program_over_a_savefile_as_filtertest_does() {
    let accept: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(shared().join("filter_accept.json")).unwrap(),
    )
    .unwrap();
    let apply: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(shared().join("filter_apply.json")).unwrap())
            .unwrap();
    let dir = TempDir::new("apply");
    let mut checked = 0;
    let engines: &[&str] = if common::require_bpf() {
        &["classic", "vm", "kernel"]
    } else {
        &["classic", "vm"]
    };
    for expr in ["ip", "arp", "ip6", "rarp", "decnet", "pppoes"] {
        let block = accept
            .iter()
            .find(|b| {
                b["DLT"] == "EN10MB" && b["aliases"].as_array().unwrap().iter().any(|a| a == expr)
            })
            .unwrap_or_else(|| panic!("no EN10MB listing for {expr}"));
        let listing = block
            .get("optunopt")
            .or_else(|| block.get("opt"))
            .and_then(|v| v.as_str())
            .unwrap();
        let program = dir.file(expr, listing);
        for case in apply.iter().filter(|c| c["expr"] == expr) {
            let savefile = shared()
                .join("savefiles")
                .join(case["savefile"].as_str().unwrap());
            if linktype(&savefile) != 1 {
                continue; // An Ethernet listing says nothing about other link types.
            }
            let savefile = savefile.to_str().unwrap();
            let want: Vec<bool> = case["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap() != 0)
                .collect();
            for &engine in engines {
                let out = stdout(&bpfkit(&[
                    "--program",
                    &program,
                    "--test",
                    savefile,
                    "--engine",
                    engine,
                ]));
                let got: Vec<bool> = out
                    .lines()
                    .map(|l| l.parse::<u32>().unwrap() != 0)
                    .collect();
                assert_eq!(got, want, "{expr} on {savefile} ({engine})");
                // An accepted packet's result is the listing's snapshot length.
                let snaplen = block
                    .get("snaplen")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(262144);
                let snaplen = snaplen.to_string();
                assert!(
                    out.lines().all(|l| l == "0" || l == snaplen),
                    "{expr} on {savefile} ({engine}): {out}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} savefile cases");
}

/// A savefile's LINKTYPE_*.
fn linktype(path: &std::path::Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::InterfaceDescription(i) = b.unwrap() {
                return u32::from(i.linktype);
            }
        }
        panic!("{}: no interface block", path.display());
    }
    u32::from(
        pcap_file::pcap::PcapReader::new(&bytes[..])
            .unwrap()
            .header()
            .datalink,
    )
}

#[test]
fn bad_input_is_an_error_naming_what_and_where() {
    let dir = TempDir::new("errors");
    let o = bpfkit(&["tcp", "port", "80"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--program"), "{err}");
    let program = dir.file(
        "bad",
        "(000) ldh [12]\n(001) jeq #0x800 jt 2 jf 3\n(002) frob\n",
    );
    let o = bpfkit(&["--program", &program]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("line 3") && err.contains("frob"), "{err}");
    // Parses, but jumps past the end: the kernel's check names instruction 1.
    let program = dir.file("range", "(000) ldh [12]\n(001) jeq #0x800 jt 2 jf 3\n");
    let o = bpfkit(&["--program", &program, "--ebpf"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("instruction 1"), "{err}");
}
