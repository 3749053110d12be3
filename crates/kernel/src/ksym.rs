//! `__ksym` externs: kernel variables and kfuncs an object refers to,
//! resolved as libbpf resolves them. A typed variable becomes its BTF id in
//! the kernel's BTF (`BPF_PSEUDO_BTF_ID`); a typeless one (`extern const void
//! x __ksym`) its address from `/proc/kallsyms`; a kfunc call its function's
//! BTF id. A missing `__weak` extern resolves to 0 / is left for the
//! verifier to prune, as in libbpf.

use bpfkit_btf::{Btf, Kind};
use bpfkit_isa::{CallTarget, Imm64, Insn};

use crate::error::{Error, Result};
use crate::ksyms::KernelSymbols;

/// Whether the object declares `name` without a type (`const void`).
fn typeless(local: Option<&Btf>, name: &str) -> bool {
    let Some(btf) = local else {
        return true;
    };
    let Some(var) = btf.find_by_name_kind(name, Kind::Var) else {
        return true;
    };
    let mut id = btf
        .type_by_id(var)
        .ok()
        .and_then(|t| t.type_ref())
        .unwrap_or(0);
    // const/volatile/typedef around void are still void.
    for _ in 0..16 {
        let Ok(t) = btf.type_by_id(id) else {
            return true;
        };
        match t.kind() {
            Kind::Void => return true,
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::Typedef | Kind::TypeTag => {
                id = t.type_ref().unwrap_or(0)
            }
            _ => return false,
        }
    }
    false
}

/// The address of kernel symbol `name`, from the kernel's symbol table
/// (read once per load, when an extern first needs it).
fn kallsyms_address(
    kallsyms: &std::cell::OnceCell<std::io::Result<KernelSymbols>>,
    name: &str,
) -> Result<Option<u64>> {
    let table = kallsyms
        .get_or_init(KernelSymbols::load)
        .as_ref()
        .map_err(|e| {
            Error::sys(
                "read /proc/kallsyms for a __ksym extern",
                std::io::Error::new(e.kind(), e.to_string()),
            )
        })?;
    if table.is_restricted() {
        return Err(Error::Unsupported(format!(
            "/proc/kallsyms hides addresses from this process (kptr_restrict), so \
             `{name}` cannot be resolved; run as root"
        )));
    }
    Ok(table.address_of(name))
}

/// The instruction `insn` (an `lddw` for variables, a `call` for kfuncs)
/// with extern `name` of program `program` resolved.
pub(crate) fn resolve(
    program: &str,
    insn: &Insn,
    name: &str,
    is_func: bool,
    weak: bool,
    local: Option<&Btf>,
    kallsyms: &std::cell::OnceCell<std::io::Result<KernelSymbols>>,
) -> Result<Insn> {
    let missing = || {
        Error::Unsupported(format!(
            "program `{program}` uses kernel {} `{name}` (__ksym), which this kernel does not have",
            if is_func { "function" } else { "symbol" }
        ))
    };
    match (insn, is_func) {
        (Insn::Call(_), true) => {
            let vmlinux = crate::btf::vmlinux()?;
            match vmlinux.find_by_name_kind(name, Kind::Func) {
                Some(id) => Ok(Insn::Call(CallTarget::Kfunc {
                    btf_id: id as i32,
                    module: 0,
                })),
                // A weak kfunc that is absent: the call stays, to be
                // pruned by the verifier behind a bpf_ksym_exists() check.
                None if weak => Ok(Insn::Call(CallTarget::Kfunc {
                    btf_id: 0,
                    module: 0,
                })),
                None => Err(missing()),
            }
        }
        (Insn::LdImm64 { dst, .. }, false) => {
            let imm = if typeless(local, name) {
                match kallsyms_address(kallsyms, name)? {
                    Some(addr) => Imm64::Value(addr),
                    None if weak => Imm64::Value(0),
                    None => return Err(missing()),
                }
            } else {
                let vmlinux = crate::btf::vmlinux()?;
                match vmlinux.find_by_name_kind(name, Kind::Var) {
                    // The kernel looks the address up in kallsyms itself.
                    Some(_) if kallsyms_address(kallsyms, name)?.is_none() => {
                        return Err(Error::Unsupported(format!(
                            "program `{program}` uses kernel variable `{name}` (__ksym): it is in the \
                             kernel's BTF but not in /proc/kallsyms (a kernel built without \
                             CONFIG_KALLSYMS_ALL lists no data symbols), so the kernel cannot resolve it"
                        )))
                    }
                    Some(id) => Imm64::BtfVar {
                        btf_id: id as i32,
                        btf_obj_fd: 0,
                    },
                    None if weak => Imm64::Value(0),
                    None => return Err(missing()),
                }
            };
            Ok(Insn::LdImm64 { dst: *dst, imm })
        }
        _ => Err(Error::Object(format!(
            "program `{program}`: a __ksym relocation for `{name}` on an instruction that is neither lddw nor call"
        ))),
    }
}
