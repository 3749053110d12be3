//! Writes a skeleton for each of the tools' committed BPF objects
//! (bpf/obj/*.bpf.o) into OUT_DIR, so the tools share their record and map
//! types with the BPF C side through BTF instead of byte offsets.
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let out = std::env::var("OUT_DIR").unwrap();
    let objects = Path::new(&manifest).join("../../bpf/obj");
    println!("cargo:rerun-if-changed={}", objects.display());
    for tool in [
        "biolatency",
        "execsnoop",
        "httpsnoop",
        "memleak",
        "opensnoop",
        "runqlen",
        "solisten",
        "syscount",
        "tcplife",
    ] {
        let object = objects.join(format!("{tool}.bpf.o"));
        println!("cargo:rerun-if-changed={}", object.display());
        let bytes =
            std::fs::read(&object).unwrap_or_else(|e| panic!("reading {}: {e}", object.display()));
        let code = bpfkit_gen::generate(
            &bytes,
            &bpfkit_gen::SkeletonOptions {
                name: tool.into(),
                embed: bpfkit_gen::Embed::IncludeBytes(format!(
                    "{:?}",
                    object.canonicalize().unwrap().display().to_string()
                )),
                extra_types: Vec::new(),
                all_types: true,
            },
        )
        .unwrap_or_else(|e| panic!("skeleton of {}: {e}", object.display()));
        std::fs::write(Path::new(&out).join(format!("{tool}.skel.rs")), code).unwrap();
    }
}
