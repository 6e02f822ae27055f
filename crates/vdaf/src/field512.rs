//! `Field255` (p = 2^255 - 19) on 512-bit registers, eight elements at a time: the two
//! pieces of the leaf level's arithmetic (draft-irtf-cfrg-vdaf-18, section 8.3.4, the IDPF's
//! leaf values, and section 8.2.3, Poplar1's `verify_init` sketch) that cost the most once the
//! hashing is fast.
//!
//! - [`leaf_block`]: eight leaves' value shares from their `convert` outputs (eight
//!   TurboSHAKE states, lane-interleaved as the eight-way permutation leaves them, so that
//!   limb `j` of the eight values is one register): the canonicity check of the draft's
//!   rejection sampling, `w + t cw` and the helper's negation, with carries through mask
//!   registers. AVX-512F.
//! - [`add_sketch`]: `r y`, `r^2 y` and `r z` summed over the candidates. The operands of
//!   eight candidates are held limb by limb in radix 2^52 (five limbs), and
//!   `vpmadd52luq` / `vpmadd52huq` multiply-accumulate 52-bit limbs into 64-bit lanes, so
//!   that the 25 limb products of eight multiplications take 50 instructions. Products are
//!   summed unreduced, position by position; only `r y`, which is multiplied again, is
//!   reduced (to five limbs below 2^52, using 2^260 = 608 mod p). Every 256 candidates the
//!   lanes are added up into the caller's wide integers, before any lane can overflow.
//!   AVX-512 IFMA.
//!
//! - [`add_first_values`]: the output shares summed eight leaves at a time. AVX-512F.
//!
//! The first two report `false` / `None` where the CPU lacks the extension, and the callers
//! ([`crate::idpf::LeafWalk`], [`crate::field::SketchSums255`]) then use 64-bit scalar code;
//! the third falls back to [`Field255`]'s addition itself, leaf by leaf. The tests below
//! check each path against the scalar field arithmetic.
//!
//! # Unsafe code
//!
//! The calls of the functions compiled with AVX-512, each made after the matching
//! `is_x86_feature_detected!`, and the 512-bit loads and stores of the leaf values, each
//! through a pointer to exactly the eight `u64`s it covers.
#![allow(unsafe_code)]

use crate::field::{Field255, P255};
use crate::keccak::State8;
use zeroize::Zeroize;

/// Limbs of the wide sums (640 bits: the sum of 2^16 products of 260 x 255 bits and more).
pub const WIDE: usize = 10;

/// Candidates between two flushes of the lanes (32 groups of eight): a lane position gains
/// less than 10 * 2^52 per group, so 8 lanes of 32 groups stay below 2^64.
const FLUSH: usize = 256;

/// The value shares of eight leaves, limb-major: `y[j][k]` is limb `j` (little-endian, 64
/// bits) of leaf `k`'s first value, `z[j][k]` of its second. The layout the eight-way
/// permutation leaves the leaves' `convert` outputs in, and the one the sketch loads, so
/// that values go from one to the other without transposing. Secret: wiped on drop.
#[derive(Clone, Default)]
pub struct LeafBlock {
    y: [[u64; 8]; 4],
    z: [[u64; 8]; 4],
}

impl LeafBlock {
    /// Leaf `k`'s value pair.
    #[inline]
    pub fn get(&self, k: usize) -> [Field255; 2] {
        let lane = |l: &[[u64; 8]; 4]| [l[0][k], l[1][k], l[2][k], l[3][k]];
        [
            Field255::from_reduced_limbs(lane(&self.y)),
            Field255::from_reduced_limbs(lane(&self.z)),
        ]
    }

    /// Sets leaf `k`'s value pair.
    #[inline]
    pub fn set(&mut self, k: usize, v: &[Field255; 2]) {
        let (y, z) = (v[0].limbs(), v[1].limbs());
        for j in 0..4 {
            self.y[j][k] = y[j];
            self.z[j][k] = z[j];
        }
    }

    /// Leaf `k`'s first value (the output share's).
    #[inline]
    pub fn first(&self, k: usize) -> Field255 {
        Field255::from_reduced_limbs(core::array::from_fn(|j| self.y[j][k]))
    }
}

impl Drop for LeafBlock {
    fn drop(&mut self) {
        self.y.zeroize();
        self.z.zeroize();
    }
}

/// `true` when this CPU has AVX-512F, AVX-512DQ and AVX-512 IFMA (detected at run time).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512ifma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Adds, for every candidate `i`, `r_i y_i` to `s0`, `r_i^2 y_i` (modulo p, not canonical) to
/// `s1` and `r_i z_i` to `s2`, where `values[i] = (y_i, z_i)` and `rs[i] = r_i`. Returns
/// `false` (and adds nothing) where the CPU lacks IFMA.
pub fn add_sketch(values: &[[Field255; 2]], rs: &[Field255], sums: &mut [[u64; WIDE]; 3]) -> bool {
    if !available() {
        return false;
    }
    let mut blocks: [LeafBlock; FLUSH / 8] = Default::default();
    for (v, r) in values.chunks(FLUSH).zip(rs.chunks(FLUSH)) {
        for (i, x) in v.iter().enumerate() {
            blocks[i / 8].set(i % 8, x);
        }
        add_sketch_blocks(&blocks, r, sums);
    }
    true
}

/// [`add_sketch`] on candidates held in blocks: candidate `i` is leaf `i % 8` of
/// `blocks[i / 8]`, for `i < rs.len()` (lanes past it are ignored). Returns `false` (and adds
/// nothing) where the CPU lacks IFMA.
pub fn add_sketch_blocks(
    blocks: &[LeafBlock],
    rs: &[Field255],
    sums: &mut [[u64; WIDE]; 3],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if available() {
        let n = rs.len().min(8 * blocks.len());
        for (b, r) in blocks.chunks(FLUSH / 8).zip(rs[..n].chunks(FLUSH)) {
            // SAFETY: `sketch_ifma` requires AVX-512F, AVX-512DQ and AVX-512 IFMA only,
            // which `available` has just confirmed.
            unsafe { sketch_ifma(b, r, sums) };
        }
        return true;
    }
    let _ = (blocks, rs, sums);
    false
}

/// `true` when this CPU has AVX-512F (detected at run time): where [`leaf_block`] runs.
fn avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The value shares of eight leaves from their `convert` states `st` (lanes 2 to 5 and 6 to 9
/// of state `k`: the two 32-byte candidates for `w_k`, top bit cleared) into `block`:
/// `w_k + t_k cw`, negated when `negate`, where `t_k = ctrl[k] & 1` (lanes past
/// `ctrl.len()` are computed with `t = 0`, for the caller to ignore). Returns the lanes whose
/// candidates were not canonical (the draft then reads further: the caller recomputes those
/// lanes, which hold zero), or `None`, writing nothing, where the CPU lacks AVX-512F.
pub fn leaf_block(
    st: &State8,
    ctrl: &[u8],
    cw: &[Field255; 2],
    negate: bool,
    block: &mut LeafBlock,
) -> Option<u8> {
    #[cfg(target_arch = "x86_64")]
    if avx512f() {
        let mut t = 0u8;
        for (k, c) in ctrl.iter().take(8).enumerate() {
            t |= (c & 1) << k;
        }
        // SAFETY: `leaf_values_avx512` requires AVX-512F only, just confirmed.
        let bad = unsafe { leaf_values_avx512(st, t, cw, negate, block) };
        let n = ctrl.len().min(8);
        return Some(bad & (((1u16 << n) - 1) as u8));
    }
    let _ = (st, ctrl, cw, negate, block);
    None
}

/// `a - b` on four-limb values in eight lanes (`[__m512i; 4]`, limb-major): the difference
/// and the mask of lanes that borrowed out of the top limb. AVX-512F.
#[cfg(target_arch = "x86_64")]
macro_rules! sub4x8 {
    ($a:expr, $b:expr) => {{
        use std::arch::x86_64::{
            _mm512_cmpeq_epi64_mask, _mm512_cmplt_epu64_mask, _mm512_mask_sub_epi64,
            _mm512_set1_epi64, _mm512_sub_epi64,
        };
        let (a, b): (&[_; 4], &[_; 4]) = ($a, $b);
        let mut out = *a;
        let mut borrow = 0u8;
        for j in 0..4 {
            let d = _mm512_sub_epi64(a[j], b[j]);
            let under = _mm512_cmplt_epu64_mask(a[j], b[j]);
            // Subtracting the incoming borrow underflows only a zero difference.
            let zero = _mm512_cmpeq_epi64_mask(d, _mm512_set1_epi64(0));
            out[j] = _mm512_mask_sub_epi64(d, borrow, d, _mm512_set1_epi64(1));
            borrow = under | (zero & borrow);
        }
        (out, borrow)
    }};
}

/// `(a + b) mod p` on four-limb values in eight lanes, both below p (so the sum is below
/// 2^256 and one conditional subtraction of `p`, the broadcast modulus, makes it canonical).
#[cfg(target_arch = "x86_64")]
macro_rules! add_mod_p {
    ($a:expr, $b:expr, $p:expr) => {{
        use std::arch::x86_64::{
            _mm512_add_epi64, _mm512_cmpeq_epi64_mask, _mm512_cmplt_epu64_mask,
            _mm512_mask_add_epi64, _mm512_mask_blend_epi64, _mm512_set1_epi64,
        };
        let (a, b, p): (&[_; 4], &[_; 4], &[_; 4]) = ($a, $b, $p);
        let mut sum = *a;
        let mut carry = 0u8;
        for j in 0..4 {
            let s = _mm512_add_epi64(a[j], b[j]);
            let over = _mm512_cmplt_epu64_mask(s, a[j]);
            let s2 = _mm512_mask_add_epi64(s, carry, s, _mm512_set1_epi64(1));
            // Adding the incoming carry overflows only an all-ones sum.
            let wrapped = _mm512_cmpeq_epi64_mask(s2, _mm512_set1_epi64(0)) & carry;
            sum[j] = s2;
            carry = over | wrapped;
        }
        let (d, borrow) = sub4x8!(&sum, p);
        let out: [_; 4] = core::array::from_fn(|j| _mm512_mask_blend_epi64(borrow, d[j], sum[j]));
        out
    }};
}

/// `acc[k] += y_k` (mod p) for the eight leaves of a block: `acc` limb-major like
/// [`LeafBlock`]'s values, both canonical; eight lanes at once with AVX-512F.
pub fn add_first_values(acc: &mut [[u64; 8]; 4], block: &LeafBlock) {
    #[cfg(target_arch = "x86_64")]
    if avx512f() {
        // SAFETY: `add_avx512` requires AVX-512F only, just confirmed.
        unsafe { add_avx512(acc, &block.y) };
        return;
    }
    add_first_values_portable(acc, block);
}

/// [`add_first_values`] one leaf at a time, with [`Field255`]'s addition (measured as fast
/// as a lane-parallel version on an AVX2-only host: the sum is a small share of the leaf
/// level).
fn add_first_values_portable(acc: &mut [[u64; 8]; 4], block: &LeafBlock) {
    for k in 0..8 {
        let a = Field255::from_reduced_limbs([acc[0][k], acc[1][k], acc[2][k], acc[3][k]]);
        for (row, limb) in acc.iter_mut().zip((a + block.first(k)).limbs()) {
            row[k] = limb;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_avx512(acc: &mut [[u64; 8]; 4], y: &[[u64; 8]; 4]) {
    use std::arch::x86_64::{__m512i, _mm512_loadu_epi64, _mm512_set1_epi64, _mm512_storeu_epi64};
    let p: [__m512i; 4] = P255.map(|l| _mm512_set1_epi64(l as i64));
    // SAFETY (loads and stores): each `[u64; 8]` is exactly the 64 bytes accessed.
    let a: [__m512i; 4] =
        core::array::from_fn(|j| unsafe { _mm512_loadu_epi64(acc[j].as_ptr().cast::<i64>()) });
    let b: [__m512i; 4] =
        core::array::from_fn(|j| unsafe { _mm512_loadu_epi64(y[j].as_ptr().cast::<i64>()) });
    let sum = add_mod_p!(&a, &b, &p);
    for (dst, reg) in acc.iter_mut().zip(sum) {
        unsafe { _mm512_storeu_epi64(dst.as_mut_ptr().cast::<i64>(), reg) };
    }
}

/// [`leaf_block`] once the control bits are a mask. Returns the mask of lanes with a
/// non-canonical candidate, whose values it sets to zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn leaf_values_avx512(
    st: &State8,
    t: u8,
    cw: &[Field255; 2],
    negate: bool,
    block: &mut LeafBlock,
) -> u8 {
    use std::arch::x86_64::{
        __m512i, _mm512_and_si512, _mm512_cmpeq_epi64_mask, _mm512_cmpge_epu64_mask,
        _mm512_loadu_epi64, _mm512_maskz_mov_epi64, _mm512_set1_epi64, _mm512_storeu_epi64,
    };
    let p: [__m512i; 4] = P255.map(|l| _mm512_set1_epi64(l as i64));
    let ones = _mm512_set1_epi64(1);
    let load = |lane: &[u64; 8]| {
        // SAFETY: `lane` is eight u64s: the load reads exactly their 64 bytes.
        unsafe { _mm512_loadu_epi64(lane.as_ptr().cast::<i64>()) }
    };
    let mut bad = 0u8;
    let mut ys = [[ones; 4]; 2];
    for (v, base) in [2usize, 6].into_iter().enumerate() {
        let mut w: [__m512i; 4] = core::array::from_fn(|j| load(&st[base + j]));
        w[3] = _mm512_and_si512(w[3], p[3]);
        // Not canonical: w >= p, i.e. w3 = 2^63 - 1, w2 = w1 = 2^64 - 1, w0 >= 2^64 - 19.
        let ge = _mm512_cmpeq_epi64_mask(w[3], p[3])
            & _mm512_cmpeq_epi64_mask(w[2], p[2])
            & _mm512_cmpeq_epi64_mask(w[1], p[1])
            & _mm512_cmpge_epu64_mask(w[0], p[0]);
        bad |= ge;
        // w + (cw where t): both below p < 2^255, so the sum fits in four limbs.
        let c = cw[v].limbs();
        let add: [__m512i; 4] =
            core::array::from_fn(|j| _mm512_maskz_mov_epi64(t, _mm512_set1_epi64(c[j] as i64)));
        let mut y = add_mod_p!(&w, &add, &p);
        if negate {
            // p - y, which is p exactly where y = 0: reduce that to 0.
            let (n, _) = sub4x8!(&p, &y);
            let is_p = (0..4).fold(0xffu8, |m, j| m & _mm512_cmpeq_epi64_mask(n[j], p[j]));
            y = core::array::from_fn(|j| _mm512_maskz_mov_epi64(!is_p, n[j]));
        }
        ys[v] = y;
    }
    for (dst, y) in [&mut block.y, &mut block.z].into_iter().zip(ys) {
        for (dst, reg) in dst.iter_mut().zip(y) {
            let reg = _mm512_maskz_mov_epi64(!bad, reg);
            // SAFETY: `dst` is eight u64s: the store writes exactly their 64 bytes.
            unsafe { _mm512_storeu_epi64(dst.as_mut_ptr().cast::<i64>(), reg) };
        }
    }
    bad
}

/// `acc += x * 2^shift` on little-endian limbs, carrying to the end.
fn add_shifted(acc: &mut [u64; WIDE], x: u64, shift: usize) {
    let (w, b) = (shift / 64, shift % 64);
    let v = u128::from(x) << b;
    let mut carry = 0u128;
    for (i, limb) in acc.iter_mut().enumerate().skip(w) {
        let add = match i - w {
            0 => v as u64,
            1 => (v >> 64) as u64,
            _ => 0,
        };
        let s = u128::from(*limb) + u128::from(add) + carry;
        *limb = s as u64;
        carry = s >> 64;
    }
}

/// At most [`FLUSH`] candidates.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
fn sketch_ifma(blocks: &[LeafBlock], rs: &[Field255], sums: &mut [[u64; WIDE]; 3]) {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64,
        _mm512_mullo_epi64, _mm512_or_si512, _mm512_reduce_add_epi64, _mm512_set_epi64,
        _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srli_epi64,
    };
    debug_assert!(rs.len() <= FLUSH && rs.len() <= 8 * blocks.len());
    let mask = _mm512_set1_epi64((1i64 << 52) - 1);
    let k608 = _mm512_set1_epi64(608);
    let zero = _mm512_setzero_si512();

    // Eight candidates' 64-bit limbs (from a transposed stack buffer) to radix 2^52.
    macro_rules! to52 {
        ($x:expr) => {{
            let x: &[[u64; 8]; 4] = $x;
            let v: [__m512i; 4] = core::array::from_fn(|j| {
                let l = x[j].map(|w| w as i64);
                _mm512_set_epi64(l[7], l[6], l[5], l[4], l[3], l[2], l[1], l[0])
            });
            [
                _mm512_and_si512(v[0], mask),
                _mm512_and_si512(
                    _mm512_or_si512(_mm512_srli_epi64::<52>(v[0]), _mm512_slli_epi64::<12>(v[1])),
                    mask,
                ),
                _mm512_and_si512(
                    _mm512_or_si512(_mm512_srli_epi64::<40>(v[1]), _mm512_slli_epi64::<24>(v[2])),
                    mask,
                ),
                _mm512_and_si512(
                    _mm512_or_si512(_mm512_srli_epi64::<28>(v[2]), _mm512_slli_epi64::<36>(v[3])),
                    mask,
                ),
                _mm512_srli_epi64::<16>(v[3]),
            ]
        }};
    }
    // acc[i + j] += lo52(a_i b_j), acc[i + j + 1] += hi52(a_i b_j).
    macro_rules! mul_acc {
        ($acc:expr, $a:expr, $b:expr) => {{
            let acc: &mut [__m512i; 11] = $acc;
            let (a, b): (&[__m512i; 5], &[__m512i; 5]) = ($a, $b);
            for i in 0..5 {
                for j in 0..5 {
                    acc[i + j] = _mm512_madd52lo_epu64(acc[i + j], a[i], b[j]);
                    acc[i + j + 1] = _mm512_madd52hi_epu64(acc[i + j + 1], a[i], b[j]);
                }
            }
        }};
    }
    // Carries limbs `lo..hi` (each left below 2^52) into limb `hi`.
    macro_rules! carry {
        ($t:expr, $lo:expr, $hi:expr) => {{
            let t: &mut [__m512i] = $t;
            for k in $lo..$hi {
                let c = _mm512_srli_epi64::<52>(t[k]);
                t[k] = _mm512_and_si512(t[k], mask);
                t[k + 1] = _mm512_add_epi64(t[k + 1], c);
            }
        }};
    }

    let mut acc = [[zero; 11]; 3];
    for (block, rr) in blocks.iter().zip(rs.chunks(8)) {
        // The randomness transposed (zeros past the end: those lanes contribute nothing).
        let mut r64 = [[0u64; 8]; 4];
        for (k, r) in rr.iter().enumerate() {
            for (j, l) in r.limbs().into_iter().enumerate() {
                r64[j][k] = l;
            }
        }
        let r = to52!(&r64);
        let y = to52!(&block.y);
        let z = to52!(&block.z);
        mul_acc!(&mut acc[0], &r, &y);
        mul_acc!(&mut acc[2], &r, &z);

        // r y reduced to five limbs below 2^52 (a value below 2^260, congruent mod p).
        let mut t = [zero; 11];
        mul_acc!(&mut t, &r, &y);
        carry!(&mut t, 0, 10);
        // r, y < 2^255, so r y < 2^510 and t[10] is zero; fold t[5..10] with 2^260 = 608.
        let mut u = [zero; 6];
        for k in 0..5 {
            u[k] = _mm512_add_epi64(t[k], _mm512_mullo_epi64(t[k + 5], k608));
        }
        for _ in 0..2 {
            carry!(&mut u, 0, 5);
            u[0] = _mm512_add_epi64(u[0], _mm512_mullo_epi64(u[5], k608));
            u[5] = zero;
        }
        // After the second fold u[0] < 2^52: a carry out of the first pass leaves u[0..5]
        // small, and a carry out of the second means they were all zero but u[0].
        let ry = [u[0], u[1], u[2], u[3], u[4]];
        mul_acc!(&mut acc[1], &ry, &r);
    }
    for (sum, a) in sums.iter_mut().zip(&acc) {
        for (k, lane) in a.iter().enumerate() {
            let total = _mm512_reduce_add_epi64(*lane) as u64;
            add_shifted(sum, total, 52 * k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{FieldElement, SketchSums255};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn random_elem(rng: &mut StdRng) -> Field255 {
        // Edge values near 0 and p as well as uniform ones.
        match rng.random_range(0..6) {
            0 => Field255::ZERO,
            1 => -Field255::from_u64(u64::from(rng.random::<u8>()) + 1),
            _ => loop {
                let bytes: [u8; 32] = rng.random();
                if let Some(x) = Field255::from_random(&bytes) {
                    break x;
                }
            },
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // lanes are indexed across the state's rows
    fn leaf_blocks_agree_with_the_scalar_arithmetic_at_the_edges() {
        if !avx512f() {
            eprintln!("no AVX-512F on this CPU: the scalar leaf outputs run instead");
            return;
        }
        let mut rng = StdRng::seed_from_u64(255);
        let p_minus = |d: u64| (-Field255::from_u64(d)).limbs();
        for round in 0..200 {
            let cw = [random_elem(&mut rng), random_elem(&mut rng)];
            let mut st = [[0u64; 8]; 25];
            for lane in st.iter_mut() {
                *lane = rng.random();
            }
            // Edge values in some lanes: p itself (rejected), 2^256 - 1 (top bit cleared:
            // rejected), zero, p - 1, and p - cw (the sum is p, reduced to zero).
            let edges: [[u64; 4]; 5] = [
                [
                    0xffff_ffff_ffff_ffed,
                    u64::MAX,
                    u64::MAX,
                    0x7fff_ffff_ffff_ffff,
                ],
                [u64::MAX; 4],
                [0; 4],
                p_minus(1),
                (-cw[round % 2]).limbs(),
            ];
            for k in 0..8 {
                if rng.random_range(0..3) == 0 {
                    let e = edges[rng.random_range(0..edges.len())];
                    let base = if rng.random() { 2 } else { 6 };
                    for j in 0..4 {
                        st[base + j][k] = e[j];
                    }
                }
            }
            let ctrl: Vec<u8> = (0..8).map(|_| rng.random_range(0..2)).collect();
            let negate = round % 3 == 0;
            let n = 1 + round % 8;
            let mut block = LeafBlock::default();
            let Some(bad) = leaf_block(&st, &ctrl[..n], &cw, negate, &mut block) else {
                panic!("AVX-512F available but no outputs");
            };
            for k in 0..n {
                let w: Vec<Option<Field255>> = [2usize, 6]
                    .iter()
                    .map(|&b| Field255::from_random_limbs(core::array::from_fn(|j| st[b + j][k])))
                    .collect();
                let rejected = w.iter().any(|x| x.is_none());
                assert_eq!(bad >> k & 1 == 1, rejected, "round {round} lane {k}");
                if rejected {
                    assert_eq!(
                        block.get(k),
                        [Field255::ZERO; 2],
                        "rejected lane {k} is zero"
                    );
                    continue;
                }
                for (v, wv) in w.iter().enumerate() {
                    let Some(wv) = wv else { continue };
                    let sum = if ctrl[k] == 1 { *wv + cw[v] } else { *wv };
                    let want = if negate { -sum } else { sum };
                    assert_eq!(block.get(k)[v], want, "round {round} lane {k} value {v}");
                }
            }
            assert_eq!(
                u16::from(bad) >> n,
                0,
                "lanes past the output are not reported"
            );
        }
    }

    #[test]
    fn ifma_sums_agree_with_the_schoolbook_sums() {
        if !available() {
            eprintln!("no AVX-512 IFMA on this CPU: the schoolbook sums run instead");
            return;
        }
        let mut rng = StdRng::seed_from_u64(52);
        for n in [0usize, 1, 7, 8, 9, 255, 256, 257, 1000] {
            let values: Vec<[Field255; 2]> = (0..n)
                .map(|_| [random_elem(&mut rng), random_elem(&mut rng)])
                .collect();
            let rs: Vec<Field255> = (0..n).map(|_| random_elem(&mut rng)).collect();
            let mut want = [Field255::ZERO; 3];
            for (v, r) in values.iter().zip(&rs) {
                want[0] += *r * v[0];
                want[1] += *r * *r * v[0];
                want[2] += *r * v[1];
            }
            let mut sums = SketchSums255::default();
            sums.add_chunk(&values, &rs);
            assert_eq!(sums.finish(), want, "{n} candidates, dispatched");
            let mut schoolbook = SketchSums255::default();
            schoolbook.add_chunk_schoolbook(&values, &rs);
            assert_eq!(schoolbook.finish(), want, "{n} candidates, schoolbook");
        }
    }

    #[test]
    fn output_share_sums_agree_with_field_addition_on_both_paths() {
        let mut rng = StdRng::seed_from_u64(0xadd);
        for _ in 0..200 {
            let a: [Field255; 8] = core::array::from_fn(|_| random_elem(&mut rng));
            let b: [Field255; 8] = core::array::from_fn(|_| random_elem(&mut rng));
            let mut block = LeafBlock::default();
            for (k, y) in b.iter().enumerate() {
                block.set(k, &[*y, Field255::ZERO]);
            }
            let lanes = |v: &[Field255; 8]| -> [[u64; 8]; 4] {
                core::array::from_fn(|j| core::array::from_fn(|k| v[k].limbs()[j]))
            };
            let want = lanes(&core::array::from_fn(|k| a[k] + b[k]));
            // Dispatched (AVX-512F where the CPU has it) and the portable lanes.
            let mut acc = lanes(&a);
            add_first_values(&mut acc, &block);
            assert_eq!(acc, want, "dispatched");
            let mut acc = lanes(&a);
            add_first_values_portable(&mut acc, &block);
            assert_eq!(acc, want, "portable");
        }
    }
}
