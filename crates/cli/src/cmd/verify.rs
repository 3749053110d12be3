//! `bpfkit verify OBJ.o`: run bpfkit's userspace verifier over each program
//! of an object (or raw bytecode with `--type`), and with
//! `--compare-kernel` the running kernel's verifier too.

use std::path::PathBuf;

use anyhow::Context;
use bpfkit_abi::ProgramType;
use bpfkit_isa::{ByteOrder, Insn};
use bpfkit_kernel::prog::{LoadExtras, ProgramLoad};
use bpfkit_kernel::{Collection, Error as KernelError, LoadOptions};
use bpfkit_object::{AttachTarget, ObjectSpec};
use bpfkit_verifier::{tracepoint_ctx_size, Program, Rejection, Verifier, VerifyOptions};
use serde_json::json;

/// Verify the programs of a BPF object with bpfkit's verifier.
#[derive(clap::Args)]
pub struct Args {
    /// A clang-compiled BPF ELF object, or raw bytecode (with --type).
    object: PathBuf,
    /// Verify only this program (repeatable).
    #[arg(long = "prog", value_name = "NAME")]
    progs: Vec<String>,
    /// Program type (`xdp`, `socket_filter`, `tracepoint`...): required for
    /// raw bytecode, and overrides what an object's section names say.
    #[arg(long = "type", value_name = "TYPE")]
    prog_type: Option<String>,
    /// One JSON object per program and line.
    #[arg(long)]
    json: bool,
    /// Print a kernel-style trace of every instruction processed.
    #[arg(long)]
    log: bool,
    /// Apply the rules for loaders without CAP_BPF/CAP_PERFMON.
    ///
    /// (Tracepoint programs are checked against their event's format in
    /// tracefs when it is readable: reads past its fields are refused.)
    #[arg(long)]
    unprivileged: bool,
    /// Also load each program into the running kernel and print both verdicts.
    #[arg(long)]
    compare_kernel: bool,
}

/// One program's outcome.
struct Outcome {
    program: String,
    result: Result<u64, Box<Rejection>>,
    log: String,
    kernel: Option<Result<(), String>>,
}

fn parse_type(name: &str) -> anyhow::Result<ProgramType> {
    ProgramType::from_name(name).with_context(|| {
        let names: Vec<&str> = ProgramType::ALL.iter().map(|t| t.name()).collect();
        format!(
            "--type {name}: not a program type (one of: {})",
            names.join(", ")
        )
    })
}

/// Applies what the loader would before the kernel verifies: kconfig values
/// and CO-RE relocations against this kernel's BTF. Each is skipped, with a
/// note, when this machine cannot provide it.
fn prepare(spec: &mut ObjectSpec) {
    match bpfkit_kernel::kconfig::kernel_config_for(spec) {
        Ok(config) => {
            if let Err(e) = spec.apply_kconfig(&config) {
                eprintln!("note: kconfig externs left unset: {e}");
            }
        }
        Err(e) => {
            eprintln!("note: the kernel's config is not readable ({e}); kconfig externs left unset")
        }
    }
    if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
        match bpfkit_kernel::btf::vmlinux() {
            Ok(vmlinux) => {
                let modules = bpfkit_kernel::btf::modules();
                let targets = modules
                    .iter()
                    .fold(bpfkit_btf::TargetBtfs::new(&vmlinux), |t, m| {
                        t.with_module(m)
                    });
                if let Err(e) = spec.apply_core(targets) {
                    eprintln!("note: CO-RE relocations not applied: {e}");
                }
            }
            Err(e) => eprintln!("note: no kernel BTF ({e}): CO-RE relocations not applied"),
        }
    }
}

/// A tracepoint's context size from its format in tracefs, when tracefs is
/// mounted and has the event (bpfkit then refuses reads past its fields).
/// The names of the kernel functions `insns` call, from this kernel's
/// BTF (a raw program names them only by BTF id).
fn kfunc_names(insns: &[Insn]) -> Vec<(u32, String)> {
    let ids: Vec<u32> = insns
        .iter()
        .filter_map(|i| match i {
            Insn::Call(bpfkit_isa::CallTarget::Kfunc { btf_id, module: 0 }) => Some(*btf_id as u32),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let Ok(vmlinux) = bpfkit_kernel::btf::vmlinux() else {
        return Vec::new();
    };
    ids.into_iter()
        .filter_map(|id| {
            let t = vmlinux.type_by_id(id).ok()?;
            (t.kind() == bpfkit_btf::Kind::Func).then(|| (id, t.name().to_string()))
        })
        .collect()
}

fn tracepoint_format_size(target: &AttachTarget) -> Option<u32> {
    let AttachTarget::Tracepoint { category, name } = target else {
        return None;
    };
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| {
            let text =
                std::fs::read_to_string(format!("{root}/events/{category}/{name}/format")).ok()?;
            tracepoint_ctx_size(&text)
        })
}

fn kernel_verdict_object(spec: &ObjectSpec, name: &str) -> Result<(), String> {
    let mut one = spec.clone();
    one.programs.retain(|n, _| n == name);
    match Collection::load(&one, &LoadOptions::default()) {
        Ok(_) => Ok(()),
        Err(KernelError::Verifier { message, .. }) => Err(message),
        Err(e) => Err(format!("not loaded: {e}")),
    }
}

fn kernel_verdict_raw(name: &str, prog_type: ProgramType, insns: &[Insn]) -> Result<(), String> {
    let load = ProgramLoad {
        name,
        prog_type,
        expected_attach_type: None,
        insns,
        license: "GPL",
        kern_version: 0,
        btf: None,
        attach_btf_id: 0,
        core_relos: Vec::new(),
    };
    match bpfkit_kernel::Program::load_with(&load, &LoadExtras::default()) {
        Ok(_) => Ok(()),
        Err(KernelError::Verifier { message, .. }) => Err(message),
        Err(e) => Err(format!("not loaded: {e}")),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "accept"
    } else {
        "reject"
    }
}

/// Runs `bpfkit verify`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.object).with_context(|| format!("read {}", args.object.display()))?;
    let forced = args.prog_type.as_deref().map(parse_type).transpose()?;
    let opts = VerifyOptions {
        unprivileged: args.unprivileged,
        log: args.log,
        ..VerifyOptions::default()
    };
    let mut outcomes = Vec::new();
    if bytes.starts_with(b"\x7fELF") {
        let mut spec = ObjectSpec::parse(&bytes)
            .with_context(|| format!("parse {}", args.object.display()))?;
        for name in &args.progs {
            if !spec.programs.contains_key(name) {
                anyhow::bail!(
                    "{}: no program `{name}` (it has: {})",
                    args.object.display(),
                    spec.programs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        let original = spec.clone();
        prepare(&mut spec);
        for (name, prog) in &spec.programs {
            if !args.progs.is_empty() && !args.progs.contains(name) {
                continue;
            }
            let t = forced.unwrap_or(prog.kind.prog_type);
            let opts = VerifyOptions {
                ctx_size: tracepoint_format_size(&prog.kind.target),
                ..opts.clone()
            };
            let result = Verifier::new(t).verify(
                Program::Object {
                    object: &spec,
                    program: prog,
                },
                &opts,
            );
            let log = match &result {
                Ok(v) => v.log.clone(),
                Err(r) => r.log.clone(),
            };
            let kernel = args
                .compare_kernel
                .then(|| kernel_verdict_object(&original, name));
            outcomes.push(Outcome {
                program: name.clone(),
                result: result.map(|v| v.processed_insns),
                log,
                kernel,
            });
        }
    } else {
        let t = forced.with_context(|| {
            format!(
                "{} is not an ELF object: raw bytecode needs --type TYPE",
                args.object.display()
            )
        })?;
        let insns = bpfkit_isa::decode(&bytes, ByteOrder::Little)
            .with_context(|| format!("decode {}", args.object.display()))?;
        let name = args
            .object
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "prog".into());
        let opts = VerifyOptions {
            kfunc_names: kfunc_names(&insns),
            ..opts
        };
        let result = Verifier::new(t).verify(Program::Raw(&insns), &opts);
        let log = match &result {
            Ok(v) => v.log.clone(),
            Err(r) => r.log.clone(),
        };
        let kernel = args
            .compare_kernel
            .then(|| kernel_verdict_raw(&name, t, &insns));
        outcomes.push(Outcome {
            program: name,
            result: result.map(|v| v.processed_insns),
            log,
            kernel,
        });
    }
    let mut rejected = 0;
    let mut disagree = 0;
    for o in &outcomes {
        rejected += o.result.is_err() as usize;
        if let Some(k) = &o.kernel {
            disagree += (k.is_ok() != o.result.is_ok()) as usize;
        }
        if args.json {
            let mut v = match &o.result {
                Ok(n) => json!({
                    "program": o.program, "verdict": "accept", "insn": null, "line": null,
                    "message": null, "processed_insns": n,
                }),
                Err(r) => json!({
                    "program": o.program, "verdict": "reject", "insn": r.insn,
                    "line": r.line.as_ref().map(|l| l.to_string()),
                    "source": r.line.as_ref().map(|l| l.text.trim().to_string()),
                    "disasm": r.disasm, "message": r.message, "state": r.state, "path": r.path,
                    "processed_insns": r.processed_insns,
                }),
            };
            if let Some(k) = &o.kernel {
                v["kernel_verdict"] = json!(verdict(k.is_ok()));
                v["kernel_message"] = json!(k.as_ref().err());
            }
            if args.log {
                v["log"] = json!(o.log);
            }
            outln!("{v}");
            continue;
        }
        if args.log && !o.log.is_empty() {
            outln!("{}: log:", o.program);
            out!("{}", o.log);
        }
        match &o.result {
            Ok(n) => outln!("{}: accept ({n} insns processed)", o.program),
            Err(r) => {
                outln!("{}: reject", o.program);
                for line in r.to_string().lines() {
                    outln!("  {line}");
                }
            }
        }
        if let Some(k) = &o.kernel {
            let same = if k.is_ok() == o.result.is_ok() {
                "agrees"
            } else {
                "DISAGREES"
            };
            match k {
                Ok(()) => outln!("  kernel: accept ({same})"),
                Err(m) => outln!("  kernel: reject: {} ({same})", m.trim()),
            }
        }
    }
    if disagree > 0 {
        eprintln!(
            "{disagree} of {} verdicts differ from the kernel's",
            outcomes.len()
        );
    }
    if rejected > 0 {
        anyhow::bail!("{rejected} of {} programs rejected", outcomes.len());
    }
    Ok(())
}
