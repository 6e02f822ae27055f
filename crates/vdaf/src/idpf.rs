//! IdpfBBCGGI21: the incremental distributed point function of draft-irtf-cfrg-vdaf-18,
//! section 8.3 (after Boneh, Boyle, Corrigan-Gibbs, Gilboa, Ishai 2021).
//!
//! A client's `bits`-bit string `alpha` is hidden in two keys; evaluating both keys at a prefix
//! of `alpha` at level `l` gives shares of `beta[l]` (a pair of field elements: `Field64` for the
//! inner levels, `Field255` at the leaves), and shares of zero at any other prefix.
//!
//! Nodes are expanded with XofFixedKeyAes128 at the inner levels and XofTurboShake128 at the
//! leaf level; the extend/convert domain-separation tags use algorithm class 1, id 0, usage 0
//! (extend) and 1 (convert), bound to the application context, with the nonce as binder.
//!
//! Evaluation ([`eval_tree`], and [`LeafWalk`] at the leaf level) walks a [`PrefixTree`]: the
//! candidate prefixes of one level, with all their ancestors, deduplicated once per batch and
//! shared by every report. Per report and inner tree depth, all the nodes of the depth are
//! expanded with one batched AES call, one AES block per node for `extend` (only the block of
//! the child that is needed) and one for `convert` (with VAES both in one pass over
//! registers, [`crate::vaes::extend_convert`]). The leaf depth is hashed eight nodes per
//! 8-way Keccak permutation ([`SeededXof`]), streamed in chunks of candidates so that no
//! per-candidate array of the whole level is built. Memory access depends only on the
//! (public) prefixes; control bits (secret) act through masks.

use subtle::Choice;
use zeroize::Zeroize;

use crate::error::VdafError;
use crate::field::{Field64, Field255, FieldElement};
use crate::field512::{self, LeafBlock};
use crate::vaes;
use crate::xof::{
    FixedKeyAes128, HASH_CHUNK, SeededXof, XofTurboShake128, counter_block, wipe_blocks,
};

/// Version byte of the domain-separation tags (draft 18).
pub(crate) const VERSION: u8 = 18;

/// `dst` prefix for IDPF node extension: version, class 1, algorithm id 0, usage 0.
const DST_EXTEND: [u8; 8] = [VERSION, 1, 0, 0, 0, 0, 0, 0];
/// `dst` prefix for IDPF node conversion: version, class 1, algorithm id 0, usage 1.
const DST_CONVERT: [u8; 8] = [VERSION, 1, 0, 0, 0, 0, 0, 1];

/// One level's correction word: a seed, two control bits and a value pair.
#[derive(Clone, PartialEq, Eq)]
pub struct CorrectionWord<F> {
    pub(crate) seed: [u8; 16],
    pub(crate) ctrl: [u8; 2],
    pub(crate) value: [F; 2],
}

/// The IDPF public share: one correction word per level.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpfPublicShare {
    pub(crate) inner: Vec<CorrectionWord<Field64>>,
    pub(crate) leaf: CorrectionWord<Field255>,
}

impl IdpfPublicShare {
    /// Number of levels (`bits`).
    pub fn bits(&self) -> usize {
        self.inner.len() + 1
    }

    /// Canonical encoding (draft section 8.3.4): packed control bits, seeds, inner values,
    /// leaf value.
    pub fn encode(&self) -> Vec<u8> {
        let bits = self.bits();
        let mut out = Vec::with_capacity(encoded_len(bits));
        let mut packed = vec![0u8; (2 * bits).div_ceil(8)];
        let ctrls = self.inner.iter().map(|cw| cw.ctrl).chain([self.leaf.ctrl]);
        for (level, ctrl) in ctrls.enumerate() {
            for (j, bit) in ctrl.iter().enumerate() {
                let pos = 2 * level + j;
                packed[pos / 8] |= (bit & 1) << (pos % 8);
            }
        }
        out.extend_from_slice(&packed);
        for cw in &self.inner {
            out.extend_from_slice(&cw.seed);
        }
        out.extend_from_slice(&self.leaf.seed);
        for cw in &self.inner {
            cw.value[0].encode_into(&mut out);
            cw.value[1].encode_into(&mut out);
        }
        self.leaf.value[0].encode_into(&mut out);
        self.leaf.value[1].encode_into(&mut out);
        out
    }

    /// Decodes a public share for `bits` levels, rejecting padding bits, non-canonical field
    /// elements and trailing bytes.
    pub fn decode(bits: usize, bytes: &[u8]) -> Result<Self, VdafError> {
        const WHAT: &str = "IDPF public share";
        if bits == 0 {
            return Err(VdafError::InvalidBits(0));
        }
        if bytes.len() != encoded_len(bits) {
            return Err(VdafError::decode(WHAT, "wrong length"));
        }
        let packed_len = (2 * bits).div_ceil(8);
        let (packed, rest) = bytes.split_at(packed_len);
        let ctrl_at = |pos: usize| (packed[pos / 8] >> (pos % 8)) & 1;
        for pos in 2 * bits..8 * packed_len {
            if ctrl_at(pos) != 0 {
                return Err(VdafError::decode(WHAT, "nonzero padding bits"));
            }
        }
        let (seeds, rest) = rest.split_at(16 * bits);
        let (inner_values, leaf_value) = rest.split_at(16 * (bits - 1));
        let seed_at = |level: usize| {
            let mut s = [0u8; 16];
            s.copy_from_slice(&seeds[16 * level..16 * level + 16]);
            s
        };
        let elem64 = |i: usize| {
            Field64::from_canonical_bytes(&inner_values[8 * i..8 * i + 8])
                .ok_or(VdafError::decode(WHAT, "non-canonical Field64"))
        };
        let mut inner = Vec::with_capacity(bits - 1);
        for level in 0..bits - 1 {
            inner.push(CorrectionWord {
                seed: seed_at(level),
                ctrl: [ctrl_at(2 * level), ctrl_at(2 * level + 1)],
                value: [elem64(2 * level)?, elem64(2 * level + 1)?],
            });
        }
        let elem255 = |i: usize| {
            Field255::from_canonical_bytes(&leaf_value[32 * i..32 * i + 32])
                .ok_or(VdafError::decode(WHAT, "non-canonical Field255"))
        };
        let leaf = CorrectionWord {
            seed: seed_at(bits - 1),
            ctrl: [ctrl_at(2 * (bits - 1)), ctrl_at(2 * bits - 1)],
            value: [elem255(0)?, elem255(1)?],
        };
        Ok(Self { inner, leaf })
    }
}

/// Encoded length of a public share for `bits` levels.
pub fn encoded_len(bits: usize) -> usize {
    (2 * bits).div_ceil(8) + 16 * bits + 16 * (bits - 1) + 64
}

/// The two node-expansion keys of one report (both XofFixedKeyAes128 keys depend only on the
/// context and the nonce, so they are public), and the leaf level's two XofTurboShake128
/// instances, precomputed up to the seed. Owned, so a walk over many levels can keep them per
/// report.
#[derive(Clone)]
pub struct NodeKeys {
    extend: FixedKeyAes128,
    convert: FixedKeyAes128,
    leaf_extend_xof: SeededXof,
    leaf_convert_xof: SeededXof,
    ctx: Vec<u8>,
    nonce: [u8; 16],
}

impl NodeKeys {
    /// Derives the per-report keys.
    pub fn new(ctx: &[u8], nonce: &[u8; 16]) -> Self {
        Self {
            extend: FixedKeyAes128::new(&[&DST_EXTEND, ctx], nonce),
            convert: FixedKeyAes128::new(&[&DST_CONVERT, ctx], nonce),
            leaf_extend_xof: SeededXof::new(&[&DST_EXTEND, ctx], nonce),
            leaf_convert_xof: SeededXof::new(&[&DST_CONVERT, ctx], nonce),
            ctx: ctx.to_vec(),
            nonce: *nonce,
        }
    }

    /// Leaf-level `extend`: two seeds from XofTurboShake128.
    fn leaf_extend(&self, seed: &[u8; 16]) -> [[u8; 16]; 2] {
        let mut xof = XofTurboShake128::new(seed, &[&DST_EXTEND, &self.ctx]);
        xof.update(&self.nonce);
        let mut out = [[0u8; 16]; 2];
        let mut stream = xof.into_stream();
        stream.fill(&mut out[0]);
        stream.fill(&mut out[1]);
        out
    }

    /// Leaf-level `convert`: the next seed and a `Field255` pair.
    fn leaf_convert(&self, seed: &[u8; 16]) -> ([u8; 16], [Field255; 2]) {
        let mut xof = XofTurboShake128::new(seed, &[&DST_CONVERT, &self.ctx]);
        xof.update(&self.nonce);
        let mut stream = xof.into_stream();
        let mut next = [0u8; 16];
        stream.fill(&mut next);
        let value = [stream.next_elem(), stream.next_elem()];
        (next, value)
    }

    /// Inner-level `convert` for one seed, sequentially (used by key generation and as the
    /// slow path when a batched value needs rejection sampling).
    fn inner_convert(&self, seed: &[u8; 16]) -> ([u8; 16], [Field64; 2]) {
        let mut stream = self.convert.stream(seed);
        let mut next = [0u8; 16];
        stream.fill(&mut next);
        let value = [stream.next_elem(), stream.next_elem()];
        (next, value)
    }

    /// Inner-level `extend` for one seed.
    fn inner_extend(&self, seed: &[u8; 16]) -> [[u8; 16]; 2] {
        let mut blocks = [counter_block(seed, 0), counter_block(seed, 1)];
        self.extend.hash_blocks(&mut blocks);
        [blocks[0].into(), blocks[1].into()]
    }
}

/// Splits extend output into seeds and control bits (the draft clears bit 0 of byte 0 of each
/// seed after taking it as the control bit).
#[inline(always)]
fn split_ctrl(seeds: &mut [[u8; 16]; 2]) -> [u8; 2] {
    let t = [seeds[0][0] & 1, seeds[1][0] & 1];
    seeds[0][0] &= 0xfe;
    seeds[1][0] &= 0xfe;
    t
}

#[inline(always)]
fn xor_masked(a: &mut [u8; 16], b: &[u8; 16], bit: u8) {
    let mask = 0u8.wrapping_sub(bit & 1);
    for i in 0..16 {
        a[i] ^= b[i] & mask;
    }
}

/// Key generation (draft section 8.3.3): `alpha` as bits (most significant first), the
/// values per level, and two 16-byte random seeds.
pub fn key_gen(
    alpha: &[bool],
    beta_inner: &[[Field64; 2]],
    beta_leaf: [Field255; 2],
    ctx: &[u8],
    nonce: &[u8],
    rand: &[[u8; 16]; 2],
) -> Result<(IdpfPublicShare, [[u8; 16]; 2]), VdafError> {
    let bits = alpha.len();
    if bits == 0 || beta_inner.len() != bits - 1 {
        return Err(VdafError::InvalidBits(bits));
    }
    let nonce: [u8; 16] = nonce
        .try_into()
        .map_err(|_| VdafError::decode("nonce", "must be 16 bytes"))?;
    let keys = NodeKeys::new(ctx, &nonce);
    let mut seeds = *rand;
    let mut ctrl = [0u8, 1u8];
    let mut inner = Vec::with_capacity(bits - 1);
    for (level, beta) in beta_inner.iter().enumerate() {
        let step = gen_step(alpha[level], &mut seeds, &mut ctrl, |s| {
            keys.inner_extend(s)
        });
        let (cw_seed, cw_ctrl, corrected) = step;
        let (n0, w0) = keys.inner_convert(&corrected[0]);
        let (n1, w1) = keys.inner_convert(&corrected[1]);
        seeds = [n0, n1];
        inner.push(CorrectionWord {
            seed: cw_seed,
            ctrl: cw_ctrl,
            value: correction_value(beta, &w0, &w1, ctrl[1]),
        });
    }
    let step = gen_step(alpha[bits - 1], &mut seeds, &mut ctrl, |s| {
        keys.leaf_extend(s)
    });
    let (cw_seed, cw_ctrl, corrected) = step;
    let (_, w0) = keys.leaf_convert(&corrected[0]);
    let (_, w1) = keys.leaf_convert(&corrected[1]);
    let leaf = CorrectionWord {
        seed: cw_seed,
        ctrl: cw_ctrl,
        value: correction_value(&beta_leaf, &w0, &w1, ctrl[1]),
    };
    Ok((IdpfPublicShare { inner, leaf }, *rand))
}

/// One level of key generation up to (not including) `convert`: returns the correction seed,
/// the correction control bits and the two corrected seeds on `alpha`'s path; updates `ctrl`.
fn gen_step(
    bit: bool,
    seeds: &mut [[u8; 16]; 2],
    ctrl: &mut [u8; 2],
    extend: impl Fn(&[u8; 16]) -> [[u8; 16]; 2],
) -> ([u8; 16], [u8; 2], [[u8; 16]; 2]) {
    let x = u8::from(bit);
    let (keep, lose) = (x as usize, 1 - x as usize);
    let mut s0 = extend(&seeds[0]);
    let mut s1 = extend(&seeds[1]);
    let t0 = split_ctrl(&mut s0);
    let t1 = split_ctrl(&mut s1);

    // Correction seed and control bits.
    let mut cw_seed = s0[lose];
    xor_masked(&mut cw_seed, &s1[lose], 1);
    let cw_ctrl = [t0[0] ^ t1[0] ^ x ^ 1, t0[1] ^ t1[1] ^ x];

    // Corrected seeds and control bits on the path.
    let prev = *ctrl;
    ctrl[0] = t0[keep] ^ (cw_ctrl[keep] & prev[0]);
    ctrl[1] = t1[keep] ^ (cw_ctrl[keep] & prev[1]);
    let mut c0 = s0[keep];
    let mut c1 = s1[keep];
    xor_masked(&mut c0, &cw_seed, prev[0]);
    xor_masked(&mut c1, &cw_seed, prev[1]);
    s0.zeroize();
    s1.zeroize();
    (cw_seed, cw_ctrl, [c0, c1])
}

/// `cw_value = (-1)^ctrl1 * (beta - w0 + w1)`.
fn correction_value<F: FieldElement>(beta: &[F; 2], w0: &[F; 2], w1: &[F; 2], ctrl1: u8) -> [F; 2] {
    let choice = Choice::from(ctrl1 & 1);
    let mut out = [F::ZERO; 2];
    for i in 0..2 {
        let v = beta[i] - w0[i] + w1[i];
        out[i] = F::conditional_select(&v, &-v, choice);
    }
    out
}

/// The candidate prefixes of one level with all their ancestors, deduplicated: what every
/// report's evaluation walks. Built once per aggregation (shared by the whole batch).
#[derive(Clone, Debug)]
pub struct PrefixTree {
    level: usize,
    /// First depth walked: 0 from the root, or one below a cached level.
    start: usize,
    /// When resuming: which cached nodes (indices into the cached level's prefixes) the
    /// first walked depth extends.
    resume_from: Option<Vec<u32>>,
    /// The candidate prefixes.
    prefixes: Vec<u64>,
    /// For depth `d` (0..=level): the distinct prefixes of length `d + 1`, sorted, and for
    /// each the index of its parent at depth `d - 1`.
    depths: Vec<Depth>,
    /// For each candidate prefix (in the order given), its index at the last depth.
    candidate_index: Vec<u32>,
}

#[derive(Clone, Debug)]
struct Depth {
    parent: Vec<u32>,
    bit: Vec<u8>,
    /// Number of nodes at the previous depth (1 for the root at depth 0).
    num_parents: usize,
}

impl PrefixTree {
    /// Builds the tree for prefixes of `level + 1` bits (`prefixes` sorted, distinct, each
    /// below `2^(level + 1)`, as [`crate::AggregationParam`] guarantees).
    pub fn new(level: usize, prefixes: &[u64]) -> Self {
        Self::build(0, vec![0], None, level, prefixes)
    }

    /// A tree that starts from the nodes of an earlier evaluation at `prev_level` (whose
    /// candidates were `prev_prefixes`), walking only the depths below it. `None` unless
    /// `prev_level < level` and every candidate extends one of `prev_prefixes`.
    pub fn resume(
        prev_level: usize,
        prev_prefixes: &[u64],
        level: usize,
        prefixes: &[u64],
    ) -> Option<Self> {
        if prev_level >= level {
            return None;
        }
        let mut needed: Vec<u64> = prefixes.iter().map(|p| p >> (level - prev_level)).collect();
        needed.dedup();
        let mut from = Vec::with_capacity(needed.len());
        for n in &needed {
            from.push(prev_prefixes.binary_search(n).ok()? as u32);
        }
        Some(Self::build(
            prev_level + 1,
            needed,
            Some(from),
            level,
            prefixes,
        ))
    }

    fn build(
        start: usize,
        mut prev: Vec<u64>,
        resume_from: Option<Vec<u32>>,
        level: usize,
        prefixes: &[u64],
    ) -> Self {
        let mut depths = Vec::with_capacity(level + 1 - start);
        for d in start..=level {
            let shift = level - d;
            let mut nodes: Vec<u64> = prefixes.iter().map(|p| p >> shift).collect();
            nodes.dedup();
            let mut parent = Vec::with_capacity(nodes.len());
            let mut bit = Vec::with_capacity(nodes.len());
            let mut pi = 0usize;
            for &n in &nodes {
                let up = if d == 0 { 0 } else { n >> 1 };
                // `prev` holds every parent (sorted), so this stops inside the vector.
                while prev[pi] != up {
                    pi += 1;
                }
                parent.push(pi as u32);
                bit.push((n & 1) as u8);
            }
            depths.push(Depth {
                parent,
                bit,
                num_parents: prev.len(),
            });
            prev = nodes;
        }
        // Candidates are distinct and sorted, so they are exactly the last depth's nodes.
        let candidate_index = (0..prefixes.len() as u32).collect();
        Self {
            level,
            start,
            resume_from,
            prefixes: prefixes.to_vec(),
            depths,
            candidate_index,
        }
    }

    /// The level the tree was built for.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of candidate prefixes.
    pub fn num_candidates(&self) -> usize {
        self.candidate_index.len()
    }

    /// Total number of tree nodes (node evaluations per report).
    pub fn num_nodes(&self) -> usize {
        self.depths.iter().map(|d| d.parent.len()).sum()
    }

    /// Number of AES blocks one report's evaluation of an inner level costs (1 to extend
    /// each node's parent into it, 1 to convert it, plus 1 per candidate value).
    pub fn vartime_aes_blocks(&self) -> usize {
        2 * self.num_nodes() + self.num_candidates()
    }

    /// Number of Keccak-p[1600, 12] permutations one report's evaluation of the leaf level
    /// costs at the leaf depth, for contexts up to 124 bytes (1 to extend each parent of a
    /// leaf into both children, 1 to convert each leaf), not counting the inner depths.
    pub fn vartime_leaf_permutations(&self) -> usize {
        self.depths
            .last()
            .map_or(0, |d| d.num_parents + d.parent.len())
    }
}

/// Reusable per-thread buffers for [`eval_tree`] (flat arrays, no per-node allocation).
/// Seeds are held as little-endian `u128`s so that XORs and masks are single operations.
#[derive(Default)]
pub struct EvalScratch {
    seeds: Vec<u128>,
    ctrl: Vec<u8>,
    next_seeds: Vec<u128>,
    next_ctrl: Vec<u8>,
    values: Vec<u128>,
}

/// Reused from report to report (each evaluation overwrites what it reads), wiped on drop.
impl Drop for EvalScratch {
    fn drop(&mut self) {
        for v in [&mut self.seeds, &mut self.next_seeds, &mut self.values] {
            v.zeroize();
        }
        self.ctrl.zeroize();
        self.next_ctrl.zeroize();
    }
}

/// All-ones if `bit` is 1, else zero (for branch-free conditional XOR).
#[inline(always)]
fn mask128(bit: u8) -> u128 {
    0u128.wrapping_sub(u128::from(bit & 1))
}

/// The nodes (seeds and control bits, after `convert`) of one report at the candidates of an
/// evaluated inner level: where the next level's walk can resume. Secret: zeroized on drop.
#[derive(Default, Clone)]
pub struct NodeCache {
    seeds: Vec<u128>,
    ctrl: Vec<u8>,
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        self.seeds.zeroize();
        self.ctrl.zeroize();
    }
}

/// Evaluates one aggregator's key at every candidate of `tree` (draft section 8.3.4, the
/// shared-tree form of `eval`) at an inner level, writing one `Field64` pair per candidate to
/// `out`; the leaf level goes through [`LeafWalk`], chunk by chunk. A resumed tree starts
/// from `nodes` (kept by an earlier call); `nodes`, when given, then receives this call's
/// final nodes (its buffers are reused).
#[allow(clippy::too_many_arguments)]
pub fn eval_tree(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    key: &[u8; 16],
    keys: &NodeKeys,
    tree: &PrefixTree,
    nodes: Option<&mut NodeCache>,
    scratch: &mut EvalScratch,
    out: &mut [[Field64; 2]],
) -> Result<(), VdafError> {
    let bits = public_share.bits();
    if tree.level >= bits {
        return Err(VdafError::InvalidAggParam("level must be below bits"));
    }
    if tree.level == bits - 1 || out.len() != tree.num_candidates() {
        return Err(VdafError::StateMismatch("inner output for this tree"));
    }
    let depths = tree.depths.len();
    walk_depths(
        agg_id,
        public_share,
        key,
        keys,
        tree,
        nodes.as_deref(),
        scratch,
        depths,
    )?;
    // Keep the final nodes for a deeper walk, then produce the values.
    if let Some(keep) = nodes {
        keep.seeds.clone_from(&scratch.seeds);
        keep.ctrl.clone_from(&scratch.ctrl);
    }
    finish_inner(agg_id, public_share, key, keys, tree, scratch, out);
    Ok(())
}

/// Starts the walk (at the root, or at the cached `nodes` of a resumed tree) and expands the
/// first `depths` depths of `tree`, all inner ones; leaves the last walked depth's nodes in
/// `scratch.seeds` and `scratch.ctrl`.
#[allow(clippy::too_many_arguments)]
fn walk_depths(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    key: &[u8; 16],
    keys: &NodeKeys,
    tree: &PrefixTree,
    nodes: Option<&NodeCache>,
    scratch: &mut EvalScratch,
    depths: usize,
) -> Result<(), VdafError> {
    scratch.seeds.clear();
    scratch.ctrl.clear();
    match (&tree.resume_from, nodes) {
        (None, _) => {
            scratch.seeds.push(u128::from_le_bytes(*key));
            scratch.ctrl.push(agg_id & 1);
        }
        (Some(from), Some(cache)) => {
            for &i in from {
                let i = i as usize;
                let (Some(s), Some(t)) = (cache.seeds.get(i), cache.ctrl.get(i)) else {
                    return Err(VdafError::StateMismatch(
                        "cached nodes do not match the tree",
                    ));
                };
                scratch.seeds.push(*s);
                scratch.ctrl.push(*t);
            }
        }
        (Some(_), None) => {
            return Err(VdafError::StateMismatch(
                "resumed tree without cached nodes",
            ));
        }
    }
    let Some(cws) = public_share.inner.get(tree.start..tree.start + depths) else {
        return Err(VdafError::StateMismatch(
            "inner depth beyond the public share",
        ));
    };
    for (k, (depth, cw)) in tree.depths.iter().zip(cws).enumerate() {
        let d = tree.start + k;
        inner_depth(cw, keys, depth, d == tree.level, scratch);
        std::mem::swap(&mut scratch.seeds, &mut scratch.next_seeds);
        std::mem::swap(&mut scratch.ctrl, &mut scratch.next_ctrl);
    }
    Ok(())
}

/// One inner depth: extend (one block per needed child: block `bit` of the parent's stream),
/// correct, convert the children (1 block each for the next seed; the target depth also
/// computes the value block). Chunk by chunk, [`HASH_CHUNK`] AES blocks per call.
fn inner_depth(
    cw: &CorrectionWord<Field64>,
    keys: &NodeKeys,
    depth: &Depth,
    is_target: bool,
    scratch: &mut EvalScratch,
) {
    let n = depth.parent.len();
    scratch.next_seeds.resize(n, 0);
    scratch.next_ctrl.resize(n, 0);
    if is_target {
        scratch.values.resize(n, 0);
    }
    if let (false, Some(ek), Some(ck)) =
        (is_target, keys.extend.vaes_keys(), keys.convert.vaes_keys())
    {
        // Both hashes and the correction of each child in one pass over registers.
        let step = vaes::InnerStep {
            cw_seed: u128::from_le_bytes(cw.seed),
            cw_ctrl: cw.ctrl,
            parents: &depth.parent,
            bits: &depth.bit,
            seeds: &scratch.seeds,
            ctrl: &scratch.ctrl,
        };
        vaes::extend_convert(
            ek,
            ck,
            &step,
            &mut scratch.next_seeds,
            &mut scratch.next_ctrl,
        );
        return;
    }
    let cw_seed = u128::from_le_bytes(cw.seed);
    let per_child = if is_target { 2 } else { 1 };
    let mut ext = [0u128; HASH_CHUNK];
    let mut conv = [0u128; HASH_CHUNK];
    let mut blocks = [aes::Block::default(); HASH_CHUNK];
    for start in (0..n).step_by(HASH_CHUNK / per_child) {
        let end = (start + HASH_CHUNK / per_child).min(n);
        let parents = &depth.parent[start..end];
        let bits = &depth.bit[start..end];
        let ext = &mut ext[..end - start];
        let conv = &mut conv[..per_child * (end - start)];

        // Extend: the child with bit b of a parent with seed s is block b of s's stream,
        // hash(s XOR le128(b)).
        for ((x, &p), &bit) in ext.iter_mut().zip(parents).zip(bits) {
            *x = scratch.seeds[p as usize] ^ u128::from(bit);
        }
        keys.extend.hash_u128s_with(ext, &mut blocks);

        // Correct each child: t = t_child ^ (cw_t & t_parent), s = s_child ^ (cw_s &
        // t_parent); the convert input blocks are s (and s ^ 1 at the target depth).
        let ctrl_out = &mut scratch.next_ctrl[start..end];
        for (i, ((&child, &p), &bit)) in ext.iter().zip(parents).zip(bits).enumerate() {
            let t_parent = scratch.ctrl[p as usize];
            ctrl_out[i] = (child as u8 & 1) ^ (cw.ctrl[usize::from(bit)] & t_parent);
            let seed = (child & !1) ^ (cw_seed & mask128(t_parent));
            conv[per_child * i] = seed;
            if is_target {
                conv[2 * i + 1] = seed ^ 1;
            }
        }

        // Convert: block 0 is the next seed, block 1 (target depth only) the value pair.
        keys.convert.hash_u128s_with(conv, &mut blocks);
        if is_target {
            for (i, pair) in conv.chunks_exact(2).enumerate() {
                scratch.next_seeds[start + i] = pair[0];
                scratch.values[start + i] = pair[1];
            }
        } else {
            scratch.next_seeds[start..end].copy_from_slice(conv);
        }
    }
    ext.zeroize();
    conv.zeroize();
    wipe_blocks(&mut blocks[..(per_child * n).min(HASH_CHUNK)]);
}

/// The leaf level of one report, evaluated chunk by chunk: holds the nodes of the depth above
/// the leaves, and hands out the candidates' `Field255` value shares in order
/// ([`LeafWalk::next_chunk`]). Every buffer is reused across reports (`start` again).
/// Secret: zeroized on drop.
#[derive(Default)]
pub struct LeafWalk {
    /// Nodes of the depth above the leaves (the leaves' parents).
    parents: NodeCache,
    /// Next candidate.
    next: usize,
    /// Per chunk: both extended children of each parent, the corrected children, their
    /// control bits.
    ext: Vec<[u128; 2]>,
    conv: Vec<u128>,
    ctrl: Vec<u8>,
}

impl Drop for LeafWalk {
    fn drop(&mut self) {
        for e in self.ext.iter_mut() {
            e.zeroize();
        }
        self.conv.zeroize();
        self.ctrl.zeroize();
    }
}

/// Lanes `l` and `l + 1` of state `k` as a little-endian `u128` (16 output bytes).
#[inline(always)]
fn lanes_u128(st: &crate::keccak::State8, l: usize, k: usize) -> u128 {
    u128::from(st[l][k]) | (u128::from(st[l + 1][k]) << 64)
}

impl LeafWalk {
    /// Walks the inner depths of the leaf-level `tree` for one report (from the root, or
    /// below the cached `nodes` of a resumed tree) and positions the walk at the first
    /// candidate.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        agg_id: u8,
        public_share: &IdpfPublicShare,
        key: &[u8; 16],
        keys: &NodeKeys,
        tree: &PrefixTree,
        nodes: Option<&NodeCache>,
        scratch: &mut EvalScratch,
    ) -> Result<(), VdafError> {
        if tree.level + 1 != public_share.bits() {
            return Err(VdafError::StateMismatch("leaf walk over an inner level"));
        }
        let depths = tree.depths.len().saturating_sub(1);
        walk_depths(
            agg_id,
            public_share,
            key,
            keys,
            tree,
            nodes,
            scratch,
            depths,
        )?;
        // Take the parents' nodes; the scratch gets the previous report's buffers back.
        std::mem::swap(&mut self.parents.seeds, &mut scratch.seeds);
        std::mem::swap(&mut self.parents.ctrl, &mut scratch.ctrl);
        self.next = 0;
        Ok(())
    }

    /// Writes the value shares of the next candidates (at most `out.len()`, fewer where that
    /// keeps two siblings in one chunk) and returns how many; 0 at the end.
    pub fn next_chunk(
        &mut self,
        agg_id: u8,
        public_share: &IdpfPublicShare,
        keys: &NodeKeys,
        tree: &PrefixTree,
        out: &mut [[Field255; 2]],
    ) -> usize {
        let n = self.extend_chunk(public_share, keys, tree, out.len(), false);
        let mut st = [[0u64; 8]; 25];
        let mut block = LeafBlock::default();
        let groups = self.conv.chunks(8).zip(self.ctrl.chunks(8));
        for ((group, ctrl), outs) in groups.zip(out.chunks_mut(8)) {
            convert_group(agg_id, public_share, keys, group, ctrl, &mut st, &mut block);
            for (k, o) in outs.iter_mut().take(group.len()).enumerate() {
                *o = block.get(k);
            }
        }
        for lane in st.iter_mut() {
            lane.zeroize();
        }
        n
    }

    /// [`Self::next_chunk`] into blocks of eight leaves (candidate `i` of the chunk is leaf
    /// `i % 8` of `blocks[i / 8]`; lanes past the count hold values of no candidate): exactly
    /// `8 * blocks.len()` candidates but at the end, so that a walk read with one block count
    /// keeps every chunk aligned to blocks of the whole level. The layout
    /// [`crate::field::SketchSums255::add_blocks`] reads without transposing.
    pub fn next_blocks(
        &mut self,
        agg_id: u8,
        public_share: &IdpfPublicShare,
        keys: &NodeKeys,
        tree: &PrefixTree,
        blocks: &mut [LeafBlock],
    ) -> usize {
        let n = self.extend_chunk(public_share, keys, tree, 8 * blocks.len(), true);
        let mut st = [[0u64; 8]; 25];
        let groups = self.conv.chunks(8).zip(self.ctrl.chunks(8));
        for ((group, ctrl), block) in groups.zip(blocks) {
            convert_group(agg_id, public_share, keys, group, ctrl, &mut st, block);
        }
        for lane in st.iter_mut() {
            lane.zeroize();
        }
        n
    }

    /// The first half of a chunk of at most `max` candidates: extends their parents and
    /// corrects the children, leaving the children's seeds in `self.conv` and control bits in
    /// `self.ctrl`; returns how many. Unless `exact`, a chunk ends one early rather than
    /// between two siblings (whose parent would be extended twice); with `exact` every chunk
    /// but the last has `max` candidates, so chunks start at multiples of `max`.
    fn extend_chunk(
        &mut self,
        public_share: &IdpfPublicShare,
        keys: &NodeKeys,
        tree: &PrefixTree,
        max: usize,
        exact: bool,
    ) -> usize {
        self.conv.clear();
        self.ctrl.clear();
        let Some(depth) = tree.depths.last() else {
            return 0;
        };
        let total = depth.parent.len();
        let start = self.next;
        let mut end = (start + max).min(total);
        if !exact && end < total && end >= start + 2 && depth.parent[end] == depth.parent[end - 1] {
            end -= 1;
        }
        if end <= start {
            return 0;
        }
        let cw = &public_share.leaf;
        let p_lo = depth.parent[start] as usize;
        let p_hi = depth.parent[end - 1] as usize;

        // Extend the parents (XofTurboShake128, 32 bytes each), eight per permutation.
        self.ext.clear();
        let mut st = [[0u64; 8]; 25];
        for group in self.parents.seeds[p_lo..=p_hi].chunks(8) {
            let mut seeds = [0u128; 8];
            seeds[..group.len()].copy_from_slice(group);
            keys.leaf_extend_xof.hash_x8(&seeds, &mut st);
            for k in 0..group.len() {
                self.ext
                    .push([lanes_u128(&st, 0, k), lanes_u128(&st, 2, k)]);
            }
        }
        for lane in st.iter_mut() {
            lane.zeroize();
        }

        // Correct the children.
        let cw_seed = u128::from_le_bytes(cw.seed);
        for j in start..end {
            let p = depth.parent[j] as usize;
            let bit = usize::from(depth.bit[j]);
            let t_parent = self.parents.ctrl[p];
            let child = self.ext[p - p_lo][bit];
            self.ctrl
                .push((child as u8 & 1) ^ (cw.ctrl[bit] & t_parent));
            self.conv.push((child & !1) ^ (cw_seed & mask128(t_parent)));
        }
        self.next = end;
        end - start
    }
}

/// Converts up to eight leaves (their corrected seeds `group` and control bits `ctrl`) into
/// `block`: 16 bytes of next seed, unused at the leaves, then two `Field255`, eight per
/// permutation; `y = w + t * cw_value`, negated for the helper. With AVX-512F the values are
/// computed in registers ([`field512::leaf_block`]); otherwise, and for a candidate whose
/// rejection sampling reads on, one leaf at a time.
fn convert_group(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    keys: &NodeKeys,
    group: &[u128],
    ctrl: &[u8],
    st: &mut crate::keccak::State8,
    block: &mut LeafBlock,
) {
    let cw = &public_share.leaf;
    let negate = Choice::from(agg_id & 1);
    let mut seeds = [0u128; 8];
    seeds[..group.len()].copy_from_slice(group);
    keys.leaf_convert_xof.hash_x8(&seeds, st);
    seeds.zeroize();
    let rejected = match field512::leaf_block(st, ctrl, &cw.value, agg_id & 1 == 1, block) {
        Some(bad) => bad,
        None => {
            let mut bad = 0u8;
            for k in 0..ctrl.len() {
                let first = Field255::from_random_limbs([st[2][k], st[3][k], st[4][k], st[5][k]]);
                let second = Field255::from_random_limbs([st[6][k], st[7][k], st[8][k], st[9][k]]);
                match (first, second) {
                    (Some(a), Some(b)) => {
                        block.set(k, &node_output(&[a, b], &cw.value, ctrl[k], negate))
                    }
                    _ => bad |= 1 << k,
                }
            }
            bad
        }
    };
    // Candidates rejected at the first attempts: the draft reads on (rare).
    for k in (0..ctrl.len()).filter(|k| rejected >> k & 1 == 1) {
        let w = vartime_slow_leaf_value(st, k);
        block.set(k, &node_output(&w, &cw.value, ctrl[k], negate));
    }
}

/// The value pair of a leaf `convert` whose output needs rejection sampling beyond the first
/// attempts (probability about 2^-250 per node): reads lane `k`'s stream from byte 16 on,
/// as the draft's `next_vec` does.
fn vartime_slow_leaf_value(st: &crate::keccak::State8, k: usize) -> [Field255; 2] {
    let state: crate::keccak::State = core::array::from_fn(|i| st[i][k]);
    let mut stream = SeededXof::reader(state, 16);
    [stream.next_elem(), stream.next_elem()]
}

/// Turns the target depth's value blocks into `Field64` value shares.
fn finish_inner(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    key: &[u8; 16],
    keys: &NodeKeys,
    tree: &PrefixTree,
    scratch: &mut EvalScratch,
    out: &mut [[Field64; 2]],
) {
    let cw = &public_share.inner[tree.level];
    let negate = Choice::from(agg_id & 1);
    for (i, o) in out.iter_mut().enumerate() {
        let block = scratch.values[i].to_le_bytes();
        *o = match (
            Field64::from_random(&block[..8]),
            Field64::from_random(&block[8..]),
        ) {
            (Some(a), Some(b)) => node_output(&[a, b], &cw.value, scratch.ctrl[i], negate),
            _ => vartime_slow_inner_output(agg_id, public_share, key, keys, tree, i),
        };
    }
}

/// `y = w + t * cw_value`, negated for the helper.
#[inline(always)]
fn node_output<F: FieldElement>(w: &[F; 2], cw: &[F; 2], t: u8, negate: Choice) -> [F; 2] {
    let take = Choice::from(t & 1);
    let mut y = [F::ZERO; 2];
    for j in 0..2 {
        let v = w[j] + F::conditional_select(&F::ZERO, &cw[j], take);
        y[j] = F::conditional_select(&v, &-v, negate);
    }
    y
}

/// Recomputes one candidate's output with full rejection sampling by walking its path from
/// the root ([`eval_path`]). Reached only when a value block holds a non-canonical `Field64`
/// (probability about 2^-31 per node): the draft's rejection sampling is variable-length in
/// the same way.
fn vartime_slow_inner_output(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    key: &[u8; 16],
    keys: &NodeKeys,
    tree: &PrefixTree,
    candidate: usize,
) -> [Field64; 2] {
    let prefix = tree.prefixes[candidate];
    match eval_path(agg_id, public_share, key, keys, tree.level, prefix) {
        PathValue::Inner(y) => y,
        // tree.level < bits - 1 here, so eval_path returns an inner value.
        PathValue::Leaf(_) => [Field64::ZERO; 2],
    }
}

/// Evaluates one key at one prefix by walking its path (the draft's `eval` for a single
/// prefix, no sharing): the reference against which [`eval_tree`] is tested.
pub fn eval_path(
    agg_id: u8,
    public_share: &IdpfPublicShare,
    key: &[u8; 16],
    keys: &NodeKeys,
    level: usize,
    prefix: u64,
) -> PathValue {
    let bits = public_share.bits();
    let mut seed = *key;
    let mut t = agg_id & 1;
    let negate = Choice::from(agg_id & 1);
    for d in 0..=level {
        let bit = ((prefix >> (level - d)) & 1) as usize;
        let is_leaf = d == bits - 1;
        let (cw_seed, cw_ctrl) = if is_leaf {
            (&public_share.leaf.seed, public_share.leaf.ctrl)
        } else {
            (&public_share.inner[d].seed, public_share.inner[d].ctrl)
        };
        let mut s = if is_leaf {
            keys.leaf_extend(&seed)
        } else {
            keys.inner_extend(&seed)
        };
        let tt = split_ctrl(&mut s);
        let mut child = s[bit];
        xor_masked(&mut child, cw_seed, t);
        t = tt[bit] ^ (cw_ctrl[bit] & t);
        s.zeroize();
        if is_leaf {
            let (_, w) = keys.leaf_convert(&child);
            return PathValue::Leaf(node_output(&w, &public_share.leaf.value, t, negate));
        }
        let (next, w) = keys.inner_convert(&child);
        if d == level {
            return PathValue::Inner(node_output(&w, &public_share.inner[d].value, t, negate));
        }
        seed = next;
    }
    // The loop returns at d == level (level < bits is checked by the callers).
    PathValue::Inner([Field64::ZERO; 2])
}

/// A single-prefix evaluation result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathValue {
    /// Inner level value share.
    Inner([Field64; 2]),
    /// Leaf level value share.
    Leaf([Field255; 2]),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    const BITS: usize = 16;

    /// A random IDPF over `BITS` bits: the public share and both keys.
    fn random_idpf(
        rng: &mut StdRng,
        ctx: &[u8],
        nonce: &[u8; 16],
    ) -> (IdpfPublicShare, [[u8; 16]; 2]) {
        let alpha: Vec<bool> = (0..BITS).map(|_| rng.random()).collect();
        let beta_inner: Vec<[Field64; 2]> = (0..BITS - 1)
            .map(|_| {
                [
                    Field64::from_u64(rng.random()),
                    Field64::from_u64(rng.random()),
                ]
            })
            .collect();
        let beta_leaf = [
            Field255::from_u64(rng.random()),
            Field255::from_u64(rng.random()),
        ];
        let rand: [[u8; 16]; 2] = [rng.random(), rng.random()];
        match key_gen(&alpha, &beta_inner, beta_leaf, ctx, nonce, &rand) {
            Ok(out) => out,
            Err(e) => panic!("key generation: {e:?}"),
        }
    }

    /// Distinct sorted prefixes of `level + 1` bits: all of them where there are few,
    /// else a random third.
    fn prefixes(rng: &mut StdRng, level: usize) -> Vec<u64> {
        let all = 1u64 << (level + 1);
        (0..all)
            .filter(|_| all <= 64 || rng.random_range(0..3) == 0)
            .collect()
    }

    // The shared-tree evaluation (with VAES where the CPU has it, and with the `aes` crate's
    // path forced) and the leaf walk (in chunks and in blocks of eight) agree with the
    // evaluation of each path from the root (`eval_path`, one node at a time), so that every
    // fast path is checked against the plain one on whatever CPU runs the tests.
    #[test]
    fn tree_walks_agree_with_the_path_evaluation_at_every_level() {
        let mut rng = StdRng::seed_from_u64(0x1dbf);
        let (ctx, nonce): (&[u8], [u8; 16]) = (b"tree walks", rng.random());
        let (public_share, keys) = random_idpf(&mut rng, ctx, &nonce);
        let node_keys = NodeKeys::new(ctx, &nonce);
        let mut portable = node_keys.clone();
        portable.extend = portable.extend.without_vaes();
        portable.convert = portable.convert.without_vaes();
        let mut scratch = EvalScratch::default();
        for level in [0, 3, 9, BITS - 2, BITS - 1] {
            let candidates = prefixes(&mut rng, level);
            let tree = PrefixTree::new(level, &candidates);
            for agg_id in 0..2u8 {
                let key = &keys[usize::from(agg_id)];
                let want: Vec<PathValue> = candidates
                    .iter()
                    .map(|&c| eval_path(agg_id, &public_share, key, &node_keys, level, c))
                    .collect();
                if level < BITS - 1 {
                    for keys in [&node_keys, &portable] {
                        let mut out = vec![[Field64::ZERO; 2]; candidates.len()];
                        let evaluated = eval_tree(
                            agg_id,
                            &public_share,
                            key,
                            keys,
                            &tree,
                            None,
                            &mut scratch,
                            &mut out,
                        );
                        assert!(evaluated.is_ok(), "level {level}");
                        for (i, (o, w)) in out.iter().zip(&want).enumerate() {
                            assert!(
                                matches!(w, PathValue::Inner(v) if v == o),
                                "level {level}, candidate {i}"
                            );
                        }
                    }
                    continue;
                }
                for keys in [&node_keys, &portable] {
                    let mut walk = LeafWalk::default();
                    let started =
                        walk.start(agg_id, &public_share, key, keys, &tree, None, &mut scratch);
                    assert!(started.is_ok());
                    let mut got = Vec::new();
                    let mut chunk = vec![[Field255::ZERO; 2]; 37];
                    loop {
                        let n = walk.next_chunk(agg_id, &public_share, keys, &tree, &mut chunk);
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&chunk[..n]);
                    }
                    // In blocks.
                    let mut blocked = Vec::new();
                    let started =
                        walk.start(agg_id, &public_share, key, keys, &tree, None, &mut scratch);
                    assert!(started.is_ok());
                    let mut blocks = vec![LeafBlock::default(); 5];
                    loop {
                        let n = walk.next_blocks(agg_id, &public_share, keys, &tree, &mut blocks);
                        if n == 0 {
                            break;
                        }
                        blocked.extend((0..n).map(|i| blocks[i / 8].get(i % 8)));
                    }
                    assert_eq!(got.len(), candidates.len());
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            matches!(w, PathValue::Leaf(v) if v == g),
                            "leaf candidate {i}"
                        );
                    }
                    assert_eq!(blocked, got, "leaf values in blocks");
                }
            }
        }
    }
}
