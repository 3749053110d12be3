//! Typed, zero-copy views of BTF type records.
//!
//! A [`Type`] borrows its record from the [`Btf`] it came from and decodes
//! fields on access; the record's length and references were checked when the
//! blob was parsed, so accessors do not fail.

use core::fmt;

use crate::endian::u32_in;
use crate::{Btf, TypeId};

/// The kind of a BTF type (`BTF_KIND_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// Type id 0: `void`.
    Void = 0,
    /// Integer, `char` or `_Bool`.
    Int = 1,
    /// Pointer.
    Ptr = 2,
    /// Array.
    Array = 3,
    /// `struct`.
    Struct = 4,
    /// `union`.
    Union = 5,
    /// `enum` with 32-bit values.
    Enum = 6,
    /// Forward declaration of a struct or union.
    Fwd = 7,
    /// `typedef`.
    Typedef = 8,
    /// `volatile` qualifier.
    Volatile = 9,
    /// `const` qualifier.
    Const = 10,
    /// `restrict` qualifier.
    Restrict = 11,
    /// A function (subprogram), pointing at its prototype.
    Func = 12,
    /// A function prototype.
    FuncProto = 13,
    /// A variable.
    Var = 14,
    /// A data section holding variables.
    Datasec = 15,
    /// A floating-point type.
    Float = 16,
    /// `__attribute__((btf_decl_tag))` on a declaration.
    DeclTag = 17,
    /// `__attribute__((btf_type_tag))` on a pointee type.
    TypeTag = 18,
    /// `enum` with 64-bit values.
    Enum64 = 19,
}

impl Kind {
    /// The kind numbered `n`, if known.
    pub const fn from_u32(n: u32) -> Option<Kind> {
        Some(match n {
            0 => Kind::Void,
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// The name bpftool prints for this kind (`STRUCT`, `FUNC_PROTO`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Void => "UNKNOWN",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }

    /// Size in bytes of the kind-specific data that follows the 12-byte
    /// common header, for a record with `vlen` entries.
    pub(crate) const fn extra_len(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => vlen * 12,
            Kind::Enum | Kind::FuncProto => vlen * 8,
            _ => 0,
        }
    }

    /// Whether the common header's third word is a size (as opposed to a type id).
    pub const fn has_size(self) -> bool {
        matches!(
            self,
            Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Datasec
                | Kind::Float
        )
    }

    /// Whether the common header's third word is a referenced type id.
    pub const fn has_type_ref(self) -> bool {
        matches!(
            self,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag
        )
    }

    /// `struct` or `union`.
    pub const fn is_composite(self) -> bool {
        matches!(self, Kind::Struct | Kind::Union)
    }

    /// `enum` or `enum64`.
    pub const fn is_any_enum(self) -> bool {
        matches!(self, Kind::Enum | Kind::Enum64)
    }

    /// A qualifier or type tag: `const`, `volatile`, `restrict`, `type_tag`.
    pub const fn is_modifier(self) -> bool {
        matches!(
            self,
            Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Linkage of a `FUNC` (`BTF_FUNC_*`) or `VAR` (`BTF_VAR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Linkage {
    /// `static`.
    Static,
    /// Global (`BTF_FUNC_GLOBAL`, `BTF_VAR_GLOBAL_ALLOCATED`).
    Global,
    /// Extern (`BTF_FUNC_EXTERN`, `BTF_VAR_GLOBAL_EXTERN`).
    Extern,
}

impl Linkage {
    /// Decodes the on-disk value.
    pub const fn from_u32(n: u32) -> Option<Linkage> {
        match n {
            0 => Some(Linkage::Static),
            1 => Some(Linkage::Global),
            2 => Some(Linkage::Extern),
            _ => None,
        }
    }

    /// The on-disk value.
    pub const fn to_u32(self) -> u32 {
        match self {
            Linkage::Static => 0,
            Linkage::Global => 1,
            Linkage::Extern => 2,
        }
    }

    /// The name bpftool prints for a function's linkage.
    pub const fn func_str(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::Global => "global",
            Linkage::Extern => "extern",
        }
    }

    /// The name bpftool prints for a variable's linkage.
    pub const fn var_str(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::Global => "global",
            Linkage::Extern => "extern",
        }
    }
}

/// Encoding bits of an `INT` (`BTF_INT_SIGNED`, `BTF_INT_CHAR`, `BTF_INT_BOOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntEncoding(pub u8);

impl IntEncoding {
    /// `BTF_INT_SIGNED`.
    pub const SIGNED: u8 = 1;
    /// `BTF_INT_CHAR`.
    pub const CHAR: u8 = 2;
    /// `BTF_INT_BOOL`.
    pub const BOOL: u8 = 4;

    /// Signed integer.
    pub const fn is_signed(self) -> bool {
        self.0 & Self::SIGNED != 0
    }
    /// Character type.
    pub const fn is_char(self) -> bool {
        self.0 & Self::CHAR != 0
    }
    /// `_Bool`.
    pub const fn is_bool(self) -> bool {
        self.0 & Self::BOOL != 0
    }
}

/// The data of an `INT` type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Int {
    /// Size of the storage in bytes.
    pub size: u32,
    /// Signedness, char, bool.
    pub encoding: IntEncoding,
    /// Bit offset of the value inside its storage (0 in practice).
    pub offset: u8,
    /// Number of value bits.
    pub bits: u8,
}

/// The data of an `ARRAY` type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Array {
    /// Element type.
    pub elem_type: TypeId,
    /// Index type (an `int`, informational).
    pub index_type: TypeId,
    /// Number of elements.
    pub nelems: u32,
}

/// A member of a `struct` or `union`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<'a> {
    /// Member name, empty for an anonymous member.
    pub name: &'a str,
    /// Offset of the name in the string table.
    pub name_off: u32,
    /// Member type.
    pub type_id: TypeId,
    /// Offset of the member from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield in bits; 0 for ordinary members.
    pub bitfield_size: u32,
}

/// A member whose name has not been decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawMember {
    pub(crate) name_off: u32,
    pub(crate) type_id: TypeId,
    pub(crate) bit_offset: u32,
}

/// A named value of an `enum` or `enum64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumValue<'a> {
    /// Enumerator name.
    pub name: &'a str,
    /// Offset of the name in the string table.
    pub name_off: u32,
    /// The value's bit pattern: for 32-bit enums, sign-extended if the enum
    /// is signed and zero-extended otherwise.
    pub value: u64,
}

/// A parameter of a `FUNC_PROTO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name, often empty.
    pub name: &'a str,
    /// Offset of the name in the string table.
    pub name_off: u32,
    /// Parameter type; 0 (with an empty name) as the last parameter means `...`.
    pub type_id: TypeId,
}

/// A variable placed in a `DATASEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarSecInfo {
    /// The `VAR` (or `FUNC`, for `.ksyms` externs) type.
    pub type_id: TypeId,
    /// Offset of the variable in the section.
    pub offset: u32,
    /// Size of the variable.
    pub size: u32,
}

/// A borrowed view of one BTF type.
#[derive(Clone, Copy)]
pub struct Type<'a> {
    pub(crate) btf: &'a Btf,
    pub(crate) id: TypeId,
    pub(crate) kind: Kind,
    pub(crate) name_off: u32,
    pub(crate) info: u32,
    pub(crate) size_or_type: u32,
    /// Kind-specific data after the common header, of the length the kind requires.
    pub(crate) extra: &'a [u8],
}

impl<'a> Type<'a> {
    /// The type id.
    pub fn id(&self) -> TypeId {
        self.id
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The name; empty for anonymous types.
    pub fn name(&self) -> &'a str {
        self.btf.str_or_empty(self.name_off)
    }

    /// Offset of the name in the string table.
    pub fn name_off(&self) -> u32 {
        self.name_off
    }

    /// Number of entries (members, values, params, variables); for `FUNC`
    /// the linkage.
    pub fn vlen(&self) -> u16 {
        (self.info & 0xffff) as u16
    }

    /// The kind flag: bitfield encoding for composites, union-ness for
    /// `FWD`, signedness for enums, attribute-ness for tags.
    pub fn kflag(&self) -> bool {
        self.info >> 31 != 0
    }

    /// The raw `info` word.
    pub fn info(&self) -> u32 {
        self.info
    }

    /// The raw third header word: a size or a type id depending on the kind.
    pub fn size_or_type(&self) -> u32 {
        self.size_or_type
    }

    /// Size in bytes for kinds that carry one (`INT`, `STRUCT`, `UNION`,
    /// `ENUM`, `ENUM64`, `DATASEC`, `FLOAT`).
    pub fn size(&self) -> Option<u32> {
        self.kind.has_size().then_some(self.size_or_type)
    }

    /// The referenced type for `PTR`, `TYPEDEF`, qualifiers, `FUNC`,
    /// `FUNC_PROTO` (return type), `VAR`, `DECL_TAG` and `TYPE_TAG`.
    pub fn type_ref(&self) -> Option<TypeId> {
        self.kind.has_type_ref().then_some(self.size_or_type)
    }

    pub(crate) fn word(&self, off: usize) -> u32 {
        u32_in(self.btf.endian(), self.extra, off)
    }

    /// `INT` data.
    pub fn int(&self) -> Option<Int> {
        if self.kind != Kind::Int {
            return None;
        }
        let w = self.word(0);
        Some(Int {
            size: self.size_or_type,
            encoding: IntEncoding(((w >> 24) & 0x0f) as u8),
            offset: ((w >> 16) & 0xff) as u8,
            bits: (w & 0xff) as u8,
        })
    }

    /// `ARRAY` data.
    pub fn array(&self) -> Option<Array> {
        (self.kind == Kind::Array).then(|| Array {
            elem_type: self.word(0),
            index_type: self.word(4),
            nelems: self.word(8),
        })
    }

    /// Members of a `STRUCT` or `UNION`; empty for other kinds.
    pub fn members(&self) -> Members<'a> {
        let n = if self.kind.is_composite() {
            self.vlen() as usize
        } else {
            0
        };
        Members {
            ty: *self,
            next: 0,
            len: n,
        }
    }

    /// Members with their names left as string offsets, for loops that
    /// compare names without decoding them.
    pub(crate) fn raw_members(&self) -> impl Iterator<Item = RawMember> + 'a {
        let t = *self;
        (0..t.members().len()).map(move |i| {
            let (name_off, type_id, raw) = (t.word(i * 12), t.word(i * 12 + 4), t.word(i * 12 + 8));
            // With the kind flag set, the top 8 bits hold a bitfield width.
            let bit_offset = if t.kflag() { raw & 0x00ff_ffff } else { raw };
            RawMember {
                name_off,
                type_id,
                bit_offset,
            }
        })
    }

    /// The `index`-th member of a `STRUCT` or `UNION`.
    pub fn member(&self, index: usize) -> Option<Member<'a>> {
        self.members().nth(index)
    }

    /// The member named `name` of a `STRUCT` or `UNION` (not searching
    /// inside anonymous members).
    pub fn member_by_name(&self, name: &str) -> Option<Member<'a>> {
        self.members().find(|m| m.name == name)
    }

    /// Values of an `ENUM` or `ENUM64`; empty for other kinds.
    pub fn enum_values(&self) -> EnumValues<'a> {
        let n = if self.kind.is_any_enum() {
            self.vlen() as usize
        } else {
            0
        };
        EnumValues {
            ty: *self,
            next: 0,
            len: n,
        }
    }

    /// Whether an `ENUM`/`ENUM64` is signed (its kind flag).
    pub fn is_signed_enum(&self) -> bool {
        self.kind.is_any_enum() && self.kflag()
    }

    /// Parameters of a `FUNC_PROTO`; empty for other kinds.
    pub fn params(&self) -> Params<'a> {
        let n = if self.kind == Kind::FuncProto {
            self.vlen() as usize
        } else {
            0
        };
        Params {
            ty: *self,
            next: 0,
            len: n,
        }
    }

    /// Linkage of a `FUNC` (its vlen) or `VAR`.
    pub fn linkage(&self) -> Option<Linkage> {
        match self.kind {
            Kind::Func => Linkage::from_u32(self.vlen() as u32),
            Kind::Var => Linkage::from_u32(self.word(0)),
            _ => None,
        }
    }

    /// Variables of a `DATASEC`; empty for other kinds.
    pub fn datasec_vars(&self) -> DatasecVars<'a> {
        let n = if self.kind == Kind::Datasec {
            self.vlen() as usize
        } else {
            0
        };
        DatasecVars {
            ty: *self,
            next: 0,
            len: n,
        }
    }

    /// For a `DECL_TAG`: `-1` when it tags the declaration it points at,
    /// else the index of the member or parameter it tags.
    pub fn decl_tag_component(&self) -> Option<i32> {
        (self.kind == Kind::DeclTag).then(|| self.word(0) as i32)
    }

    /// For a `FWD`: whether it declares a union (kind flag) rather than a struct.
    pub fn fwd_is_union(&self) -> bool {
        self.kind == Kind::Fwd && self.kflag()
    }
}

impl fmt::Debug for Type<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Type")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name())
            .field("vlen", &self.vlen())
            .field("size_or_type", &self.size_or_type)
            .finish()
    }
}

macro_rules! record_iter {
    ($(#[$doc:meta])* $name:ident, $item:ty, |$ty:ident, $off:ident| stride $stride:expr, $make:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name<'a> {
            ty: Type<'a>,
            next: usize,
            len: usize,
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                if self.next >= self.len {
                    return None;
                }
                let $ty = &self.ty;
                let $off = self.next * $stride;
                self.next += 1;
                Some($make)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                let n = self.len - self.next;
                (n, Some(n))
            }

            fn nth(&mut self, n: usize) -> Option<$item> {
                self.next = self.next.saturating_add(n).min(self.len);
                self.next()
            }
        }

        impl ExactSizeIterator for $name<'_> {}
    };
}

record_iter!(
    /// Iterator over the members of a `STRUCT` or `UNION`.
    Members, Member<'a>, |t, off| stride 12, {
        let name_off = t.word(off);
        let raw = t.word(off + 8);
        let (bit_offset, bitfield_size) = if t.kflag() {
            (raw & 0x00ff_ffff, raw >> 24)
        } else {
            (raw, 0)
        };
        Member {
            name: t.btf.str_or_empty(name_off),
            name_off,
            type_id: t.word(off + 4),
            bit_offset,
            bitfield_size,
        }
    }
);

record_iter!(
    /// Iterator over the values of an `ENUM` or `ENUM64`.
    EnumValues, EnumValue<'a>, |t, off| stride if t.kind == Kind::Enum { 8 } else { 12 }, {
        let name_off = t.word(off);
        let value = if t.kind == Kind::Enum {
            let v = t.word(off + 4);
            if t.kflag() {
                v as i32 as i64 as u64
            } else {
                v as u64
            }
        } else {
            (t.word(off + 4) as u64) | ((t.word(off + 8) as u64) << 32)
        };
        EnumValue {
            name: t.btf.str_or_empty(name_off),
            name_off,
            value,
        }
    }
);

record_iter!(
    /// Iterator over the parameters of a `FUNC_PROTO`.
    Params, Param<'a>, |t, off| stride 8, {
        let name_off = t.word(off);
        Param {
            name: t.btf.str_or_empty(name_off),
            name_off,
            type_id: t.word(off + 4),
        }
    }
);

record_iter!(
    /// Iterator over the variables of a `DATASEC`.
    DatasecVars, VarSecInfo, |t, off| stride 12, VarSecInfo {
        type_id: t.word(off),
        offset: t.word(off + 4),
        size: t.word(off + 8),
    }
);
