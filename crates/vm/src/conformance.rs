//! The bpf_conformance test format and a runner for it.
//!
//! A `.data` file has sections introduced by `-- name` lines: `asm` (the
//! program in uBPF syntax), `raw` (the program as hex 64-bit words), `mem`
//! (hex bytes the program gets in r1/r2), `result` (expected r0), and `error`
//! (an expected error message). Unknown sections are ignored, as the suite's
//! own runner does.

use std::path::{Path, PathBuf};

use bpfkit_isa::{assemble, Insn, Syntax};

use crate::{Program, Vm};

/// One parsed test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The program.
    pub insns: Vec<Insn>,
    /// Memory passed in r1 (length in r2).
    pub mem: Vec<u8>,
    /// Expected r0, if the test expects a result.
    pub result: Option<u64>,
    /// Expected error text, if the test expects the run to fail.
    pub error: Option<String>,
}

/// Why a test file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Reading the file failed.
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

fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    text.lines()
        .map(strip_comment)
        .flat_map(str::split_whitespace)
        .map(|tok| u8::from_str_radix(tok, 16).map_err(|e| format!("`{tok}`: {e}")))
        .collect()
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

impl TestCase {
    /// Parses a test file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<TestCase, CaseError> {
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("-- ") {
                sections.push((name.trim().to_string(), String::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let malformed = |section: &str, message: String| CaseError::Malformed {
            path: path.to_path_buf(),
            section: section.to_string(),
            message,
        };
        let get = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, b)| b);
        let insns = if let Some(asm) = get("asm") {
            assemble(asm, Syntax::Ubpf).map_err(|e| malformed("asm", e.to_string()))?
        } else if let Some(raw) = get("raw") {
            let mut bytes = Vec::new();
            for tok in raw
                .lines()
                .map(strip_comment)
                .flat_map(str::split_whitespace)
            {
                let tok = tok.trim_start_matches("0x");
                let word = u64::from_str_radix(tok, 16)
                    .map_err(|e| malformed("raw", format!("`{tok}`: {e}")))?;
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bpfkit_isa::decode(&bytes, bpfkit_isa::ByteOrder::Little)
                .map_err(|e| malformed("raw", e.to_string()))?
        } else {
            return Err(malformed(
                "asm",
                "the file has neither `asm` nor `raw`".into(),
            ));
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
        let error = get("error").map(|e| e.trim().to_string());
        Ok(TestCase {
            insns,
            mem,
            result,
            error,
        })
    }

    /// Reads and parses a test file.
    pub fn from_file(path: &Path) -> Result<TestCase, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| CaseError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        TestCase::parse(&text, path)
    }

    /// Runs the case on a fresh conformance VM; `Ok(())` when it behaves as expected.
    pub fn check(&self) -> Result<(), Mismatch> {
        let mut vm = Vm::for_conformance();
        vm.set_budget(1 << 24);
        let outcome = Program::new(self.insns.clone())
            .map_err(|e| e.to_string())
            .and_then(|p| {
                let mut mem = self.mem.clone();
                vm.run(&p, &mut mem).map_err(|e| e.to_string())
            });
        match (&self.result, &self.error, outcome) {
            (Some(want), _, Ok(got)) if *want == got => Ok(()),
            (None, Some(_), Err(_)) => Ok(()),
            (want, want_err, got) => Err(Mismatch {
                expected: match (want, want_err) {
                    (Some(v), _) => format!("r0 = {v:#x}"),
                    (None, Some(e)) => format!("error: {e}"),
                    (None, None) => "nothing (the file states no result)".into(),
                },
                got: match got {
                    Ok(v) => format!("r0 = {v:#x}"),
                    Err(e) => format!("error: {e}"),
                },
            }),
        }
    }
}

/// A test did not behave as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What the file expects.
    pub expected: String,
    /// What happened.
    pub got: String,
}

/// The outcome of one file.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// `Ok` on a pass; the reason otherwise.
    pub result: Result<(), String>,
}

/// Runs every `.data` file in `dir`, sorted by name.
pub fn run_dir(dir: &Path) -> std::io::Result<Vec<FileOutcome>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let result = match TestCase::from_file(&path) {
                Ok(case) => case
                    .check()
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
        assert_eq!(case.insns.len(), 2);
        assert_eq!(case.mem, vec![0, 1, 2]);
        assert_eq!(case.result, Some(3));
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
}
