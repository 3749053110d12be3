//! `.kconfig` externs: kernel configuration values a program reads as
//! `extern ... __kconfig` variables, laid out in the `.kconfig` map.

use std::collections::BTreeMap;

use bpfkit_btf::{Btf, Kind, TypeId};

use crate::error::ObjectError;

/// The externs libbpf computes itself rather than reading from the kernel's
/// `.config` (libbpf's `bpf_object__resolve_externs`). Every other `__kconfig`
/// extern must be named `CONFIG_*`.
pub const COMPUTED_EXTERNS: [&str; 3] = [
    "LINUX_KERNEL_VERSION",
    "LINUX_HAS_BPF_COOKIE",
    "LINUX_HAS_SYSCALL_WRAPPER",
];

/// The kernel's configuration: `CONFIG_*` names to their values, plus the
/// [`COMPUTED_EXTERNS`] a loader sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses the text of a kernel `.config` (as in /proc/config.gz or
    /// /boot/config-*): `CONFIG_X=y`, `CONFIG_Y="str"`, `# CONFIG_Z is not set`.
    pub fn parse(text: &str) -> KernelConfig {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                if let Some(name) = rest.strip_suffix(" is not set") {
                    values.insert(name.to_string(), "n".to_string());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once('=') {
                if name.starts_with("CONFIG_") {
                    values.insert(name.to_string(), value.to_string());
                }
            }
        }
        KernelConfig { values }
    }

    /// Sets `LINUX_KERNEL_VERSION` from a release string like `6.18.44-foo`.
    pub fn with_kernel_release(mut self, release: &str) -> KernelConfig {
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0).min(255),
        );
        let code = (a << 16) | (b << 8) | c;
        self.values
            .insert("LINUX_KERNEL_VERSION".into(), code.to_string());
        self
    }

    /// Sets one value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// How a kconfig extern is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool`: y → 1, n → 0.
    Bool,
    /// `enum libbpf_tristate`: n → 0, y → 1, m → 2.
    Tristate,
    /// An integer of this many bytes.
    Int {
        /// Size in bytes.
        size: u32,
        /// Signedness.
        signed: bool,
    },
    /// A `char[N]` string.
    Chars {
        /// N.
        len: u32,
    },
}

/// A `.kconfig` extern and where it lives in the `.kconfig` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KconfigExtern {
    /// `CONFIG_...` or `LINUX_KERNEL_VERSION`.
    pub name: String,
    /// Offset in the `.kconfig` map value.
    pub offset: u32,
    /// Its type.
    pub ty: KconfigType,
    /// Declared `__weak`: a missing value reads as zero instead of failing.
    pub weak: bool,
}

fn kconfig_type(btf: &Btf, id: TypeId, name: &str) -> Result<KconfigType, ObjectError> {
    let t = btf.resolve(id)?;
    let bad = |why: String| ObjectError::Section {
        section: ".kconfig".into(),
        reason: format!("extern `{name}` has a type kconfig values cannot have ({why})"),
    };
    // As libbpf's find_kcfg_type(): a bool is one byte, an integer 1, 2, 4
    // or 8 bytes (the values are written from an i64), a string a non-empty
    // char array (it holds at least the terminating NUL).
    let int_size = |size: u32| match size {
        1 | 2 | 4 | 8 => Ok(size),
        _ => Err(bad(format!(
            "a {size}-byte integer; kconfig integers have 1, 2, 4 or 8 bytes"
        ))),
    };
    let kind = t.kind();
    Ok(match kind {
        Kind::Int => {
            let i = t
                .int()
                .ok_or_else(|| bad("an INT without its encoding".into()))?;
            if i.encoding.is_bool() {
                if i.size != 1 {
                    return Err(bad(format!("a {}-byte bool", i.size)));
                }
                KconfigType::Bool
            } else {
                KconfigType::Int {
                    size: int_size(i.size)?,
                    signed: i.encoding.is_signed(),
                }
            }
        }
        Kind::Enum if t.name() == "libbpf_tristate" => KconfigType::Tristate,
        Kind::Enum | Kind::Enum64 => KconfigType::Int {
            size: int_size(t.size().unwrap_or(4))?,
            signed: false,
        },
        Kind::Array => {
            let a = t
                .array()
                .ok_or_else(|| bad("an ARRAY without its element type".into()))?;
            if btf.type_size(a.elem_type)? != 1 {
                return Err(bad("an array of elements wider than char".into()));
            }
            if a.nelems == 0 {
                return Err(bad("a char array of length 0".into()));
            }
            KconfigType::Chars { len: a.nelems }
        }
        _ => return Err(bad(format!("{kind:?}"))),
    })
}

/// The `.kconfig` externs in the BTF, laid out in name order, each aligned to its size.
pub(crate) fn layout(
    btf: &Btf,
    weak: &BTreeMap<String, bool>,
) -> Result<(Vec<KconfigExtern>, u32), ObjectError> {
    let Some(sec) = btf.find_by_name_kind(".kconfig", Kind::Datasec) else {
        return Ok((Vec::new(), 0));
    };
    let mut vars = Vec::new();
    for v in btf.type_by_id(sec)?.datasec_vars() {
        let var = btf.type_by_id(v.type_id)?;
        let ty_id = var.type_ref().unwrap_or(0);
        vars.push((var.name().to_string(), ty_id));
    }
    vars.sort();
    // In u64: char arrays from BTF can be up to 4 GiB each; the map's size
    // limit is checked where it is created (maps::data_map).
    let mut offset = 0u64;
    let mut out = Vec::new();
    for (name, ty_id) in vars {
        let ty = kconfig_type(btf, ty_id, &name)?;
        let size = match ty {
            KconfigType::Bool => 1,
            KconfigType::Tristate => 4,
            KconfigType::Int { size, .. } => size,
            KconfigType::Chars { len } => len,
        };
        let align = u64::from(btf.type_align(ty_id)?.max(1));
        offset = offset.next_multiple_of(align);
        let too_big = || ObjectError::Section {
            section: ".kconfig".into(),
            reason: format!("extern `{name}` lies beyond 4 GiB"),
        };
        out.push(KconfigExtern {
            weak: weak.get(&name).copied().unwrap_or(false),
            offset: u32::try_from(offset).map_err(|_| too_big())?,
            name,
            ty,
        });
        offset += u64::from(size);
    }
    let size = offset.next_multiple_of(8).max(8);
    let size = u32::try_from(size).map_err(|_| ObjectError::Section {
        section: ".kconfig".into(),
        reason: format!("{size} bytes of externs do not fit a map value"),
    })?;
    Ok((out, size))
}

/// Fills the `.kconfig` value from `config`; a missing strong extern is an error.
pub(crate) fn fill(
    externs: &[KconfigExtern],
    config: &KernelConfig,
    data: &mut [u8],
) -> Result<(), ObjectError> {
    for e in externs {
        let err = |reason: String| ObjectError::Section {
            section: ".kconfig".into(),
            reason: format!("extern `{}`: {reason}", e.name),
        };
        if !e.name.starts_with("CONFIG_") && !COMPUTED_EXTERNS.contains(&e.name.as_str()) {
            return Err(err(format!(
                "not a kernel config value: __kconfig externs are CONFIG_* or one of {}",
                COMPUTED_EXTERNS.join(", ")
            )));
        }
        let value = match config.get(&e.name) {
            Some(v) => v,
            None if e.weak => continue,
            None if e.name.starts_with("CONFIG_") => {
                return Err(err(
                    "not set in the kernel config (declare it __weak to default to 0)".into(),
                ))
            }
            None => {
                return Err(err(
                    "computed by the loader, which did not set it (KernelConfig::set)".into(),
                ))
            }
        };
        let off = e.offset as usize;
        let size = match e.ty {
            KconfigType::Bool => 1,
            KconfigType::Tristate => 4,
            KconfigType::Int { size, .. } => size as usize,
            KconfigType::Chars { len } => len as usize,
        };
        // Externs and map come from layout(), which keeps them consistent;
        // both are public fields, so check rather than trust.
        let len = data.len();
        let slot = data
            .get_mut(off..off.saturating_add(size))
            .filter(|_| size > 0)
            .ok_or_else(|| {
                err(format!(
                    "{size} bytes at offset {off} do not fit the {len}-byte .kconfig map"
                ))
            })?;
        let int = |v: &str| -> Result<i128, ObjectError> {
            let v = v.trim();
            let parsed = if let Some(h) = v.strip_prefix("0x") {
                i128::from_str_radix(h, 16)
            } else {
                v.parse::<i128>()
            };
            parsed.map_err(|_| err(format!("value `{v}` is not a number")))
        };
        match e.ty {
            KconfigType::Bool => {
                slot[0] = match value {
                    "y" => 1,
                    "n" => 0,
                    "m" => {
                        return Err(err(
                            "is a module (m) but declared bool; use enum libbpf_tristate".into(),
                        ))
                    }
                    other => return Err(err(format!("value `{other}` is not a bool"))),
                }
            }
            KconfigType::Tristate => {
                let v: u32 = match value {
                    "n" => 0,
                    "y" => 1,
                    "m" => 2,
                    other => return Err(err(format!("value `{other}` is not y, n or m"))),
                };
                slot.copy_from_slice(&v.to_le_bytes());
            }
            KconfigType::Int { .. } => {
                let v = match value {
                    "y" => 1,
                    "n" => 0,
                    other => int(other)?,
                };
                let bytes = (v as i64).to_le_bytes();
                let bytes = bytes
                    .get(..size)
                    .ok_or_else(|| err(format!("a {size}-byte integer is wider than 8 bytes")))?;
                slot.copy_from_slice(bytes);
            }
            KconfigType::Chars { .. } => {
                // Leaves room for the terminating NUL (size > 0, checked above).
                let s = value.trim_matches('"').as_bytes();
                let n = s.len().min(size - 1);
                slot[..n].copy_from_slice(&s[..n]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_text() {
        let c = KernelConfig::parse(
            "# comment\nCONFIG_BPF=y\nCONFIG_HZ=250\n# CONFIG_KPROBES is not set\nCONFIG_LOCALVERSION=\"-x\"\n",
        )
        .with_kernel_release("6.18.44-fc");
        assert_eq!(c.get("CONFIG_BPF"), Some("y"));
        assert_eq!(c.get("CONFIG_HZ"), Some("250"));
        assert_eq!(c.get("CONFIG_KPROBES"), Some("n"));
        assert_eq!(
            c.get("LINUX_KERNEL_VERSION"),
            Some(((6u32 << 16) | (18 << 8) | 44).to_string().as_str())
        );
    }
}
