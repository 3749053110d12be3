//! Runs the PREVAIL verifier's YAML test cases (../shared/verifier/prevail,
//! see its SOURCE.md) through bpfkit's verifier and compares verdicts: a
//! case PREVAIL proves safe must be accepted, a case it reports a failed
//! safety check for must be rejected. PREVAIL's notes about unreachable code
//! are not rejections.
//!
//! For cases both accept, the interval facts PREVAIL states about number
//! registers at exit (`rN.svalue=[a, b]`, `rN.uvalue=...`) are compared with
//! bpfkit's joined exit state; relational facts are counted as left out.
//!
//! The two verifiers model different things (PREVAIL's `shared` regions and
//! relational facts, its harness's context, termination as an option), so
//! full agreement is not the goal; the counts reached are ratchets that must
//! not fall.

use bpfkit_abi::{MapType, ProgramType};
use bpfkit_isa::{assemble, Syntax};
use bpfkit_verifier::{
    CtxField, CtxLayout, EntryState, FieldKind, MapInfo, Program, RegState, RegType, Scalar,
    SlotByte, Verifier, VerifyOptions,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Verdict agreements reached; raise it when the verifier improves.
const AGREEMENT_RATCHET: usize = 668;

/// PREVAIL exit interval facts bpfkit derives exactly; raise it when it improves.
const POST_FACTS_RATCHET: usize = 495;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/verifier/prevail")
}

/// PREVAIL's LLVM-like syntax as bpfkit's assembler reads it: labels `<name>`
/// become identifiers, comments after `;` go.
fn to_asm(code: &serde_yaml::Mapping) -> String {
    let mut out = String::new();
    for (label, text) in code {
        let label = label
            .as_str()
            .unwrap_or("")
            .trim_matches(|c| c == '<' || c == '>');
        out.push_str(&format!("L_{}:\n", label.replace(['-', '.'], "_")));
        for line in text.as_str().unwrap_or("").lines() {
            let line = line.split(';').next().unwrap_or("");
            let mut l = String::new();
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '<'
                    && chars
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    l.push_str("L_");
                    for d in chars.by_ref() {
                        if d == '>' {
                            break;
                        }
                        l.push(if d == '-' || d == '.' { '_' } else { d });
                    }
                } else {
                    l.push(c);
                }
            }
            let l = translate(l.trim());
            if !l.is_empty() {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    // `assume` jumps here when its condition fails: paths PREVAIL drops end.
    // PREVAIL's programs may fall off their end, which it reads as an exit.
    let last = out.lines().last().unwrap_or("").trim().to_string();
    if last != "exit" && !last.starts_with("goto") {
        out.push_str("r0 = 0\nexit\n");
    }
    if out.contains("L__assume_failed") {
        out.push_str("L__assume_failed:\nr0 = 0\nexit\n");
    }
    out
}

/// Rewrites PREVAIL-only forms into LLVM syntax.
fn translate(l: &str) -> String {
    let words: Vec<&str> = l.split_whitespace().collect();
    match words.as_slice() {
        // `assume a OP b` refines the state: paths where it fails are dropped.
        [a, op, b]
            if op.starts_with('s')
                && op.ends_with('=')
                && op.len() > 2
                && op[1..op.len() - 1].parse::<u8>().is_ok() =>
        {
            let src = if a.starts_with('w') {
                format!("w{}", &b[1..])
            } else {
                b.to_string()
            };
            format!("{a} = ({}){src}", &op[..op.len() - 1])
        }
        [a, "=", swap, b] if swap.starts_with("swap") => format!("{a} = bswap{} {b}", &swap[4..]),
        [a, "=", n] if n.ends_with("ll") && n.len() > 2 => {
            format!("{a} = {} ll", &n[..n.len() - 2])
        }
        ["assume", a, op, b] => {
            let b = if a.starts_with('w') && b.starts_with('r') {
                format!("w{}", &b[1..])
            } else {
                b.to_string()
            };
            let neg = match *op {
                "==" => "!=",
                "!=" => "==",
                "<" => ">=",
                "<=" => ">",
                ">" => "<=",
                ">=" => "<",
                "s<" => "s>=",
                "s<=" => "s>",
                "s>" => "s<=",
                "s>=" => "s<",
                _ => return l.to_string(),
            };
            format!("if {a} {neg} {b} goto L__assume_failed")
        }
        [swap, r] if swap.starts_with("swap") => format!("{r} = bswap{} {r}", &swap[4..]),
        [w, op, r]
            if w.starts_with('w')
                && op.ends_with('=')
                && r.starts_with('r')
                && r[1..].parse::<u8>().is_ok() =>
        {
            format!("{w} {op} w{}", &r[1..])
        }
        ["lock", ..] => {
            // lock *(uSZ *)(rA + O) OP= rB [fetch]
            let Some(open) = l.find("*(") else {
                return l.to_string();
            };
            let Some(close) = l[open..].find(")(").map(|i| open + i + 1) else {
                return l.to_string();
            };
            let Some(end) = l[close..].find(')').map(|i| close + i) else {
                return l.to_string();
            };
            let ty = &l[open + 2..close - 1]; // "u32 *"
            let addr = &l[close + 1..end];
            let rest: Vec<&str> = l[end + 1..].split_whitespace().collect();
            let dw = ty.contains("64");
            let (op, src, fetch) = match rest.as_slice() {
                [op, src] => (*op, *src, false),
                [op, src, "fetch"] => (*op, *src, true),
                _ => return l.to_string(),
            };
            let n = &src[1..];
            let sr = if dw { format!("r{n}") } else { format!("w{n}") };
            match (op, fetch) {
                ("x=", _) => format!(
                    "{sr} = {}({addr}, {sr})",
                    if dw { "xchg_64" } else { "xchg32_32" }
                ),
                ("cx=", _) => {
                    let r0 = if dw { "r0" } else { "w0" };
                    format!(
                        "{r0} = {}({addr}, {r0}, {sr})",
                        if dw { "cmpxchg_64" } else { "cmpxchg32_32" }
                    )
                }
                (op, true) => {
                    let name = match op {
                        "+=" => "add",
                        "&=" => "and",
                        "|=" => "or",
                        "^=" => "xor",
                        _ => return l.to_string(),
                    };
                    format!("{sr} = atomic_fetch_{name}(({ty})({addr}), {sr})")
                }
                (op, false) => format!("lock *({ty})({addr}) {op} {sr}"),
            }
        }
        _ => l.to_string(),
    }
}

fn parse_range(v: &str) -> Option<(i128, i128)> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        let (a, b) = inner.split_once(',')?;
        let p = |s: &str| -> Option<i128> {
            match s.trim() {
                "-oo" => Some(i64::MIN as i128),
                "+oo" | "oo" => Some(u64::MAX as i128),
                t => t.parse().ok(),
            }
        };
        return Some((p(a)?, p(b)?));
    }
    let n: i128 = v.parse().ok()?;
    Some((n, n))
}

#[derive(Default, Debug)]
struct RegFacts {
    ty: Option<String>,
    svalue: Option<(i128, i128)>,
    uvalue: Option<(i128, i128)>,
    offset: Option<(i128, i128)>,
    region: Option<(i128, i128)>,
    map_fd: Option<i128>,
    /// `rN.packet_offset=packet_size`: the end of the packet.
    end: bool,
}

fn scalar_of(f: &RegFacts) -> Scalar {
    let mut s = Scalar::UNKNOWN;
    if let Some((lo, hi)) = f.svalue {
        s.smin = lo.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        s.smax = hi.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    }
    if let Some((lo, hi)) = f.uvalue {
        s.umin = lo.clamp(0, u64::MAX as i128) as u64;
        s.umax = hi.clamp(0, u64::MAX as i128) as u64;
    }
    s.sync();
    s
}

/// Builds the entry state from PREVAIL's `pre` constraints; `None` for
/// constraints this harness cannot express.
fn entry_of(pre: &[String]) -> Option<EntryState> {
    let mut regs: BTreeMap<u8, RegFacts> = BTreeMap::new();
    let mut packet_size: i128 = 0;
    let mut stack: BTreeMap<(i128, i128), RegFacts> = BTreeMap::new();
    for c in pre {
        let (lhs, rhs) = c.split_once('=')?;
        if lhs == "packet_size" {
            if let Some((lo, _)) = parse_range(rhs) {
                packet_size = lo;
            }
            continue;
        }
        if lhs == "meta_offset" {
            continue;
        }
        let (who, field) = lhs.rsplit_once('.')?;
        let facts = if let Some(n) = who.strip_prefix('r') {
            regs.entry(n.parse().ok()?).or_default()
        } else if let Some(range) = who.strip_prefix("s[").and_then(|w| w.strip_suffix(']')) {
            let (a, b) = range.split_once("...")?;
            stack.entry((a.parse().ok()?, b.parse().ok()?)).or_default()
        } else {
            return None;
        };
        match field {
            "type" => facts.ty = Some(rhs.to_string()),
            "svalue" => facts.svalue = parse_range(rhs),
            "uvalue" => facts.uvalue = parse_range(rhs),
            "packet_offset" if rhs == "packet_size" => facts.end = true,
            "ctx_offset" | "stack_offset" | "packet_offset" | "shared_offset" => {
                if let Some(r) = parse_range(rhs) {
                    facts.offset = Some(r);
                }
            }
            "shared_region_size" => facts.region = parse_range(rhs),
            "map_fd" => facts.map_fd = parse_range(rhs).map(|r| r.0),
            _ => {}
        }
    }
    let mut entry = EntryState::default();
    for (r, f) in &regs {
        if *r == 10 {
            // bpfkit's frame pointer is fixed: 512 bytes below it are the stack.
            continue;
        }
        let (off, var) = match f.offset {
            Some((lo, hi)) if lo == hi => (lo as i32, Scalar::constant(0)),
            Some((lo, hi)) => (0, Scalar::srange(lo as i64, hi as i64)),
            None => (0, Scalar::constant(0)),
        };
        let v = match f.ty.as_deref()? {
            "number" => RegState::scalar(scalar_of(f)),
            "ctx" => RegState {
                off,
                var,
                ..RegState::pointer(RegType::Ctx, 0)
            },
            "stack" => RegState {
                off: off - 512,
                var,
                ..RegState::pointer(RegType::Stack, 0)
            },
            "packet" if f.end => RegState::pointer(RegType::PacketEnd, 0),
            "packet" => RegState {
                off,
                var,
                range: if var.as_const() == Some(0) {
                    packet_size as i32
                } else {
                    0
                },
                ..RegState::pointer(RegType::Packet, 0)
            },
            "shared" => RegState {
                off,
                var,
                ..RegState::pointer(RegType::Mem, f.region.map(|r| r.0 as u32).unwrap_or(0))
            },
            "map_fd" => RegState::pointer(RegType::ConstMapPtr, f.map_fd? as u32),
            _ => return None,
        };
        entry.regs.push((*r, v));
    }
    for ((a, b), f) in &stack {
        let byte = if f.svalue == Some((0, 0)) {
            SlotByte::Zero
        } else {
            SlotByte::Misc
        };
        for o in *a..=*b {
            entry.stack.push(((o - 512) as i16, byte));
        }
    }
    Some(entry)
}

/// The context PREVAIL's YAML harness describes: 64 bytes, `data` at 0 and
/// `data_end` at 4 (4-byte pointer slots), no `data_meta`.
fn harness_ctx() -> CtxLayout {
    CtxLayout {
        name: "prevail test ctx",
        size: 64,
        fields: vec![
            CtxField {
                off: 0,
                size: 4,
                kind: FieldKind::Packet,
                writable: false,
            },
            CtxField {
                off: 4,
                size: 4,
                kind: FieldKind::PacketEnd,
                writable: false,
            },
        ],
        min_off: 0,
        rest_readable: true,
        rest_writable: true,
        u64_only: false,
        rest_kind: FieldKind::Scalar,
        narrow: true,
    }
}

#[derive(serde::Deserialize)]
struct Case {
    #[serde(rename = "test-case")]
    name: String,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    pre: Vec<String>,
    code: serde_yaml::Mapping,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    post: Vec<String>,
}

/// How PREVAIL's interval facts about exit registers compare with bpfkit's.
#[derive(Default)]
struct PostFacts {
    /// Interval facts checked.
    checked: usize,
    /// bpfkit derives the same interval.
    same: usize,
    /// bpfkit's interval is wider (less precise, still sound).
    wider: usize,
    /// bpfkit's interval is narrower or elsewhere: worth a look.
    narrower: Vec<String>,
    /// Relational or non-register facts, left out.
    left_out: usize,
}

/// Compares `post`'s `rN.svalue`/`rN.uvalue` interval facts for number registers.
fn compare_post(name: &str, post: &[String], exit: &[RegState], facts: &mut PostFacts) {
    let numbers: Vec<&str> = post
        .iter()
        .filter_map(|c| c.strip_suffix(".type=number"))
        .collect();
    for c in post {
        let Some((lhs, rhs)) = c.split_once('=') else {
            facts.left_out += 1;
            continue;
        };
        let Some((reg, field)) = lhs.split_once('.') else {
            facts.left_out += 1;
            continue;
        };
        if field == "type" {
            continue;
        }
        let idx: Option<usize> = reg.strip_prefix('r').and_then(|n| n.parse().ok());
        let (Some(idx), Some((lo, hi))) = (idx, parse_range(rhs)) else {
            facts.left_out += 1;
            continue;
        };
        if !numbers.contains(&reg) || !matches!(field, "svalue" | "uvalue") || idx > 10 {
            facts.left_out += 1;
            continue;
        }
        let r = &exit[idx];
        if r.ty != RegType::Scalar {
            facts.left_out += 1;
            continue;
        }
        let (ours_lo, ours_hi) = if field == "svalue" {
            (r.var.smin as i128, r.var.smax as i128)
        } else {
            (r.var.umin as i128, r.var.umax as i128)
        };
        facts.checked += 1;
        if (ours_lo, ours_hi) == (lo, hi) {
            facts.same += 1;
        } else if ours_lo <= lo && ours_hi >= hi {
            facts.wider += 1;
        } else {
            facts
                .narrower
                .push(format!("{name}: {c}: bpfkit has [{ours_lo}, {ours_hi}]"));
        }
    }
}

#[test]
fn prevail_suite_verdicts() {
    let dir = suite_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the PREVAIL suite is test data in ../shared)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let maps: Vec<MapInfo> = (0..4)
        .map(|i| MapInfo::new(&format!("map{i}"), MapType::Array, 4, 16, 16))
        .collect();
    let (mut total, mut agree, mut unsupported) = (0, 0, 0);
    let mut disagreements = Vec::new();
    let mut causes: BTreeMap<Cause, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut post_facts = PostFacts::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            if value.is_null() {
                continue;
            }
            let case: Case = serde_yaml::from_value(value)
                .unwrap_or_else(|e| panic!("{}: a case does not parse: {e}", file.display()));
            total += 1;
            let expect_reject = case
                .messages
                .iter()
                .any(|m| !m.contains("Code becomes unreachable"));
            let asm = to_asm(&case.code);
            let insns = match assemble(&asm, Syntax::Llvm) {
                Ok(i) => i,
                Err(e) => {
                    if std::env::var("PREVAIL_DEBUG").is_ok() {
                        println!(
                            "asm error {e}: {}",
                            asm.lines().nth(e.line.saturating_sub(1)).unwrap_or("")
                        );
                    }
                    unsupported += 1;
                    *reasons.entry(format!("asm: {}", e.kind_str())).or_default() += 1;
                    continue;
                }
            };
            let Some(entry) = entry_of(&case.pre) else {
                if std::env::var("PREVAIL_DEBUG").is_ok() {
                    println!("pre error: {:?}", case.pre);
                }
                unsupported += 1;
                *reasons.entry("pre-state".into()).or_default() += 1;
                continue;
            };
            let opts = VerifyOptions {
                entry: Some(entry),
                ctx_layout: Some(harness_ctx()),
                allow_div_by_zero: !case.options.iter().any(|o| o == "!allow_division_by_zero"),
                maps: maps.clone(),
                max_insns: 100_000,
                ..VerifyOptions::default()
            };
            let got = Verifier::new(ProgramType::Xdp).verify(Program::Raw(&insns), &opts);
            if let Ok(Some(exit)) = got.as_ref().map(|v| v.exit_regs.clone()) {
                // bpfkit's byte swaps are a little-endian host's; `big_endian` cases assume the other.
                let big_endian = case.options.iter().any(|o| o == "big_endian");
                if !expect_reject && !asm.contains("L__assume_failed") && !big_endian {
                    // The exit this harness appends sets r0: PREVAIL's facts about r0 do not apply.
                    let post: Vec<String> = if asm.ends_with("r0 = 0\nexit\n") {
                        case.post
                            .iter()
                            .filter(|c| !c.starts_with("r0."))
                            .cloned()
                            .collect()
                    } else {
                        case.post.clone()
                    };
                    post_facts.left_out += case.post.len() - post.len();
                    compare_post(&case.name, &post, &exit, &mut post_facts);
                }
            }
            if got.is_err() == expect_reject {
                agree += 1;
            } else {
                let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
                let bpfkit_msg = got.as_ref().err().map(|r| r.message.as_str());
                match explain(&file_name, &case.name, bpfkit_msg) {
                    Some(cause) => *causes.entry(cause).or_default() += 1,
                    None => unexplained.push(format!("{file_name}: {}", case.name)),
                }
                disagreements.push(format!(
                    "{}: {}: PREVAIL {}, bpfkit {}",
                    file.file_name().unwrap().to_string_lossy(),
                    case.name,
                    if expect_reject {
                        format!("rejects ({})", case.messages.join("; "))
                    } else {
                        "accepts".into()
                    },
                    match &got {
                        Ok(_) => "accepts".to_string(),
                        Err(r) => format!("rejects at {}: {}", r.insn, r.message),
                    }
                ));
            }
        }
    }
    for d in &disagreements {
        println!("disagree: {d}");
    }
    for (r, n) in &reasons {
        println!("not run ({r}): {n}");
    }
    for (cause, n) in &causes {
        println!("disagreements because {}: {n}", cause.text());
    }
    println!(
        "PREVAIL suite: {total} cases, {agree} verdicts agree, {} disagree, {unsupported} not run",
        disagreements.len()
    );
    for n in &post_facts.narrower {
        println!("post fact: {n}");
    }
    println!(
        "post facts of accepted cases: {} interval facts checked, {} the same, {} wider in bpfkit, {} narrower \
         or different; {} relational or non-interval facts left out",
        post_facts.checked,
        post_facts.same,
        post_facts.wider,
        post_facts.narrower.len(),
        post_facts.left_out
    );
    assert_eq!(total, 802, "the suite has 802 cases (SOURCE.md)");
    assert!(
        unexplained.is_empty(),
        "disagreements with no explanation in `explain`: {unexplained:#?}"
    );
    assert!(
        post_facts.same >= POST_FACTS_RATCHET,
        "interval facts matching PREVAIL fell: {} < {POST_FACTS_RATCHET}",
        post_facts.same
    );
    assert!(
        agree >= AGREEMENT_RATCHET,
        "verdict agreement fell: {agree} < {AGREEMENT_RATCHET}"
    );
}

use serde::Deserialize as _;

/// Why bpfkit's verdict differs from PREVAIL's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// bpfkit applies a rule of the kernel's that PREVAIL does not have.
    KernelRule(&'static str),
    /// The kernel (privileged, as bpfkit by default) allows what PREVAIL
    /// refuses, and bpfkit follows the kernel.
    KernelAllows(&'static str),
    /// bpfkit does not model this yet (it says so in its message).
    NotModelled(&'static str),
    /// This harness cannot give bpfkit PREVAIL's entry state or memory model.
    Harness(&'static str),
    /// A PREVAIL-only construct the case tests.
    PrevailOnly(&'static str),
}

impl Cause {
    fn text(self) -> String {
        match self {
            Cause::KernelRule(r) => format!("the kernel's rule {r}"),
            Cause::KernelAllows(r) => format!("the kernel allows {r}"),
            Cause::NotModelled(r) => format!("bpfkit does not model {r}"),
            Cause::Harness(r) => format!("of the harness: {r}"),
            Cause::PrevailOnly(r) => format!("of PREVAIL's own {r}"),
        }
    }
}

/// The cause of each disagreement in the suite: by bpfkit's message when it
/// rejects, by case when it accepts what PREVAIL refuses.
fn explain(file: &str, name: &str, bpfkit_rejects: Option<&str>) -> Option<Cause> {
    use Cause::*;
    if let Some(m) = bpfkit_rejects {
        let rule = |needle: &str| m.contains(needle);
        return Some(if rule("div by zero") {
            KernelRule("check_alu_op: division by the constant 0 (\"div by zero\")")
        } else if rule("invalid shift") {
            KernelRule("check_alu_op: a constant shift of the width or more, or negative")
        } else if rule("misaligned stack access") {
            KernelRule("check_ptr_alignment: stack accesses are always strictly aligned")
        } else if rule("BPF_LD_[ABS|IND] instructions not allowed") {
            KernelRule("check_ld_abs: may_access_skb, no LD_ABS/LD_IND in XDP")
        } else if rule("cannot pass map_type") {
            KernelRule("check_map_func_compatibility: bpf_ringbuf_output needs a ring buffer")
        } else if rule("!read_ok") {
            // A callee starts with r0 and r6..r9 unset; exit needs r0; the
            // kernel walks `ptr < 0` both ways (is_branch_taken knows only
            // NULL tests of pointers); `r5 = r5` and `r0 = r3` read unset registers.
            KernelRule("check_reg_arg: every register read must have been written on the path")
        } else if rule("unreachable insn") || rule("jump out of range") {
            KernelRule("check_cfg: no unreachable code, no jump across a subprogram boundary")
        } else if rule("invalid access to packet") && file == "loop.yaml" {
            KernelRule(
                "find_good_pkt_pointers: packet bounds come from comparing pointers with \
                 data_end, not from a scalar length",
            )
        } else if rule("too large") {
            KernelRule("BPF_COMPLEXITY_LIMIT_INSNS: the loop is walked, not widened")
        } else if rule("indirect calls (callx)") {
            NotModelled("callx")
        } else if rule("does not know this helper") {
            NotModelled("bpf_skc_lookup_tcp (helper 99)")
        } else if rule("entry state") {
            Harness("PREVAIL's alloc_mem and >512-byte subprogram stacks have no entry-state equivalent")
        } else if rule("the stack is 512 bytes below") {
            Harness("PREVAIL's stack spans every subprogram's frame, bpfkit's 512 bytes")
        } else if rule("bpf_context access") {
            Harness("the test context is given as xdp_md-like 4-byte fields")
        } else if rule("invalid access to memory") || rule("invalid access to packet") {
            Harness("PREVAIL's shared regions and packet meta area are larger than the entry state bpfkit gets")
        } else {
            return None;
        });
    }
    // bpfkit accepts what PREVAIL rejects.
    Some(match (file, name) {
        ("observe.yaml", _) => PrevailOnly("`observe` assertions"),
        ("assign.yaml", _) | ("atomic.yaml", _) | ("pointer.yaml", _) | ("subtract.yaml", _) => {
            KernelAllows(
                "pointers in 32-bit moves, returns, cmpxchg and pointer subtraction \
                 (is_pointer_value is true only for unprivileged programs)",
            )
        }
        ("jump.yaml", "multiple types add fail" | "lost implications in correlated branches") => {
            KernelAllows("what a path-by-path walk proves and a join loses")
        }
        ("jump.yaml", _) => {
            KernelAllows("comparing pointers with numbers and other pointers (privileged)")
        }
        ("call.yaml", "bpf_map_lookup_elem shared key - maybe null") => {
            Harness("a shared pointer given as a map value, which is never NULL")
        }
        ("call.yaml", _)
        | (
            "stack.yaml",
            "stack_numeric_size join must use minimum (8 bytes read after 4/8 write)",
        ) => KernelAllows(
            "spilled pointers and partly written slots as initialized helper memory \
                 (check_stack_range_initialized with allow_ptr_leaks)",
        ),
        _ => return None,
    })
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for bpfkit_isa::AsmError {
    fn kind_str(&self) -> String {
        let s = self.to_string();
        s.split(':')
            .next_back()
            .unwrap_or(&s)
            .trim()
            .chars()
            .take(40)
            .collect()
    }
}
