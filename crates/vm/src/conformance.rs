//! The bpf_conformance test format (also uBPF's) and a runner for it.
//!
//! A `.data` file has sections introduced by `--` lines: `asm` (the program
//! in uBPF syntax), `raw` (the program as hex 64-bit words), `mem` (hex bytes
//! the program gets in r1/r2), `result` (expected r0), and `error` or
//! `error pattern` (the program is expected to be rejected or to fail). A
//! section may instead link a file next to the test (`-- asm @ prog.asm`,
//! `-- mem @ packet.hex`), `mem` may be a hexdump (`0x0010:  0040 a8de`:
//! text up to a line's last `:` is its offset), and `#` starts a comment on
//! any line, as uBPF's `testdata.py` reads them. Other sections (`c`,
//! `description`, `no jit`, `no register offset`) are ignored, as the
//! suites' own runners do.
//!
//! The expected error's text is the reference runtime's own message, so it
//! is not compared: any rejection, at assembly, decoding, loading or run
//! time, meets it. A file that expects nothing, or needs what only uBPF's
//! test VM has (its helpers, `-- reload`), is skipped with the reason.

use std::path::{Path, PathBuf};

use bpfkit_isa::{assemble, CallTarget, Insn, Syntax};

use crate::{Program, Vm};

/// What a test file expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// r0 after the run (`-- result`).
    Value(u64),
    /// The program is rejected or its run fails (`-- error` or `-- error
    /// pattern`, with the reference runtime's message). This wins over a
    /// `result` in the same file: uBPF's test VM prints `0xffffffffffffffff`
    /// after a runtime error, and its files say so.
    Error(String),
    /// The file states neither.
    Nothing,
}

/// One parsed test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The program, or why it could not be assembled or decoded: a
    /// load-time error, which meets an expected error.
    pub program: Result<Vec<Insn>, String>,
    /// Memory passed in r1 (length in r2).
    pub mem: Vec<u8>,
    /// What the file expects.
    pub expected: Expected,
    /// Why the file cannot run here, when it needs a feature of uBPF's test
    /// VM (a section such as `reload`) or has no program.
    pub unsupported: Option<String>,
}

/// Why a test file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Reading the file, or a file one of its sections links, failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A section is malformed.
    #[error("{path}: section `{section}`: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// What is wrong.
        message: String,
    },
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

/// Hex bytes, one or more per whitespace-separated token (`00 11`, `0011`),
/// after dropping each line's hexdump offset (up to its last `:`).
fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = strip_comment(line);
        let line = line.rsplit_once(':').map_or(line, |(_, data)| data);
        for tok in line.split_whitespace() {
            let bad = || format!("line {}: `{tok}` is not hex bytes", index + 1);
            if tok.len() % 2 != 0 || !tok.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            for pair in tok.as_bytes().chunks(2) {
                // Two ASCII hex digits: valid UTF-8 and a valid byte.
                let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
                bytes.push(u8::from_str_radix(digits, 16).map_err(|_| bad())?);
            }
        }
    }
    Ok(bytes)
}

fn parse_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if let Some(neg) = t.strip_prefix('-') {
        neg.parse::<u64>().map(|v| v.wrapping_neg())
    } else {
        t.parse::<u64>()
    };
    parsed.map_err(|e| format!("`{t}`: {e}"))
}

/// The program of a `raw` section: one hex 64-bit word per token.
fn parse_raw(raw: &str) -> Result<Vec<Insn>, String> {
    let mut bytes = Vec::new();
    for tok in raw
        .lines()
        .map(strip_comment)
        .flat_map(str::split_whitespace)
    {
        let digits = tok
            .strip_prefix("0x")
            .or_else(|| tok.strip_prefix("0X"))
            .unwrap_or(tok);
        let word = u64::from_str_radix(digits, 16).map_err(|e| format!("`{tok}`: {e}"))?;
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bpfkit_isa::decode(&bytes, bpfkit_isa::ByteOrder::Little).map_err(|e| e.to_string())
}

/// Sections that ask uBPF's test VM for something it alone does.
const UBPF_ONLY_SECTIONS: [(&str, &str); 3] = [
    (
        "reload",
        "loads the program twice into one VM (uBPF's `-R`)",
    ),
    ("unload", "unloads and reloads the program (uBPF's `-U`)"),
    ("pyelf", "is an ELF built by uBPF's Python ELF-loader tests"),
];

impl TestCase {
    /// Parses a test file's text; `path` names it in errors. A section that
    /// links a file (`-- asm @ prog.asm`) is an error here: read such files
    /// with [`TestCase::from_file`].
    pub fn parse(text: &str, path: &Path) -> Result<TestCase, CaseError> {
        TestCase::parse_with(text, path, |name| {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("cannot read the linked file `{name}` from text alone"),
            ))
        })
    }

    /// Parses a test file's text, reading linked files with `read`.
    fn parse_with(
        text: &str,
        path: &Path,
        mut read: impl FnMut(&str) -> std::io::Result<String>,
    ) -> Result<TestCase, CaseError> {
        let malformed = |section: &str, message: String| CaseError::Malformed {
            path: path.to_path_buf(),
            section: section.to_string(),
            message,
        };
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(header) = line.strip_prefix("--") {
                let header = strip_comment(header);
                match header.split_once('@') {
                    Some((name, link)) => {
                        let name = name.trim();
                        let body = read(link.trim()).map_err(|e| {
                            malformed(name, format!("reading `{}`: {e}", link.trim()))
                        })?;
                        sections.push((name.to_string(), body));
                    }
                    None => sections.push((header.to_string(), String::new())),
                }
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let get = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, b)| b);

        let mut unsupported = UBPF_ONLY_SECTIONS
            .iter()
            .find(|(name, _)| get(name).is_some())
            .map(|(name, why)| format!("uBPF-only feature: the `{name}` section {why}"));
        let program = if let Some(asm) = get("asm") {
            assemble(asm, Syntax::Ubpf).map_err(|e| format!("assembling: {e}"))
        } else if let Some(raw) = get("raw") {
            parse_raw(raw).map_err(|e| format!("decoding `raw`: {e}"))
        } else {
            unsupported.get_or_insert_with(|| "no program (no `asm` or `raw` section)".into());
            Ok(Vec::new())
        };
        let mem = match get("mem") {
            Some(m) => parse_hex_bytes(m).map_err(|e| malformed("mem", e))?,
            None => Vec::new(),
        };
        let result = match get("result") {
            Some(r) if !strip_comment(r).is_empty() => {
                Some(parse_u64(strip_comment(r)).map_err(|e| malformed("result", e))?)
            }
            _ => None,
        };
        let error = get("error")
            .or_else(|| get("error pattern"))
            .map(|e| e.trim().to_string());
        let expected = match (error, result) {
            (Some(e), _) => Expected::Error(e),
            (None, Some(v)) => Expected::Value(v),
            (None, None) => Expected::Nothing,
        };
        Ok(TestCase {
            program,
            mem,
            expected,
            unsupported,
        })
    }

    /// Reads and parses a test file; linked files are read from its directory.
    pub fn from_file(path: &Path) -> Result<TestCase, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| CaseError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        TestCase::parse_with(&text, path, |name| std::fs::read_to_string(dir.join(name)))
    }

    /// Why this case is not run on `vm`: it expects nothing, needs a uBPF-only
    /// feature, expects a value from a helper `vm` does not have (uBPF's
    /// test VM registers helpers 0..=5; a file expecting an error from an
    /// unknown helper still runs), or expects an error for valid eBPF that
    /// only uBPF refuses (over 65536 instructions, RFC 9669's `gotol`).
    pub fn skip_reason(&self, vm: &mut Vm) -> Option<String> {
        if let Some(why) = &self.unsupported {
            return Some(why.clone());
        }
        if self.expected == Expected::Nothing {
            return Some("no expected result (no `result`, `error` or `error pattern`)".into());
        }
        let insns = self.program.as_ref().ok()?;
        if let Expected::Error(_) = self.expected {
            return ubpf_only_rejection(insns);
        }
        let missing = insns.iter().find_map(|insn| match insn {
            Insn::Call(CallTarget::Helper(id)) if !vm.helpers_mut().contains(i64::from(*id)) => {
                Some(*id)
            }
            _ => None,
        })?;
        let ubpf_name = match missing {
            0 => " (uBPF's test helper `gather_bytes`)",
            1 => " (uBPF's test helper `memfrob`)",
            2 => " (uBPF's test helper `trash_registers`)",
            3 => " (uBPF's test helper `sqrti`)",
            4 => " (uBPF's test helper `strcmp_ext`)",
            _ => "",
        };
        Some(format!(
            "calls helper {missing}{ubpf_name}, which this VM does not provide"
        ))
    }

    /// Runs the case on a fresh conformance VM; `Ok(())` when it behaves as
    /// expected. A case that expects nothing is a mismatch here; see
    /// [`TestCase::skip_reason`].
    pub fn check(&self) -> Result<(), Mismatch> {
        let mut vm = Vm::for_conformance();
        self.check_on(&mut vm, &interpret)
    }

    fn check_on(&self, vm: &mut Vm, prepare: &Prepare) -> Result<(), Mismatch> {
        vm.set_budget(1 << 24);
        let outcome = self.program.clone().and_then(|insns| {
            let mut program = Program::new(insns).map_err(|e| format!("loading: {e}"))?;
            prepare(&mut program).map_err(|e| format!("compiling: {e}"))?;
            let mut mem = self.mem.clone();
            vm.run(&program, &mut mem).map_err(|e| e.to_string())
        });
        match (&self.expected, outcome) {
            (Expected::Value(want), Ok(got)) if *want == got => Ok(()),
            (Expected::Error(_), Err(_)) => Ok(()),
            (expected, got) => Err(Mismatch {
                expected: match expected {
                    Expected::Value(v) => format!("r0 = {v:#x}"),
                    Expected::Error(e) => format!("error: {e}"),
                    Expected::Nothing => "nothing (the file states no result)".into(),
                },
                got: match got {
                    Ok(v) => format!("r0 = {v:#x}"),
                    Err(e) => format!("error: {e}"),
                },
            }),
        }
    }

    /// Runs the case unless it must be skipped.
    pub fn verdict(&self) -> Result<Verdict, Mismatch> {
        self.verdict_with(&interpret)
    }

    /// Runs the case unless it must be skipped, with the loaded program
    /// passed through `prepare` first (a JIT attaching its code).
    pub fn verdict_with(&self, prepare: &Prepare) -> Result<Verdict, Mismatch> {
        let mut vm = Vm::for_conformance();
        if let Some(why) = self.skip_reason(&mut vm) {
            return Ok(Verdict::Skipped(why));
        }
        self.check_on(&mut vm, prepare).map(|()| Verdict::Passed)
    }
}

/// Why an error a file expects is uBPF's own rule, not the instruction
/// set's: the program is valid eBPF that uBPF alone refuses.
fn ubpf_only_rejection(insns: &[Insn]) -> Option<String> {
    /// uBPF's `UBPF_MAX_INSTS`.
    const UBPF_MAX_INSTS: usize = 65536;
    let slots: usize = insns.iter().map(Insn::slots).sum();
    if slots > UBPF_MAX_INSTS {
        return Some(format!(
            "uBPF-only limit: {slots} instructions is over uBPF's {UBPF_MAX_INSTS}; \
             the kernel allows 1000000 (BPF_COMPLEXITY_LIMIT_INSNS)"
        ));
    }
    if insns.iter().any(|i| matches!(i, Insn::Ja32 { .. })) {
        return Some(
            "uBPF rejects opcode 0x06, which RFC 9669 defines as JA with a 32-bit \
             offset (`gotol`, cpu v4)"
                .into(),
        );
    }
    None
}

/// A test did not behave as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What the file expects.
    pub expected: String,
    /// What happened.
    pub got: String,
}

/// How a file that did not fail went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It behaved as the file expects.
    Passed,
    /// It was not run, for this reason.
    Skipped(String),
}

/// The outcome of one file.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// Passed or skipped; the reason it failed otherwise.
    pub result: Result<Verdict, String>,
}

/// Every `.data` file under `dir`, subdirectories included, sorted by path.
fn data_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            data_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "data") {
            out.push(path);
        }
    }
    Ok(())
}

/// What the runner does to each program after loading it and before running
/// it: choose an engine (the JIT attaches its code); an error fails the case.
pub type Prepare = dyn Fn(&mut Program) -> Result<(), String>;

/// The interpreter's preparation: none.
fn interpret(_: &mut Program) -> Result<(), String> {
    Ok(())
}

/// Runs every `.data` file under `dir`, subdirectories included, sorted by path.
pub fn run_dir(dir: &Path) -> std::io::Result<Vec<FileOutcome>> {
    run_dir_with(dir, &interpret)
}

/// [`run_dir`] with each program passed through `prepare` before it runs.
pub fn run_dir_with(dir: &Path, prepare: &Prepare) -> std::io::Result<Vec<FileOutcome>> {
    let mut paths = Vec::new();
    data_files(dir, &mut paths)?;
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let result = match TestCase::from_file(&path) {
                Ok(case) => case
                    .verdict_with(prepare)
                    .map_err(|m| format!("expected {}, got {}", m.expected, m.got)),
                Err(e) => Err(e.to_string()),
            };
            FileOutcome { path, result }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_ignores_unknown_ones() {
        let text = "# comment\n-- asm\nmov %r0, %r2\nexit\n-- mem\n00 01 # two\n02\n\
                    -- no register offset\ncall instruction\n-- result\n0x3\n";
        let case = TestCase::parse(text, Path::new("t.data")).unwrap();
        assert_eq!(case.program.as_ref().map(Vec::len), Ok(2));
        assert_eq!(case.mem, vec![0, 1, 2]);
        assert_eq!(case.expected, Expected::Value(3));
        assert_eq!(case.check(), Ok(()));
    }

    #[test]
    fn reports_mismatches() {
        let text = "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n";
        let case = TestCase::parse(text, Path::new("t.data")).unwrap();
        let m = case.check().unwrap_err();
        assert_eq!(m.expected, "r0 = 0x2");
        assert_eq!(m.got, "r0 = 0x1");
    }

    #[test]
    fn reads_hexdump_memory_and_comments_anywhere() {
        let text = "-- asm # the program\nldxb %r0, [%r1+18]\nexit\n-- mem\n\
                    0x0000:  0026 622f 4787 001d 60b3 0184 0800 4500\n\
                    0x0010:  0040 a8de # second line\n-- result\n0xa8\n";
        let case = TestCase::parse(text, Path::new("t.data")).unwrap();
        assert_eq!(case.mem.len(), 20);
        assert_eq!(&case.mem[..4], &[0x00, 0x26, 0x62, 0x2f]);
        assert_eq!(case.check(), Ok(()));
        let bad = TestCase::parse("-- asm\nexit\n-- mem\n00 1\n", Path::new("t.data"));
        assert!(
            matches!(bad, Err(CaseError::Malformed { ref section, ref message, .. })
                if section == "mem" && message == "line 1: `1` is not hex bytes"),
            "{bad:?}"
        );
    }

    #[test]
    fn an_expected_error_is_met_by_a_rejection_at_any_stage() {
        // Rejected by the assembler, by the decoder, by the loader, at run time.
        for text in [
            "-- asm\nfoo %r0\nexit\n-- error\nFailed to load code: unknown\n",
            "-- raw\n0x00000000000000ff\n-- error pattern\ninvalid .*\n",
            "-- asm\nja +5\nexit\n-- error\nbad jump\n",
            "-- asm\nstb [%r10], 0\nexit\n-- error pattern\nout of bounds\n-- result\n0xffffffffffffffff\n",
        ] {
            let case = TestCase::parse(text, Path::new("t.data")).unwrap();
            assert!(matches!(case.expected, Expected::Error(_)), "{text}");
            assert_eq!(case.verdict(), Ok(Verdict::Passed), "{text}");
        }
        // A program that runs fine does not meet an expected error.
        let case =
            TestCase::parse("-- asm\nmov %r0, 0\nexit\n-- error\nx\n", Path::new("t")).unwrap();
        assert_eq!(case.verdict().unwrap_err().got, "r0 = 0x0");
        // And a rejection is a failure when a value is expected.
        let case = TestCase::parse("-- asm\nfoo\n-- result\n0x1\n", Path::new("t")).unwrap();
        let m = case.verdict().unwrap_err();
        assert!(m.got.starts_with("error: assembling: "), "{m:?}");
    }

    #[test]
    fn skips_files_that_expect_nothing_or_need_ubpf_only_features() {
        let skip = |text: &str| match TestCase::parse(text, Path::new("t.data"))
            .unwrap()
            .verdict()
        {
            Ok(Verdict::Skipped(why)) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(skip("-- asm\nexit\n").starts_with("no expected result"));
        assert!(skip("-- pyelf\nx = 1\n-- error\nbad\n").contains("`pyelf`"));
        assert!(skip("-- asm\nexit\n-- reload\n-- error\nx\n").contains("`reload`"));
        assert_eq!(
            skip("-- asm\ncall 1\nexit\n-- result\n0x0\n"),
            "calls helper 1 (uBPF's test helper `memfrob`), which this VM does not provide"
        );
        // An unknown helper is what an error file may test: that one runs.
        let case = TestCase::parse("-- asm\ncall 64\nexit\n-- error\nx\n", Path::new("t")).unwrap();
        assert_eq!(case.verdict(), Ok(Verdict::Passed));
    }

    #[test]
    fn linked_sections_need_a_file() {
        let err = TestCase::parse("-- asm @ prog.asm\n-- result\n0x1\n", Path::new("t.data"))
            .unwrap_err();
        assert!(err.to_string().contains("prog.asm"), "{err}");
    }
}
