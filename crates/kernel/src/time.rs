//! The kernel's monotonic clock, the one `bpf_ktime_get_ns()` reads, so
//! user space can age what BPF programs timestamp.

/// Nanoseconds of `CLOCK_MONOTONIC` (the value `bpf_ktime_get_ns()` would
/// return now).
pub fn ktime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn ktime_advances() {
        let a = super::ktime_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::ktime_ns();
        assert!(a > 0 && b >= a + 2_000_000, "{a} {b}");
    }
}
