//! The fixed-key hash of XofFixedKeyAes128 (draft-irtf-cfrg-vdaf-18, section 6.2.2),
//! `hash(x) = AES(k, sigma(x)) XOR sigma(x)`, over a whole slice of blocks with VAES on
//! 512-bit registers: four blocks per register, eight registers in flight.
//!
//! The IDPF's inner depths spend most of their time in this hash (two blocks per tree node,
//! about two million nodes per report in a registry search of 65,536 venues). Through the
//! `aes` crate each batch of blocks is converted from our little-endian `u128`s into its
//! block type and back, sigma and the final XOR run as scalar loops on either side, and the
//! cipher reloads its blocks from memory; here the blocks are loaded once, sigma is two
//! register operations, the ten rounds run on eight registers (32 blocks) at a time, and the
//! result is XORed and stored in place. The `aes` crate stays the reference and the fallback
//! ([`crate::xof::FixedKeyAes128`] uses it where this module reports no support, and the
//! tests below check this path against it block by block).
//!
//! The AES-128 key schedule is computed here too (with `aeskeygenassist`), because the `aes`
//! crate does not expose its round keys. The key of XofFixedKeyAes128 is derived from the
//! domain separation tag and the report's nonce, both public, and is not a secret of the
//! protocol; the round keys are still wiped on drop, like every key schedule in the crate.
//!
//! # Unsafe code
//!
//! Allowed in this module, [`crate::keccak`] and [`crate::field512`] only, for two reasons:
//! calling a function compiled for VAES and AVX-512F is `unsafe` (the compiler cannot know
//! the CPU has them, so every call follows [`available`]), and the 512-bit loads and stores
//! take raw pointers, each derived from a slice chunk of exactly the `u128`s it reads or
//! writes.
#![allow(unsafe_code)]

use zeroize::Zeroize;

/// The eleven round keys of one AES-128 key, as little-endian `u128`s (the byte order of an
/// XMM register loaded from the key schedule's bytes).
#[derive(Clone)]
pub struct RoundKeys([u128; 11]);

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `true` when this CPU has what [`RoundKeys::new`], [`hash_u128s`] and [`extend_convert`]
/// need: AES-NI, VAES, AVX-512F and BMI2 (detected at run time, cached by the standard
/// library).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl RoundKeys {
    /// The AES-128 key schedule of `key`; `None` when the CPU lacks VAES or AVX-512F (then the
    /// caller keeps to the `aes` crate).
    pub fn new(key: &[u8; 16]) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: `expand` needs AES-NI and SSE4.1; `available` has just confirmed AES-NI
            // and AVX-512F, which implies SSE4.1.
            return Some(Self(unsafe { expand(u128::from_le_bytes(*key)) }));
        }
        let _ = key;
        None
    }
}

/// Replaces every `x` in `xs` by `AES(k, sigma(x)) XOR sigma(x)`, with `sigma` on the block
/// read as a little-endian integer: low half R, high half L XOR R (see
/// [`crate::xof::FixedKeyAes128::hash_u128s`], which this computes).
pub fn hash_u128s(keys: &RoundKeys, xs: &mut [u128]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a `RoundKeys` exists only where `available` returned true (`RoundKeys::new`),
        // which is all `hash_vaes` requires.
        unsafe { hash_vaes(&keys.0, xs) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // Unreachable: `RoundKeys::new` returns `None` on other architectures.
        let _ = (keys, xs);
    }
}

/// sigma of the fixed-key hash on each 128-bit lane [L, R] (low, high 64 bits) of a 512-bit
/// register: [R, L ^ R] = [R, L] ^ [0, R]. A macro rather than a function, which would not
/// inherit its callers' target features. AVX-512F.
#[cfg(target_arch = "x86_64")]
macro_rules! sigma512 {
    ($x:expr) => {{
        use std::arch::x86_64::{
            _MM_PERM_BADC, _mm512_maskz_mov_epi64, _mm512_shuffle_epi32, _mm512_xor_si512,
        };
        let x = $x;
        _mm512_xor_si512(
            _mm512_shuffle_epi32::<_MM_PERM_BADC>(x),
            _mm512_maskz_mov_epi64(0xaa, x),
        )
    }};
}

/// The fixed-key hash on every block of `$v` (a `&mut [__m512i; N]`, four blocks a
/// register) with the broadcast round keys `$keys` (`[__m512i; 11]`): `N` independent AES
/// pipelines. The final XOR with sigma is folded into the last round key (the last round
/// ends with the key's XOR), off the chain of dependent rounds. AES-NI, VAES, AVX-512F.
#[cfg(target_arch = "x86_64")]
macro_rules! hash512 {
    ($keys:expr, $v:expr) => {{
        use std::arch::x86_64::{_mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_xor_si512};
        let keys = &$keys;
        let v = $v;
        let s = v.map(|x| sigma512!(x));
        let last = s.map(|s| _mm512_xor_si512(s, keys[10]));
        for (x, s) in v.iter_mut().zip(s) {
            *x = _mm512_xor_si512(s, keys[0]);
        }
        for k in &keys[1..10] {
            for x in v.iter_mut() {
                *x = _mm512_aesenc_epi128(*x, *k);
            }
        }
        for (x, l) in v.iter_mut().zip(last) {
            *x = _mm512_aesenclast_epi128(*x, l);
        }
    }};
}

/// Loads `$chunk` (a `&[u128; 4 N]`) into `N` registers, and stores `N` registers into a
/// `&mut [u128; 4 N]`: `load512!(chunk, N)`, `store512!(chunk, registers, N)`. The array
/// types carry the lengths the raw loads and stores rely on. AVX-512F.
#[cfg(target_arch = "x86_64")]
macro_rules! load512 {
    ($chunk:expr, $n:literal) => {{
        let chunk: &[u128; 4 * $n] = $chunk;
        let p = chunk.as_ptr().cast::<i64>();
        let v: [std::arch::x86_64::__m512i; $n] = core::array::from_fn(|i| {
            // SAFETY: `chunk` is exactly `4 N` u128s, so register `i` reads the 64 bytes at
            // `p + 8 i` (in i64 units) inside it; unaligned access is allowed.
            unsafe { std::arch::x86_64::_mm512_loadu_epi64(p.add(8 * i)) }
        });
        v
    }};
}
#[cfg(target_arch = "x86_64")]
macro_rules! store512 {
    ($chunk:expr, $v:expr, $n:literal) => {{
        let chunk: &mut [u128; 4 * $n] = $chunk;
        let v: [std::arch::x86_64::__m512i; $n] = $v;
        let p = chunk.as_mut_ptr().cast::<i64>();
        for (i, y) in v.into_iter().enumerate() {
            // SAFETY: as for `load512!`: register `i` covers the 64 bytes at `p + 8 i`.
            unsafe { std::arch::x86_64::_mm512_storeu_epi64(p.add(8 * i), y) };
        }
    }};
}

/// AES-128 key expansion (FIPS 197, section 5.2) with `aeskeygenassist`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes,sse4.1")]
fn expand(key: u128) -> [u128; 11] {
    use std::arch::x86_64::{
        __m128i, _mm_aeskeygenassist_si128, _mm_extract_epi64, _mm_set_epi64x, _mm_shuffle_epi32,
        _mm_slli_si128, _mm_xor_si128,
    };
    // One step of the schedule: the previous round key with its words prefix-XORed, XORed
    // with the broadcast last word of `aeskeygenassist`.
    macro_rules! step {
        ($prev:expr, $assist:expr) => {{
            let t = _mm_shuffle_epi32::<0xff>($assist);
            let mut k: __m128i = $prev;
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<8>(k));
            _mm_xor_si128(k, t)
        }};
    }
    let mut k = _mm_set_epi64x((key >> 64) as i64, key as i64);
    let mut out = [0u128; 11];
    out[0] = key;
    macro_rules! rounds {
        ($($i:literal => $rcon:literal),*) => {$(
            k = step!(k, _mm_aeskeygenassist_si128::<$rcon>(k));
            out[$i] = u128::from(_mm_extract_epi64::<0>(k) as u64)
                | (u128::from(_mm_extract_epi64::<1>(k) as u64) << 64);
        )*};
    }
    rounds!(1 => 0x01, 2 => 0x02, 3 => 0x04, 4 => 0x08, 5 => 0x10,
            6 => 0x20, 7 => 0x40, 8 => 0x80, 9 => 0x1b, 10 => 0x36);
    out
}

/// The hash on every block of `xs`, 32 blocks per loop, then 4, then the last one to three
/// through a stack buffer (wiped afterwards).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes,vaes,avx512f")]
fn hash_vaes(rk: &[u128; 11], xs: &mut [u128]) {
    use std::arch::x86_64::{__m512i, _mm_set_epi64x, _mm512_broadcast_i32x4};
    let keys: [__m512i; 11] =
        rk.map(|k| _mm512_broadcast_i32x4(_mm_set_epi64x((k >> 64) as i64, k as i64)));

    macro_rules! run {
        ($n:literal, $chunk:expr) => {{
            let chunk: &mut [u128; 4 * $n] = $chunk;
            let mut v = load512!(&*chunk, $n);
            hash512!(keys, &mut v);
            store512!(chunk, v, $n);
        }};
    }

    let (wide, rest) = xs.as_chunks_mut::<32>();
    for chunk in wide {
        run!(8, chunk);
    }
    let (four, rest) = rest.as_chunks_mut::<4>();
    for chunk in four {
        run!(1, chunk);
    }
    if !rest.is_empty() {
        let mut buf = [0u128; 4];
        buf[..rest.len()].copy_from_slice(rest);
        run!(1, &mut buf);
        rest.copy_from_slice(&buf[..rest.len()]);
        buf.zeroize();
    }
}

/// One inner depth of the IDPF's tree walk (draft section 8.3.4, `eval` between two depths)
/// for a run of children: where each child's parent is, and the correction word.
pub struct InnerStep<'a> {
    /// The correction word's seed, as a little-endian integer.
    pub cw_seed: u128,
    /// The correction word's control bits (left, right).
    pub cw_ctrl: [u8; 2],
    /// For each child, its parent's index in `seeds` and `ctrl`.
    pub parents: &'a [u32],
    /// For each child, which child of its parent it is (0 or 1).
    pub bits: &'a [u8],
    /// The previous depth's seeds.
    pub seeds: &'a [u128],
    /// The previous depth's control bits.
    pub ctrl: &'a [u8],
}

/// The children of `step`, with both hashes fused so that each child stays in registers:
/// for child `i` with parent `p` and bit `b`, `y = hash_extend(seeds[p] ^ b)`,
/// `out_ctrl[i] = (y & 1) ^ (cw_ctrl[b] & ctrl[p])` and
/// `out_seeds[i] = hash_convert((y & !1) ^ (cw_seed if ctrl[p] else 0))`. The control bits
/// act through masks; only the (public) tree decides which memory is read.
///
/// # Panics
///
/// If the slices differ in length or a parent index is out of range (a bug in the tree, not
/// an input: the tree is built from the aggregation parameter, and the public share cannot
/// change it).
pub fn extend_convert(
    extend: &RoundKeys,
    convert: &RoundKeys,
    step: &InnerStep<'_>,
    out_seeds: &mut [u128],
    out_ctrl: &mut [u8],
) {
    let n = step.parents.len();
    assert!(step.bits.len() == n && out_seeds.len() == n && out_ctrl.len() == n);
    assert!(step.seeds.len() == step.ctrl.len());
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a `RoundKeys` exists only where `available` returned true, which is all
        // `extend_convert_vaes` requires.
        unsafe { extend_convert_vaes(&extend.0, &convert.0, step, out_seeds, out_ctrl) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (extend, convert, step, out_seeds, out_ctrl);
    }
}

/// Children per loop of [`extend_convert_vaes`]: four registers, so that both key schedules
/// (22 registers) and the blocks fit in the 32 of AVX-512.
const FUSED: usize = 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes,vaes,avx512f,bmi2")]
fn extend_convert_vaes(
    erk: &[u128; 11],
    crk: &[u128; 11],
    step: &InnerStep<'_>,
    out_seeds: &mut [u128],
    out_ctrl: &mut [u8],
) {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_set_epi64x, _mm512_andnot_si512, _mm512_broadcast_i32x4,
        _mm512_castsi128_si512, _mm512_inserti32x4, _mm512_mask_xor_epi64, _mm512_maskz_mov_epi64,
        _mm512_set1_epi64, _mm512_test_epi64_mask, _mm512_xor_si512, _pdep_u32, _pext_u32,
    };
    let broadcast = |k: u128| _mm512_broadcast_i32x4(_mm_set_epi64x((k >> 64) as i64, k as i64));
    let ekeys = erk.map(broadcast);
    let ckeys = crk.map(broadcast);
    let cw_seed = broadcast(step.cw_seed);
    // Bit 0 of each block (the control bit of an extended child), and 1 in every qword.
    let one = broadcast(1);
    let ones = _mm512_set1_epi64(1);
    // The correction word's control bits as masks over the blocks' even bits.
    let cw0 = 0x55 * (step.cw_ctrl[0] & 1);
    let cw1 = 0x55 * (step.cw_ctrl[1] & 1);
    // The extend inputs of children `4 r .. 4 r + 4` of a run of FUSED: their parents' seeds
    // (one 64-byte load where the four parents are consecutive, else four 16-byte loads)
    // with each child's bit XORed in; and the masks of their parents' control bits.
    macro_rules! gather {
        ($parents:expr, $bits:expr, $r:expr) => {{
            let (parents, bits, r): (&[u32; FUSED], &[u8; FUSED], usize) = ($parents, $bits, $r);
            let p: [usize; 4] = core::array::from_fn(|j| parents[4 * r + j] as usize);
            // Bit j of a 4-bit value to bit 2j (one mask bit per 128-bit block).
            let spread = |x: u32| _pdep_u32(x, 0x55) as u8;
            let four = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
            let bit_mask = spread(_pext_u32(four(&bits[4 * r..4 * r + 4]), 0x0101_0101));
            let (g, t_mask) = if p[1] == p[0] + 1 && p[2] == p[0] + 2 && p[3] == p[0] + 3 {
                let run: &[u128; 4] = step.seeds[p[0]..p[0] + 4].try_into().unwrap_or(&[0; 4]);
                let t = _pext_u32(four(&step.ctrl[p[0]..p[0] + 4]), 0x0101_0101);
                let [g] = load512!(run, 1);
                (g, 3 * spread(t))
            } else {
                let mut t_mask = 0u8;
                for (j, &pj) in p.iter().enumerate() {
                    t_mask |= (3 * (step.ctrl[pj] & 1)) << (2 * j);
                }
                let lanes: [__m128i; 4] = core::array::from_fn(|j| {
                    let seed: *const u128 = &step.seeds[p[j]];
                    // SAFETY: `seed` points to one u128 of the slice (the index was
                    // checked); the load reads exactly its 16 bytes, unaligned allowed.
                    unsafe { _mm_loadu_si128(seed.cast::<__m128i>()) }
                });
                let mut g = _mm512_castsi128_si512(lanes[0]);
                g = _mm512_inserti32x4::<1>(g, lanes[1]);
                g = _mm512_inserti32x4::<2>(g, lanes[2]);
                (_mm512_inserti32x4::<3>(g, lanes[3]), t_mask)
            };
            (
                _mm512_mask_xor_epi64(g, bit_mask, g, ones),
                t_mask,
                bit_mask,
            )
        }};
    }
    // FUSED children (parents, bits): writes their control bits (as many as `out_ctrl`
    // holds) and returns their seeds.
    macro_rules! run {
        ($parents:expr, $bits:expr, $out_ctrl:expr) => {{
            let parents: &[u32; FUSED] = $parents;
            let bits: &[u8; FUSED] = $bits;
            let out_ctrl: &mut [u8] = $out_ctrl;
            let mut v = [ones; 4];
            let mut t_masks = [0u8; 4];
            let mut bit_masks = [0u8; 4];
            for r in 0..4 {
                (v[r], t_masks[r], bit_masks[r]) = gather!(parents, bits, r);
            }
            hash512!(ekeys, &mut v);
            for (r, y) in v.iter_mut().enumerate() {
                // Control bits in the even mask bits: the extended child's, XOR the
                // correction word's for the child's side where the parent's is set.
                let cc = ((bit_masks[r] & cw1) | (!bit_masks[r] & cw0)) & t_masks[r];
                let c = (_mm512_test_epi64_mask(*y, one) ^ cc) & 0x55;
                let bytes = _pdep_u32(_pext_u32(u32::from(c), 0x55), 0x0101_0101).to_le_bytes();
                match out_ctrl.get_mut(4 * r..4 * r + 4) {
                    Some(dst) => dst.copy_from_slice(&bytes),
                    None => {
                        let dst = out_ctrl.iter_mut().skip(4 * r);
                        for (o, b) in dst.zip(bytes) {
                            *o = b;
                        }
                    }
                }
                let corr = _mm512_maskz_mov_epi64(t_masks[r], cw_seed);
                *y = _mm512_xor_si512(_mm512_andnot_si512(one, *y), corr);
            }
            hash512!(ckeys, &mut v);
            v
        }};
    }

    let n = step.parents.len();
    let whole = n / FUSED * FUSED;
    let (parent_runs, _) = step.parents.as_chunks::<FUSED>();
    let (bit_runs, _) = step.bits.as_chunks::<FUSED>();
    let (seed_runs, _) = out_seeds.as_chunks_mut::<FUSED>();
    let (ctrl_runs, _) = out_ctrl.as_chunks_mut::<FUSED>();
    let outs = seed_runs.iter_mut().zip(ctrl_runs.iter_mut());
    for ((parents, bits), (seeds_out, ctrl_out)) in parent_runs.iter().zip(bit_runs).zip(outs) {
        store512!(seeds_out, run!(parents, bits, ctrl_out), 4);
    }
    if whole < n {
        // The last children, padded with copies of the first (a valid parent index); the
        // padding's outputs are dropped.
        let rest = n - whole;
        let mut parents = [step.parents[whole]; FUSED];
        let mut bits = [0u8; FUSED];
        parents[..rest].copy_from_slice(&step.parents[whole..]);
        bits[..rest].copy_from_slice(&step.bits[whole..]);
        let mut tmp = [0u128; FUSED];
        store512!(&mut tmp, run!(&parents, &bits, &mut out_ctrl[whole..]), 4);
        out_seeds[whole..].copy_from_slice(&tmp[..rest]);
        tmp.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn reference(key: &[u8; 16], x: u128) -> u128 {
        let l = x as u64;
        let r = (x >> 64) as u64;
        let s = u128::from(r) | (u128::from(l ^ r) << 64);
        let mut block = aes::Block::from(s.to_le_bytes());
        aes::Aes128::new(&(*key).into()).encrypt_block(&mut block);
        u128::from_le_bytes(block.into()) ^ s
    }

    #[test]
    fn fused_step_matches_two_hashes_and_the_correction() {
        let mut rng = StdRng::seed_from_u64(0xf05e);
        if !available() {
            return;
        }
        for n in [0usize, 1, 3, 15, 16, 17, 40, 64, 100, 300] {
            let (ke, kc): ([u8; 16], [u8; 16]) = (rng.random(), rng.random());
            let (Some(re), Some(rc)) = (RoundKeys::new(&ke), RoundKeys::new(&kc)) else {
                panic!("VAES available but no round keys");
            };
            let prev = n / 2 + 1;
            let seeds: Vec<u128> = (0..prev).map(|_| rng.random()).collect();
            let ctrl: Vec<u8> = (0..prev).map(|_| rng.random_range(0..2)).collect();
            // Sorted parents with runs of one and two children, as a tree has them (the
            // consecutive runs take the kernel's wide load).
            let mut parents: Vec<u32> = (0..n).map(|_| rng.random_range(0..prev as u32)).collect();
            parents.sort_unstable();
            let bits: Vec<u8> = (0..n).map(|_| rng.random_range(0..2)).collect();
            let step = InnerStep {
                cw_seed: rng.random(),
                cw_ctrl: [rng.random_range(0..2), rng.random_range(0..2)],
                parents: &parents,
                bits: &bits,
                seeds: &seeds,
                ctrl: &ctrl,
            };
            let mut out_ctrl = vec![0u8; n];
            let mut out_seeds = vec![0u128; n];
            extend_convert(&re, &rc, &step, &mut out_seeds, &mut out_ctrl);
            for i in 0..n {
                let (p, b) = (parents[i] as usize, bits[i]);
                let t = ctrl[p];
                let y = reference(&ke, seeds[p] ^ u128::from(b));
                let want_ctrl = (y & 1) as u8 ^ (step.cw_ctrl[usize::from(b)] & t);
                assert_eq!(out_ctrl[i], want_ctrl, "control bit {i} of {n}");
                let corr = if t == 1 { step.cw_seed } else { 0 };
                assert_eq!(
                    out_seeds[i],
                    reference(&kc, (y & !1) ^ corr),
                    "seed {i} of {n}"
                );
            }
        }
    }

    #[test]
    fn key_schedule_and_hash_match_the_aes_crate_for_every_length() {
        let mut rng = StdRng::seed_from_u64(0xae5);
        if !available() {
            eprintln!("no VAES and AVX-512F on this CPU: the aes crate path runs instead");
            return;
        }
        for len in [0usize, 1, 2, 3, 4, 5, 31, 32, 33, 36, 63, 64, 100, 257] {
            let key: [u8; 16] = rng.random();
            let Some(rk) = RoundKeys::new(&key) else {
                panic!("VAES available but no round keys");
            };
            let xs: Vec<u128> = (0..len).map(|_| rng.random()).collect();
            let mut ours = xs.clone();
            hash_u128s(&rk, &mut ours);
            let want: Vec<u128> = xs.iter().map(|&x| reference(&key, x)).collect();
            assert_eq!(ours, want, "{len} blocks");
        }
    }
}
