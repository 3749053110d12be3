//! The examples' skeletons, generated at build time by `bpfkit_gen` from
//! the BPF programs beside each example, for the examples and their tests.

/// libbpf-bootstrap's `bootstrap`: process exec and exit events.
pub mod bootstrap {
    include!(concat!(env!("OUT_DIR"), "/bootstrap.skel.rs"));
}

/// Packets per IP protocol, counted by XDP.
pub mod xdp_counter {
    include!(concat!(env!("OUT_DIR"), "/xdp_counter.skel.rs"));
}

/// Calls of a user-space function, seen by a uprobe.
pub mod uprobe {
    include!(concat!(env!("OUT_DIR"), "/uprobe.skel.rs"));
}
