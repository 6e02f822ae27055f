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
//! Allowed in this module and in [`crate::keccak`] only, for two reasons: calling a function
//! compiled for VAES and AVX-512F is `unsafe` (the compiler cannot know the CPU has them, so
//! every call follows [`available`]), and the 512-bit loads and stores take raw pointers,
//! each derived from a slice chunk of exactly the four `u128`s it reads or writes.
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

/// `true` when this CPU has what [`RoundKeys::new`] and [`hash_u128s`] need: AES-NI, VAES and
/// AVX-512F (detected at run time, cached by the standard library).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("avx512f")
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
    use std::arch::x86_64::{
        __m512i, _MM_PERM_BADC, _mm_set_epi64x, _mm512_aesenc_epi128, _mm512_aesenclast_epi128,
        _mm512_broadcast_i32x4, _mm512_loadu_epi64, _mm512_maskz_mov_epi64, _mm512_shuffle_epi32,
        _mm512_storeu_epi64, _mm512_xor_si512,
    };
    let keys: [__m512i; 11] =
        rk.map(|k| _mm512_broadcast_i32x4(_mm_set_epi64x((k >> 64) as i64, k as i64)));

    // sigma on each 128-bit lane [L, R] (low, high 64 bits): [R, L ^ R] = [R, L] ^ [0, R].
    // (Macros rather than inner functions, which would not inherit the target features.)
    macro_rules! sigma {
        ($x:expr) => {{
            let x = $x;
            _mm512_xor_si512(
                _mm512_shuffle_epi32::<_MM_PERM_BADC>(x),
                _mm512_maskz_mov_epi64(0xaa, x),
            )
        }};
    }
    // The hash on the chunk's `N` registers (4 N blocks): `N` independent AES pipelines.
    macro_rules! run {
        ($n:literal, $chunk:expr) => {{
            let chunk: &mut [u128] = $chunk;
            debug_assert_eq!(chunk.len(), 4 * $n);
            let p = chunk.as_mut_ptr().cast::<i64>();
            let mut v: [__m512i; $n] = core::array::from_fn(|i| {
                // SAFETY: `chunk` holds exactly `4 N` u128s, so register `i` reads the 64
                // bytes at `p + 8 i` (in i64 units) inside it; unaligned access is allowed.
                sigma!(unsafe { _mm512_loadu_epi64(p.add(8 * i)) })
            });
            let s = v;
            for x in v.iter_mut() {
                *x = _mm512_xor_si512(*x, keys[0]);
            }
            for k in &keys[1..10] {
                for x in v.iter_mut() {
                    *x = _mm512_aesenc_epi128(*x, *k);
                }
            }
            for (i, (x, s)) in v.into_iter().zip(s).enumerate() {
                let y = _mm512_xor_si512(_mm512_aesenclast_epi128(x, keys[10]), s);
                // SAFETY: as for the loads above.
                unsafe { _mm512_storeu_epi64(p.add(8 * i), y) };
            }
        }};
    }

    let mut wide = xs.chunks_exact_mut(32);
    for chunk in &mut wide {
        run!(8, chunk);
    }
    let mut four = wide.into_remainder().chunks_exact_mut(4);
    for chunk in &mut four {
        run!(1, chunk);
    }
    let rest = four.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0u128; 4];
        buf[..rest.len()].copy_from_slice(rest);
        run!(1, &mut buf);
        rest.copy_from_slice(&buf[..rest.len()]);
        buf.zeroize();
    }
}

/// One inner depth of the IDPF's tree walk (draft section 8.3.4, `eval` between two
/// depths) for a run of children, both hashes fused so that each child stays in registers:
/// for every `i`, `y = hash_extend(ext[i])`, `ctrl[i] = (y & 1) ^ cc[i]`,
/// `s = (y & !1) ^ corr[i]` and `next[i] = hash_convert(s)`. The caller prepares `ext` (the
/// parent's seed XOR the child's bit), `corr` (the correction word's seed where the parent's
/// control bit is set, else zero) and `cc` (the same for the correction word's control bit
/// of the child's side).
///
/// # Panics
///
/// If the slices differ in length (a caller bug, not an input).
pub fn extend_convert(
    extend: &RoundKeys,
    convert: &RoundKeys,
    ext: &[u128],
    corr: &[u128],
    cc: &[u8],
    ctrl: &mut [u8],
    next: &mut [u128],
) {
    let n = ext.len();
    assert!(corr.len() == n && cc.len() == n && ctrl.len() == n && next.len() == n);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a `RoundKeys` exists only where `available` returned true, which is all
        // `extend_convert_vaes` requires.
        unsafe { extend_convert_vaes(&extend.0, &convert.0, ext, corr, cc, ctrl, next) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (extend, convert, ext, corr, cc, ctrl, next);
    }
}

/// Blocks per loop of [`extend_convert_vaes`]: four registers, so that both key schedules
/// (22 registers) and the blocks fit in the 32 of AVX-512.
const FUSED: usize = 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes,vaes,avx512f")]
fn extend_convert_vaes(
    erk: &[u128; 11],
    crk: &[u128; 11],
    ext: &[u128],
    corr: &[u128],
    cc: &[u8],
    ctrl: &mut [u8],
    next: &mut [u128],
) {
    use std::arch::x86_64::{
        __m512i, _MM_PERM_BADC, _mm_set_epi64x, _mm512_aesenc_epi128, _mm512_aesenclast_epi128,
        _mm512_andnot_si512, _mm512_broadcast_i32x4, _mm512_loadu_epi64, _mm512_maskz_mov_epi64,
        _mm512_shuffle_epi32, _mm512_storeu_epi64, _mm512_test_epi64_mask, _mm512_xor_si512,
    };
    let broadcast = |rk: &[u128; 11]| -> [__m512i; 11] {
        rk.map(|k| {
            // SSE2 and AVX-512F register operations, both enabled on this function.
            _mm512_broadcast_i32x4(_mm_set_epi64x((k >> 64) as i64, k as i64))
        })
    };
    let ekeys = broadcast(erk);
    let ckeys = broadcast(crk);
    // Bit 0 of each block (the control bit of an extended child).
    let one = _mm512_broadcast_i32x4(_mm_set_epi64x(0, 1));
    macro_rules! sigma {
        ($x:expr) => {{
            let x = $x;
            _mm512_xor_si512(
                _mm512_shuffle_epi32::<_MM_PERM_BADC>(x),
                _mm512_maskz_mov_epi64(0xaa, x),
            )
        }};
    }
    macro_rules! hash {
        ($keys:expr, $v:expr) => {{
            let keys = &$keys;
            let v: &mut [__m512i; 4] = $v;
            let s = v.map(|x| sigma!(x));
            for (x, s) in v.iter_mut().zip(s) {
                *x = _mm512_xor_si512(s, keys[0]);
            }
            for k in &keys[1..10] {
                for x in v.iter_mut() {
                    *x = _mm512_aesenc_epi128(*x, *k);
                }
            }
            for (x, s) in v.iter_mut().zip(s) {
                *x = _mm512_xor_si512(_mm512_aesenclast_epi128(*x, keys[10]), s);
            }
        }};
    }
    // The step on exactly FUSED children.
    macro_rules! step {
        ($ext:expr, $corr:expr, $cc:expr, $ctrl:expr, $next:expr) => {{
            let ext: &[u128] = $ext;
            let corr: &[u128] = $corr;
            let cc: &[u8] = $cc;
            let ctrl: &mut [u8] = $ctrl;
            let next: &mut [u128] = $next;
            debug_assert!(ext.len() == FUSED && corr.len() == FUSED && next.len() == FUSED);
            let pe = ext.as_ptr().cast::<i64>();
            let pc = corr.as_ptr().cast::<i64>();
            let pn = next.as_mut_ptr().cast::<i64>();
            // SAFETY (every load and store below): each slice holds exactly FUSED = 16
            // u128s, so register `i` covers the 64 bytes at `p + 8 i` (in i64 units) inside
            // it; unaligned access is allowed.
            let mut v: [__m512i; 4] =
                core::array::from_fn(|i| unsafe { _mm512_loadu_epi64(pe.add(8 * i)) });
            hash!(ekeys, &mut v);
            for (i, y) in v.iter_mut().enumerate() {
                let bits = _mm512_test_epi64_mask(*y, one);
                for j in 0..4 {
                    ctrl[4 * i + j] = ((bits >> (2 * j)) & 1) ^ cc[4 * i + j];
                }
                let c = unsafe { _mm512_loadu_epi64(pc.add(8 * i)) };
                *y = _mm512_xor_si512(_mm512_andnot_si512(one, *y), c);
            }
            hash!(ckeys, &mut v);
            for (i, y) in v.into_iter().enumerate() {
                unsafe { _mm512_storeu_epi64(pn.add(8 * i), y) };
            }
        }};
    }

    let n = ext.len();
    let whole = n / FUSED * FUSED;
    for at in (0..whole).step_by(FUSED) {
        step!(
            &ext[at..at + FUSED],
            &corr[at..at + FUSED],
            &cc[at..at + FUSED],
            &mut ctrl[at..at + FUSED],
            &mut next[at..at + FUSED]
        );
    }
    if whole < n {
        let rest = n - whole;
        let mut e = [0u128; FUSED];
        let mut c = [0u128; FUSED];
        let mut b = [0u8; FUSED];
        let mut t = [0u8; FUSED];
        let mut o = [0u128; FUSED];
        e[..rest].copy_from_slice(&ext[whole..]);
        c[..rest].copy_from_slice(&corr[whole..]);
        b[..rest].copy_from_slice(&cc[whole..]);
        step!(&e, &c, &b, &mut t, &mut o);
        ctrl[whole..].copy_from_slice(&t[..rest]);
        next[whole..].copy_from_slice(&o[..rest]);
        e.zeroize();
        c.zeroize();
        b.zeroize();
        t.zeroize();
        o.zeroize();
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
        for n in [0usize, 1, 15, 16, 17, 40, 64, 100] {
            let (ke, kc): ([u8; 16], [u8; 16]) = (rng.random(), rng.random());
            let (Some(re), Some(rc)) = (RoundKeys::new(&ke), RoundKeys::new(&kc)) else {
                panic!("VAES available but no round keys");
            };
            let ext: Vec<u128> = (0..n).map(|_| rng.random()).collect();
            let corr: Vec<u128> = (0..n)
                .map(|_| if rng.random() { rng.random() } else { 0 })
                .collect();
            let cc: Vec<u8> = (0..n).map(|_| rng.random_range(0..2)).collect();
            let mut ctrl = vec![0u8; n];
            let mut next = vec![0u128; n];
            extend_convert(&re, &rc, &ext, &corr, &cc, &mut ctrl, &mut next);
            for i in 0..n {
                let y = reference(&ke, ext[i]);
                assert_eq!(ctrl[i], (y & 1) as u8 ^ cc[i], "control bit {i} of {n}");
                assert_eq!(
                    next[i],
                    reference(&kc, (y & !1) ^ corr[i]),
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
