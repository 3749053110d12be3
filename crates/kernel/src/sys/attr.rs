//! `union bpf_attr`, one `#[repr(C)]` struct per command, laid out exactly as
//! `include/uapi/linux/bpf.h` (Linux 6.18) lays out that command's member.
//!
//! Every pointer field is a [`Ptr`] or [`PtrMut`]: an address borrowed from a
//! live Rust value for `'a`, so an attr can never outlive what it points to,
//! and memory the kernel writes is always borrowed mutably. The structs are
//! crate-private; the command functions in the sibling modules fill them.

use std::ffi::CStr;
use std::marker::PhantomData;

/// Every command's attr implements this; `CMD` is its `enum bpf_cmd` value.
///
/// # Safety
/// The type must be `#[repr(C)]`, match the kernel's layout for `CMD`, and
/// hold user addresses only as [`Ptr`]/[`PtrMut`] fields whose lengths are
/// given by the attr's own count fields.
pub(crate) unsafe trait BpfAttr {
    /// The `enum bpf_cmd` value.
    const CMD: u32;
}

/// A user-space address the kernel only reads, borrowed for `'a` (null when empty).
#[repr(transparent)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Ptr<'a> {
    addr: u64,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Ptr<'a> {
    /// The address of a slice; null for an empty one.
    pub(crate) fn slice<T>(s: &'a [T]) -> Ptr<'a> {
        Ptr {
            addr: if s.is_empty() { 0 } else { s.as_ptr() as u64 },
            _borrow: PhantomData,
        }
    }

    /// The address of a NUL-terminated string.
    pub(crate) fn cstr(s: &'a CStr) -> Ptr<'a> {
        Ptr {
            addr: s.as_ptr() as u64,
            _borrow: PhantomData,
        }
    }

    /// The address of an optional slice (null for `None` or empty).
    pub(crate) fn opt<T>(s: Option<&'a [T]>) -> Ptr<'a> {
        s.map_or_else(Ptr::default, Ptr::slice)
    }
}

/// A user-space address the kernel writes, borrowed mutably for `'a` (null when empty).
#[repr(transparent)]
#[derive(Default, Debug)]
pub(crate) struct PtrMut<'a> {
    addr: u64,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> PtrMut<'a> {
    /// The address of a mutable slice; null for an empty one.
    pub(crate) fn slice<T>(s: &'a mut [T]) -> PtrMut<'a> {
        PtrMut {
            addr: if s.is_empty() {
                0
            } else {
                s.as_mut_ptr() as u64
            },
            _borrow: PhantomData,
        }
    }
}

/// An object name as the kernel stores it: at most 15 bytes of
/// `[A-Za-z0-9_.]` (other bytes are dropped), NUL-terminated.
pub(crate) fn obj_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let allowed = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (slot, b) in out.iter_mut().zip(allowed.take(15)) {
        *slot = b;
    }
    out
}

macro_rules! attr {
    ($(#[$m:meta])* $name:ident $(<$lt:lifetime>)? = $cmd:ident { $($field:ident : $ty:ty,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Default, Debug)]
        pub(crate) struct $name $(<$lt>)? { $(pub(crate) $field: $ty,)* }
        // SAFETY: `#[repr(C)]` with the kernel's field order and sizes for
        // this command (checked by the size test below); addresses are Ptr/PtrMut.
        unsafe impl $(<$lt>)? BpfAttr for $name $(<$lt>)? {
            const CMD: u32 = super::cmd::$cmd;
        }
    };
}

attr!(
    /// `BPF_MAP_CREATE`.
    MapCreateAttr = MAP_CREATE {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
        numa_node: u32,
        map_name: [u8; 16],
        map_ifindex: u32,
        btf_fd: u32,
        btf_key_type_id: u32,
        btf_value_type_id: u32,
        btf_vmlinux_value_type_id: u32,
        map_extra: u64,
    }
);

attr!(
    /// `BPF_MAP_LOOKUP_ELEM` (also the bloom filter's peek).
    MapLookupAttr<'a> = MAP_LOOKUP_ELEM {
        map_fd: u32,
        _pad: u32,
        key: Ptr<'a>,
        value: PtrMut<'a>,
        flags: u64,
    }
);

attr!(
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (pop).
    MapLookupAndDeleteAttr<'a> = MAP_LOOKUP_AND_DELETE_ELEM {
        map_fd: u32,
        _pad: u32,
        key: Ptr<'a>,
        value: PtrMut<'a>,
        flags: u64,
    }
);

attr!(
    /// `BPF_MAP_UPDATE_ELEM` (also push).
    MapUpdateAttr<'a> = MAP_UPDATE_ELEM {
        map_fd: u32,
        _pad: u32,
        key: Ptr<'a>,
        value: Ptr<'a>,
        flags: u64,
    }
);

attr!(
    /// `BPF_MAP_DELETE_ELEM`.
    MapDeleteAttr<'a> = MAP_DELETE_ELEM {
        map_fd: u32,
        _pad: u32,
        key: Ptr<'a>,
        _value: u64,
        flags: u64,
    }
);

attr!(
    /// `BPF_MAP_GET_NEXT_KEY`.
    MapNextKeyAttr<'a> = MAP_GET_NEXT_KEY {
        map_fd: u32,
        _pad: u32,
        key: Ptr<'a>,
        next_key: PtrMut<'a>,
        _flags: u64,
    }
);

attr!(
    /// `BPF_MAP_FREEZE`.
    MapFreezeAttr = MAP_FREEZE {
        map_fd: u32,
    }
);

macro_rules! batch_attr {
    ($name:ident = $cmd:ident, $keys:ty, $values:ty) => {
        attr!(
            /// `BPF_MAP_*_BATCH`.
            $name<'a> = $cmd {
                in_batch: Ptr<'a>,
                out_batch: PtrMut<'a>,
                keys: $keys,
                values: $values,
                count: u32,
                map_fd: u32,
                elem_flags: u64,
                flags: u64,
            }
        );
    };
}

batch_attr!(
    MapLookupBatchAttr = MAP_LOOKUP_BATCH,
    PtrMut<'a>,
    PtrMut<'a>
);
batch_attr!(
    MapLookupAndDeleteBatchAttr = MAP_LOOKUP_AND_DELETE_BATCH,
    PtrMut<'a>,
    PtrMut<'a>
);
batch_attr!(MapUpdateBatchAttr = MAP_UPDATE_BATCH, Ptr<'a>, Ptr<'a>);
batch_attr!(MapDeleteBatchAttr = MAP_DELETE_BATCH, Ptr<'a>, Ptr<'a>);

attr!(
    /// `BPF_PROG_LOAD`.
    ProgLoadAttr<'a> = PROG_LOAD {
        prog_type: u32,
        insn_cnt: u32,
        insns: Ptr<'a>,
        license: Ptr<'a>,
        log_level: u32,
        log_size: u32,
        log_buf: PtrMut<'a>,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        prog_btf_fd: u32,
        func_info_rec_size: u32,
        func_info: Ptr<'a>,
        func_info_cnt: u32,
        line_info_rec_size: u32,
        line_info: Ptr<'a>,
        line_info_cnt: u32,
        attach_btf_id: u32,
        attach_prog_or_btf_obj_fd: u32,
        core_relo_cnt: u32,
        fd_array: Ptr<'a>,
        core_relos: Ptr<'a>,
        core_relo_rec_size: u32,
        log_true_size: u32,
    }
);

attr!(
    /// `BPF_OBJ_PIN`.
    ObjPinAttr<'a> = OBJ_PIN {
        pathname: Ptr<'a>,
        bpf_fd: u32,
        file_flags: u32,
    }
);

attr!(
    /// `BPF_OBJ_GET`.
    ObjGetAttr<'a> = OBJ_GET {
        pathname: Ptr<'a>,
        bpf_fd: u32,
        file_flags: u32,
    }
);

attr!(
    /// `BPF_PROG_ATTACH`.
    ProgAttachAttr = PROG_ATTACH {
        target: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
        relative: u32,
        expected_revision: u64,
    }
);

attr!(
    /// `BPF_PROG_DETACH`.
    ProgDetachAttr = PROG_DETACH {
        target: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
        relative: u32,
        expected_revision: u64,
    }
);

attr!(
    /// `BPF_PROG_TEST_RUN`.
    TestRunAttr<'a> = PROG_TEST_RUN {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: Ptr<'a>,
        data_out: PtrMut<'a>,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: Ptr<'a>,
        ctx_out: PtrMut<'a>,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: u32,
    }
);

/// `BPF_*_GET_NEXT_ID` and `BPF_*_GET_FD_BY_ID`: one layout, several commands.
#[repr(C)]
#[derive(Default, Debug)]
pub(crate) struct IdAttr {
    pub(crate) id: u32,
    pub(crate) next_id: u32,
    pub(crate) open_flags: u32,
    pub(crate) token_fd: u32,
}

macro_rules! id_cmd {
    ($name:ident = $cmd:ident) => {
        /// An [`IdAttr`] sent as this command.
        #[repr(transparent)]
        #[derive(Default, Debug)]
        pub(crate) struct $name(pub(crate) IdAttr);
        // SAFETY: a transparent wrapper of IdAttr, which has no addresses.
        unsafe impl BpfAttr for $name {
            const CMD: u32 = super::cmd::$cmd;
        }
    };
}

id_cmd!(ProgNextId = PROG_GET_NEXT_ID);
id_cmd!(MapNextId = MAP_GET_NEXT_ID);
id_cmd!(LinkNextId = LINK_GET_NEXT_ID);
id_cmd!(BtfNextId = BTF_GET_NEXT_ID);
id_cmd!(ProgFdById = PROG_GET_FD_BY_ID);
id_cmd!(MapFdById = MAP_GET_FD_BY_ID);
id_cmd!(LinkFdById = LINK_GET_FD_BY_ID);
id_cmd!(BtfFdById = BTF_GET_FD_BY_ID);

attr!(
    /// `BPF_OBJ_GET_INFO_BY_FD`. The info buffer's own pointer fields must be
    /// null or borrowed (see `object::prog_info`).
    InfoAttr<'a> = OBJ_GET_INFO_BY_FD {
        bpf_fd: u32,
        info_len: u32,
        info: PtrMut<'a>,
    }
);

attr!(
    /// `BPF_PROG_QUERY`.
    ProgQueryAttr<'a> = PROG_QUERY {
        target: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: PtrMut<'a>,
        count: u32,
        _pad: u32,
        prog_attach_flags: PtrMut<'a>,
        link_ids: PtrMut<'a>,
        link_attach_flags: PtrMut<'a>,
        revision: u64,
    }
);

attr!(
    /// `BPF_RAW_TRACEPOINT_OPEN`.
    RawTracepointAttr<'a> = RAW_TRACEPOINT_OPEN {
        name: Ptr<'a>,
        prog_fd: u32,
        _pad: u32,
        cookie: u64,
    }
);

attr!(
    /// `BPF_BTF_LOAD`.
    BtfLoadAttr<'a> = BTF_LOAD {
        btf: Ptr<'a>,
        log_buf: PtrMut<'a>,
        btf_size: u32,
        log_size: u32,
        log_level: u32,
        log_true_size: u32,
    }
);

attr!(
    /// `BPF_TASK_FD_QUERY`.
    TaskFdQueryAttr<'a> = TASK_FD_QUERY {
        pid: u32,
        fd: u32,
        flags: u32,
        buf_len: u32,
        buf: PtrMut<'a>,
        prog_id: u32,
        fd_type: u32,
        probe_offset: u64,
        probe_addr: u64,
    }
);

/// The per-attach-kind tail of `link_create` (48 bytes from offset 16): each
/// variant of the kernel's anonymous union, as words.
#[repr(C)]
#[derive(Default, Debug)]
pub(crate) struct LinkCreateTail<'a> {
    pub(crate) words: [u64; 6],
    pub(crate) _borrow: PhantomData<&'a [u8]>,
}

attr!(
    /// `BPF_LINK_CREATE`.
    LinkCreateAttr<'a> = LINK_CREATE {
        prog_fd: u32,
        target: u32,
        attach_type: u32,
        flags: u32,
        tail: LinkCreateTail<'a>,
    }
);

attr!(
    /// `BPF_LINK_UPDATE`.
    LinkUpdateAttr = LINK_UPDATE {
        link_fd: u32,
        new_prog_fd: u32,
        flags: u32,
        old_prog_fd: u32,
    }
);

attr!(
    /// `BPF_LINK_DETACH`.
    LinkDetachAttr = LINK_DETACH {
        link_fd: u32,
    }
);

attr!(
    /// `BPF_ENABLE_STATS`.
    EnableStatsAttr = ENABLE_STATS {
        stats_type: u32,
    }
);

attr!(
    /// `BPF_ITER_CREATE`.
    IterCreateAttr = ITER_CREATE {
        link_fd: u32,
        flags: u32,
    }
);

attr!(
    /// `BPF_PROG_BIND_MAP`.
    ProgBindMapAttr = PROG_BIND_MAP {
        prog_fd: u32,
        map_fd: u32,
        flags: u32,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_uapi_header() {
        assert_eq!(size_of::<MapCreateAttr>(), 72);
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(offset_of!(MapCreateAttr, btf_fd), 48);
        assert_eq!(offset_of!(MapCreateAttr, map_extra), 64);
        assert_eq!(size_of::<MapLookupAttr>(), 32);
        assert_eq!(offset_of!(MapLookupAttr, value), 16);
        assert_eq!(size_of::<MapLookupBatchAttr>(), 56);
        assert_eq!(offset_of!(MapLookupBatchAttr, map_fd), 36);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(offset_of!(ProgLoadAttr, func_info), 80);
        assert_eq!(offset_of!(ProgLoadAttr, line_info), 96);
        assert_eq!(offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(offset_of!(ProgLoadAttr, fd_array), 120);
        assert_eq!(offset_of!(ProgLoadAttr, log_true_size), 140);
        assert_eq!(size_of::<ProgLoadAttr>(), 144);
        assert_eq!(size_of::<ObjPinAttr>(), 16);
        assert_eq!(offset_of!(ProgAttachAttr, expected_revision), 24);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(size_of::<TestRunAttr>(), 80);
        assert_eq!(size_of::<IdAttr>(), 16);
        assert_eq!(offset_of!(ProgQueryAttr, prog_attach_flags), 32);
        assert_eq!(offset_of!(ProgQueryAttr, revision), 56);
        assert_eq!(offset_of!(RawTracepointAttr, cookie), 16);
        assert_eq!(offset_of!(BtfLoadAttr, log_true_size), 28);
        assert_eq!(offset_of!(TaskFdQueryAttr, probe_addr), 40);
        assert_eq!(size_of::<LinkCreateAttr>(), 64);
        assert_eq!(offset_of!(LinkCreateAttr, tail), 16);
    }

    #[test]
    fn names_keep_what_the_kernel_accepts() {
        assert_eq!(&obj_name("my-map.data")[..11], b"mymap.data\0");
        assert_eq!(obj_name("a_very_long_name_indeed")[15], 0);
        assert_eq!(
            &obj_name("a_very_long_name_indeed")[..15],
            b"a_very_long_nam"
        );
    }
}
