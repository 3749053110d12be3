//! `bpfkit gen skeleton` over every object there is: the tools' (`bpf/`),
//! the test fixtures', the examples', and the libbpf-tools objects of the
//! Debian package. All skeletons go into one crate that depends on
//! `bpfkit`, which must compile: each generated type carries compile-time
//! assertions of its size and of every field's offset, taken from the
//! object's BTF, so compiling proves the Rust layouts match the BPF side.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
mod libbpf_tools;

use common::BIN;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every committed `.bpf.o` of the workspace.
fn committed_objects() -> Vec<PathBuf> {
    let root = workspace();
    let mut dirs = vec![root.join("bpf/obj")];
    for d in ["bootstrap", "xdp_counter", "uprobe"] {
        dirs.push(root.join("examples").join(d));
    }
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(entry.unwrap().path().join("tests/fixtures"));
    }
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".bpf.o") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn skeletons_of_every_object_compile_with_their_layouts_asserted() {
    let dir = std::env::temp_dir().join(format!("bpfkit-skeletons-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let mut objects = committed_objects();
    let corpus = libbpf_tools::corpus(&dir);
    if corpus.len() < 30 {
        common::skip(&format!(
            "the libbpf-tools package gives {} objects; at least 30 are wanted (apt-get install libbpf-tools)",
            corpus.len()
        ));
        return;
    }
    let from_corpus = corpus.len();
    objects.extend(corpus.into_iter().map(|(_, p)| p));

    let mut lib = String::new();
    let (mut generated, mut refused) = (0, Vec::new());
    let mut types = 0;
    for (i, obj) in objects.iter().enumerate() {
        let name = format!("s{i}");
        let out = Command::new(BIN)
            .args(["gen", "skeleton"])
            .arg(obj)
            .args(["--name", &name, "--all-types"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{}: gen skeleton panicked: {stderr}",
            obj.display()
        );
        if !out.status.success() {
            // Only objects the parser refuses (hostile fixtures) may fail,
            // and they say why.
            assert!(
                bpfkit_object::ObjectSpec::from_file(obj).is_err(),
                "{}: a parsable object got no skeleton: {stderr}",
                obj.display()
            );
            assert!(stderr.starts_with("bpfkit: "), "{stderr}");
            refused.push(obj.display().to_string());
            continue;
        }
        let code = String::from_utf8(out.stdout).unwrap();
        types += code.matches("assert!(::core::mem::size_of::<").count();
        std::fs::write(dir.join(format!("src/{name}.rs")), code).unwrap();
        lib.push_str(&format!(
            "/// {}\npub mod {name} {{\n    include!(\"{name}.rs\");\n}}\n",
            obj.display()
        ));
        generated += 1;
    }
    println!(
        "{generated} skeletons ({from_corpus} objects from libbpf-tools), {types} types with \
         asserted layouts; refused by the parser: {refused:?}"
    );
    assert!(generated >= 30 + 10, "{generated} skeletons");
    assert!(types > 3000, "only {types} types generated");
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    let bpfkit = workspace().join("crates/bpfkit").canonicalize().unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"skeleton-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nbpfkit = {{ path = {:?} }}\n\n[workspace]\n",
            bpfkit.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = workspace().join("target/skeleton-check");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet", "--lib"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the skeletons do not compile (crate kept at {}):\n{}",
        dir.display(),
        stderr.lines().take(80).collect::<Vec<_>>().join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
