//! Packet capture through an `AF_PACKET` socket: bound to one interface,
//! filtered in the kernel by a classic BPF program (`SO_ATTACH_FILTER`),
//! read with the kernel's receive timestamps, with the socket's
//! `PACKET_STATISTICS`.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use bpfkit_isa::cbpf;

/// `SOL_PACKET`.
const SOL_PACKET: libc::c_int = 263;
/// `PACKET_STATISTICS` (include/uapi/linux/if_packet.h).
const PACKET_STATISTICS: libc::c_int = 6;
/// `SO_ATTACH_FILTER` (asm-generic/socket.h).
const SO_ATTACH_FILTER: libc::c_int = 26;
/// `SO_TIMESTAMPNS_OLD`, also its control message type: a `struct timespec`
/// of the platform's `time_t`.
const SO_TIMESTAMPNS: libc::c_int = 35;
/// `ETH_P_ALL`, every protocol.
const ETH_P_ALL: u16 = 0x0003;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const [u8; 8],
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

/// What `PACKET_STATISTICS` counted since the last time it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketStats {
    /// Packets the filter accepted (delivered or dropped).
    pub packets: u32,
    /// Of those, packets dropped because the receive buffer was full.
    pub drops: u32,
}

/// `sll_pkttype` values (linux/if_packet.h).
pub mod pkt_type {
    /// To this host.
    pub const HOST: u8 = 0;
    /// Broadcast.
    pub const BROADCAST: u8 = 1;
    /// Multicast.
    pub const MULTICAST: u8 = 2;
    /// To another host (promiscuous).
    pub const OTHERHOST: u8 = 3;
    /// Sent by this host.
    pub const OUTGOING: u8 = 4;
}

/// One received packet; its bytes are the start of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to the buffer (at most its length).
    pub captured: usize,
    /// The packet's length (as the filter left it; longer than `captured`
    /// when the buffer was too short).
    pub wire_len: usize,
    /// When the kernel received it, since the epoch.
    pub timestamp: Duration,
    /// `sll_pkttype` ([`pkt_type`]).
    pub pkt_type: u8,
    /// `sll_protocol`, the EtherType, in host order.
    pub protocol: u16,
}

/// An `AF_PACKET`, `SOCK_RAW` socket: whole frames from the link-layer header.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

/// Sets `level`/`name` on `sock` to the bytes of `value`.
fn setsockopt<T>(
    sock: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the kernel reads size_of::<T>() bytes from `value`, which is
    // borrowed for the call's duration; any pointer inside it (sock_fprog's
    // filter) is the caller's live buffer.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Attaches a classic filter to any socket (`SO_ATTACH_FILTER`): the
/// kernel checks it with bpf_check_classic and refuses it with EINVAL.
pub fn attach_filter(sock: BorrowedFd<'_>, insns: &[cbpf::Insn]) -> io::Result<()> {
    let len = u16::try_from(insns.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} classic instructions are more than a sock_fprog holds",
                insns.len()
            ),
        )
    })?;
    // struct sock_filter is in host byte order.
    let order = if cfg!(target_endian = "little") {
        bpfkit_isa::ByteOrder::Little
    } else {
        bpfkit_isa::ByteOrder::Big
    };
    let raw: Vec<[u8; 8]> = insns.iter().map(|i| i.encode().to_bytes(order)).collect();
    let prog = SockFprog {
        len,
        filter: raw.as_ptr(),
    };
    // The kernel copies `len` 8-byte instructions from `raw`, which
    // outlives the call.
    setsockopt(sock, libc::SOL_SOCKET, SO_ATTACH_FILTER, &prog)
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl PacketSocket {
    /// Opens a socket capturing every protocol on `ifindex`, with `filter`
    /// (if any) attached before the socket is bound, so that no packet
    /// reaches it unfiltered; receive timestamps are on.
    pub fn open(ifindex: u32, filter: Option<&[cbpf::Insn]>) -> io::Result<PacketSocket> {
        // Protocol 0: nothing is queued until bind() names one (packet_create).
        // SAFETY: plain socket(2) call with constant arguments.
        let fd = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: a new descriptor nothing else owns.
        let sock = PacketSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        if let Some(insns) = filter {
            sock.attach_filter(insns)?;
        }
        setsockopt(sock.fd.as_fd(), libc::SOL_SOCKET, SO_TIMESTAMPNS, &1i32)?;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a live sockaddr_ll of the length passed.
        check(unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(sock)
    }

    /// Attaches (or replaces) the socket's classic filter (`SO_ATTACH_FILTER`).
    pub fn attach_filter(&self, insns: &[cbpf::Insn]) -> io::Result<()> {
        attach_filter(self.fd.as_fd(), insns)
    }

    /// Waits at most `timeout` for each [`PacketSocket::recv`] (`SO_RCVTIMEO`).
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        setsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
    }

    /// Receives one packet into `buf`; `None` when the read timeout passed
    /// or a signal interrupted the wait.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one timespec control message, u64-aligned.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>() as _;
        // SAFETY: every pointer in `msg` points at a live local (or `buf`)
        // of the length given beside it. MSG_TRUNC makes the result the
        // packet's full length while writing at most `buf.len()` bytes.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut timestamp = None;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel
        // filled, within `msg_controllen`; the timespec is read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                    let ts: libc::timespec =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                    timestamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let timestamp = match timestamp {
            Some(t) => t,
            // No control message (it should not happen): the time now.
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        };
        let wire_len = n as usize;
        Ok(Some(Received {
            captured: wire_len.min(buf.len()),
            wire_len,
            timestamp,
            pkt_type: addr.sll_pkttype,
            protocol: u16::from_be(addr.sll_protocol),
        }))
    }

    /// Reads and resets the socket's counters (`PACKET_STATISTICS`).
    pub fn statistics(&self) -> io::Result<PacketStats> {
        let mut stats = TpacketStats::default();
        let mut len = size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `stats`, a
        // live local of that size, and updates `len`.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut stats as *mut TpacketStats).cast(),
                &mut len,
            )
        })?;
        Ok(PacketStats {
            packets: stats.tp_packets,
            drops: stats.tp_drops,
        })
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
