//! The build-script helper: compile a `.bpf.c` with clang when there is one,
//! else use the committed object, and write the skeleton into `OUT_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{generate, Embed, GenError, SkeletonOptions};

/// Builds one BPF program and its skeleton from a build script.
#[derive(Debug, Clone)]
pub struct BpfBuild {
    source: PathBuf,
    object: Option<PathBuf>,
    name: Option<String>,
    extra_types: Vec<String>,
    clang_args: Vec<String>,
    out_dir: Option<PathBuf>,
}

impl BpfBuild {
    /// The BPF C source, relative to the package (`CARGO_MANIFEST_DIR`).
    pub fn new(source: impl Into<PathBuf>) -> BpfBuild {
        BpfBuild {
            source: source.into(),
            object: None,
            name: None,
            extra_types: Vec::new(),
            clang_args: Vec::new(),
            out_dir: None,
        }
    }

    /// The committed object to use when clang is absent (and to compare
    /// with when it is present): by default the source with `.o` for `.c`.
    pub fn object(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.object = Some(path.into());
        self
    }

    /// The skeleton's name (default: the file name before `.bpf.c`).
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Also generate this record type (from DWARF if BTF lacks it).
    pub fn extra_type(&mut self, name: &str) -> &mut Self {
        self.extra_types.push(name.into());
        self
    }

    /// Another clang argument (`-I include`, `-DDEBUG`).
    pub fn clang_arg(&mut self, arg: &str) -> &mut Self {
        self.clang_args.push(arg.into());
        self
    }

    /// Where to write (default: `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Compiles (or copies) the object to `OUT_DIR/NAME.bpf.o` and writes
    /// `OUT_DIR/NAME.skel.rs`; returns the skeleton's path. Prints the
    /// `cargo:rerun-if-changed` lines a build script needs.
    pub fn build(&self) -> Result<PathBuf, GenError> {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_default();
        let source = manifest.join(&self.source);
        let file = source
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = self.name.clone().unwrap_or_else(|| {
            file.trim_end_matches(".c")
                .trim_end_matches(".bpf")
                .to_string()
        });
        let committed = manifest.join(
            self.object
                .clone()
                .unwrap_or_else(|| self.source.with_extension("o")),
        );
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
                GenError::Compile("OUT_DIR is not set: call BpfBuild from a build script".into())
            })?),
        };
        let object = out_dir.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={}", source.display());
        println!("cargo:rerun-if-changed={}", committed.display());
        let built = clang_available() && compile(&source, &object, &self.clang_args).is_ok();
        if !built {
            std::fs::copy(&committed, &object).map_err(|e| GenError::Build {
                what: format!(
                    "no clang to build {}, and no committed object at {}",
                    source.display(),
                    committed.display()
                ),
                source: e,
            })?;
        }
        let bytes = std::fs::read(&object).map_err(|e| GenError::Build {
            what: format!("reading {}", object.display()),
            source: e,
        })?;
        let skel = generate(
            &bytes,
            &SkeletonOptions {
                name: name.clone(),
                embed: Embed::IncludeBytes(format!("{:?}", object.display().to_string())),
                extra_types: self.extra_types.clone(),
                all_types: false,
            },
        )?;
        let path = out_dir.join(format!("{name}.skel.rs"));
        std::fs::write(&path, skel).map_err(|e| GenError::Build {
            what: format!("writing {}", path.display()),
            source: e,
        })?;
        Ok(path)
    }
}

fn clang_available() -> bool {
    Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `clang -O2 -g -target bpf`, as libbpf-bootstrap builds its programs.
fn compile(source: &Path, object: &Path, extra: &[String]) -> Result<(), GenError> {
    let dir = source.parent().unwrap_or(Path::new("."));
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "arm64",
        _ => "x86",
    };
    let out = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(dir)
        .arg("-I/usr/include/x86_64-linux-gnu")
        .args(extra)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object)
        .output()
        .map_err(|e| GenError::Build {
            what: "running clang".into(),
            source: e,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(GenError::Compile(format!(
            "clang failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
