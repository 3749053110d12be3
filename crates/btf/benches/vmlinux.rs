//! Parsing the running kernel's BTF, and the same work done by bpftool.
//!
//! `parse` is the validated parse of /sys/kernel/btf/vmlinux (the bytes are
//! already in memory); `raw_dump` adds formatting every type the way
//! `bpftool btf dump ... format raw` does, and `bpftool_raw_dump` spawns
//! bpftool to do that same job (reading the file, output to /dev/null), so
//! the two can be compared. Skips with a message when the file is missing.

use std::process::{Command, Stdio};
use std::time::Duration;

use bpfkit_btf::core::essential_name;
use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{Btf, CoreReloKind, CoreRelocator, Kind, TargetBtfs};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn vmlinux(c: &mut Criterion) {
    let bytes = match std::fs::read(VMLINUX) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIP: {VMLINUX}: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("vmlinux");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("parse", |b| {
        b.iter_batched(
            || bytes.clone(),
            |data| Btf::from_vec(data).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("parse_and_raw_dump", |b| {
        b.iter(|| dump_raw(&Btf::parse(black_box(&bytes)).unwrap()).len())
    });
    let btf = Btf::parse(&bytes).unwrap();
    group.bench_function("name_index_first_lookup", |b| {
        b.iter_batched(
            || Btf::parse(&bytes).unwrap(),
            |btf| btf.find_by_name_kind("task_struct", Kind::Struct),
            BatchSize::LargeInput,
        )
    });
    btf.find_by_name_kind("task_struct", Kind::Struct);
    group.bench_function("lookup_by_name", |b| {
        b.iter(|| {
            btf.find_by_name_kind(black_box(essential_name("task_struct___v2")), Kind::Struct)
        })
    });
    // Every field of task_struct, relocated against the kernel itself (so
    // every record finds its candidate through the name index).
    let task = btf.find_by_name_kind("task_struct", Kind::Struct).unwrap();
    let fields = btf.type_by_id(task).unwrap().members().count();
    let accesses: Vec<String> = (0..fields).map(|i| format!("0:{i}")).collect();
    group.bench_function("relocate_task_struct_fields", |b| {
        let relocator = CoreRelocator::new(&btf, TargetBtfs::new(&btf));
        b.iter(|| {
            accesses
                .iter()
                .filter_map(|a| {
                    relocator
                        .relocate(task, a, CoreReloKind::FieldByteOffset)
                        .ok()
                })
                .count()
        })
    });
    group.sample_size(10);
    group.bench_function("c_dump", |b| b.iter(|| dump_c_header(&btf).unwrap().len()));
    let bpftool_works = Command::new("bpftool")
        .args(["btf", "dump", "file", VMLINUX, "format", "raw"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if bpftool_works {
        group.bench_function("bpftool_raw_dump", |b| {
            b.iter(|| {
                Command::new("bpftool")
                    .args(["btf", "dump", "file", VMLINUX, "format", "raw"])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
            })
        });
    } else {
        eprintln!("SKIP: bpftool_raw_dump: bpftool not available");
    }
    group.finish();
}

criterion_group!(benches, vmlinux);
criterion_main!(benches);
