//! libpcap's filter-compiler rejection tests: each expression must fail to
//! compile with an error containing libpcap's message. Blocks that test
//! savefile parsing rather than the compiler are not run here.

use std::path::PathBuf;

use bpfkit_pcap::compile::{compile, CompileOptions, LinkType};
use serde_json::Value;

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcap");
    if dir.join("filter_reject.json").exists() {
        Some(dir)
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "../shared/pcap/filter_reject.json is missing, and CI=true makes that a failure"
        );
        eprintln!("skipping: ../shared/pcap/filter_reject.json (libpcap's test data) is not beside the repository");
        None
    }
}

/// Expressions rejected with libpcap's message so far; a regression fails.
const FLOOR: usize = 166;

#[test]
fn rejects_with_libpcap_messages() {
    let Some(dir) = data_dir() else { return };
    let text =
        std::fs::read_to_string(dir.join("filter_reject.json")).expect("read filter_reject.json");
    let blocks: Vec<Value> = serde_json::from_str(&text).expect("parse filter_reject.json");
    let (mut passed, mut tried) = (0, 0);
    let mut failures = Vec::new();
    for b in &blocks {
        let (Some(dlt), Some(expr)) = (b["DLT"].as_str(), b["expr"].as_str()) else {
            continue;
        };
        if let Some(skip) = b.get("skip").and_then(Value::as_str) {
            // Not Linux, or libpcap built without protochain: not this compiler.
            if skip.starts_with("skip_os_not(") && skip != "skip_os_not(linux)"
                || skip == "skip_config_not_def1(NO_PROTOCHAIN)"
            {
                continue;
            }
        }
        let want = b["errstr"].as_str().expect("errstr");
        let Some(linktype) = LinkType::from_name(dlt) else {
            failures.push(format!("{dlt}: unknown link type"));
            continue;
        };
        let mut opts = CompileOptions::new(linktype);
        if let Some(m) = b.get("netmask").and_then(Value::as_str) {
            opts.netmask = m
                .parse::<std::net::Ipv4Addr>()
                .map(u32::from)
                .expect("netmask");
        }
        tried += 1;
        match compile(expr, &opts) {
            Err(e) if e.message.contains(want) => passed += 1,
            got => failures.push(format!("[{dlt}] {expr:?}: want {want:?}, got {got:?}")),
        }
    }
    for f in failures.iter().take(40) {
        println!("{f}");
    }
    println!("rejected as libpcap does: {passed}/{tried}");
    assert!(
        passed >= FLOOR,
        "rejections fell to {passed} (floor {FLOOR})"
    );
}

mod fuzz {
    //! Random and mutated expressions: the compiler either rejects them
    //! with a message or returns a well-formed program, and never panics.

    use bpfkit_isa::cbpf::{Insn, RetVal};
    use bpfkit_pcap::compile::{compile, CompileOptions, LinkType};
    use proptest::prelude::*;

    const SEEDS: &[&str] = &[
        "tcp port 80",
        "host 10.0.0.1 and not udp",
        "ether host ab:cd:ef:00:00:01 or ether broadcast",
        "ip[2:2] - ((ip[0] & 0xf) << 2) > 100",
        "net 192.168.0.0/16 and (port 22 or portrange 1000-2000)",
        "ip6 host fe80::1 and icmp6",
        "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
        "len >= 100 and less 1500",
        "not (arp or rarp) and ip proto \\tcp",
        "src net 10 and dst port 53",
        "icmp[icmptype] == icmp-echo",
        "ip multicast or ip6 multicast",
        "-len % 3 ^ 7 = 1",
        "iso proto \\isis or l1 or stp",
        "byte 3 & 4",
        "ip6 net fe80::/10",
        "vlan 10 and mpls 3 and ip",
        "pppoes 5 and ip6 host ::1",
        "geneve 7 and vxlan and tcp",
        "protochain 6 or ip6 protochain \\udp",
        "wlan addr2 01:02:03:04:05:06 or type mgt subtype beacon",
        "decnet src 10.5 or llc s",
        "inbound and ifindex 3",
        "vpi 1 and vci > 3 or lane and oamf4",
        "sio 3 or (opc 5 or 6) and hsls < 2",
        "on eth0 and action pass and reason match",
        "radio[4] = 1 and link[0:2] > 3",
    ];

    const WORDS: &[&str] = &[
        " and ",
        " or ",
        " not ",
        "(",
        ")",
        "[",
        "]",
        ":",
        "4",
        "0x10",
        "-",
        "+",
        "*",
        "/",
        "%",
        "&",
        "|",
        "^",
        "<<",
        ">>",
        "=",
        "!=",
        "<",
        ">",
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "ip",
        "ip6",
        "tcp",
        "udp",
        "ether",
        "proto",
        "1.2.3.4",
        "::1",
        "aa:bb:cc:dd:ee:ff",
        "$1",
        "len",
        "mask",
        "255.0.0.0",
        "/24",
        "gateway",
        "broadcast",
        "multicast",
        "less",
        "greater",
        "byte",
        "vlan",
        "mpls",
        "llc",
        "\\x",
        "65536",
        "4294967296",
        "09",
        "0xg",
        "icmp6type",
    ];

    const LINKTYPES: &[&str] = &[
        "EN10MB",
        "RAW",
        "NULL",
        "LINUX_SLL",
        "FDDI",
        "IPV6",
        "PPP",
        "ARCNET",
    ];

    /// Checks what a well-formed program must satisfy: non-empty, jumps land
    /// inside it, and it ends in a return.
    fn well_formed(p: &[Insn]) -> Result<(), String> {
        let last = p.last().ok_or("empty program")?;
        if !matches!(last, Insn::Ret(RetVal::K(_)) | Insn::Ret(RetVal::A)) {
            return Err(format!("last instruction {last:?} is not a return"));
        }
        for (i, insn) in p.iter().enumerate() {
            // protochain loops back with a negative `ja`, as libpcap's does.
            let targets: Vec<i64> = match *insn {
                Insn::Ja(k) => vec![i as i64 + 1 + k as i32 as i64],
                Insn::Jmp { jt, jf, .. } => {
                    vec![(i + 1 + jt as usize) as i64, (i + 1 + jf as usize) as i64]
                }
                _ => vec![],
            };
            if let Some(t) = targets.iter().find(|t| !(0..p.len() as i64).contains(*t)) {
                return Err(format!(
                    "instruction {i} jumps to {t}, past the end ({})",
                    p.len()
                ));
            }
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, usize),
        Delete(usize, usize),
        Byte(usize, u8),
    }

    fn apply(seed: &str, edits: &[Edit]) -> String {
        let mut s: Vec<u8> = seed.as_bytes().to_vec();
        for e in edits {
            match *e {
                Edit::Insert(at, w) => {
                    let at = at % (s.len() + 1);
                    let word = WORDS[w % WORDS.len()].as_bytes();
                    s.splice(at..at, word.iter().copied());
                }
                Edit::Delete(at, n) if !s.is_empty() => {
                    let at = at % s.len();
                    let end = (at + n % 6 + 1).min(s.len());
                    s.drain(at..end);
                }
                Edit::Byte(at, b) if !s.is_empty() => {
                    let at = at % s.len();
                    const ALPHABET: &[u8] = b" ()[]:!&|^<>=-+*/%$\\.0123456789abcxyz\t";
                    s[at] = ALPHABET[b as usize % ALPHABET.len()];
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&s).into_owned()
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), any::<usize>()).prop_map(|(a, w)| Edit::Insert(a, w)),
            (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Delete(a, n)),
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn mutated_expressions_compile_or_fail_cleanly(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec(edit(), 0..5),
            lt in 0..LINKTYPES.len(),
            optimize in any::<bool>(),
        ) {
            let expr = apply(SEEDS[seed], &edits);
            let mut opts = CompileOptions::new(LinkType::from_name(LINKTYPES[lt]).expect("known link type"));
            opts.optimize = optimize;
            opts.linux_extensions = seed % 2 == 0;
            opts.netmask = 0xffff_ff00;
            match compile(&expr, &opts) {
                Ok(p) => prop_assert!(well_formed(&p).is_ok(), "{expr:?}: {:?}", well_formed(&p)),
                Err(e) => prop_assert!(!e.message.is_empty(), "{expr:?}: empty error message"),
            }
        }

        #[test]
        fn random_token_soup_compiles_or_fails_cleanly(words in proptest::collection::vec(0..WORDS.len(), 1..12)) {
            let expr: String = words.iter().map(|w| WORDS[*w]).collect::<Vec<_>>().join(" ");
            let opts = CompileOptions::new(LinkType::EN10MB);
            match compile(&expr, &opts) {
                Ok(p) => prop_assert!(well_formed(&p).is_ok(), "{expr:?}: {:?}", well_formed(&p)),
                Err(e) => prop_assert!(!e.message.is_empty(), "{expr:?}: empty error message"),
            }
        }
    }
}

mod limits {
    //! Big and deep inputs: errors name the place, long chains compile
    //! without exhausting a test thread's stack, absurd nesting is refused.

    use bpfkit_isa::cbpf::{Insn, RetVal};
    use bpfkit_pcap::compile::{compile, CompileOptions, LinkType};

    #[test]
    fn errors_carry_the_position_of_the_primitive() {
        let e = compile("tcp and port 65536", &CompileOptions::new(LinkType::EN10MB)).unwrap_err();
        assert_eq!(e.message, "port number 65536 greater than maximum 65535");
        assert_eq!(e.position, Some(13), "{e}");
        let e = compile("ip and (udp or", &CompileOptions::new(LinkType::EN10MB)).unwrap_err();
        assert!(e.message.contains("syntax error"), "{e}");
        assert_eq!(e.position, Some(14), "{e}");
    }

    #[test]
    fn a_primitive_error_comes_before_a_later_syntax_error() {
        // libpcap generates code as bison reduces, so the bad port is reported
        // before the parser reaches the broken tail (or the bad token).
        let opts = CompileOptions::new(LinkType::EN10MB);
        for expr in ["port 70000 and (", "port 70000 and 0g:"] {
            let e = compile(expr, &opts).unwrap_err();
            assert_eq!(
                e.message, "port number 70000 greater than maximum 65535",
                "{expr:?}"
            );
            assert_eq!(e.position, Some(5), "{expr:?}");
        }
        let e = compile("port 80 and (", &opts).unwrap_err();
        assert_eq!(e.message, "can't parse filter expression: syntax error");
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error() {
        let expr = format!("{}tcp{}", "(".repeat(300), ")".repeat(300));
        let e = compile(&expr, &CompileOptions::new(LinkType::EN10MB)).unwrap_err();
        assert!(e.message.contains("nested more than 200 deep"), "{e}");
        let expr = format!("{}tcp", "not ".repeat(300));
        assert!(compile(&expr, &CompileOptions::new(LinkType::EN10MB)).is_err());
        // Within the limit it compiles: 100 nots are `tcp` (an even count).
        let expr = format!("{}tcp", "not ".repeat(100));
        assert_eq!(
            compile(&expr, &CompileOptions::new(LinkType::EN10MB)),
            compile("tcp", &CompileOptions::new(LinkType::EN10MB))
        );
    }

    #[test]
    fn long_chains_compile_on_a_small_stack() {
        let expr = (1..=1500)
            .map(|i| format!("len != {i}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let arith = format!("{}1 = 3001", "1 + ".repeat(3000));
        let worker = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let opts = CompileOptions::new(LinkType::from_name("RAW").expect("RAW"));
                (compile(&expr, &opts), compile(&arith, &opts))
            })
            .expect("spawn");
        let (chain, sum) = worker.join().expect("no stack overflow");
        let chain = chain.expect("1500-term chain compiles");
        // One test per term (the optimizer loads the length once), the
        // returns, and long jumps to the far reject; all inside the program.
        let tests = chain
            .iter()
            .filter(|i| matches!(i, Insn::Jmp { .. }))
            .count();
        assert_eq!(tests, 1500);
        assert_eq!(chain.iter().filter(|i| matches!(i, Insn::LdLen)).count(), 1);
        assert_eq!(
            chain.iter().filter(|i| matches!(i, Insn::Ret(_))).count(),
            2
        );
        for (i, insn) in chain.iter().enumerate() {
            let far = match *insn {
                Insn::Ja(k) => i + 1 + k as usize,
                Insn::Jmp { jt, jf, .. } => i + 1 + jt.max(jf) as usize,
                _ => continue,
            };
            assert!(far < chain.len(), "instruction {i} jumps past the end");
        }
        // The optimizer folds the constant sum: the filter accepts everything.
        assert_eq!(
            sum.expect("3000-term sum compiles"),
            vec![Insn::Ret(RetVal::K(262_144))]
        );
    }
}
