//! Linearising the block graph into classic BPF (optimize.c's
//! `icode_to_fcode` / `convert_code_r`): blocks are laid out in reverse
//! post-order from the end of the program, false branch first; a branch
//! farther than 255 instructions gets an extra `ja` and the layout restarts.

use bpfkit_isa::cbpf::SockFilter;

use super::gen::{Block, JMP, NOP};
use super::CompileError;

struct Conv<'a> {
    blocks: &'a [Block],
    mark: Vec<bool>,
    offset: Vec<usize>,
    longjt: Vec<u32>,
    longjf: Vec<u32>,
    out: Vec<SockFilter>,
    tail: usize,
}

fn slength(b: &Block) -> usize {
    b.stmts.iter().filter(|s| s.code != NOP).count()
}

fn count(
    blocks: &[Block],
    mark: &mut [bool],
    root: usize,
    longjt: &[u32],
    longjf: &[u32],
) -> usize {
    let mut n = 0;
    let mut stack = Vec::with_capacity(blocks.len());
    stack.push(root);
    while let Some(p) = stack.pop() {
        if mark[p] {
            continue;
        }
        mark[p] = true;
        let b = &blocks[p];
        n += slength(b) + 1 + longjt[p] as usize + longjf[p] as usize;
        if let (Some(t), Some(f)) = (b.jt, b.jf) {
            stack.push(f);
            stack.push(t);
        }
    }
    n
}

impl Conv<'_> {
    /// convert_code_r without recursion: successors (false branch first)
    /// are laid out before, i.e. after in the program, their predecessor.
    /// `false` asks for a restart with a long jump added.
    fn convert(&mut self, root: usize) -> Result<bool, CompileError> {
        let mut stack: Vec<(usize, bool)> = Vec::with_capacity(2 * self.blocks.len());
        stack.push((root, false));
        while let Some((p, done)) = stack.pop() {
            if done {
                if !self.emit_block(p)? {
                    return Ok(false);
                }
                continue;
            }
            if self.mark[p] {
                continue;
            }
            self.mark[p] = true;
            stack.push((p, true));
            let b = &self.blocks[p];
            if let Some(t) = b.jt {
                stack.push((t, false));
            }
            if let Some(f) = b.jf {
                stack.push((f, false));
            }
        }
        Ok(true)
    }

    fn emit_block(&mut self, p: usize) -> Result<bool, CompileError> {
        let b = &self.blocks[p];
        let slen = slength(b);
        self.tail -= slen + 1 + self.longjt[p] as usize + self.longjf[p] as usize;
        let mut dst = self.tail;
        self.offset[p] = dst;
        // In-block jump targets by position (convert_code_r's `offset[]`),
        // searched in place: few blocks have such jumps.
        let uids = || b.stmts.iter().take(slen).map(|s| s.uid);
        for (off, s) in b.stmts.iter().filter(|s| s.code != NOP).enumerate() {
            self.out[dst] = SockFilter {
                code: s.code as u16,
                jt: 0,
                jf: 0,
                k: s.k,
            };
            if s.code & 0x07 == JMP && s.code != JMP && off + 2 != slen {
                let err = |what: &str| {
                    CompileError::whole(format!("{what} for block-local relative jump: off={off}"))
                };
                if s.jt == 0 || s.jf == 0 {
                    return Err(err("no jmp destination"));
                }
                let find = |u: u32| uids().position(|x| x == u);
                let (Some(t), Some(f)) = (find(s.jt), find(s.jf)) else {
                    return Err(err("no destination found"));
                };
                let (t, f) = (t.wrapping_sub(off + 1), f.wrapping_sub(off + 1));
                if t >= 256 || f >= 256 {
                    return Err(err("out-of-range jump"));
                }
                self.out[dst].jt = t as u8;
                self.out[dst].jf = f as u8;
            }
            dst += 1;
        }
        self.out[dst] = SockFilter {
            code: b.s.code as u16,
            jt: 0,
            jf: 0,
            k: b.s.k,
        };
        if let (Some(jt), Some(jf)) = (b.jt, b.jf) {
            let mut extrajmps: u8 = 0;
            let here = self.offset[p] + slen;
            let off = self.offset[jt].wrapping_sub(here).wrapping_sub(1);
            if off >= 256 {
                if self.longjt[p] == 0 {
                    self.longjt[p] += 1;
                    return Ok(false);
                }
                self.out[dst].jt = extrajmps;
                extrajmps += 1;
                let e = dst + extrajmps as usize;
                self.out[e] = SockFilter {
                    code: (JMP) as u16,
                    jt: 0,
                    jf: 0,
                    k: (off - extrajmps as usize) as u32,
                };
            } else {
                self.out[dst].jt = off as u8;
            }
            let off = self.offset[jf].wrapping_sub(here).wrapping_sub(1);
            if off >= 256 {
                if self.longjf[p] == 0 {
                    self.longjf[p] += 1;
                    return Ok(false);
                }
                self.out[dst].jf = extrajmps;
                extrajmps += 1;
                let e = dst + extrajmps as usize;
                self.out[e] = SockFilter {
                    code: (JMP) as u16,
                    jt: 0,
                    jf: 0,
                    k: (off - extrajmps as usize) as u32,
                };
            } else {
                self.out[dst].jf = off as u8;
            }
        }
        Ok(true)
    }
}

/// Lays the graph under `root` out as a classic BPF program.
pub(crate) fn icode_to_fcode(
    blocks: &mut [Block],
    root: usize,
) -> Result<Vec<SockFilter>, CompileError> {
    let nb = blocks.len();
    let mut longjt = vec![0u32; nb];
    let mut longjf = vec![0u32; nb];
    let mut mark = vec![false; nb];
    loop {
        // One mark array serves the count and then the layout.
        mark.fill(false);
        let n = count(blocks, &mut mark, root, &longjt, &longjf);
        mark.fill(false);
        let mut c = Conv {
            blocks,
            mark,
            offset: vec![0; nb],
            longjt,
            longjf,
            out: vec![
                SockFilter {
                    code: 0,
                    jt: 0,
                    jf: 0,
                    k: 0
                };
                n
            ],
            tail: n,
        };
        if c.convert(root)? {
            return Ok(c.out);
        }
        longjt = c.longjt;
        longjf = c.longjf;
        mark = c.mark;
    }
}
