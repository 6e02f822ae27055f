//! The leaf level's sketch sums (draft-irtf-cfrg-vdaf-18, section 8.2.3: Poplar1's
//! `verify_init` over `Field255`) with AVX-512 IFMA, eight candidates at a time.
//!
//! Per candidate the sketch needs `r y`, `r^2 y` and `r z` modulo p = 2^255 - 19: three
//! 255-bit products, about half the leaf level's arithmetic. Here the operands of eight
//! candidates are held limb by limb in 512-bit registers in radix 2^52 (five limbs), and
//! `vpmadd52luq` / `vpmadd52huq` multiply-accumulate 52-bit limbs into 64-bit lanes, so
//! that the 25 limb products of eight multiplications take 50 instructions. Products are
//! summed unreduced, position by position; only `r y`, which is multiplied again, is
//! reduced (to five limbs below 2^52, using 2^260 = 608 mod p). Every 256 candidates the
//! lanes are added up into the caller's wide integers, before any lane can overflow.
//!
//! [`crate::field::SketchSums255`] uses this where the CPU has IFMA and its own 64-bit
//! schoolbook products elsewhere; the tests below check both against each other.
//!
//! # Unsafe code
//!
//! One `unsafe` block, the call of the function compiled with AVX-512F, AVX-512DQ and
//! AVX-512 IFMA, made after [`available`] confirmed them. Inside it the intrinsics are safe
//! register operations (no pointers).
#![allow(unsafe_code)]

use crate::field::Field255;

/// Limbs of the wide sums (640 bits: the sum of 2^16 products of 260 x 255 bits and more).
pub const WIDE: usize = 10;

/// Candidates between two flushes of the lanes (32 groups of eight): a lane position gains
/// less than 10 * 2^52 per group, so 8 lanes of 32 groups stay below 2^64.
const FLUSH: usize = 256;

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
    #[cfg(target_arch = "x86_64")]
    if available() {
        for (v, r) in values.chunks(FLUSH).zip(rs.chunks(FLUSH)) {
            // SAFETY: `sketch_ifma` requires AVX-512F, AVX-512DQ and AVX-512 IFMA only,
            // which `available` has just confirmed.
            unsafe { sketch_ifma(v, r, sums) };
        }
        return true;
    }
    let _ = (values, rs, sums);
    false
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
fn sketch_ifma(values: &[[Field255; 2]], rs: &[Field255], sums: &mut [[u64; WIDE]; 3]) {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64,
        _mm512_mullo_epi64, _mm512_or_si512, _mm512_reduce_add_epi64, _mm512_set_epi64,
        _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srli_epi64,
    };
    debug_assert!(values.len() <= FLUSH && rs.len() == values.len());
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
    for (vs, rr) in values.chunks(8).zip(rs.chunks(8)) {
        // Transpose (zeros past the end contribute nothing: r = 0).
        let mut r64 = [[0u64; 8]; 4];
        let mut y64 = [[0u64; 8]; 4];
        let mut z64 = [[0u64; 8]; 4];
        for (k, (v, r)) in vs.iter().zip(rr).enumerate() {
            let (r, y, z) = (r.limbs(), v[0].limbs(), v[1].limbs());
            for j in 0..4 {
                r64[j][k] = r[j];
                y64[j][k] = y[j];
                z64[j][k] = z[j];
            }
        }
        let r = to52!(&r64);
        let y = to52!(&y64);
        let z = to52!(&z64);
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
}
