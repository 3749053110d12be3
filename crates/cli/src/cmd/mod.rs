//! One module per subcommand.

pub mod asm;
pub mod btf;
pub mod conformance;
pub mod disasm;
pub mod feature;
pub mod inspect;
pub mod iter;
pub mod load;
pub mod map;
pub mod prog;
pub mod run;

/// Parses hex bytes (`0a0b`, `0a 0b`, `0x0a0b`), naming `what` in errors.
pub fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if digits.len() % 2 != 0 {
        anyhow::bail!("{what}: odd number of hex digits");
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .with_context(|| format!("{what}: `{}` is not hex", &digits[i..i + 2]))
        })
        .collect()
}
