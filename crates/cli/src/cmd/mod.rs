//! One module per subcommand.

pub mod asm;
pub mod btf;
pub mod disasm;
