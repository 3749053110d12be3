//! What the VM's and the JIT's benchmarks share.

pub mod workloads;
