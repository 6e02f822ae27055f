//! Credentials, their presentations for a context, and verification.
//!
//! ARC draft section 4.3 (presentation) and section 5.3 (presentation proof with the range
//! proof of section 5.4), ported to ristretto255 and merlin. A client holding the credential
//! `(m1, U, UPrime)` presents it for a context (task id, window) with a nonce `n < N`:
//!
//! ```text
//! a, r, z random;   U~ = a*U;   UPrimeCommit = a*UPrime + r*G;   m1Commit = m1*U~ + z*H
//! T = HashToGroup(context, "Tag");   tag = (m1 + n)^-1 * T
//! n = sum_i b_i * base_i  with bits b_i in {0,1};   D_i = b_i*G + s_i*H
//! ```
//!
//! and proves, for `V = z*X1 - r*G` (which the verifier recomputes from its secret key as
//! `x0*U~ + x1*m1Commit + x2*m2*U~ - UPrimeCommit`):
//!
//! ```text
//! m1Commit = m1*U~ + z*H
//! V        = z*X1 + (-r)*G
//! T        = m1*tag + sum_i b_i*(base_i*tag)       (so T = (m1 + n)*tag with n < N)
//! D_i      = b_i*G + s_i*H,   D_i = b_i*D_i + s2_i*H   (each b_i is 0 or 1)
//! ```
//!
//! The tag depends only on `(m1, context, n)`: a client that presents twice with one nonce
//! produces the same tag, which the verifier's tag store rejects; with `n` limited to
//! `[0, N)`, a credential yields at most `N` distinct tags per context. Nothing else in a
//! presentation repeats: `U~`, `UPrimeCommit`, `m1Commit` and every `D_i` are re-randomised,
//! and the nonce itself is hidden. The differences from the draft are listed in
//! `docs/credentials.md`.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{EncodingError, POINT_LEN, Reader, SCALAR_LEN};
use crate::h2c;
use crate::keys::{Day, IssuerKey, IssuerPublicKey, KeyId, KeySet, generators};
use crate::labels;
use crate::randomness::{Expander, draw_seed};
use crate::sigma::{Check, Proof, Relation, SecretCombination};

/// Length of the fixed part of a presentation: key id, context digest, limit, 4 elements.
const HEADER_LEN: usize = 8 + 8 + 4 + 4 * POINT_LEN;
/// Longest task id a presentation context accepts.
pub const MAX_TASK_ID_LEN: usize = 255;

/// Why a presentation could not be made or was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The presentation failed to decode.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// The task id is longer than [`MAX_TASK_ID_LEN`].
    #[error("task id longer than {MAX_TASK_ID_LEN} bytes")]
    TaskIdTooLong,
    /// The presentation limit is zero.
    #[error("the presentation limit must be at least 1")]
    InvalidLimit,
    /// The client asked for a nonce at or above the limit.
    #[error("nonce {nonce} is not below the limit {limit}")]
    NonceOutOfRange {
        /// The nonce asked for.
        nonce: u32,
        /// The limit.
        limit: u32,
    },
    /// The presentation names another key than the one it is checked against.
    #[error("made under key {found}, checked against key {expected}")]
    WrongKey {
        /// The key id in the presentation.
        found: KeyId,
        /// The key id of the verifier's key.
        expected: KeyId,
    },
    /// The presentation names a key the verifier does not hold.
    #[error("unknown key id {0}")]
    UnknownKeyId(KeyId),
    /// The key exists but its day is outside the days accepted for this context.
    #[error("key {key_id} of day {day} is not accepted for this context")]
    StaleKey {
        /// The key id in the presentation.
        key_id: KeyId,
        /// The day of that key.
        day: u32,
    },
    /// The presentation was made for another context (task id, window).
    #[error("the presentation was made for another task or window")]
    WrongContext,
    /// The presentation was made for another presentation limit.
    #[error("made for limit {presented}, expected {expected}")]
    LimitMismatch {
        /// The limit in the presentation.
        presented: u32,
        /// The verifier's limit.
        expected: u32,
    },
    /// The proof does not verify: forged, or made under another request context or key.
    #[error("the presentation proof does not verify")]
    InvalidProof,
}

/// The context a presentation is bound to: a task and one of its windows.
///
/// Building one costs a hash to the group (the tag generator `T`); a verifier that checks
/// many uploads for one window can build it once and reuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationContext {
    encoded: Vec<u8>,
    digest: [u8; 8],
    generator_t: RistrettoPoint,
}

impl PresentationContext {
    /// The context of window `window` of task `task_id` (at most 255 bytes).
    pub fn new(task_id: &[u8], window: u64) -> Result<Self, CredentialError> {
        let len = u8::try_from(task_id.len()).map_err(|_| CredentialError::TaskIdTooLong)?;
        let mut encoded = Vec::with_capacity(1 + task_id.len() + 8);
        encoded.push(len);
        encoded.extend_from_slice(task_id);
        encoded.extend_from_slice(&window.to_be_bytes());

        // The 8-byte digest a presentation carries, so a mismatch is reported as such.
        let hash = Sha512::new()
            .chain_update(labels::ARC_CONTEXT_DIGEST)
            .chain_update(&encoded)
            .finalize();
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&hash[..8]);

        // T = HashToGroup(context, "Tag").
        let generator_t = h2c::hash_to_group(
            &[&encoded],
            &[
                labels::ARC_HASH_TO_GROUP,
                labels::ARC_CONTEXT,
                labels::ARC_TAG,
            ],
        );
        Ok(Self {
            encoded,
            digest,
            generator_t,
        })
    }

    /// `len(task_id) (1 byte) || task_id || window (8 bytes, big-endian)`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

/// The public attribute `m2 = HashToScalar(requestContext, "requestContext")`.
pub(crate) fn request_attribute(request_context: &[u8]) -> Scalar {
    h2c::hash_to_scalar(
        &[request_context],
        &[
            labels::ARC_HASH_TO_SCALAR,
            labels::ARC_CONTEXT,
            labels::ARC_REQUEST_CONTEXT,
        ],
    )
}

/// The bases of the range proof for `[0, limit)` (ARC draft ComputeBases), largest first.
///
/// `1, 2, ..., 2^(k-2)` and `limit - 2^(k-1)` for `k = ceil(log2(limit))`; none for limit 1.
pub(crate) fn bases(limit: u32) -> Vec<u64> {
    let limit = u64::from(limit);
    if limit <= 1 {
        return Vec::new();
    }
    let k = 64 - (limit - 1).leading_zeros();
    let mut bases: Vec<u64> = (0..k - 1).map(|i| 1u64 << i).collect();
    bases.push(limit - (1u64 << (k - 1)));
    bases.sort_unstable_by(|a, b| b.cmp(a));
    bases
}

/// The canonical decomposition of `nonce` over `bases`, greedy from the largest, branch-free.
fn decompose(nonce: u32, bases: &[u64]) -> Vec<Scalar> {
    let mut rest = u64::from(nonce);
    (bases.iter())
        .map(|&base| {
            // bit = 1 iff rest >= base; both are below 2^33, so the top bit is the borrow.
            let bit = (rest.wrapping_sub(base) >> 63) ^ 1;
            rest -= bit * base;
            Scalar::from(bit)
        })
        .collect()
}

/// A tag: the encoding of `(m1 + n)^-1 * T`. The verifier stores it; a repeat is a replay.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub [u8; 32]);

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag(")?;
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
        write!(f, ")")
    }
}

/// An issued credential `(m1, U, UPrime)` with the key and request context it belongs to.
///
/// Held by the client only. Zeroized on drop; `Debug` prints only the key id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Credential {
    m1: Scalar,
    #[zeroize(skip)]
    u: RistrettoPoint,
    #[zeroize(skip)]
    u_prime: RistrettoPoint,
    #[zeroize(skip)]
    key: IssuerPublicKey,
    request_context: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("key_id", &self.key.key_id())
            .finish_non_exhaustive()
    }
}

/// A presentation: the re-randomised credential, the tag, the bit commitments and the proof.
#[derive(Clone)]
pub struct Presentation {
    key_id: KeyId,
    context_digest: [u8; 8],
    limit: u32,
    u: (RistrettoPoint, [u8; 32]),
    u_prime_commit: (RistrettoPoint, [u8; 32]),
    m1_commit: (RistrettoPoint, [u8; 32]),
    tag: (RistrettoPoint, [u8; 32]),
    bits: Vec<(RistrettoPoint, [u8; 32])>,
    proof: Proof,
}

impl std::fmt::Debug for Presentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presentation")
            .field("key_id", &self.key_id)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// The points of the presentation relation, in the order the relation allocates them.
struct PresentationStatement {
    u: RistrettoPoint,
    m1_commit: RistrettoPoint,
    v: RistrettoPoint,
    tag: RistrettoPoint,
    generator_t: RistrettoPoint,
    bits: Vec<RistrettoPoint>,
}

/// Index of `U~` among the presentation relation's points (after `G`, `H`, `X1`).
const U_INDEX: usize = 3;
/// Index of `m1Commit` among the presentation relation's points.
const M1_COMMIT_INDEX: usize = 4;
/// Index of `V` among the presentation relation's points.
const V_INDEX: usize = 5;
/// Index of the tag generator `T` in the presentation relation.
const GENERATOR_T_INDEX: usize = 7;

/// The presentation relation over `(m1, z, -r, b_0..b_k, s_0..s_k, s2_0..s2_k)`.
///
/// Static points `G, H, X1` come first; with the key's table the verifier uses them
/// precomputed.
fn presentation_relation<'a>(
    key: &IssuerPublicKey,
    table: Option<&'a curve25519_dalek::ristretto::VartimeRistrettoPrecomputation>,
    bases: &[u64],
    s: &PresentationStatement,
) -> Relation<'a> {
    const M1: usize = 0;
    const Z: usize = 1;
    const R_NEG: usize = 2;
    let k = bases.len();
    let (bit, blinding, aux) = (|i| 3 + i, |i| 3 + k + i, |i| 3 + 2 * k + i);
    let generators = generators();
    let mut r = Relation::new(3 + 3 * k, table, &[generators.g, generators.h, key.x1]);
    let (g, h, x1) = (0, 1, 2);
    let [u, m1_commit, v, tag, generator_t] =
        [s.u, s.m1_commit, s.v, s.tag, s.generator_t].map(|point| r.point(point));
    debug_assert_eq!(
        [u, m1_commit, v, generator_t],
        [U_INDEX, M1_COMMIT_INDEX, V_INDEX, GENERATOR_T_INDEX]
    );
    let d: Vec<usize> = s.bits.iter().map(|point| r.point(*point)).collect();

    // 1. m1Commit = m1*U + z*H;  2. V = z*X1 + (-r)*G.
    r.equation(m1_commit, &[(M1, u), (Z, h)]);
    r.equation(v, &[(Z, x1), (R_NEG, g)]);

    // 3. T = m1*tag + sum_i b_i*base_i*tag, i.e. T = (m1 + nonce)*tag.
    let nonce_terms = bases
        .iter()
        .enumerate()
        .map(|(i, &base)| (bit(i), Scalar::from(base), tag));
    r.weighted_equation(
        generator_t,
        std::iter::once((M1, Scalar::ONE, tag)).chain(nonce_terms),
    );

    // 4. For each bit: D_i = b_i*G + s_i*H and D_i = b_i*D_i + s2_i*H (so b_i is 0 or 1).
    for (i, &d_i) in d.iter().enumerate() {
        r.equation(d_i, &[(bit(i), g), (blinding(i), h)]);
        r.equation(d_i, &[(bit(i), d_i), (aux(i), h)]);
    }
    r
}

/// The transcript of a presentation proof, with every public input of the statement bound.
fn presentation_transcript(
    key: &IssuerPublicKey,
    request_context: &[u8],
    context: &PresentationContext,
    presentation: &Presentation,
) -> Transcript {
    let mut t = Transcript::new(labels::ARC_PROTOCOL);
    t.append_message(labels::PROOF_KIND, labels::KIND_PRESENTATION);
    t.append_message(labels::KEY_ID, &key.key_id().0);
    t.append_message(labels::PUBLIC_KEY, &key.to_bytes());
    t.append_message(labels::REQUEST_CONTEXT, request_context);
    t.append_message(labels::PRESENTATION_CONTEXT, context.as_bytes());
    t.append_message(
        labels::PRESENTATION_LIMIT,
        &presentation.limit.to_be_bytes(),
    );
    let p = presentation;
    for (_, bytes) in [&p.u, &p.u_prime_commit, &p.m1_commit, &p.tag]
        .into_iter()
        .chain(&p.bits)
    {
        t.append_message(labels::STATEMENT_POINT, bytes);
    }
    t
}

/// A point with its canonical encoding.
fn encoded(point: RistrettoPoint) -> (RistrettoPoint, [u8; 32]) {
    (point, point.compress().to_bytes())
}

impl Credential {
    pub(crate) fn new(
        m1: Scalar,
        u: RistrettoPoint,
        u_prime: RistrettoPoint,
        key: IssuerPublicKey,
        request_context: Vec<u8>,
    ) -> Self {
        Self {
            m1,
            u,
            u_prime,
            key,
            request_context,
        }
    }

    /// The id of the key the credential was issued under.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// The request context (credential kind) the credential was issued for.
    pub fn request_context(&self) -> &[u8] {
        &self.request_context
    }

    /// Presents the credential for `context` with `nonce < limit` (public entry point).
    ///
    /// The caller must use each nonce at most once per context: a second presentation with
    /// the same nonce carries the same tag and is rejected as a replay.
    pub fn present<R: CryptoRng + ?Sized>(
        &self,
        context: &PresentationContext,
        limit: u32,
        nonce: u32,
        rng: &mut R,
    ) -> Result<Presentation, CredentialError> {
        self.present_with_randomness(context, limit, nonce, &draw_seed(rng))
    }

    /// [`Credential::present`] with its randomness given as a seed.
    pub fn present_with_randomness(
        &self,
        context: &PresentationContext,
        limit: u32,
        nonce: u32,
        seed: &[u8; 32],
    ) -> Result<Presentation, CredentialError> {
        if limit == 0 {
            return Err(CredentialError::InvalidLimit);
        }
        if nonce >= limit {
            return Err(CredentialError::NonceOutOfRange { nonce, limit });
        }
        let bits = Zeroizing::new(decompose(nonce, &bases(limit)));
        Ok(self.present_with_bits(context, limit, nonce, &bits, seed))
    }

    /// The presentation itself for `nonce` decomposed as `bits`, with no range check: the
    /// tests use it to play a cheating client and show that the verifier rejects it alone.
    pub(crate) fn present_with_bits(
        &self,
        context: &PresentationContext,
        limit: u32,
        nonce: u32,
        bits: &[Scalar],
        seed: &[u8; 32],
    ) -> Presentation {
        let generators = generators();
        let mut expander = Expander::new(seed, labels::PURPOSE_PRESENTATION);
        let (a, r, z) = (
            Zeroizing::new(expander.nonzero_scalar()),
            Zeroizing::new(expander.nonzero_scalar()),
            Zeroizing::new(expander.nonzero_scalar()),
        );
        let (a, r, z) = (&*a, &*r, &*z);

        // Re-randomise the credential and commit to m1: U~, UPrimeCommit, m1Commit.
        let u = a * self.u;
        let g_table = RISTRETTO_BASEPOINT_TABLE;
        let u_prime_commit = a * self.u_prime + g_table * r;
        let m1_commit = self.m1 * u + &generators.h_table * z;

        // The tag (m1 + nonce)^-1 * T, and V = z*X1 - r*G.
        let generator_t = context.generator_t;
        let exponent = Zeroizing::new((self.m1 + Scalar::from(nonce)).invert());
        let tag = *exponent * generator_t;
        let v = z * self.key.x1 - g_table * r;

        // Bit commitments D_i = b_i*G + s_i*H of the nonce's decomposition.
        let bases = bases(limit);
        let blindings: Zeroizing<Vec<Scalar>> =
            Zeroizing::new(bases.iter().map(|_| expander.scalar()).collect());
        let commitments: Vec<RistrettoPoint> = (bits.iter().zip(blindings.iter()))
            .map(|(b, s)| g_table * b + &generators.h_table * s)
            .collect();

        let mut presentation = Presentation {
            key_id: self.key.key_id(),
            context_digest: context.digest,
            limit,
            u: encoded(u),
            u_prime_commit: encoded(u_prime_commit),
            m1_commit: encoded(m1_commit),
            tag: encoded(tag),
            bits: commitments.iter().map(|d| encoded(*d)).collect(),
            proof: Proof::empty(),
        };

        // The proof, with witness (m1, z, -r, b, s, s2 = (1 - b)*s).
        let statement = PresentationStatement {
            u,
            m1_commit,
            v,
            tag,
            generator_t,
            bits: commitments,
        };
        let relation = presentation_relation(&self.key, None, &bases, &statement);
        let mut witness = Zeroizing::new(vec![self.m1, *z, -r]);
        witness.extend(bits.iter());
        witness.extend(blindings.iter());
        witness.extend(
            bits.iter()
                .zip(blindings.iter())
                .map(|(b, s)| (Scalar::ONE - b) * s),
        );
        let mut transcript =
            presentation_transcript(&self.key, &self.request_context, context, &presentation);
        presentation.proof = relation.prove(&witness, &mut transcript, &expander.bytes());
        presentation
    }

    /// `publicKey || m1 || Ser(U) || Ser(UPrime) || len (2 bytes) || requestContext`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(192 + 2 + self.request_context.len()));
        out.extend_from_slice(&self.key.to_bytes());
        out.extend_from_slice(self.m1.as_bytes());
        out.extend_from_slice(self.u.compress().as_bytes());
        out.extend_from_slice(self.u_prime.compress().as_bytes());
        // The request context is at most a few dozen bytes; longer ones are cut off by the
        // length check in from_bytes, never written.
        let len = u16::try_from(self.request_context.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.request_context[..usize::from(len)]);
        out
    }

    /// Decodes a stored credential.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let key = IssuerPublicKey::from_bytes(&reader.read_array::<96>("credential.public_key")?)?;
        let mut m1_bytes = Zeroizing::new(reader.read_array::<32>("credential.m1")?);
        let m1 = crate::encoding::decode_nonzero_scalar(&m1_bytes, "credential.m1")?;
        m1_bytes.zeroize();
        let (u, _) = reader.read_point("credential.U")?;
        let (u_prime, _) = reader.read_point("credential.UPrime")?;
        let len = u16::from_be_bytes(reader.read_array("credential.request_context_len")?);
        let mut request_context = Vec::with_capacity(usize::from(len));
        for _ in 0..len {
            request_context.push(reader.read_u8("credential.request_context")?);
        }
        reader.finish()?;
        Ok(Self {
            m1,
            u,
            u_prime,
            key,
            request_context,
        })
    }
}

impl Presentation {
    /// The id of the key the presentation was made under (which key to verify it with).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The presentation limit the client used.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Encoded length of a presentation for `limit`.
    pub fn encoded_len(limit: u32) -> usize {
        let k = bases(limit).len();
        HEADER_LEN + k * POINT_LEN + (3 + 2 * k) * POINT_LEN + (3 + 3 * k) * SCALAR_LEN
    }

    /// `keyId || contextDigest || limit || U || UPrimeCommit || m1Commit || tag || D_i || proof`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.bits.len() * POINT_LEN + self.proof.len());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.context_digest);
        out.extend_from_slice(&self.limit.to_be_bytes());
        for (_, bytes) in [&self.u, &self.u_prime_commit, &self.m1_commit, &self.tag] {
            out.extend_from_slice(bytes);
        }
        self.bits
            .iter()
            .for_each(|(_, bytes)| out.extend_from_slice(bytes));
        self.proof.write(&mut out);
        out
    }

    /// Decodes a presentation, rejecting non-canonical fields, truncation and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let key_id = KeyId(reader.read_array("presentation.key_id")?);
        let context_digest = reader.read_array("presentation.context_digest")?;
        let limit = u32::from_be_bytes(reader.read_array("presentation.limit")?);
        if limit == 0 {
            return Err(EncodingError::OutOfRange {
                field: "presentation.limit",
                value: 0,
            });
        }
        let u = reader.read_point("presentation.U")?;
        let u_prime_commit = reader.read_point("presentation.UPrimeCommit")?;
        let m1_commit = reader.read_point("presentation.m1Commit")?;
        let tag = reader.read_point("presentation.tag")?;
        let k = bases(limit).len();
        let bits = (0..k)
            .map(|_| reader.read_point("presentation.D"))
            .collect::<Result<_, _>>()?;
        let proof = Proof::read(&mut reader, 3 + 2 * k, 3 + 3 * k)?;
        reader.finish()?;
        Ok(Self {
            key_id,
            context_digest,
            limit,
            u,
            u_prime_commit,
            m1_commit,
            tag,
            bits,
            proof,
        })
    }
}

/// Verifies `presentation` for `context` under `key` and returns its tag (ARC draft 4.3.3).
///
/// `request_context` is the credential kind the verifier requires; `limit` the task's
/// presentations per window. The caller must then check that the tag is new for this context
/// and store it, atomically with whatever the presentation authorises.
pub fn verify(
    key: &IssuerKey,
    request_context: &[u8],
    context: &PresentationContext,
    limit: u32,
    presentation: &Presentation,
) -> Result<Tag, CredentialError> {
    let check = folded_check(key, request_context, context, limit, presentation)?;
    if check.is_identity(Some(&key.table)) {
        Ok(Tag(presentation.tag.1))
    } else {
        Err(CredentialError::InvalidProof)
    }
}

/// One presentation of a batch for [`verify_batch`], with what it is checked against.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The key to verify under (the presentation's key id must name it).
    pub key: &'a IssuerKey,
    /// The credential kind the verifier requires.
    pub request_context: &'a [u8],
    /// The task and window the presentation must be made for.
    pub context: &'a PresentationContext,
    /// The task's presentations per window.
    pub limit: u32,
    /// The decoded presentation.
    pub presentation: &'a Presentation,
}

/// Verifies many presentations at once; the result of each is exactly what [`verify`] would
/// return for it alone.
///
/// The proofs that pass the cheap checks are folded as in [`verify`], then each key's proofs
/// are combined with random weights into one multiscalar multiplication (one variable-time
/// for the public terms, one constant-time for the secret-key terms). If a combination fails,
/// its proofs are evaluated one by one to find the culprits, so a forged presentation costs
/// its batch one extra check per member, never a wrong verdict. A batch holding an invalid
/// proof passes with probability at most 2^-252 over the weights, which come from
/// `randomness`: it must be fresh and secret from the provers (use [`verify_batch`] with a
/// `CryptoRng`).
pub fn verify_batch_with_randomness(
    items: &[BatchItem<'_>],
    randomness: &[u8; 32],
) -> Vec<Result<Tag, CredentialError>> {
    let mut results: Vec<Result<Tag, CredentialError>> = Vec::with_capacity(items.len());
    let mut folded: Vec<(usize, Check)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = item.presentation;
        match folded_check(item.key, item.request_context, item.context, item.limit, p) {
            Ok(check) => {
                results.push(Ok(Tag(p.tag.1)));
                folded.push((i, check));
            }
            Err(e) => results.push(Err(e)),
        }
    }

    // One combination per key (each has its own table of static points).
    let mut weights = Expander::new(randomness, labels::PURPOSE_BATCH_VERIFY);
    folded.sort_by_key(|(i, _)| items[*i].key.key_id());
    for group in folded.chunk_by(|(a, _), (b, _)| items[*a].key.key_id() == items[*b].key.key_id())
    {
        let table = Some(&*items[group[0].0].key.table);
        if let [(i, check)] = group {
            // Alone in its group: the weight would change nothing.
            if !check.is_identity(table) {
                results[*i] = Err(CredentialError::InvalidProof);
            }
            continue;
        }
        let group_weights: Vec<Scalar> = group.iter().map(|_| weights.nonzero_scalar()).collect();
        let checks: Vec<&Check> = group.iter().map(|(_, check)| check).collect();
        if Check::batch_holds(table, &checks, &group_weights) {
            continue;
        }
        for (i, check) in group {
            if !check.is_identity(table) {
                results[*i] = Err(CredentialError::InvalidProof);
            }
        }
    }
    results
}

/// [`verify_batch_with_randomness`] with the weights' seed drawn from `rng`.
pub fn verify_batch<R: CryptoRng + ?Sized>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Vec<Result<Tag, CredentialError>> {
    verify_batch_with_randomness(items, &draw_seed(rng))
}

/// The cheap checks of [`verify`], then the proof folded into one check, not yet evaluated.
fn folded_check(
    key: &IssuerKey,
    request_context: &[u8],
    context: &PresentationContext,
    limit: u32,
    presentation: &Presentation,
) -> Result<Check, CredentialError> {
    // 1. The cheap checks first, each with its own error: key, context, limit.
    if presentation.key_id != key.key_id() {
        return Err(CredentialError::WrongKey {
            found: presentation.key_id,
            expected: key.key_id(),
        });
    }
    if presentation.context_digest != context.digest {
        return Err(CredentialError::WrongContext);
    }
    if presentation.limit != limit {
        return Err(CredentialError::LimitMismatch {
            presented: presentation.limit,
            expected: limit,
        });
    }

    // 2. V = (x0 + x2*m2)*U + x1*m1Commit - UPrimeCommit involves the secret key: the
    //    verifier never computes V itself but substitutes this combination into the folded
    //    check, whose secret part is multiplied in constant time.
    let secret = &key.secret;
    let m2 = request_attribute(request_context);
    let x0_x2_m2 = Zeroizing::new(secret.x0 + secret.x2 * m2);

    // 3. The proof, folded over public values with the key's table (V is a placeholder).
    let statement = PresentationStatement {
        u: presentation.u.0,
        m1_commit: presentation.m1_commit.0,
        v: presentation.u_prime_commit.0,
        tag: presentation.tag.0,
        generator_t: context.generator_t,
        bits: presentation.bits.iter().map(|(point, _)| *point).collect(),
    };
    let mut relation =
        presentation_relation(key.public(), Some(&key.table), &bases(limit), &statement);
    // Every presentation for this context has the same tag generator T: a batch multiplies
    // it once.
    relation.share_point(GENERATOR_T_INDEX);
    let combination = SecretCombination {
        replaced: V_INDEX,
        terms: [(U_INDEX, &*x0_x2_m2), (M1_COMMIT_INDEX, &secret.x1)],
        public: -presentation.u_prime_commit.0,
    };
    let mut transcript =
        presentation_transcript(key.public(), request_context, context, presentation);
    (relation.folded_check(&presentation.proof, &mut transcript, Some(&combination)))
        .map_err(|_| CredentialError::InvalidProof)
}

impl KeySet {
    /// Looks up the presentation's key and verifies with it (see [`verify`]).
    ///
    /// `accepted_days` are the key days valid for this context: for crowding, the window's
    /// own day; for outbreak uploads, the days from the window's day to 14 days after it.
    pub fn verify(
        &self,
        accepted_days: std::ops::RangeInclusive<Day>,
        request_context: &[u8],
        context: &PresentationContext,
        limit: u32,
        presentation: &Presentation,
    ) -> Result<Tag, CredentialError> {
        let key_id = presentation.key_id;
        let (day, key) = self
            .get(&key_id)
            .ok_or(CredentialError::UnknownKeyId(key_id))?;
        if !accepted_days.contains(&day) {
            return Err(CredentialError::StaleKey { key_id, day: day.0 });
        }
        verify(key, request_context, context, limit, presentation)
    }

    /// Verifies an encoded presentation, cheapest checks first (what the upload path calls):
    /// [`KeySet::decode_for`], then [`verify`].
    pub fn verify_bytes(
        &self,
        accepted_days: std::ops::RangeInclusive<Day>,
        request_context: &[u8],
        context: &PresentationContext,
        limit: u32,
        bytes: &[u8],
    ) -> Result<Tag, CredentialError> {
        let (key, presentation) = self.decode_for(accepted_days, context, limit, bytes)?;
        verify(key, request_context, context, limit, &presentation)
    }

    /// Checks an encoded presentation's clear header, then decodes it; returns the key to
    /// verify it under (for [`verify`] or a [`BatchItem`]).
    ///
    /// The header (key id, context digest, limit) is checked before any point is decoded, so
    /// a peer cannot make the verifier decompress hundreds of points by claiming a huge limit
    /// or an unknown key: the key id must be known and of an accepted day, the digest that
    /// of `context`, the limit `limit`.
    pub fn decode_for(
        &self,
        accepted_days: std::ops::RangeInclusive<Day>,
        context: &PresentationContext,
        limit: u32,
        bytes: &[u8],
    ) -> Result<(&IssuerKey, Presentation), CredentialError> {
        // 1. The header alone: key id known and of an accepted day, context, limit.
        let mut reader = Reader::new(bytes);
        let key_id = KeyId(reader.read_array("presentation.key_id")?);
        let digest: [u8; 8] = reader.read_array("presentation.context_digest")?;
        let presented = u32::from_be_bytes(reader.read_array("presentation.limit")?);
        let (day, key) = self
            .get(&key_id)
            .ok_or(CredentialError::UnknownKeyId(key_id))?;
        if !accepted_days.contains(&day) {
            return Err(CredentialError::StaleKey { key_id, day: day.0 });
        }
        if digest != context.digest {
            return Err(CredentialError::WrongContext);
        }
        if presented != limit {
            return Err(CredentialError::LimitMismatch {
                presented,
                expected: limit,
            });
        }

        // 2. The body.
        Ok((key, Presentation::from_bytes(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_cover_exactly_the_range() {
        for limit in 1..=300u32 {
            let bases = bases(limit);
            assert_eq!(
                bases.iter().sum::<u64>(),
                u64::from(limit) - 1,
                "limit {limit}"
            );
            for nonce in 0..limit {
                let bits = decompose(nonce, &bases);
                let value: u64 = (bits.iter().zip(&bases))
                    .map(|(b, base)| if *b == Scalar::ONE { *base } else { 0 })
                    .sum();
                assert_eq!(value, u64::from(nonce), "limit {limit} nonce {nonce}");
            }
        }
    }

    fn issued(key: &IssuerKey) -> Credential {
        let ctx = labels::REQUEST_CONTEXT_CROWDING;
        let (pending, request) =
            crate::issuance::CredentialRequest::new_with_randomness(key.public(), ctx, &[2; 32]);
        let response = crate::issuance::issue_with_randomness(key, ctx, &request, &[3; 32]);
        pending
            .finalize(&response.expect("issued"))
            .expect("finalized")
    }

    /// A cheating client that skips the range check: the verifier alone must reject.
    #[test]
    fn nonce_at_or_above_the_limit_cannot_be_proven() {
        let key = IssuerKey::from_seed(&[1; 32]);
        let credential = issued(&key);
        let context = PresentationContext::new(b"task", 7).expect("context");
        let ctx = labels::REQUEST_CONTEXT_CROWDING;
        for (limit, nonce) in [(4u32, 4u32), (4, 5), (3, 3), (5, 8), (1, 1)] {
            // Honest bits of an out-of-range nonce cannot add up to it.
            let bits = decompose(nonce, &bases(limit));
            let cheat = credential.present_with_bits(&context, limit, nonce, &bits, &[4; 32]);
            assert_eq!(
                verify(&key, ctx, &context, limit, &cheat).err(),
                Some(CredentialError::InvalidProof),
                "limit {limit}, nonce {nonce}"
            );
        }

        // Nor can "bits" outside {0, 1} that do add up: 4 = 2*2 + 0*1 with limit 4.
        let bits = [Scalar::from(2u64), Scalar::ZERO];
        let cheat = credential.present_with_bits(&context, 4, 4, &bits, &[4; 32]);
        assert_eq!(
            verify(&key, ctx, &context, 4, &cheat).err(),
            Some(CredentialError::InvalidProof)
        );

        // The same cheating path with an in-range nonce verifies, so the test is meaningful.
        let bits = decompose(3, &bases(4));
        let honest = credential.present_with_bits(&context, 4, 3, &bits, &[4; 32]);
        assert!(verify(&key, ctx, &context, 4, &honest).is_ok());
    }

    #[test]
    fn client_refuses_a_nonce_at_or_above_the_limit() {
        let credential = issued(&IssuerKey::from_seed(&[1; 32]));
        let context = PresentationContext::new(b"task", 7).expect("context");
        assert_eq!(
            credential
                .present_with_randomness(&context, 4, 4, &[0; 32])
                .err(),
            Some(CredentialError::NonceOutOfRange { nonce: 4, limit: 4 })
        );
        assert_eq!(
            credential
                .present_with_randomness(&context, 0, 0, &[0; 32])
                .err(),
            Some(CredentialError::InvalidLimit)
        );
    }

    /// The combined check itself holds for honest presentations over several contexts, whose
    /// equal tag generators are merged: no honest batch ever needs the one-by-one fallback
    /// (which would hide a wrong merge behind correct verdicts).
    #[test]
    fn honest_batches_hold_without_the_fallback_across_contexts() {
        let key = IssuerKey::from_seed(&[1; 32]);
        let credential = issued(&key);
        let ctx = labels::REQUEST_CONTEXT_CROWDING;
        let contexts: Vec<PresentationContext> = (0..3)
            .map(|w| PresentationContext::new(b"task", w).expect("context"))
            .collect();
        let mut presentations = Vec::new();
        for i in 0..12u8 {
            let context = &contexts[usize::from(i) % 3];
            let limit = [1u32, 3, 4][usize::from(i) % 3];
            let nonce = u32::from(i) % limit;
            let p = (credential.present_with_randomness(context, limit, nonce, &[i; 32]))
                .expect("in range");
            presentations.push((context, limit, p));
        }
        let checks: Vec<Check> = (presentations.iter())
            .map(|(context, limit, p)| folded_check(&key, ctx, context, *limit, p).expect("folds"))
            .collect();
        let refs: Vec<&Check> = checks.iter().collect();
        let weights: Vec<Scalar> = (1..=12u64).map(|w| Scalar::from(w * 7919)).collect();
        assert!(Check::batch_holds(Some(&key.table), &refs, &weights));

        // One forged member makes the combination fail.
        let (context, limit, p) = &presentations[5];
        let mut bytes = p.to_bytes();
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        let forged = Presentation::from_bytes(&bytes).expect("decodes");
        let mut checks = checks;
        checks[5] = folded_check(&key, ctx, context, *limit, &forged).expect("folds");
        let refs: Vec<&Check> = checks.iter().collect();
        assert!(!Check::batch_holds(Some(&key.table), &refs, &weights));
    }

    #[test]
    fn bit_count_is_ceil_log2_of_the_limit() {
        let counts: Vec<usize> = [1u32, 2, 3, 4, 5, 8, 9, 16, 17]
            .iter()
            .map(|&n| bases(n).len())
            .collect();
        assert_eq!(counts, [0, 1, 2, 2, 3, 3, 4, 4, 5]);
        assert_eq!(bases(u32::MAX).len(), 32);
    }
}
