//! bpfkit-object
