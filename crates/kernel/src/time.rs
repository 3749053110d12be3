//! The kernel's clocks: the monotonic one `bpf_ktime_get_ns()` reads, so
//! user space can age what BPF programs timestamp, and the boot time that
//! turns the kernel's since-boot stamps (a program's load time) into dates.

/// One reading of `clock` as (seconds, nanoseconds); `None` if it fails.
fn read_clock(clock: libc::clockid_t) -> Option<(i64, i64)> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    // On 32-bit targets the fields are narrower; widen them.
    #[allow(clippy::unnecessary_cast)]
    let ts_pair = (ts.tv_sec as i64, ts.tv_nsec as i64);
    (rc == 0).then_some(ts_pair)
}

/// Nanoseconds of `CLOCK_MONOTONIC` (the value `bpf_ktime_get_ns()` would
/// return now).
pub fn ktime_ns() -> u64 {
    read_clock(libc::CLOCK_MONOTONIC).map_or(0, |(s, ns)| s as u64 * 1_000_000_000 + ns as u64)
}

/// Seconds since the Unix epoch of a moment given as nanoseconds since boot
/// (`CLOCK_BOOTTIME`, as `bpf_prog_info.load_time` is), computed as
/// bpftool's `print_boot_time` does: the wall clock minus the boot clock,
/// read now, plus the stamp, truncated to whole seconds. `None` if the
/// clocks cannot be read.
pub fn boot_ns_to_unix_secs(since_boot_ns: u64) -> Option<i64> {
    let real = read_clock(libc::CLOCK_REALTIME)?;
    let boot = read_clock(libc::CLOCK_BOOTTIME)?;
    Some(unix_secs_from(real, boot, since_boot_ns))
}

/// bpftool's arithmetic: whole seconds of the clocks' difference, plus the
/// nanosecond parts' difference and the stamp divided down (C's truncating
/// division).
fn unix_secs_from(real: (i64, i64), boot: (i64, i64), since_boot_ns: u64) -> i64 {
    let frac = i128::from(real.1 - boot.1) + i128::from(since_boot_ns);
    (real.0 - boot.0) + (frac / 1_000_000_000) as i64
}

/// The local time zone's offset from UTC in seconds at `unix_secs`
/// (`tm_gmtoff` of `localtime_r`), 0 if it cannot be had.
pub fn local_utc_offset_secs(unix_secs: i64) -> i64 {
    let t = unix_secs as libc::time_t;
    // SAFETY: `tm` is plain old data; an all-zero value is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r writes only `tm`.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
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

    #[test]
    fn now_since_boot_is_now_since_the_epoch() {
        let (s, ns) = super::read_clock(libc::CLOCK_BOOTTIME).unwrap();
        let boot_now = s as u64 * 1_000_000_000 + ns as u64;
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let got = super::boot_ns_to_unix_secs(boot_now).unwrap();
        assert!((got - unix_now).abs() <= 1, "{got} vs {unix_now}");
        // Booted 1000.9 s after the epoch (real 1100.2, boot 99.3): a stamp
        // 2.05 s after boot is in second 1002, one 2.15 s after in 1003.
        let (real, boot) = ((1100, 200_000_000), (99, 300_000_000));
        assert_eq!(super::unix_secs_from(real, boot, 2_050_000_000), 1002);
        assert_eq!(super::unix_secs_from(real, boot, 2_150_000_000), 1003);
        assert_eq!(super::unix_secs_from(real, boot, 3_602_150_000_000), 4603);
    }
}
