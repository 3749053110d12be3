//! bpfkit-vm
