//! Calls to kernel functions (`check_kfunc_call`): the arguments a kfunc
//! takes, the references it acquires and releases, and RCU read-side
//! sections, from the kfunc table in `bpfkit_abi::kfuncs`.

use super::{fail, Env, Flow, R};
use crate::state::{RegState, RegType, State};
use bpfkit_abi::{kfunc_proto, KernelObject, KfuncArg, KfuncRet};

/// The `aux` of a pointer to `o`; 0 is a kernel object of unknown type.
fn object_code(o: KernelObject) -> u32 {
    match o {
        KernelObject::Task => 1,
        KernelObject::Cgroup => 2,
    }
}

fn object_of(code: u32) -> Option<KernelObject> {
    match code {
        1 => Some(KernelObject::Task),
        2 => Some(KernelObject::Cgroup),
        _ => None,
    }
}

/// The kfunc that releases what kfunc `name` acquires.
pub(super) fn releaser_of(name: &str) -> Option<&'static str> {
    let KfuncRet::Object(o) = kfunc_proto(name)?.ret else {
        return None;
    };
    bpfkit_abi::KFUNCS
        .iter()
        .find(|k| k.release && k.args.first() == Some(&KfuncArg::Object(o)))
        .map(|k| k.name)
}

/// A trusted, non-NULL pointer to `o`.
pub(super) fn object_pointer(o: KernelObject) -> RegState {
    RegState {
        trusted: true,
        ..RegState::pointer(RegType::BtfId, object_code(o))
    }
}

impl Env<'_> {
    pub(super) fn kfunc_call(&mut self, pc: usize, s: &mut State, btf_id: i32) -> R<Flow> {
        let Some(name) = self.prog.kfuncs.get(&pc) else {
            return fail(format!(
                "kernel function with BTF id {btf_id} is called, but its name is not known: \
                 bpfkit checks kfuncs by name (give raw programs `kfunc_names`)"
            ));
        };
        let Some(proto) = kfunc_proto(name) else {
            return fail(format!(
                "calls to kernel function {name} are not modelled by bpfkit's verifier"
            ));
        };
        // `fetch_kfunc_meta`: the set must be registered for this program type.
        if !proto.set.allows(self.prog_type) {
            return fail(format!(
                "calling kernel function {name} is not allowed in {} programs",
                self.prog_type.name()
            ));
        }
        // `check_kfunc_call`'s rcu_lock / rcu_unlock cases.
        if name == "bpf_rcu_read_lock" {
            if let Some(at) = s.rcu_lock {
                return fail(format!(
                    "nested rcu read lock (kernel function {name}): \
                     this path is already inside the section locked at {}",
                    self.line_str(at)
                ));
            }
            s.rcu_lock = Some(pc);
        } else if name == "bpf_rcu_read_unlock" && s.rcu_lock.take().is_none() {
            return fail(format!(
                "unmatched rcu read unlock (kernel function {name}): \
                 no bpf_rcu_read_lock is held on this path"
            ));
        }
        let regs: [RegState; 6] = core::array::from_fn(|i| s.cur().regs[i]);
        let mut release = None;
        for (i, arg) in proto.args.iter().enumerate() {
            let rn = i + 1;
            let r = regs[rn];
            if r.ty == RegType::NotInit {
                return fail(format!("R{rn} !read_ok: argument {i} of {name} is not set"));
            }
            match *arg {
                KfuncArg::Scalar => {
                    if r.ty != RegType::Scalar {
                        return fail(format!(
                            "R{rn} is not a scalar: arg#{i} of {name} is a number, not a {}",
                            r.ty.name(r.maybe_null)
                        ));
                    }
                }
                KfuncArg::Object(o) => {
                    // `check_kfunc_args`, KF_ARG_PTR_TO_BTF_ID.
                    if r.ty != RegType::BtfId {
                        return fail(format!(
                            "arg#{i} pointer type STRUCT {} must point to scalar, or struct with scalar: \
                             R{rn} holds a {}, not a pointer to struct {}",
                            o.struct_name(),
                            r.ty.name(r.maybe_null),
                            o.struct_name()
                        ));
                    }
                    if r.maybe_null {
                        return fail(format!(
                            "Possibly NULL pointer passed to trusted arg{i}: R{rn} may be NULL here \
                             (check the value {} returned at {} against NULL first)",
                            self.origin_name(r.origin as usize),
                            self.line_str(r.origin as usize)
                        ));
                    }
                    if let Some(have) = object_of(r.aux).filter(|&h| h != o) {
                        return fail(format!(
                            "kernel function {name} args#{i} expected pointer to STRUCT {} \
                             but R{rn} has a pointer to STRUCT {}",
                            o.struct_name(),
                            have.struct_name()
                        ));
                    }
                    if r.off != 0 || r.var.as_const() != Some(0) {
                        return fail(format!(
                            "R{rn} must have zero offset when passed to release func or trusted arg to kfunc"
                        ));
                    }
                    if proto.release && i == 0 {
                        if r.ref_obj_id == 0 {
                            return fail(format!(
                                "release kernel function {name} expects refcounted PTR_TO_BTF_ID: \
                                 R{rn} is not a reference a kfunc acquired"
                            ));
                        }
                        release = Some(r.ref_obj_id);
                    } else if proto.rcu && !r.trusted && r.ref_obj_id == 0 {
                        return fail(format!(
                            "R{rn} must be a rcu pointer: {name} needs a trusted pointer \
                             (an argument of the program, or a reference it holds), \
                             not one read from a kernel object"
                        ));
                    }
                }
            }
        }
        if let Some(ref_id) = release {
            self.release_reference(s, ref_id)?;
        }
        let f = s.cur_mut();
        for r in 1..=5 {
            f.regs[r] = RegState::NOT_INIT;
        }
        let r0 = match proto.ret {
            KfuncRet::Void => RegState::NOT_INIT,
            KfuncRet::Scalar => RegState::unknown(),
            KfuncRet::Object(o) => {
                let mut r = object_pointer(o);
                r.origin = pc as u32;
                if proto.ret_null {
                    r.maybe_null = true;
                    r.id = self.new_id();
                }
                if proto.acquire {
                    if r.id == 0 {
                        r.id = self.new_id();
                    }
                    r.ref_obj_id = r.id;
                    s.refs.push((r.id, pc));
                }
                r
            }
        };
        s.cur_mut().regs[0] = r0;
        Ok(Flow::Next)
    }

    /// What produced the value at `origin`: a kfunc's or helper's name.
    fn origin_name(&self, origin: usize) -> String {
        match self.prog.kfuncs.get(&origin) {
            Some(name) => name.clone(),
            None => "the call".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_codes_round_trip() {
        for o in [KernelObject::Task, KernelObject::Cgroup] {
            assert_eq!(object_of(object_code(o)), Some(o));
        }
        assert_eq!(object_of(0), None);
    }
}
