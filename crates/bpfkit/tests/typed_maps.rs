//! The typed map family over both backends: the same assertions on maps
//! made in the VM and in the kernel (when bpf() is usable).

use bpfkit::abi::{errno, update_flags::*, MapType};
use bpfkit::kernel::{KernelMap, MapDefinition};
use bpfkit::maps::{Array, HashMap, MapOfMaps, PerCpuArray, PerCpuHashMap, ProgArray, Queue};
use bpfkit::{Backend, Map};

fn backends() -> Vec<Backend> {
    match bpfkit::kernel::check_bpf_access() {
        Ok(()) => vec![Backend::Vm, Backend::Kernel],
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "under CI=true the kernel half may not skip: {why}"
            );
            println!("SKIP (kernel half): cannot use bpf(): {why}");
            vec![Backend::Vm]
        }
    }
}

fn make(b: Backend, name: &str, t: MapType, key: u32, value: u32, max: u32) -> Map {
    match b {
        Backend::Vm => Map::from_vm(
            name,
            bpfkit::vm::Map::new(bpfkit::vm::MapDef::new(t, key, value, max), 2).unwrap(),
        ),
        Backend::Kernel => Map::from_kernel(
            KernelMap::create(&MapDefinition::new(name, t, key, value, max), None).unwrap(),
        ),
    }
}

#[test]
fn hash_maps_store_typed_entries() {
    for b in backends() {
        let h =
            HashMap::<_, u64, [u8; 16]>::new(make(b, "typed", MapType::Hash, 8, 16, 8)).unwrap();
        h.insert(&7, &[7; 16], ANY).unwrap();
        h.insert(&9, &[9; 16], ANY).unwrap();
        assert_eq!(h.get(&7).unwrap(), Some([7; 16]), "{b:?}");
        let mut entries = h.entries().unwrap();
        entries.sort();
        assert_eq!(entries, vec![(7, [7; 16]), (9, [9; 16])], "{b:?}");
        h.remove(&7).unwrap();
        assert_eq!(h.keys().unwrap(), vec![9], "{b:?}");
        // Errors name the map.
        let e = h.insert(&1, &[0; 16], EXIST).unwrap_err();
        assert_eq!(e.errno, errno::ENOENT, "{b:?}");
        assert!(e.to_string().starts_with("map `typed`: update: "), "{e}");
        // A view checks the map it is given.
        let wrong = make(b, "wrong", MapType::Hash, 4, 8, 1);
        assert!(HashMap::<_, u64, u64>::new(&wrong).is_err());
        assert!(HashMap::<_, u32, u64>::new(&wrong).is_ok());

        let pc = PerCpuHashMap::<_, u32, u64>::new(make(b, "pch", MapType::PercpuHash, 4, 8, 4))
            .unwrap();
        let cpus = bpfkit::RawMap::value_copies(&make(b, "probe", MapType::PercpuArray, 4, 8, 1));
        let values: Vec<u64> = (0..cpus as u64).collect();
        pc.insert(&1, &values, ANY).unwrap();
        assert_eq!(pc.get(&1).unwrap(), Some(values.clone()), "{b:?}");
        assert!(pc.insert(&2, &[1], ANY).is_err() || cpus == 1);
        pc.remove(&1).unwrap();
        assert_eq!(pc.get(&1).unwrap(), None, "{b:?}");
    }
}

#[test]
fn arrays_and_per_cpu_arrays() {
    for b in backends() {
        let arr = Array::<_, [u16; 3]>::new(make(b, "arr", MapType::Array, 4, 6, 3)).unwrap();
        arr.set(2, &[1, 2, 3]).unwrap();
        assert_eq!(arr.get(2).unwrap(), [1, 2, 3], "{b:?}");
        assert_eq!(arr.get(3).unwrap_err().errno, errno::ENOENT, "{b:?}");
        let pc =
            PerCpuArray::<_, u32>::new(make(b, "pcpu", MapType::PercpuArray, 4, 4, 2)).unwrap();
        pc.set_all(1, &9).unwrap();
        assert!(pc.get(1).unwrap().iter().all(|&v| v == 9), "{b:?}");
        assert!(pc.get(0).unwrap().iter().all(|&v| v == 0), "{b:?}");
    }
}

#[test]
fn queues_and_stacks_keep_their_order() {
    for b in backends() {
        let q = Queue::<_, u64>::new(make(b, "q", MapType::Queue, 0, 8, 3)).unwrap();
        let s = Queue::<_, u64>::new(make(b, "s", MapType::Stack, 0, 8, 3)).unwrap();
        for i in 1..=3 {
            q.push(&i, ANY).unwrap();
            s.push(&i, ANY).unwrap();
        }
        assert_eq!(q.push(&4, ANY).unwrap_err().errno, errno::E2BIG, "{b:?}");
        q.push(&4, EXIST).unwrap();
        assert_eq!(q.peek().unwrap(), Some(2), "{b:?}");
        let popped: Vec<u64> = std::iter::from_fn(|| q.pop().unwrap()).collect();
        assert_eq!(popped, vec![2, 3, 4], "{b:?}: FIFO");
        let popped: Vec<u64> = std::iter::from_fn(|| s.pop().unwrap()).collect();
        assert_eq!(popped, vec![3, 2, 1], "{b:?}: LIFO");
    }
}

#[test]
fn prog_arrays_and_maps_of_maps_in_the_kernel() {
    if !backends().contains(&Backend::Kernel) {
        return;
    }
    // A prog array is filled from a loaded object's program.
    let object = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../object/tests/fixtures/xdp_parser.bpf.o"
    ))
    .unwrap();
    let bpf = bpfkit::Ebpf::load(&object).unwrap();
    let prog = bpf.program("xdp_parser").unwrap();
    let slots = make(Backend::Kernel, "jmp", MapType::ProgArray, 4, 4, 4);
    let pa = ProgArray::new(&slots).unwrap();
    pa.set(2, prog).unwrap();
    assert_eq!(pa.get_id(2).unwrap(), Some(prog.kernel().unwrap().id()));
    assert_eq!(pa.get_id(1).unwrap(), None);
    pa.clear(2).unwrap();
    assert_eq!(pa.get_id(2).unwrap(), None);
    // A hash map is not a prog array.
    let hash = make(Backend::Kernel, "h", MapType::Hash, 4, 4, 1);
    assert!(ProgArray::new(&hash)
        .err()
        .unwrap()
        .to_string()
        .contains("not a prog_array"));

    let inner =
        KernelMap::create(&MapDefinition::new("inner", MapType::Array, 4, 8, 1), None).unwrap();
    let outer = Map::from_kernel(
        KernelMap::create(
            &MapDefinition::new("aom", MapType::ArrayOfMaps, 4, 4, 2),
            Some(&inner),
        )
        .unwrap(),
    );
    let other = Map::from_kernel(
        KernelMap::create(&MapDefinition::new("other", MapType::Array, 4, 8, 1), None).unwrap(),
    );
    let aom = MapOfMaps::<u32>::new(&outer).unwrap();
    aom.set(&1, &other).unwrap();
    assert_eq!(aom.get_id(&1).unwrap(), Some(other.kernel().unwrap().id()));
    aom.remove(&1).unwrap();
    assert_eq!(aom.get_id(&1).unwrap(), None);
    // A VM map cannot go into a kernel outer map.
    let vm_map = make(Backend::Vm, "vm", MapType::Array, 4, 8, 1);
    assert!(aom.set(&0, &vm_map).is_err());
}
