//! One module per subcommand.

pub mod asm;
pub mod btf;
pub mod conformance;
pub mod disasm;
pub mod feature;
pub mod load;
pub mod run;
