//! bpfkit
