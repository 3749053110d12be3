//! libpcap's optimizer (optimize.c).

use super::gen::Block;
use super::CompileError;

/// Optimizes the graph under `root`; `None` when nothing is left.
pub(crate) fn optimize(
    _blocks: &mut Vec<Block>,
    root: usize,
) -> Result<Option<usize>, CompileError> {
    Ok(Some(root))
}
