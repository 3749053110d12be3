//! Writing a computed relocation into an instruction
//! (libbpf's `bpf_core_patch_insn`).

use bpfkit_isa::RawInsn;

use crate::core::{CoreError, CoreOutcome};

/// The helper id libbpf calls in a poisoned instruction (`0xbad2310`): the
/// verifier rejects the program only if that instruction is reachable.
pub const POISON_HELPER_ID: i32 = 0x0bad_2310;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const SRC_X: u8 = 0x08;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;

fn poison(slot: &mut RawInsn) {
    *slot = RawInsn::new(CALL, 0, 0, 0, POISON_HELPER_ID);
}

fn mem_size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn mem_size_bits(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

/// Applies `outcome` to the instruction at slot `index` of `insns`.
///
/// A poisoned outcome turns the instruction (both slots of an `ld_imm64`)
/// into `call 0xbad2310`. Otherwise the value the relocation targets (the
/// immediate of an ALU instruction with a constant operand, the offset of
/// a load or store, or the 64-bit immediate of `ld_imm64`) must equal
/// `outcome.orig_val` when `outcome.validate` is set, and is replaced by
/// `outcome.new_val`; a load or store whose field changed size gets the new
/// access size.
pub fn patch_insn(
    insns: &mut [RawInsn],
    index: usize,
    outcome: &CoreOutcome,
) -> Result<(), CoreError> {
    let err = |reason: String| CoreError::Patch {
        insn: index,
        reason,
    };
    let len = insns.len();
    let insn = *insns
        .get(index)
        .ok_or_else(|| err(format!("beyond the program's {len} instructions")))?;
    let is_ldimm64 = insn.code == LD_IMM64;
    if outcome.poison {
        if is_ldimm64 {
            if let Some(next) = insns.get_mut(index + 1) {
                poison(next);
            }
        }
        poison(&mut insns[index]);
        return Ok(());
    }
    let (orig, new) = (outcome.orig_val, outcome.new_val);
    match insn.class() {
        CLASS_ALU | CLASS_ALU64 => {
            if insn.code & SRC_X != 0 {
                return Err(err("ALU instruction with a register operand".into()));
            }
            // The immediate is compared the way C compares `__s32` with `__u64`.
            if outcome.validate && insn.imm as i64 as u64 != orig {
                return Err(err(format!(
                    "ALU immediate is {}, expected {orig}",
                    insn.imm
                )));
            }
            insns[index].imm = new as i32;
        }
        CLASS_LDX | CLASS_ST | CLASS_STX => {
            if outcome.validate && insn.off as i64 as u64 != orig {
                return Err(err(format!(
                    "memory offset is {}, expected {orig}",
                    insn.off
                )));
            }
            if new > i16::MAX as u64 {
                return Err(err(format!("offset {new} does not fit 16 bits")));
            }
            if outcome.fail_memsz_adjust {
                // Reading a field whose size changed would read wrong bits.
                poison(&mut insns[index]);
                return Ok(());
            }
            let slot = &mut insns[index];
            slot.off = new as i16;
            if outcome.new_size != outcome.orig_size {
                let have = mem_size_bytes(insn.code);
                if have != outcome.orig_size {
                    return Err(err(format!(
                        "access size is {have}, expected {}",
                        outcome.orig_size
                    )));
                }
                let bits = mem_size_bits(outcome.new_size).ok_or_else(|| {
                    err(format!(
                        "field size {} is not a load size",
                        outcome.new_size
                    ))
                })?;
                slot.code = (insn.code & !0x18) | bits;
            }
        }
        CLASS_LD if is_ldimm64 => {
            let next = insns.get(index + 1).copied();
            let Some(next) = next.filter(|n| {
                insn.src == 0
                    && insn.off == 0
                    && n.code == 0
                    && n.dst == 0
                    && n.src == 0
                    && n.off == 0
            }) else {
                return Err(err("ld_imm64 of unexpected form".into()));
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(next.imm as u32) << 32);
            if outcome.validate && imm != orig {
                return Err(err(format!("ld_imm64 value is {imm}, expected {orig}")));
            }
            insns[index].imm = new as u32 as i32;
            insns[index + 1].imm = (new >> 32) as u32 as i32;
        }
        _ => {
            return Err(err(format!("cannot relocate opcode {:#04x}", insn.code)));
        }
    }
    Ok(())
}
