//! Which of an object's programs this kernel can run.
//!
//! libbpf-tools objects carry twins of one hook in different mechanisms
//! (`tp_btf/X` and `raw_tp/X`, `fentry/F` and `kprobe/F`) and their
//! user-space code turns off the twin the kernel does not support
//! (libbpf-tools' `probe_tp_btf` and `fentry_can_attach`). [`plan`] makes the
//! same choice for any object, and also leaves out programs this kernel
//! cannot load at all (fentry/fexit/LSM without BPF trampolines), which would
//! otherwise fail the whole object.

use std::collections::BTreeMap;

use bpfkit_abi::{AttachType, ProgramType};
use bpfkit_object::{AttachTarget, ObjectSpec, ProgramSpec};

/// How a program reaches its hook, best first within a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mechanism {
    /// `tp_btf/X`: typed arguments, no copying.
    TpBtf,
    /// `raw_tp/X`.
    RawTp,
    /// `fentry/F`, `fexit/F`.
    Fentry,
    /// `kprobe/F`, `kretprobe/F`.
    Kprobe,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::TpBtf => "tp_btf",
            Mechanism::RawTp => "raw_tp",
            Mechanism::Fentry => "fentry/fexit",
            Mechanism::Kprobe => "kprobe",
        }
    }
}

/// The hook a program traces: twins share it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Hook {
    /// Tracepoint families and function families are kept apart.
    function: bool,
    target: String,
    /// Function exit (fexit, kretprobe) rather than entry.
    exit: bool,
}

fn hook_of(p: &ProgramSpec) -> Option<(Hook, Mechanism)> {
    let hook = |function, target: &str, exit| Hook {
        function,
        target: target.to_string(),
        exit,
    };
    match (&p.kind.target, p.kind.prog_type, p.kind.attach_type) {
        (AttachTarget::RawTracepoint { name }, _, _) => {
            Some((hook(false, name, false), Mechanism::RawTp))
        }
        (AttachTarget::Kernel { name }, ProgramType::Tracing, Some(AttachType::TraceRawTp)) => {
            Some((hook(false, name, false), Mechanism::TpBtf))
        }
        (AttachTarget::Kernel { name }, ProgramType::Tracing, Some(AttachType::TraceFentry)) => {
            Some((hook(true, name, false), Mechanism::Fentry))
        }
        (AttachTarget::Kernel { name }, ProgramType::Tracing, Some(AttachType::TraceFexit)) => {
            Some((hook(true, name, true), Mechanism::Fentry))
        }
        (
            AttachTarget::Kprobe {
                function,
                offset: 0,
                retprobe,
            },
            _,
            _,
        ) => Some((hook(true, function, *retprobe), Mechanism::Kprobe)),
        _ => None,
    }
}

/// Whether programs needing BPF trampolines can load here.
fn needs_trampoline(p: &ProgramSpec) -> bool {
    matches!(p.kind.prog_type, ProgramType::Tracing | ProgramType::Lsm)
        && matches!(
            p.kind.attach_type,
            Some(
                AttachType::TraceFentry
                    | AttachType::TraceFexit
                    | AttachType::ModifyReturn
                    | AttachType::LsmMac
            )
        )
}

/// What the kernel supports, asked lazily: each probe runs at most once.
struct Support {
    trampolines: Option<bool>,
    kprobes: Option<bool>,
}

impl Support {
    fn trampolines(&mut self) -> bool {
        *self
            .trampolines
            .get_or_insert_with(|| crate::features::fentry().unwrap_or(false))
    }
    fn kprobes(&mut self) -> bool {
        *self
            .kprobes
            .get_or_insert_with(crate::link::kprobes_available)
    }
    fn tp_btf(&mut self, target: &str) -> bool {
        // libbpf-tools' probe_tp_btf: the kernel's BTF names the tracepoint.
        crate::btf::vmlinux()
            .map(|v| {
                v.find_by_name_kind(&format!("btf_trace_{target}"), bpfkit_btf::Kind::Typedef)
                    .is_some()
            })
            .unwrap_or(false)
    }
    fn supports(&mut self, m: Mechanism, target: &str) -> bool {
        match m {
            Mechanism::TpBtf => self.tp_btf(target),
            Mechanism::RawTp => true,
            Mechanism::Fentry => self.trampolines(),
            Mechanism::Kprobe => self.kprobes(),
        }
    }
}

/// Programs of `spec` that should not be loaded on this kernel, each with
/// the reason: the weaker twin of a hook another program covers, and
/// programs that need BPF trampolines where the kernel has none.
pub fn plan(spec: &ObjectSpec) -> BTreeMap<String, String> {
    let mut support = Support {
        trampolines: None,
        kprobes: None,
    };
    let mut groups: BTreeMap<Hook, Vec<(Mechanism, &str)>> = BTreeMap::new();
    for (name, p) in &spec.programs {
        if let Some((hook, m)) = hook_of(p) {
            groups.entry(hook).or_default().push((m, name));
        }
    }
    let mut skip = BTreeMap::new();
    for (hook, mut twins) in groups {
        if twins.len() < 2 {
            continue;
        }
        twins.sort();
        let chosen = twins
            .iter()
            .find(|(m, _)| support.supports(*m, &hook.target))
            .map(|(_, n)| *n);
        for (m, name) in &twins {
            match chosen {
                Some(c) if c == *name => {}
                Some(c) => {
                    let why = if support.supports(*m, &hook.target) {
                        format!(
                            "twin of `{c}` on the same hook; both work here, and bpfkit \
                             prefers `{c}`'s mechanism"
                        )
                    } else {
                        format!(
                            "twin of `{c}` on the same hook, which works here where {} does not",
                            m.name()
                        )
                    };
                    skip.insert(name.to_string(), why);
                }
                // None works here: keep them, so that attaching says why.
                None => {}
            }
        }
    }
    for (name, p) in &spec.programs {
        if needs_trampoline(p) && !skip.contains_key(name) && !support.trampolines() {
            skip.insert(
                name.clone(),
                "needs BPF trampolines (fentry/fexit/fmod_ret/LSM), which this kernel refuses"
                    .to_string(),
            );
        }
    }
    skip
}
