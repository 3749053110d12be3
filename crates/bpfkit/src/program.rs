//! Programs of a loaded object, typed by kind, as aya types them: take
//! `&mut Program` from [`Ebpf::program_mut`](crate::Ebpf::program_mut), turn
//! it into the kind with `try_into()`, and `attach` it with that kind's
//! arguments. Each attachment is a [`Link`] that detaches on drop.
//!
//! Attach points are checked before any system call (does the tracepoint,
//! interface or cgroup exist?) so that a typo is an error naming it, not an
//! errno.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bpfkit_abi::{AttachType, ProgramType};
use bpfkit_kernel::link::{PerfEventConfig, TcDirection, TcOptions, UprobeTarget, XdpOptions};
use bpfkit_kernel::Link;
use bpfkit_object::{AttachTarget, ProgramKind, SectionKind};
use bpfkit_vm::Vm;

use crate::{Backend, Error, Map, Result};

/// The result of running a program once, as `BPF_PROG_TEST_RUN` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Return value (the kernel reports 32 bits).
    pub retval: u32,
    /// Packet data after the run.
    pub data_out: Vec<u8>,
    /// Context after the run; empty when no context was given.
    pub ctx_out: Vec<u8>,
}

/// What every program has, whatever its kind: name, section, and the
/// program in its backend.
pub struct ProgramData {
    name: String,
    section: String,
    kind: SectionKind,
    handle: Handle,
}

pub(crate) enum Handle {
    Kernel(bpfkit_kernel::Program),
    Vm {
        program: Arc<bpfkit_vm::Program>,
        vm: Arc<Mutex<Vm>>,
    },
}

impl ProgramData {
    pub(crate) fn new(name: String, section: String, kind: SectionKind, handle: Handle) -> Self {
        ProgramData {
            name,
            section,
            kind,
            handle,
        }
    }

    /// The program's function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its `SEC()` name.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Its program type.
    pub fn prog_type(&self) -> ProgramType {
        self.kind.prog_type
    }

    /// Its expected attach type, when the type needs one.
    pub fn attach_type(&self) -> Option<AttachType> {
        self.kind.attach_type
    }

    /// Where its section name says it attaches.
    pub fn target(&self) -> &AttachTarget {
        &self.kind.target
    }

    /// The backend it is loaded into.
    pub fn backend(&self) -> Backend {
        match self.handle {
            Handle::Kernel(_) => Backend::Kernel,
            Handle::Vm { .. } => Backend::Vm,
        }
    }

    /// The kernel program (fd, id, verifier statistics, `xlated`), on the
    /// kernel backend.
    pub fn kernel(&self) -> Option<&bpfkit_kernel::Program> {
        match &self.handle {
            Handle::Kernel(p) => Some(p),
            Handle::Vm { .. } => None,
        }
    }

    /// The VM program, on the VM backend (to run it with the VM's own API:
    /// budgets, traces, timings).
    pub fn vm_program(&self) -> Option<&Arc<bpfkit_vm::Program>> {
        match &self.handle {
            Handle::Vm { program, .. } => Some(program),
            Handle::Kernel(_) => None,
        }
    }

    /// Runs the program once on `data` (the packet, or the raw context for
    /// non-packet programs) and `ctx`, as `BPF_PROG_TEST_RUN` does, on
    /// either backend.
    pub fn test_run(&self, data: &[u8], ctx: &[u8]) -> Result<RunResult> {
        match &self.handle {
            Handle::Kernel(p) => {
                let r = p.test_run(data, ctx, 1)?;
                Ok(RunResult {
                    retval: r.retval,
                    data_out: r.data_out,
                    ctx_out: r.ctx_out,
                })
            }
            Handle::Vm { program, vm } => {
                let mut vm = vm.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let r = vm
                    .test_run(
                        program,
                        &bpfkit_vm::TestRun {
                            data_in: data.to_vec(),
                            ctx_in: ctx.to_vec(),
                            repeat: 1,
                        },
                    )
                    .map_err(|source| Error::VmRun {
                        program: self.name.clone(),
                        source,
                    })?;
                Ok(RunResult {
                    retval: r.retval as u32,
                    data_out: r.data_out,
                    // As the kernel backend: a context out only for one in.
                    ctx_out: if ctx.is_empty() {
                        Vec::new()
                    } else {
                        r.ctx_out
                    },
                })
            }
        }
    }

    /// Pins the program at `path` in bpffs.
    pub fn pin(&self, path: &Path) -> Result<()> {
        Ok(self.kernel_program("pinning")?.pin(path)?)
    }

    /// The kernel program, or the error a VM program gets for `what`.
    fn kernel_program(&self, what: &str) -> Result<&bpfkit_kernel::Program> {
        self.kernel().ok_or_else(|| Error::Unsupported {
            what: format!("{what} program `{}`", self.name),
            backend: Backend::Vm,
            why: "the VM has no kernel hooks; run the program with test_run",
        })
    }

    fn attach_point_error(&self, reason: String) -> Error {
        Error::AttachPoint {
            program: self.name.clone(),
            reason,
        }
    }

    pub(crate) fn put_in_prog_array_impl(&self, map: &Map, index: u32) -> Result<()> {
        use crate::maps::RawMap;
        match (&self.handle, map.vm()) {
            (Handle::Kernel(p), None) => {
                let fd = std::os::fd::AsRawFd::as_raw_fd(p.fd()) as u32;
                Ok(map.update(&index.to_ne_bytes(), &fd.to_ne_bytes(), 0)?)
            }
            (Handle::Vm { program, .. }, Some(vm_map)) => {
                vm_map.set_program(index, program.clone()).map_err(|e| {
                    Error::Map(crate::maps::MapError {
                        map: map.name().into(),
                        op: "update",
                        errno: e.errno(),
                        message: e.message().into(),
                    })
                })
            }
            _ => Err(Error::MapKind {
                map: map.name().into(),
                expected: "prog_array on the program's backend",
                actual: "prog_array on the other backend".into(),
            }),
        }
    }
}

/// Defines the program kinds: the struct, its place in [`Program`], and the
/// `TryFrom` conversions from `&Program` / `&mut Program`.
macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// A loaded program, by kind. Convert it to its kind with
        /// `try_into()` to attach it; [`Program::data`] has what all share.
        pub enum Program {
            $($(#[$doc])* $kind($kind),)*
        }

        $(
            $(#[$doc])*
            pub struct $kind {
                data: ProgramData,
            }

            impl std::ops::Deref for $kind {
                type Target = ProgramData;
                fn deref(&self) -> &ProgramData {
                    &self.data
                }
            }

            impl<'a> TryFrom<&'a Program> for &'a $kind {
                type Error = Error;
                fn try_from(p: &'a Program) -> Result<&'a $kind> {
                    match p {
                        Program::$kind(k) => Ok(k),
                        other => Err(other.kind_error(stringify!($kind))),
                    }
                }
            }

            impl<'a> TryFrom<&'a mut Program> for &'a mut $kind {
                type Error = Error;
                fn try_from(p: &'a mut Program) -> Result<&'a mut $kind> {
                    match p {
                        Program::$kind(k) => Ok(k),
                        other => Err(other.kind_error(stringify!($kind))),
                    }
                }
            }
        )*

        /// Every program has its [`ProgramData`]: `program.name()`,
        /// `program.test_run(..)`.
        impl std::ops::Deref for Program {
            type Target = ProgramData;
            fn deref(&self) -> &ProgramData {
                self.data()
            }
        }

        impl Program {
            /// What every program has.
            pub fn data(&self) -> &ProgramData {
                match self {
                    $(Program::$kind(k) => &k.data,)*
                }
            }

            /// The kind's name: `TracePoint`, `Xdp`, ...
            pub fn kind_name(&self) -> &'static str {
                match self {
                    $(Program::$kind(_) => stringify!($kind),)*
                }
            }

            /// The kind the section makes: `object::ProgramKind` has a
            /// variant of the same name for each kind here.
            fn wrap(data: ProgramData) -> Program {
                match data.kind.program_kind() {
                    $(ProgramKind::$kind => Program::$kind($kind { data }),)*
                }
            }
        }
    };
}

kinds! {
    /// `SEC("tracepoint/…")`: a perf tracepoint.
    TracePoint,
    /// `SEC("raw_tracepoint/…")`: a raw tracepoint.
    RawTracePoint,
    /// `SEC("tp_btf/…")`: a BTF-typed raw tracepoint.
    BtfTracePoint,
    /// `SEC("fentry/…")`, `fexit`, `fmod_ret`: a BPF trampoline.
    FEntry,
    /// `SEC("lsm/…")`: an LSM hook.
    Lsm,
    /// `SEC("iter/…")`: a BPF iterator.
    Iter,
    /// `SEC("kprobe/…")`, `kretprobe`, `ksyscall`.
    KProbe,
    /// `SEC("uprobe/…")`, `uretprobe`: a user-space probe.
    UProbe,
    /// `SEC("perf_event")`: runs on a perf event's samples.
    PerfEvent,
    /// `SEC("xdp")`.
    Xdp,
    /// `SEC("tc")`, `SEC("classifier")`: a TC classifier.
    SchedClassifier,
    /// `SEC("socket")`: a socket filter.
    SocketFilter,
    /// `SEC("cgroup_skb/ingress|egress")`.
    CgroupSkb,
    /// `SEC("cgroup/connect4")` and the other socket-address hooks.
    CgroupSockAddr,
    /// `SEC("cgroup/sock_create")` and the other socket hooks.
    CgroupSock,
    /// `SEC("sk_msg")`, `SEC("sk_skb/…")`: attached to a sockmap.
    SkMsg,
    /// Any other type; reach it through [`ProgramData::kernel`].
    Other,
}

impl Program {
    pub(crate) fn new(data: ProgramData) -> Program {
        Program::wrap(data)
    }

    pub(crate) fn put_in_prog_array(&self, map: &Map, index: u32) -> Result<()> {
        self.data().put_in_prog_array_impl(map, index)
    }

    fn kind_error(&self, expected: &'static str) -> Error {
        Error::ProgramKind {
            program: self.data().name.clone(),
            expected,
            actual: self.kind_name(),
        }
    }

    /// Attaches the program where its `SEC()` name says, as libbpf's
    /// auto-attach does. The target is checked first (does the tracepoint,
    /// binary, symbol exist?); a program whose section names no target
    /// (`xdp`, `socket`, `perf_event`, a cgroup hook) needs its kind's `attach`.
    pub fn attach_by_section(&self) -> Result<Link> {
        let data = self.data();
        let prog = data.kernel_program("attaching")?;
        match data.target() {
            AttachTarget::Tracepoint { category, name } => check_tracepoint(data, category, name)?,
            AttachTarget::RawTracepoint { name } => check_name(data, "raw tracepoint", name)?,
            AttachTarget::Uprobe {
                binary, function, ..
            } if !binary.is_empty() => {
                check_uprobe(data, binary, function, None)?;
            }
            AttachTarget::Kernel { .. }
            | AttachTarget::Kprobe { .. }
            | AttachTarget::Ksyscall { .. } => {}
            target => {
                return Err(data.attach_point_error(format!(
                    "its section `{}` names no attach point ({target:?}); attach it as a {} \
                     with an explicit target (an interface, cgroup, socket, map or sampling rate)",
                    data.section,
                    self.kind_name()
                )))
            }
        }
        Ok(bpfkit_kernel::link::attach_section(prog, data.target())?)
    }
}

fn check_name(data: &ProgramData, what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(data.attach_point_error(format!(
            "`{name}` is not a {what} name (empty, or holds `/` or NUL)"
        )));
    }
    Ok(())
}

fn check_interface(data: &ProgramData, interface: &str) -> Result<()> {
    check_name(data, "network interface", interface)?;
    if !Path::new("/sys/class/net").join(interface).exists() {
        return Err(data.attach_point_error(format!("no network interface `{interface}`")));
    }
    Ok(())
}

/// The tracepoint `category/name` exists (when tracefs is there to ask,
/// mounted as the attach itself would mount it, so that a missing one is
/// the same error on a machine that had not mounted tracefs yet).
fn check_tracepoint(data: &ProgramData, category: &str, name: &str) -> Result<()> {
    check_name(data, "tracepoint category", category)?;
    check_name(data, "tracepoint", name)?;
    if let Ok(root) = bpfkit_kernel::fs::tracefs() {
        let events = root.join("events");
        if !events.join(category).join(name).is_dir() {
            return Err(data.attach_point_error(format!(
                "no tracepoint {category}/{name} ({} does not exist)",
                events.join(category).join(name).display()
            )));
        }
    }
    Ok(())
}

/// The binary exists and has `symbol`: found by reading files only, so a
/// missing library or symbol is reported before a perf event is opened.
/// Returns the binary's path.
fn check_uprobe(
    data: &ProgramData,
    binary: &str,
    symbol: &str,
    pid: Option<u32>,
) -> Result<std::path::PathBuf> {
    let path = bpfkit_kernel::link::resolve_binary(binary, pid)
        .map_err(|e| data.attach_point_error(e.to_string()))?;
    if !symbol.is_empty() {
        bpfkit_kernel::link::symbol_file_offset(&path, symbol)
            .map_err(|e| data.attach_point_error(e.to_string()))?;
    }
    Ok(path)
}

impl TracePoint {
    /// Attaches to tracepoint `category/name` (as in tracefs
    /// `events/<category>/<name>`).
    pub fn attach(&self, category: &str, name: &str) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        check_tracepoint(self, category, name)?;
        Ok(bpfkit_kernel::attach_tracepoint(prog, category, name)?)
    }
}

impl RawTracePoint {
    /// Attaches to raw tracepoint `name` (`sched_switch`, `sys_enter`, ...).
    pub fn attach(&self, name: &str) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        check_name(self, "raw tracepoint", name)?;
        Ok(bpfkit_kernel::attach_raw_tracepoint(prog, name)?)
    }
}

/// Attaches a program whose target the kernel fixed at load from BTF.
fn attach_btf_target(data: &ProgramData) -> Result<Link> {
    let prog = data.kernel_program("attaching")?;
    let AttachTarget::Kernel { name } = data.target() else {
        return Err(data.attach_point_error(format!(
            "section `{}` names no kernel function or hook",
            data.section
        )));
    };
    Ok(bpfkit_kernel::link::attach_btf_traced(prog, name)?)
}

impl BtfTracePoint {
    /// Attaches to the tracepoint named at load (`tp_btf/<name>`).
    pub fn attach(&self) -> Result<Link> {
        attach_btf_target(self)
    }
}

impl FEntry {
    /// Attaches to the kernel function named at load.
    pub fn attach(&self) -> Result<Link> {
        attach_btf_target(self)
    }
}

impl Lsm {
    /// Attaches to the LSM hook named at load.
    pub fn attach(&self) -> Result<Link> {
        attach_btf_target(self)
    }
}

impl Iter {
    /// Creates the iterator link; read it with [`Iter::read`], or pin it
    /// and `cat` the pin.
    pub fn attach(&self) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        Ok(bpfkit_kernel::link::attach_iter(prog, None)?)
    }

    /// Runs the iterator once through `link` and returns what it printed.
    pub fn read(&self, link: &Link) -> Result<Vec<u8>> {
        Ok(bpfkit_kernel::link::read_iter(link)?)
    }
}

impl KProbe {
    /// Attaches to the kernel function of its section. Kernels built
    /// without kprobes refuse with the reason.
    pub fn attach(&self) -> Result<Link> {
        self.kernel_program("attaching")?;
        let reason = bpfkit_kernel::link::kprobe_unavailable_reason()
            .unwrap_or_else(|| "kprobe attachment is not implemented in bpfkit yet".into());
        Err(Error::Kernel(bpfkit_kernel::Error::Unsupported(reason)))
    }
}

impl UProbe {
    /// Attaches to `symbol` in `binary` (a path, or a library name such as
    /// `libc.so.6` found as the dynamic loader would), in every process or
    /// only `pid`. A return probe when the section is `uretprobe`.
    pub fn attach(&self, binary: &str, symbol: &str, pid: Option<u32>) -> Result<Link> {
        self.attach_at(binary, symbol, 0, pid)
    }

    /// Attaches at `offset` bytes past `symbol` (or, with an empty symbol,
    /// at file offset `offset`).
    pub fn attach_at(
        &self,
        binary: &str,
        symbol: &str,
        offset: u64,
        pid: Option<u32>,
    ) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        let retprobe = matches!(self.target(), AttachTarget::Uprobe { retprobe: true, .. });
        let path = check_uprobe(self, binary, symbol, pid)?;
        Ok(bpfkit_kernel::link::attach_uprobe(
            prog,
            &UprobeTarget {
                binary: path.display().to_string(),
                symbol: symbol.into(),
                offset,
                retprobe,
                pid,
            },
        )?)
    }
}

impl PerfEvent {
    /// Attaches to a perf event opened on `cpu`.
    pub fn attach(&self, config: &PerfEventConfig, cpu: usize) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        Ok(bpfkit_kernel::link::attach_perf_event(prog, config, cpu)?)
    }

    /// Attaches to one perf event per online CPU.
    pub fn attach_all_cpus(&self, config: &PerfEventConfig) -> Result<Vec<Link>> {
        let prog = self.kernel_program("attaching")?;
        Ok(bpfkit_kernel::link::attach_perf_event_all_cpus(
            prog, config,
        )?)
    }
}

impl Xdp {
    /// Attaches to network interface `interface`.
    pub fn attach(&self, interface: &str, options: &XdpOptions) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        check_interface(self, interface)?;
        Ok(bpfkit_kernel::link::attach_xdp(prog, interface, options)?)
    }
}

impl SchedClassifier {
    /// Attaches as a TC classifier on `interface`, on ingress or egress.
    pub fn attach(
        &self,
        interface: &str,
        direction: TcDirection,
        options: &TcOptions,
    ) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        check_interface(self, interface)?;
        Ok(bpfkit_kernel::link::attach_tc(
            prog, interface, direction, options,
        )?)
    }
}

impl SocketFilter {
    /// Attaches to `socket` (`SO_ATTACH_BPF`); the link detaches it on drop.
    pub fn attach(&self, socket: BorrowedFd<'_>) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        Ok(bpfkit_kernel::link::attach_socket_filter(prog, socket)?)
    }
}

fn attach_cgroup(data: &ProgramData, cgroup: &Path) -> Result<Link> {
    let prog = data.kernel_program("attaching")?;
    if !cgroup.is_dir() {
        return Err(
            data.attach_point_error(format!("{} is not a cgroup directory", cgroup.display()))
        );
    }
    Ok(bpfkit_kernel::link::attach_cgroup(prog, cgroup, None)?)
}

impl CgroupSkb {
    /// Attaches to the cgroup v2 directory `cgroup`, on the hook (ingress or
    /// egress) its section names.
    pub fn attach(&self, cgroup: &Path) -> Result<Link> {
        attach_cgroup(self, cgroup)
    }
}

impl CgroupSockAddr {
    /// Attaches to the cgroup v2 directory `cgroup`, on the hook (connect4,
    /// bind6, ...) its section names.
    pub fn attach(&self, cgroup: &Path) -> Result<Link> {
        attach_cgroup(self, cgroup)
    }
}

impl CgroupSock {
    /// Attaches to the cgroup v2 directory `cgroup`, on the hook its section
    /// names.
    pub fn attach(&self, cgroup: &Path) -> Result<Link> {
        attach_cgroup(self, cgroup)
    }
}

impl SkMsg {
    /// Attaches to sockmap or sockhash `map`.
    pub fn attach(&self, map: &Map) -> Result<Link> {
        let prog = self.kernel_program("attaching")?;
        let kernel_map = map.kernel().ok_or_else(|| Error::Unsupported {
            what: format!("attaching to map `{}`", map.name()),
            backend: Backend::Vm,
            why: "sockmaps exist in the kernel only",
        })?;
        Ok(bpfkit_kernel::link::attach_sk_msg(prog, kernel_map)?)
    }
}
