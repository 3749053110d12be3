//! Printing `lddw` immediates that refer to maps, variables and functions,
//! in the bracketed form both assemblers read back.

use core::fmt;

use crate::insn::Imm64;

/// Writes the pseudo immediate, or returns `false` for a plain value.
pub(super) fn fmt_pseudo(imm: &Imm64, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    match *imm {
        Imm64::Value(_) => return Ok(false),
        Imm64::MapFd(fd) => write!(f, "map[fd:{fd}]")?,
        Imm64::MapValue { fd, offset } => write!(f, "map[fd:{fd}][0]+{offset}")?,
        Imm64::MapIdx(idx) => write!(f, "map[idx:{idx}]")?,
        Imm64::MapIdxValue { idx, offset } => write!(f, "map[idx:{idx}][0]+{offset}")?,
        Imm64::BtfVar { btf_id, btf_obj_fd } => write!(f, "btf_var[id:{btf_id},fd:{btf_obj_fd}]")?,
        Imm64::Func(rel) => write!(f, "func[pc{rel:+}]")?,
    }
    Ok(true)
}
