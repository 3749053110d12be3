//! Context layouts per program type: which bytes of the context a program
//! may read or write, and what a load yields, as the kernel's
//! `*_is_valid_access` callbacks decide (`xdp_is_valid_access`,
//! `sk_filter_is_valid_access`, `tc_cls_act_is_valid_access`,
//! `sock_addr_is_valid_access`, `kprobe_prog_is_valid_access`,
//! `tp_prog_is_valid_access`, `pe_prog_is_valid_access`,
//! `raw_tp_prog_is_valid_access`, `tracing_prog_is_valid_access`).

use bpfkit_abi::ProgramType;

/// What loading a context field yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A scalar.
    Scalar,
    /// `PTR_TO_PACKET` (`data`).
    Packet,
    /// `PTR_TO_PACKET_END` (`data_end`).
    PacketEnd,
    /// `PTR_TO_PACKET_META` (`data_meta`).
    PacketMeta,
    /// A kernel object pointer (`PTR_TO_BTF_ID`, e.g. `__sk_buff::sk`); read as a
    /// possibly-NULL kernel pointer.
    BtfId,
    /// A BTF-typed argument (tp_btf, fentry, iterators): a kernel pointer the
    /// program may read through, or a number.
    BtfArg,
}

/// One field of a context structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxField {
    /// Byte offset.
    pub off: u32,
    /// Size in bytes.
    pub size: u32,
    /// What a load of the whole field yields.
    pub kind: FieldKind,
    /// Stores are allowed (scalar fields only).
    pub writable: bool,
}

/// The context a program receives in r1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtxLayout {
    /// Name for messages (`xdp_md`, `__sk_buff`...).
    pub name: &'static str,
    /// Size in bytes.
    pub size: u32,
    /// Named fields; when empty, every size-aligned read in `[min_off, size)` is a scalar.
    pub fields: Vec<CtxField>,
    /// Bytes outside every field, from here on, read as scalars (size-aligned reads).
    pub min_off: u32,
    /// Whether bytes outside every field are readable at all.
    pub rest_readable: bool,
    /// Whether bytes outside every field are writable too.
    pub rest_writable: bool,
    /// Bytes outside fields: 8-byte reads only (raw tracepoint and tracing arguments).
    pub u64_only: bool,
    /// Scalar fields may be read narrower than their size
    /// (`bpf_ctx_narrow_access_ok`); `xdp_is_valid_access` wants whole u32s.
    pub narrow: bool,
    /// What reading bytes outside fields yields: scalars, or for BTF-typed
    /// programs (tp_btf, fentry, iterators) possibly kernel pointers.
    pub rest_kind: FieldKind,
}

fn f(off: u32, size: u32) -> CtxField {
    CtxField {
        off,
        size,
        kind: FieldKind::Scalar,
        writable: false,
    }
}

fn p(off: u32, size: u32, kind: FieldKind) -> CtxField {
    CtxField {
        off,
        size,
        kind,
        writable: false,
    }
}

fn w(off: u32, size: u32) -> CtxField {
    CtxField {
        off,
        size,
        kind: FieldKind::Scalar,
        writable: true,
    }
}

/// `struct pt_regs` on x86_64.
const PT_REGS_SIZE: u32 = 168;
/// `PERF_MAX_TRACE_SIZE`: the bound `tp_prog_is_valid_access` checks.
const PERF_MAX_TRACE_SIZE: u32 = 8192;
/// `MAX_BPF_FUNC_ARGS`.
const MAX_FUNC_ARGS: u32 = 12;

impl CtxLayout {
    /// The layout for a program type. `ctx_size` overrides the size of
    /// tracepoint (from the event's format) and raw tracepoint contexts.
    pub fn for_program(t: ProgramType, ctx_size: Option<u32>) -> CtxLayout {
        use FieldKind::*;
        use ProgramType as P;
        let plain = |name, size, min_off, u64_only| CtxLayout {
            name,
            size,
            fields: Vec::new(),
            min_off,
            rest_readable: true,
            rest_writable: false,
            u64_only,
            rest_kind: FieldKind::Scalar,
            narrow: true,
        };
        match t {
            P::Xdp => CtxLayout {
                name: "xdp_md",
                size: 24,
                fields: vec![
                    p(0, 4, Packet),
                    p(4, 4, PacketEnd),
                    p(8, 4, PacketMeta),
                    f(12, 4),
                    f(16, 4),
                    f(20, 4),
                ],
                min_off: 0,
                rest_readable: false,
                rest_writable: false,
                u64_only: false,
                rest_kind: FieldKind::Scalar,
                narrow: false,
            },
            P::SocketFilter
            | P::CgroupSkb
            | P::SchedCls
            | P::SchedAct
            | P::SkSkb
            | P::LwtIn
            | P::LwtOut
            | P::LwtXmit => {
                let tc = matches!(t, P::SchedCls | P::SchedAct);
                let direct = !matches!(t, P::SocketFilter);
                let mut fields = vec![
                    f(0, 4),
                    f(4, 4),
                    if tc || t == P::CgroupSkb {
                        w(8, 4)
                    } else {
                        f(8, 4)
                    },
                    f(12, 4),
                    f(16, 4),
                    f(20, 4),
                    f(24, 4),
                    f(28, 4),
                    if tc { w(32, 4) } else { f(32, 4) },
                    f(36, 4),
                    f(40, 4),
                    if tc { w(44, 4) } else { f(44, 4) },
                ];
                for i in 0..5 {
                    fields.push(w(48 + 4 * i, 4));
                }
                fields.push(f(68, 4));
                if tc {
                    fields.push(w(72, 4));
                }
                if direct {
                    fields.push(p(76, 4, Packet));
                    fields.push(p(80, 4, PacketEnd));
                }
                for off in (84..140).step_by(4) {
                    fields.push(f(off, 4));
                }
                if tc {
                    fields.push(p(140, 4, PacketMeta));
                }
                fields.push(f(152, 8));
                fields.push(f(160, 4));
                fields.push(f(164, 4));
                fields.push(p(168, 8, BtfId));
                fields.push(f(176, 4));
                fields.push(f(184, 8));
                CtxLayout {
                    name: "__sk_buff",
                    size: 192,
                    fields,
                    min_off: 0,
                    rest_readable: false,
                    rest_writable: false,
                    u64_only: false,
                    rest_kind: FieldKind::Scalar,
                    narrow: true,
                }
            }
            P::CgroupSockAddr => {
                let mut fields = vec![f(0, 4), w(4, 4)];
                for i in 0..4 {
                    fields.push(w(8 + 4 * i, 4));
                }
                fields.extend([w(24, 4), f(28, 4), f(32, 4), f(36, 4), w(40, 4)]);
                for i in 0..4 {
                    fields.push(w(44 + 4 * i, 4));
                }
                fields.push(p(64, 8, BtfId));
                CtxLayout {
                    name: "bpf_sock_addr",
                    size: 72,
                    fields,
                    min_off: 0,
                    rest_readable: false,
                    rest_writable: false,
                    u64_only: false,
                    rest_kind: FieldKind::Scalar,
                    narrow: true,
                }
            }
            P::Kprobe => plain("pt_regs", PT_REGS_SIZE, 0, false),
            P::PerfEvent => plain("bpf_perf_event_data", PT_REGS_SIZE + 16, 0, false),
            P::Tracepoint => plain(
                "tracepoint",
                ctx_size.unwrap_or(PERF_MAX_TRACE_SIZE),
                // The common fields (`tp_prog_is_valid_access`: off < sizeof(void *)).
                8,
                false,
            ),
            // Arguments typed by BTF: a u64 that may be a kernel pointer.
            P::Tracing | P::Lsm => CtxLayout {
                rest_kind: FieldKind::BtfArg,
                narrow: true,
                ..plain(
                    "tracing_args",
                    ctx_size.unwrap_or(MAX_FUNC_ARGS * 8),
                    0,
                    true,
                )
            },
            // raw_tp_prog_is_valid_access: any size-aligned read of the arguments.
            P::RawTracepoint | P::RawTracepointWritable => plain(
                "raw_tracepoint_args",
                ctx_size.unwrap_or(MAX_FUNC_ARGS * 8),
                0,
                false,
            ),
            _ => CtxLayout {
                rest_readable: false,
                ..plain("ctx", 0, 0, false)
            },
        }
    }

    /// What an access of `size` bytes at `off` yields, or why it is refused.
    pub fn access(&self, off: i64, size: u32, write: bool) -> Result<FieldKind, String> {
        let bad = || format!("invalid bpf_context access off={off} size={size}");
        if off < 0 || off + size as i64 > self.size as i64 {
            return Err(bad());
        }
        let off = off as u32;
        let overlaps = |fl: &&CtxField| off < fl.off + fl.size && fl.off < off + size;
        let Some(field) = self
            .fields
            .iter()
            .find(|fl| off >= fl.off && off + size <= fl.off + fl.size)
        else {
            let rest_ok = self.rest_readable
                && (!write || self.rest_writable)
                && off >= self.min_off
                && off % size == 0
                && !(self.u64_only && size != 8)
                && !self.fields.iter().any(|fl| overlaps(&fl));
            return if rest_ok {
                Ok(if size == 8 {
                    self.rest_kind
                } else {
                    FieldKind::Scalar
                })
            } else {
                Err(bad())
            };
        };
        if field.kind != FieldKind::Scalar {
            // Pointer fields: a whole-field read only.
            if write || off != field.off || size != field.size {
                return Err(bad());
            }
            return Ok(field.kind);
        }
        if write && (!field.writable || size != field.size) {
            return Err(bad());
        }
        // Narrow loads (`bpf_ctx_narrow_access_ok`): aligned to their size.
        if (off - field.off) % size != 0 || !self.narrow && size != field.size {
            return Err(bad());
        }
        Ok(FieldKind::Scalar)
    }
}

/// The size of a tracepoint's context from its tracefs `format` file: the
/// end of its last field (`offset:N;` plus `size:M;`). `None` when the text
/// has no fields.
pub fn tracepoint_ctx_size(format: &str) -> Option<u32> {
    let num = |line: &str, key: &str| -> Option<u32> {
        let at = line.find(key)? + key.len();
        line[at..].split(';').next()?.trim().parse().ok()
    };
    format
        .lines()
        .filter(|l| l.trim_start().starts_with("field:"))
        .filter_map(|l| Some(num(l, "offset:")? + num(l, "size:")?))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_size_is_the_end_of_the_last_field() {
        let format = "name: sys_enter_openat\nID: 1\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n";
        assert_eq!(tracepoint_ctx_size(format), Some(48));
        assert_eq!(tracepoint_ctx_size("nothing"), None);
        let l = CtxLayout::for_program(ProgramType::Tracepoint, Some(48));
        assert!(l.access(40, 8, false).is_ok());
        assert!(l.access(48, 8, false).is_err());
        assert!(
            l.access(0, 8, false).is_err(),
            "the common fields are not readable"
        );
    }
}
