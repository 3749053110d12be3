//! libpcap's optimizer (optimize.c), step for step: value numbering with
//! constant propagation inside blocks (`opt_blk`, `opt_stmt`, `opt_peep`,
//! `opt_deadstores`), jump threading over edge dominators (`opt_j`,
//! `fold_edge`), the `or`/`and` pull-ups, merging equal blocks
//! (`intern_blocks`) and `opt_root`. Visiting orders (levels, edge ids,
//! in-edge lists) are libpcap's, because the result depends on them.

use super::gen::*;
use super::CompileError;

const A_ATOM: usize = MEMWORDS;
const X_ATOM: usize = MEMWORDS + 1;
const AX_ATOM: usize = MEMWORDS + 2;
const N_ATOMS: usize = MEMWORDS + 2;
const VAL_UNKNOWN: u32 = 0;

fn class(c: i32) -> i32 {
    c & 0x07
}
fn mode(c: i32) -> i32 {
    c & 0xe0
}
fn op(c: i32) -> i32 {
    c & 0xf0
}
fn src(c: i32) -> i32 {
    c & 0x08
}

/// Equal-size bit sets over block or edge ids, one row per set, in one
/// allocation (a Vec per set made the dataflow passes allocation-bound).
struct BitRows {
    /// u64 words per row: `bits / 64 + 1`, as the sets always had.
    words: usize,
    data: Vec<u64>,
}

impl BitRows {
    /// `rows` sets of `bits` bits, all ones, in `data`'s allocation.
    fn reuse(mut data: Vec<u64>, rows: usize, bits: usize) -> BitRows {
        let words = bits / 64 + 1;
        data.clear();
        data.resize(rows * words, u64::MAX);
        BitRows { words, data }
    }
    fn row(&self, r: usize) -> &[u64] {
        &self.data[r * self.words..(r + 1) * self.words]
    }
    fn insert(&mut self, r: usize, i: usize) {
        self.data[r * self.words + i / 64] |= 1 << (i % 64);
    }
    fn has(&self, r: usize, i: usize) -> bool {
        self.data[r * self.words + i / 64] & (1 << (i % 64)) != 0
    }
    /// `row dst &= row src`.
    fn intersect(&mut self, dst: usize, src: usize) {
        if dst == src {
            return;
        }
        let w = self.words;
        for i in 0..w {
            let v = self.data[src * w + i];
            self.data[dst * w + i] &= v;
        }
    }
    fn clear(&mut self, r: usize) {
        let w = self.words;
        self.data[r * w..(r + 1) * w].fill(0);
    }
    fn fill_all(&mut self) {
        self.data.fill(u64::MAX);
    }
}

/// The value-numbering table (optimize.c's `hashtbl`): `(code, v0, v1)`
/// to a value number, open addressing with linear probing. Its keys are
/// three small integers; a std HashMap spent more time hashing them with
/// SipHash than the rest of the optimizer took.
struct ValueTable {
    /// `(code, v0, v1, value)`; value 0 marks an empty slot (numbers start at 1).
    slots: Vec<(i32, u32, u32, u32)>,
    len: usize,
}

impl ValueTable {
    /// An empty table in `slots`' allocation (one left from an earlier compile).
    fn reuse(mut slots: Vec<(i32, u32, u32, u32)>) -> ValueTable {
        // Not a huge one though: the table is cleared on every pass.
        if slots.len() > 1024 {
            slots = Vec::new();
        }
        slots.clear();
        slots.resize(64, (0, 0, 0, 0));
        ValueTable { slots, len: 0 }
    }

    fn clear(&mut self) {
        self.slots.fill((0, 0, 0, 0));
        self.len = 0;
    }

    /// The home slot of a key (a multiply-rotate hash, rustc's FxHash scheme).
    fn home(&self, code: i32, v0: u32, v1: u32) -> usize {
        const M: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = u64::from(code as u32).wrapping_mul(M);
        h = (h.rotate_left(5) ^ u64::from(v0)).wrapping_mul(M);
        h = (h.rotate_left(5) ^ u64::from(v1)).wrapping_mul(M);
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    /// The value of a key, or the empty slot where it would go.
    fn find(&self, code: i32, v0: u32, v1: u32) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(code, v0, v1);
        loop {
            let (c, a, b, v) = self.slots[i];
            if v == 0 {
                return Err(i);
            }
            if c == code && a == v0 && b == v1 {
                return Ok(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores a key [`ValueTable::find`] did not find, at the slot it gave.
    fn insert_at(&mut self, slot: usize, code: i32, v0: u32, v1: u32, val: u32) {
        self.slots[slot] = (code, v0, v1, val);
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            let bigger = vec![(0, 0, 0, 0); 2 * self.slots.len()];
            let old = std::mem::replace(&mut self.slots, bigger);
            for e in old.into_iter().filter(|e| e.3 != 0) {
                if let Err(i) = self.find(e.0, e.1, e.2) {
                    self.slots[i] = e;
                }
            }
        }
    }
}

/// An edge: the block it leaves and which branch (true or false).
type Edge = (usize, bool);

/// The end of an in-edge list.
const NO_EDGE: usize = usize::MAX;

/// A walk over one block's in-edges, newest first.
#[derive(Clone)]
struct InEdges<'a> {
    nodes: &'a [(Edge, usize)],
    at: usize,
}

impl Iterator for InEdges<'_> {
    type Item = Edge;
    fn next(&mut self) -> Option<Edge> {
        let (e, next) = *self.nodes.get(self.at)?;
        self.at = next;
        Some(e)
    }
}

struct Opt<'a> {
    b: &'a mut Vec<Block>,
    root: usize,
    /// opt id → arena index, in libpcap's numbering (preorder, true branch first).
    order: Vec<usize>,
    /// arena index → opt id.
    id: Vec<usize>,
    /// The blocks of each level, level after level, each level in the order
    /// find_levels_r reached it: level `l` is `lvl_list[lvl_start[l]..lvl_start[l + 1]]`
    /// (flat, so the passes allocate nothing once the first has run).
    lvl_list: Vec<usize>,
    lvl_start: Vec<usize>,
    /// Scratch: the blocks in post order.
    post: Vec<usize>,
    level: Vec<usize>,
    mark: Vec<bool>,
    dom: BitRows,
    /// Edge dominators by edge id: true edges `id`, false edges `n + id`.
    edom: BitRows,
    kill: Vec<u32>,
    in_use: Vec<u32>,
    out_use: Vec<u32>,
    val: Vec<[u32; N_ATOMS]>,
    oval: Vec<u32>,
    et_code: Vec<i32>,
    ef_code: Vec<i32>,
    /// In-edges as libpcap links them, each block's newest first: block
    /// `b`'s list starts at node `in_head[b]`, a node is (edge, next node),
    /// [`NO_EDGE`] ends a list. Every reader walks newest first.
    in_nodes: Vec<(Edge, usize)>,
    in_head: Vec<usize>,
    /// Scratch of find_levels: where the next block of each level goes.
    lvl_fill: Vec<usize>,
    done: bool,
    nbm: bool,
    hash: ValueTable,
    /// Scratch stack of the graph walks, kept across passes.
    stack: Vec<(usize, bool)>,
    vmap: Vec<Option<u32>>,
    curval: u32,
}

type OResult<T> = Result<T, CompileError>;

impl Opt<'_> {
    fn jt(&self, b: usize) -> Option<usize> {
        self.b[b].jt
    }
    fn jf(&self, b: usize) -> Option<usize> {
        self.b[b].jf
    }
    fn succ(&self, e: Edge) -> Option<usize> {
        if e.1 {
            self.b[e.0].jt
        } else {
            self.b[e.0].jf
        }
    }
    fn set_succ(&mut self, e: Edge, v: Option<usize>) {
        if e.1 {
            self.b[e.0].jt = v;
        } else {
            self.b[e.0].jf = v;
        }
    }
    fn edge_id(&self, e: Edge) -> usize {
        let i = self.id[e.0];
        if e.1 {
            i
        } else {
            self.order.len() + i
        }
    }
    fn edge_by_id(&self, k: usize) -> Edge {
        let n = self.order.len();
        if k < n {
            (self.order[k], true)
        } else {
            (self.order[k - n], false)
        }
    }
    fn edge_code(&self, e: Edge) -> i32 {
        if e.1 {
            self.et_code[e.0]
        } else {
            self.ef_code[e.0]
        }
    }

    fn find_levels(&mut self) {
        self.mark.iter_mut().for_each(|m| *m = false);
        self.post.clear();
        self.find_levels_r(self.root);
        // Group by level, keeping post order within a level (a stable
        // counting sort): the order the per-level lists were built in.
        let nlevels = self.level[self.root] + 1;
        self.lvl_start.clear();
        self.lvl_start.resize(nlevels + 1, 0);
        for &b in &self.post {
            self.lvl_start[self.level[b] + 1] += 1;
        }
        for l in 0..nlevels {
            self.lvl_start[l + 1] += self.lvl_start[l];
        }
        self.lvl_list.clear();
        self.lvl_list.resize(self.post.len(), 0);
        self.lvl_fill.clear();
        self.lvl_fill.extend_from_slice(&self.lvl_start[..nlevels]);
        for &b in &self.post {
            let at = &mut self.lvl_fill[self.level[b]];
            self.lvl_list[*at] = b;
            *at += 1;
        }
    }

    /// The number of blocks at level `l`.
    fn level_len(&self, l: usize) -> usize {
        self.lvl_start[l + 1] - self.lvl_start[l]
    }

    /// Block `b`'s in-edges, newest first.
    fn ins(&self, b: usize) -> InEdges<'_> {
        InEdges {
            nodes: &self.in_nodes,
            at: self.in_head[b],
        }
    }

    /// find_levels_r without recursion (graphs get deep): post-order, true
    /// branch first, a block's level one more than its higher successor's.
    fn find_levels_r(&mut self, root: usize) {
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        stack.push((root, false));
        while let Some((b, done)) = stack.pop() {
            if done {
                let level = match (self.jt(b), self.jf(b)) {
                    (Some(t), Some(f)) => self.level[t].max(self.level[f]) + 1,
                    _ => 0,
                };
                self.level[b] = level;
                self.post.push(b);
                continue;
            }
            if self.mark[b] {
                continue;
            }
            self.mark[b] = true;
            stack.push((b, true));
            if let (Some(t), Some(f)) = (self.jt(b), self.jf(b)) {
                stack.push((f, false));
                stack.push((t, false));
            }
        }
        self.stack = stack;
    }

    /// Block `j` of level `l` counting newest first (libpcap's linked list
    /// order); the passes index levels rather than copy them, since no pass
    /// changes levels while walking them.
    fn at_level(&self, l: usize, j: usize) -> usize {
        self.lvl_list[self.lvl_start[l + 1] - 1 - j]
    }

    fn find_dom(&mut self) {
        self.dom.fill_all();
        self.dom.clear(self.root);
        for level in (0..=self.level[self.root]).rev() {
            for j in 0..self.level_len(level) {
                let b = self.at_level(level, j);
                let bid = self.id[b];
                self.dom.insert(b, bid);
                if let (Some(t), Some(f)) = (self.jt(b), self.jf(b)) {
                    self.dom.intersect(t, b);
                    self.dom.intersect(f, b);
                }
            }
        }
    }

    fn propedom(&mut self, e: Edge) {
        let eid = self.edge_id(e);
        self.edom.insert(eid, eid);
        if let Some(s) = self.succ(e) {
            let t = self.edge_id((s, true));
            let f = self.edge_id((s, false));
            self.edom.intersect(t, eid);
            self.edom.intersect(f, eid);
        }
    }

    fn find_edom(&mut self) {
        self.edom.fill_all();
        let t = self.edge_id((self.root, true));
        let f = self.edge_id((self.root, false));
        self.edom.clear(t);
        self.edom.clear(f);
        for level in (0..=self.level[self.root]).rev() {
            for j in 0..self.level_len(level) {
                let b = self.at_level(level, j);
                self.propedom((b, true));
                self.propedom((b, false));
            }
        }
    }

    fn compute_local_ud(&mut self, b: usize) {
        let (mut def, mut used, mut killed) = (0u32, 0u32, 0u32);
        let note_use = |atom: Option<usize>, def: u32, used: &mut u32| {
            if let Some(atom) = atom {
                if atom == AX_ATOM {
                    if def & (1 << X_ATOM) == 0 {
                        *used |= 1 << X_ATOM;
                    }
                    if def & (1 << A_ATOM) == 0 {
                        *used |= 1 << A_ATOM;
                    }
                } else if def & (1 << atom) == 0 {
                    *used |= 1 << atom;
                }
            }
        };
        for s in &self.b[b].stmts {
            if s.code == NOP {
                continue;
            }
            note_use(atomuse(s), def, &mut used);
            if let Some(atom) = atomdef(s) {
                if used & (1 << atom) == 0 {
                    killed |= 1 << atom;
                }
                def |= 1 << atom;
            }
        }
        if class(self.b[b].s.code) == JMP {
            note_use(atomuse(&self.b[b].s), def, &mut used);
        }
        self.kill[b] = killed;
        self.in_use[b] = used;
    }

    fn find_ud(&mut self) {
        let maxlevel = self.level[self.root];
        for i in (0..=maxlevel).rev() {
            for j in 0..self.level_len(i) {
                let p = self.at_level(i, j);
                self.compute_local_ud(p);
                self.out_use[p] = 0;
            }
        }
        for i in 1..=maxlevel {
            for j in 0..self.level_len(i) {
                let p = self.at_level(i, j);
                let (t, f) = (self.jt(p).unwrap_or(p), self.jf(p).unwrap_or(p));
                self.out_use[p] |= self.in_use[t] | self.in_use[f];
                self.in_use[p] |= self.out_use[p] & !self.kill[p];
            }
        }
    }

    fn init_val(&mut self) {
        self.curval = 0;
        self.hash.clear();
        self.vmap.clear();
        self.vmap.push(None);
    }

    /// Value number of `code v0 v1` (optimize.c's `F`).
    fn f(&mut self, code: i32, v0: u32, v1: u32) -> u32 {
        let slot = match self.hash.find(code, v0, v1) {
            Ok(v) => return v,
            Err(slot) => slot,
        };
        self.curval += 1;
        let val = self.curval;
        let c = (mode(code) == IMM && (class(code) == LD || class(code) == LDX)).then_some(v0);
        self.vmap.push(c);
        self.hash.insert_at(slot, code, v0, v1, val);
        val
    }

    fn k(&mut self, i: u32) -> u32 {
        self.f(LD | IMM | W, i, 0)
    }

    fn konst(&self, v: u32) -> Option<u32> {
        self.vmap.get(v as usize).copied().flatten()
    }

    fn fold_op(&mut self, s: &mut Stmt, v0: u32, v1: u32) -> OResult<()> {
        let a = self.konst(v0).unwrap_or(0);
        let b = self.konst(v1).unwrap_or(0);
        let r = match op(s.code) {
            0x00 => a.wrapping_add(b),
            0x10 => a.wrapping_sub(b),
            0x20 => a.wrapping_mul(b),
            0x30 => {
                if b == 0 {
                    return Err(CompileError::whole("division by zero"));
                }
                a / b
            }
            0x90 => {
                if b == 0 {
                    return Err(CompileError::whole("modulus by zero"));
                }
                a % b
            }
            0x50 => a & b,
            0x40 => a | b,
            0xa0 => a ^ b,
            0x60 => a.checked_shl(b).unwrap_or(0),
            0x70 => a.checked_shr(b).unwrap_or(0),
            _ => {
                return Err(CompileError::whole(
                    "internal error: unknown ALU op in fold_op",
                ))
            }
        };
        s.k = r;
        s.code = LD | IMM;
        self.done = false;
        self.nbm = true;
        Ok(())
    }

    fn opt_stmt(&mut self, s: &mut Stmt, val: &mut [u32; N_ATOMS], alter: bool) -> OResult<()> {
        let vstore = |s: &mut Stmt, valp: &mut u32, newval: u32| {
            if alter && newval != VAL_UNKNOWN && *valp == newval {
                s.code = NOP;
            } else {
                *valp = newval;
            }
        };
        let c = s.code;
        match c {
            _ if c == LD | ABS | W || c == LD | ABS | H || c == LD | ABS | B => {
                let v = self.f(c, s.k, 0);
                vstore(s, &mut val[A_ATOM], v);
            }
            _ if c == LD | IND | W || c == LD | IND | H || c == LD | IND | B => {
                let mut v = val[X_ATOM];
                if let (true, Some(k)) = (alter, self.konst(v)) {
                    s.code = LD | ABS | (c & 0x18);
                    s.k = s.k.wrapping_add(k);
                    v = self.f(s.code, s.k, 0);
                    self.done = false;
                    self.nbm = true;
                } else {
                    v = self.f(c, s.k, v);
                }
                vstore(s, &mut val[A_ATOM], v);
            }
            _ if c == LD | LEN => {
                let v = self.f(c, 0, 0);
                vstore(s, &mut val[A_ATOM], v);
            }
            _ if c == LD | IMM => {
                let v = self.k(s.k);
                vstore(s, &mut val[A_ATOM], v);
            }
            _ if c == LDX | IMM => {
                let v = self.k(s.k);
                vstore(s, &mut val[X_ATOM], v);
            }
            _ if c == LDX | MSH | B => {
                let v = self.f(c, s.k, 0);
                vstore(s, &mut val[X_ATOM], v);
            }
            _ if c == ALU | NEG => {
                if let (true, Some(k)) = (alter, self.konst(val[A_ATOM])) {
                    s.code = LD | IMM;
                    s.k = 0u32.wrapping_sub(k);
                    val[A_ATOM] = self.k(s.k);
                } else {
                    val[A_ATOM] = self.f(c, val[A_ATOM], 0);
                }
            }
            _ if class(c) == ALU && src(c) == K => {
                let o = op(c);
                if alter {
                    if s.k == 0 {
                        if o == ADD || o == LSH || o == 0x70 || o == OR || o == 0xa0 {
                            s.code = NOP;
                            return Ok(());
                        }
                        if o == 0x20 || o == AND {
                            s.code = LD | IMM;
                            val[A_ATOM] = self.k(s.k);
                            return Ok(());
                        }
                        if o == 0x30 {
                            return Err(CompileError::whole("division by zero"));
                        }
                        if o == 0x90 {
                            return Err(CompileError::whole("modulus by zero"));
                        }
                    }
                    if self.konst(val[A_ATOM]).is_some() {
                        let kv = self.k(s.k);
                        self.fold_op(s, val[A_ATOM], kv)?;
                        val[A_ATOM] = self.k(s.k);
                        return Ok(());
                    }
                }
                let kv = self.k(s.k);
                val[A_ATOM] = self.f(s.code, val[A_ATOM], kv);
            }
            _ if class(c) == ALU && src(c) == X => {
                let o = op(c);
                if let (true, Some(xk)) = (alter, self.konst(val[X_ATOM])) {
                    if self.konst(val[A_ATOM]).is_some() {
                        self.fold_op(s, val[A_ATOM], val[X_ATOM])?;
                        val[A_ATOM] = self.k(s.k);
                    } else {
                        s.code = ALU | K | o;
                        s.k = xk;
                        if (o == LSH || o == 0x70) && s.k > 31 {
                            return Err(CompileError::whole("shift by more than 31 bits"));
                        }
                        self.done = false;
                        let kv = self.k(s.k);
                        val[A_ATOM] = self.f(s.code, val[A_ATOM], kv);
                        self.nbm = true;
                    }
                    return Ok(());
                }
                if alter && self.konst(val[A_ATOM]) == Some(0) {
                    if o == ADD || o == OR || o == 0xa0 {
                        s.code = MISC | TXA;
                        let x = val[X_ATOM];
                        vstore(s, &mut val[A_ATOM], x);
                        return Ok(());
                    } else if o == 0x20
                        || o == 0x30
                        || o == 0x90
                        || o == AND
                        || o == LSH
                        || o == 0x70
                    {
                        s.code = LD | IMM;
                        s.k = 0;
                        let kv = self.k(0);
                        vstore(s, &mut val[A_ATOM], kv);
                        return Ok(());
                    } else if o == NEG {
                        s.code = NOP;
                        return Ok(());
                    }
                }
                val[A_ATOM] = self.f(s.code, val[A_ATOM], val[X_ATOM]);
            }
            _ if c == MISC | TXA => {
                let x = val[X_ATOM];
                vstore(s, &mut val[A_ATOM], x);
            }
            _ if c == LD | MEM => {
                let v = val[s.k as usize % MEMWORDS];
                if let (true, Some(k)) = (alter, self.konst(v)) {
                    s.code = LD | IMM;
                    s.k = k;
                    self.done = false;
                    self.nbm = true;
                }
                vstore(s, &mut val[A_ATOM], v);
            }
            _ if c == MISC | TAX => {
                let a = val[A_ATOM];
                vstore(s, &mut val[X_ATOM], a);
            }
            _ if c == LDX | MEM => {
                let v = val[s.k as usize % MEMWORDS];
                if let (true, Some(k)) = (alter, self.konst(v)) {
                    s.code = LDX | IMM;
                    s.k = k;
                    self.done = false;
                    self.nbm = true;
                }
                vstore(s, &mut val[X_ATOM], v);
            }
            _ if c == ST => {
                let a = val[A_ATOM];
                vstore(s, &mut val[s.k as usize % MEMWORDS], a);
            }
            _ if c == STX => {
                let x = val[X_ATOM];
                vstore(s, &mut val[s.k as usize % MEMWORDS], x);
            }
            _ => {}
        }
        Ok(())
    }

    fn this_op(&self, b: usize, mut i: usize) -> Option<usize> {
        let st = &self.b[b].stmts;
        while i < st.len() && st[i].code == NOP {
            i += 1;
        }
        (i < st.len()).then_some(i)
    }

    fn opt_not(&mut self, b: usize) {
        let blk = &mut self.b[b];
        std::mem::swap(&mut blk.jt, &mut blk.jf);
    }

    fn opt_peep(&mut self, b: usize) {
        if self.b[b].stmts.is_empty() {
            return;
        }
        let mut last = 0usize;
        let mut s = 0usize;
        while let Some(si) = self.this_op(b, s) {
            let Some(ni) = self.this_op(b, si + 1) else {
                break;
            };
            last = ni;
            let st = self.b[b].stmts[si];
            let nx = self.b[b].stmts[ni];
            if st.code == ST && nx.code == LDX | MEM && st.k == nx.k {
                self.done = false;
                self.b[b].stmts[ni].code = MISC | TAX;
                self.nbm = true;
            }
            let nx = self.b[b].stmts[ni];
            if st.code == LD | IMM && nx.code == MISC | TAX {
                self.b[b].stmts[si].code = LDX | IMM;
                self.b[b].stmts[ni].code = MISC | TXA;
                self.done = false;
                self.nbm = true;
            }
            if self.b[b].stmts[si].code == LD | IMM {
                s = ni;
                if self.out_use[b] & (1 << X_ATOM) != 0 {
                    continue;
                }
                let nx = self.b[b].stmts[ni];
                let add = if nx.code != LDX | MSH | B {
                    Some(ni)
                } else {
                    self.this_op(b, ni + 1)
                };
                let Some(add) = add.filter(|&a| self.b[b].stmts[a].code == ALU | ADD | X) else {
                    continue;
                };
                let Some(tax) = self
                    .this_op(b, add + 1)
                    .filter(|&t| self.b[b].stmts[t].code == MISC | TAX)
                else {
                    continue;
                };
                let Some(ild) = self.this_op(b, tax + 1).filter(|&l| {
                    class(self.b[b].stmts[l].code) == LD && mode(self.b[b].stmts[l].code) == IND
                }) else {
                    continue;
                };
                let k = self.b[b].stmts[si].k;
                let stm = &mut self.b[b].stmts;
                stm[ild].k = stm[ild].k.wrapping_add(k);
                stm[si].code = NOP;
                stm[add].code = NOP;
                stm[tax].code = NOP;
                self.done = false;
                self.nbm = true;
                continue;
            }
            s = ni;
        }
        let bs = self.b[b].s;
        if bs.code == JMP | JEQ | K && self.out_use[b] & (1 << A_ATOM) == 0 {
            let lc = self.b[b].stmts[last];
            if lc.code == ALU | SUB | X {
                let v = self.val[b][X_ATOM];
                if let Some(k) = self.konst(v) {
                    self.b[b].s.k = self.b[b].s.k.wrapping_add(k);
                    self.b[b].stmts[last].code = NOP;
                    self.done = false;
                    self.nbm = true;
                } else if bs.k == 0 {
                    self.b[b].stmts[last].code = NOP;
                    self.b[b].s.code = JMP | JEQ | X;
                    self.done = false;
                    self.nbm = true;
                }
            } else if lc.code == ALU | SUB | K {
                self.b[b].stmts[last].code = NOP;
                self.b[b].s.k = self.b[b].s.k.wrapping_add(lc.k);
                self.done = false;
                self.nbm = true;
            } else if lc.code == ALU | AND | K && bs.k == 0 {
                self.b[b].s.k = lc.k;
                self.b[b].s.code = JMP | K | JSET;
                self.b[b].stmts[last].code = NOP;
                self.done = false;
                self.opt_not(b);
                self.nbm = true;
            }
        }
        if self.b[b].s.code == JMP | K | JSET {
            if self.b[b].s.k == 0 {
                self.b[b].jt = self.b[b].jf;
            } else if self.b[b].s.k == 0xffff_ffff {
                self.b[b].s.code = JMP | JEQ | K;
                self.b[b].s.k = 0;
                self.opt_not(b);
                self.done = false;
                self.nbm = true;
            }
        }
        if let Some(v) = self.konst(self.val[b][X_ATOM]) {
            if src(self.b[b].s.code) == X {
                self.b[b].s.code &= !X;
                self.b[b].s.k = v;
            }
        }
        if let Some(v) = self.konst(self.val[b][A_ATOM]) {
            if src(self.b[b].s.code) == K {
                let k = self.b[b].s.k;
                let r = match op(self.b[b].s.code) {
                    JEQ => v == k,
                    JGT => v > k,
                    JGE => v >= k,
                    JSET => v & k != 0,
                    _ => return,
                };
                if self.b[b].jf != self.b[b].jt {
                    self.done = false;
                    self.nbm = true;
                }
                if r {
                    self.b[b].jf = self.b[b].jt;
                } else {
                    self.b[b].jt = self.b[b].jf;
                }
            }
        }
    }

    fn opt_deadstores(&mut self, b: usize) {
        // Indices into the block's statements; `len` stands for the branch.
        // `last[atom]` counts only where bit `atom` of `pending` is set (a
        // definition not used yet), so the end walks set bits, not all atoms.
        let mut last = [0usize; N_ATOMS];
        let mut pending = 0u32;
        let n = self.b[b].stmts.len();
        for i in 0..=n {
            let s = if i < n {
                self.b[b].stmts[i]
            } else {
                self.b[b].s
            };
            if let Some(atom) = atomuse(&s) {
                if atom == AX_ATOM {
                    pending &= !(1 << X_ATOM | 1 << A_ATOM);
                } else {
                    pending &= !(1 << atom);
                }
            }
            if let Some(atom) = atomdef(&s) {
                if pending & 1 << atom != 0 {
                    self.done = false;
                    self.set_code(b, last[atom], NOP);
                    self.nbm = true;
                }
                last[atom] = i;
                pending |= 1 << atom;
            }
        }
        // Definitions nothing after the block uses, lowest atom first.
        let mut dead = pending & !self.out_use[b];
        while dead != 0 {
            let atom = dead.trailing_zeros() as usize;
            dead &= dead - 1;
            self.set_code(b, last[atom], NOP);
            self.val[b][atom] = VAL_UNKNOWN;
            self.done = false;
            self.nbm = true;
        }
    }

    fn set_code(&mut self, b: usize, i: usize, code: i32) {
        if i < self.b[b].stmts.len() {
            self.b[b].stmts[i].code = code;
        } else {
            self.b[b].s.code = code;
        }
    }

    fn opt_blk(&mut self, b: usize, do_stmts: bool) -> OResult<()> {
        let mut ins = self.ins(b);
        let mut val = [0u32; N_ATOMS];
        if let Some(first) = ins.next() {
            val = self.val[first.0];
            for e in ins {
                let pv = &self.val[e.0];
                for i in 0..N_ATOMS {
                    if val[i] != pv[i] {
                        val[i] = 0;
                    }
                }
            }
        }
        let aval = val[A_ATOM];
        let xval = val[X_ATOM];
        let mut stmts = std::mem::take(&mut self.b[b].stmts);
        for s in stmts.iter_mut() {
            if let Err(e) = self.opt_stmt(s, &mut val, do_stmts) {
                self.b[b].stmts = stmts;
                return Err(e);
            }
        }
        self.b[b].stmts = stmts;
        self.val[b] = val;
        if do_stmts
            && ((self.out_use[b] == 0
                && aval != VAL_UNKNOWN
                && val[A_ATOM] == aval
                && xval != VAL_UNKNOWN
                && val[X_ATOM] == xval)
                || class(self.b[b].s.code) == RET)
        {
            if !self.b[b].stmts.is_empty() {
                self.b[b].stmts.clear();
                self.done = false;
                self.nbm = true;
            }
        } else {
            self.opt_peep(b);
            self.opt_deadstores(b);
        }
        let sc = self.b[b].s;
        self.oval[b] = if src(sc.code) == K {
            self.k(sc.k)
        } else {
            self.val[b][X_ATOM]
        };
        self.et_code[b] = sc.code;
        self.ef_code[b] = -sc.code;
        Ok(())
    }

    fn use_conflict(&self, b: usize, succ: usize) -> bool {
        let used = self.out_use[succ];
        if used == 0 {
            return false;
        }
        (0..N_ATOMS)
            .any(|atom| used & (1 << atom) != 0 && self.val[b][atom] != self.val[succ][atom])
    }

    fn fold_edge(&self, child: usize, e: Edge) -> Option<usize> {
        let mut code = self.edge_code(e);
        let sense = if code < 0 {
            code = -code;
            false
        } else {
            true
        };
        if self.b[child].s.code != code {
            return None;
        }
        let aval0 = self.val[child][A_ATOM];
        let oval0 = self.oval[child];
        let aval1 = self.val[e.0][A_ATOM];
        let oval1 = self.oval[e.0];
        if aval0 != aval1 {
            return None;
        }
        if oval0 == oval1 {
            return if sense {
                self.jt(child)
            } else {
                self.jf(child)
            };
        }
        if sense && code == JMP | JEQ | K {
            return self.jf(child);
        }
        None
    }

    fn opt_j(&mut self, e: Edge) {
        let Some(succ) = self.succ(e) else { return };
        let Some(sjt) = self.jt(succ) else { return };
        if Some(sjt) == self.jf(succ) && !self.use_conflict(e.0, sjt) {
            self.done = false;
            self.set_succ(e, Some(sjt));
            self.nbm = true;
        }
        let eid = self.edge_id(e);
        'top: loop {
            // The row does not change here (only find_edom writes it).
            for i in 0..self.edom.words {
                let mut x = self.edom.row(eid)[i];
                while x != 0 {
                    let k = x.trailing_zeros() as usize;
                    x &= !(1u64 << k);
                    let k = k + i * 64;
                    let cur = self.succ(e).unwrap_or(0);
                    if let Some(target) = self.fold_edge(cur, self.edge_by_id(k)) {
                        if !self.use_conflict(e.0, target) {
                            self.done = false;
                            self.set_succ(e, Some(target));
                            if self.jt(target).is_some() {
                                continue 'top;
                            }
                            return;
                        }
                    }
                }
            }
            return;
        }
    }

    fn get_slot(&self, s: Edge) -> Option<usize> {
        self.succ(s)
    }

    /// or_pullup (`or_branch = true`) and and_pullup (`false`).
    fn pullup(&mut self, b: usize, or_branch: bool) {
        // Lent out rather than copied: nothing in pullup_in reads or writes in_nodes.
        let nodes = std::mem::take(&mut self.in_nodes);
        let ins = InEdges {
            nodes: &nodes,
            at: self.in_head[b],
        };
        self.pullup_in(b, or_branch, ins);
        self.in_nodes = nodes;
    }

    /// pullup with `b`'s in-edges `ins` (newest first).
    fn pullup_in(&mut self, b: usize, or_branch: bool, ins: InEdges<'_>) {
        let Some(first) = ins.clone().next() else {
            return;
        };
        let val = self.val[first.0][A_ATOM];
        if ins.clone().skip(1).any(|e| self.val[e.0][A_ATOM] != val) {
            return;
        }
        // For `or`, the chain runs along false branches sharing b's true branch.
        let same = |o: &Self, x: usize| {
            if or_branch {
                o.jt(x) == o.jt(b)
            } else {
                o.jf(x) == o.jf(b)
            }
        };
        let pred = first.0;
        let mut diffp: Edge = (pred, self.jt(pred) == Some(b));
        let mut at_top = true;
        let bid = self.id[b];
        loop {
            let Some(d) = self.get_slot(diffp) else {
                return;
            };
            if !same(self, d) {
                return;
            }
            if !self.dom.has(d, bid) {
                return;
            }
            if self.val[d][A_ATOM] != val {
                break;
            }
            diffp = (d, !or_branch);
            at_top = false;
        }
        let d = self.get_slot(diffp).unwrap_or(0);
        let mut samep: Edge = (d, !or_branch);
        loop {
            let Some(sb) = self.get_slot(samep) else {
                return;
            };
            if !same(self, sb) {
                return;
            }
            if !self.dom.has(sb, bid) {
                return;
            }
            if self.val[sb][A_ATOM] == val {
                break;
            }
            samep = (sb, !or_branch);
        }
        let pull = self.get_slot(samep).unwrap_or(0);
        let pull_next = self.succ((pull, !or_branch));
        self.set_succ(samep, pull_next);
        let dv = self.get_slot(diffp);
        self.set_succ((pull, !or_branch), dv);
        if at_top {
            for e in ins {
                if self.jt(e.0) == Some(b) {
                    self.b[e.0].jt = Some(pull);
                } else {
                    self.b[e.0].jf = Some(pull);
                }
            }
        } else {
            self.set_succ(diffp, Some(pull));
        }
        self.done = false;
        self.find_dom();
    }

    fn find_inedges(&mut self) {
        self.in_head.clear();
        self.in_head.resize(self.b.len(), NO_EDGE);
        self.in_nodes.clear();
        for level in (1..=self.level[self.root]).rev() {
            for j in 0..self.level_len(level) {
                let b = self.at_level(level, j);
                if let Some(t) = self.jt(b) {
                    self.link_inedge(t, (b, true));
                }
                if let Some(f) = self.jf(b) {
                    self.link_inedge(f, (b, false));
                }
            }
        }
    }

    /// Puts `e` at the front of `to`'s in-edges.
    fn link_inedge(&mut self, to: usize, e: Edge) {
        self.in_nodes.push((e, self.in_head[to]));
        self.in_head[to] = self.in_nodes.len() - 1;
    }

    fn opt_blks(&mut self, do_stmts: bool) -> OResult<()> {
        self.init_val();
        let maxlevel = self.level[self.root];
        self.find_inedges();
        for i in (0..=maxlevel).rev() {
            for j in 0..self.level_len(i) {
                let p = self.at_level(i, j);
                self.opt_blk(p, do_stmts)?;
            }
        }
        if do_stmts {
            return Ok(());
        }
        for i in 1..=maxlevel {
            for j in 0..self.level_len(i) {
                let p = self.at_level(i, j);
                self.opt_j((p, true));
                self.opt_j((p, false));
            }
        }
        self.find_inedges();
        for i in 1..=maxlevel {
            for j in 0..self.level_len(i) {
                let p = self.at_level(i, j);
                self.pullup(p, true);
                self.pullup(p, false);
            }
        }
        Ok(())
    }

    fn opt_loop(&mut self, do_stmts: bool) -> OResult<()> {
        let mut loop_count = 0;
        loop {
            self.nbm = false;
            self.done = true;
            self.find_levels();
            // Dominators and edge dominators only serve opt_j and the
            // pull-ups, which the statement passes (do_stmts) do not run.
            if !do_stmts {
                self.find_dom();
            }
            self.find_ud();
            if !do_stmts {
                self.find_edom();
            }
            self.opt_blks(do_stmts)?;
            if self.done {
                break;
            }
            if self.nbm {
                loop_count = 0;
            } else {
                loop_count += 1;
                if loop_count >= 100 {
                    break;
                }
            }
        }
        Ok(())
    }

    fn make_marks(&mut self, root: usize) {
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            if self.mark[p] {
                continue;
            }
            self.mark[p] = true;
            if class(self.b[p].s.code) != RET {
                if let (Some(t), Some(f)) = (self.jt(p), self.jf(p)) {
                    stack.push(f);
                    stack.push(t);
                }
            }
        }
    }

    fn eq_blk(&self, x: usize, y: usize) -> bool {
        let (a, b) = (&self.b[x], &self.b[y]);
        if a.s.code != b.s.code || a.s.k != b.s.k || a.jt != b.jt || a.jf != b.jf {
            return false;
        }
        let sa = a
            .stmts
            .iter()
            .filter(|s| s.code != NOP)
            .map(|s| (s.code, s.k));
        let sb = b
            .stmts
            .iter()
            .filter(|s| s.code != NOP)
            .map(|s| (s.code, s.k));
        sa.eq(sb)
    }

    fn intern_blocks(&mut self) {
        let n = self.order.len();
        loop {
            let mut done1 = true;
            let mut link: Vec<Option<usize>> = vec![None; self.b.len()];
            self.mark.iter_mut().for_each(|m| *m = false);
            self.make_marks(self.root);
            for i in (0..n.saturating_sub(1)).rev() {
                let bi = self.order[i];
                if !self.mark[bi] {
                    continue;
                }
                for j in i + 1..n {
                    let bj = self.order[j];
                    if !self.mark[bj] {
                        continue;
                    }
                    if self.eq_blk(bi, bj) {
                        link[bi] = Some(link[bj].unwrap_or(bj));
                        break;
                    }
                }
            }
            for i in 0..n {
                let p = self.order[i];
                let Some(t) = self.jt(p) else { continue };
                if let Some(l) = link[t] {
                    done1 = false;
                    self.b[p].jt = Some(l);
                }
                if let Some(f) = self.jf(p) {
                    if let Some(l) = link[f] {
                        done1 = false;
                        self.b[p].jf = Some(l);
                    }
                }
            }
            if done1 {
                break;
            }
        }
    }

    fn opt_root(&mut self) {
        let s = std::mem::take(&mut self.b[self.root].stmts);
        let mut r = self.root;
        while class(self.b[r].s.code) == JMP && self.b[r].jt == self.b[r].jf {
            match self.b[r].jt {
                Some(t) => r = t,
                None => break,
            }
        }
        let mut s = s;
        s.append(&mut self.b[r].stmts);
        self.b[r].stmts = s;
        if class(self.b[r].s.code) == RET {
            self.b[r].stmts.clear();
        }
        self.root = r;
    }

    /// number_blks_r without recursion: pre-order, true branch first.
    fn number_blks(&mut self, root: usize) {
        self.order.reserve(self.b.len());
        let mut stack = Vec::with_capacity(self.b.len());
        stack.push(root);
        while let Some(p) = stack.pop() {
            if self.mark[p] {
                continue;
            }
            self.mark[p] = true;
            self.id[p] = self.order.len();
            self.order.push(p);
            if let Some(f) = self.jf(p) {
                stack.push(f);
            }
            if let Some(t) = self.jt(p) {
                stack.push(t);
            }
        }
    }
}

fn atomuse(s: &Stmt) -> Option<usize> {
    let c = s.code;
    if c == NOP {
        return None;
    }
    match class(c) {
        RET => (c & 0x18 == 0x10).then_some(A_ATOM),
        LD | LDX => {
            if mode(c) == IND {
                Some(X_ATOM)
            } else if mode(c) == MEM {
                Some(s.k as usize % MEMWORDS)
            } else {
                None
            }
        }
        ST => Some(A_ATOM),
        STX => Some(X_ATOM),
        JMP | ALU => Some(if src(c) == X { AX_ATOM } else { A_ATOM }),
        _ => Some(if c & 0xf8 == TXA { X_ATOM } else { A_ATOM }),
    }
}

fn atomdef(s: &Stmt) -> Option<usize> {
    if s.code == NOP {
        return None;
    }
    match class(s.code) {
        LD | ALU => Some(A_ATOM),
        LDX => Some(X_ATOM),
        ST | STX => Some(s.k as usize % MEMWORDS),
        MISC => Some(if s.code & 0xf8 == TAX { X_ATOM } else { A_ATOM }),
        _ => None,
    }
}

/// The optimizer's arrays, kept by each thread between compiles: allocating
/// and freeing two dozen small vectors was a good part of compiling a short
/// expression. Every use resizes and refills them, so nothing carries over.
#[derive(Default)]
struct Spare {
    order: Vec<usize>,
    id: Vec<usize>,
    lvl_list: Vec<usize>,
    lvl_start: Vec<usize>,
    post: Vec<usize>,
    level: Vec<usize>,
    mark: Vec<bool>,
    dom: Vec<u64>,
    edom: Vec<u64>,
    kill: Vec<u32>,
    in_use: Vec<u32>,
    out_use: Vec<u32>,
    val: Vec<[u32; N_ATOMS]>,
    oval: Vec<u32>,
    et_code: Vec<i32>,
    ef_code: Vec<i32>,
    in_nodes: Vec<(Edge, usize)>,
    in_head: Vec<usize>,
    lvl_fill: Vec<usize>,
    hash: Vec<(i32, u32, u32, u32)>,
    stack: Vec<(usize, bool)>,
    vmap: Vec<Option<u32>>,
}

thread_local! {
    static SPARE: std::cell::Cell<Spare> = std::cell::Cell::new(Spare::default());
}

/// `v` cleared and refilled with `n` copies of `x`.
fn refill<T: Clone>(mut v: Vec<T>, n: usize, x: T) -> Vec<T> {
    v.clear();
    v.resize(n, x);
    v
}

/// Optimizes the graph under `root`; returns the new root.
pub(crate) fn optimize(
    blocks: &mut Vec<Block>,
    root: usize,
) -> Result<Option<usize>, CompileError> {
    let nb = blocks.len();
    let sp = SPARE.take();
    let mut o = Opt {
        b: blocks,
        root,
        order: refill(sp.order, 0, 0),
        id: refill(sp.id, nb, usize::MAX),
        lvl_list: refill(sp.lvl_list, 0, 0),
        lvl_start: refill(sp.lvl_start, 0, 0),
        post: refill(sp.post, 0, 0),
        level: refill(sp.level, nb, 0),
        mark: refill(sp.mark, nb, false),
        dom: BitRows::reuse(sp.dom, 0, 0),
        edom: BitRows::reuse(sp.edom, 0, 0),
        kill: refill(sp.kill, nb, 0),
        in_use: refill(sp.in_use, nb, 0),
        out_use: refill(sp.out_use, nb, 0),
        val: refill(sp.val, nb, [0; N_ATOMS]),
        oval: refill(sp.oval, nb, 0),
        et_code: refill(sp.et_code, nb, 0),
        ef_code: refill(sp.ef_code, nb, 0),
        in_nodes: refill(sp.in_nodes, 0, ((0, false), NO_EDGE)),
        in_head: refill(sp.in_head, nb, NO_EDGE),
        lvl_fill: refill(sp.lvl_fill, 0, 0),
        done: false,
        nbm: false,
        hash: ValueTable::reuse(sp.hash),
        stack: refill(sp.stack, 0, (0, false)),
        vmap: refill(sp.vmap, 0, None),
        curval: 0,
    };
    o.number_blks(root);
    let n = o.order.len();
    o.dom = BitRows::reuse(std::mem::take(&mut o.dom.data), nb, n);
    o.edom = BitRows::reuse(std::mem::take(&mut o.edom.data), 2 * n, 2 * n);
    let result = o.opt_loop(false).and_then(|()| o.opt_loop(true));
    if result.is_ok() {
        o.intern_blocks();
        o.opt_root();
    }
    let root = o.root;
    SPARE.set(Spare {
        order: o.order,
        id: o.id,
        lvl_list: o.lvl_list,
        lvl_start: o.lvl_start,
        post: o.post,
        level: o.level,
        mark: o.mark,
        dom: o.dom.data,
        edom: o.edom.data,
        kill: o.kill,
        in_use: o.in_use,
        out_use: o.out_use,
        val: o.val,
        oval: o.oval,
        et_code: o.et_code,
        ef_code: o.ef_code,
        in_nodes: o.in_nodes,
        in_head: o.in_head,
        lvl_fill: o.lvl_fill,
        hash: o.hash.slots,
        stack: o.stack,
        vmap: o.vmap,
    });
    result.map(|()| Some(root))
}
