//! Running the ARM64 back end's executables under qemu-aarch64 (Debian
//! package `qemu-user`) on a machine of another architecture: write the
//! executable, run it, read back `r0` or how it ended. The conformance
//! tests, the differential tests and `bpfkit conformance --engine
//! jit-arm64` share this.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use bpfkit_vm::conformance::{Expected, FileOutcome, TestCase, Verdict};
use bpfkit_vm::{Program, Vm};

use crate::a64;

/// Why an executable could not be run.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// qemu-aarch64 is not installed.
    #[error(
        "qemu-aarch64 not found ({0}); the ARM64 back end runs under it: install the \
         Debian package qemu-user"
    )]
    Missing(std::io::Error),
    /// The executable could not be written or qemu not started.
    #[error("running {path} under qemu-aarch64: {error}")]
    Io {
        /// The executable's path.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The program could not be compiled to A64.
    #[error("compiling to A64: {0}")]
    Compile(#[from] crate::JitError),
}

/// How a run of an A64 executable ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum A64Outcome {
    /// The program returned this `r0`.
    Returned(u64),
    /// It ended early at instruction slot `pc`: a fault, or the budget.
    Fault {
        /// Why.
        kind: a64::FaultKind,
        /// The slot index of the instruction, as the VM's `RunError` has it.
        pc: usize,
    },
    /// It uses what the ARM64 back end does not provide (maps, callbacks).
    Unsupported,
    /// qemu ended otherwise: this exit status, or a signal (`None`).
    Crashed(Option<i32>),
}

/// qemu-aarch64, found, with a directory for the executables it runs.
#[derive(Debug)]
pub struct Qemu {
    dir: PathBuf,
    next: AtomicU64,
}

impl Qemu {
    /// Finds qemu-aarch64 on `PATH`; [`QemuError::Missing`] names the
    /// package to install when it is not there.
    pub fn find() -> Result<Qemu, QemuError> {
        Command::new("qemu-aarch64")
            .arg("--version")
            .output()
            .map_err(QemuError::Missing)?;
        // A directory per Qemu: one dropped removes only its own.
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("bpfkit-a64-{}-{instance}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|error| QemuError::Io {
            path: dir.clone(),
            error,
        })?;
        Ok(Qemu {
            dir,
            next: AtomicU64::new(0),
        })
    }

    /// Starts an executable with its standard input and output piped to
    /// the caller; returns the child and the executable's file, which the
    /// caller removes once the child has exited.
    pub(crate) fn spawn(&self, exe: &[u8]) -> Result<(Child, PathBuf), QemuError> {
        let path = self.write_executable(exe)?;
        match Command::new("qemu-aarch64")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => Ok((child, path)),
            Err(error) => {
                std::fs::remove_file(&path).ok();
                Err(QemuError::Io { path, error })
            }
        }
    }

    /// Writes `exe` to a file of its own, executable.
    fn write_executable(&self, exe: &[u8]) -> Result<PathBuf, QemuError> {
        use std::os::unix::fs::PermissionsExt;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("p{n}"));
        let written = std::fs::write(&path, exe)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)));
        match written {
            Ok(()) => Ok(path),
            Err(error) => Err(QemuError::Io { path, error }),
        }
    }

    /// Runs an executable built by [`a64::executable`]; each call uses a
    /// file of its own, so calls may run in parallel. A run that returns
    /// gives the input as the program left it too.
    pub fn run_executable(&self, exe: &[u8]) -> Result<(A64Outcome, Vec<u8>), QemuError> {
        let path = self.write_executable(exe)?;
        let io = |error| QemuError::Io {
            path: path.clone(),
            error,
        };
        let out = Command::new("qemu-aarch64").arg(&path).output();
        std::fs::remove_file(&path).ok();
        let out = out.map_err(io)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&out.stdout[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Ok(match out.status.code() {
            Some(0) if out.stdout.len() >= 8 => {
                (A64Outcome::Returned(word(0)), out.stdout[8..].to_vec())
            }
            Some(a64::EXIT_FAULT | a64::EXIT_BUDGET) if out.stdout.len() == 16 => {
                let outcome = match (a64::FaultKind::from_code(word(0)), usize::try_from(word(8))) {
                    (Some(kind), Ok(pc)) => A64Outcome::Fault { kind, pc },
                    _ => A64Outcome::Crashed(out.status.code()),
                };
                (outcome, Vec::new())
            }
            Some(a64::EXIT_UNSUPPORTED) => (A64Outcome::Unsupported, Vec::new()),
            other => (A64Outcome::Crashed(other), Vec::new()),
        })
    }

    /// Compiles `program` for input `mem` and `budget` instructions (as
    /// [`Vm::run`] runs it, r1 = the input) and runs it; a run that returns
    /// leaves the input in `mem` as the program left it, as [`Vm::run`]
    /// does.
    pub fn run(
        &self,
        program: &Program,
        mem: &mut [u8],
        budget: u64,
    ) -> Result<A64Outcome, QemuError> {
        let exe = a64::executable(program, mem, budget)?;
        let (outcome, after) = self.run_executable(&exe)?;
        if let A64Outcome::Returned(_) = outcome {
            if after.len() != mem.len() {
                return Ok(A64Outcome::Crashed(Some(0)));
            }
            mem.copy_from_slice(&after);
        }
        Ok(outcome)
    }

    /// Runs one bpf_conformance case as [`TestCase::verdict`] runs it on the
    /// interpreter (the same skips, the same budget of 2^24), on the ARM64
    /// back end. An error the file expects must be a fault or the budget,
    /// not something the back end lacks.
    pub fn conformance_verdict(&self, case: &TestCase) -> Result<Verdict, String> {
        if let Some(why) = case.skip_reason(&mut Vm::for_conformance()) {
            return Ok(Verdict::Skipped(why));
        }
        let outcome = match &case.program {
            Err(e) => Err(e.clone()),
            Ok(insns) => match Program::new(insns.clone()) {
                Err(e) => Err(format!("loading: {e}")),
                Ok(program) => Ok(self
                    .run(&program, &mut case.mem.clone(), 1 << 24)
                    .map_err(|e| e.to_string())?),
            },
        };
        let passed = match (&case.expected, &outcome) {
            (Expected::Value(want), Ok(A64Outcome::Returned(got))) => want == got,
            (Expected::Error(_), Err(_)) => true,
            (Expected::Error(_), Ok(o)) => matches!(o, A64Outcome::Fault { .. }),
            _ => false,
        };
        if passed {
            return Ok(Verdict::Passed);
        }
        let expected = match &case.expected {
            Expected::Value(v) => format!("r0 = {v:#x}"),
            Expected::Error(e) => format!("error: {e}"),
            Expected::Nothing => "nothing".into(),
        };
        let got = match outcome {
            Ok(A64Outcome::Returned(v)) => format!("r0 = {v:#x}"),
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("error: {e}"),
        };
        Err(format!("expected {expected}, got {got}"))
    }

    /// Runs every `.data` file under `dir` (subdirectories included, hidden
    /// ones not, sorted by path) on the ARM64 back end, two at a time.
    pub fn conformance_dir(&self, dir: &Path) -> std::io::Result<Vec<FileOutcome>> {
        let mut paths = Vec::new();
        data_files(dir, &mut paths)?;
        paths.sort();
        let verdict = |path: &PathBuf| match TestCase::from_file(path) {
            Ok(case) => self.conformance_verdict(&case),
            Err(e) => Err(e.to_string()),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = paths.len().div_ceil(threads).max(1);
        let results: Vec<Result<Verdict, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = paths
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().map(verdict).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        Ok(paths
            .into_iter()
            .zip(results)
            .map(|(path, result)| FileOutcome { path, result })
            .collect())
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn data_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
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
