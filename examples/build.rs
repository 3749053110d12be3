//! Builds each example's BPF program (with clang when present, else the
//! committed object) and writes its skeleton into OUT_DIR.
fn main() {
    bpfkit_gen::BpfBuild::new("bootstrap/bootstrap.bpf.c")
        .extra_type("event")
        .build()
        .expect("bootstrap skeleton");
    bpfkit_gen::BpfBuild::new("xdp_counter/xdp_counter.bpf.c")
        .build()
        .expect("xdp_counter skeleton");
    bpfkit_gen::BpfBuild::new("uprobe/uprobe.bpf.c")
        .build()
        .expect("uprobe skeleton");
}
