//! bpfkit-btf
