//! The tools' skeletons, generated at build time from their committed BPF
//! objects (see build.rs): the objects embedded, their record and map types
//! from BTF, and typed access to programs, maps and `.rodata` knobs.

macro_rules! skeletons {
    ($($tool:ident),*) => {$(
        #[doc = concat!("`", stringify!($tool), ".bpf.c`'s skeleton.")]
        // Generated: an accessor for every program, map and section, of
        // which a tool uses a few.
        #[allow(dead_code)]
        pub mod $tool {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($tool), ".skel.rs"));
        }
    )*};
}

skeletons!(
    biolatency, execsnoop, httpsnoop, memleak, opensnoop, runqlen, solisten, syscount, tcplife
);
