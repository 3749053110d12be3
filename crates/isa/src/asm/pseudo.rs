//! The bracketed forms of `lddw` immediates that refer to maps, kernel
//! variables or functions, shared by both syntaxes. They follow what bpftool
//! prints for loaded programs, with `fd`/`idx` naming how the map is found:
//! `map[fd:3]`, `map[fd:3][0]+8`, `map[idx:1]`, `map[idx:1][0]+8`,
//! `btf_var[id:42,fd:0]`, `func[pc+4]` (or `func[label]`).

use super::lex::Cursor;
use super::{target, AsmError, Target};
use crate::insn::Imm64;

/// Reads a pseudo immediate if the line continues with one.
pub(crate) fn try_parse<'a>(
    cur: &mut Cursor<'a>,
) -> Result<Option<(Imm64, Option<Target<'a>>)>, AsmError> {
    let line = cur.line;
    if cur.eat_word("map") {
        cur.expect("[", "`[`")?;
        let by_idx = if cur.eat_word("fd") {
            false
        } else if cur.eat_word("idx") {
            true
        } else {
            return Err(cur.expected("`fd` or `idx`"));
        };
        cur.expect(":", "`:`")?;
        let n = cur.number()?.imm32(line, true)?;
        cur.expect("]", "`]`")?;
        let value_offset = if cur.eat("[") {
            cur.expect("0", "`0`")?;
            cur.expect("]", "`]`")?;
            cur.expect("+", "`+`")?;
            Some(cur.number()?.imm32(line, true)? as u32)
        } else {
            None
        };
        let imm = match (by_idx, value_offset) {
            (false, None) => Imm64::MapFd(n),
            (false, Some(offset)) => Imm64::MapValue { fd: n, offset },
            (true, None) => Imm64::MapIdx(n),
            (true, Some(offset)) => Imm64::MapIdxValue { idx: n, offset },
        };
        return Ok(Some((imm, None)));
    }
    if cur.eat_word("btf_var") {
        cur.expect("[", "`[`")?;
        cur.expect("id", "`id`")?;
        cur.expect(":", "`:`")?;
        let btf_id = cur.number()?.imm32(line, true)?;
        cur.expect(",", "`,`")?;
        cur.expect("fd", "`fd`")?;
        cur.expect(":", "`:`")?;
        let btf_obj_fd = cur.number()?.imm32(line, true)?;
        cur.expect("]", "`]`")?;
        return Ok(Some((Imm64::BtfVar { btf_id, btf_obj_fd }, None)));
    }
    if cur.eat_word("func") {
        cur.expect("[", "`[`")?;
        let t = target(cur, true)?;
        cur.expect("]", "`]`")?;
        return Ok(Some((Imm64::Func(0), Some(t))));
    }
    Ok(None)
}
