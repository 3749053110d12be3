//! libbpf-bootstrap's `bootstrap`, in Rust with a bpfkit skeleton: every
//! process exec and exit, with the exit code and, for exits, how long the
//! process lived. `-d MS` reports only processes that lived at least MS.
//!
//! ```text
//! TIME     EVENT COMM             PID     PPID    FILENAME/EXIT CODE
//! 12:01:02 EXEC  true             4121    4100    /usr/bin/true
//! 12:01:02 EXIT  true             4121    4100    [0] (1ms)
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bpfkit::{Record, RingBuf};
use bpfkit_examples::bootstrap::{types::event, BootstrapSkel};

fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Wall-clock time of day, UTC, as the C example's `strftime("%H:%M:%S")`.
fn time_of_day() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
}

fn print_event(e: &event) {
    let (pid, ppid) = (e.pid as i32, e.ppid as i32);
    let comm = c_str(&e.comm);
    if e.exit_event != 0 {
        let mut line = format!(
            "{:<8} {:<5} {:<16} {:<7} {:<7} [{}]",
            time_of_day(),
            "EXIT",
            comm,
            pid,
            ppid,
            e.exit_code
        );
        if e.duration_ns != 0 {
            line.push_str(&format!(" ({}ms)", e.duration_ns / 1_000_000));
        }
        println!("{line}");
    } else {
        println!(
            "{:<8} {:<5} {:<16} {:<7} {:<7} {}",
            time_of_day(),
            "EXEC",
            comm,
            pid,
            ppid,
            c_str(&e.filename)
        );
    }
}

fn parse_args() -> Result<u64, String> {
    let mut min_duration_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-d" | "--duration" => {
                let v = args.next().ok_or("-d needs a number of milliseconds")?;
                min_duration_ms = v
                    .parse()
                    .map_err(|_| format!("-d {v}: not a number of milliseconds"))?;
            }
            "-h" | "--help" => {
                println!("usage: bootstrap [-d MIN_DURATION_MS]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(min_duration_ms)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let min_duration_ms = parse_args()?;
    // Open, set the .rodata knob, load, attach: the skeleton lifecycle.
    let mut open = BootstrapSkel::open();
    open.rodata.min_duration_ns = min_duration_ms * 1_000_000;
    let mut skel = open.load()?;
    let _links = skel.attach()?;
    let mut events = RingBuf::new(skel.ebpf.take_map("rb")?)?;

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;

    println!(
        "{:<8} {:<5} {:<16} {:<7} {:<7} FILENAME/EXIT CODE",
        "TIME", "EVENT", "COMM", "PID", "PPID"
    );
    while !stop.load(Ordering::Relaxed) {
        if let Some(record) = events.next_timeout(Duration::from_millis(100))? {
            match record.read::<event>() {
                Some(e) => print_event(&e),
                None => eprintln!("bootstrap: short record of {} bytes", record.len()),
            }
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            if !text.contains(&c.to_string()) {
                text.push_str(&format!(": {c}"));
            }
            cause = c.source();
        }
        eprintln!("bootstrap: {text}");
        std::process::exit(1);
    }
}
