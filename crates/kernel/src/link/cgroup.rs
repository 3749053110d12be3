//! cgroup programs (skb, sock, sock_addr, sockopt, sysctl, device).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bpfkit_abi::AttachType;

use super::net::ProgAttachment;
use super::Link;
use crate::error::{Error, Result};
use crate::prog::Program;
use crate::sys::{flags, link_create, prog_attach, Anchor, LinkExtra, LinkTarget};

/// Attaches a cgroup program to the cgroup v2 directory `cgroup`, as
/// `attach_type` or, when `None`, the program's expected attach type. A
/// cgroup link when possible; `BPF_PROG_ATTACH` with `BPF_F_ALLOW_MULTI`
/// otherwise.
pub fn attach_cgroup(
    prog: &Program,
    cgroup: &Path,
    attach_type: Option<AttachType>,
) -> Result<Link> {
    let attach_type = attach_type
        .or(prog.expected_attach_type())
        .ok_or_else(|| {
            Error::Object(format!(
                "program `{}` has no expected attach type; say which cgroup hook (e.g. cgroup_inet_ingress)",
                prog.name()
            ))
        })?;
    let dir: OwnedFd = std::fs::File::open(cgroup)
        .map_err(|e| Error::sys(format!("open cgroup {}", cgroup.display()), e))?
        .into();
    let description = format!("{} on cgroup {}", attach_type.name(), cgroup.display());
    let op = || format!("attach `{}` as {description}", prog.name());
    match link_create(
        prog.as_fd(),
        LinkTarget::Fd(dir.as_fd()),
        attach_type.as_u32(),
        0,
        &LinkExtra::None,
    ) {
        Ok(fd) => Ok(Link::bpf_link(fd, Vec::new(), description)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            prog_attach(
                LinkTarget::Fd(dir.as_fd()),
                prog.as_fd(),
                attach_type.as_u32(),
                flags::ALLOW_MULTI,
                None,
                Anchor::None,
                0,
            )
            .map_err(|e| Error::sys(op(), e))?;
            let prog_fd = prog.fd().try_clone().map_err(|e| Error::sys(op(), e))?;
            Ok(Link::legacy(
                Box::new(ProgAttachment {
                    target: dir,
                    prog: prog_fd,
                    attach_type,
                }),
                format!("{description} (prog_attach)"),
            ))
        }
        Err(e) => Err(Error::sys(op(), e)),
    }
}
