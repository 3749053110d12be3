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

/// filter_apply.json's blocks.
fn apply_cases() -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(shared().join("filter_apply.json")).unwrap())
        .unwrap()
}

/// A filter_apply.json block's savefile, and its results as `--test` prints them.
fn savefile_and_results(case: &serde_json::Value) -> (PathBuf, Vec<String>) {
    let savefile = shared()
        .join("savefiles")
        .join(case["savefile"].as_str().unwrap());
    let want = case["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    (savefile, want)
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

/// What `tcpdump FLAGS... EXPR` prints, or Err with its error when it
/// fails. tcpdump must be present.
fn tcpdump_with(flags: &[&str], expr: &str) -> Result<String, String> {
    let o = Command::new("tcpdump")
        .args(flags)
        .arg(expr)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(String::from_utf8(o.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// Expressions on which this machine's libpcap (1.10) and the libpcap whose
/// listings bpfkit's compiler reproduces (filter_accept.json's, later) agree.
/// Left out because the two libpcaps differ: `portrange 1000-2000` (1.10
/// tests sctp before tcp and udp), `ip multicast` (1.10 masks with `and
/// #0xf0` where the later one uses `jge #0xe0`), `src port 80 and dst host
/// 1.1.1.1` (1.10 orders the IPv6 and IPv4 branches differently). With
/// -O (unoptimized) also `host`/`net` (1.10 reloads the EtherType before
/// each address test), `ip host 10.0.0.1 and udp`,
/// `tcp[tcpflags] & (tcp-syn|tcp-ack) != 0` and `tcp[13] = 2` (1.10 also
/// tries IPv6 for `tcp`, which the later one does not when the
/// transport header is indexed).
#[test]
fn expressions_compile_to_what_tcpdump_prints() {
    let both = [
        "tcp port 22",
        "vlan and tcp",
        "icmp or arp",
        "ip[2:2] > 576",
        "not ip6",
        "ether broadcast",
        "ip broadcast",
        "udp port 53",
        "ip6 and tcp",
        "less 100",
        "ip proto 47",
        "ether host 1:2:3:4:5:6",
        "mpls",
        "pppoes",
        "vlan 100",
        "ip and len > 100",
    ];
    let optimized_only = [
        "ip host 10.0.0.1 and udp",
        "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
        "host 1.2.3.4",
        "net 10.0.0.0/8",
        "tcp[13] = 2",
    ];
    if tcpdump("-d", "tcp").is_none() {
        skip("tcpdump is not installed (Debian package tcpdump)");
        return;
    }
    let mut checked = 0;
    let cases = both
        .iter()
        .flat_map(|e| [(*e, true), (*e, false)])
        .chain(optimized_only.iter().map(|e| (*e, true)));
    for (expr, optimize) in cases {
        for link in [&[][..], &["-y", "LINUX_SLL", "-s", "96"][..]] {
            for form in ["-d", "-dd", "-ddd"] {
                let mut flags: Vec<&str> = link.to_vec();
                flags.push(form);
                if !optimize {
                    flags.push("-O");
                }
                // The words joined, as tcpdump joins its arguments.
                let mut args = flags.clone();
                args.extend(expr.split(' '));
                match tcpdump_with(&flags, expr) {
                    Ok(want) => {
                        let got = stdout(&bpfkit(&args));
                        assert_eq!(got, want, "bpfkit filter {}", args.join(" "));
                    }
                    // e.g. "no VLAN support for Linux cooked v1": bpfkit
                    // refuses too.
                    Err(why) => {
                        let o = bpfkit(&args);
                        assert!(!o.status.success(), "{args:?}: tcpdump: {why}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (both.len() * 2 + optimized_only.len()) * 2 * 3);
}

/// Compile errors are libpcap's messages (filter_reject.json's substrings),
/// with the expression and where in it, and a failing exit.
#[test]
fn compile_errors_print_libpcaps_message() {
    let cases = [
        (
            &["port", "65536"][..],
            "port number 65536 greater than maximum 65535",
            "byte 5",
        ),
        (
            &["ether", "host", "1:2:3"][..],
            "invalid Ethernet address",
            "ether host 1:2:3",
        ),
        (&["tcp", "and"][..], "syntax error", "tcp and"),
        (
            &["-y", "NOSUCH", "tcp"][..],
            "unknown link type name `NOSUCH`",
            "-y",
        ),
        (
            &["-O", "ip", "proto", "nosuch"][..],
            "unknown 'ip proto' value 'nosuch'",
            "byte 9",
        ),
    ];
    for (args, message, place) in cases {
        let o = bpfkit(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(message) && err.contains(place),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let o = bpfkit(&["--names", "/nonexistent-root", "host", "a"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("/nonexistent-root"),
        "{err}"
    );
}

/// `--test FILE EXPR` compiles for the savefile's link type and snapshot
/// length, as filtertest does: every filter_apply.json block that needs no
/// name files gives libpcap's result for each packet (classic interpreter,
/// optimized and not).
#[test]
fn test_compiles_the_expression_for_the_savefile() {
    let apply = apply_cases();
    let mut checked = 0;
    for case in &apply {
        // Those need names/ (the --names test below) or a netmask; the
        // protochain blocks (also `skip`) have a test of their own below.
        if case.get("skip").is_some() || case.get("netmask").is_some() {
            continue;
        }
        let expr = case["expr"].as_str().unwrap();
        let (savefile, want) = savefile_and_results(case);
        for optimize in [true, false] {
            let mut args = vec!["--test", savefile.to_str().unwrap()];
            if !optimize {
                args.push("-O");
            }
            args.push(expr);
            let out = stdout(&bpfkit(&args));
            let got: Vec<&str> = out.lines().collect();
            assert_eq!(got, want, "{} (-O: {})", case["name"], !optimize);
        }
        checked += 1;
    }
    assert!(checked >= 160, "only {checked} blocks");
}

/// `--names ROOT` resolves names from ROOT's files: the gateway blocks of
/// filter_apply.json, with names/ as the root.
#[test]
fn names_resolve_from_the_given_root() {
    let apply = apply_cases();
    let names = shared().join("names");
    let mut checked = 0;
    for case in apply
        .iter()
        .filter(|c| c["expr"].as_str().unwrap().contains("gateway"))
    {
        let savefile = shared()
            .join("savefiles")
            .join(case["savefile"].as_str().unwrap());
        let out = stdout(&bpfkit(&[
            "--names",
            names.to_str().unwrap(),
            "--test",
            savefile.to_str().unwrap(),
            case["expr"].as_str().unwrap(),
        ]));
        let want: Vec<String> = case["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{}", case["name"]);
        checked += 1;
    }
    assert_eq!(checked, 5);
    // Without the root the host name is unknown.
    let o = bpfkit(&["-d", "gateway", "eth-ipv4-ipv6.host123.libpcap.test"]);
    assert!(!o.status.success());
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
    let apply = apply_cases();
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
    let o = bpfkit(&["--program", "/nonexistent", "tcp"]);
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

/// `protochain` compiles to a loop (a backward `ja`): `--test` runs it on
/// libpcap's machine, as filtertest does, in the classic interpreter and
/// translated in the VM, with libpcap's results for every filter_apply.json
/// protochain block; the kernel's machine refuses it, saying why.
#[test]
fn protochain_loops_run_on_libpcaps_machine_and_the_kernel_says_why_not() {
    let apply = apply_cases();
    let mut checked = 0;
    for case in apply
        .iter()
        .filter(|c| c["expr"].as_str().unwrap().contains("protochain"))
    {
        let (savefile, want) = savefile_and_results(case);
        let expr = case["expr"].as_str().unwrap();
        for engine in ["classic", "vm"] {
            let out = stdout(&bpfkit(&[
                "--test",
                savefile.to_str().unwrap(),
                "--engine",
                engine,
                expr,
            ]));
            let got: Vec<&str> = out.lines().collect();
            assert_eq!(got, want, "{} ({engine})", case["name"]);
        }
        let o = bpfkit(&[
            "--test",
            savefile.to_str().unwrap(),
            "--semantics",
            "kernel",
            expr,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{expr}: the kernel's machine ran it");
        assert!(
            err.contains("ja jumps back to instruction")
                && err.contains("the kernel takes forward jumps only"),
            "{expr}: {err}"
        );
        checked += 1;
    }
    assert_eq!(checked, 13);
}
