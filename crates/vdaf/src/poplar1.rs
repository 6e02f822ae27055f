//! Poplar1, draft-irtf-cfrg-vdaf-18 section 8: sharding, the two-round sketch verification,
//! aggregation and unsharding, for one report at a time.
//!
//! Measurements are `bits`-bit strings, most significant bit first; this crate takes them as
//! `u64` (so `bits <= 64`). A prefix at level `l` is the integer formed by the first `l + 1`
//! bits, i.e. `measurement >> (bits - 1 - l)`.
//!
//! Parameters (draft table 8): `VERIFY_KEY_SIZE = 32` (XofTurboShake128 seeds), `NONCE_SIZE =
//! 16`, `RAND_SIZE = 2 * 16 + 3 * 32 = 128` (two IDPF seeds, two correlation seeds, one shard
//! seed, in that order). Domain-separation tags are `version (18) || class 0 || id 6 (4 bytes
//! BE) || usage (2 bytes BE)`, usages 1 (shard randomness), 2 (inner correlation), 3 (leaf
//! correlation) and 4 (verification randomness), followed by the application context.
//!
//! The batch engine ([`crate::batch`]) runs the same computation over many reports at once; the
//! functions here are the reference it is tested against, and what the conformance test drives.

use core::fmt;

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::VdafError;
use crate::field::{Field64, Field255, FieldElement, SketchSums255, decode_vec, encode_vec};
use crate::idpf::{self, EvalScratch, IdpfPublicShare, LeafWalk, NodeCache, NodeKeys, PrefixTree};
use crate::xof::{TurboShakeReader, XofStream, XofTurboShake128};

/// Nonce size in bytes (draft table 8).
pub const NONCE_SIZE: usize = 16;
/// Verification key size in bytes (the seed size of XofTurboShake128).
pub const VERIFY_KEY_SIZE: usize = 32;
/// Bytes of randomness consumed by [`Poplar1::shard_with_rand`].
pub const RAND_SIZE: usize = 128;
/// Longest application context accepted (the XOF's dst length prefix is 2 bytes).
pub const MAX_CTX_SIZE: usize = 65_000;

/// Algorithm identifier of Poplar1 (draft section 10, table of codepoints).
const ALGORITHM_ID: u32 = 0x0000_0006;
const USAGE_SHARD_RAND: u16 = 1;
const USAGE_CORR_INNER: u16 = 2;
const USAGE_CORR_LEAF: u16 = 3;
const USAGE_VERIFY_RAND: u16 = 4;

/// The Poplar1 domain-separation tag for a usage (draft section 8.2.1).
pub(crate) fn dst(usage: u16) -> [u8; 8] {
    let id = ALGORITHM_ID.to_be_bytes();
    let u = usage.to_be_bytes();
    [idpf::VERSION, 0, id[0], id[1], id[2], id[3], u[0], u[1]]
}

/// A Poplar1 instance for `bits`-bit measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poplar1 {
    bits: usize,
}

/// The public share of a report: the IDPF correction words.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicShare(pub(crate) IdpfPublicShare);

impl PublicShare {
    /// Canonical encoding (draft section 8.2.6.1).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }
}

impl fmt::Debug for PublicShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicShare(bits = {})", self.0.bits())
    }
}

/// One aggregator's input share: IDPF key, correlation seed and correlated randomness.
/// Secret: zeroized on drop, compared in constant time, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct InputShare {
    pub(crate) idpf_key: [u8; 16],
    pub(crate) corr_seed: [u8; 32],
    pub(crate) corr_inner: Vec<[Field64; 2]>,
    pub(crate) corr_leaf: [Field255; 2],
}

impl InputShare {
    /// Canonical encoding (draft section 8.2.6.2).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 16 * self.corr_inner.len() + 64);
        out.extend_from_slice(&self.idpf_key);
        out.extend_from_slice(&self.corr_seed);
        for pair in &self.corr_inner {
            encode_vec(pair, &mut out);
        }
        encode_vec(&self.corr_leaf, &mut out);
        out
    }
}

impl ConstantTimeEq for InputShare {
    fn ct_eq(&self, other: &Self) -> Choice {
        let same_len = (self.corr_inner.len() as u64).ct_eq(&(other.corr_inner.len() as u64));
        let mut acc = same_len & self.idpf_key.ct_eq(&other.idpf_key);
        acc &= self.corr_seed.ct_eq(&other.corr_seed);
        for (a, b) in self.corr_inner.iter().zip(&other.corr_inner) {
            acc &= a[0].ct_eq(&b[0]) & a[1].ct_eq(&b[1]);
        }
        acc & self.corr_leaf[0].ct_eq(&other.corr_leaf[0])
            & self.corr_leaf[1].ct_eq(&other.corr_leaf[1])
    }
}

impl PartialEq for InputShare {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for InputShare {}

impl fmt::Debug for InputShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InputShare([redacted])")
    }
}

/// Which candidate prefixes to count, and at which tree level (draft section 8.2.6.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AggregationParam {
    level: u16,
    prefixes: Vec<u64>,
}

impl AggregationParam {
    /// Checks the draft's rules: at least one prefix, each fitting in `level + 1` bits,
    /// sorted and distinct; `level < 64` (this crate's measurement width).
    pub fn new(level: u16, prefixes: Vec<u64>) -> Result<Self, VdafError> {
        if level >= 64 {
            return Err(VdafError::InvalidAggParam("level must be below 64"));
        }
        if prefixes.is_empty() {
            return Err(VdafError::InvalidAggParam(
                "at least one prefix is required",
            ));
        }
        if u32::try_from(prefixes.len()).is_err() {
            return Err(VdafError::InvalidAggParam("too many prefixes"));
        }
        let width = u32::from(level) + 1;
        if width < 64 && prefixes.iter().any(|p| p >> width != 0) {
            return Err(VdafError::InvalidAggParam(
                "prefix longer than level + 1 bits",
            ));
        }
        if prefixes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(VdafError::InvalidAggParam(
                "prefixes must be sorted and distinct",
            ));
        }
        Ok(Self { level, prefixes })
    }

    /// The tree level (0-based: level `l` counts prefixes of `l + 1` bits).
    pub fn level(&self) -> u16 {
        self.level
    }

    /// The candidate prefixes, sorted.
    pub fn prefixes(&self) -> &[u64] {
        &self.prefixes
    }

    /// Bytes per encoded prefix.
    fn prefix_len(level: u16) -> usize {
        (usize::from(level) + 1).div_ceil(8)
    }

    /// Canonical encoding: `level` (u16 BE), `num_prefixes` (u32 BE), then each prefix's bits
    /// packed most significant first, padded with zero bits to whole bytes.
    pub fn encode(&self) -> Vec<u8> {
        let n = Self::prefix_len(self.level);
        let shift = 8 * n - (usize::from(self.level) + 1);
        let mut out = Vec::with_capacity(6 + n * self.prefixes.len());
        out.extend_from_slice(&self.level.to_be_bytes());
        out.extend_from_slice(&(self.prefixes.len() as u32).to_be_bytes());
        for &p in &self.prefixes {
            let v = u128::from(p) << shift;
            out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
        }
        out
    }

    /// Decodes, rejecting nonzero padding bits, trailing bytes and rule violations.
    pub fn decode(bytes: &[u8]) -> Result<Self, VdafError> {
        const WHAT: &str = "aggregation parameter";
        if bytes.len() < 6 {
            return Err(VdafError::decode(WHAT, "too short"));
        }
        let level = u16::from_be_bytes([bytes[0], bytes[1]]);
        let count = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
        if level >= 64 {
            return Err(VdafError::decode(WHAT, "level must be below 64"));
        }
        let n = Self::prefix_len(level);
        let body = &bytes[6..];
        if body.len() / n != count || !body.len().is_multiple_of(n) {
            return Err(VdafError::decode(
                WHAT,
                "length does not match the prefix count",
            ));
        }
        let shift = 8 * n - (usize::from(level) + 1);
        let mut prefixes = Vec::with_capacity(count);
        for chunk in body.chunks_exact(n) {
            let mut buf = [0u8; 16];
            buf[16 - n..].copy_from_slice(chunk);
            let v = u128::from_be_bytes(buf);
            if v & ((1u128 << shift) - 1) != 0 {
                return Err(VdafError::decode(WHAT, "nonzero padding bits in a prefix"));
            }
            prefixes.push((v >> shift) as u64);
        }
        Self::new(level, prefixes)
    }
}

/// The draft's `is_valid` (section 8.2.6.6): the level strictly increases over every previous
/// aggregation of the same report, and each prefix extends one of the last parameter's
/// prefixes.
pub fn is_valid(param: &AggregationParam, previous: &[AggregationParam]) -> bool {
    if previous.iter().any(|p| p.level >= param.level) {
        return false;
    }
    let Some(last) = previous.last() else {
        return true;
    };
    let shift = param.level - last.level;
    param
        .prefixes
        .iter()
        .all(|p| last.prefixes.binary_search(&(p >> shift)).is_ok())
}

/// A vector of elements of the field of the level (inner: `Field64`, leaf: `Field255`).
#[derive(Clone, PartialEq, Eq, Zeroize)]
pub enum FieldVec {
    /// Inner level.
    Inner(Vec<Field64>),
    /// Leaf level.
    Leaf(Vec<Field255>),
}

impl FieldVec {
    pub(crate) fn zero(is_leaf: bool, len: usize) -> Self {
        if is_leaf {
            FieldVec::Leaf(vec![Field255::ZERO; len])
        } else {
            FieldVec::Inner(vec![Field64::ZERO; len])
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            FieldVec::Inner(v) => v.len(),
            FieldVec::Leaf(v) => v.len(),
        }
    }

    /// `true` if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Concatenated canonical encodings.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            FieldVec::Inner(v) => encode_vec(v, &mut out),
            FieldVec::Leaf(v) => encode_vec(v, &mut out),
        }
        out
    }

    pub(crate) fn decode(
        is_leaf: bool,
        len: usize,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<Self, VdafError> {
        let size = if is_leaf { 32 } else { 8 };
        if bytes.len() != len * size {
            return Err(VdafError::decode(what, "wrong length"));
        }
        let bad = || VdafError::decode(what, "non-canonical field element");
        Ok(if is_leaf {
            FieldVec::Leaf(decode_vec(bytes).ok_or_else(bad)?)
        } else {
            FieldVec::Inner(decode_vec(bytes).ok_or_else(bad)?)
        })
    }

    /// Element-wise `self -= other`.
    pub(crate) fn sub_assign(&mut self, other: &FieldVec) -> Result<(), VdafError> {
        match (self, other) {
            (FieldVec::Inner(a), FieldVec::Inner(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x -= *y);
                Ok(())
            }
            (FieldVec::Leaf(a), FieldVec::Leaf(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x -= *y);
                Ok(())
            }
            _ => Err(VdafError::StateMismatch(
                "vectors of different fields or lengths",
            )),
        }
    }

    /// Element-wise `self += other`.
    pub(crate) fn add_assign(&mut self, other: &FieldVec) -> Result<(), VdafError> {
        match (self, other) {
            (FieldVec::Inner(a), FieldVec::Inner(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += *y);
                Ok(())
            }
            (FieldVec::Leaf(a), FieldVec::Leaf(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += *y);
                Ok(())
            }
            _ => Err(VdafError::StateMismatch(
                "vectors of different fields or lengths",
            )),
        }
    }
}

/// One aggregator's verifier share of one round (round 1: three elements, round 2: one).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierShare(pub(crate) FieldVec);

/// The combined verifier message of one round (round 1: the sketch; round 2: empty).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierMessage(pub(crate) Option<FieldVec>);

/// A report's contribution to one aggregator's aggregate share. Secret (redacted `Debug`).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct OutputShare(pub(crate) FieldVec);

/// Sum of output shares (one aggregator's share of the counts).
#[derive(Clone, PartialEq, Eq)]
pub struct AggregateShare(pub(crate) FieldVec);

macro_rules! encodable_field_vec {
    ($ty:ident) => {
        impl $ty {
            /// Canonical encoding: the field elements back to back.
            pub fn encode(&self) -> Vec<u8> {
                self.0.encode()
            }
        }
    };
}
encodable_field_vec!(VerifierShare);
encodable_field_vec!(OutputShare);
encodable_field_vec!(AggregateShare);

impl VerifierMessage {
    /// Canonical encoding (empty in round 2).
    pub fn encode(&self) -> Vec<u8> {
        self.0.as_ref().map(FieldVec::encode).unwrap_or_default()
    }
}

impl fmt::Debug for VerifierShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierShare({} elements)", self.0.len())
    }
}

impl fmt::Debug for VerifierMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifierMessage({} elements)",
            self.0.as_ref().map_or(0, FieldVec::len)
        )
    }
}

impl fmt::Debug for OutputShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutputShare([redacted])")
    }
}

impl fmt::Debug for AggregateShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AggregateShare({} entries)", self.0.len())
    }
}

impl AggregateShare {
    /// Number of entries (one per candidate prefix).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds signed integers (an aggregator's differential-privacy noise) entry-wise modulo p.
    pub fn add_noise(&mut self, noise: &[i64]) -> Result<(), VdafError> {
        if noise.len() != self.len() {
            return Err(VdafError::NoiseLengthMismatch {
                expected: self.len(),
                got: noise.len(),
            });
        }
        fn signed<F: FieldElement>(n: i64) -> F {
            let m = F::from_u64(n.unsigned_abs());
            if n < 0 { -m } else { m }
        }
        match &mut self.0 {
            FieldVec::Inner(v) => v.iter_mut().zip(noise).for_each(|(x, n)| *x += signed(*n)),
            FieldVec::Leaf(v) => v.iter_mut().zip(noise).for_each(|(x, n)| *x += signed(*n)),
        }
        Ok(())
    }

    /// Element-wise sum with another aggregate share of the same aggregation.
    pub fn merge(&mut self, other: &AggregateShare) -> Result<(), VdafError> {
        self.0.add_assign(&other.0)
    }
}

/// Where one aggregator's verification of one report stands.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VerifyState {
    agg_id: u8,
    round: VerifyRound,
    out_share: FieldVec,
}

#[derive(Clone, Zeroize)]
enum VerifyRound {
    /// After verify_init: the shares of `A` and `B` for the second sketch round.
    One { a_share: FieldVec },
    /// After the first verify_next.
    Two,
}

impl VerifyState {
    /// The `A`, `B` shares (empty after round 1) and the output share.
    pub(crate) fn parts(&self) -> (&FieldVec, &FieldVec) {
        const EMPTY: &FieldVec = &FieldVec::Inner(Vec::new());
        match &self.round {
            VerifyRound::One { a_share } => (a_share, &self.out_share),
            VerifyRound::Two => (EMPTY, &self.out_share),
        }
    }
}

impl fmt::Debug for VerifyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyState([redacted])")
    }
}

/// Result of [`Poplar1::verify_next`].
#[derive(Debug)]
pub enum VerifyTransition {
    /// Another round: the new state and this aggregator's next verifier share.
    Continue(VerifyState, VerifierShare),
    /// Done: the output share.
    Finish(OutputShare),
}

impl Poplar1 {
    /// A Poplar1 instance for `bits`-bit measurements, `1 <= bits <= 64`.
    pub fn new(bits: usize) -> Result<Self, VdafError> {
        if !(1..=64).contains(&bits) {
            return Err(VdafError::InvalidBits(bits));
        }
        Ok(Self { bits })
    }

    /// The measurement length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// `true` if `level` is the leaf level (values in `Field255`).
    pub fn is_leaf(&self, level: u16) -> bool {
        usize::from(level) == self.bits - 1
    }

    /// Shards `measurement` (its low `bits` bits) with fresh randomness from `rng`.
    pub fn shard<R: CryptoRng + ?Sized>(
        &self,
        ctx: &[u8],
        measurement: u64,
        nonce: &[u8; NONCE_SIZE],
        rng: &mut R,
    ) -> Result<(PublicShare, [InputShare; 2]), VdafError> {
        let mut rand = [0u8; RAND_SIZE];
        rng.fill_bytes(&mut rand);
        let result = self.shard_with_rand(ctx, measurement, nonce, &rand);
        rand.zeroize();
        result
    }

    /// Shards with caller-supplied randomness ([`RAND_SIZE`] bytes): the deterministic core
    /// that the test vectors pin.
    pub fn shard_with_rand(
        &self,
        ctx: &[u8],
        measurement: u64,
        nonce: &[u8; NONCE_SIZE],
        rand: &[u8],
    ) -> Result<(PublicShare, [InputShare; 2]), VdafError> {
        if self.bits < 64 && measurement >> self.bits != 0 {
            return Err(VdafError::MeasurementTooLarge { bits: self.bits });
        }
        let alpha: Vec<bool> = (0..self.bits)
            .map(|i| (measurement >> (self.bits - 1 - i)) & 1 == 1)
            .collect();
        self.shard_bits_with_rand(ctx, &alpha, nonce, rand)
    }

    /// The draft's `shard` on a bit vector (most significant bit first).
    pub fn shard_bits_with_rand(
        &self,
        ctx: &[u8],
        alpha: &[bool],
        nonce: &[u8; NONCE_SIZE],
        rand: &[u8],
    ) -> Result<(PublicShare, [InputShare; 2]), VdafError> {
        check_ctx(ctx)?;
        if alpha.len() != self.bits {
            return Err(VdafError::MeasurementTooLarge { bits: self.bits });
        }
        if rand.len() != RAND_SIZE {
            return Err(VdafError::InvalidRandLength {
                expected: RAND_SIZE,
                got: rand.len(),
            });
        }
        let seed16 =
            |i: usize| -> [u8; 16] { rand[16 * i..16 * i + 16].try_into().unwrap_or([0; 16]) };
        let seed32 = |off: usize| -> [u8; 32] { rand[off..off + 32].try_into().unwrap_or([0; 32]) };
        let idpf_rand = [seed16(0), seed16(1)];
        let corr_seeds = [seed32(32), seed32(64)];
        let shard_seed = seed32(96);

        // Authenticators for every level (draft 8.2.2, step 1).
        let mut shard_xof = XofTurboShake128::new(&shard_seed, &[&dst(USAGE_SHARD_RAND), ctx]);
        shard_xof.update(nonce);
        let mut shard_prng = shard_xof.into_stream();
        let auth_inner: Vec<Field64> = shard_prng.next_vec(self.bits - 1);
        let auth_leaf: Field255 = shard_prng.next_elem();

        // IDPF keys with values (1, auth) at each level.
        let beta_inner: Vec<[Field64; 2]> = auth_inner.iter().map(|a| [Field64::ONE, *a]).collect();
        let (public_share, keys) = idpf::key_gen(
            alpha,
            &beta_inner,
            [Field255::ONE, auth_leaf],
            ctx,
            nonce,
            &idpf_rand,
        )?;

        // Correlated randomness for the sketch, inner levels then the leaf.
        let mut corr = [
            corr_xof(&corr_seeds[0], USAGE_CORR_INNER, ctx, 0, nonce).into_stream(),
            corr_xof(&corr_seeds[1], USAGE_CORR_INNER, ctx, 1, nonce).into_stream(),
        ];
        let mut corr_inner = [
            Vec::with_capacity(self.bits - 1),
            Vec::with_capacity(self.bits - 1),
        ];
        for auth in &auth_inner {
            let (c0, c1) = next_corr_shares(&mut shard_prng, &mut corr, *auth);
            corr_inner[0].push(c0);
            corr_inner[1].push(c1);
        }
        let mut corr = [
            corr_xof(&corr_seeds[0], USAGE_CORR_LEAF, ctx, 0, nonce).into_stream(),
            corr_xof(&corr_seeds[1], USAGE_CORR_LEAF, ctx, 1, nonce).into_stream(),
        ];
        let (leaf0, leaf1) = next_corr_shares(&mut shard_prng, &mut corr, auth_leaf);

        let [ci0, ci1] = corr_inner;
        let shares = [
            InputShare {
                idpf_key: keys[0],
                corr_seed: corr_seeds[0],
                corr_inner: ci0,
                corr_leaf: leaf0,
            },
            InputShare {
                idpf_key: keys[1],
                corr_seed: corr_seeds[1],
                corr_inner: ci1,
                corr_leaf: leaf1,
            },
        ];
        Ok((PublicShare(public_share), shares))
    }

    /// Decodes a public share, rejecting non-canonical encodings and trailing bytes.
    pub fn decode_public_share(&self, bytes: &[u8]) -> Result<PublicShare, VdafError> {
        IdpfPublicShare::decode(self.bits, bytes).map(PublicShare)
    }

    /// Encoded length of an input share.
    pub fn input_share_len(&self) -> usize {
        16 + 32 + 16 * (self.bits - 1) + 64
    }

    /// Decodes aggregator `agg_id`'s input share.
    pub fn decode_input_share(&self, agg_id: usize, bytes: &[u8]) -> Result<InputShare, VdafError> {
        const WHAT: &str = "input share";
        check_agg_id(agg_id)?;
        if bytes.len() != self.input_share_len() {
            return Err(VdafError::decode(WHAT, "wrong length"));
        }
        let bad = || VdafError::decode(WHAT, "non-canonical field element");
        let mut share = InputShare {
            idpf_key: [0; 16],
            corr_seed: [0; 32],
            corr_inner: Vec::with_capacity(self.bits - 1),
            corr_leaf: [Field255::ZERO; 2],
        };
        share.idpf_key.copy_from_slice(&bytes[..16]);
        share.corr_seed.copy_from_slice(&bytes[16..48]);
        let (inner, leaf) = bytes[48..].split_at(16 * (self.bits - 1));
        for pair in inner.chunks_exact(16) {
            let a = Field64::from_canonical_bytes(&pair[..8]).ok_or_else(bad)?;
            let b = Field64::from_canonical_bytes(&pair[8..]).ok_or_else(bad)?;
            share.corr_inner.push([a, b]);
        }
        share.corr_leaf[0] = Field255::from_canonical_bytes(&leaf[..32]).ok_or_else(bad)?;
        share.corr_leaf[1] = Field255::from_canonical_bytes(&leaf[32..]).ok_or_else(bad)?;
        Ok(share)
    }

    /// Checks that `param` fits this instance (level below `bits`).
    pub fn check_agg_param(&self, param: &AggregationParam) -> Result<(), VdafError> {
        if usize::from(param.level) >= self.bits {
            return Err(VdafError::InvalidAggParam("level must be below bits"));
        }
        Ok(())
    }

    /// Decodes a verifier share of `round` (1 or 2) for `param`.
    pub fn decode_verifier_share(
        &self,
        param: &AggregationParam,
        round: u8,
        bytes: &[u8],
    ) -> Result<VerifierShare, VdafError> {
        let len = match round {
            1 => 3,
            2 => 1,
            _ => {
                return Err(VdafError::StateMismatch(
                    "Poplar1 has verifier shares in rounds 1 and 2",
                ));
            }
        };
        FieldVec::decode(self.is_leaf(param.level), len, bytes, "verifier share").map(VerifierShare)
    }

    /// Decodes the verifier message of `round` (1: three elements, 2: empty) for `param`.
    pub fn decode_verifier_message(
        &self,
        param: &AggregationParam,
        round: u8,
        bytes: &[u8],
    ) -> Result<VerifierMessage, VdafError> {
        match round {
            1 => FieldVec::decode(self.is_leaf(param.level), 3, bytes, "verifier message")
                .map(|v| VerifierMessage(Some(v))),
            2 if bytes.is_empty() => Ok(VerifierMessage(None)),
            2 => Err(VdafError::decode(
                "verifier message",
                "round-2 message must be empty",
            )),
            _ => Err(VdafError::StateMismatch(
                "Poplar1 has verifier messages in rounds 1 and 2",
            )),
        }
    }

    /// Decodes an aggregate share for `param`.
    pub fn decode_aggregate_share(
        &self,
        param: &AggregationParam,
        bytes: &[u8],
    ) -> Result<AggregateShare, VdafError> {
        let is_leaf = self.is_leaf(param.level);
        FieldVec::decode(is_leaf, param.prefixes.len(), bytes, "aggregate share")
            .map(AggregateShare)
    }

    /// The draft's `verify_init` (section 8.2.3): evaluates the IDPF at the candidate prefixes
    /// and computes the first sketch share.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_init(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        agg_id: usize,
        param: &AggregationParam,
        nonce: &[u8; NONCE_SIZE],
        public_share: &PublicShare,
        input_share: &InputShare,
    ) -> Result<(VerifyState, VerifierShare), VdafError> {
        check_agg_id(agg_id)?;
        check_ctx(ctx)?;
        self.check_agg_param(param)?;
        let tree = PrefixTree::new(usize::from(param.level), &param.prefixes);
        let mut scratch = EvalScratch::default();
        let ev = ReportEval {
            poplar: self,
            verify_key,
            ctx,
            param,
            tree: &tree,
            resumed: None,
        };
        ev.init(
            agg_id as u8,
            nonce,
            &public_share.0,
            input_share,
            None,
            false,
            &mut scratch,
        )
    }

    /// The draft's `verifier_shares_to_message`: sums the two shares; in round 2 the sum must
    /// be zero, or the report is rejected ([`VdafError::VerifyFailed`]).
    pub fn verifier_shares_to_message(
        &self,
        _ctx: &[u8],
        _param: &AggregationParam,
        shares: [VerifierShare; 2],
    ) -> Result<VerifierMessage, VdafError> {
        let [VerifierShare(mut sum), VerifierShare(other)] = shares;
        sum.add_assign(&other)?;
        match sum.len() {
            3 => Ok(VerifierMessage(Some(sum))),
            1 => {
                let zero = match &sum {
                    FieldVec::Inner(v) => v[0].ct_eq(&Field64::ZERO),
                    FieldVec::Leaf(v) => v[0].ct_eq(&Field255::ZERO),
                };
                if bool::from(zero) {
                    Ok(VerifierMessage(None))
                } else {
                    Err(VdafError::VerifyFailed)
                }
            }
            _ => Err(VdafError::StateMismatch(
                "verifier share of unexpected length",
            )),
        }
    }

    /// The draft's `verify_next`: round 1 turns the sketch into the second verifier share;
    /// round 2 (empty message) releases the output share.
    pub fn verify_next(
        &self,
        _ctx: &[u8],
        mut state: VerifyState,
        msg: &VerifierMessage,
    ) -> Result<VerifyTransition, VdafError> {
        match (&state.round, &msg.0) {
            (VerifyRound::One { a_share }, Some(sketch)) => {
                let share = finish_sketch(state.agg_id, a_share, sketch)?;
                state.round = VerifyRound::Two;
                Ok(VerifyTransition::Continue(state, VerifierShare(share)))
            }
            (VerifyRound::Two, None) => {
                let out = std::mem::replace(&mut state.out_share, FieldVec::Inner(Vec::new()));
                Ok(VerifyTransition::Finish(OutputShare(out)))
            }
            _ => Err(VdafError::StateMismatch("message of the wrong round")),
        }
    }

    /// The draft's `agg_init` + `agg_update`: sums output shares.
    pub fn aggregate<'a>(
        &self,
        param: &AggregationParam,
        out_shares: impl IntoIterator<Item = &'a OutputShare>,
    ) -> Result<AggregateShare, VdafError> {
        let mut agg = FieldVec::zero(self.is_leaf(param.level), param.prefixes.len());
        for out in out_shares {
            agg.add_assign(&out.0)?;
        }
        Ok(AggregateShare(agg))
    }

    /// The draft's `unshard`: the counts per candidate prefix.
    pub fn unshard(
        &self,
        param: &AggregationParam,
        shares: [&AggregateShare; 2],
        _num_measurements: usize,
    ) -> Result<Vec<u64>, VdafError> {
        let sum = self.merge_shares(param, shares)?;
        match &sum {
            FieldVec::Inner(v) => Ok(v.iter().map(Field64::value).collect()),
            FieldVec::Leaf(v) => v
                .iter()
                .map(|x| x.to_u64().ok_or(VdafError::CountOverflow))
                .collect(),
        }
    }

    /// Like [`Self::unshard`], reading values above p/2 as negative (noisy counts may wrap).
    pub fn unshard_signed(
        &self,
        param: &AggregationParam,
        shares: [&AggregateShare; 2],
        _num_measurements: usize,
    ) -> Result<Vec<i64>, VdafError> {
        let sum = self.merge_shares(param, shares)?;
        fn signed<F: FieldElement>(x: &F) -> Result<i64, VdafError> {
            let (mag, neg) = if x.vartime_is_upper_half() {
                (-*x, true)
            } else {
                (*x, false)
            };
            let m = mag
                .to_u64()
                .and_then(|m| i64::try_from(m).ok())
                .ok_or(VdafError::CountOverflow)?;
            Ok(if neg { -m } else { m })
        }
        match &sum {
            FieldVec::Inner(v) => v.iter().map(signed).collect(),
            FieldVec::Leaf(v) => v.iter().map(signed).collect(),
        }
    }

    fn merge_shares(
        &self,
        param: &AggregationParam,
        shares: [&AggregateShare; 2],
    ) -> Result<FieldVec, VdafError> {
        let mut sum = FieldVec::zero(self.is_leaf(param.level), param.prefixes.len());
        for share in shares {
            sum.add_assign(&share.0)?;
        }
        Ok(sum)
    }
}

/// Everything needed to run `verify_init` for many reports of one aggregation.
pub(crate) struct ReportEval<'a> {
    pub(crate) poplar: &'a Poplar1,
    pub(crate) verify_key: &'a [u8; VERIFY_KEY_SIZE],
    pub(crate) ctx: &'a [u8],
    pub(crate) param: &'a AggregationParam,
    /// The candidates with all ancestors, from the root.
    pub(crate) tree: &'a PrefixTree,
    /// The candidates below the previous level of a walk, when reports carry [`WalkState`].
    pub(crate) resumed: Option<&'a PrefixTree>,
}

/// What one report's evaluation can carry from one level of a heavy-hitter walk to the next
/// (per aggregator): its node keys, its nodes at the last evaluated candidates, and its inner
/// correlated-randomness stream positioned after the last level read. Bounded by the
/// candidates of one level. Secret: zeroized on drop (the node cache; the stream is dropped).
pub(crate) struct WalkState {
    pub(crate) keys: NodeKeys,
    pub(crate) nodes: Option<NodeCache>,
    pub(crate) corr: Option<(XofStream<TurboShakeReader>, u16)>,
}

impl WalkState {
    pub(crate) fn new(ctx: &[u8], nonce: &[u8; NONCE_SIZE]) -> Self {
        Self {
            keys: NodeKeys::new(ctx, nonce),
            nodes: None,
            corr: None,
        }
    }
}

impl ReportEval<'_> {
    /// `verify_init` for one report (inputs already decoded and checked). With `walk`, the
    /// report's carried state is used (resuming below its cached nodes when `resume` is set)
    /// and updated for the next level.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn init(
        &self,
        agg_id: u8,
        nonce: &[u8; NONCE_SIZE],
        public_share: &IdpfPublicShare,
        input_share: &InputShare,
        walk: Option<&mut WalkState>,
        resume: bool,
        scratch: &mut EvalScratch,
    ) -> Result<(VerifyState, VerifierShare), VdafError> {
        let level = self.param.level;
        let mut local = None;
        let walk = match walk {
            Some(w) => w,
            None => local.insert(WalkState::new(self.ctx, nonce)),
        };

        let mut verify_prng = self.verify_xof(nonce).into_stream();

        // The tree to walk: from the root, or below the cached nodes.
        let mut nodes = walk.nodes.take().unwrap_or_default();
        let tree = self.tree_for(resume);
        let key = &input_share.idpf_key;
        let keys = &walk.keys;

        if self.poplar.is_leaf(level) {
            // Values, randomness and sketch chunk by chunk (no per-candidate value array).
            let mut leaf = LeafWalk::default();
            leaf.start(agg_id, public_share, key, keys, tree, Some(&nodes), scratch)?;
            let mut out = Vec::with_capacity(self.param.prefixes.len());
            let mut values = vec![[Field255::ZERO; 2]; LEAF_CHUNK];
            let mut rs = vec![Field255::ZERO; LEAF_CHUNK];
            let mut sums = SketchSums255::default();
            loop {
                let got = leaf.next_chunk(agg_id, public_share, keys, tree, &mut values);
                if got == 0 {
                    break;
                }
                verify_prng.fill_vec(&mut rs[..got]);
                sums.add_chunk(&values[..got], &rs[..got]);
                out.extend(values[..got].iter().map(|v| v[0]));
            }
            values.zeroize();
            let sums = sums.finish();
            let abc = self.leaf_abc(agg_id, nonce, input_share);
            let sketch = (0..3).map(|i| sums[i] + abc[i]).collect();
            let a_share = FieldVec::Leaf(input_share.corr_leaf.to_vec());
            let round = VerifyRound::One { a_share };
            let state = VerifyState {
                agg_id,
                round,
                out_share: FieldVec::Leaf(out),
            };
            return Ok((state, VerifierShare(FieldVec::Leaf(sketch))));
        }

        let mut values = vec![[Field64::ZERO; 2]; self.param.prefixes.len()];
        idpf::eval_tree(
            agg_id,
            public_share,
            key,
            keys,
            tree,
            Some(&mut nodes),
            scratch,
            &mut values,
        )?;
        walk.nodes = Some(nodes);
        let abc = self.inner_corr(agg_id, nonce, input_share, walk);
        let (out, sketch) = sketch_share(&values, abc, &mut verify_prng);
        let a_share = FieldVec::Inner(input_share.corr_inner[usize::from(level)].to_vec());
        let round = VerifyRound::One { a_share };
        let state = VerifyState {
            agg_id,
            round,
            out_share: FieldVec::Inner(out),
        };
        Ok((state, VerifierShare(FieldVec::Inner(sketch))))
    }

    /// The tree a report walks: below its cached nodes when it has them and the level
    /// resumes the previous one, else from the root.
    pub(crate) fn tree_for(&self, resume: bool) -> &PrefixTree {
        match (resume, self.resumed) {
            (true, Some(t)) => t,
            _ => self.tree,
        }
    }

    /// The verification randomness XOF of one report at this level, bound to the nonce and
    /// the level.
    pub(crate) fn verify_xof(&self, nonce: &[u8; NONCE_SIZE]) -> XofTurboShake128 {
        let mut vxof = XofTurboShake128::new(self.verify_key, &[&dst(USAGE_VERIFY_RAND), self.ctx]);
        vxof.update(nonce);
        vxof.update(&self.param.level.to_be_bytes());
        vxof
    }

    /// The leaf level's shares of `a, b, c` from the leaf correlated-randomness stream.
    pub(crate) fn leaf_abc(
        &self,
        agg_id: u8,
        nonce: &[u8; NONCE_SIZE],
        input: &InputShare,
    ) -> [Field255; 3] {
        let xof = corr_xof(&input.corr_seed, USAGE_CORR_LEAF, self.ctx, agg_id, nonce);
        let mut corr = xof.into_stream();
        [corr.next_elem(), corr.next_elem(), corr.next_elem()]
    }

    /// This level's shares of `a, b, c` from the inner correlated-randomness stream, reusing
    /// the walk's stream when it is not past this level.
    fn inner_corr(
        &self,
        agg_id: u8,
        nonce: &[u8; NONCE_SIZE],
        input: &InputShare,
        walk: &mut WalkState,
    ) -> [Field64; 3] {
        let level = self.param.level;
        let (mut corr, next) = match walk.corr.take() {
            Some((stream, next)) if next <= level => (stream, next),
            _ => {
                let xof = corr_xof(&input.corr_seed, USAGE_CORR_INNER, self.ctx, agg_id, nonce);
                (xof.into_stream(), 0)
            }
        };
        // Skip the a, b, c shares of the levels in between.
        corr.skip_elems::<Field64>(3 * usize::from(level - next));
        let abc = [corr.next_elem(), corr.next_elem(), corr.next_elem()];
        walk.corr = Some((corr, level + 1));
        abc
    }
}

/// Candidates per chunk of a leaf-level evaluation (values, randomness and sketch are
/// computed chunk by chunk).
pub(crate) const LEAF_CHUNK: usize = 256;

/// Adds `[sum r_i y_i, sum r_i^2 y_i, sum r_i z_i]` over `values = (y_i, z_i)` to `sums`.
#[inline]
fn add_to_sketch<F: FieldElement>(sums: &mut [F; 3], values: &[[F; 2]], rs: &[F]) {
    for (v, &r) in values.iter().zip(rs) {
        let ry = r * v[0];
        sums[0] += ry;
        sums[1] += ry * r;
        sums[2] += r * v[1];
    }
}

/// The first sketch share: `[a + sum r_i y_i, b + sum r_i^2 y_i, c + sum r_i z_i]`, and the
/// output share `y`.
fn sketch_share<F: FieldElement, S: crate::xof::ByteSource>(
    values: &[[F; 2]],
    abc: [F; 3],
    verify_prng: &mut crate::xof::XofStream<S>,
) -> (Vec<F>, Vec<F>) {
    let mut sketch = abc;
    let mut rs = vec![F::ZERO; values.len()];
    verify_prng.fill_vec(&mut rs);
    add_to_sketch(&mut sketch, values, &rs);
    let out = values.iter().map(|v| v[0]).collect();
    (out, sketch.to_vec())
}

/// The second sketch share: `A * s0 + B`, plus `s0^2 - s1 - s2` for the helper.
fn finish_sketch(agg_id: u8, a_b: &FieldVec, sketch: &FieldVec) -> Result<FieldVec, VdafError> {
    fn go<F: FieldElement>(agg_id: u8, ab: &[F], s: &[F]) -> Vec<F> {
        let mut v = ab[0] * s[0] + ab[1];
        if agg_id == 1 {
            v += s[0] * s[0] - s[1] - s[2];
        }
        vec![v]
    }
    match (a_b, sketch) {
        (FieldVec::Inner(ab), FieldVec::Inner(s)) if ab.len() == 2 && s.len() == 3 => {
            Ok(FieldVec::Inner(go(agg_id, ab, s)))
        }
        (FieldVec::Leaf(ab), FieldVec::Leaf(s)) if ab.len() == 2 && s.len() == 3 => {
            Ok(FieldVec::Leaf(go(agg_id, ab, s)))
        }
        _ => Err(VdafError::StateMismatch(
            "sketch of the wrong field or length",
        )),
    }
}

/// The correlated-randomness XOF of aggregator `agg_id`: binder `agg_id || nonce`.
fn corr_xof(seed: &[u8; 32], usage: u16, ctx: &[u8], agg_id: u8, nonce: &[u8]) -> XofTurboShake128 {
    let mut xof = XofTurboShake128::new(seed, &[&dst(usage), ctx]);
    xof.update(&[agg_id]);
    xof.update(nonce);
    xof
}

/// One level's correlated randomness (draft 8.2.2): shares of `A = -2a + auth` and
/// `B = a^2 + b - a * auth + c`, with `a, b, c` the sums of both aggregators' XOF outputs.
fn next_corr_shares<F: FieldElement, S: crate::xof::ByteSource, T: crate::xof::ByteSource>(
    shard_prng: &mut crate::xof::XofStream<S>,
    corr: &mut [crate::xof::XofStream<T>; 2],
    auth: F,
) -> ([F; 2], [F; 2]) {
    let mut sum = || -> F {
        let x0: F = corr[0].next_elem();
        let x1: F = corr[1].next_elem();
        x0 + x1
    };
    let a = sum();
    let b = sum();
    let c = sum();
    let two = F::ONE + F::ONE;
    let big_a = auth - two * a;
    let big_b = a * a + b - a * auth + c;
    let share1 = [shard_prng.next_elem(), shard_prng.next_elem()];
    let share0 = [big_a - share1[0], big_b - share1[1]];
    (share0, share1)
}

fn check_agg_id(agg_id: usize) -> Result<(), VdafError> {
    if agg_id > 1 {
        return Err(VdafError::InvalidAggregatorId(agg_id));
    }
    Ok(())
}

pub(crate) fn check_ctx(ctx: &[u8]) -> Result<(), VdafError> {
    if ctx.len() > MAX_CTX_SIZE {
        return Err(VdafError::ContextTooLong(ctx.len()));
    }
    Ok(())
}
