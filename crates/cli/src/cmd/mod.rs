//! One module per subcommand.

pub mod asm;
pub mod btf;
pub mod capture;
pub mod conformance;
pub mod disasm;
pub mod feature;
pub mod filter;
pub mod gen;
pub mod inspect;
pub mod iter;
pub mod jit;
pub mod load;
pub mod map;
pub mod prog;
pub mod run;
pub mod verify;

/// Parses hex bytes (`0a0b`, `0a 0b`, `0x0a0b`), naming `what` in errors.
///
/// Any text is accepted as input: a character that is not a hex digit (a
/// non-ASCII one included) is an error naming it and its offset, counted in
/// characters from the start of `text`.
pub fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut digits: Vec<(usize, char)> = text
        .chars()
        .enumerate()
        .filter(|(_, c)| !c.is_whitespace())
        .collect();
    if let [(_, '0'), (_, 'x' | 'X'), ..] = digits[..] {
        digits.drain(..2);
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks(2) {
        let mut byte = 0u8;
        for &(offset, c) in pair {
            let Some(nibble) = c.to_digit(16) else {
                let shown: String = pair.iter().map(|&(_, c)| c).collect();
                let code = if c.is_ascii_graphic() {
                    String::new()
                } else {
                    format!(" (U+{:04X})", u32::from(c))
                };
                anyhow::bail!(
                    "{what}: `{shown}` is not hex: character `{}`{code} at offset {offset} is not a hex digit",
                    c.escape_debug()
                );
            };
            // A hex digit is below 16, so it fits a nibble.
            byte = (byte << 4) | nibble as u8;
        }
        bytes.push(byte);
    }
    if digits.len() % 2 != 0 {
        anyhow::bail!("{what}: odd number of hex digits ({})", digits.len());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(parse_hex("0a0b", "x").unwrap(), [0x0a, 0x0b]);
        assert_eq!(parse_hex(" 0a 0B\n", "x").unwrap(), [0x0a, 0x0b]);
        assert_eq!(parse_hex("0x0a0b", "x").unwrap(), [0x0a, 0x0b]);
        assert_eq!(parse_hex("", "x").unwrap(), [] as [u8; 0]);
    }

    #[test]
    fn non_ascii_input_is_an_error_naming_the_character_and_offset() {
        let err = parse_hex("aé", "--mem").unwrap_err().to_string();
        assert_eq!(
            err,
            "--mem: `aé` is not hex: character `é` (U+00E9) at offset 1 is not a hex digit"
        );
        let err = parse_hex("00 1\u{20ac}", "memory").unwrap_err().to_string();
        assert!(
            err.contains("character `\u{20ac}` (U+20AC) at offset 4"),
            "{err}"
        );
        let err = parse_hex("0g", "program").unwrap_err().to_string();
        assert!(err.contains("character `g` at offset 1"), "{err}");
        let err = parse_hex("abc", "program").unwrap_err().to_string();
        assert_eq!(err, "program: odd number of hex digits (3)");
    }
}
