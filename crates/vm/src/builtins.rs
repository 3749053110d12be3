//! The helpers the VM provides itself, under their kernel ids and with the
//! kernel's return values and error codes, and the per-run environment that
//! connects them to maps, the current task and the program's context.

use std::borrow::Cow;

use bpfkit_abi::{errno, helper, ringbuf_flags};

use crate::context::{ContextKind, PacketPointers, PointerField};
use crate::helpers::{HelperContext, HelperRegistry};
use crate::interp::{
    Callback, CallbackKind, CallbackStart, Environment, HelperCallError, HelperOutcome, LookupMemo,
    FUNC_ADDR_TAG, MAX_TAIL_CALLS,
};
use crate::maps::{Map, ProgramValue};
use crate::memory::{AddressSpace, LookupTag, RegionKind};
use crate::VmState;

/// The helper id libbpf (and bpfkit) write into instructions whose CO-RE
/// relocation failed, so that only a reached one fails.
const POISONED_CALL: i64 = 0xbad2310;

/// Program registers hold maps as this tag plus the map id.
pub(crate) const MAP_HANDLE_TAG: u64 = 1 << 62;

// Helper ids (include/uapi/linux/bpf.h) of the helpers that take a callback.
pub(crate) const TIMER_INIT: i32 = 169;
pub(crate) const TIMER_SET_CALLBACK: i32 = 170;
pub(crate) const TIMER_START: i32 = 171;
pub(crate) const TIMER_CANCEL: i32 = 172;
pub(crate) const FOR_EACH_MAP_ELEM: i32 = 164;
pub(crate) const FIND_VMA: i32 = 180;
pub(crate) const LOOP: i32 = 181;
/// `BPF_MAX_LOOPS`: the most iterations bpf_loop makes.
const MAX_LOOPS: u64 = 1 << 23;

/// Whether helper `id` calls a program function back, so that the
/// interpreter runs it (the loader lowers its calls to `CallWithCallback`).
pub(crate) fn calls_back(id: i32) -> bool {
    matches!(id, LOOP | FOR_EACH_MAP_ELEM)
}

/// The name of a helper that calls back, for error messages.
pub(crate) fn helper_name(id: i32) -> &'static str {
    match id {
        LOOP => "bpf_loop",
        FOR_EACH_MAP_ELEM => "bpf_for_each_map_elem",
        _ => "helper",
    }
}

fn neg(e: i32) -> u64 {
    (-(e as i64)) as u64
}

/// The environment of one run.
pub(crate) struct RunEnv<'a> {
    pub(crate) state: &'a mut VmState,
    pub(crate) helpers: &'a mut HelperRegistry,
    pub(crate) maps: &'a [Map],
    pub(crate) context: ContextKind,
    pub(crate) ctx_base: u64,
    pub(crate) packet: Option<PacketPointers>,
    /// Ring buffer reservations: (record address, map, token). A list, not
    /// a tree: a run holds few at once, and an empty one costs nothing to
    /// make and drop on every run.
    pub(crate) reservations: Vec<(u64, Map, u64)>,
    pub(crate) tail_calls: usize,
    /// Key regions of finished bpf_for_each_map_elem calls, (address,
    /// size), for the next ones to reuse: a loop of such calls adds no regions.
    pub(crate) free_keys: Vec<(u64, usize)>,
}

fn fault(name: &str, message: impl Into<String>) -> HelperCallError {
    HelperCallError::Fault {
        name: name.to_string(),
        message: message.into(),
    }
}

impl RunEnv<'_> {
    /// The map `handle` names, borrowed when the VM holds it (no reference
    /// count traffic on the hot path of map helpers).
    #[inline(always)]
    fn map_ref(&self, handle: u64, name: &str) -> Result<Cow<'_, Map>, HelperCallError> {
        if handle & MAP_HANDLE_TAG != 0 {
            let id = (handle & !MAP_HANDLE_TAG) as u32;
            if let Some(map) = self.maps.iter().find(|m| m.id() == id) {
                return Ok(Cow::Borrowed(map));
            }
        }
        Self::map_elsewhere(handle, name).map(Cow::Owned)
    }

    /// [`Self::map_ref`] of a map the VM does not hold (an inner map), or
    /// the error for a handle that names none.
    #[inline(never)]
    fn map_elsewhere(handle: u64, name: &str) -> Result<Map, HelperCallError> {
        if handle & MAP_HANDLE_TAG == 0 {
            return Err(fault(name, format!("{handle:#x} is not a map")));
        }
        let id = (handle & !MAP_HANDLE_TAG) as u32;
        Map::from_id(id).ok_or_else(|| fault(name, format!("map {id} does not exist")))
    }

    fn map_arg(&self, handle: u64, name: &str) -> Result<Map, HelperCallError> {
        if handle & MAP_HANDLE_TAG == 0 {
            return Err(fault(name, format!("{handle:#x} is not a map")));
        }
        let id = (handle & !MAP_HANDLE_TAG) as u32;
        self.maps
            .iter()
            .find(|m| m.id() == id)
            .cloned()
            .or_else(|| Map::from_id(id))
            .ok_or_else(|| fault(name, format!("map {id} does not exist")))
    }

    fn read(
        memory: &AddressSpace,
        addr: u64,
        len: usize,
        name: &str,
        what: &str,
    ) -> Result<Vec<u8>, HelperCallError> {
        memory.read(addr, len).map_err(|e| {
            fault(
                name,
                format!("reading {what} ({len} bytes at {addr:#x}): {e}"),
            )
        })
    }

    /// As [`Self::read`], borrowing bytes the run owns.
    fn read_borrowed<'m>(
        memory: &'m AddressSpace,
        addr: u64,
        len: usize,
        name: &str,
        what: &str,
    ) -> Result<Cow<'m, [u8]>, HelperCallError> {
        memory.read_borrowed(addr, len).map_err(|e| {
            fault(
                name,
                format!("reading {what} ({len} bytes at {addr:#x}): {e}"),
            )
        })
    }

    fn write(
        memory: &mut AddressSpace,
        addr: u64,
        bytes: &[u8],
        name: &str,
    ) -> Result<(), HelperCallError> {
        memory.write(addr, bytes).map_err(|e| {
            fault(
                name,
                format!("writing {} bytes at {addr:#x}: {e}", bytes.len()),
            )
        })
    }

    /// Reads through a probe: VM memory first, then memory the embedder registered.
    fn probe(&self, memory: &AddressSpace, addr: u64, len: usize) -> Option<Vec<u8>> {
        if let Ok(b) = memory.read(addr, len) {
            return Some(b);
        }
        self.state.probe_memory.iter().find_map(|(base, bytes)| {
            let off = addr.checked_sub(*base)? as usize;
            bytes.get(off..off.checked_add(len)?).map(<[u8]>::to_vec)
        })
    }

    fn probe_str(&self, memory: &AddressSpace, addr: u64, max: usize) -> Option<Vec<u8>> {
        let tail = match memory.read_tail(addr, max) {
            Ok((_, b)) => b,
            Err(_) => self.state.probe_memory.iter().find_map(|(base, bytes)| {
                let off = addr.checked_sub(*base)? as usize;
                let end = bytes.len().min(off.saturating_add(max));
                bytes.get(off..end).map(<[u8]>::to_vec)
            })?,
        };
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Some(tail[..end].to_vec())
    }

    fn builtin(
        &mut self,
        id: i64,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Option<Result<HelperOutcome, HelperCallError>> {
        let ret = |v: u64| Some(Ok(HelperOutcome::Return(v)));
        let id = i32::try_from(id).ok()?;
        Some(match id {
            helper::MAP_LOOKUP_ELEM => self.map_lookup(a, memory),
            helper::MAP_UPDATE_ELEM => self.map_update(a, memory),
            helper::MAP_DELETE_ELEM => self.map_delete(a, memory),
            helper::MAP_PUSH_ELEM | helper::MAP_POP_ELEM | helper::MAP_PEEK_ELEM => {
                self.map_queue(id, a, memory)
            }
            helper::KTIME_GET_NS | helper::KTIME_GET_BOOT_NS | helper::KTIME_GET_COARSE_NS => {
                return ret(self.state.clock_ns())
            }
            helper::GET_PRANDOM_U32 => return ret(self.state.next_random() as u64),
            helper::GET_SMP_PROCESSOR_ID => return ret(self.state.cpu as u64),
            helper::GET_CURRENT_TASK => return ret(self.state.task_addr),
            helper::GET_CURRENT_PID_TGID => {
                let t = &self.state.task;
                return ret(((t.tgid as u64) << 32) | t.pid as u64);
            }
            helper::GET_CURRENT_UID_GID => {
                let t = &self.state.task;
                return ret(((t.gid as u64) << 32) | t.uid as u64);
            }
            helper::GET_CURRENT_COMM => {
                let size = a[1] as usize;
                if size == 0 {
                    return ret(neg(errno::EINVAL));
                }
                // As the kernel's strscpy_pad(): the name, NUL-padded to
                // `size`. The destination is checked before anything is
                // written or allocated: `size` is the program's to choose.
                let name = "bpf_get_current_comm";
                if let Err(e) = memory.zero(a[0], size) {
                    let at = a[0];
                    return Some(Err(fault(
                        name,
                        format!("writing {size} bytes at {at:#x}: {e}"),
                    )));
                }
                let comm = &self.state.task.comm;
                let n = comm.len().min(size - 1);
                Self::write(memory, a[0], &comm[..n], name).map(|_| HelperOutcome::Return(0))
            }
            helper::TRACE_PRINTK => self.trace_printk(a, memory),
            helper::SNPRINTF => self.snprintf(a, memory),
            helper::TAIL_CALL => self.tail_call(a),
            helper::PERF_EVENT_OUTPUT => self.perf_output(a, memory),
            helper::RINGBUF_OUTPUT
            | helper::RINGBUF_RESERVE
            | helper::RINGBUF_SUBMIT
            | helper::RINGBUF_DISCARD
            | helper::RINGBUF_QUERY => self.ringbuf(id, a, memory),
            helper::PROBE_READ | helper::PROBE_READ_KERNEL | helper::PROBE_READ_USER => {
                let len = a[1] as usize;
                match self.probe(memory, a[2], len) {
                    Some(bytes) => Self::write(memory, a[0], &bytes, "bpf_probe_read")
                        .map(|_| HelperOutcome::Return(0)),
                    None => {
                        // Like the kernel: zero the destination, return -EFAULT.
                        let _ = memory.zero(a[0], len);
                        Ok(HelperOutcome::Return(neg(errno::EFAULT)))
                    }
                }
            }
            helper::PROBE_READ_STR
            | helper::PROBE_READ_KERNEL_STR
            | helper::PROBE_READ_USER_STR => {
                let size = a[1] as usize;
                if size == 0 {
                    return ret(0);
                }
                match self.probe_str(memory, a[2], size - 1) {
                    Some(mut s) => {
                        s.push(0);
                        let n = s.len() as u64;
                        Self::write(memory, a[0], &s, "bpf_probe_read_str")
                            .map(|_| HelperOutcome::Return(n))
                    }
                    None => {
                        let _ = memory.write(a[0], &[0]);
                        Ok(HelperOutcome::Return(neg(errno::EFAULT)))
                    }
                }
            }
            helper::SPIN_LOCK | helper::SPIN_UNLOCK => {
                let locking = id == helper::SPIN_LOCK;
                let name = if locking {
                    "bpf_spin_lock"
                } else {
                    "bpf_spin_unlock"
                };
                let word = match memory.load::<4>(a[0]) {
                    Ok(w) => u32::from_le_bytes(w),
                    Err(e) => return Some(Err(fault(name, e.to_string()))),
                };
                if locking && word != 0 {
                    // A second lock in a single-threaded run would deadlock.
                    return Some(Err(fault(name, "lock is already held")));
                }
                if !locking && word == 0 {
                    return Some(Err(fault(name, "lock is not held")));
                }
                let new = if locking { 1u32 } else { 0 };
                Self::write(memory, a[0], &new.to_le_bytes(), name)
                    .map(|_| HelperOutcome::Return(0))
            }
            helper::XDP_ADJUST_HEAD | helper::XDP_ADJUST_TAIL | helper::XDP_ADJUST_META => {
                self.xdp_adjust(id, a[1] as i32 as i64)
            }
            helper::SKB_LOAD_BYTES => {
                let Some(p) = self.packet else {
                    return ret(neg(errno::EINVAL));
                };
                let (off, len) = (a[1], a[3] as usize);
                let end = p.data.wrapping_add(off).wrapping_add(len as u64);
                if off > u32::MAX as u64 || end > p.data_end {
                    return ret(neg(errno::EFAULT));
                }
                match memory.read(p.data + off, len) {
                    Ok(bytes) => Self::write(memory, a[2], &bytes, "bpf_skb_load_bytes")
                        .map(|_| HelperOutcome::Return(0)),
                    Err(_) => Ok(HelperOutcome::Return(neg(errno::EFAULT))),
                }
            }
            helper::CSUM_DIFF => self.csum_diff(a, memory),
            FIND_VMA => {
                // bpf_find_vma(task, addr, callback_fn, ctx, flags): the VM's
                // tasks have no memory map, so no address is in a VMA and the
                // callback is never called, as for an unmapped address.
                return ret(neg(if a[4] != 0 {
                    errno::EINVAL
                } else {
                    errno::ENOENT
                }));
            }
            TIMER_INIT | TIMER_SET_CALLBACK | TIMER_START | TIMER_CANCEL => {
                let name = match id {
                    TIMER_INIT => "bpf_timer_init",
                    TIMER_SET_CALLBACK => "bpf_timer_set_callback",
                    TIMER_START => "bpf_timer_start",
                    _ => "bpf_timer_cancel",
                };
                Err(fault(
                    name,
                    "BPF timers are not supported in the userspace VM: a run ends \
                     before a timer could fire; test timer callbacks in the kernel",
                ))
            }
            _ => return None,
        })
    }

    /// Whether `bpf_map_lookup_elem` is not the built-in: an embedder's
    /// helper 1 replaces it, as in `call_helper`, and so does turning the
    /// built-ins off.
    #[inline(always)]
    fn lookup_replaced(&self) -> bool {
        !self.state.builtins || self.helpers.has_map_lookup()
    }

    /// `bpf_map_lookup_elem`: a lookup the space remembers, else the map.
    #[inline(always)]
    fn map_lookup(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        if let Some(addr) = self.remembered_lookup(a[0], a[1], memory) {
            return Ok(HelperOutcome::Return(addr));
        }
        self.lookup_elem(a[0], a[1], memory)
            .map(HelperOutcome::Return)
    }

    /// The hot path of `bpf_map_lookup_elem`: a lookup of a key on the
    /// stack in a map the VM holds, which the space remembers from before
    /// with the map's values unchanged since, returns the same region.
    /// `None` sends every other lookup to [`Self::lookup_elem`].
    #[inline(always)]
    fn remembered_lookup(&self, handle: u64, key_addr: u64, memory: &AddressSpace) -> Option<u64> {
        let (_, tag) = self.lookup_tag_of(handle, key_addr, memory)?;
        memory.cached_lookup(&tag)
    }

    /// The map `handle` names and the tag of a lookup in it of the key at
    /// `key_addr` (a key in bytes the run owns), for maps whose lookups
    /// may be remembered.
    #[inline(always)]
    fn lookup_tag_of(
        &self,
        handle: u64,
        key_addr: u64,
        memory: &AddressSpace,
    ) -> Option<(&Map, LookupTag)> {
        if handle & MAP_HANDLE_TAG == 0 {
            return None;
        }
        let id = (handle & !MAP_HANDLE_TAG) as u32;
        let map = self.maps.iter().find(|m| m.id() == id)?;
        let key = memory.owned_bytes(key_addr, map.def().key_size as usize)?;
        Some((map, map.lookup_tag(key, self.state.cpu as usize)?))
    }

    /// `bpf_map_lookup_elem` as [`Self::map_lookup`], with the memo that
    /// lets compiled code give a value's address again itself (keys of 4
    /// and 8 bytes only). The tag is taken before the lookup, so that its
    /// generation is no newer than what the lookup saw.
    fn map_lookup_remembering(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<(HelperOutcome, Option<LookupMemo>), HelperCallError> {
        let (memo, remembered) = match self.lookup_tag_of(a[0], a[1], memory) {
            Some((map, tag)) => {
                let memo = matches!(map.def().key_size, 4 | 8).then(|| LookupMemo {
                    key: tag.key as u64,
                    key_size: map.def().key_size as u8,
                    generation: tag.generation,
                    generation_word: map.generation_word(),
                });
                (memo, memory.cached_lookup(&tag))
            }
            None => (None, None),
        };
        let addr = match remembered {
            Some(addr) => addr,
            None => self.lookup_elem(a[0], a[1], memory)?,
        };
        // Only a value's address: not 0 (no element) or an inner map.
        let value = addr != 0 && addr & MAP_HANDLE_TAG == 0;
        Ok((HelperOutcome::Return(addr), memo.filter(|_| value)))
    }

    /// `bpf_map_lookup_elem(map, key)`: the value's address (its region is
    /// added once per run and found again by identity afterwards), an inner
    /// map's handle, or 0.
    #[inline(never)]
    fn lookup_elem(
        &mut self,
        handle: u64,
        key_addr: u64,
        memory: &mut AddressSpace,
    ) -> Result<u64, HelperCallError> {
        let name = "bpf_map_lookup_elem";
        let map = self.map_ref(handle, name)?;
        let key_size = map.def().key_size as usize;
        let cpu = self.state.cpu as usize;
        // A key on the stack is read in place; any other is copied, and
        // a bad one explained, off the hot path.
        let (found, tag) = match memory.owned_bytes(key_addr, key_size) {
            // Tagged, so that the space remembers the lookup (see
            // Self::remembered_lookup, which callers try first). The tag
            // first: its value generation must be no newer than what the
            // lookup sees, or a delete between the two would go unnoticed.
            Some(key) => {
                let tag = map.lookup_tag(key, cpu);
                (map.program_lookup(key, cpu), tag)
            }
            None => {
                let key = Self::read_borrowed(memory, key_addr, key_size, name, "key")?;
                (map.program_lookup(&key, cpu), None)
            }
        };
        Ok(match found {
            None => 0,
            Some(ProgramValue::Map(inner)) => MAP_HANDLE_TAG | inner.id() as u64,
            Some(ProgramValue::Bytes(bytes)) => {
                let addr = match memory.find_shared(&bytes) {
                    Some(addr) => addr,
                    None => {
                        let writable =
                            map.def().map_flags & bpfkit_abi::map_flags::RDONLY_PROG == 0;
                        memory.add_shared(RegionKind::MapValue, writable, bytes)
                    }
                };
                if let Some(tag) = tag {
                    memory.remember_lookup(tag, addr);
                }
                addr
            }
        })
    }

    fn map_update(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_map_update_elem";
        let map = self.map_ref(a[0], name)?;
        let key = Self::read_borrowed(memory, a[1], map.def().key_size as usize, name, "key")?;
        let value = Self::read(memory, a[2], map.def().value_size as usize, name, "value")?;
        let value = self.spread_percpu(&map, &key, value);
        Ok(HelperOutcome::Return(
            match map.update(&key, &value, a[3]) {
                Ok(()) => 0,
                Err(e) => neg(e.errno()),
            },
        ))
    }

    /// A program updates only its own CPU's copy of a per-CPU value; the
    /// syscall-level update takes every CPU's, so the others are kept.
    fn spread_percpu(&self, map: &Map, key: &[u8], value: Vec<u8>) -> Vec<u8> {
        let copies = map.value_copies();
        if copies == 1 {
            return value;
        }
        let stride = value.len().next_multiple_of(8);
        let mut all = map
            .lookup(key)
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; stride * copies]);
        let cpu = (self.state.cpu as usize).min(copies - 1);
        all[cpu * stride..cpu * stride + value.len()].copy_from_slice(&value);
        all
    }

    fn map_delete(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_map_delete_elem";
        let map = self.map_ref(a[0], name)?;
        let key = Self::read_borrowed(memory, a[1], map.def().key_size as usize, name, "key")?;
        Ok(HelperOutcome::Return(match map.delete(&key) {
            Ok(()) => 0,
            Err(e) => neg(e.errno()),
        }))
    }

    fn map_queue(
        &mut self,
        id: i32,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = match id {
            helper::MAP_PUSH_ELEM => "bpf_map_push_elem",
            helper::MAP_POP_ELEM => "bpf_map_pop_elem",
            _ => "bpf_map_peek_elem",
        };
        let map = self.map_arg(a[0], name)?;
        let vs = map.def().value_size as usize;
        let value = Self::read(memory, a[1], vs, name, "value")?;
        let r = match id {
            helper::MAP_PUSH_ELEM => map.push(&value, a[2]).map(|_| None),
            helper::MAP_POP_ELEM => map.pop(),
            _ if map.def().map_type == bpfkit_abi::MapType::BloomFilter => {
                // Bloom filter peek tests membership; nothing is written back.
                return Ok(HelperOutcome::Return(match map.peek(Some(&value)) {
                    Ok(Some(_)) => 0,
                    Ok(None) => neg(errno::ENOENT),
                    Err(e) => neg(e.errno()),
                }));
            }
            _ => map.peek(None),
        };
        Ok(HelperOutcome::Return(match r {
            Ok(Some(v)) => {
                Self::write(memory, a[1], &v, name)?;
                0
            }
            Ok(None) if id == helper::MAP_PUSH_ELEM => 0,
            Ok(None) => neg(errno::ENOENT),
            Err(e) => neg(e.errno()),
        }))
    }

    fn tail_call(&mut self, a: [u64; 5]) -> Result<HelperOutcome, HelperCallError> {
        let map = self.map_arg(a[1], "bpf_tail_call")?;
        // On any failure the kernel's tail call falls through to the next instruction.
        if self.tail_calls >= MAX_TAIL_CALLS {
            return Ok(HelperOutcome::Return(neg(errno::ENOENT)));
        }
        match map.program(a[2] as u32) {
            Some(p) => {
                self.tail_calls += 1;
                Ok(HelperOutcome::TailCall(p))
            }
            None => Ok(HelperOutcome::Return(neg(errno::ENOENT))),
        }
    }

    fn perf_output(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_perf_event_output";
        let map = self.map_arg(a[1], name)?;
        let index = a[2] & 0xffff_ffff;
        let cpu = if index == ringbuf_flags::CURRENT_CPU {
            self.state.cpu as usize
        } else {
            index as usize
        };
        let data = Self::read(memory, a[3], a[4] as usize, name, "data")?;
        Ok(HelperOutcome::Return(match map.perf_output(cpu, data) {
            Ok(()) => 0,
            Err(e) => neg(e.errno()),
        }))
    }

    fn ringbuf(
        &mut self,
        id: i32,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let ret = |v: u64| Ok(HelperOutcome::Return(v));
        match id {
            helper::RINGBUF_OUTPUT => {
                let name = "bpf_ringbuf_output";
                let map = self.map_arg(a[0], name)?;
                let data = Self::read(memory, a[1], a[2] as usize, name, "data")?;
                match map.with_ringbuf(|r| r.output(data)) {
                    Some(true) => ret(0),
                    Some(false) => ret(neg(errno::EAGAIN)),
                    None => Err(fault(name, "map is not a ring buffer")),
                }
            }
            helper::RINGBUF_RESERVE => {
                let name = "bpf_ringbuf_reserve";
                let map = self.map_arg(a[0], name)?;
                if a[2] != 0 {
                    return ret(0);
                }
                match map.with_ringbuf(|r| r.reserve(a[1] as usize)) {
                    Some(Some((token, bytes))) => {
                        let addr = memory.add_shared(RegionKind::RingBufRecord, true, bytes);
                        self.reservations.push((addr, map, token));
                        ret(addr)
                    }
                    Some(None) => ret(0),
                    None => Err(fault(name, "map is not a ring buffer")),
                }
            }
            helper::RINGBUF_SUBMIT | helper::RINGBUF_DISCARD => {
                let name = if id == helper::RINGBUF_SUBMIT {
                    "bpf_ringbuf_submit"
                } else {
                    "bpf_ringbuf_discard"
                };
                let at = self
                    .reservations
                    .iter()
                    .position(|r| r.0 == a[0])
                    .ok_or_else(|| fault(name, format!("{:#x} is not a reserved record", a[0])))?;
                let (_, map, token) = self.reservations.swap_remove(at);
                map.with_ringbuf(|r| r.release(token, id == helper::RINGBUF_DISCARD));
                ret(0)
            }
            _ => {
                let map = self.map_arg(a[0], "bpf_ringbuf_query")?;
                ret(map.with_ringbuf(|r| r.query(a[1])).unwrap_or(0))
            }
        }
    }

    fn xdp_adjust(&mut self, id: i32, delta: i64) -> Result<HelperOutcome, HelperCallError> {
        let einval = Ok(HelperOutcome::Return(neg(errno::EINVAL)));
        if self.context != ContextKind::Xdp {
            return einval;
        }
        let Some(p) = self.packet.as_mut() else {
            return einval;
        };
        let end = p.buffer + p.buffer_len;
        match id {
            helper::XDP_ADJUST_HEAD => {
                // Metadata moves with the data; at least an Ethernet header must remain.
                let metalen = p.data - p.data_meta;
                let data = p.data as i64 + delta;
                if data - (metalen as i64) < p.buffer as i64 || data + 14 > p.data_end as i64 {
                    return einval;
                }
                p.data = data as u64;
                p.data_meta = p.data - metalen;
            }
            helper::XDP_ADJUST_TAIL => {
                let data_end = p.data_end as i64 + delta;
                if data_end < p.data as i64 + 14 || data_end > end as i64 {
                    return einval;
                }
                p.data_end = data_end as u64;
            }
            _ => {
                let meta = p.data_meta as i64 + delta;
                if meta < p.buffer as i64 || meta > p.data as i64 || (p.data as i64 - meta) > 32 {
                    return einval;
                }
                p.data_meta = meta as u64;
            }
        }
        Ok(HelperOutcome::Return(0))
    }

    fn csum_diff(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_csum_diff";
        let (from_size, to_size) = (a[1] as usize, a[3] as usize);
        if from_size % 4 != 0 || to_size % 4 != 0 || from_size > 512 || to_size > 512 {
            return Ok(HelperOutcome::Return(neg(errno::EINVAL)));
        }
        let from = if from_size > 0 {
            Self::read(memory, a[0], from_size, name, "from")?
        } else {
            Vec::new()
        };
        let to = if to_size > 0 {
            Self::read(memory, a[2], to_size, name, "to")?
        } else {
            Vec::new()
        };
        // One's complement sum of `to` minus `from`, seeded: csum_partial semantics.
        let mut sum: u64 = a[4] & 0xffff_ffff;
        for w in to.chunks_exact(4) {
            sum += u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        for w in from.chunks_exact(4) {
            sum += !u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        while sum >> 32 != 0 {
            sum = (sum & 0xffff_ffff) + (sum >> 32);
        }
        Ok(HelperOutcome::Return(sum))
    }

    fn trace_printk(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_trace_printk";
        let fmt = Self::read(memory, a[0], a[1] as usize, name, "format")?;
        let text = self.format(&fmt, &[a[2], a[3], a[4]], memory);
        let n = text.len() as u64;
        self.state.trace.push(text);
        Ok(HelperOutcome::Return(n))
    }

    fn snprintf(
        &mut self,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        let name = "bpf_snprintf";
        let (size, fmt_addr, data_len) = (a[1] as usize, a[2], a[4] as usize);
        if data_len % 8 != 0 || data_len > 8 * 12 {
            return Ok(HelperOutcome::Return(neg(errno::EINVAL)));
        }
        let (_, fmt) = memory
            .read_tail(fmt_addr, 1024)
            .map_err(|e| fault(name, format!("format: {e}")))?;
        let data = if data_len > 0 {
            Self::read(memory, a[3], data_len, name, "arguments")?
        } else {
            Vec::new()
        };
        let args: Vec<u64> = data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let mut out = self.format(&fmt, &args, memory).into_bytes();
        let full = out.len() as u64 + 1;
        if size > 0 {
            out.truncate(size - 1);
            out.push(0);
            Self::write(memory, a[0], &out, name)?;
        }
        Ok(HelperOutcome::Return(full))
    }

    /// printf-style formatting of the subset the kernel accepts.
    fn format(&self, fmt: &[u8], args: &[u64], memory: &AddressSpace) -> String {
        let end = fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len());
        let fmt = String::from_utf8_lossy(&fmt[..end]);
        let mut out = String::new();
        let mut args = args.iter().copied();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut longs = 0;
            while chars.peek() == Some(&'l') || chars.peek() == Some(&'h') {
                if chars.next() == Some('l') {
                    longs += 1;
                }
            }
            let Some(conv) = chars.next() else { break };
            if conv == '%' {
                out.push('%');
                continue;
            }
            let v = args.next().unwrap_or(0);
            let wide = longs > 0;
            match conv {
                'd' | 'i' => out.push_str(&if wide {
                    (v as i64).to_string()
                } else {
                    (v as i32).to_string()
                }),
                'u' => out.push_str(&if wide {
                    v.to_string()
                } else {
                    (v as u32).to_string()
                }),
                'x' => out.push_str(&if wide {
                    format!("{v:x}")
                } else {
                    format!("{:x}", v as u32)
                }),
                'X' => out.push_str(&if wide {
                    format!("{v:X}")
                } else {
                    format!("{:X}", v as u32)
                }),
                'c' => out.push((v as u8) as char),
                'p' => {
                    // %pK, %pS... print the address.
                    while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                        chars.next();
                    }
                    out.push_str(&format!("0x{v:x}"));
                }
                's' => {
                    let s = self.probe_str(memory, v, 512).unwrap_or_default();
                    out.push_str(&String::from_utf8_lossy(&s));
                }
                other => {
                    out.push('%');
                    out.push(other);
                }
            }
        }
        out
    }
}

impl Environment for RunEnv<'_> {
    fn call_helper(
        &mut self,
        id: i64,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        // Embedder helpers take precedence, so they can replace a built-in.
        if let Some(h) = self.helpers.get_mut(id) {
            let mut ctx = HelperContext { memory };
            return (h.func)(&mut ctx, args).map_err(|message| HelperCallError::Fault {
                name: h.name.clone(),
                message,
            });
        }
        if self.state.builtins {
            if let Some(r) = self.builtin(id, args, memory) {
                return r;
            }
        }
        if id == POISONED_CALL {
            return Err(fault(
                "CO-RE",
                "reached an instruction whose CO-RE relocation could not be resolved \
                 against the target BTF (libbpf's poisoned call 0xbad2310)",
            ));
        }
        Err(HelperCallError::Unknown)
    }

    fn map_lookup_elem(
        &mut self,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        if self.lookup_replaced() {
            return self.call_helper(helper::MAP_LOOKUP_ELEM as i64, args, memory);
        }
        self.map_lookup(args, memory)
    }

    fn lookup_locks_values(&self) -> bool {
        // The built-in lookup finds values and adds their regions (whose
        // length SharedBytes knows) without locking them.
        self.lookup_replaced()
    }

    fn map_lookup_memo(
        &mut self,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<(HelperOutcome, Option<LookupMemo>), HelperCallError> {
        if self.lookup_replaced() {
            let outcome = self.call_helper(helper::MAP_LOOKUP_ELEM as i64, args, memory)?;
            return Ok((outcome, None));
        }
        self.map_lookup_remembering(args, memory)
    }

    fn map_handle(&mut self, index: u32) -> Result<u64, HelperCallError> {
        self.maps
            .get(index as usize)
            .map(|m| MAP_HANDLE_TAG | m.id() as u64)
            .ok_or_else(|| {
                fault(
                    "lddw",
                    format!(
                        "program refers to map {index}, but only {} are loaded",
                        self.maps.len()
                    ),
                )
            })
    }

    fn map_value_addr(
        &mut self,
        index: u32,
        offset: u32,
        memory: &mut AddressSpace,
    ) -> Result<u64, HelperCallError> {
        let map = self.maps.get(index as usize).cloned().ok_or_else(|| {
            fault(
                "lddw",
                format!(
                    "program refers to map {index}, but only {} are loaded",
                    self.maps.len()
                ),
            )
        })?;
        if offset >= map.def().value_size {
            return Err(fault(
                "lddw",
                format!(
                    "offset {offset} is past the {}-byte value of map {index}",
                    map.def().value_size
                ),
            ));
        }
        let Some(ProgramValue::Bytes(bytes)) =
            map.program_lookup(&0u32.to_ne_bytes(), self.state.cpu as usize)
        else {
            return Err(fault(
                "lddw",
                format!("map {index} has no value at index 0"),
            ));
        };
        let base = match memory.find_shared(&bytes) {
            Some(addr) => addr,
            None => {
                let writable = map.def().map_flags & bpfkit_abi::map_flags::RDONLY_PROG == 0;
                memory.add_shared(RegionKind::MapValue, writable, bytes)
            }
        };
        Ok(base + offset as u64)
    }

    fn start_callback(
        &mut self,
        id: i64,
        a: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Option<Result<CallbackStart, HelperCallError>> {
        // An embedder's helper under the same id replaces the built-in.
        if !self.state.builtins || self.helpers.contains(id) {
            return None;
        }
        let id = i32::try_from(id).ok()?;
        let name = helper_name(id);
        let start = |kind| {
            Ok(CallbackStart::Calls(Box::new(Callback {
                func: a[1],
                calls: 0,
                kind,
            })))
        };
        Some(match id {
            // bpf_loop(nr_loops, callback_fn, callback_ctx, flags)
            LOOP => {
                let nr = a[0] & 0xffff_ffff;
                if a[3] != 0 {
                    Ok(CallbackStart::Return(neg(errno::EINVAL)))
                } else if nr > MAX_LOOPS {
                    Ok(CallbackStart::Return(neg(errno::E2BIG)))
                } else {
                    start(CallbackKind::Loop { nr, ctx: a[2] })
                }
            }
            // bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags)
            FOR_EACH_MAP_ELEM => {
                let map = match self.map_arg(a[0], name) {
                    Ok(m) => m,
                    Err(e) => return Some(Err(e)),
                };
                if a[3] != 0 {
                    return Some(Ok(CallbackStart::Return(neg(errno::EINVAL))));
                }
                if a[1] & FUNC_ADDR_TAG == 0 {
                    return Some(Err(fault(
                        name,
                        format!("callback_fn {:#x} is not a function of the program", a[1]),
                    )));
                }
                use bpfkit_abi::MapType::*;
                let t = map.def().map_type;
                if !matches!(
                    t,
                    Hash | PercpuHash | LruHash | LruPercpuHash | Array | PercpuArray
                ) {
                    return Some(Err(fault(
                        name,
                        format!(
                            "{t:?} maps cannot be iterated (the kernel's verifier refuses them)"
                        ),
                    )));
                }
                // The kernel visits the elements present as it goes; a
                // snapshot of the keys, skipping those deleted meanwhile, is
                // what a program can observe of that.
                let mut keys = Vec::new();
                let mut key = None;
                while let Ok(Some(k)) = map.next_key(key.as_deref()) {
                    keys.push(k.clone());
                    key = Some(k);
                }
                let key_size = map.def().key_size as usize;
                // The callback's key is read-only (PTR_TO_MAP_KEY).
                let key_addr = match self.free_keys.iter().position(|&(_, n)| n == key_size) {
                    Some(i) => self.free_keys.swap_remove(i).0,
                    None => memory.add(RegionKind::HelperBuffer, false, vec![0; key_size]),
                };
                start(CallbackKind::MapElements {
                    map_handle: a[0],
                    map,
                    keys: keys.into_iter(),
                    key_addr,
                    ctx: a[2],
                })
            }
            _ => return None,
        })
    }

    fn next_callback(
        &mut self,
        callback: &mut Callback,
        memory: &mut AddressSpace,
    ) -> Result<Option<[u64; 5]>, HelperCallError> {
        let args = match &mut callback.kind {
            CallbackKind::Loop { nr, ctx } => {
                if callback.calls >= *nr {
                    return Ok(None);
                }
                [callback.calls, *ctx, 0, 0, 0]
            }
            CallbackKind::MapElements {
                map_handle,
                map,
                keys,
                key_addr,
                ctx,
            } => loop {
                let Some(key) = keys.next() else {
                    return Ok(None);
                };
                let Some(ProgramValue::Bytes(value)) =
                    map.program_lookup(&key, self.state.cpu as usize)
                else {
                    continue;
                };
                let value_addr = match memory.find_shared(&value) {
                    Some(addr) => addr,
                    None => {
                        let writable =
                            map.def().map_flags & bpfkit_abi::map_flags::RDONLY_PROG == 0;
                        memory.add_shared(RegionKind::MapValue, writable, value)
                    }
                };
                memory
                    .write_as_runtime(*key_addr, &key)
                    .map_err(|e| fault("bpf_for_each_map_elem", format!("writing the key: {e}")))?;
                break [*map_handle, *key_addr, value_addr, *ctx, 0];
            },
        };
        callback.calls += 1;
        Ok(Some(args))
    }

    fn end_callback(&mut self, callback: &Callback) {
        if let CallbackKind::MapElements { key_addr, map, .. } = &callback.kind {
            self.free_keys
                .push((*key_addr, map.def().key_size as usize));
        }
    }

    fn packet(&self) -> Option<u64> {
        self.packet.map(|p| p.data)
    }

    fn context_pointer(&self, addr: u64) -> Option<u64> {
        let off = addr.checked_sub(self.ctx_base)?;
        let field = self.context.pointer_field(usize::try_from(off).ok()?)?;
        let p = self.packet?;
        Some(match field {
            PointerField::Data => p.data,
            PointerField::DataEnd => p.data_end,
            PointerField::DataMeta => p.data_meta,
        })
    }
}
