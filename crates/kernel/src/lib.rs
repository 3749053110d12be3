//! bpfkit-kernel
