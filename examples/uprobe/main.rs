//! A uprobe and a uretprobe on a function of this very program: each call's
//! arguments and result arrive through a ring buffer, and a `.bss` counter
//! counts the calls.
//!
//! ```text
//! add(1, 2) = 3
//! ...
//! bpfkit_example_add was called 5 times
//! ```

use std::time::Duration;

use bpfkit::{Record, RingBuf, UProbe};
use bpfkit_examples::uprobe::{types::call, UprobeSkel};

/// The probed function: exported unmangled, never inlined, so that it has
/// a symbol to attach to and every call goes through it.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bpfkit_example_add(a: u64, b: u64) -> u64 {
    std::hint::black_box(a + b)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let calls: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("`{n}` is not a number of calls"))?,
        None => 5,
    };
    let me = std::env::current_exe()?.display().to_string();
    let pid = Some(std::process::id());
    let mut skel = UprobeSkel::open().load()?;
    let entry: &mut UProbe = skel.on_entry()?;
    let _entry = entry.attach(&me, "bpfkit_example_add", pid)?;
    let exit: &mut UProbe = skel.on_return()?;
    let _exit = exit.attach(&me, "bpfkit_example_add", pid)?;
    let mut records = RingBuf::new(skel.ebpf.take_map("calls")?)?;

    for i in 0..calls {
        bpfkit_example_add(i, i + 1);
    }
    // Each call sends two records: its arguments, then its result.
    let mut args = Vec::new();
    for _ in 0..calls * 2 {
        let record = records
            .next_timeout(Duration::from_secs(5))?
            .ok_or("a call's record did not arrive")?;
        let c: call = record.read().ok_or("short record")?;
        if c.is_return == 0 {
            args.push((c.a, c.b));
        } else if let Some((a, b)) = args.pop() {
            println!("add({a}, {b}) = {}", c.result);
        }
    }
    println!("bpfkit_example_add was called {} times", {
        skel.bss()?.entries
    });
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("uprobe: {e}");
        std::process::exit(1);
    }
}
