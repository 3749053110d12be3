//! A cursor over one source line: the small set of token readers both
//! syntaxes are built from. Every reader skips leading blanks, and a failed
//! `eat`/`peek` leaves the position unchanged so parsers can try alternatives.

use alloc::string::{String, ToString};

use super::{AsmError, AsmErrorKind};
use crate::insn::{Reg, Width};

/// An integer literal as written: its value and whether it was hexadecimal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Num {
    /// The value, wide enough for any `u64` and its negation.
    pub value: i128,
    /// Written as `0x...`: such literals may name a bit pattern (`0xffffffff` as an `i32`).
    pub hex: bool,
    /// Column (1-based) where the literal starts, for range errors.
    pub column: usize,
}

impl Num {
    /// As a 32-bit immediate. Decimal must be a signed 32-bit value (unless
    /// `lenient`); hex may also be an unsigned 32-bit bit pattern.
    pub fn imm32(self, line: usize, lenient: bool) -> Result<i32, AsmError> {
        let max = if self.hex || lenient {
            u32::MAX as i128
        } else {
            i32::MAX as i128
        };
        if self.value < i32::MIN as i128 || self.value > max {
            return Err(AsmError::new(
                line,
                self.column,
                AsmErrorKind::OutOfRange {
                    what: "a 32-bit immediate",
                    value: self.value,
                },
            ));
        }
        Ok(self.value as i64 as u32 as i32)
    }

    /// As a 16-bit offset. Decimal must be a signed 16-bit value; hex may be a 16-bit pattern.
    pub fn off16(self, line: usize) -> Result<i16, AsmError> {
        let max = if self.hex {
            u16::MAX as i128
        } else {
            i16::MAX as i128
        };
        if self.value < i16::MIN as i128 || self.value > max {
            return Err(AsmError::new(
                line,
                self.column,
                AsmErrorKind::OutOfRange {
                    what: "a 16-bit offset",
                    value: self.value,
                },
            ));
        }
        Ok(self.value as i64 as u16 as i16)
    }

    /// As a 64-bit immediate: anything from `i64::MIN` to `u64::MAX`.
    pub fn imm64(self, line: usize) -> Result<u64, AsmError> {
        if self.value < i64::MIN as i128 || self.value > u64::MAX as i128 {
            return Err(AsmError::new(
                line,
                self.column,
                AsmErrorKind::OutOfRange {
                    what: "a 64-bit immediate",
                    value: self.value,
                },
            ));
        }
        Ok(self.value as u64)
    }
}

/// Reading position within one line.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// 1-based line number, for errors.
    pub line: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str, line: usize) -> Cursor<'a> {
        Cursor { text, pos: 0, line }
    }

    /// 1-based column of the next unread character (after blanks).
    pub fn column(&mut self) -> usize {
        self.skip_blanks();
        self.pos + 1
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// An error at the next unread token.
    pub fn error(&mut self, kind: AsmErrorKind) -> AsmError {
        let column = self.column();
        AsmError::new(self.line, column, kind)
    }

    /// An "expected X" error quoting what is there instead.
    pub fn expected(&mut self, what: &'static str) -> AsmError {
        let found = self.peek_token();
        self.error(AsmErrorKind::Expected { what, found })
    }

    /// The next token as text, for error messages.
    fn peek_token(&mut self) -> String {
        self.skip_blanks();
        let rest = self.rest();
        if rest.is_empty() {
            return "end of line".to_string();
        }
        let end = rest
            .char_indices()
            .find(|&(i, c)| c.is_whitespace() || (i > 0 && (c == ',' || c == ')' || c == ']')))
            .map_or(rest.len(), |(i, _)| i);
        let mut s = String::from("`");
        s.push_str(&rest[..end.max(rest.chars().next().map_or(0, char::len_utf8))]);
        s.push('`');
        s
    }

    /// The current position, to backtrack to with [`Cursor::restore_pos`].
    pub fn clone_pos(&self) -> usize {
        self.pos
    }

    pub fn restore_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Consumes a parenthesized run of hex digits such as bpftool's `(bf)`.
    pub fn eat_hex_in_parens(&mut self) -> bool {
        self.skip_blanks();
        let rest = self.rest();
        let Some(inner) = rest.strip_prefix('(') else {
            return false;
        };
        let len = inner
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(inner.len());
        if len > 0 && inner[len..].starts_with(')') {
            self.pos += len + 2;
            true
        } else {
            false
        }
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_blanks();
        self.pos == self.text.len()
    }

    /// Fails unless the whole line has been read.
    pub fn finish(&mut self) -> Result<(), AsmError> {
        if self.at_end() {
            Ok(())
        } else {
            let found = self.peek_token();
            Err(self.error(AsmErrorKind::Trailing(found)))
        }
    }

    /// Consumes `s` if the line continues with it.
    pub fn eat(&mut self, s: &str) -> bool {
        self.skip_blanks();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Consumes `s`, or fails naming `what` was expected.
    pub fn expect(&mut self, s: &str, what: &'static str) -> Result<(), AsmError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    pub fn peek(&mut self, s: &str) -> bool {
        self.skip_blanks();
        self.rest().starts_with(s)
    }

    /// Consumes the word `w` only if it is a whole word (not a prefix of a longer one).
    pub fn eat_word(&mut self, w: &str) -> bool {
        self.skip_blanks();
        let rest = self.rest();
        if rest.starts_with(w) && !rest[w.len()..].starts_with(is_word_char) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    /// An identifier: letters, digits, `_` and `.`, not starting with a digit.
    pub fn ident(&mut self) -> Option<&'a str> {
        self.skip_blanks();
        let rest = self.rest();
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '.') {
            return None;
        }
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += end;
        Some(&rest[..end])
    }

    /// True if the next token is an integer literal (optionally signed).
    pub fn at_number(&mut self) -> bool {
        self.skip_blanks();
        let r = self.rest();
        let r = r.strip_prefix(['+', '-']).unwrap_or(r);
        r.starts_with(|c: char| c.is_ascii_digit())
    }

    /// An integer literal: optional sign, then decimal or `0x` hex.
    pub fn number(&mut self) -> Result<Num, AsmError> {
        let column = self.column();
        let start = self.pos;
        let mut negative = false;
        if self.eat("-") {
            negative = true;
        } else {
            self.eat("+");
        }
        self.skip_blanks();
        let rest = self.rest();
        let (radix, digits_at) = if rest.starts_with("0x") || rest.starts_with("0X") {
            (16, 2)
        } else {
            (10, 0)
        };
        let digits = &rest[digits_at..];
        let len = digits
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(digits.len());
        let body = &digits[..len];
        let mut value: i128 = 0;
        let mut any = false;
        for c in body.chars() {
            if c == '_' {
                continue;
            }
            let Some(d) = c.to_digit(radix) else {
                self.pos = start;
                return Err(self.expected("a number"));
            };
            any = true;
            value = value * radix as i128 + d as i128;
            if value > u64::MAX as i128 {
                return Err(AsmError::new(
                    self.line,
                    column,
                    AsmErrorKind::OutOfRange {
                        what: "an integer",
                        value: if negative { -value } else { value },
                    },
                ));
            }
        }
        if !any {
            self.pos = start;
            return Err(self.expected("a number"));
        }
        self.pos += digits_at + len;
        Ok(Num {
            value: if negative { -value } else { value },
            hex: radix == 16,
            column,
        })
    }

    /// A register `rN`, `wN` (when `allow_w`), with an optional `%` prefix.
    /// Returns `None` without consuming anything if the next token is not one.
    pub fn try_reg(&mut self, allow_w: bool) -> Result<Option<(Reg, Width)>, AsmError> {
        self.skip_blanks();
        let start = self.pos;
        let column = self.pos + 1;
        self.eat("%");
        let rest = self.rest();
        let width = match rest.as_bytes().first() {
            Some(b'r') => Width::W64,
            Some(b'w') if allow_w => Width::W32,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        let digits = &rest[1..];
        let len = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if len == 0 || digits[len..].starts_with(is_word_char) {
            self.pos = start;
            return Ok(None);
        }
        let name = &self.text[start..self.pos + 1 + len];
        let reg = digits[..len]
            .parse::<u8>()
            .ok()
            .and_then(Reg::new)
            .ok_or_else(|| {
                AsmError::new(
                    self.line,
                    column,
                    AsmErrorKind::BadRegister(name.to_string()),
                )
            })?;
        self.pos += 1 + len;
        Ok(Some((reg, width)))
    }

    /// A register, or an error naming what was expected.
    pub fn reg(&mut self, allow_w: bool) -> Result<(Reg, Width), AsmError> {
        match self.try_reg(allow_w)? {
            Some(r) => Ok(r),
            None => Err(self.expected("a register")),
        }
    }
}

pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}
