//! Prints the spec of a BPF object: `cargo run -p bpfkit-object --example dump_spec FILE`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump_spec FILE.bpf.o");
        std::process::exit(2);
    };
    match bpfkit_object::ObjectSpec::from_file(path.as_ref()) {
        Ok(spec) => {
            println!("license {:?} version {:?}", spec.license, spec.kern_version);
            for (name, m) in &spec.maps {
                println!(
                    "map {name}: {} key {} value {} max {} flags {:#x} init {:?} inner {:?}",
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.map_flags,
                    m.init,
                    m.inner.as_ref().map(|i| i.map_type)
                );
            }
            for (name, p) in &spec.programs {
                println!(
                    "prog {name}: {:?} {:?} {:?} insns {} relocs {:?} func_info {} line_info {} core {}",
                    p.kind.prog_type,
                    p.kind.attach_type,
                    p.kind.target,
                    p.insns.len(),
                    p.relocations,
                    p.func_info.len(),
                    p.line_info.len(),
                    p.core_relos.len()
                );
            }
            for e in spec.externs.values() {
                println!("extern {e:?}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
