//! Attach commands: links (`BPF_LINK_CREATE/UPDATE/DETACH`), the older
//! `BPF_PROG_ATTACH/DETACH/QUERY`, and `BPF_RAW_TRACEPOINT_OPEN`.

use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::attr::{
    LinkCreateAttr, LinkCreateTail, LinkDetachAttr, LinkUpdateAttr, ProgAttachAttr, ProgDetachAttr,
    ProgQueryAttr, Ptr, PtrMut, RawTracepointAttr,
};
use super::{fd_u32, flags, invalid, raw, sys_bpf, sys_bpf_fd};

/// What a link or attachment is made on.
#[derive(Debug, Clone, Copy, Default)]
pub enum LinkTarget<'a> {
    /// Nothing (tracing, perf-event-less kinds); sent as 0.
    #[default]
    None,
    /// An fd: cgroup directory, perf event, netns, program, map, ...
    Fd(BorrowedFd<'a>),
    /// A network interface (XDP, tcx, netkit).
    Ifindex(u32),
}

impl LinkTarget<'_> {
    fn raw(self) -> u32 {
        match self {
            LinkTarget::None => 0,
            LinkTarget::Fd(fd) => fd_u32(fd),
            LinkTarget::Ifindex(i) => i,
        }
    }
}

/// Where in a multi-program chain (tcx, netkit, cgroup) a program goes,
/// relative to another; combine with [`flags::BEFORE`]/[`flags::AFTER`].
#[derive(Debug, Clone, Copy, Default)]
pub enum Anchor<'a> {
    /// First or last of the chain.
    #[default]
    None,
    /// The program or link with this fd.
    Fd(BorrowedFd<'a>),
    /// The program or link with this id (sets `BPF_F_ID`).
    Id(u32),
}

impl Anchor<'_> {
    /// The raw `relative_fd`/`relative_id` and the extra flags it needs.
    fn raw(self) -> (u32, u32) {
        match self {
            Anchor::None => (0, 0),
            Anchor::Fd(fd) => (fd_u32(fd), 0),
            Anchor::Id(id) => (id, flags::ID),
        }
    }
}

/// The attach-kind specific part of `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy, Default)]
pub enum LinkExtra<'a> {
    /// Nothing more (XDP, cgroup via link, netns, sk_lookup, struct_ops, ...).
    #[default]
    None,
    /// `target_btf_id` (freplace, LSM).
    TargetBtfId(u32),
    /// A `union bpf_iter_link_info` for iterators.
    Iter {
        /// The encoded iterator info.
        info: &'a [u8],
    },
    /// A perf event (tracepoint, kprobe, uprobe) link.
    PerfEvent {
        /// `bpf_get_attach_cookie()` value.
        cookie: u64,
    },
    /// Many kprobes with one link.
    KprobeMulti {
        /// `BPF_F_KPROBE_MULTI_RETURN`.
        flags: u32,
        /// Symbols (exclusive with `addrs`).
        syms: &'a [&'a CStr],
        /// Addresses (exclusive with `syms`).
        addrs: &'a [u64],
        /// One cookie per probe, or empty.
        cookies: &'a [u64],
    },
    /// fentry/fexit/fmod_ret/lsm with a cookie.
    Tracing {
        /// BTF id of the target.
        target_btf_id: u32,
        /// `bpf_get_attach_cookie()` value.
        cookie: u64,
    },
    /// A netfilter hook.
    Netfilter {
        /// Protocol family (`NFPROTO_IPV4`, ...).
        pf: u32,
        /// Hook (`NF_INET_LOCAL_IN`, ...).
        hooknum: u32,
        /// Priority among the hook's functions.
        priority: i32,
        /// `BPF_F_NETFILTER_*`.
        flags: u32,
    },
    /// tcx ingress/egress.
    Tcx {
        /// Position relative to another program or link.
        anchor: Anchor<'a>,
        /// Fail with `ESTALE` unless the chain is at this revision (0: any).
        expected_revision: u64,
    },
    /// Many uprobes in one file with one link.
    UprobeMulti {
        /// The binary or library.
        path: &'a CStr,
        /// File offsets of the probes.
        offsets: &'a [u64],
        /// Reference counter (USDT semaphore) offsets: empty or one per probe.
        ref_ctr_offsets: &'a [u64],
        /// Cookies: empty or one per probe.
        cookies: &'a [u64],
        /// `BPF_F_UPROBE_MULTI_RETURN`.
        flags: u32,
        /// Only this process (0: every process).
        pid: u32,
    },
    /// netkit primary/peer.
    Netkit {
        /// Position relative to another program or link.
        anchor: Anchor<'a>,
        /// Fail with `ESTALE` unless the chain is at this revision (0: any).
        expected_revision: u64,
    },
    /// A cgroup link placed in the cgroup's chain (6.14+).
    Cgroup {
        /// Position relative to another program or link.
        anchor: Anchor<'a>,
        /// Fail with `ESTALE` unless the chain is at this revision (0: any).
        expected_revision: u64,
    },
}

/// The 48-byte union tail being written, by byte offset within it.
struct Tail([u8; 48]);

impl Tail {
    fn u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    /// The tail as the attr's words. The addresses in it are borrowed by
    /// `link_create`'s arguments, which outlive the syscall.
    fn into_attr<'a>(self) -> LinkCreateTail<'a> {
        let mut words = [0u64; 6];
        for (w, chunk) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        LinkCreateTail {
            words,
            _borrow: PhantomData,
        }
    }
}

fn addr<T>(s: &[T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        s.as_ptr() as u64
    }
}

fn same_len_or_empty(what: &str, s: &[u64], n: usize) -> io::Result<()> {
    if s.is_empty() || s.len() == n {
        Ok(())
    } else {
        Err(invalid(&format!(
            "{what} has {} entries, expected 0 or {n}",
            s.len()
        )))
    }
}

/// Creates a link: `prog` attached to `target` as `attach_type`. Dropping the
/// returned fd detaches it (unless pinned).
pub fn link_create(
    prog: BorrowedFd<'_>,
    target: LinkTarget<'_>,
    attach_type: u32,
    link_flags: u32,
    extra: &LinkExtra<'_>,
) -> io::Result<OwnedFd> {
    let mut t = Tail([0; 48]);
    let mut link_flags = link_flags;
    // Pointer arrays built here must outlive the syscall below.
    let sym_ptrs: Vec<u64>;
    match *extra {
        LinkExtra::None => {}
        LinkExtra::TargetBtfId(id) => t.u32(0, id),
        LinkExtra::Iter { info } => {
            let len = u32::try_from(info.len()).map_err(|_| invalid("iter info too large"))?;
            t.u64(0, addr(info));
            t.u32(8, len);
        }
        LinkExtra::PerfEvent { cookie } => t.u64(0, cookie),
        LinkExtra::KprobeMulti {
            flags,
            syms,
            addrs,
            cookies,
        } => {
            if !syms.is_empty() && !addrs.is_empty() {
                return Err(invalid("kprobe_multi takes symbols or addresses, not both"));
            }
            let n = syms.len().max(addrs.len());
            same_len_or_empty("kprobe_multi cookies", cookies, n)?;
            sym_ptrs = syms.iter().map(|s| s.as_ptr() as u64).collect();
            t.u32(0, flags);
            t.u32(
                4,
                u32::try_from(n).map_err(|_| invalid("too many kprobes"))?,
            );
            t.u64(8, addr(&sym_ptrs));
            t.u64(16, addr(addrs));
            t.u64(24, addr(cookies));
        }
        LinkExtra::Tracing {
            target_btf_id,
            cookie,
        } => {
            t.u32(0, target_btf_id);
            t.u64(8, cookie);
        }
        LinkExtra::Netfilter {
            pf,
            hooknum,
            priority,
            flags,
        } => {
            t.u32(0, pf);
            t.u32(4, hooknum);
            t.u32(8, priority as u32);
            t.u32(12, flags);
        }
        LinkExtra::Tcx {
            anchor,
            expected_revision,
        }
        | LinkExtra::Netkit {
            anchor,
            expected_revision,
        }
        | LinkExtra::Cgroup {
            anchor,
            expected_revision,
        } => {
            let (relative, extra_flags) = anchor.raw();
            link_flags |= extra_flags;
            t.u32(0, relative);
            t.u64(8, expected_revision);
        }
        LinkExtra::UprobeMulti {
            path,
            offsets,
            ref_ctr_offsets,
            cookies,
            flags,
            pid,
        } => {
            if offsets.is_empty() {
                return Err(invalid("uprobe_multi needs at least one offset"));
            }
            same_len_or_empty(
                "uprobe_multi ref_ctr_offsets",
                ref_ctr_offsets,
                offsets.len(),
            )?;
            same_len_or_empty("uprobe_multi cookies", cookies, offsets.len())?;
            t.u64(0, path.as_ptr() as u64);
            t.u64(8, addr(offsets));
            t.u64(16, addr(ref_ctr_offsets));
            t.u64(24, addr(cookies));
            t.u32(
                32,
                u32::try_from(offsets.len()).map_err(|_| invalid("too many uprobes"))?,
            );
            t.u32(36, flags);
            t.u32(40, pid);
        }
    }
    let mut attr = LinkCreateAttr {
        prog_fd: fd_u32(prog),
        target: target.raw(),
        attach_type,
        flags: link_flags,
        tail: t.into_attr(),
    };
    sys_bpf_fd(&mut attr)
}

/// Replaces a link's program (with `BPF_F_REPLACE`, only if it is `old`).
pub fn link_update(
    link: BorrowedFd<'_>,
    new_prog: BorrowedFd<'_>,
    old_prog: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = LinkUpdateAttr {
        link_fd: fd_u32(link),
        new_prog_fd: fd_u32(new_prog),
        flags: if old_prog.is_some() {
            flags::REPLACE
        } else {
            0
        },
        old_prog_fd: raw(old_prog),
    };
    sys_bpf(&mut attr).map(drop)
}

/// Detaches a link from its hook; the link fd stays valid but defunct.
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = LinkDetachAttr {
        link_fd: fd_u32(link),
    };
    sys_bpf(&mut attr).map(drop)
}

/// Attaches `prog` the pre-link way (cgroups, sockmaps, flow dissector, tcx
/// without a link); it stays attached until [`prog_detach`].
pub fn prog_attach(
    target: LinkTarget<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    attach_flags: u32,
    replace: Option<BorrowedFd<'_>>,
    anchor: Anchor<'_>,
    expected_revision: u64,
) -> io::Result<()> {
    let (relative, extra_flags) = anchor.raw();
    let mut attr = ProgAttachAttr {
        target: target.raw(),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        attach_flags: attach_flags
            | extra_flags
            | if replace.is_some() { flags::REPLACE } else { 0 },
        replace_bpf_fd: raw(replace),
        relative,
        expected_revision,
    };
    sys_bpf(&mut attr).map(drop)
}

/// Detaches a program attached with [`prog_attach`] (`prog = None` detaches
/// the single program of a non-multi hook).
pub fn prog_detach(
    target: LinkTarget<'_>,
    prog: Option<BorrowedFd<'_>>,
    attach_type: u32,
    detach_flags: u32,
) -> io::Result<()> {
    let mut attr = ProgDetachAttr {
        target: target.raw(),
        attach_bpf_fd: raw(prog),
        attach_type,
        attach_flags: detach_flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// What [`prog_query`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgQuery {
    /// Flags the hook was attached with (cgroups).
    pub attach_flags: u32,
    /// How many programs are attached (may exceed the buffer given).
    pub count: u32,
    /// The chain's revision (tcx, netkit, cgroup).
    pub revision: u64,
}

/// Lists the programs (and, where given, links) attached to a hook.
/// `prog_ids` receives up to its length of ids; `link_ids`, when given, must
/// be as long as `prog_ids`.
pub fn prog_query(
    target: LinkTarget<'_>,
    attach_type: u32,
    query_flags: u32,
    prog_ids: &mut [u32],
    link_ids: Option<&mut [u32]>,
) -> io::Result<ProgQuery> {
    if link_ids.as_ref().is_some_and(|l| l.len() < prog_ids.len()) {
        return Err(invalid("link_ids must be as long as prog_ids"));
    }
    let count = u32::try_from(prog_ids.len()).map_err(|_| invalid("too many ids"))?;
    let mut attr = ProgQueryAttr {
        target: target.raw(),
        attach_type,
        query_flags,
        prog_ids: PtrMut::slice(prog_ids),
        count,
        link_ids: link_ids.map_or_else(PtrMut::default, PtrMut::slice),
        ..Default::default()
    };
    sys_bpf(&mut attr)?;
    Ok(ProgQuery {
        attach_flags: attr.attach_flags,
        count: attr.count,
        revision: attr.revision,
    })
}

/// Attaches a raw tracepoint (or, with `name = None`, a `tp_btf`/fentry-style
/// tracing program to its load-time target); returns the link fd.
pub fn raw_tracepoint_open(
    prog: BorrowedFd<'_>,
    name: Option<&CStr>,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut attr = RawTracepointAttr {
        name: name.map_or_else(Ptr::default, Ptr::cstr),
        prog_fd: fd_u32(prog),
        cookie,
        ..Default::default()
    };
    sys_bpf_fd(&mut attr)
}
