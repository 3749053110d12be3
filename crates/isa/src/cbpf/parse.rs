//! Reading classic programs back from the text tcpdump prints: the `-d`
//! listing (the inverse of [`super::dump`]), the `-dd` C array and the
//! `-ddd` decimal list, with their printers ([`dump_c_array`], [`dump_decimal`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use super::print::{ANCILLARY, SKF_AD_OFF};
use super::{AluOp, Insn, JmpCond, RetVal, Size, SockFilter, Src};

/// A line of program text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number in the text.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {}

/// Parses a number as libpcap prints one: decimal (maybe negative, taken as
/// its 32-bit pattern) or `0x` hex.
fn number(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    if let Some(n) = s.strip_prefix('-') {
        let v: u64 = n.parse().ok()?;
        return (v <= 1 << 31).then(|| (v as u32).wrapping_neg());
    }
    s.parse().ok()
}

/// Parses a `tcpdump -d` listing (`(000) ldh      [12]`, one instruction a
/// line) back into instructions. Blank lines and `; comments` are skipped;
/// the `(NNN)` index must count up from 0; jump targets are absolute, as
/// printed. `unimp 0xNN` lines (opcodes libpcap 1.10 has no name for)
/// decode by their opcode.
pub fn parse_listing(text: &str) -> Result<Vec<Insn>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let rest = line
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| err(format!("expected `(NNN) op operand`, found `{line}`")))?;
        let index: usize = rest
            .0
            .trim()
            .parse()
            .map_err(|_| err(format!("bad instruction index `({})`", rest.0)))?;
        if index != out.len() {
            return Err(err(format!(
                "instruction index {index} where {} was expected",
                out.len()
            )));
        }
        let insn = parse_insn(rest.1.trim(), index).map_err(err)?;
        out.push(insn);
    }
    Ok(out)
}

fn parse_insn(s: &str, index: usize) -> Result<Insn, String> {
    let (op, operand) = match s.split_once(char::is_whitespace) {
        Some((o, r)) => (o, r.trim()),
        None => (s, ""),
    };
    let bad = || format!("bad operand `{operand}` for `{op}`");
    let num = |t: &str| number(t).ok_or_else(bad);
    // `#k` as printed (hex or decimal).
    let imm = |t: &str| t.strip_prefix('#').ok_or_else(bad).and_then(num);
    let mem = |t: &str| {
        t.strip_prefix("M[")
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(bad)
            .and_then(num)
    };
    let size = match op {
        "ld" => Some(Size::W),
        "ldh" => Some(Size::H),
        "ldb" => Some(Size::B),
        _ => None,
    };
    if let Some(size) = size {
        if let Some(inner) = operand.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if let Some(k) = inner.strip_prefix("x + ") {
                return Ok(Insn::LdInd { size, k: num(k)? });
            }
            if let Some((off, _)) = ANCILLARY.iter().find(|(_, name)| *name == inner) {
                return Ok(Insn::LdAbs {
                    size,
                    k: SKF_AD_OFF + off,
                });
            }
            return Ok(Insn::LdAbs {
                size,
                k: num(inner)?,
            });
        }
        if size == Size::W {
            return Ok(match operand {
                "#pktlen" | "#len" => Insn::LdLen,
                o if o.starts_with('#') => Insn::LdImm(imm(o)?),
                o => Insn::LdMem(mem(o)?),
            });
        }
        return Err(bad());
    }
    let alu = match op {
        "add" => Some(AluOp::Add),
        "sub" => Some(AluOp::Sub),
        "mul" => Some(AluOp::Mul),
        "div" => Some(AluOp::Div),
        "mod" => Some(AluOp::Mod),
        "and" => Some(AluOp::And),
        "or" => Some(AluOp::Or),
        "xor" => Some(AluOp::Xor),
        "lsh" => Some(AluOp::Lsh),
        "rsh" => Some(AluOp::Rsh),
        _ => None,
    };
    if let Some(op) = alu {
        let src = if operand == "x" {
            Src::X
        } else {
            Src::K(imm(operand)?)
        };
        return Ok(Insn::Alu { op, src });
    }
    let cond = match op {
        "jeq" => Some(JmpCond::Eq),
        "jgt" => Some(JmpCond::Gt),
        "jge" => Some(JmpCond::Ge),
        "jset" => Some(JmpCond::Set),
        _ => None,
    };
    if let Some(cond) = cond {
        let mut parts = operand.split_whitespace();
        let src = match parts.next() {
            Some("x") => Src::X,
            Some(t) => Src::K(imm(t)?),
            None => return Err(bad()),
        };
        let mut target = |label: &str| -> Result<u8, String> {
            if parts.next() != Some(label) {
                return Err(format!("expected `{label} N` in `{operand}`"));
            }
            let t: usize = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
            t.checked_sub(index + 1)
                .and_then(|o| u8::try_from(o).ok())
                .ok_or_else(|| {
                    format!("jump target {t} is not 1 to 256 instructions after {index}")
                })
        };
        let jt = target("jt")?;
        let jf = target("jf")?;
        return Ok(Insn::Jmp { cond, src, jt, jf });
    }
    Ok(match (op, operand) {
        ("ldx", "#pktlen" | "#len") => Insn::LdxLen,
        ("ldx", o) if o.starts_with('#') => Insn::LdxImm(imm(o)?),
        ("ldx", o) => Insn::LdxMem(mem(o)?),
        ("ldxb", o) => Insn::LdxMsh(
            o.strip_prefix("4*([")
                .and_then(|t| t.strip_suffix("]&0xf)"))
                .ok_or_else(bad)
                .and_then(num)?,
        ),
        ("st", o) => Insn::St(mem(o)?),
        ("stx", o) => Insn::Stx(mem(o)?),
        ("neg", "") => Insn::Neg,
        ("tax", "") => Insn::Tax { k: 0 },
        ("txa", "") => Insn::Txa { k: 0 },
        ("ret", "" | "a" | "A") => Insn::Ret(RetVal::A),
        ("ret", "x" | "X") => Insn::Ret(RetVal::X),
        ("ret", o) => Insn::Ret(RetVal::K(imm(o)?)),
        ("ja", o) => {
            // libpcap prints the target as a C int: a backward jump (a
            // wrapped `k`, as protochain's loop has) prints below `index`.
            let t = num(o)?;
            Insn::Ja(t.wrapping_sub(index as u32 + 1))
        }
        ("unimp", o) => {
            let code = num(o)?;
            let code = u16::try_from(code).map_err(|_| bad())?;
            Insn::decode(
                SockFilter {
                    code,
                    ..SockFilter::default()
                },
                index,
            )
            .map_err(|e| e.to_string())?
        }
        _ => return Err(format!("unknown instruction `{s}`")),
    })
}

/// Parses `tcpdump -dd` output: one `{ code, jt, jf, k },` per line (C
/// numbers: decimal or `0x` hex). Lines without a `{` are skipped, so a
/// whole `struct sock_filter prog[] = { ... };` declaration parses too.
pub fn parse_c_array(text: &str) -> Result<Vec<Insn>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let err = |message: String| ParseError {
            line: n + 1,
            message,
        };
        let Some(start) = raw.rfind('{') else {
            continue;
        };
        let body = raw[start + 1..].split('}').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let fields: Vec<&str> = body.split(',').map(str::trim).collect();
        let nums: Option<Vec<u32>> = fields.iter().map(|f| number(f)).collect();
        let Some([code, jt, jf, k]) = nums.and_then(|v| <[u32; 4]>::try_from(v).ok()) else {
            return Err(err(format!(
                "expected `{{ code, jt, jf, k }}`, found `{body}`"
            )));
        };
        out.push(sock_filter(code, jt, jf, k, out.len()).map_err(err)?);
    }
    Ok(out)
}

/// Parses `tcpdump -ddd` output: the instruction count, then
/// `code jt jf k` in decimal, one instruction a line.
pub fn parse_decimal(text: &str) -> Result<Vec<Insn>, ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((n0, first)) = lines.next() else {
        return Ok(Vec::new());
    };
    let count: usize = first.trim().parse().map_err(|_| ParseError {
        line: n0 + 1,
        message: format!("expected the instruction count, found `{}`", first.trim()),
    })?;
    let mut out = Vec::new();
    let mut last = n0 + 1;
    for (n, l) in lines {
        last = n + 1;
        let err = |message: String| ParseError {
            line: n + 1,
            message,
        };
        let nums: Option<Vec<u32>> = l.split_whitespace().map(|f| f.parse().ok()).collect();
        let Some([code, jt, jf, k]) = nums.and_then(|v| <[u32; 4]>::try_from(v).ok()) else {
            return Err(err(format!(
                "expected `code jt jf k`, found `{}`",
                l.trim()
            )));
        };
        out.push(sock_filter(code, jt, jf, k, out.len()).map_err(err)?);
    }
    if out.len() != count {
        return Err(ParseError {
            line: last,
            message: format!("{} instructions where the count says {count}", out.len()),
        });
    }
    Ok(out)
}

fn sock_filter(code: u32, jt: u32, jf: u32, k: u32, index: usize) -> Result<Insn, String> {
    let narrow = |v: u32, what: &str| u8::try_from(v).map_err(|_| format!("{what} {v} > 255"));
    let f = SockFilter {
        code: u16::try_from(code).map_err(|_| format!("code {code:#x} > 0xffff"))?,
        jt: narrow(jt, "jt")?,
        jf: narrow(jf, "jf")?,
        k,
    };
    Insn::decode(f, index).map_err(|e| e.to_string())
}

/// The program as `tcpdump -dd` prints it: `{ 0x28, 0, 0, 0x0000000c },`.
pub fn dump_c_array(insns: &[Insn]) -> String {
    let mut out = String::new();
    for i in insns {
        let f = i.encode();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{{ {:#x}, {}, {}, 0x{:08x} }},",
            f.code, f.jt, f.jf, f.k
        );
    }
    out
}

/// The program as `tcpdump -ddd` prints it: the count, then `code jt jf k` in decimal.
pub fn dump_decimal(insns: &[Insn]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", insns.len());
    for i in insns {
        let f = i.encode();
        let _ = writeln!(out, "{} {} {} {}", f.code, f.jt, f.jf, f.k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::dump;
    use super::*;

    // `tcpdump -d/-dd/-ddd tcp` (tcpdump 4.99.3, libpcap 1.10.3).
    const TCP_D: &str = "(000) ldh      [12]
(001) jeq      #0x800           jt 2\tjf 4
(002) ldb      [23]
(003) jeq      #0x6             jt 10\tjf 11
(004) jeq      #0x86dd          jt 5\tjf 11
(005) ldb      [20]
(006) jeq      #0x6             jt 10\tjf 7
(007) jeq      #0x2c            jt 8\tjf 11
(008) ldb      [54]
(009) jeq      #0x6             jt 10\tjf 11
(010) ret      #262144
(011) ret      #0
";
    const TCP_DD: &str = "{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 2, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 },
{ 0x15, 6, 7, 0x00000006 },
{ 0x15, 0, 6, 0x000086dd },
{ 0x30, 0, 0, 0x00000014 },
{ 0x15, 3, 0, 0x00000006 },
{ 0x15, 0, 3, 0x0000002c },
{ 0x30, 0, 0, 0x00000036 },
{ 0x15, 0, 1, 0x00000006 },
{ 0x6, 0, 0, 0x00040000 },
{ 0x6, 0, 0, 0x00000000 },
";
    const TCP_DDD: &str = "12
40 0 0 12
21 0 2 2048
48 0 0 23
21 6 7 6
21 0 6 34525
48 0 0 20
21 3 0 6
21 0 3 44
48 0 0 54
21 0 1 6
6 0 0 262144
6 0 0 0
";

    #[test]
    fn the_three_formats_parse_to_one_program_and_print_back_exactly() {
        let d = parse_listing(TCP_D).unwrap();
        assert_eq!(d.len(), 12);
        assert_eq!(parse_c_array(TCP_DD).unwrap(), d);
        assert_eq!(parse_decimal(TCP_DDD).unwrap(), d);
        assert_eq!(dump(&d), TCP_D);
        assert_eq!(dump_c_array(&d), TCP_DD);
        assert_eq!(dump_decimal(&d), TCP_DDD);
    }

    #[test]
    fn every_printed_form_parses_back() {
        let text = "(000) ld       #0xf ; comment
(001) ldx      M[15]
(002) ld       [x + 15]
(003) ldb      [vlan_tci]
(004) ldxb     4*([14]&0xf)
(005) and      #0xffff
(006) sub      #-1
(007) ja       9
(008) ja       2
(009) unimp    0x81
(010) ldx      #pktlen
(011) ret      #-1
(012) ret
";
        let p = parse_listing(text).unwrap();
        assert_eq!(p[1], Insn::LdxMem(15));
        assert_eq!(
            p[3],
            Insn::LdAbs {
                size: Size::B,
                k: 0xffff_f000 + 44
            }
        );
        assert_eq!(
            p[6],
            Insn::Alu {
                op: AluOp::Sub,
                src: Src::K(u32::MAX)
            }
        );
        assert_eq!(p[7], Insn::Ja(1));
        assert_eq!(p[8], Insn::Ja(u32::MAX - 6));
        assert_eq!(p[8].tcpdump(8).to_string(), "(008) ja       2");
        assert_eq!(p[9], Insn::LdxLen);
        assert_eq!(p[10], Insn::LdxLen);
        assert_eq!(p[11], Insn::Ret(RetVal::K(u32::MAX)));
        assert_eq!(p[12], Insn::Ret(RetVal::A));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_listing("(000) ldh [12]\n(001) frob #1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("frob"), "{e}");
        let e = parse_listing("(000) ldh [12]\n(002) ret #0\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_listing("(000) jeq #1 jt 0 jf 1\n").unwrap_err();
        assert!(e.message.contains("jump target 0"), "{e}");
        let e = parse_c_array("{ 0x28, 0, 0 },\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_decimal("2\n6 0 0 0\n").unwrap_err();
        assert!(e.message.contains("count"), "{e}");
    }
}
