//! The two prime fields of Poplar1: `Field64` (inner tree levels) and `Field255` (leaves).
//!
//! draft-irtf-cfrg-vdaf-18, section 6.1 (finite fields) and table 3 (parameters):
//!
//! - `Field64`: p = 2^32 * 4294967295 + 1 = 2^64 - 2^32 + 1, encoded as 8 bytes little-endian.
//! - `Field255`: p = 2^255 - 19, encoded as 32 bytes little-endian.
//!
//! Elements are always kept canonical (in `[0, p)`), so equality of encodings is equality of
//! elements. Arithmetic is branch-free on the values (carries and borrows become masks), since
//! IDPF outputs and correlated randomness are secret. Decoders reject non-canonical encodings
//! (`x >= p`); the XOF's rejection sampling (section 6.2.1) uses [`FieldElement::from_random`],
//! which for `Field255` first clears the top bit, as the draft's `next_vec` does for a field
//! whose encoding has spare bits.

use core::fmt;
use core::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use crate::field512;

/// Operations shared by both fields; the protocol code is generic over them.
pub trait FieldElement:
    Copy
    + Default
    + ConstantTimeEq
    + ConditionallySelectable
    + Zeroize
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + Send
    + Sync
    + 'static
{
    /// Encoded size in bytes.
    const ENCODED_SIZE: usize;
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
    /// Decodes a canonical encoding; `None` if the slice has the wrong length or `x >= p`.
    fn from_canonical_bytes(bytes: &[u8]) -> Option<Self>;
    /// Rejection-sampling step of the XOF (`ENCODED_SIZE` bytes in): `None` means "reject".
    fn from_random(bytes: &[u8]) -> Option<Self>;
    /// Appends the canonical encoding.
    fn encode_into(&self, out: &mut Vec<u8>);
    /// The element `n mod p`.
    fn from_u64(n: u64) -> Self;
    /// The integer value if it fits in a `u64`.
    fn to_u64(&self) -> Option<u64>;
    /// `true` if the canonical value exceeds (p - 1) / 2 (used to read a noisy count as
    /// negative).
    fn vartime_is_upper_half(&self) -> bool;
}

// ---------------------------------------------------------------------------------------------
// Field64
// ---------------------------------------------------------------------------------------------

/// Element of GF(2^64 - 2^32 + 1), draft section 6.1, table 3.
#[derive(Clone, Copy, Default, PartialEq, Eq, Zeroize)]
pub struct Field64(u64);

impl Field64 {
    /// The modulus, 2^64 - 2^32 + 1.
    pub const MODULUS: u64 = 0xffff_ffff_0000_0001;
    /// 2^64 mod p = 2^32 - 1.
    const EPSILON: u64 = 0xffff_ffff;

    /// The canonical integer value.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// Subtracts p once if `x >= p` (x is any u64).
    #[inline(always)]
    fn canon(x: u64) -> u64 {
        let (y, borrow) = x.overflowing_sub(Self::MODULUS);
        // borrow set: x < p, keep x.
        let mask = (borrow as u64).wrapping_neg();
        (x & mask) | (y & !mask)
    }

    /// Reduces a 128-bit product, using 2^64 = 2^32 - 1 and 2^96 = -1 (mod p).
    #[inline(always)]
    fn reduce128(x: u128) -> u64 {
        let lo = x as u64;
        let hi = (x >> 64) as u64;
        let hi_hi = hi >> 32;
        let hi_lo = hi & Self::EPSILON;

        // lo - hi_hi; on borrow add p (== subtract EPSILON modulo 2^64).
        let (t0, borrow) = lo.overflowing_sub(hi_hi);
        let t0 = t0.wrapping_sub(Self::EPSILON & (borrow as u64).wrapping_neg());

        // + hi_lo * (2^32 - 1); on carry add 2^64 mod p.
        let t1 = hi_lo * Self::EPSILON;
        let (t2, carry) = t0.overflowing_add(t1);
        Self::canon(t2.wrapping_add(Self::EPSILON & (carry as u64).wrapping_neg()))
    }
}

impl FieldElement for Field64 {
    const ENCODED_SIZE: usize = 8;
    const ZERO: Self = Field64(0);
    const ONE: Self = Field64(1);

    fn from_canonical_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 8] = bytes.try_into().ok()?;
        let x = u64::from_le_bytes(arr);
        (x < Self::MODULUS).then_some(Field64(x))
    }

    fn from_random(bytes: &[u8]) -> Option<Self> {
        Self::from_canonical_bytes(bytes)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }

    fn from_u64(n: u64) -> Self {
        Field64(Self::canon(n))
    }

    fn to_u64(&self) -> Option<u64> {
        Some(self.0)
    }

    fn vartime_is_upper_half(&self) -> bool {
        self.0 > (Self::MODULUS - 1) / 2
    }
}

impl Add for Field64 {
    type Output = Self;
    // Carries and borrows become masks (`&`) so the arithmetic is branch-free.
    #[allow(clippy::suspicious_arithmetic_impl)]
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        let (s, carry) = self.0.overflowing_add(rhs.0);
        // On carry the true sum is s + 2^64 = s + EPSILON (mod p); that cannot carry again
        // because both inputs are below p.
        let s = s.wrapping_add(Self::EPSILON & (carry as u64).wrapping_neg());
        Field64(Self::canon(s))
    }
}

impl Sub for Field64 {
    type Output = Self;
    // Carries and borrows become masks (`&`) so the arithmetic is branch-free.
    #[allow(clippy::suspicious_arithmetic_impl)]
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        let (d, borrow) = self.0.overflowing_sub(rhs.0);
        Field64(d.wrapping_add(Self::MODULUS & (borrow as u64).wrapping_neg()))
    }
}

impl Mul for Field64 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        Field64(Self::reduce128(u128::from(self.0) * u128::from(rhs.0)))
    }
}

impl Neg for Field64 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

impl AddAssign for Field64 {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl SubAssign for Field64 {
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}

impl ConstantTimeEq for Field64 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl ConditionallySelectable for Field64 {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Field64(u64::conditional_select(&a.0, &b.0, choice))
    }
}

impl fmt::Debug for Field64 {
    // Field elements are public values in aggregate results; secret-holding containers
    // (shares, keys) redact their whole contents instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field64({})", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Field255
// ---------------------------------------------------------------------------------------------

/// Element of GF(2^255 - 19), draft section 6.1, table 3. Four little-endian 64-bit limbs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Zeroize)]
pub struct Field255([u64; 4]);

/// p = 2^255 - 19 as limbs.
pub(crate) const P255: [u64; 4] = [
    0xffff_ffff_ffff_ffed,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
];

impl Field255 {
    /// Subtracts p if `x >= p` (x < 2^256 with x < 2p, i.e. x < 2^256 - 38).
    #[inline(always)]
    fn canon(x: [u64; 4]) -> [u64; 4] {
        let (y, borrow) = sub4(&x, &P255);
        let mask = (borrow as u64).wrapping_neg();
        let mut out = [0u64; 4];
        for i in 0..4 {
            out[i] = (x[i] & mask) | (y[i] & !mask);
        }
        out
    }

    /// Reduces a 512-bit product (8 limbs) modulo p, using 2^256 = 38 (mod p).
    #[inline(always)]
    fn reduce512(t: &[u64; 8]) -> [u64; 4] {
        let mut r = reduce512_weak(t);
        // Fold bit 255: x = lo255 + 2^255 * b = lo255 + 19 b (mod p); then x < 2^255 + 19.
        let top = r[3] >> 63;
        r[3] &= 0x7fff_ffff_ffff_ffff;
        let mut c3 = u128::from(top * 19);
        for limb in r.iter_mut() {
            let v = u128::from(*limb) + c3;
            *limb = v as u64;
            c3 = v >> 64;
        }
        Self::canon(r)
    }

    /// The limbs of the canonical value, little-endian.
    pub fn limbs(&self) -> [u64; 4] {
        self.0
    }

    /// [`FieldElement::from_random`] on 32 bytes given as four little-endian limbs: clears the
    /// top bit, rejects (`None`) a value not below p.
    #[inline(always)]
    pub fn from_random_limbs(mut limbs: [u64; 4]) -> Option<Self> {
        limbs[3] &= 0x7fff_ffff_ffff_ffff;
        Self::from_canonical_limbs(limbs)
    }

    /// The element of value `limbs` (little-endian), which the caller has reduced below p.
    pub(crate) fn from_reduced_limbs(limbs: [u64; 4]) -> Self {
        debug_assert!(Self::from_canonical_limbs(limbs).is_some());
        Field255(limbs)
    }

    /// The element of value `limbs` (little-endian), or `None` when it is not below p.
    #[inline(always)]
    fn from_canonical_limbs(limbs: [u64; 4]) -> Option<Self> {
        // A borrow means limbs < p.
        let (_, borrow) = sub4(&limbs, &P255);
        borrow.then_some(Field255(limbs))
    }
}

/// 32 bytes as four little-endian limbs.
#[inline(always)]
fn limbs_le(bytes: &[u8; 32]) -> [u64; 4] {
    core::array::from_fn(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(w)
    })
}

#[inline(always)]
fn sub4(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], bool) {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        out[i] = d2;
        borrow = b1 | b2;
    }
    (out, borrow)
}

#[inline(always)]
fn add4(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], bool) {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        out[i] = s2;
        carry = c1 | c2;
    }
    (out, carry)
}

impl FieldElement for Field255 {
    const ENCODED_SIZE: usize = 32;
    const ZERO: Self = Field255([0; 4]);
    const ONE: Self = Field255([1, 0, 0, 0]);

    fn from_canonical_bytes(bytes: &[u8]) -> Option<Self> {
        Self::from_canonical_limbs(limbs_le(bytes.try_into().ok()?))
    }

    fn from_random(bytes: &[u8]) -> Option<Self> {
        Self::from_random_limbs(limbs_le(bytes.try_into().ok()?))
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        for limb in self.0 {
            out.extend_from_slice(&limb.to_le_bytes());
        }
    }

    fn from_u64(n: u64) -> Self {
        Field255([n, 0, 0, 0])
    }

    fn to_u64(&self) -> Option<u64> {
        (self.0[1] | self.0[2] | self.0[3] == 0).then_some(self.0[0])
    }

    fn vartime_is_upper_half(&self) -> bool {
        // (p - 1) / 2 = 2^254 - 10; x > (p-1)/2  <=>  x >= 2^254 - 9.
        let half_plus_one: [u64; 4] = [
            0xffff_ffff_ffff_fff7,
            0xffff_ffff_ffff_ffff,
            0xffff_ffff_ffff_ffff,
            0x3fff_ffff_ffff_ffff,
        ];
        let (_, borrow) = sub4(&self.0, &half_plus_one);
        !borrow
    }
}

impl Add for Field255 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        // Both < p < 2^255, so the sum < 2^256 and needs at most one subtraction.
        let (s, _) = add4(&self.0, &rhs.0);
        Field255(Self::canon(s))
    }
}

impl Sub for Field255 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        let (d, borrow) = sub4(&self.0, &rhs.0);
        let mask = (borrow as u64).wrapping_neg();
        let p_masked = [
            P255[0] & mask,
            P255[1] & mask,
            P255[2] & mask,
            P255[3] & mask,
        ];
        let (r, _) = add4(&d, &p_masked);
        Field255(r)
    }
}

/// The 512-bit product of two 256-bit integers (schoolbook, 4 x 4 limbs).
#[inline(always)]
fn mul_wide(a: &[u64; 4], b: &[u64; 4]) -> [u64; 8] {
    let mut t = [0u64; 8];
    for i in 0..4 {
        let mut carry: u128 = 0;
        for j in 0..4 {
            let v = u128::from(a[i]) * u128::from(b[j]) + u128::from(t[i + j]) + carry;
            t[i + j] = v as u64;
            carry = v >> 64;
        }
        t[i + 4] = carry as u64;
    }
    t
}

/// A 512-bit integer modulo p into 256 bits, not canonical (below 2^256), using
/// 2^256 = 38 (mod p): a valid input to [`mul_wide`].
#[inline(always)]
fn reduce512_weak(t: &[u64; 8]) -> [u64; 4] {
    // lo + 38 * hi: fits in 4 limbs plus a small carry word.
    let mut r = [0u64; 4];
    let mut carry: u128 = 0;
    for i in 0..4 {
        let v = u128::from(t[i]) + u128::from(t[i + 4]) * 38 + carry;
        r[i] = v as u64;
        carry = v >> 64;
    }
    // Fold the carry word (< 39) back: carry * 2^256 = carry * 38.
    let mut c = carry * 38;
    for limb in r.iter_mut() {
        let v = u128::from(*limb) + c;
        *limb = v as u64;
        c = v >> 64;
    }
    // c is now 0 or 1 (and then r is small): one more fold cannot carry.
    let mut c2 = c * 38;
    for limb in r.iter_mut() {
        let v = u128::from(*limb) + c2;
        *limb = v as u64;
        c2 = v >> 64;
    }
    r
}

/// `acc += x` on little-endian limbs (`acc` at least as long as `x`; the caller sizes it
/// so that the sum cannot overflow).
#[inline(always)]
fn add_wide<const N: usize, const M: usize>(acc: &mut [u64; N], x: &[u64; M]) {
    let mut carry = 0u64;
    for i in 0..N {
        let xi = if i < M { x[i] } else { 0 };
        let (s1, c1) = acc[i].overflowing_add(xi);
        let (s2, c2) = s1.overflowing_add(carry);
        acc[i] = s2;
        carry = u64::from(c1 | c2);
    }
}

/// `lo(4 limbs) + 38 * hi(rest)`: the same value modulo p, in `max(4, len - 4) + 2` limbs.
fn fold38(x: &[u64]) -> Vec<u64> {
    let (lo, hi) = x.split_at(4.min(x.len()));
    let mut out = vec![0u64; 4.max(hi.len()) + 2];
    out[..lo.len()].copy_from_slice(lo);
    let mut carry: u128 = 0;
    for (i, o) in out.iter_mut().enumerate() {
        let h = hi.get(i).map_or(0, |&h| u128::from(h) * 38);
        let v = u128::from(*o) + h + carry;
        *o = v as u64;
        carry = v >> 64;
    }
    out
}

impl Field255 {
    /// Reduces a little-endian integer of any (public) length modulo p, in constant time
    /// for that length.
    fn reduce_wide(x: &[u64]) -> Self {
        let mut v = x.to_vec();
        // Each fold of more than 8 limbs leaves 2 limbs fewer.
        while v.len() > 8 {
            let folded = fold38(&v);
            v.zeroize();
            v = folded;
        }
        let mut t = [0u64; 8];
        t[..v.len()].copy_from_slice(&v);
        v.zeroize();
        let r = Self::reduce512(&t);
        t.zeroize();
        Field255(r)
    }
}

/// The sums of the leaf level's first sketch share, `sum r_i y_i`, `sum r_i^2 y_i` and
/// `sum r_i z_i` over `Field255`, accumulated without reducing each product: per candidate
/// three 256 x 256-bit multiplications, one partial reduction (of `r_i y_i`, which is
/// multiplied again) and additions into 640-bit accumulators, reduced once in
/// [`Self::finish`] (with IFMA, eight candidates at a time in radix 2^52: [`crate::field512`]).
/// Secret (sums of value shares): zeroized on drop.
#[derive(Default, Clone)]
pub struct SketchSums255 {
    sums: [[u64; field512::WIDE]; 3],
}

impl SketchSums255 {
    /// Adds candidate `(y, z)` with verification randomness `r`.
    #[inline]
    pub fn add(&mut self, r: &Field255, y: &Field255, z: &Field255) {
        let ry = reduce512_weak(&mul_wide(&r.0, &y.0));
        let [s0, s1, s2] = &mut self.sums;
        add_wide(s0, &ry);
        add_wide(s1, &mul_wide(&r.0, &ry));
        add_wide(s2, &mul_wide(&r.0, &z.0));
    }

    /// Adds every candidate of a chunk: `values[i] = (y_i, z_i)` with randomness `rs[i]`;
    /// eight at a time with AVX-512 IFMA where the CPU has it ([`crate::field512`]).
    pub fn add_chunk(&mut self, values: &[[Field255; 2]], rs: &[Field255]) {
        let n = values.len().min(rs.len());
        if !field512::add_sketch(&values[..n], &rs[..n], &mut self.sums) {
            self.add_chunk_schoolbook(values, rs);
        }
    }

    /// [`Self::add_chunk`] on candidates held in blocks of eight ([`field512::LeafBlock`]):
    /// candidate `i` is leaf `i % 8` of `blocks[i / 8]`, with randomness `rs[i]`.
    pub fn add_blocks(&mut self, blocks: &[field512::LeafBlock], rs: &[Field255]) {
        if field512::add_sketch_blocks(blocks, rs, &mut self.sums) {
            return;
        }
        for (i, r) in rs.iter().enumerate().take(8 * blocks.len()) {
            let [y, z] = blocks[i / 8].get(i % 8);
            self.add(r, &y, &z);
        }
    }

    /// [`Self::add_chunk`] with 64-bit schoolbook products, one candidate at a time.
    pub(crate) fn add_chunk_schoolbook(&mut self, values: &[[Field255; 2]], rs: &[Field255]) {
        for (v, r) in values.iter().zip(rs) {
            self.add(r, &v[0], &v[1]);
        }
    }

    /// The three sums modulo p.
    pub fn finish(&self) -> [Field255; 3] {
        self.sums.each_ref().map(|s| Field255::reduce_wide(s))
    }
}

impl Drop for SketchSums255 {
    fn drop(&mut self) {
        for s in self.sums.iter_mut() {
            s.zeroize();
        }
    }
}

impl Mul for Field255 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        Field255(Self::reduce512(&mul_wide(&self.0, &rhs.0)))
    }
}

impl Neg for Field255 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

impl AddAssign for Field255 {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl SubAssign for Field255 {
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}

impl ConstantTimeEq for Field255 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl ConditionallySelectable for Field255 {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        let mut out = [0u64; 4];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u64::conditional_select(&a.0[i], &b.0[i], choice);
        }
        Field255(out)
    }
}

impl fmt::Debug for Field255 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Field255(0x{:016x}{:016x}{:016x}{:016x})",
            self.0[3], self.0[2], self.0[1], self.0[0]
        )
    }
}

/// Encodes a slice of field elements back to back (the draft's `encode_vec`).
pub fn encode_vec<F: FieldElement>(elems: &[F], out: &mut Vec<u8>) {
    out.reserve(elems.len() * F::ENCODED_SIZE);
    for e in elems {
        e.encode_into(out);
    }
}

/// Decodes exactly `bytes.len() / ENCODED_SIZE` canonical elements (the draft's `decode_vec`);
/// `None` on a length that is not a multiple or a non-canonical element.
pub fn decode_vec<F: FieldElement>(bytes: &[u8]) -> Option<Vec<F>> {
    if !bytes.len().is_multiple_of(F::ENCODED_SIZE) {
        return None;
    }
    bytes
        .chunks_exact(F::ENCODED_SIZE)
        .map(F::from_canonical_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field64_wraps_at_modulus() {
        let m1 = Field64::from_u64(Field64::MODULUS - 1);
        assert_eq!(m1 + Field64::ONE, Field64::ZERO);
        assert_eq!(Field64::ZERO - Field64::ONE, m1);
        assert_eq!(m1 * m1, Field64::ONE);
    }

    #[test]
    fn field255_wraps_at_modulus() {
        let mut m1 = Field255::ZERO - Field255::ONE;
        assert_eq!(m1 + Field255::ONE, Field255::ZERO);
        assert_eq!(m1 * m1, Field255::ONE);
        m1 = -Field255::from_u64(2);
        assert_eq!(m1 * m1, Field255::from_u64(4));
    }

    #[test]
    fn decoders_reject_modulus() {
        assert!(Field64::from_canonical_bytes(&Field64::MODULUS.to_le_bytes()).is_none());
        let mut p = Vec::new();
        for limb in P255 {
            p.extend_from_slice(&limb.to_le_bytes());
        }
        assert!(Field255::from_canonical_bytes(&p).is_none());
        assert!(Field255::from_canonical_bytes(&[0xff; 32]).is_none());
    }

    #[test]
    fn upper_half_maps_minus_one() {
        assert!((-Field64::ONE).vartime_is_upper_half());
        assert!(!Field64::ONE.vartime_is_upper_half());
        assert!((-Field255::ONE).vartime_is_upper_half());
        assert!(!Field255::from_u64(7).vartime_is_upper_half());
    }

    #[test]
    fn sketch_sums_equal_reduced_sums_at_the_extremes() {
        // Every candidate at p - 1 drives the unreduced accumulators as high as they go per
        // addition; a mix of small and large values checks the final reductions.
        let m1 = -Field255::ONE;
        let mixed = [
            m1,
            Field255::from_u64(3),
            m1 - Field255::from_u64(18),
            Field255::ZERO,
        ];
        for values in [[m1; 4], mixed] {
            let mut sums = SketchSums255::default();
            let mut want = [Field255::ZERO; 3];
            for i in 0..5000 {
                let (r, y, z) = (values[i % 4], values[(i + 1) % 4], values[(i + 3) % 4]);
                sums.add(&r, &y, &z);
                want[0] += r * y;
                want[1] += r * r * y;
                want[2] += r * z;
            }
            assert_eq!(sums.finish(), want);
        }
    }
}
