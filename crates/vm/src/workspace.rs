//! An address space run over again and again ([`Vm::run`](crate::Vm::run)'s
//! scratch space, a test run's context and packet), kept with the same
//! layout from run to run: its entry stack frame stays in it between runs,
//! and compiled code keeps its tables of the space for the next run. A
//! short program (a packet filter) then pays on each run for its own
//! instructions, not for setting the space up again.

use crate::interp::{EngineState, Stack};
use crate::memory::{AddressSpace, RegionKind};

/// The memory a run is over.
pub(crate) struct RunSpace<'a> {
    pub(crate) space: &'a mut AddressSpace,
    pub(crate) frames: &'a mut Stack,
    /// Where compiled code keeps state of `space`, when runs over it go on.
    pub(crate) engine: Option<&'a mut EngineState>,
}

/// An address space with the frames and the compiled code's state that
/// belong to it alone.
pub(crate) struct Workspace {
    /// The regions the caller set up (input, context, packet), then the
    /// resident entry frame once a run made it.
    pub(crate) space: AddressSpace,
    /// The frames of runs over `space`.
    frames: Stack,
    /// What compiled code keeps between runs over `space`: it may describe
    /// the space's regions, and remember lookups of the map values in it.
    engine: EngineState,
}

impl Workspace {
    /// A workspace over `space`, to which nothing may be added or removed
    /// but by its own methods and its runs.
    pub(crate) fn new(space: AddressSpace) -> Workspace {
        Workspace {
            space,
            frames: Stack::resident(),
            engine: None,
        }
    }

    /// The space, its frames and the compiled code's state, for a run.
    pub(crate) fn run_space(&mut self) -> RunSpace<'_> {
        RunSpace {
            space: &mut self.space,
            frames: &mut self.frames,
            engine: Some(&mut self.engine),
        }
    }

    /// Drops what compiled code kept, when what its runs see changes
    /// other than through the space (the CPU, the helpers): its lookups
    /// of map values may no longer be what a lookup gives.
    pub(crate) fn forget_engine_state(&mut self) {
        self.engine = None;
    }

    /// Whether region 0 is the input region, the one region before the
    /// resident frame (if a run made it).
    fn has_input(&self) -> bool {
        self.space.len() == 1 + self.frames.resident_regions()
            && self
                .space
                .region(0)
                .is_some_and(|r| r.kind == RegionKind::Input)
    }

    /// Whether the space has nothing but what runs left (a resident frame
    /// and map values), if that.
    fn has_nothing(&self) -> bool {
        self.space.len() == self.frames.resident_regions()
    }

    /// Empties the space (its frame buffers kept for later runs).
    fn clear(&mut self) {
        self.frames.forget(&mut self.space);
        self.space.truncate(0);
    }

    /// Makes the space's input a copy of `input` (none at all when it is
    /// empty) and returns the input's base address (0 for none). Input
    /// after input of one length keeps the space's layout.
    pub(crate) fn set_input(&mut self, input: &[u8]) -> u64 {
        if input.is_empty() && self.has_nothing() {
            return 0;
        }
        if !input.is_empty() && self.has_input() {
            if let Some(base) = self.space.refill_owned(0, input) {
                return base;
            }
        }
        self.clear();
        if input.is_empty() {
            return 0;
        }
        self.space.add(RegionKind::Input, true, input.to_vec())
    }

    /// Makes `input`'s bytes, moved in (`input` is left empty), the space's
    /// input (none when it is empty). Returns the input's base address (0
    /// for none) and the buffer the input region had, which
    /// [`Workspace::return_input`] puts back, so that input after lent
    /// input allocates nothing.
    pub(crate) fn lend_input(&mut self, input: &mut Vec<u8>) -> (u64, Vec<u8>) {
        if input.is_empty() && self.has_nothing() {
            return (0, Vec::new());
        }
        if !input.is_empty() && self.has_input() {
            match self.space.swap_owned(0, std::mem::take(input)) {
                Ok(spare) => return (crate::region_base(0), spare),
                Err(bytes) => *input = bytes,
            }
        }
        self.clear();
        if input.is_empty() {
            return (0, Vec::new());
        }
        let base = self
            .space
            .add(RegionKind::Input, true, std::mem::take(input));
        (base, Vec::new())
    }

    /// Gives back the bytes [`Workspace::lend_input`] lent into `input`, as
    /// the run left them, and puts `spare` (what `lend_input` returned) in
    /// their place. (Should an embedder's helper have replaced the input
    /// region's bytes, `input` gets those: a copy of shared ones.)
    pub(crate) fn return_input(&mut self, input: &mut Vec<u8>, spare: Vec<u8>) {
        if !self.has_input() {
            return;
        }
        match self.space.swap_owned(0, spare) {
            Ok(bytes) => *input = bytes,
            Err(_) => {
                *input = self
                    .space
                    .region(0)
                    .map(crate::Region::to_vec)
                    .unwrap_or_default();
                self.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultKind, SharedBytes};

    #[test]
    fn set_input_leaves_exactly_one_input_region_with_the_bytes() {
        let mut ws = Workspace::new(AddressSpace::new());
        assert_eq!(ws.set_input(&[]), 0);
        assert!(ws.space.is_empty());
        let a = ws.set_input(&[1, 2, 3]);
        assert_eq!(ws.space.read(a, 3).unwrap(), vec![1, 2, 3]);
        // A read-only input (an embedder's helper made it so) is writable
        // again for the next input.
        ws.space.region_mut(0).unwrap().writable = false;
        let b = ws.set_input(&[9; 5]);
        assert_eq!((b, ws.space.len()), (a, 1));
        assert_eq!(ws.space.read(b, 5).unwrap(), vec![9; 5]);
        assert!(matches!(
            ws.space.load::<1>(b + 5),
            Err(FaultKind::OutOfBounds { size: 5, .. })
        ));
        ws.space.store::<1>(b, [7]).unwrap();
        // A shorter input shrinks the region; an empty one removes it.
        let c = ws.set_input(&[4]);
        assert_eq!(ws.space.read(c, 1).unwrap(), vec![4]);
        assert!(ws.space.load::<1>(c + 1).is_err());
        assert_eq!(ws.set_input(&[]), 0);
        assert!(ws.space.is_empty());
        let v = ws.space.layout_version();
        assert_eq!(ws.set_input(&[]), 0);
        assert_eq!(ws.space.layout_version(), v, "no input again");
    }

    #[test]
    fn input_of_one_length_keeps_the_layout_and_anything_else_changes_it() {
        let mut ws = Workspace::new(AddressSpace::new());
        ws.set_input(&[1; 8]);
        let v = ws.space.layout_version();
        ws.set_input(&[2; 8]);
        assert_eq!(ws.space.layout_version(), v, "same length, same buffer");
        ws.set_input(&[3; 9]);
        assert_ne!(ws.space.layout_version(), v, "longer");
        let v = ws.space.layout_version();
        ws.space.region_mut(0).unwrap().writable = false;
        let v2 = ws.space.layout_version();
        assert_ne!(v2, v);
        ws.set_input(&[3; 9]);
        assert_ne!(ws.space.layout_version(), v2, "writable again");
        // Lent input always moves the bytes.
        let v = ws.space.layout_version();
        let mut lent = vec![5u8; 9];
        let (base, spare) = ws.lend_input(&mut lent);
        assert!(lent.is_empty());
        assert_ne!(ws.space.layout_version(), v);
        assert_eq!(ws.space.read(base, 9).unwrap(), vec![5; 9]);
        ws.return_input(&mut lent, spare);
        assert_eq!(lent, vec![5; 9]);
    }

    #[test]
    fn an_input_whose_bytes_a_helper_replaced_comes_back_as_a_copy() {
        let mut ws = Workspace::new(AddressSpace::new());
        let mut lent = vec![1u8, 2, 3];
        let (_, spare) = ws.lend_input(&mut lent);
        ws.space.region_mut(0).unwrap().backing =
            crate::Backing::Shared(SharedBytes::new(vec![7, 8, 9]));
        ws.return_input(&mut lent, spare);
        assert_eq!(lent, vec![7, 8, 9]);
        assert!(ws.space.is_empty());
    }
}
