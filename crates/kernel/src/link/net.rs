//! Networking hooks: XDP, TC, socket filters and sockmap programs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bpfkit_abi::AttachType;

use super::{LegacyDetach, Link};
use crate::error::{Error, Result};
use crate::map::KernelMap;
use crate::prog::Program;
use crate::sys::net::{
    ifindex, setsockopt_u32, NetlinkMessage, RouteSocket, NLM_F_CREATE, NLM_F_EXCL,
};
use crate::sys::{link_create, prog_attach, prog_detach, Anchor, LinkExtra, LinkTarget};

const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_HW_MODE: u32 = 1 << 3;
const RTM_SETLINK: u16 = 19;
const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;
const TC_H_CLSACT: u32 = 0xffff_fff1;
const TC_H_MIN_INGRESS: u32 = 0xfff2;
const TC_H_MIN_EGRESS: u32 = 0xfff3;
const ETH_P_ALL: u16 = 0x0003;
const SO_ATTACH_BPF: libc::c_int = 50;
const SO_DETACH_BPF: libc::c_int = 27;

fn interface_index(interface: &str) -> Result<u32> {
    ifindex(interface).map_err(|e| Error::sys(format!("network interface `{interface}`"), e))
}

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// The driver's hook when it has one, else generic (the kernel chooses).
    #[default]
    Auto,
    /// Generic XDP (after the stack allocates an skb); works on any device.
    Generic,
    /// The driver's native hook.
    Native,
    /// Offloaded to the NIC.
    Offload,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Offload => XDP_FLAGS_HW_MODE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Generic => "generic",
            XdpMode::Native => "native",
            XdpMode::Offload => "offload",
        }
    }
}

/// How to attach an XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpOptions {
    /// Where it runs.
    pub mode: XdpMode,
    /// Use netlink even when the kernel has XDP links (5.9+), as on older kernels.
    pub force_netlink: bool,
}

/// Netlink-attached XDP: detached by setting the interface's program to -1.
#[derive(Debug)]
struct NetlinkXdp {
    ifindex: u32,
    flags: u32,
}

fn xdp_setlink(ifindex: u32, fd: i32, flags: u32) -> std::io::Result<()> {
    let mut ifinfo = [0u8; 16];
    ifinfo[0] = libc::AF_UNSPEC as u8;
    ifinfo[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    let mut msg = NetlinkMessage::new(&ifinfo);
    msg.nested(IFLA_XDP, |m| {
        m.u32(IFLA_XDP_FD, fd as u32).u32(IFLA_XDP_FLAGS, flags);
    });
    RouteSocket::open()?.request(RTM_SETLINK, 0, &msg)
}

impl LegacyDetach for NetlinkXdp {
    fn detach(&mut self) {
        let _ = xdp_setlink(self.ifindex, -1, self.flags);
    }
}

/// Attaches an XDP program to `interface` (a name or index): an XDP link
/// when the kernel has them, netlink otherwise.
pub fn attach_xdp(prog: &Program, interface: &str, opts: &XdpOptions) -> Result<Link> {
    let index = interface_index(interface)?;
    let mode = opts.mode;
    if !opts.force_netlink && crate::features::xdp_link().unwrap_or(false) {
        let fd = link_create(
            prog.as_fd(),
            LinkTarget::Ifindex(index),
            AttachType::Xdp.as_u32(),
            mode.flags(),
            &LinkExtra::None,
        )
        .map_err(|e| xdp_error(prog, interface, mode, e))?;
        return Ok(Link::bpf_link(
            fd,
            Vec::new(),
            format!("xdp {interface} ({})", mode.name()),
        ));
    }
    let flags = mode.flags() | XDP_FLAGS_UPDATE_IF_NOEXIST;
    xdp_setlink(index, std::os::fd::AsRawFd::as_raw_fd(prog.fd()), flags)
        .map_err(|e| xdp_error(prog, interface, mode, e))?;
    Ok(Link::legacy(
        Box::new(NetlinkXdp {
            ifindex: index,
            flags: mode.flags(),
        }),
        format!("xdp {interface} ({}, netlink)", mode.name()),
    ))
}

fn xdp_error(prog: &Program, interface: &str, mode: XdpMode, e: std::io::Error) -> Error {
    let op = format!(
        "attach XDP program `{}` to {interface} in {} mode",
        prog.name(),
        mode.name()
    );
    match e.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => Error::Unsupported(format!(
            "{op}: the interface already has an XDP program (detach it first)"
        )),
        Some(libc::EOPNOTSUPP) if mode == XdpMode::Native => Error::Unsupported(format!(
            "{op}: the driver has no native XDP hook; use generic mode"
        )),
        _ => Error::sys(op, e),
    }
}

/// Which way through the interface a TC program sees packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcDirection {
    /// Received packets.
    Ingress,
    /// Sent packets.
    Egress,
}

impl TcDirection {
    fn name(self) -> &'static str {
        match self {
            TcDirection::Ingress => "ingress",
            TcDirection::Egress => "egress",
        }
    }
}

/// How to attach a TC program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcOptions {
    /// Use a clsact qdisc and a cls_bpf filter (netlink) even when the
    /// kernel has tcx links (6.6+).
    pub force_netlink: bool,
    /// The cls_bpf filter's priority (netlink only).
    pub priority: u16,
    /// The cls_bpf filter's handle (netlink only).
    pub handle: u32,
}

impl Default for TcOptions {
    fn default() -> TcOptions {
        TcOptions {
            force_netlink: false,
            priority: 1,
            handle: 1,
        }
    }
}

/// A cls_bpf filter, deleted on drop. The clsact qdisc it may have created
/// is left in place, as libbpf leaves its TC hooks: other filters may use it.
#[derive(Debug)]
struct NetlinkTcFilter {
    ifindex: u32,
    parent: u32,
    handle: u32,
    info: u32,
}

fn tcmsg(ifindex: u32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0] = libc::AF_UNSPEC as u8;
    m[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    m[8..12].copy_from_slice(&handle.to_ne_bytes());
    m[12..16].copy_from_slice(&parent.to_ne_bytes());
    m[16..20].copy_from_slice(&info.to_ne_bytes());
    m
}

impl LegacyDetach for NetlinkTcFilter {
    fn detach(&mut self) {
        let mut msg =
            NetlinkMessage::new(&tcmsg(self.ifindex, self.handle, self.parent, self.info));
        msg.string(TCA_KIND, "bpf");
        if let Ok(mut sock) = RouteSocket::open() {
            let _ = sock.request(RTM_DELTFILTER, 0, &msg);
        }
    }
}

/// Attaches a `sched_cls` program to `interface` in `direction`: a tcx
/// link when the kernel has them, a clsact qdisc plus a direct-action
/// cls_bpf filter (netlink) otherwise.
pub fn attach_tc(
    prog: &Program,
    interface: &str,
    direction: TcDirection,
    opts: &TcOptions,
) -> Result<Link> {
    let index = interface_index(interface)?;
    let op = || {
        format!(
            "attach TC program `{}` to {interface} {}",
            prog.name(),
            direction.name()
        )
    };
    if !opts.force_netlink && crate::features::tcx().unwrap_or(false) {
        let attach_type = match direction {
            TcDirection::Ingress => AttachType::TcxIngress,
            TcDirection::Egress => AttachType::TcxEgress,
        };
        let fd = link_create(
            prog.as_fd(),
            LinkTarget::Ifindex(index),
            attach_type.as_u32(),
            0,
            &LinkExtra::Tcx {
                anchor: Anchor::None,
                expected_revision: 0,
            },
        )
        .map_err(|e| Error::sys(op(), e))?;
        return Ok(Link::bpf_link(
            fd,
            Vec::new(),
            format!("tcx {interface} {}", direction.name()),
        ));
    }
    let mut sock = RouteSocket::open().map_err(|e| Error::sys(op(), e))?;
    let mut qdisc = NetlinkMessage::new(&tcmsg(index, 0xffff_0000, TC_H_CLSACT, 0));
    qdisc.string(TCA_KIND, "clsact");
    match sock.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &qdisc) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(Error::sys(format!("{}: create clsact qdisc", op()), e)),
    }
    let minor = match direction {
        TcDirection::Ingress => TC_H_MIN_INGRESS,
        TcDirection::Egress => TC_H_MIN_EGRESS,
    };
    let parent = (TC_H_CLSACT & 0xffff_0000) | minor;
    let info = ((opts.priority as u32) << 16) | ETH_P_ALL.to_be() as u32;
    let mut filter = NetlinkMessage::new(&tcmsg(index, opts.handle, parent, info));
    let prog_fd = std::os::fd::AsRawFd::as_raw_fd(prog.fd()) as u32;
    filter.string(TCA_KIND, "bpf").nested(TCA_OPTIONS, |m| {
        m.u32(TCA_BPF_FD, prog_fd)
            .string(TCA_BPF_NAME, prog.name())
            .u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
    });
    sock.request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &filter)
        .map_err(|e| Error::sys(format!("{}: add cls_bpf filter", op()), e))?;
    Ok(Link::legacy(
        Box::new(NetlinkTcFilter {
            ifindex: index,
            parent,
            handle: opts.handle,
            info,
        }),
        format!(
            "tc {interface} {} (cls_bpf prio {} handle {})",
            direction.name(),
            opts.priority,
            opts.handle
        ),
    ))
}

/// Attaches a socket filter to `socket` (`SO_ATTACH_BPF`). Dropping the
/// link detaches it (`SO_DETACH_BPF`), unless the socket is gone by then; the
/// link holds a duplicate of the socket's fd, so the socket lives as long.
pub fn attach_socket_filter(prog: &Program, socket: BorrowedFd<'_>) -> Result<Link> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(prog.fd()) as u32;
    let op = || format!("attach socket filter `{}` (SO_ATTACH_BPF)", prog.name());
    let description = format!(
        "socket filter on fd {}",
        std::os::fd::AsRawFd::as_raw_fd(&socket)
    );
    let socket = socket
        .try_clone_to_owned()
        .map_err(|e| Error::sys(op(), e))?;
    setsockopt_u32(socket.as_fd(), SO_ATTACH_BPF, fd).map_err(|e| Error::sys(op(), e))?;
    Ok(Link::legacy(
        Box::new(SocketFilterAttachment { socket }),
        description,
    ))
}

/// Removes the socket filter from `socket`, whoever attached it.
pub fn detach_socket_filter(socket: BorrowedFd<'_>) -> Result<()> {
    setsockopt_u32(socket, SO_DETACH_BPF, 0)
        .map_err(|e| Error::sys("detach socket filter (SO_DETACH_BPF)", e))
}

/// A socket filter, detached with `SO_DETACH_BPF` on its socket.
#[derive(Debug)]
struct SocketFilterAttachment {
    socket: OwnedFd,
}

impl LegacyDetach for SocketFilterAttachment {
    fn detach(&mut self) {
        let _ = setsockopt_u32(self.socket.as_fd(), SO_DETACH_BPF, 0);
    }
}

/// A program attached with `BPF_PROG_ATTACH`, detached with `BPF_PROG_DETACH`.
#[derive(Debug)]
pub(crate) struct ProgAttachment {
    pub(crate) target: OwnedFd,
    pub(crate) prog: OwnedFd,
    pub(crate) attach_type: AttachType,
}

impl LegacyDetach for ProgAttachment {
    fn detach(&mut self) {
        let _ = prog_detach(
            LinkTarget::Fd(self.target.as_fd()),
            Some(self.prog.as_fd()),
            self.attach_type.as_u32(),
            0,
        );
    }
}

/// Attaches an `sk_msg` or `sk_skb` program to a sockmap or sockhash. The
/// attach type is the program's expected one (`sk_msg_verdict`,
/// `sk_skb_stream_verdict`, ...). A sockmap link (6.10+) when possible,
/// `BPF_PROG_ATTACH` otherwise.
pub fn attach_sk_msg(prog: &Program, map: &KernelMap) -> Result<Link> {
    let attach_type = prog.expected_attach_type().ok_or_else(|| {
        Error::Object(format!(
            "program `{}` has no expected attach type: load it from a SEC(\"sk_msg\") or \
             SEC(\"sk_skb/stream_verdict\")-style section",
            prog.name()
        ))
    })?;
    let description = format!("{} on map {}", attach_type.name(), map.name());
    let op = || format!("attach `{}` as {description}", prog.name());
    match link_create(
        prog.as_fd(),
        LinkTarget::Fd(map.as_fd()),
        attach_type.as_u32(),
        0,
        &LinkExtra::None,
    ) {
        Ok(fd) => Ok(Link::bpf_link(fd, Vec::new(), description)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            prog_attach(
                LinkTarget::Fd(map.as_fd()),
                prog.as_fd(),
                attach_type.as_u32(),
                0,
                None,
                Anchor::None,
                0,
            )
            .map_err(|e| Error::sys(op(), e))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| Error::sys(op(), e));
            Ok(Link::legacy(
                Box::new(ProgAttachment {
                    target: dup(map.fd())?,
                    prog: dup(prog.fd())?,
                    attach_type,
                }),
                format!("{description} (prog_attach)"),
            ))
        }
        Err(e) => Err(Error::sys(op(), e)),
    }
}
