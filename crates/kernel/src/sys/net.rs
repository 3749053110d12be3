//! Networking system calls: interface names, `SO_ATTACH_BPF`, and a small
//! rtnetlink client (XDP and TC attachment on kernels without those links).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The index of network interface `name` (`if_nametoindex`); a decimal
/// string is taken as an index.
pub fn ifindex(name: &str) -> io::Result<u32> {
    if let Ok(i) = name.parse::<u32>() {
        return Ok(i);
    }
    let c = CString::new(name).map_err(|_| super::invalid("interface name has a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// `setsockopt(sock, SOL_SOCKET, opt, &value, 4)`.
pub fn setsockopt_u32(sock: BorrowedFd<'_>, opt: libc::c_int, value: u32) -> io::Result<()> {
    // SAFETY: the kernel reads exactly 4 bytes from `&value`, which lives
    // across the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&value as *const u32).cast(),
            4,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 4;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;

/// A netlink message body being built: a fixed header struct followed by
/// attributes, each padded to 4 bytes.
#[derive(Debug, Default, Clone)]
pub struct NetlinkMessage {
    bytes: Vec<u8>,
}

impl NetlinkMessage {
    /// A body starting with `fixed` (e.g. a `struct ifinfomsg` or `tcmsg`).
    pub fn new(fixed: &[u8]) -> NetlinkMessage {
        let mut m = NetlinkMessage {
            bytes: fixed.to_vec(),
        };
        m.pad();
        m
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    /// Appends an attribute with raw bytes.
    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut NetlinkMessage {
        let len = (4 + value.len()) as u16;
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.pad();
        self
    }

    /// Appends a `u32` attribute.
    pub fn u32(&mut self, kind: u16, value: u32) -> &mut NetlinkMessage {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) -> &mut NetlinkMessage {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    /// Appends a nested attribute whose contents `fill` writes.
    pub fn nested(
        &mut self,
        kind: u16,
        fill: impl FnOnce(&mut NetlinkMessage),
    ) -> &mut NetlinkMessage {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        fill(self);
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.bytes[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }
}

/// An `AF_NETLINK`/`NETLINK_ROUTE` socket for request-and-acknowledge use.
#[derive(Debug)]
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

impl RouteSocket {
    /// Opens the socket.
    pub fn open() -> io::Result<RouteSocket> {
        // SAFETY: plain socket(2) call with constant arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RouteSocket { fd, seq: 1 })
    }

    /// Sends one request (with `NLM_F_REQUEST | NLM_F_ACK` added to `flags`)
    /// and waits for its acknowledgement; a negative ack is the error.
    pub fn request(&mut self, kind: u16, flags: u16, body: &NetlinkMessage) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = 16 + body.bytes.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body.bytes);
        // SAFETY: `msg` is a live buffer of `msg.len()` bytes; a null
        // address sends to the kernel, which is what a netlink socket
        // without a peer set does.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: `buf` is writable for `buf.len()` bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(result) = find_ack(&buf[..n as usize], seq) {
                return result;
            }
        }
    }
}

/// The acknowledgement of request `seq` among the messages in `buf`.
fn find_ack(buf: &[u8], seq: u32) -> Option<io::Result<()>> {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let word = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or([0; 4]));
        let len = word(off) as usize;
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if len < 16 || off + len > buf.len() {
            return Some(Err(super::invalid("malformed netlink reply")));
        }
        if kind == NLMSG_ERROR && word(off + 8) == seq && len >= 20 {
            let errno = word(off + 16) as i32;
            return Some(if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-errno))
            });
        }
        off += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_flag() {
        let mut m = NetlinkMessage::new(&[1, 2, 3]);
        m.nested(43, |m| {
            m.u32(1, 7);
        });
        // fixed (padded to 4) + nested header + one u32 attribute
        assert_eq!(m.bytes.len(), 4 + 4 + 8);
        assert_eq!(&m.bytes[4..6], &12u16.to_ne_bytes());
        assert_eq!(&m.bytes[6..8], &(43u16 | NLA_F_NESTED).to_ne_bytes());
        assert_eq!(&m.bytes[8..10], &8u16.to_ne_bytes());
    }

    #[test]
    fn acks_are_matched_by_sequence_and_carry_errno() {
        let ack = |seq: u32, err: i32| {
            let mut b = Vec::new();
            b.extend_from_slice(&36u32.to_ne_bytes());
            b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            b.extend_from_slice(&0u16.to_ne_bytes());
            b.extend_from_slice(&seq.to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(&err.to_ne_bytes());
            b.extend_from_slice(&[0; 16]);
            b
        };
        assert!(find_ack(&ack(3, 0), 4).is_none());
        assert!(find_ack(&ack(4, 0), 4).unwrap().is_ok());
        let e = find_ack(&ack(4, -libc::EBUSY), 4).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        assert!(find_ack(&[0; 20], 1).unwrap().is_err());
    }
}
