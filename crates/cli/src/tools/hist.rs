//! Histograms printed the way bcc and libbpf-tools print them, and as JSON.

use std::fmt::Write;

use serde::Serialize;

/// Width of the star bar for histograms with up to 32 buckets.
const BAR_WIDTH: u64 = 40;

/// One bucket of a histogram: values in `low..=high` were seen `count` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Smallest value counted in this bucket.
    pub low: u64,
    /// Largest value counted in this bucket.
    pub high: u64,
    /// How many values fell into it.
    pub count: u64,
}

/// The buckets of a power-of-two histogram: slot `i` counts values whose
/// `log2` is `i` (slot 0 holds 0 and 1), up to the last non-empty slot.
pub fn log2_buckets(slots: &[u64]) -> Vec<Bucket> {
    let Some(last) = slots.iter().rposition(|&c| c > 0) else {
        return Vec::new();
    };
    slots[..=last]
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let high = if i >= 63 {
                u64::MAX
            } else {
                (1u64 << (i + 1)) - 1
            };
            let low = if i == 0 { 0 } else { 1u64 << i };
            Bucket { low, high, count }
        })
        .collect()
}

fn bar(count: u64, max: u64, width: u64) -> String {
    let stars = (count.min(max) * width).checked_div(max).unwrap_or(0) as usize;
    let mut s = "*".repeat(stars);
    s.push_str(&" ".repeat(width as usize - stars));
    s
}

/// Formats a power-of-two histogram like libbpf-tools' `print_log2_hist`.
/// `unit` names the values (`usecs`, `bytes`). Empty histograms print nothing.
pub fn format_log2(slots: &[u64], unit: &str) -> String {
    let buckets = log2_buckets(slots);
    let mut out = String::new();
    if buckets.is_empty() {
        return out;
    }
    let wide = buckets.len() > 33;
    let (pad, label, num, width) = if wide {
        (15, 29, 20, BAR_WIDTH / 2)
    } else {
        (5, 19, 10, BAR_WIDTH)
    };
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "{:pad$}{unit:<label$} : count    distribution",
        "",
        pad = pad,
        label = label
    );
    for b in &buckets {
        let _ = writeln!(
            out,
            "{:>num$} -> {:<num$} : {:<8} |{}|",
            b.low,
            b.high,
            b.count,
            bar(b.count, max, width),
            num = num
        );
    }
    out
}

/// Formats a linear histogram (one bucket per value, as runqlen prints it).
/// Slot `i` counts the value `i`; trailing empty slots are left out.
pub fn format_linear(slots: &[u64], unit: &str) -> String {
    let mut out = String::new();
    let Some(last) = slots.iter().rposition(|&c| c > 0) else {
        return out;
    };
    let max = slots.iter().copied().max().unwrap_or(0);
    let _ = writeln!(out, "     {unit:<13} : count     distribution");
    for (i, &count) in slots[..=last].iter().enumerate() {
        let _ = writeln!(
            out,
            "        {i:<10} : {count:<8} |{}|",
            bar(count, max, BAR_WIDTH)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_matches_libbpf_tools_layout() {
        let mut slots = vec![0u64; 8];
        slots[0] = 1;
        slots[2] = 4;
        slots[3] = 2;
        let text = format_log2(&slots, "usecs");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "     usecs               : count    distribution");
        assert_eq!(
            lines[1],
            "         0 -> 1          : 1        |**********                              |"
        );
        assert_eq!(
            lines[3],
            "         4 -> 7          : 4        |****************************************|"
        );
        assert_eq!(lines.len(), 5, "stops at the last non-empty slot");
    }

    #[test]
    fn empty_histograms_print_nothing() {
        assert_eq!(format_log2(&[0, 0], "usecs"), "");
        assert_eq!(format_linear(&[], "runqlen"), "");
    }

    #[test]
    fn linear_layout() {
        let text = format_linear(&[3, 1], "runqlen");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "     runqlen       : count     distribution");
        assert_eq!(
            lines[1],
            "        0          : 3        |****************************************|"
        );
        assert_eq!(
            lines[2],
            "        1          : 1        |*************                           |"
        );
    }

    #[test]
    fn buckets_of_slots() {
        let b = log2_buckets(&[0, 0, 5]);
        assert_eq!(
            b[2],
            Bucket {
                low: 4,
                high: 7,
                count: 5
            }
        );
    }
}
