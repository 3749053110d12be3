//! Human-readable output: a compilable C header (`bpftool btf dump ...
//! format c`) and bpftool's raw listing (`format raw`).

mod c;
mod raw;

pub use c::{dump_c_header, type_name, CDumper};
pub use raw::{dump_raw, write_raw_type};
