//! A bounded, deterministic mutation fuzzer on the stable toolchain.
//!
//! cargo-fuzz needs nightly and libFuzzer; CI has neither. Each crate's
//! `tests/fuzz_replay.rs` includes this file (`#[path]`) and runs every
//! cargo-fuzz target's check function (the same function the libFuzzer
//! target calls, in `fuzz/checks/`) over its fixtures and mutations of them.
//! There is no coverage feedback: the seeds carry the structure, and stacked
//! byte-level mutations (flips, interesting values, lengths, truncation,
//! splicing, dictionary tokens) explore around them.
//!
//! Deterministic: iteration `i` of base seed `s` is always the same input, so a
//! finding is reproduced with `BPFKIT_FUZZ_SEED=s BPFKIT_FUZZ_ITER=i`, or
//! with the printed hex as `BPFKIT_FUZZ_INPUT=<hex>`, running only its
//! target: `cargo test -p <crate> --test fuzz_replay -- --exact fuzz_<target>`.
//!
//! Environment:
//! - `BPFKIT_FUZZ_ITERS`: iterations per target (default: the target's own,
//!   a tenth of it in debug builds).
//! - `BPFKIT_FUZZ_SEED`: base seed (default: fixed per target).
//! - `BPFKIT_FUZZ_ITER`: run only this iteration.
//! - `BPFKIT_FUZZ_INPUT`: run only this input, given as hex.
//! - `BPFKIT_FUZZ_SLOW_MS`: an input running longer is a finding (default
//!   1000 in release, 5000 in debug builds).
//! - `BPFKIT_FUZZ_EXPORT_SEEDS=<dir>`: write each target's seeds to
//!   `<dir>/<target>/` instead of fuzzing (a corpus for cargo-fuzz).
//!
//! Findings (panics, failed properties, slow inputs) are collected, one per
//! panic location and kind of message, keeping the shortest input; the test fails at the end with
//! all of them. An input that does not finish at all is reported by a
//! watchdog thread, which then exits the process.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};

/// How a target's inputs are shaped, which steers the mutator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// Binary data: random bytes and binary integers.
    Binary,
    /// Text: printable ASCII, decimal and hex numbers as text.
    Text,
}

/// One fuzz target as the driver runs it.
pub struct Target {
    /// Name, as in the cargo-fuzz target.
    pub name: &'static str,
    /// Starting inputs; the empty input is always added.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens worth inserting (keywords, magic numbers).
    pub dictionary: Vec<Vec<u8>>,
    /// Iterations in release builds when `BPFKIT_FUZZ_ITERS` is unset.
    pub default_iters: u64,
    /// Mutated inputs are cut to this length.
    pub max_len: usize,
    /// Input shape.
    pub shape: Shape,
    /// Inserted, deleted and truncated chunks are a multiple of this most of
    /// the time, so what follows keeps its alignment (8 for instruction
    /// streams: a ragged length only reaches the length check).
    pub granule: usize,
    /// Applied to half of the mutated inputs: repairs what the format
    /// checks first (lengths in a header, say), so mutations reach deeper.
    pub fixup: Option<fn(&mut Vec<u8>)>,
    /// The check: panics on a finding; returns whether the input was
    /// accepted (parsed), which the driver counts.
    pub check: fn(&[u8]) -> bool,
}

/// The repository root (this file's crate is two levels below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every committed BPF ELF object: `crates/*/tests/fixtures/**.o` and `bpf/obj/*.o`.
pub fn fixture_objects() -> Vec<(PathBuf, Vec<u8>)> {
    let root = repo_root();
    let mut paths = Vec::new();
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        paths.extend(files_under(&krate.path().join("tests/fixtures"), ".o"));
    }
    paths.extend(files_under(&root.join("bpf/obj"), ".o"));
    paths.sort();
    assert!(!paths.is_empty(), "no fixture objects found");
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// One program of the bpf_conformance suite.
pub struct ConformanceCase {
    /// File name.
    pub name: String,
    /// The `-- asm` section (uBPF syntax).
    pub asm: String,
    /// The `-- mem` section as bytes.
    pub mem: Vec<u8>,
}

/// The bpf_conformance programs under `<repo>/../shared`, when present.
pub fn conformance_cases() -> Vec<ConformanceCase> {
    let dir = repo_root().join("../shared/conformance/bpf_conformance/tests");
    let mut out = Vec::new();
    for p in files_under(&dir, ".data") {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let mut sections: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("-- ") {
                current = Some(name.trim());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if let Some(name) = current {
                let s = sections.entry(name).or_default();
                s.push_str(line);
                s.push('\n');
            }
        }
        let mem = sections
            .get("mem")
            .map(|m| {
                m.split_whitespace()
                    .filter_map(|b| u8::from_str_radix(b, 16).ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(asm) = sections.remove("asm") {
            out.push(ConformanceCase {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                asm,
                mem,
            });
        }
    }
    out
}

/// The sections of an ELF64 object, as (name, `sh_flags`, contents), for
/// collecting seeds from fixtures. `None` if it is not a readable ELF64.
pub fn elf_sections(bytes: &[u8]) -> Option<Vec<(String, u64, Vec<u8>)>> {
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 {
        return None;
    }
    let big = *bytes.get(5)? == 2;
    let u16_at = |o: usize| -> Option<u64> {
        let b: [u8; 2] = bytes.get(o..o + 2)?.try_into().ok()?;
        Some(u64::from(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    };
    let u32_at = |o: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(o..o + 4)?.try_into().ok()?;
        Some(u64::from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    };
    let u64_at = |o: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(o..o + 8)?.try_into().ok()?;
        Some(if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    };
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::try_from(u16_at(0x3a)?).ok()?;
    let shnum = usize::try_from(u16_at(0x3c)?).ok()?;
    let shstrndx = usize::try_from(u16_at(0x3e)?).ok()?;
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let contents = |i: usize| -> Option<&[u8]> {
        let h = header(i)?;
        if u32_at(h + 4)? == 8 {
            return Some(&[]); // SHT_NOBITS
        }
        let off = usize::try_from(u64_at(h + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(h + 0x20)?).ok()?;
        bytes.get(off..off.checked_add(size)?)
    };
    let names = contents(shstrndx)?;
    let mut out = Vec::new();
    for i in 1..shnum {
        let h = header(i)?;
        let name_off = usize::try_from(u32_at(h)?).ok()?;
        let name = names.get(name_off..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            u64_at(h + 8)?,
            contents(i)?.to_vec(),
        ));
    }
    Some(out)
}

/// `SHF_EXECINSTR`: a section holding code.
pub const SHF_EXECINSTR: u64 = 0x4;

/// SplitMix64: small, fast, and fully determined by its seed.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for one (base seed, iteration) pair.
    pub fn new(seed: u64, iteration: u64) -> Rng {
        let mut r = Rng(seed ^ iteration.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next();
        r
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    4,
    7,
    8,
    16,
    24,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

const TEXT_BYTES: &[u8] =
    b" \n\t\n0123456789abcdefxABCDEFrw+-*/%&|^<>=!()[]{},;:.#_\"'sxulhbdgoifmnv";

/// The mutator and seed pool of one target.
pub struct Mutator {
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
    max_len: usize,
    shape: Shape,
    granule: usize,
    fixup: Option<fn(&mut Vec<u8>)>,
    base_seed: u64,
}

impl Mutator {
    /// A binary mutator over `seeds` with no dictionary, for testing the
    /// driver itself.
    pub fn for_test(seeds: Vec<Vec<u8>>, base_seed: u64) -> Mutator {
        Mutator {
            seeds,
            dictionary: Vec::new(),
            max_len: 4096,
            shape: Shape::Binary,
            granule: 8,
            fixup: None,
            base_seed,
        }
    }

    /// Iteration `i`'s input: the seeds themselves first, then stacked mutations.
    pub fn input(&self, iteration: u64) -> Vec<u8> {
        if let Some(seed) = usize::try_from(iteration)
            .ok()
            .and_then(|i| self.seeds.get(i))
        {
            return seed.clone();
        }
        let mut rng = Rng::new(self.base_seed, iteration);
        let mut data = self.seeds[rng.below(self.seeds.len())].clone();
        let scale = rng.below(4);
        let rounds = 1 + rng.below(1 << scale);
        for _ in 0..rounds {
            self.mutate(&mut rng, &mut data);
        }
        data.truncate(self.max_len);
        if let Some(fixup) = self.fixup {
            if rng.one_in(2) {
                fixup(&mut data);
            }
        }
        data
    }

    fn random_byte(&self, rng: &mut Rng) -> u8 {
        match self.shape {
            Shape::Binary => rng.next() as u8,
            Shape::Text => TEXT_BYTES[rng.below(TEXT_BYTES.len())],
        }
    }

    fn interesting(&self, rng: &mut Rng, data: &[u8]) -> u64 {
        let len = data.len() as u64;
        match rng.below(4) {
            0 => len.wrapping_add(rng.below(5) as u64).wrapping_sub(2),
            1 => rng.next() >> rng.below(64),
            _ => INTERESTING[rng.below(INTERESTING.len())],
        }
    }

    /// A position, aligned to 8 or 4 half of the time (instructions, BTF records).
    fn pos(rng: &mut Rng, len: usize) -> usize {
        let p = rng.below(len);
        match rng.below(4) {
            0 => p & !7,
            1 => p & !3,
            _ => p,
        }
    }

    /// A length in `1..=max` for inserted or deleted chunks, most of the
    /// time rounded up to whole granules, so what follows keeps its alignment.
    fn chunk(&self, rng: &mut Rng, max: usize) -> usize {
        let n = 1 + rng.below(max);
        if self.granule > 1 && !rng.one_in(4) {
            n.div_ceil(self.granule) * self.granule
        } else {
            n
        }
    }

    fn mutate(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        if data.is_empty() {
            let n = 1 + rng.below(16);
            data.extend((0..n).map(|_| self.random_byte(rng)));
            return;
        }
        let len = data.len();
        match rng.below(12) {
            // Flip one bit.
            0 => {
                let p = rng.below(len);
                let bit = rng.below(8);
                data[p] ^= 1 << bit;
                if self.shape == Shape::Text && !data[p].is_ascii() {
                    data[p] = self.random_byte(rng);
                }
            }
            // One byte set to a random or boundary value.
            1 => {
                let p = rng.below(len);
                data[p] = match (self.shape, rng.below(2)) {
                    (Shape::Binary, 0) => [0, 1, 0x7f, 0x80, 0xff][rng.below(5)],
                    _ => self.random_byte(rng),
                };
            }
            // An interesting integer, written in place.
            2 => {
                let v = self.interesting(rng, data);
                let p = Self::pos(rng, len);
                match self.shape {
                    Shape::Binary => {
                        let width = [1, 2, 4, 8][rng.below(4)];
                        let bytes = if rng.one_in(2) {
                            v.to_le_bytes()
                        } else {
                            v.to_be_bytes()
                        };
                        let bytes = if rng.one_in(2) {
                            &bytes[..width]
                        } else {
                            &bytes[8 - width..]
                        };
                        let end = (p + width).min(len);
                        data[p..end].copy_from_slice(&bytes[..end - p]);
                    }
                    Shape::Text => {
                        let text = match rng.below(3) {
                            0 => format!("{v:#x}"),
                            1 => format!("-{v}"),
                            _ => format!("{v}"),
                        };
                        let end = (p + rng.below(8)).min(len);
                        data.splice(p..end, text.into_bytes());
                    }
                }
            }
            // Truncate.
            3 => {
                let cut = self.chunk(rng, len).min(len);
                data.truncate(len - cut);
            }
            // Delete a range.
            4 => {
                let p = rng.below(len);
                let n = self.chunk(rng, 64).min(len - p);
                data.drain(p..p + n);
            }
            // Insert random bytes, or one byte repeated.
            5 => {
                let p = rng.below(len + 1);
                let n = self.chunk(rng, 32);
                let bytes: Vec<u8> = if rng.one_in(2) {
                    vec![self.random_byte(rng); n]
                } else {
                    (0..n).map(|_| self.random_byte(rng)).collect()
                };
                data.splice(p..p, bytes);
            }
            // Duplicate or move a chunk within the input.
            6 => {
                let a = Self::pos(rng, len);
                let n = self.chunk(rng, 64).min(len - a);
                let chunk = data[a..a + n].to_vec();
                let b = Self::pos(rng, len);
                if rng.one_in(2) {
                    data.splice(b..b, chunk);
                } else {
                    let end = (b + n).min(len);
                    data[b..end].copy_from_slice(&chunk[..end - b]);
                }
            }
            // Splice: this input's head, another seed's tail.
            7 => {
                let other = &self.seeds[rng.below(self.seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            // Insert a chunk of another seed.
            8 => {
                let other = &self.seeds[rng.below(self.seeds.len())];
                if !other.is_empty() {
                    let a = Self::pos(rng, other.len());
                    let n = self.chunk(rng, 256).min(other.len() - a);
                    let p = rng.below(len + 1);
                    data.splice(p..p, other[a..a + n].iter().copied());
                }
            }
            // A dictionary token, inserted or overwriting.
            9 | 10 if !self.dictionary.is_empty() => {
                let token = &self.dictionary[rng.below(self.dictionary.len())];
                let p = rng.below(len + 1);
                if rng.one_in(2) {
                    data.splice(p..p, token.iter().copied());
                } else {
                    let end = (p + token.len()).min(len);
                    data.splice(p..end, token.iter().copied());
                }
            }
            // Text: a line replaced by, or joined with, a line of another
            // seed, so most results are still valid programs.
            _ if self.shape == Shape::Text => {
                let other = &self.seeds[rng.below(self.seeds.len())];
                let lines: Vec<&[u8]> = other.split(|&b| b == b'\n').collect();
                let line = lines[rng.below(lines.len())].to_vec();
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        data.iter()
                            .enumerate()
                            .filter(|(_, &b)| b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .collect();
                let start = starts[rng.below(starts.len())];
                let end = data[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |p| start + p);
                if rng.one_in(2) {
                    data.splice(start..end, line);
                } else {
                    let mut line = line;
                    line.push(b'\n');
                    data.splice(start..start, line);
                }
            }
            // Swap two aligned 8-byte slots (instructions, records).
            _ => {
                if len >= 16 {
                    let a = rng.below(len / 8) * 8;
                    let b = rng.below(len / 8) * 8;
                    for i in 0..8 {
                        data.swap(a + i, b + i);
                    }
                } else {
                    data.reverse();
                }
            }
        }
    }
}

/// A problem found by the driver.
struct Finding {
    what: String,
    iteration: u64,
    input: Vec<u8>,
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(
        s.len() % 2 == 0,
        "BPFKIT_FUZZ_INPUT: odd number of hex digits"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("BPFKIT_FUZZ_INPUT: not hex"))
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

std::thread_local! {
    /// Set while a check runs on this thread: the panic hook records instead of printing.
    static CAPTURE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PANIC: std::cell::RefCell<Option<(String, String)>> =
        const { std::cell::RefCell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CAPTURE.with(|c| c.get()) {
                return previous(info);
            }
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "<unknown>".into());
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "<non-string panic>".into());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((location, message)));
        }));
    });
}

/// Runs `check` on `input`: `Err((location, message))` if it panicked.
fn run_one(check: fn(&[u8]) -> bool, input: &[u8]) -> Result<bool, (String, String)> {
    CAPTURE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| check(input)));
    CAPTURE.with(|c| c.set(false));
    result.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| ("<unknown>".into(), "panic".into()))
    })
}

const IDLE: u64 = u64::MAX;

/// Runs a target: its seeds, then mutations, for its iteration count.
/// Panics with every finding if there are any.
pub fn run(target: Target) {
    let slow = Duration::from_millis(
        env_u64("BPFKIT_FUZZ_SLOW_MS").unwrap_or(if cfg!(debug_assertions) { 5000 } else { 1000 }),
    );
    run_with_slow_limit(target, slow);
}

/// [`run`] with the time an input may take given rather than read from
/// `BPFKIT_FUZZ_SLOW_MS`.
pub fn run_with_slow_limit(target: Target, slow: Duration) {
    install_hook();
    let name = target.name;

    if let Some(dir) = std::env::var_os("BPFKIT_FUZZ_EXPORT_SEEDS") {
        // A starting corpus for cargo-fuzz: `fuzz/corpus/<target>/`.
        let dir = PathBuf::from(dir).join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (i, seed) in target.seeds.iter().enumerate() {
            let path = dir.join(format!("seed-{i:05}"));
            std::fs::write(&path, seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        println!(
            "fuzz {name}: {} seeds written to {}",
            target.seeds.len(),
            dir.display()
        );
        return;
    }

    if let Ok(h) = std::env::var("BPFKIT_FUZZ_INPUT") {
        let input = unhex(&h);
        if let Err((location, message)) = run_one(target.check, &input) {
            panic!("fuzz {name}: BPFKIT_FUZZ_INPUT panics at {location}: {message}");
        }
        println!("fuzz {name}: BPFKIT_FUZZ_INPUT passes");
        return;
    }

    let base_seed = env_u64("BPFKIT_FUZZ_SEED").unwrap_or_else(|| {
        // Fixed per target, so targets do not walk the same random sequence.
        name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    });
    let mut seeds = target.seeds;
    seeds.push(Vec::new());
    let mutator = Arc::new(Mutator {
        seeds,
        dictionary: target.dictionary,
        max_len: target.max_len,
        shape: target.shape,
        granule: target.granule.max(1),
        fixup: target.fixup,
        base_seed,
    });
    let iterations = env_u64("BPFKIT_FUZZ_ITERS").unwrap_or(if cfg!(debug_assertions) {
        target.default_iters / 10
    } else {
        target.default_iters
    });
    let range = match env_u64("BPFKIT_FUZZ_ITER") {
        Some(i) => i..i + 1,
        None => 0..iterations.max(mutator.seeds.len() as u64),
    };

    // The watchdog: an input still running after `hang` never finishes in
    // any useful sense; report it and end the process, since the test
    // thread cannot be interrupted.
    let hang = (slow * 10).max(Duration::from_secs(30));
    let epoch = Instant::now();
    let current = Arc::new(AtomicU64::new(IDLE));
    let started_ns = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = {
        let (current, started_ns, mutator) = (current.clone(), started_ns.clone(), mutator.clone());
        std::thread::spawn(move || loop {
            match stopped.recv_timeout(Duration::from_millis(250)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let i = current.load(Ordering::Acquire);
            let since = Duration::from_nanos(started_ns.load(Ordering::Acquire));
            if i != IDLE && epoch.elapsed().saturating_sub(since) > hang {
                let input = mutator.input(i);
                eprintln!(
                    "fuzz {name}: HANG: iteration {i} (BPFKIT_FUZZ_SEED={base_seed:#x} \
                     BPFKIT_FUZZ_ITER={i}) ran over {hang:?}; {} bytes:\n{}",
                    input.len(),
                    hex(&input)
                );
                std::process::exit(101);
            }
        })
    };

    let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
    let mut record = |key: String, what: String, iteration: u64, input: Vec<u8>| {
        let f = findings.entry(key).or_insert_with(|| Finding {
            what: what.clone(),
            iteration,
            input: input.clone(),
        });
        if input.len() < f.input.len() {
            *f = Finding {
                what,
                iteration,
                input,
            };
        }
    };
    let mut slowest = (Duration::ZERO, 0);
    let start = Instant::now();
    let mut ran = 0u64;
    let mut accepted = 0u64;
    for i in range {
        let input = mutator.input(i);
        started_ns.store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        current.store(i, Ordering::Release);
        let t = Instant::now();
        let result = run_one(target.check, &input);
        let took = t.elapsed();
        current.store(IDLE, Ordering::Release);
        ran += 1;
        if took > slowest.0 {
            slowest = (took, i);
        }
        match result {
            Err((location, message)) => {
                // One finding per place and kind of message: digits vary
                // with the input, so they do not tell findings apart.
                let kind: String = message
                    .chars()
                    .filter(|c| !c.is_ascii_hexdigit())
                    .take(48)
                    .collect();
                let what = format!("panic at {location}: {message}");
                record(format!("{location} {kind}"), what, i, input);
            }
            Ok(ok) => {
                accepted += u64::from(ok);
                if took > slow {
                    let what = format!("slow: {took:?} (limit {slow:?})");
                    record("slow".into(), what, i, input);
                }
            }
        }
    }
    let _ = stop.send(());
    let _ = watchdog.join();

    println!(
        "fuzz {name}: {ran} inputs ({} seeds), {accepted} accepted, in {:?}, \
         base seed {base_seed:#x}, slowest {:?} (iteration {}), {} findings",
        mutator.seeds.len(),
        start.elapsed(),
        slowest.0,
        slowest.1,
        findings.len()
    );
    if findings.is_empty() {
        return;
    }
    let mut report = format!("fuzz {name}: {} findings\n", findings.len());
    for f in findings.values() {
        let i = f.iteration;
        let _ = writeln!(
            report,
            "\n- {}\n  iteration {i}: BPFKIT_FUZZ_SEED={base_seed:#x} BPFKIT_FUZZ_ITER={i}\n  \
             input ({} bytes): BPFKIT_FUZZ_INPUT={}",
            f.what,
            f.input.len(),
            hex(&f.input)
        );
    }
    panic!("{report}");
}
