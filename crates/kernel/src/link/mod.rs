//! Links: attachments that detach when dropped and can be pinned.
//!
//! One module per kind of hook: [`trace`] (tracepoints, raw tracepoints,
//! kprobe availability), [`uprobe`], [`perf_event`], [`net`] (XDP, TC,
//! socket filters, sockmap programs) and [`cgroup`]. Each attach function
//! prefers a `bpf_link` and falls back to the older interface (netlink,
//! `BPF_PROG_ATTACH`, a perf-event ioctl) where the kernel lacks the link
//! kind; the returned [`Link`] undoes whichever it used.

pub mod cgroup;
pub mod net;
pub mod perf_event;
pub mod trace;
pub mod uprobe;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bpfkit_abi::ProgramType;
use bpfkit_object::AttachTarget;

use crate::error::{Error, Result};
use crate::prog::Program;

pub use cgroup::attach_cgroup;
pub use net::{
    attach_sk_msg, attach_socket_filter, attach_tc, attach_xdp, detach_socket_filter, TcDirection,
    TcOptions, XdpMode, XdpOptions,
};
pub use perf_event::{attach_perf_event, attach_perf_event_all_cpus, PerfEventConfig};
pub use trace::{
    attach_btf_traced, attach_iter, attach_raw_tracepoint, attach_tracepoint, btf_attach_id,
    kprobe_unavailable_reason, kprobes_available, read_iter,
};
pub use uprobe::{attach_uprobe, resolve_binary, symbol_file_offset, UprobeTarget};

/// An attachment. Dropping it detaches the program (unless it was pinned).
#[derive(Debug)]
pub struct Link {
    how: Attachment,
    description: String,
}

/// How a program was attached, which says how to detach it.
#[derive(Debug)]
enum Attachment {
    /// A `bpf_link` fd; closing it detaches. `perf_events` are the events a
    /// perf-event link (tracepoint, uprobe, sampling) is built on.
    BpfLink {
        fd: OwnedFd,
        _perf_events: Vec<OwnedFd>,
    },
    /// A perf event with the program set by `PERF_EVENT_IOC_SET_BPF`
    /// (kernels before perf-event links); closing the event detaches.
    PerfEventIoctl { _event: OwnedFd },
    /// An attachment made with a netlink request or `BPF_PROG_ATTACH`,
    /// undone by `detach` on drop.
    Legacy { detach: Box<dyn LegacyDetach> },
}

/// The undo step of an attachment that has no fd of its own.
pub(crate) trait LegacyDetach: std::fmt::Debug + Send + Sync {
    /// Detaches; errors are ignored (the hook may be gone with its device).
    fn detach(&mut self);
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Attachment::Legacy { detach } = self {
            detach.detach();
        }
    }
}

impl Link {
    pub(crate) fn bpf_link(fd: OwnedFd, perf_events: Vec<OwnedFd>, description: String) -> Link {
        Link {
            how: Attachment::BpfLink {
                fd,
                _perf_events: perf_events,
            },
            description,
        }
    }

    pub(crate) fn perf_event_ioctl(event: OwnedFd, description: String) -> Link {
        Link {
            how: Attachment::PerfEventIoctl { _event: event },
            description,
        }
    }

    pub(crate) fn legacy(detach: Box<dyn LegacyDetach>, description: String) -> Link {
        Link {
            how: Attachment::Legacy { detach },
            description,
        }
    }

    /// What the link attaches to (`tracepoint sched/sched_process_exec`,
    /// `xdp eth0 (generic, netlink)`).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `bpf_link` fd, when the attachment is a kernel link.
    pub fn fd(&self) -> Option<&OwnedFd> {
        match &self.how {
            Attachment::BpfLink { fd, .. } => Some(fd),
            _ => None,
        }
    }

    /// Whether the attachment is a kernel `bpf_link` (pinnable, listed by
    /// `bpfkit link list`) rather than a fallback.
    pub fn is_bpf_link(&self) -> bool {
        self.fd().is_some()
    }

    /// Pins the link in bpffs so it outlives this process. Only kernel
    /// links can be pinned; fallback attachments say so.
    pub fn pin(&self, path: &Path) -> Result<()> {
        match self.fd() {
            Some(fd) => crate::fs::pin(fd.as_fd(), path),
            None => Err(Error::Unsupported(format!(
                "{} is not a bpf_link (attached through an older interface), so it cannot be pinned",
                self.description
            ))),
        }
    }
}

/// Attaches `prog` where its section name says (`target`, from the
/// object's `SEC()`), as libbpf's auto-attach does: tracepoints, raw and BTF
/// tracepoints, iterators, fentry/fexit/LSM, uprobes naming their binary.
/// A program whose section names no target (`xdp`, `socket`, a cgroup hook)
/// is an error saying so.
pub fn attach_section(prog: &Program, target: &AttachTarget) -> Result<Link> {
    match target {
        AttachTarget::Tracepoint { category, name } => attach_tracepoint(prog, category, name),
        AttachTarget::RawTracepoint { name } => attach_raw_tracepoint(prog, name),
        AttachTarget::Kernel { .. }
            if prog.expected_attach_type() == Some(bpfkit_abi::AttachType::TraceIter) =>
        {
            attach_iter(prog, None)
        }
        AttachTarget::Kernel { name }
            if matches!(prog.prog_type(), ProgramType::Tracing | ProgramType::Lsm) =>
        {
            attach_btf_traced(prog, name)
        }
        AttachTarget::Kprobe { .. } | AttachTarget::Ksyscall { .. } => Err(Error::Unsupported(
            kprobe_unavailable_reason()
                .unwrap_or_else(|| "kprobe attachment is not implemented in bpfkit yet".into()),
        )),
        AttachTarget::Uprobe {
            binary,
            function,
            offset,
            retprobe,
        } if !binary.is_empty() => attach_uprobe(
            prog,
            &UprobeTarget {
                binary: binary.clone(),
                symbol: function.clone(),
                offset: *offset,
                retprobe: *retprobe,
                pid: None,
            },
        ),
        other => Err(Error::Unsupported(format!(
            "{} program with target {other:?} needs an explicit attach point \
             (an interface, cgroup, socket, map or sampling rate)",
            prog.prog_type()
        ))),
    }
}
