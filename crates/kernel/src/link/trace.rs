//! Tracepoints and raw tracepoints, and whether kprobes exist here.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use bpfkit_abi::AttachType;

use super::Link;
use crate::error::{Error, Result};
use crate::prog::Program;
use crate::sys::{perf_event_open, PerfEventAttr};

fn tracepoint_id(category: &str, name: &str) -> Result<u64> {
    let root = crate::fs::tracefs()?;
    let path = root.join("events").join(category).join(name).join("id");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Unsupported(format!(
                "tracepoint {category}/{name} does not exist on this kernel ({} is missing)",
                path.display()
            ))
        } else {
            Error::sys(format!("read {}", path.display()), e)
        }
    })?;
    text.trim()
        .parse()
        .map_err(|_| Error::Object(format!("{} does not hold a number", path.display())))
}

/// Attaches a tracepoint program to `category/name` (a perf event plus a
/// `BPF_LINK_CREATE` link).
pub fn attach_tracepoint(prog: &Program, category: &str, name: &str) -> Result<Link> {
    let id = tracepoint_id(category, name)?;
    let attr = PerfEventAttr {
        type_: bpfkit_abi::perf::TYPE_TRACEPOINT,
        config: id,
        sample_period_or_freq: 1,
        wakeup_events_or_watermark: 1,
        ..Default::default()
    };
    let perf = perf_event_open(&attr, -1, 0).map_err(|e| {
        Error::sys(
            format!("perf_event_open for tracepoint {category}/{name}"),
            e,
        )
    })?;
    super::perf_event::attach_to_event(prog, perf, format!("tracepoint {category}/{name}"))
}

/// Attaches a raw tracepoint program (`BPF_RAW_TRACEPOINT_OPEN`).
pub fn attach_raw_tracepoint(prog: &Program, name: &str) -> Result<Link> {
    let c =
        CString::new(name).map_err(|_| Error::Object("tracepoint name has a NUL byte".into()))?;
    let fd = crate::sys::raw_tracepoint_open(prog.fd().as_fd(), Some(&c), 0).map_err(|e| {
        Error::sys(
            format!("attach `{}` to raw tracepoint {name}", prog.name()),
            e,
        )
    })?;
    Ok(Link::bpf_link(
        fd,
        Vec::new(),
        format!("raw_tracepoint {name}"),
    ))
}

/// Whether this kernel can create kprobes (a kprobe PMU or kprobe_events).
pub fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || crate::fs::tracefs()
            .map(|t| t.join("kprobe_events").exists())
            .unwrap_or(false)
}

/// Explains why a kprobe cannot be attached here, or `None` when it can.
pub fn kprobe_unavailable_reason() -> Option<String> {
    (!kprobes_available()).then(|| {
        "kprobes are not available: this kernel has no kprobe PMU \
         (/sys/bus/event_source/devices/kprobe) and no kprobe_events in tracefs \
         (it was built without CONFIG_KPROBES/CONFIG_KPROBE_EVENTS); use a tracepoint instead"
            .to_string()
    })
}

/// Attaches a BTF-typed tracing program (tp_btf, fentry, fexit, fmod_ret,
/// LSM) to the kernel object it was loaded for (its `attach_btf_id`).
pub fn attach_btf_traced(prog: &Program, target: &str) -> Result<Link> {
    let kind = prog.expected_attach_type().map_or("tracing", |a| a.name());
    let fd = crate::sys::raw_tracepoint_open(std::os::fd::AsFd::as_fd(prog), None, 0)
        .map_err(|e| Error::sys(format!("attach `{}` ({kind}) to {target}", prog.name()), e))?;
    Ok(Link::bpf_link(fd, Vec::new(), format!("{kind} {target}")))
}

/// The BTF type id a BTF-typed tracing program of `attach_type` loads
/// against for kernel object `target`, with a clear error when the kernel
/// cannot run such programs or lacks the object.
pub fn btf_attach_id(program: &str, attach_type: AttachType, target: &str) -> Result<u32> {
    use bpfkit_btf::Kind;
    let needs_trampoline = matches!(
        attach_type,
        AttachType::TraceFentry
            | AttachType::TraceFexit
            | AttachType::ModifyReturn
            | AttachType::LsmMac
    );
    if needs_trampoline && !crate::features::fentry().unwrap_or(false) {
        return Err(Error::Unsupported(format!(
            "program `{program}` ({} {target}) needs BPF trampolines (fentry/fexit/fmod_ret/LSM), \
             which this kernel refuses: it lacks CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS/\
             CONFIG_BPF_LSM or a security policy forbids them; use a tracepoint or raw \
             tracepoint instead",
            attach_type.name()
        )));
    }
    let (name, kind) = match attach_type {
        AttachType::TraceRawTp => (format!("btf_trace_{target}"), Kind::Typedef),
        AttachType::LsmMac => (format!("bpf_lsm_{target}"), Kind::Func),
        AttachType::TraceIter => (format!("bpf_iter_{target}"), Kind::Func),
        _ => (target.to_string(), Kind::Func),
    };
    let vmlinux = crate::btf::vmlinux()?;
    vmlinux.find_by_name_kind(&name, kind).ok_or_else(|| {
        Error::Unsupported(format!(
            "program `{program}` ({} {target}): the kernel's BTF has no {} `{name}`",
            attach_type.name(),
            if kind == Kind::Typedef {
                "tracepoint type"
            } else {
                "function"
            },
        ))
    })
}

/// Attaches a BPF iterator program (`SEC("iter/task")`, ...) with
/// `BPF_LINK_CREATE` and `BPF_TRACE_ITER`, as libbpf's
/// bpf_program__attach_iter does; the kernel refuses iterators through
/// `BPF_RAW_TRACEPOINT_OPEN`. `map` is the map a map-element iterator
/// (`iter/bpf_map_elem`, `iter/bpf_sk_storage_map`...) walks.
pub fn attach_iter(prog: &Program, map: Option<&crate::KernelMap>) -> Result<Link> {
    use std::os::fd::AsFd;
    // union bpf_iter_link_info: { struct { __u32 map_fd; } map; ... }
    let info: Vec<u8> = match map {
        Some(m) => (m.fd().as_raw_fd() as u32).to_ne_bytes().to_vec(),
        None => Vec::new(),
    };
    let fd = crate::sys::link_create(
        prog.fd().as_fd(),
        crate::sys::LinkTarget::None,
        AttachType::TraceIter.as_u32(),
        0,
        &crate::sys::LinkExtra::Iter { info: &info },
    )
    .map_err(|e| Error::sys(format!("attach iterator `{}`", prog.name()), e))?;
    let what = match map {
        Some(m) => format!("iter {} (map {})", prog.name(), m.name()),
        None => format!("iter {}", prog.name()),
    };
    Ok(Link::bpf_link(fd, Vec::new(), what))
}

/// Runs an iterator once (`BPF_ITER_CREATE`, then reads to the end) and
/// returns what its program wrote with `bpf_seq_printf`/`bpf_seq_write`.
/// A pinned iterator link gives the same text each time its file is read.
pub fn read_iter(link: &Link) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let fd = link.fd().ok_or_else(|| {
        Error::Unsupported(format!("{} is not an iterator link", link.description()))
    })?;
    let iter = crate::sys::iter_create(fd.as_fd())
        .map_err(|e| Error::sys(format!("create an iterator from {}", link.description()), e))?;
    let mut out = Vec::new();
    std::fs::File::from(iter)
        .read_to_end(&mut out)
        .map_err(|e| Error::sys(format!("read iterator {}", link.description()), e))?;
    Ok(out)
}
