//! Programs on perf events: sampling (`SEC("perf_event")`), and the shared
//! step that puts any program on a perf event (tracepoints, uprobes).

use std::os::fd::{AsFd, OwnedFd};

use bpfkit_abi::AttachType;

use super::Link;
use crate::error::{Error, Result};
use crate::prog::Program;
use crate::sys::{
    link_create, perf_event_open, perf_ioctl, LinkExtra, LinkTarget, PerfEventAttr, PerfIoctl,
};
use bpfkit_abi::perf;

/// `perf_event_attr.freq`: `sample_period_or_freq` is a frequency.
const ATTR_FREQ: u64 = 1 << 10;

/// The perf event a sampling program runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfEventConfig {
    /// `PERF_TYPE_*`.
    pub type_: u32,
    /// The event within the type (`PERF_COUNT_SW_CPU_CLOCK`, ...).
    pub config: u64,
    /// Samples per second (`freq`), or one sample every `Period(n)` events.
    pub rate: SampleRate,
}

/// How often a sampling event fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRate {
    /// About this many samples per second (the kernel adjusts the period).
    Frequency(u64),
    /// One sample every this many events.
    Period(u64),
}

impl PerfEventConfig {
    /// The `cpu-clock` software event at `hz` samples per second: what
    /// profilers and runqlen use, available even in VMs without a PMU.
    pub fn cpu_clock(hz: u64) -> PerfEventConfig {
        PerfEventConfig {
            type_: perf::TYPE_SOFTWARE,
            config: perf::COUNT_SW_CPU_CLOCK,
            rate: SampleRate::Frequency(hz),
        }
    }

    /// The hardware `cycles` event at `hz` samples per second (needs a PMU).
    pub fn cpu_cycles(hz: u64) -> PerfEventConfig {
        PerfEventConfig {
            type_: perf::TYPE_HARDWARE,
            config: perf::COUNT_HW_CPU_CYCLES,
            rate: SampleRate::Frequency(hz),
        }
    }

    fn attr(&self) -> PerfEventAttr {
        let (value, flags) = match self.rate {
            SampleRate::Frequency(hz) => (hz, ATTR_FREQ),
            SampleRate::Period(n) => (n, 0),
        };
        PerfEventAttr {
            type_: self.type_,
            config: self.config,
            sample_period_or_freq: value,
            flags,
            ..Default::default()
        }
    }
}

/// Puts `prog` on an open perf event: a perf-event `bpf_link` (5.15+), or
/// `PERF_EVENT_IOC_SET_BPF` on kernels without one.
pub(crate) fn attach_to_event(prog: &Program, event: OwnedFd, description: String) -> Result<Link> {
    match link_create(
        prog.as_fd(),
        LinkTarget::Fd(event.as_fd()),
        AttachType::PerfEvent.as_u32(),
        0,
        &LinkExtra::PerfEvent { cookie: 0 },
    ) {
        Ok(fd) => Ok(Link::bpf_link(fd, vec![event], description)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(524)) => {
            perf_ioctl(event.as_fd(), PerfIoctl::SetBpf(prog.fd().as_fd()))
                .and_then(|()| perf_ioctl(event.as_fd(), PerfIoctl::Enable))
                .map_err(|e| Error::sys(format!("attach `{}` to {description}", prog.name()), e))?;
            Ok(Link::perf_event_ioctl(event, description))
        }
        Err(e) => Err(Error::sys(
            format!("attach `{}` to {description}", prog.name()),
            e,
        )),
    }
}

/// Attaches a `perf_event` program to one sampling event on `cpu` (every
/// process on it).
pub fn attach_perf_event(prog: &Program, config: &PerfEventConfig, cpu: usize) -> Result<Link> {
    let description = format!(
        "perf_event type {} config {} on cpu {cpu}",
        config.type_, config.config
    );
    let event = perf_event_open(&config.attr(), -1, cpu as i32).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) || e.raw_os_error() == Some(libc::EOPNOTSUPP) {
            Error::Unsupported(format!(
                "perf_event_open for {description}: this machine has no such event ({e})"
            ))
        } else {
            Error::sys(format!("perf_event_open for {description}"), e)
        }
    })?;
    attach_to_event(prog, event, description)
}

/// Attaches a `perf_event` program on every online CPU, one link each.
pub fn attach_perf_event_all_cpus(prog: &Program, config: &PerfEventConfig) -> Result<Vec<Link>> {
    crate::fs::online_cpus()
        .into_iter()
        .map(|cpu| attach_perf_event(prog, config, cpu))
        .collect()
}
