//! Links: attachments that detach when dropped and can be pinned.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use bpfkit_abi::AttachType;

use crate::error::{Error, Result};
use crate::prog::LoadedProgram;
use crate::sys::{bpf, bpf_fd, cmd, perf_event_open, Attr, PerfEventAttr};

/// An attachment. Dropping it detaches the program (unless it was pinned).
#[derive(Debug)]
pub struct Link {
    fd: OwnedFd,
    /// The perf event a tracepoint link is built on, kept open with it.
    _perf_event: Option<OwnedFd>,
    description: String,
}

impl Link {
    /// What the link attaches to (`tracepoint sched/sched_process_exec`).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The link's fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Pins the link in bpffs so it outlives this process.
    pub fn pin(&self, path: &Path) -> Result<()> {
        pin_fd(&self.fd, path)
    }
}

/// Pins any BPF object fd at `path`.
pub fn pin_fd(fd: &OwnedFd, path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Object("pin path has a NUL byte".into()))?;
    let mut attr = Attr::default()
        .ptr(0, c.as_ptr())
        .u32(8, fd.as_raw_fd() as u32);
    bpf(cmd::OBJ_PIN, &mut attr)
        .map(|_| ())
        .map_err(|e| Error::sys(format!("pin at {}", path.display()), e))
}

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
pub fn attach_tracepoint(prog: &LoadedProgram, category: &str, name: &str) -> Result<Link> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    let id = tracepoint_id(category, name)?;
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
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
    let mut attr = Attr::default()
        .u32(0, prog.fd().as_raw_fd() as u32)
        .u32(4, perf.as_raw_fd() as u32)
        .u32(8, AttachType::PerfEvent.as_u32());
    let fd = bpf_fd(cmd::LINK_CREATE, &mut attr).map_err(|e| {
        Error::sys(
            format!("attach `{}` to tracepoint {category}/{name}", prog.name()),
            e,
        )
    })?;
    Ok(Link {
        fd,
        _perf_event: Some(perf),
        description: format!("tracepoint {category}/{name}"),
    })
}

/// Attaches a raw tracepoint program (`BPF_RAW_TRACEPOINT_OPEN`).
pub fn attach_raw_tracepoint(prog: &LoadedProgram, name: &str) -> Result<Link> {
    let c =
        CString::new(name).map_err(|_| Error::Object("tracepoint name has a NUL byte".into()))?;
    let mut attr = Attr::default()
        .ptr(0, c.as_ptr())
        .u32(8, prog.fd().as_raw_fd() as u32);
    let fd = bpf_fd(cmd::RAW_TRACEPOINT_OPEN, &mut attr).map_err(|e| {
        Error::sys(
            format!("attach `{}` to raw tracepoint {name}", prog.name()),
            e,
        )
    })?;
    Ok(Link {
        fd,
        _perf_event: None,
        description: format!("raw_tracepoint {name}"),
    })
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
